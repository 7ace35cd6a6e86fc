"""C2SP tlog-cosignature/v1 (Ed25519): the key ID, the signed message, the line's layout; a
checkpoint's cosignatures checked once per exact note (docs/adr/0043)."""

from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from betrokken.crypto import cosignature
from betrokken.crypto.cosignature import (
    Cosigner,
    VerifiedCheckpoints,
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
from tests.crypto.counted import Counted, count_checks

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


# --- checked once per checkpoint (docs/adr/0043) --------------------------------------------------
@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[Counted]:
    return count_checks(monkeypatch, cosignature, "_public")


def _cosigned(checkpoint: Checkpoint, times: dict[str, int]) -> str:
    note = sign_checkpoint(checkpoint, LOG)
    return add_cosignatures(
        note, [cosign(note_body(note), WITNESSES[w], at) for w, at in times.items()]
    )


def _forged(note: str, witness: str) -> str:
    """``note`` with ``witness``'s cosignature line replaced by one whose signature is wrong."""
    lines = note.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(f"\u2014 {WITNESSES[witness].name} "):
            raw = bytearray(base64.b64decode(line.split(" ")[-1]))
            raw[-1] ^= 1
            lines[i] = f"\u2014 {WITNESSES[witness].name} {base64.b64encode(bytes(raw)).decode()}"
    return "\n".join(lines)


def test_a_checkpoint_verified_once_costs_no_signature_check_the_second_time(
    counted: type[Counted],
) -> None:
    memo = VerifiedCheckpoints()
    note = _cosigned(CHECKPOINT, {"a": 1, "b": 2, "c": 3})
    assert sorted(memo.verify(note, COSIGNERS, not_after=100, enough=2)) == ["a", "b"]
    assert counted.checks == 2 and memo.hits == 0
    assert sorted(memo.verify(note, COSIGNERS, not_after=200, enough=2)) == ["a", "b"]
    assert counted.checks == 2 and memo.hits == 1


def test_a_forged_cosignature_over_a_verified_checkpoints_size_is_checked_and_not_counted(
    counted: type[Counted],
) -> None:
    """The coordinator's move: reuse a checkpoint a node verified (same size, same root, the
    log's own signature) with a cosignature line it made up. Another note, so a full check."""
    memo = VerifiedCheckpoints()
    note = _cosigned(CHECKPOINT, {"a": 1, "b": 2})
    assert sorted(memo.verify(note, COSIGNERS, enough=2)) == ["a", "b"]
    forged = _forged(note, "b")
    assert note_body(forged) == note_body(note) and forged != note
    assert sorted(memo.verify(forged, COSIGNERS, enough=2)) == ["a"]
    assert counted.checks == 4 and memo.hits == 0
    # The genuine note is still known as it was; the forged one, asked again, as it was found.
    assert sorted(memo.verify(note, COSIGNERS, enough=2)) == ["a", "b"]
    assert sorted(memo.verify(forged, COSIGNERS, enough=2)) == ["a"]
    assert counted.checks == 4 and memo.hits == 2


@pytest.mark.parametrize(
    ("first", "then", "hit"),
    [
        # (not_after, enough) of the first check, then of the second; whether it is a hit
        ((None, None), (None, None), True),
        ((None, None), (15, None), True),  # every line was read: a tighter bound filters
        ((15, None), (15, None), True),
        ((15, None), (10, None), True),
        ((15, None), (None, None), False),  # the first skipped c (time 30): not known valid
        ((15, None), (40, None), False),
        ((40, 1), (40, 1), True),
        ((40, 1), (40, 2), False),  # it stopped after one: the second is not known yet
        ((40, 3), (40, 2), True),
        ((40, 3), (15, 3), False),  # c is too late now: only two of the three in time
        ((15, 3), (10, None), True),  # it read every line (fewer than enough were in time)
    ],
)
def test_a_check_from_memory_answers_as_the_full_check_would(
    counted: type[Counted],
    first: tuple[int | None, int | None],
    then: tuple[int | None, int | None],
    hit: bool,
) -> None:
    memo = VerifiedCheckpoints()
    note = _cosigned(CHECKPOINT, {"a": 5, "b": 10, "c": 30})
    memo.verify(note, COSIGNERS, *first)
    found = memo.verify(note, COSIGNERS, *then)
    assert memo.hits == (1 if hit else 0)
    full = verify_cosignatures(note, COSIGNERS, *then)
    if then[1] is None:
        assert found.keys() == full.keys()
    else:  # at least as many as asked for, each valid and in time
        assert full.keys() <= found.keys() <= verify_cosignatures(note, COSIGNERS, then[0]).keys()
    assert all(found[w].line == full[w].line for w in full)


def test_other_cosigners_or_a_forgotten_note_are_checked_again(counted: type[Counted]) -> None:
    memo = VerifiedCheckpoints(size=2)
    notes = [_cosigned(Checkpoint(LOG.name, size, CHECKPOINT.root), {"a": 1}) for size in (1, 2, 3)]
    memo.verify(notes[0], COSIGNERS)
    memo.verify(notes[0], {"a": COSIGNERS["b"]})  # the network file names another key for a
    memo.verify(notes[0], COSIGNERS)
    assert memo.hits == 1
    memo.verify(notes[1], COSIGNERS)
    memo.verify(notes[2], COSIGNERS)  # the oldest, notes[0], is forgotten
    memo.verify(notes[0], COSIGNERS)
    assert (
        memo.hits == 1 and counted.checks == 4
    )  # notes[0] twice, 1 and 2 once (b's key never matches a's line)
