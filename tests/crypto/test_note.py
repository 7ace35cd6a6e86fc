"""Checkpoints as C2SP signed notes with Ed25519."""

from __future__ import annotations

import base64
import hashlib

import pytest

from betrokken.crypto.note import Checkpoint, NoteKey, key_hash, open_checkpoint, sign_checkpoint
from betrokken.errors import MalformedMessage, VerificationError

ORIGIN = "betrokken/test/coordinator"
KEY = NoteKey.generate(ORIGIN)
CHECKPOINT = Checkpoint(ORIGIN, 5, bytes(range(32)))


def test_round_trip_and_format() -> None:
    note = sign_checkpoint(CHECKPOINT, KEY)
    body, signatures = note.split("\n\n")
    assert body + "\n" == f"{ORIGIN}\n5\n{base64.b64encode(bytes(range(32))).decode()}\n"
    assert signatures.startswith(f"\u2014 {ORIGIN} ")
    assert open_checkpoint(note, KEY.verifier(), ORIGIN) == CHECKPOINT
    assert "private_key" not in repr(KEY) or KEY.private_key.hex() not in repr(KEY)


def test_key_hash_and_verifier() -> None:
    expected = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + KEY.public_key).digest()[:4]
    assert key_hash(ORIGIN, KEY.public_key) == expected
    name, hash_hex, encoded = KEY.verifier().split("+", 2)
    assert (name, hash_hex) == (ORIGIN, expected.hex())
    assert base64.b64decode(encoded) == b"\x01" + KEY.public_key


@pytest.mark.parametrize(
    ("old", "new"),
    [("\n5\n", "\n6\n"), (ORIGIN + "\n", ORIGIN + "x\n"), ("AAEC", "AQEC")],
)
def test_tampered_notes_are_rejected(old: str, new: str) -> None:
    note = sign_checkpoint(CHECKPOINT, KEY)
    assert old in note
    with pytest.raises(VerificationError):
        open_checkpoint(note.replace(old, new, 1), KEY.verifier())


def test_a_tampered_signature_is_rejected() -> None:
    note = sign_checkpoint(CHECKPOINT, KEY)
    body, line = note.rsplit("\u2014 ", 1)
    name, blob = line.strip().split(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[10] ^= 1
    forged = f"{body}\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(VerificationError):
        open_checkpoint(forged, KEY.verifier())


def test_another_key_and_extra_signatures() -> None:
    other = NoteKey.generate(ORIGIN)
    note = sign_checkpoint(CHECKPOINT, other)
    with pytest.raises(VerificationError) as info:
        open_checkpoint(note, KEY.verifier())
    assert "no signature" in info.value.message
    extra = NoteKey.generate("witness.example")
    both = sign_checkpoint(CHECKPOINT, KEY) + sign_checkpoint(CHECKPOINT, extra).split("\n\n")[1]
    assert open_checkpoint(both, KEY.verifier()) == CHECKPOINT
    with pytest.raises(VerificationError):
        open_checkpoint(sign_checkpoint(CHECKPOINT, KEY), KEY.verifier(), origin="elsewhere")


@pytest.mark.parametrize(
    "note",
    [
        f"{ORIGIN}\n5\n{base64.b64encode(bytes(32)).decode()}\n",  # no blank line
        f"{ORIGIN}\nfive\n{base64.b64encode(bytes(32)).decode()}\n\n\u2014 a b\n",
        f"{ORIGIN}\n5\n!!!\n\n\u2014 a b\n",
        f"{ORIGIN}\n5\n{base64.b64encode(bytes(31)).decode()}\n\n\u2014 a AAAA\n",
        f"{ORIGIN}\n5\n{base64.b64encode(bytes(32)).decode()}\n\n\u2014 a AAAA",  # no final newline
    ],
)
def test_malformed_notes(note: str) -> None:
    with pytest.raises(MalformedMessage):
        open_checkpoint(note, KEY.verifier())
