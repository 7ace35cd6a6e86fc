"""The split view: an insider coordinator keeps one node on a forked history of its own.

The coordinator's operator runs its coordinator with its real certificate, log key and database
(every service else is a real process). It copies its log into a second one, the *fork*, adds
there — and only there — one question meant for one node (politie), and from then on copies every
real record into the fork as well. To politie it shows only the fork: its checkpoints, its
proofs, the lookups of real questions re-proven in it, and the secret question. Every other node
sees the real log. Before witnessed, cosigned checkpoints, politie answered the secret question
and its witness loop never complained: it only ever compared the coordinator with itself.

Now (docs/adr/0024-wire-v2-lawful-questions-after-the-hit.md, section 10):

* with the default quorum (a majority of the witnesses), politie refuses: no other witness
  cosigns the fork, because each of them already cosigned the real history past the fork point
  (and those that are asked record the attempt as an alarm);
* with a quorum configured too low (1) and one witness colluding with the coordinator, politie
  answers — and within one witness interval its comparison with other nodes, made directly and
  not through the coordinator, raises an alarm naming both signed checkpoints.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from betrokken import rules
from betrokken.app.cluster import Cluster
from betrokken.app.demo import GEMEENTE, GGZ, ORGS, POLITIE, RECLASSERING, ZVH, synthetic_population
from betrokken.app.devnet import DevNetwork, init_network
from betrokken.audit.log import AuditLog, LogBase
from betrokken.config.load import load_coordinator, load_network
from betrokken.config.schema import CoordinatorSettings
from betrokken.coordinator.fanout import GrpcNodeLink, NodeUnreachable
from betrokken.coordinator.servicer import CoordinatorServicer
from betrokken.coordinator.store import AuditStore
from betrokken.crypto import question as q
from betrokken.db import make_engine
from betrokken.identity.names import organisation_uri
from betrokken.identity.rpc import channel, claimed_identity, make_server
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc
from tests.conftest import network_ports
from tests.e2e.conftest import Result, Running

pytestmark = pytest.mark.e2e

TARGET = POLITIE  # the node kept on the fork
COLLUDER = GEMEENTE  # the witness that signs whatever the coordinator asks (second test)
WITNESS_INTERVAL = 2.0  # seconds, every node of these networks


# --- the insider ---------------------------------------------------------------------------------
@dataclass
class Fork:
    """The second history: a copy of the real log, plus the secret record, plus every real
    record after it (re-numbered: a record's position is part of its leaf)."""

    log: AuditLog
    positions: dict[int, int] = field(default_factory=dict)  # real index -> index in the fork
    cosignatures: list[str] = field(default_factory=list)  # lines added to every fork checkpoint

    def note(self) -> tuple[int, str]:
        latest = self.log.latest_checkpoint()
        assert latest is not None
        return latest.size, latest.note + "".join(self.cosignatures)

    def proof(self, fork_index: int, witnessed: int) -> pb.LogProof:
        size, note = self.note()
        record = next(iter(self.log.records(indices=[fork_index])))
        assert record.content is not None
        consistency: list[bytes] = []
        if 0 < witnessed < size:
            consistency = self.log.consistency_proof(witnessed, size)
        return pb.LogProof(
            record=record.content.encode(),
            leaf_index=fork_index,
            tree_size=size,
            checkpoint=note,
            inclusion_proof=self.log.inclusion_proof(fork_index, size),
            consistency_size=witnessed,
            consistency_proof=consistency,
        )


class ForkingStore:
    """The coordinator's own store (the real log), copying every record it writes into the fork."""

    def __init__(self, real: AuditStore, fork: Fork) -> None:
        self.real = real
        self.fork = fork

    def append(self, entry: Any) -> int:
        index = self.real.append(entry)
        [copied] = self.fork.log.append([entry])
        self.fork.positions[index] = copied
        return index

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class ForkedLink:
    """The coordinator's link to the target node: every lookup re-proven in the fork; the node is
    left out of the real history's cosigning (it would refuse it)."""

    def __init__(self, inner: GrpcNodeLink, fork: Fork) -> None:
        self.inner = inner
        self.fork = fork

    def start(self, request: pb.LookupRequest, timeout: float) -> Future[pb.LookupResponse]:
        shown = pb.LookupRequest()
        shown.CopyFrom(request)
        position = self.fork.positions[request.proof.leaf_index]
        shown.proof.CopyFrom(self.fork.proof(position, request.proof.consistency_size))
        return self.inner.start(shown, timeout)

    def cosign(self, *_: Any, **__: Any) -> Future[Any]:
        refused: Future[Any] = Future()
        refused.set_exception(NodeUnreachable("left out by the insider"))
        return refused

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class SplitViewCoordinator(CoordinatorServicer):
    """The coordinator, showing the target node the fork in every answer about the log."""

    fork: Fork

    def _shows_fork(self, context: grpc.ServicerContext) -> bool:
        return claimed_identity(context) == TARGET

    def GetCheckpoint(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not self._shows_fork(context):
            return super().GetCheckpoint(request, context)
        return pb.CheckpointResponse(checkpoint=self.fork.note()[1])

    def GetConsistencyProof(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not self._shows_fork(context):
            return super().GetConsistencyProof(request, context)
        return pb.ProofResponse(
            hashes=self.fork.log.consistency_proof(request.old_size, request.new_size)
        )

    def GetRecord(self, request: Any, context: grpc.ServicerContext) -> Any:
        """The target's records come from the fork too: served from the real log, they would
        not fit the fork's checkpoint, and the node's record check would alarm at once."""
        if not self._shows_fork(context):
            return super().GetRecord(request, context)
        record = next(iter(self.fork.log.records(indices=[request.leaf_index])))
        return pb.RecordResponse(
            record=(record.content or "").encode(),
            hashes=self.fork.log.inclusion_proof(request.leaf_index, request.tree_size),
        )

    def GetConsistencyProofs(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not self._shows_fork(context):
            return super().GetConsistencyProofs(request, context)
        return pb.ProofBatchResponse(
            proofs=[
                pb.ProofResponse(hashes=self.fork.log.consistency_proof(old, request.new_size))
                for old in request.old_sizes
            ]
        )


# --- the network ---------------------------------------------------------------------------------
@dataclass
class Scene:
    running: Running
    insider: grpc.Server | None = None
    fork: Fork | None = None

    @property
    def net(self) -> DevNetwork:
        return self.running.net

    def node_db(self, org: str) -> Path:
        return self.net.node_configs[org].parent / "node.db"

    def witnessed(self, org: str) -> int:
        with sqlite3.connect(self.node_db(org)) as conn:
            row = conn.execute("select max(size) from witnessed_checkpoints").fetchone()
        return int(row[0] or 0)

    def alarms(self, org: str) -> list[dict[str, Any]]:
        with sqlite3.connect(self.node_db(org)) as conn:
            rows = conn.execute(
                "select content from log_records where event = 'alarm' order by \"index\""
            ).fetchall()
        return [json.loads(c) for (c,) in rows]

    def disclosures(self, org: str, answer_id: str) -> int:
        with sqlite3.connect(self.node_db(org)) as conn:
            (count,) = conn.execute(
                "select count(*) from log_records where event = 'disclosure' and answer_id = ?",
                (answer_id,),
            ).fetchone()
        return int(count)

    def witness_once(self, org: str) -> Result:
        return self.running.run(
            "node", "witness", "--config", str(self.net.node_configs[org]), "--once"
        )

    def take_over(self) -> Fork:
        """Stop the coordinator's process and serve its address with the split-view coordinator
        (the same certificate, log key and database)."""
        self.running.cluster.stop_process("coordinator")
        loaded = load_coordinator(self.net.coordinator_config)
        key = self.running.keys.log_key()
        database = self.net.directory / "coordinator" / "coordinator.db"
        copy = self.net.directory / "coordinator" / "fork.db"
        copy.touch(mode=0o600)
        with sqlite3.connect(database) as src, sqlite3.connect(copy) as dst:
            src.backup(dst)
        fork = Fork(AuditLog(make_engine(f"sqlite:///{copy}", LogBase.metadata), key, key.name))
        fork.positions = {i: i for i in range(fork.log.size())}
        real = AuditStore(f"sqlite:///{database}", key, key.name)
        network = self.running.network
        links: dict[str, Any] = {
            o.id: GrpcNodeLink(
                o.node_address or "", loaded.tls, o.server_name, organisation_uri(o.id)
            )
            for o in network.nodes()
        }
        links[TARGET] = ForkedLink(links[TARGET], fork)
        servicer = SplitViewCoordinator(network, ForkingStore(real, fork), links)  # type: ignore[arg-type]
        servicer.fork = fork
        server = make_server(network.coordinator.address, loaded.tls)
        pb_grpc.add_CoordinatorServicer_to_server(servicer, server)
        server.start()
        self.insider, self.fork = server, fork
        return fork

    def secret_question(self, fork: Fork, person: str) -> q.Question:
        """The question only the target node is to see: recorded in the fork, nowhere else."""
        prepared = self.running.keys.prepare(ZVH, "zvh-triage", [(person, "C-SECRET")])
        question = q.peek_question(prepared.note)
        purpose = self.running.network.purpose("zvh-triage")
        assert purpose is not None
        entry = rules.search_entry_for(question, prepared.note, purpose, question.at, "insider")
        [index] = fork.log.append([entry])
        self.secret = (prepared, index)
        return question

    def ask_witnesses_to_cosign_the_fork(self, fork: Fork) -> list[str]:
        """The insider asks every other witness to cosign the fork (what a coordinator must do
        before the target node answers under it); the lines it gets."""
        size, note = fork.note()
        tls = self.running.keys.tls("coordinator")
        lines = []
        for org in self.running.network.nodes():
            if org.id == TARGET or org.node_address is None:
                continue
            old = self.witnessed(org.id)
            proof = fork.log.consistency_proof(old, size) if 0 < old < size else []
            with channel(org.node_address, tls, org.server_name) as ch:
                stub: Any = pb_grpc.NodeStub(ch)
                if not hasattr(stub, "Cosign"):
                    continue  # before cosigned checkpoints there was nothing to ask
                try:
                    response = stub.Cosign(
                        pb.CosignRequest(checkpoint=note, old_size=old, consistency_proof=proof),
                        timeout=10,
                    )
                    lines.append(response.cosignature)
                except grpc.RpcError:
                    pass  # refused: it cosigned the real history past the fork point
        return lines

    def send_secret(self, fork: Fork) -> grpc.RpcError | pb.LookupResponse:
        prepared, index = self.secret
        target = self.running.network.organisation(TARGET)
        assert target is not None and target.node_address
        request = pb.LookupRequest(
            question=prepared.note,
            envelope=prepared.envelopes[TARGET],
            proof=fork.proof(index, self.witnessed(TARGET)),
        )
        with channel(
            target.node_address, self.running.keys.tls("coordinator"), target.server_name
        ) as ch:
            try:
                response: pb.LookupResponse = pb_grpc.NodeStub(ch).Lookup(request, timeout=15)
                return response
            except grpc.RpcError as exc:
                return exc

    def close(self) -> None:
        if self.insider is not None:
            self.insider.stop(0).wait()
            self.insider = None


def _network(base: Path, quorum: int | None) -> DevNetwork:
    net = init_network(
        base / "network", ORGS, name="split-view", base_port=network_ports(len(ORGS))
    )
    text = net.network_file.read_text()
    if quorum is not None and "witness_quorum" in CoordinatorSettings.model_fields:
        text = text.replace("[coordinator]\n", f"[coordinator]\nwitness_quorum = {quorum}\n", 1)
    net.network_file.write_text(text)
    for config in net.node_configs.values():
        config.write_text(
            config.read_text().replace(
                'database = "sqlite:///node.db"',
                f'database = "sqlite:///node.db"\nwitness_interval_seconds = {WITNESS_INTERVAL}',
            )
        )
    load_network(net.network_file)
    return net


@pytest.fixture
def scene(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scene]:
    quorum = getattr(request, "param", None)
    net = _network(tmp_path, quorum)
    truth, named = synthetic_population(random.Random(11), ORGS, 2)
    cluster = Cluster(net)
    cluster.start()
    running = Running(net, load_network(net.network_file), cluster, truth, named)
    scene = Scene(running)
    try:
        yield scene
    finally:
        scene.close()
        cluster.stop()


def _set_the_scene(scene: Scene) -> tuple[Fork, str]:
    """Everything up to the moment the insider sends the secret question."""
    running = scene.running
    person = running.named["several"].digits
    config = str(running.net.node_configs[TARGET])
    registered = running.run("node", "register", "--config", config, "--bsn", person)
    assert registered.code == 0, registered.stderr
    # The network works: a real question, and every node witnessed the real log.
    first = running.query(ZVH, person, "zvh-triage", "C-REAL-0")
    assert first.code == 0, first.stdout + first.stderr
    for org in ORGS:
        assert scene.witness_once(org).code == 0
    # The insider takes over, forks, and keeps the network running: real questions are recorded
    # in both histories, and the other witnesses move past the fork point in the real one.
    fork = scene.take_over()
    scene.secret_question(fork, person)
    for number in (1, 2):
        running.query(ZVH, person, "zvh-triage", f"C-REAL-{number}")
    for org in ORGS:
        checked = scene.witness_once(org)
        assert checked.code == 0, (org, checked.stdout, checked.stderr)  # nobody notices yet
    assert scene.witnessed(TARGET) == fork.log.size()  # the target is on the fork
    return fork, person


# --- the tests -----------------------------------------------------------------------------------
def test_p6_a_node_kept_on_a_forked_history_refuses_the_question_only_it_was_shown(
    scene: Scene,
) -> None:
    fork, _ = _set_the_scene(scene)
    before = len(scene.alarms(TARGET))
    cosigned = scene.ask_witnesses_to_cosign_the_fork(fork)
    fork.cosignatures = cosigned
    result = scene.send_secret(fork)
    prepared, _ = scene.secret
    assert isinstance(result, grpc.RpcError), "the node answered a question only it was shown"
    assert result.code() == grpc.StatusCode.DATA_LOSS, result.details()
    assert cosigned == []  # no other witness cosigned the fork ...
    assert "no-quorum" in [a["reason"] for a in scene.alarms(TARGET)[before:]]
    assert scene.disclosures(TARGET, prepared.answer_id) == 0
    # ... and every witness that was asked keeps the attempt, with the fork's checkpoint.
    for org in (ZVH, RECLASSERING, GEMEENTE, GGZ):
        kinds = [a["reason"] for a in scene.alarms(org)]
        assert "cosign-fork" in kinds, (org, kinds)


@pytest.mark.parametrize("scene", [1], indirect=True)
def test_p6_with_a_quorum_set_too_low_the_nodes_own_comparison_raises_the_alarm(
    scene: Scene,
) -> None:
    fork, _ = _set_the_scene(scene)
    # One witness colludes: its key signs whatever the coordinator asks.
    try:
        from betrokken.crypto.cosignature import cosign, note_body
    except ImportError:  # before cosigned checkpoints: nothing to sign
        pass
    else:
        colluder = scene.running.keys.node_log_key(COLLUDER)
        fork.cosignatures = [cosign(note_body(fork.note()[1]), colluder, int(time.time()))]
    result = scene.send_secret(fork)
    assert isinstance(result, pb.LookupResponse), result  # a quorum of one: answered ...
    started = time.monotonic()
    deadline = started + WITNESS_INTERVAL * 2 + 10  # one interval, plus the processes' start-up
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not found:
        found = [a for a in scene.alarms(TARGET) if a["reason"] == "peer-fork"]
        time.sleep(0.2)
    # ... but the node's comparison with another node shows the two histories.
    assert found, "no alarm: the node never compared its history with another node's"
    details = found[0]["details"]
    origin = scene.running.keys.log_key().name
    # Both signed checkpoints are the evidence (newlines escaped in a trail record): the fork's
    # and the one the peer witnessed, each signed by the coordinator's key.
    assert details["evidence"].count(f"\u2014 {origin} ") == 2, details["evidence"]
    assert details["peer"] in set(ORGS) - {TARGET}
    status = scene.running.run("node", "status", "--config", str(scene.net.node_configs[TARGET]))
    assert "peer-fork" in status.stdout and "compared with" in status.stdout


def test_p6_a_question_cosigned_and_then_dropped_from_the_log_is_caught_by_every_witness(
    scene: Scene,
) -> None:
    """The other way to try it: sign one extra record at the tip of the real log and have the
    witnesses cosign that (they do: it extends what they saw), so the target node answers; then
    go on without it. The question is then in the history the witnesses vouch for, and at the
    next round every one of them refuses the real log, naming both checkpoints: the coordinator
    cannot go on, and the question it hid is in every witness's evidence."""
    from betrokken.audit.log import leaf_bytes
    from betrokken.crypto import merkle
    from betrokken.crypto.note import Checkpoint, sign_checkpoint

    running = scene.running
    person = running.named["several"].digits
    assert running.query(ZVH, person, "zvh-triage", "C-REAL-0").code in (0, 3)
    key = running.keys.log_key()
    database = scene.net.directory / "coordinator" / "coordinator.db"
    real = AuditStore(f"sqlite:///{database}", key, key.name)
    size = real.log.size()
    leaves = real.log.leaf_hashes(size)
    real.engine.dispose()
    prepared = running.keys.prepare(ZVH, "zvh-triage", [(person, "C-TIP")])
    question = q.peek_question(prepared.note)
    purpose = running.network.purpose("zvh-triage")
    assert purpose is not None
    record = leaf_bytes(
        size, rules.search_entry_for(question, prepared.note, purpose, question.at, "")
    )
    secret = [*leaves, merkle.leaf_hash(record)]
    note = sign_checkpoint(Checkpoint(key.name, size + 1, merkle.root(secret)), key)
    # Every other witness cosigns it: a consistent extension of what each of them saw.
    lines = []
    for org in running.network.nodes():
        if org.id == TARGET or org.node_address is None:
            continue
        old = scene.witnessed(org.id)
        proof = merkle.consistency_proof(secret, old) if 0 < old < size + 1 else []
        with channel(org.node_address, running.keys.tls("coordinator"), org.server_name) as ch:
            response = pb_grpc.NodeStub(ch).Cosign(
                pb.CosignRequest(checkpoint=note, old_size=old, consistency_proof=proof),
                timeout=10,
            )
        lines.append(response.cosignature)
    assert len(lines) == len(ORGS) - 1
    target = running.network.organisation(TARGET)
    assert target is not None and target.node_address
    witnessed = scene.witnessed(TARGET)
    lookup = pb.LookupRequest(
        question=prepared.note,
        envelope=prepared.envelopes[TARGET],
        proof=pb.LogProof(
            record=record,
            leaf_index=size,
            tree_size=size + 1,
            checkpoint=note + "".join(lines),
            inclusion_proof=merkle.inclusion_proof(secret, size),
            consistency_size=witnessed,
            consistency_proof=merkle.consistency_proof(secret, witnessed)
            if 0 < witnessed < size + 1
            else [],
        ),
    )
    with channel(target.node_address, running.keys.tls("coordinator"), target.server_name) as ch:
        answered = pb_grpc.NodeStub(ch).Lookup(lookup, timeout=15)
    assert answered.reply  # answered: under a checkpoint four other witnesses vouch for
    # The coordinator goes on without the record: the next question is refused, never a "no" ...
    after = running.query(ZVH, person, "zvh-triage", "C-REAL-1")
    assert after.code == 7, after.stdout + after.stderr
    assert "WitnessQuorumMissing" in after.stdout and "a fork" in after.stdout
    # ... every witness that cosigned the extra record keeps both checkpoints as evidence ...
    for org in (ZVH, RECLASSERING, GEMEENTE, GGZ):
        forks = [a for a in scene.alarms(org) if a["reason"] == "cosign-fork"]
        assert forks, org
        assert forks[0]["details"]["evidence"].count(f"\u2014 {key.name} ") == 2
    # ... and the target node's own witness check names the question it was shown.
    scene.witness_once(TARGET)
    forks = [a for a in scene.alarms(TARGET) if a["reason"] == "witness-fork"]
    assert forks and prepared.answer_id in forks[0]["details"]["answer_ids"]
