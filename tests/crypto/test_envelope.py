"""Sealed envelopes and replies: RFC 9180 vectors, binding to a context, padding."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hypothesis import given
from hypothesis import strategies as st

from betrokken.crypto import envelope as env
from betrokken.errors import MalformedMessage, VerificationError

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "rfc9180-hpke-base.json").read_text()
)["vectors"]


def _schedule(vector: dict[str, object]) -> tuple[bytes, bytes]:
    """RFC 9180 section 5.1 KeySchedule (mode_base, HKDF-SHA256): the key and base nonce."""
    suite_id = (
        b"HPKE"
        + int(vector["kem_id"]).to_bytes(2, "big")  # type: ignore[call-overload]
        + int(vector["kdf_id"]).to_bytes(2, "big")  # type: ignore[call-overload]
        + int(vector["aead_id"]).to_bytes(2, "big")  # type: ignore[call-overload]
    )

    def extract(salt: bytes, label: bytes, ikm: bytes) -> bytes:
        mac = hmac.HMAC(salt or bytes(32), hashes.SHA256())
        mac.update(b"HPKE-v1" + suite_id + label + ikm)
        return mac.finalize()

    def expand(prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
        labeled = length.to_bytes(2, "big") + b"HPKE-v1" + suite_id + label + info
        return HKDFExpand(hashes.SHA256(), length, labeled).derive(prk)

    info = bytes.fromhex(str(vector["info"]))
    context = b"\x00" + extract(b"", b"psk_id_hash", b"") + extract(b"", b"info_hash", info)
    secret = extract(bytes.fromhex(str(vector["shared_secret"])), b"secret", b"")
    return expand(secret, b"key", context, 32), expand(secret, b"base_nonce", context, 12)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"kem{v['kem_id']}")
def test_rfc9180_vectors_reproduce_byte_for_byte(vector: dict[str, object]) -> None:
    key, base_nonce = _schedule(vector)
    assert key.hex() == vector["key"] and base_nonce.hex() == vector["base_nonce"]
    aead = ChaCha20Poly1305(key)
    for seq, encryption in enumerate(vector["encryptions"]):  # type: ignore[arg-type]
        nonce = (int.from_bytes(base_nonce, "big") ^ seq).to_bytes(12, "big")
        assert encryption["nonce"] == nonce.hex()
        sealed = aead.encrypt(
            nonce, bytes.fromhex(encryption["pt"]), bytes.fromhex(encryption["aad"])
        )
        assert sealed.hex() == encryption["ct"]


def test_the_chosen_suite_opens_the_draft_vector_with_our_seed_expansion() -> None:
    """MLKEM768-X25519 (0x647A) / HKDF-SHA256 / ChaCha20-Poly1305: the seed expands to the
    vector's public key, and the library's decapsulation gives the vector's key schedule."""
    vector = next(v for v in VECTORS if v["kem_id"] == 0x647A)
    key = env.EnvelopeKey(bytes.fromhex(vector["skRm"]))
    assert key.public_bytes().hex() == vector["pkRm"]
    schedule_key, base_nonce = _schedule(vector)
    plaintext = b"a sealed envelope"
    sealed = bytes.fromhex(vector["enc"]) + ChaCha20Poly1305(schedule_key).encrypt(
        base_nonce, plaintext, b""
    )
    assert env.open_sealed(key, bytes.fromhex(vector["info"]), sealed) == plaintext


def test_the_library_matches_the_rfc_for_the_classic_suite_too() -> None:
    vector = next(v for v in VECTORS if v["kem_id"] == 0x0020)
    private = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(vector["skRm"]))
    key, base_nonce = _schedule(vector)
    sealed = bytes.fromhex(vector["enc"]) + ChaCha20Poly1305(key).encrypt(base_nonce, b"pt", b"")
    suite = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
    assert suite.decrypt(sealed, private, info=bytes.fromhex(vector["info"])) == b"pt"


KEY = env.EnvelopeKey(hashlib.sha256(b"node").digest())


def test_an_envelope_opens_only_with_its_node_key_and_context() -> None:
    sealed = env.seal(KEY.public_bytes(), b"context A", b"content")
    assert len(sealed) == env.sealed_size(len(b"content"))
    assert env.open_sealed(KEY, b"context A", sealed) == b"content"
    with pytest.raises(VerificationError):
        env.open_sealed(KEY, b"context B", sealed)  # moved to another question or node
    with pytest.raises(VerificationError):
        env.open_sealed(env.EnvelopeKey.generate(), b"context A", sealed)  # another node
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(VerificationError):
        env.open_sealed(KEY, b"context A", altered)
    with pytest.raises(MalformedMessage):
        env.open_sealed(KEY, b"context A", b"short")


def test_a_pinned_public_key_is_checked() -> None:
    with pytest.raises(MalformedMessage):
        env.public_key(b"\x00" * 10)
    with pytest.raises(MalformedMessage):
        env.public_key(b"\xff" * env.PUBLIC_KEY_SIZE)  # not a valid ML-KEM-768 key
    assert env.public_key(KEY.public_bytes()) is not None
    assert "seed" not in repr(KEY) or KEY.seed.hex() not in repr(KEY)


def test_a_reply_opens_only_with_its_key_and_associated_data() -> None:
    key = env.new_reply_key()
    sealed = env.seal_reply(key, b"answer-1|politie", b"answers")
    assert len(sealed) == env.reply_size(len(b"answers"))
    assert env.open_reply(key, b"answer-1|politie", sealed) == b"answers"
    with pytest.raises(VerificationError):
        env.open_reply(key, b"answer-1|gemeente", sealed)  # relabelled by the coordinator
    with pytest.raises(VerificationError):
        env.open_reply(env.new_reply_key(), b"answer-1|politie", sealed)  # forged
    with pytest.raises(ValueError):
        env.seal_reply(b"short", b"", b"x")


@given(st.binary(min_size=0, max_size=200).filter(lambda b: not b.endswith(b"\x00")))
def test_padding_hides_the_length_and_round_trips(data: bytes) -> None:
    padded = env.pad(data, 256)
    assert len(padded) == 256 and env.unpad(padded) == data


def test_padding_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError):
        env.pad(b"x" * 10, 9)
    with pytest.raises(ValueError):
        env.pad(b"x\x00", 9)


def test_sealing_to_pinned_bytes_refuses_a_bad_key_every_time_and_follows_a_rotated_one() -> None:
    """Sealing to pinned bytes loads each key once per process; a bad key is refused on every
    seal (a failure is never remembered), and a rotated key is another key: an envelope sealed
    to it opens with the new node key only."""
    for _ in range(2):
        with pytest.raises(MalformedMessage):
            env.seal(b"\xff" * env.PUBLIC_KEY_SIZE, b"info", b"plain")
    old, new = env.EnvelopeKey.generate(), env.EnvelopeKey.generate()
    to_old = env.seal(old.public_bytes(), b"info", b"for the old key")
    to_new = env.seal(new.public_bytes(), b"info", b"for the new key")
    assert env.open_sealed(old, b"info", to_old) == b"for the old key"
    assert env.open_sealed(new, b"info", to_new) == b"for the new key"
    with pytest.raises(VerificationError):
        env.open_sealed(old, b"info", to_new)
    with pytest.raises(VerificationError):
        env.open_sealed(new, b"info", to_old)
