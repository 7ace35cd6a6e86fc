"""C2SP tlog-cosignature/v1 (Ed25519): the key ID, the signed message, the line's layout."""

from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from betrokken.crypto.cosignature import (
    Cosigner,
    add_cosignatures,
    cosign,
    cosignature_timestamp,
    cosigner_key_id,
    note_body,
    signed_message,
    verify_cosignatures,
)
from betrokken.crypto.note import Checkpoint, NoteKey, open_checkpoint, sign_checkpoint
from betrokken.errors import MalformedMessage

LOG = NoteKey.generate("betrokken/test/coordinator")
CHECKPOINT = Checkpoint(LOG.name, 20852163, bytes(range(32)))
WITNESSES = {org: NoteKey.generate(f"betrokken/test/{org}") for org in ("a", "b", "c")}
COSIGNERS = {org: Cosigner.from_verifier(key.verifier()) for org, key in WITNESSES.items()}


def test_the_key_id_matches_a_published_cosigner_key() -> None:
    """The vkey of a public witness (type 0x04), as Go's transparency-dev/formats tests it."""
    vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    name, key_hash, encoded = vkey.split("+", 2)
    raw = base64.b64decode(encoded)
    assert raw[:1] == b"\x04"
    assert cosigner_key_id(name, raw[1:]).hex() == key_hash
    assert Cosigner(name, raw[1:]).vkey() == f"{name}+{key_hash}+{encoded}"


def test_the_timestamp_of_a_published_cosignature() -> None:
    line = (
        "\u2014 w ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gx"
        "EHWWOworDcFiEBYJXORmnFBOBA=="
    )
    assert cosignature_timestamp(line) == 1727964367
    with pytest.raises(MalformedMessage):  # an ordinary note signature is 4 + 64 bytes
        cosignature_timestamp("\u2014 w " + base64.b64encode(bytes(68)).decode())


def test_the_line_and_the_signed_message_follow_the_specification() -> None:
    key = WITNESSES["a"]
    body = CHECKPOINT.body()
    line = cosign(body, key, 1679315147)
    assert line.startswith(f"\u2014 {key.name} ") and line.endswith("\n")
    raw = base64.b64decode(line.rstrip("\n").split(" ")[-1])
    assert raw[:4] == cosigner_key_id(key.name, key.public_key)
    assert struct.unpack(">Q", raw[4:12]) == (1679315147,)
    message = signed_message(body, 1679315147)
    assert message == (
        b"cosignature/v1\ntime 1679315147\nbetrokken/test/coordinator\n20852163\n"
        + base64.b64encode(bytes(range(32)))
        + b"\n"
    )
    Ed25519PublicKey.from_public_bytes(key.public_key).verify(raw[12:], message)


def test_cosignatures_on_a_note_are_verified_per_witness() -> None:
    note = sign_checkpoint(CHECKPOINT, LOG)
    body = note_body(note)
    cosigned = add_cosignatures(
        note, [cosign(body, WITNESSES[w], 1000 + i) for i, w in enumerate("ab")]
    )
    # The log's own signature still verifies, and the cosignature lines are ignored by it.
    assert open_checkpoint(cosigned, LOG.verifier(), LOG.name) == CHECKPOINT
    found = verify_cosignatures(cosigned, COSIGNERS)
    assert sorted(found) == ["a", "b"] and found["b"].timestamp == 1001
    # Adding the same line again adds nothing.
    assert add_cosignatures(cosigned, [found["a"].line]) == cosigned


def test_a_cosignature_does_not_carry_over_to_another_checkpoint() -> None:
    note = sign_checkpoint(CHECKPOINT, LOG)
    line = cosign(note_body(note), WITNESSES["a"], 5)
    other = sign_checkpoint(Checkpoint(LOG.name, CHECKPOINT.size + 1, CHECKPOINT.root), LOG)
    assert verify_cosignatures(add_cosignatures(other, [line]), COSIGNERS) == {}


def test_forged_unknown_future_and_plain_signatures_are_not_counted() -> None:
    note = sign_checkpoint(CHECKPOINT, LOG)
    body = note_body(note)
    good = cosign(body, WITNESSES["a"], 10)
    raw = bytearray(base64.b64decode(good.rstrip("\n").split(" ")[-1]))
    raw[-1] ^= 1
    forged = f"\u2014 {WITNESSES['a'].name} {base64.b64encode(bytes(raw)).decode()}\n"
    stranger = cosign(body, NoteKey.generate("betrokken/test/stranger"), 10)
    future = cosign(body, WITNESSES["b"], 2_000)
    # A plain note signature by a witness's key (type 0x01) is not a cosignature.
    plain = sign_checkpoint(CHECKPOINT, WITNESSES["c"]).split("\n\n", 1)[1]
    cosigned = add_cosignatures(note, [forged, stranger, future, plain])
    assert verify_cosignatures(cosigned, COSIGNERS, not_after=1_000) == {}
    assert list(verify_cosignatures(cosigned, COSIGNERS)) == ["b"]


def test_a_malformed_line_is_an_error() -> None:
    note = sign_checkpoint(CHECKPOINT, LOG) + "not a signature line\n"
    with pytest.raises(MalformedMessage):
        verify_cosignatures(note, COSIGNERS)
