"""A witness cosigns a checkpoint only as a consistent extension of what it accepted; a checkpoint
is trusted only with a quorum of other witnesses' cosignatures (docs/adr/0024, section 10)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from betrokken.audit.witness import WitnessStore, check_cosigned
from betrokken.crypto import merkle
from betrokken.crypto.cosignature import (
    Cosigner,
    add_cosignatures,
    cosign,
    note_body,
    verify_cosignatures,
)
from betrokken.crypto.note import NoteKey
from betrokken.errors import QuestionRefused, WitnessStale
from tests.witnessing import leaves, signed, witness_state

LEAVES = leaves(12)
FORKED = [*LEAVES[:5], merkle.leaf_hash(b"the secret question"), *LEAVES[5:11]]


@pytest.fixture(params=[False, True], ids=["database", "in-memory"])
def witness(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[WitnessStore]:
    """The witness state as a tool reads it, and as a running node keeps it (docs/adr/0032)."""
    with witness_state(tmp_path, in_memory=request.param) as store:
        yield store


def _cosign(witness: WitnessStore, leaves: list[bytes], old: int) -> str:
    checkpoint, note = signed(leaves)
    proof = merkle.consistency_proof(leaves, old) if 0 < old < len(leaves) else []
    assert witness.trail.signer is not None
    return witness.cosign(checkpoint, note, old, proof, witness.trail.signer, now=1_700_000_000)


def test_a_witness_cosigns_consistent_extensions_and_keeps_each(witness: WitnessStore) -> None:
    line = _cosign(witness, LEAVES[:4], 0)  # nothing accepted before: on first use
    assert witness.last() is not None and witness.last().size == 4  # type: ignore[union-attr]
    me = Cosigner.from_verifier(witness.trail.signer.verifier())  # type: ignore[union-attr]
    found = verify_cosignatures(add_cosignatures(signed(LEAVES[:4])[1], [line]), {"me": me})
    assert found["me"].timestamp == 1_700_000_000
    _cosign(witness, LEAVES[:9], 4)
    assert witness.last().size == 9  # type: ignore[union-attr]
    _cosign(witness, LEAVES[:9], 9)  # the same checkpoint again: fine
    assert witness.alarms() == []


def test_a_witness_never_cosigns_another_history_and_keeps_the_attempt(
    witness: WitnessStore,
) -> None:
    _cosign(witness, LEAVES[:9], 0)
    with pytest.raises(QuestionRefused) as refused:
        _cosign(witness, FORKED, 9)  # a fork at 5: no proof from 9 can hold
    assert refused.value.kind == "cosign-fork"
    with pytest.raises(QuestionRefused):  # the same size with another root
        _cosign(witness, FORKED[:9], 9)
    assert witness.last().size == 9  # type: ignore[union-attr]
    assert [a.kind for a in witness.alarms()] == ["cosign-fork", "cosign-fork"]


def test_another_size_or_an_older_checkpoint_is_stale_not_an_alarm(
    witness: WitnessStore,
) -> None:
    _cosign(witness, LEAVES[:9], 0)
    with pytest.raises(WitnessStale) as stale:
        _cosign(witness, LEAVES[:11], 4)
    assert stale.value.witnessed_size == 9
    with pytest.raises(WitnessStale):
        _cosign(witness, LEAVES[:6], 9)  # older than what it cosigned
    assert witness.alarms() == []


def test_a_checkpoint_needs_a_quorum_of_other_witnesses() -> None:
    keys = {org: NoteKey.generate(f"betrokken/test/{org}") for org in ("a", "b", "c", "d")}
    cosigners = {org: Cosigner.from_verifier(k.verifier()) for org, k in keys.items()}
    _, note = signed(LEAVES)
    lines = [cosign(note_body(note), keys[org], 1) for org in ("a", "b")]
    cosigned = add_cosignatures(note, lines)
    assert check_cosigned(cosigned, 12, cosigners, 2, "c") == ["a", "b"]
    # A witness's own cosignature does not count for itself.
    with pytest.raises(
        QuestionRefused, match=r"\(b\); 2 are needed .*not cosigned by: c, d"
    ) as refused:
        check_cosigned(cosigned, 12, cosigners, 2, "a")
    assert refused.value.kind == "no-quorum"
    with pytest.raises(QuestionRefused, match="0 valid cosignature"):
        check_cosigned(note, 12, cosigners, 1, None)


def test_a_checkpoint_trusted_once_does_not_lend_its_trust_to_other_cosignatures_on_it() -> None:
    """The coordinator's move against the memory of verified checkpoints (docs/adr/0043): the
    checkpoint a party trusted, sent again with made-up cosignatures in place of the real ones."""
    keys = {org: NoteKey.generate(f"betrokken/test/{org}") for org in ("a", "b", "c")}
    cosigners = {org: Cosigner.from_verifier(k.verifier()) for org, k in keys.items()}
    _, note = signed(LEAVES)
    cosigned = add_cosignatures(note, [cosign(note_body(note), keys[o], 1) for o in ("a", "b")])
    assert check_cosigned(cosigned, 12, cosigners, 2, "c") == ["a", "b"]
    wrong = []  # the witnesses' names, key ids and times; signatures of no one
    for o in ("a", "b"):
        name, blob = cosign(note_body(note), keys[o], 1).rstrip("\n").rsplit(" ", 1)
        raw = bytearray(base64.b64decode(blob))
        raw[-1] ^= 1
        wrong.append(f"{name} {base64.b64encode(bytes(raw)).decode()}\n")
    forged = add_cosignatures(note, wrong)
    assert note_body(forged) == note_body(cosigned) and forged != cosigned
    with pytest.raises(QuestionRefused, match="0 valid cosignature") as refused:
        check_cosigned(forged, 12, cosigners, 2, "c")
    assert refused.value.kind == "no-quorum"
    assert check_cosigned(cosigned, 12, cosigners, 2, "c") == ["a", "b"]
