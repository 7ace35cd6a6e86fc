"""Cosigning rounds against simulated witnesses: early when enough cosigned, named when too few,
shared by the questions that wait for them (docs/adr/0024, section 10)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import MetaData

from betrokken.app.devnet import DevNetwork
from betrokken.config.schema import Network
from betrokken.coordinator.anchors import NodeAnchors
from betrokken.coordinator.fanout import NodeFailed, NodeUnreachable
from betrokken.coordinator.witnesses import WitnessRounds
from betrokken.crypto import merkle
from betrokken.crypto.cosignature import Cosigner, cosign, note_body, verify_cosignatures
from betrokken.crypto.note import Checkpoint, NoteKey, sign_checkpoint
from betrokken.db import make_engine
from betrokken.errors import WitnessQuorumMissing, WitnessStale
from betrokken.v1 import betrokken_pb2 as pb
from tests.harness import NetKeys


@pytest.fixture
def network(network: Network) -> Network:
    """The test network's four original witnesses: the rounds below count them one by one (the
    second zorg member, there for k-anonymous domains, would be a fifth)."""
    return network.model_copy(
        update={
            "organisations": [o for o in network.organisations if o.id != "veilig-thuis-test"],
            "policies": [p for p in network.policies if p.organisation != "veilig-thuis-test"],
        }
    )


LOG = NoteKey.generate("betrokken/test-network/coordinator")


@dataclass
class Log:
    leaves: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rounds: int = 0

    def append(self) -> int:
        with self.lock:
            self.leaves.append(merkle.leaf_hash(f"record {len(self.leaves)}".encode()))
            return len(self.leaves) - 1

    def latest(self) -> tuple[int, str] | None:
        with self.lock:
            self.rounds += 1
            size = len(self.leaves)
            checkpoint = Checkpoint(LOG.name, size, merkle.root(self.leaves))
        return size, sign_checkpoint(checkpoint, LOG)

    def proof(self, old: int, new: int) -> list[bytes]:
        with self.lock:
            return merkle.consistency_proof(self.leaves[:new], old)


@dataclass
class Witness:
    key: NoteKey
    behaviour: str = "ok"  # ok | down | hang | refuse | forge | stale
    accepted: int = 0
    delay: float = 0.0
    asked: list[tuple[int, int]] = field(default_factory=list)  # (old size, checkpoint size)
    held: list[Future[pb.CosignResponse]] = field(default_factory=list)  # a hung one's calls

    def __call__(self, request: pb.CosignRequest, timeout: float) -> Future[pb.CosignResponse]:
        future: Future[pb.CosignResponse] = Future()
        size = int(request.checkpoint.split("\n")[1])
        self.asked.append((request.old_size, size))
        if self.behaviour == "hang":
            self.held.append(future)
            return future
        threading.Thread(target=self._answer, args=(future, request, size), daemon=True).start()
        return future

    def _answer(
        self, future: Future[pb.CosignResponse], request: pb.CosignRequest, size: int
    ) -> None:
        time.sleep(self.delay)
        if self.behaviour == "down":
            future.set_exception(NodeUnreachable("unavailable"))
        elif self.behaviour == "refuse":
            future.set_exception(NodeFailed("QuestionRefused: it cosigned another history"))
        elif request.old_size != self.accepted and self.behaviour != "forge":
            future.set_exception(WitnessStale("another size", witnessed_size=self.accepted))
        else:
            self.accepted = size
            signer = NoteKey.generate(self.key.name) if self.behaviour == "forge" else self.key
            line = cosign(note_body(request.checkpoint), signer, int(time.time()))
            future.set_result(pb.CosignResponse(cosignature=line))


def _rounds(
    network: Network, devnet: DevNetwork, log: Log, quorum: int | None = None, **behaviours: str
) -> tuple[WitnessRounds, dict[str, Witness]]:
    if quorum is not None:
        settings = network.coordinator.model_copy(update={"witness_quorum": quorum})
        network = network.model_copy(update={"coordinator": settings})
    keys = NetKeys(devnet)
    witnesses = {
        org: Witness(keys.node_log_key(org), behaviours.get(org.split("-")[0], "ok"))
        for org in network.witness_ids()
    }
    sizes = {org: 0 for org in witnesses}
    rounds = WitnessRounds(network, dict(witnesses), log.latest, log.proof, sizes=sizes)
    return rounds, witnesses


def _cosigners(witnesses: dict[str, Witness]) -> dict[str, Cosigner]:
    return {o: Cosigner.from_verifier(w.key.verifier()) for o, w in witnesses.items()}


def test_a_round_ends_once_every_party_has_a_quorum_of_others(
    network: Network, devnet: DevNetwork
) -> None:
    """Quorum 2 of four witnesses: three cosignatures give every party two others, so the
    round does not wait for the fourth (hung) witness."""
    log = Log()
    rounds, witnesses = _rounds(network, devnet, log, quorum=2, ggz="hang")
    assert (rounds.quorum, rounds.enough) == (2, 3)
    log.append()
    started = time.monotonic()
    cosigned = rounds.covering(1, time.monotonic() + 10)
    assert time.monotonic() - started < 5
    assert cosigned.size == 1 and len(cosigned.cosigners) == 3
    assert "ggz-test" not in cosigned.cosigners
    assert set(verify_cosignatures(cosigned.note, _cosigners(witnesses))) == cosigned.cosigners
    assert all(cosigned.others(party) >= 2 for party in witnesses)


def test_the_default_quorum_is_the_smallest_that_keeps_two_histories_apart(
    network: Network,
) -> None:
    """Every node and asker of the test network is a witness: two parties that trust two
    histories take their quorums from the other N - 2 witnesses, so N // 2 keeps them apart;
    with a party that is not a witness it takes a majority of all N."""
    assert len(network.witness_ids()) == 4 and network.witness_quorum() == 2
    three = network.coordinator.model_copy(update={"witnesses": network.witness_ids()[:3]})
    assert network.model_copy(update={"coordinator": three}).witness_quorum() == 2  # 3 // 2 + 1
    for count, quorum in ((2, 1), (3, 1), (4, 2), (5, 2), (10, 5), (11, 5)):
        assert max(1, min(count // 2, count - 1)) == quorum


def test_too_few_cosignatures_refuse_and_name_every_witness_that_did_not_cosign(
    network: Network, devnet: DevNetwork
) -> None:
    log = Log()
    rounds, _ = _rounds(network, devnet, log, politie="refuse", ggz="down", gemeente="forge")
    log.append()
    with pytest.raises(WitnessQuorumMissing) as missing:
        rounds.covering(1, time.monotonic() + 10)
    message = missing.value.message
    assert "1 of the witnesses cosigned" in message and "2 are needed" in message
    assert "politie-test: QuestionRefused: it cosigned another history" in message
    assert "ggz-test: unavailable" in message
    assert "gemeente-test: its cosignature does not verify" in message
    assert missing.value.exit_code == 7  # never a "no": service unavailable


def test_a_witness_that_accepted_another_size_is_asked_again_with_the_right_proof(
    network: Network, devnet: DevNetwork
) -> None:
    log = Log()
    rounds, witnesses = _rounds(network, devnet, log)
    for _ in range(3):
        log.append()
    rounds.covering(3, time.monotonic() + 10)
    rounds.witnessed("politie-test", 99)  # a wrong belief: the witness says 3
    for _ in range(4):
        log.append()
    cosigned = rounds.covering(7, time.monotonic() + 10)
    assert witnesses["politie-test"].asked[-2:] == [(99, 7), (3, 7)]
    assert "politie-test" in cosigned.cosigners


def test_questions_waiting_together_share_rounds_that_never_overlap(
    network: Network, devnet: DevNetwork
) -> None:
    log = Log()
    rounds, witnesses = _rounds(network, devnet, log)
    for witness in witnesses.values():
        witness.delay = 0.05
    active = 0
    most = 0
    lock = threading.Lock()
    latest = log.latest

    def counted() -> tuple[int, str] | None:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        try:
            return latest()
        finally:
            with lock:
                active -= 1

    rounds.latest = counted

    def question(_: int) -> bool:
        index = log.append()
        return rounds.covering(index + 1, time.monotonic() + 20).size >= index + 1

    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(question, range(16)))
    assert log.rounds < 16  # one round covered several questions
    assert most == 1


def test_a_witness_whose_database_went_back_is_named_not_counted_and_remembered(
    network: Network, devnet: DevNetwork, tmp_path: Path
) -> None:
    """A node that cosigned 3 records and later says it accepted 0 lost its database: the round
    does not count it (it is asked nothing more), the event survives a restart of the
    coordinator, and it is trusted again once it cosigns its anchored size."""
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}", MetaData(), component="coordinator")
    anchors = NodeAnchors(engine)
    log = Log()
    rounds, witnesses = _rounds(network, devnet, log)
    rounds.anchors = anchors
    for _ in range(3):
        log.append()
    assert "politie-test" in rounds.covering(3, time.monotonic() + 10).cosigners
    assert anchors.sizes()["politie-test"] == 3
    witnesses["politie-test"].accepted = 0  # the attacker's (or the disk's) move
    log.append()
    cosigned = rounds.covering(4, time.monotonic() + 10)
    assert "politie-test" not in cosigned.cosigners
    assert "its database went back" in cosigned.missing["politie-test"]
    behind = anchors.behind("politie-test")
    assert behind is not None and behind.went_back_to == 0
    anchors.flush()
    again = NodeAnchors(engine)  # a restarted coordinator remembers
    assert again.behind("politie-test") is not None and again.sizes()["politie-test"] == 3
    again.cosigned("politie-test", 5)
    assert again.behind("politie-test") is None
    described = {a.organisation: a.describe() for a in again.all()}
    assert "went back" in described["politie-test"] and "caught up" in described["politie-test"]


def test_each_witness_clock_is_measured_from_its_signed_cosigning_time(
    network: Network, devnet: DevNetwork, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}", MetaData(), component="coordinator")
    anchors = NodeAnchors(engine)
    log = Log()
    rounds, _ = _rounds(network, devnet, log)
    rounds.anchors = anchors
    log.append()
    rounds.covering(1, time.monotonic() + 10)
    offsets = {a.organisation: a.clock_offset for a in anchors.all()}
    assert offsets and all(o is not None and abs(o) < 5 for o in offsets.values())
    anchors.clock("politie-test", 181.0)
    anchors.flush()
    described = {a.organisation: a.describe() for a in NodeAnchors(engine).all()}
    assert "its clock 181 s ahead of the coordinator's" in described["politie-test"]


def test_a_witness_that_hung_through_a_round_is_asked_last_until_it_answers_again(
    network: Network, devnet: DevNetwork
) -> None:
    """A hung node's port still takes the call. Asked among the first, it makes every round wait
    for the hedge before a spare is asked, and questions queued behind those rounds run out of
    their deadline. After one round it did not answer, it is asked last; once it answers (late or
    in a later round) it takes its turn again."""
    log = Log()
    rounds, witnesses = _rounds(network, devnet, log, quorum=2, ggz="hang")
    hung = witnesses["ggz-test"]
    for size in range(1, 9):  # every turn of the rotation, so it comes first at least once
        log.append()
        rounds.covering(size, time.monotonic() + 10)
    asked_while_hung = len(hung.asked)
    assert asked_while_hung == 1  # the first round it was in, and never again while silent
    hung.behaviour = "ok"  # it runs again: its held call is answered, late
    hung.held[0].set_result(pb.CosignResponse(cosignature=""))
    for size in range(9, 13):
        log.append()
        rounds.covering(size, time.monotonic() + 10)
    assert len(hung.asked) > asked_while_hung  # in turn again
