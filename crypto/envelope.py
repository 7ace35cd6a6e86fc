"""Sealed envelopes (RFC 9180 HPKE) and sealed replies. Pure: no I/O.

A question travels from the requesting organisation to each node it asks in an *envelope* sealed
with HPKE (single-shot, base mode) to that node's public key; the coordinator relays it without
being able to read it. The suite is the hybrid post-quantum KEM MLKEM768-X25519
(``0x647A``), HKDF-SHA256 (``0x0001``) and ChaCha20-Poly1305 (``0x0003``): a recorded envelope stays
sealed even against a future quantum computer as long as either ML-KEM-768 or X25519 holds
(ADR 0008).

A node's answer travels back as a *reply* sealed with ChaCha20-Poly1305 under a 32-byte reply key
the requester put inside its envelope — the bidirectional pattern of RFC 9180 section 9.8, with the
key carried in the envelope rather than exported, so that the members of one domain can be given
the same key and stay indistinguishable to the requester (ADR 0007). Only the requester and the
node(s) that opened the envelope know the key: the coordinator can neither read nor forge a reply.

Plaintexts are padded to a fixed size before sealing (:func:`pad`) so that sizes say nothing.

Errors: a peer's malformed data raises :class:`MalformedMessage`; a ciphertext that does not open
(wrong key, altered, other context) raises :class:`VerificationError`; a caller's own mistake (a
plaintext longer than its padded size, a key of the wrong size) raises ``ValueError``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hpke import (
    AEAD,
    KDF,
    KEM,
    MLKEM768X25519PrivateKey,
    MLKEM768X25519PublicKey,
    Suite,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from betrokken.errors import MalformedMessage, VerificationError

SUITE = "HPKE MLKEM768-X25519 / HKDF-SHA256 / ChaCha20-Poly1305"
SEED_SIZE = 32
_MLKEM_PUBLIC_SIZE = 1184
_X25519_SIZE = 32
PUBLIC_KEY_SIZE = _MLKEM_PUBLIC_SIZE + _X25519_SIZE
ENC_SIZE = 1088 + _X25519_SIZE  # ML-KEM-768 ciphertext || X25519 ephemeral public key
TAG_SIZE = 16
REPLY_KEY_SIZE = 32
_NONCE_SIZE = 12
_HPKE = Suite(KEM.MLKEM768_X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)


@dataclass(frozen=True)
class EnvelopeKey:
    """A node's private envelope key: a 32-byte seed (never shown in ``repr``).

    The seed is expanded as the concrete hybrid KEM MLKEM768-X25519 does: SHAKE256(seed, 96) gives
    the 64-byte ML-KEM-768 seed (d || z) and the 32-byte X25519 private key.
    """

    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_SIZE:
            raise ValueError(f"an envelope key seed has {SEED_SIZE} bytes, not {len(self.seed)}")

    @classmethod
    def generate(cls) -> EnvelopeKey:
        return cls(secrets.token_bytes(SEED_SIZE))

    def _parts(self) -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]:
        expanded = hashlib.shake_256(self.seed).digest(64 + _X25519_SIZE)
        return (
            mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
            x25519.X25519PrivateKey.from_private_bytes(expanded[64:]),
        )

    def private_key(self) -> MLKEM768X25519PrivateKey:
        return MLKEM768X25519PrivateKey(*self._parts())

    def public_bytes(self) -> bytes:
        """The public key as pinned in the network file: ML-KEM-768 key || X25519 key."""
        pq, classic = self._parts()
        return pq.public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw
        ) + classic.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key(data: bytes) -> MLKEM768X25519PublicKey:
    """Load a pinned public key; a wrong size or an invalid ML-KEM key is a MalformedMessage."""
    if len(data) != PUBLIC_KEY_SIZE:
        raise MalformedMessage(
            f"an envelope public key has {PUBLIC_KEY_SIZE} bytes, this one {len(data)}"
        )
    try:
        pq = mlkem.MLKEM768PublicKey.from_public_bytes(data[:_MLKEM_PUBLIC_SIZE])
        classic = x25519.X25519PublicKey.from_public_bytes(data[_MLKEM_PUBLIC_SIZE:])
    except ValueError:
        raise MalformedMessage(
            "the envelope public key is not a valid MLKEM768-X25519 key"
        ) from None
    return MLKEM768X25519PublicKey(pq, classic)


@lru_cache(maxsize=256)
def _pinned(data: bytes) -> MLKEM768X25519PublicKey:
    """A pinned public key loaded once per process (a bad one raises, and is not remembered):
    loading checks the ML-KEM key, which costs as much as a tenth of a seal."""
    return public_key(data)


def sealed_size(plaintext_size: int) -> int:
    return ENC_SIZE + plaintext_size + TAG_SIZE


def seal(recipient: bytes | MLKEM768X25519PublicKey, info: bytes, plaintext: bytes) -> bytes:
    """HPKE single-shot seal (``enc || ciphertext``) bound to ``info``."""
    key = _pinned(recipient) if isinstance(recipient, bytes) else recipient
    return _HPKE.encrypt(plaintext, key, info=info)


def open_sealed(key: EnvelopeKey | MLKEM768X25519PrivateKey, info: bytes, sealed: bytes) -> bytes:
    """Open an HPKE envelope; anything that does not open under this key and ``info`` is refused."""
    if len(sealed) < ENC_SIZE + TAG_SIZE:
        raise MalformedMessage(f"an envelope has at least {ENC_SIZE + TAG_SIZE} bytes")
    private = key.private_key() if isinstance(key, EnvelopeKey) else key
    try:
        return _HPKE.decrypt(sealed, private, info=info)
    except (InvalidTag, ValueError):
        raise VerificationError(
            "the envelope does not open with this node's key in this question's context "
            "(sealed to another node, for another question, or altered)"
        ) from None


def new_reply_key() -> bytes:
    return secrets.token_bytes(REPLY_KEY_SIZE)


def seal_reply(key: bytes, aad: bytes, plaintext: bytes) -> bytes:
    """``nonce || ChaCha20-Poly1305(key, nonce, plaintext, aad)`` with a random 96-bit nonce."""
    if len(key) != REPLY_KEY_SIZE:
        raise ValueError(f"a reply key has {REPLY_KEY_SIZE} bytes")
    nonce = secrets.token_bytes(_NONCE_SIZE)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def open_reply(key: bytes, aad: bytes, sealed: bytes) -> bytes:
    if len(key) != REPLY_KEY_SIZE:
        raise ValueError(f"a reply key has {REPLY_KEY_SIZE} bytes")
    if len(sealed) < _NONCE_SIZE + TAG_SIZE:
        raise MalformedMessage("a sealed reply is too short")
    try:
        return ChaCha20Poly1305(key).decrypt(sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:], aad)
    except InvalidTag:
        raise VerificationError(
            "a reply does not open with the key this question gave (forged or altered on the way)"
        ) from None


def reply_size(plaintext_size: int) -> int:
    return _NONCE_SIZE + plaintext_size + TAG_SIZE


def pad(data: bytes, size: int) -> bytes:
    """``data`` followed by zero bytes up to ``size`` (``data`` must not end in a zero byte)."""
    if len(data) > size:
        raise ValueError(f"{len(data)} bytes do not fit in a padded size of {size}")
    if data.endswith(b"\x00"):
        raise ValueError("padded data must not end in a zero byte")
    return data + bytes(size - len(data))


def unpad(data: bytes) -> bytes:
    return data.rstrip(b"\x00")
