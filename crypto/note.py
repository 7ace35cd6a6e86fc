"""C2SP signed notes with Ed25519: checkpoints (tlog-checkpoint) and any other signed text.

A checkpoint body is three lines: the origin, the tree size in decimal, the root hash in base64.
A signed note is the body, an empty line, and signature lines ``— <name> <base64(keyhash||sig)>``.
The key hash is the first 4 bytes of SHA-256(name || "\\n" || 0x01 || public key), and a verifier
key is written ``<name>+<hex key hash>+<base64(0x01 || public key)>``, as Go's sumdb tooling does.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from betrokken.errors import MalformedMessage, VerificationError

ED25519 = b"\x01"
DASH = "\u2014 "


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> bytes:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n".encode()


def _check_name(name: str) -> None:
    if not name or any(c in name for c in " +\n\t") or not name.isprintable():
        raise MalformedMessage(f"'{name}' is not a valid key name")


def key_hash(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public_key).digest()[:4]


@dataclass(frozen=True)
class NoteKey:
    name: str
    private_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.private_key) != 32:
            raise MalformedMessage("an Ed25519 private key has 32 bytes")

    @classmethod
    def generate(cls, name: str) -> NoteKey:
        return cls(name, secrets.token_bytes(32))

    @functools.cached_property
    def signer(self) -> Ed25519PrivateKey:
        """The key, parsed once (measured: each signature parsed it, and derived its public key,
        anew)."""
        return Ed25519PrivateKey.from_private_bytes(self.private_key)

    @functools.cached_property
    def public_key(self) -> bytes:
        return self.signer.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @functools.cached_property
    def _key_hash(self) -> bytes:
        return key_hash(self.name, self.public_key)

    def verifier(self) -> str:
        return (
            f"{self.name}+{key_hash(self.name, self.public_key).hex()}+"
            f"{base64.b64encode(ED25519 + self.public_key).decode()}"
        )


def sign_note(body: bytes, key: NoteKey) -> str:
    """A signed note: ``body`` (UTF-8 text ending in a newline), an empty line, one signature."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedMessage("a note body is UTF-8 text") from None
    if not text.endswith("\n") or "\n\n" in text:
        raise MalformedMessage("a note body ends with a newline and has no empty line")
    signature = key.signer.sign(body)
    blob = base64.b64encode(key._key_hash + signature).decode()
    return f"{text}\n{DASH}{key.name} {blob}\n"


def sign_checkpoint(checkpoint: Checkpoint, key: NoteKey) -> str:
    return sign_note(checkpoint.body(), key)


@functools.lru_cache(maxsize=64)
def _verifier(vkey: str) -> tuple[str, bytes]:
    """:func:`parse_verifier`, once per key text (a service checks notes of a few keys)."""
    return parse_verifier(vkey)


def parse_verifier(vkey: str) -> tuple[str, bytes]:
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise MalformedMessage("a verifier key has the form name+keyhash+base64key")
    name, hash_hex, encoded = parts
    _check_name(name)
    try:
        raw = base64.b64decode(encoded, validate=True)
        expected = bytes.fromhex(hash_hex)
    except (binascii.Error, ValueError):
        raise MalformedMessage("the verifier key is not valid base64/hex") from None
    if len(raw) != 33 or raw[:1] != ED25519:
        raise MalformedMessage("the verifier key is not an Ed25519 key")
    if key_hash(name, raw[1:]) != expected:
        raise MalformedMessage("the verifier key's hash does not match its name and key")
    return name, raw[1:]


