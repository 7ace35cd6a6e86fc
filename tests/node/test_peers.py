"""Nodes compare their witnessed checkpoints directly: one history is consistent, two are an alarm
naming both signed checkpoints (docs/adr/0024, section 10)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from betrokken.audit.witness import WitnessStore
from betrokken.crypto import merkle
from betrokken.crypto.note import Checkpoint, NoteKey, sign_checkpoint
from betrokken.errors import Unavailable
from betrokken.node.witness import compare_with_peer
from tests.witnessing import LOG, ORIGIN, leaves, signed, witness_state

REAL = leaves(10)
FORK = [*REAL[:4], merkle.leaf_hash(b"only for this node"), *REAL[4:9]]
note = signed


@dataclass
class Peer:
    latest: str
    same: str = ""
    down: bool = False

    def witnessed(self, size: int) -> tuple[str, str]:
        if self.down:
            raise Unavailable("the node of peer cannot be reached")
        return self.latest, self.same


@dataclass
class Coordinator:
    leaves: list[bytes]

    def consistency(self, old: int, new: int) -> list[bytes]:
        return merkle.consistency_proof(self.leaves[:new], old)

    def checkpoint(self) -> str:
        return note(self.leaves)[1]

    def consistency_many(self, old_sizes: list[int], new_size: int) -> list[list[bytes]]:
        return [self.consistency(o, new_size) for o in old_sizes]


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[WitnessStore]:
    with witness_state(tmp_path) as store:
        yield store


def _accept(witness: WitnessStore, leaves: list[bytes]) -> str:
    checkpoint, signed = note(leaves)
    witness.accept(checkpoint, signed)
    return signed


def test_one_history_is_consistent_whatever_the_sizes(witness: WitnessStore) -> None:
    _accept(witness, REAL[:6])
    for peer in (Peer(note(REAL[:6])[1]), Peer(note(REAL)[1]), Peer(note(REAL[:3])[1])):
        result = compare_with_peer(
            witness, "gemeente", peer, Coordinator(REAL), LOG.verifier(), ORIGIN
        )
        assert result.outcome == "consistent", result
    assert witness.alarms() == []
    [(peer, _, own, theirs, outcome)] = witness.comparisons()
    assert (peer, own, theirs, outcome) == ("gemeente", 6, 3, "consistent")


def test_the_same_size_with_another_root_is_a_fork_without_asking_the_coordinator(
    witness: WitnessStore,
) -> None:
    _accept(witness, FORK[:8])
    theirs = note(REAL[:8])[1]
    result = compare_with_peer(
        witness,
        "gemeente",
        Peer(note(REAL)[1], same=theirs),
        None,
        LOG.verifier(),
        ORIGIN,  # type: ignore[arg-type]
    )
    assert result.outcome == "fork"
    [alarm] = witness.alarms()
    assert alarm.kind == "peer-fork" and "gemeente" in alarm.message


def test_two_sizes_the_coordinator_cannot_prove_consistent_are_a_fork(
    witness: WitnessStore,
) -> None:
    _accept(witness, FORK)  # 10 records, the fork at 4
    # Whatever proof the coordinator gives (here: its own log's), it cannot make them one.
    result = compare_with_peer(
        witness, "zvh", Peer(note(REAL[:7])[1]), Coordinator(FORK), LOG.verifier(), ORIGIN
    )
    assert result.outcome == "fork"
    assert [a.kind for a in witness.alarms()] == ["peer-fork"]


def test_a_peer_that_cannot_be_reached_or_sends_junk_is_not_an_alarm(
    witness: WitnessStore,
) -> None:
    _accept(witness, REAL[:6])
    down = compare_with_peer(
        witness, "a", Peer("", down=True), Coordinator(REAL), LOG.verifier(), ORIGIN
    )
    assert down.outcome.startswith("not compared: the node of peer cannot be reached")
    forged = sign_checkpoint(Checkpoint(ORIGIN, 6, bytes(32)), NoteKey.generate(ORIGIN))
    junk = compare_with_peer(witness, "b", Peer(forged), Coordinator(REAL), LOG.verifier(), ORIGIN)
    assert junk.outcome == "not compared: its checkpoint is not the coordinator's"
    assert witness.alarms() == []
