"""Checkpoints as C2SP signed notes with Ed25519."""

from __future__ import annotations

import base64
import hashlib

import pytest

from betrokken.crypto import note as note_module
from betrokken.crypto.note import (
    Checkpoint,
    NoteKey,
    VerifiedSignatures,
    key_hash,
    open_checkpoint,
    sign_checkpoint,
    sign_note,
)
from betrokken.errors import MalformedMessage, VerificationError
from tests.crypto.counted import Counted, count_checks

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


# --- a signature verified once per process (docs/adr/0046) ----------------------------------------
@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[Counted]:
    return count_checks(monkeypatch, note_module, "_public_key")


def _with_line(note: str, key: NoteKey) -> str:
    """``note`` with one more signature line, by ``key`` (a cosignature, say)."""
    extra = sign_note(note[: note.rfind("\n\n") + 1].encode(), key)
    return note + extra[extra.rfind("\n\n") + 2 :]


def test_a_signature_found_valid_is_not_verified_again_with_other_lines_beside_it(
    counted: type[Counted],
) -> None:
    """A node cosigns a checkpoint, then gets it back with the round's cosignature lines: the
    log's signature on it is the same bytes, so it is answered from memory."""
    memo = VerifiedSignatures()
    note = sign_checkpoint(CHECKPOINT, KEY)
    assert open_checkpoint(note, KEY.verifier(), ORIGIN, memo) == CHECKPOINT
    assert counted.checks == 1 and memo.hits == 0
    cosigned = _with_line(note, NoteKey.generate("betrokken/test/witness"))
    assert open_checkpoint(cosigned, KEY.verifier(), ORIGIN, memo) == CHECKPOINT
    assert counted.checks == 1 and memo.hits == 1
    # Without the memory every call verifies.
    open_checkpoint(cosigned, KEY.verifier(), ORIGIN)
    assert counted.checks == 2


def test_a_forged_signature_or_an_altered_body_is_refused_every_time(
    counted: type[Counted],
) -> None:
    memo = VerifiedSignatures()
    note = sign_checkpoint(CHECKPOINT, KEY)
    open_checkpoint(note, KEY.verifier(), ORIGIN, memo)
    body, line = note.split("\n\n")
    raw = bytearray(base64.b64decode(line.split(" ")[-1]))
    raw[-1] ^= 1
    forged = f"{body}\n\n{line.rsplit(' ', 1)[0]} {base64.b64encode(bytes(raw)).decode()}\n"
    altered = note.replace("\n5\n", "\n6\n")
    for _ in range(2):
        for bad in (forged, altered):
            with pytest.raises(VerificationError):
                open_checkpoint(bad, KEY.verifier(), ORIGIN, memo)
    assert memo.hits == 0 and counted.checks == 5  # the genuine one once, each bad one twice


def test_another_key_or_a_forgotten_signature_is_verified_again(counted: type[Counted]) -> None:
    memo = VerifiedSignatures(size=2)
    other = NoteKey.generate(ORIGIN)  # the same name, another key
    notes = [sign_checkpoint(Checkpoint(ORIGIN, size, CHECKPOINT.root), KEY) for size in (1, 2, 3)]
    both = _with_line(notes[0], other)
    open_checkpoint(both, KEY.verifier(), ORIGIN, memo)
    open_checkpoint(both, other.verifier(), ORIGIN, memo)  # another key's line: checked
    assert memo.hits == 0 and counted.checks == 2
    open_checkpoint(notes[1], KEY.verifier(), ORIGIN, memo)  # notes[0] under KEY is forgotten
    open_checkpoint(notes[0], KEY.verifier(), ORIGIN, memo)
    assert memo.hits == 0 and counted.checks == 4
    open_checkpoint(notes[0], KEY.verifier(), ORIGIN, memo)
    assert memo.hits == 1 and counted.checks == 4