def _parse_body(body: str) -> Checkpoint:
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise MalformedMessage("a checkpoint has an origin, a size and a root hash line")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not origin:
        raise MalformedMessage("the checkpoint's origin is empty")
    if not size_text.isdigit() or (size_text.startswith("0") and size_text != "0"):
        raise MalformedMessage(f"the checkpoint size '{size_text[:20]}' is not a number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise MalformedMessage("the checkpoint's root hash is not base64") from None
    if len(root) != 32:
        raise MalformedMessage(f"the checkpoint's root hash has {len(root)} bytes, not 32")
    return Checkpoint(origin, int(size_text), root)


def _split(note: str) -> tuple[str, list[str]]:
    if not note.endswith("\n"):
        raise MalformedMessage("a signed note ends with a newline")
    separator = note.rfind("\n\n")
    if separator < 0:
        raise MalformedMessage("a signed note has an empty line before its signatures")
    signatures = note[separator + 2 :].split("\n")[:-1]
    if not signatures:
        raise MalformedMessage("the note carries no signature")
    return note[: separator + 1], signatures


class VerifiedSignatures:
    """The Ed25519 signatures of signed notes this process found valid, by the exact bytes checked.

    A node verifies the coordinator's signature on a checkpoint when it is asked to cosign it,
    and again, milliseconds later, when a question comes with that same checkpoint (now with
    cosignature lines added, which are checked on their own). The second is the same
    verification of the same signature over the same body under the same key: Ed25519's verify
    is a pure function of those three, so its answer is remembered, keyed by the SHA-256 of all
    three (any other byte is another key, checked in full). Only a valid signature is kept; an
    invalid one is verified (and refused) every time. Bounded: the least recently used are
    forgotten first.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.hits = 0  # for tests and measurements: verifications answered from memory
        self._lock = threading.Lock()
        self._valid: OrderedDict[bytes, None] = OrderedDict()

    def verify(self, public: bytes, signature: bytes, body: bytes) -> None:
        """Raise :class:`InvalidSignature` unless ``signature`` is ``public``'s over ``body``."""
        key = hashlib.sha256(
            len(public).to_bytes(2, "big") + public + len(signature).to_bytes(2, "big") + signature
        )
        key.update(body)
        digest = key.digest()
        with self._lock:
            if digest in self._valid:
                self._valid.move_to_end(digest)
                self.hits += 1
                return
        _public_key(public).verify(signature, body)
        with self._lock:
            self._valid[digest] = None
            while len(self._valid) > self.size:
                self._valid.popitem(last=False)


@functools.lru_cache(maxsize=64)
def _public_key(public: bytes) -> Ed25519PublicKey:
    """The verifier's key, parsed once (a service verifies under the same few keys)."""
    return Ed25519PublicKey.from_public_bytes(public)


def open_note(note: str, verifier: str, verified: VerifiedSignatures | None = None) -> str:
    """Verify a signed note against ``verifier``; return its body (ending in a newline).

    Signatures by other keys are ignored; a note without a valid signature by ``verifier`` is a
    :class:`VerificationError`, a note that is not in the signed-note format a
    :class:`MalformedMessage`. With ``verified``, a signature that process memory already found
    valid over this very body is not verified again (:class:`VerifiedSignatures`).
    """
    name, public = _verifier(verifier)
    body, signatures = _split(note)
    wanted = key_hash(name, public)
    found = False
    for line in signatures:
        if not line.startswith(DASH):
            raise MalformedMessage("a signature line starts with an em dash and a space")
        try:
            signer, blob = line[len(DASH) :].split(" ")
            raw = base64.b64decode(blob, validate=True)
        except (ValueError, binascii.Error):
            raise MalformedMessage("a signature line is malformed") from None
        if signer != name or raw[:4] != wanted:
            continue  # a signature by another key: ignored
        found = True
        try:
            if verified is None:
                _public_key(public).verify(raw[4:], body.encode())
            else:
                verified.verify(public, raw[4:], body.encode())
        except InvalidSignature:
            raise VerificationError(
                f"the note's signature by '{name}' does not verify (altered or forged)"
            ) from None
    if not found:
        raise VerificationError(f"the note carries no signature by the key '{name}'")
    return body


def open_checkpoint(
    note: str,
    verifier: str,
    origin: str | None = None,
    verified: VerifiedSignatures | None = None,
) -> Checkpoint:
    """Verify a signed note against ``verifier`` and return its checkpoint (``verified``: see
    :func:`open_note`)."""
    checkpoint = _parse_body(_split(note)[0])  # a malformed note is malformed, whoever signed it
    open_note(note, verifier, verified)
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(
            f"the checkpoint is for log '{checkpoint.origin}', expected '{origin}'"
        )
    return checkpoint
