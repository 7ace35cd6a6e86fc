"""The insiders' moves on a real running network (every service its own process, mutual TLS).

The coordinator's operator has its certificate, its signing key and its whole database; a node's
administrator keeps whatever reaches the node. Each test makes one move such an insider could make
and checks that it is refused (and, where a node notices the move, an alarm recorded) or learns
nothing — and would fail if the defence were removed.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from betrokken import rules
from betrokken.app.demo import GEMEENTE, GGZ, POLITIE, RECLASSERING, ZVH
from betrokken.audit.log import AuditLog, LogBase, leaf_bytes
from betrokken.audit.witness import LogProof
from betrokken.clock import utcnow
from betrokken.config.load import load_node
from betrokken.coordinator.store import AuditStore
from betrokken.crypto import envelope as env
from betrokken.crypto import merkle
from betrokken.crypto import question as q
from betrokken.crypto.note import Checkpoint, NoteKey, sign_checkpoint
from betrokken.db import make_engine
from betrokken.identity.rpc import channel
from betrokken.requester.client import Prepared, Requester
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc
from betrokken.wire import log_proof_to_wire
from tests.e2e.conftest import Running, replaced_node

pytestmark = pytest.mark.e2e


@dataclass
class Insider:
    """The coordinator's operator: its certificate, its log key and its database."""

    running: Running

    @property
    def db(self) -> Path:
        return self.running.net.directory / "coordinator" / "coordinator.db"

    def store(self) -> AuditStore:
        key = self.running.keys.log_key()
        return AuditStore(f"sqlite:///{self.db}", key, key.name)

    def witnessed(self, org: str) -> tuple[int, bytes] | None:
        db = self.running.net.node_configs[org].parent / "node.db"
        with sqlite3.connect(db) as conn:
            row = conn.execute(
                "select size, root from witnessed_checkpoints order by size desc limit 1"
            ).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def proof(self, index: int, org: str) -> pb.LogProof:
        store = self.store()
        try:
            seen = self.witnessed(org)
            return log_proof_to_wire(
                store.log_proof(store.receipt(index), seen[0] if seen else None)
            )
        finally:
            store.engine.dispose()

    def lookup(self, org: str, request: pb.LookupRequest) -> grpc.RpcError | pb.LookupResponse:
        network = self.running.network
        node = network.organisation(org)
        assert node is not None and node.node_address
        tls = self.running.keys.tls("coordinator")
        with channel(node.node_address, tls, node.server_name) as ch:
            try:
                response: pb.LookupResponse = pb_grpc.NodeStub(ch).Lookup(request, timeout=15)
                return response
            except grpc.RpcError as exc:
                return exc


def _ask(running: Running, prepared: Prepared, asker: str = ZVH) -> pb.QueryResponse:
    """Send a prepared question through the real coordinator, as the requester would."""
    keys = running.keys
    request = pb.QueryRequest(
        question=prepared.note,
        envelopes=[pb.Envelope(node=n, sealed=s) for n, s in prepared.envelopes.items()],
    )
    with channel(
        running.network.coordinator.address, keys.tls(asker), running.network.coordinator.tls_name
    ) as ch:
        response: pb.QueryResponse = pb_grpc.CoordinatorStub(ch).Query(request, timeout=30)
    return response


def _alarms(running: Running, org: str) -> list[str]:
    db = running.net.node_configs[org].parent / "node.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select content from log_records where event = 'alarm' order by \"index\""
        ).fetchall()
    return [json.loads(c)["reason"] for (c,) in rows]


def _disclosures(running: Running, org: str, answer_id: str) -> int:
    db = running.net.node_configs[org].parent / "node.db"
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute(
            "select count(*) from log_records where event = 'disclosure' and answer_id = ?",
            (answer_id,),
        ).fetchone()
    return int(count)


def _refused(result: object, kind: str, running: Running, org: str, before: int) -> None:
    assert isinstance(result, grpc.RpcError), "the node answered an insider's lookup"
    assert result.code() == grpc.StatusCode.DATA_LOSS, result.details()
    alarms = _alarms(running, org)
    assert alarms[before:] == [kind], alarms[before:]
    status = running.run("node", "status", "--config", str(running.net.node_configs[org]))
    assert "ALARMS" in status.stdout and kind in status.stdout


def _person(running: Running) -> str:
    return running.named["several"].digits  # registered at politie (and others)


# --- the coordinator's operator -----------------------------------------------------------------
def test_a_coordinator_cannot_get_an_unlogged_question_answered(running: Running) -> None:
    """A genuinely signed question the coordinator did not record: no record, no answer."""
    insider = Insider(running)
    _ask(running, running.keys.prepare(ZVH, "zvh-triage", [(_person(running), "C-BEFORE")]))
    prepared = running.keys.prepare(ZVH, "zvh-triage", [(_person(running), "C-UNLOGGED")])
    question = q.peek_question(prepared.note)
    purpose = running.network.purpose("zvh-triage")
    assert purpose is not None
    store = insider.store()
    size = store.log.size()
    entry = rules.search_entry_for(question, prepared.note, purpose, utcnow(), "insider")
    record = leaf_bytes(size, entry)  # what index `size` would hold, had it been recorded
    latest = store.log.latest_checkpoint()
    assert latest is not None
    store.engine.dispose()
    proof = LogProof(record, size, latest.size, latest.note, (), 0, ())
    before = len(_alarms(running, POLITIE))
    result = insider.lookup(
        POLITIE,
        pb.LookupRequest(
            question=prepared.note,
            envelope=prepared.envelopes[POLITIE],
            proof=log_proof_to_wire(proof),
        ),
    )
    _refused(result, "unlogged", running, POLITIE, before)
    assert _disclosures(running, POLITIE, prepared.answer_id) == 0


def test_a_coordinator_cannot_replay_a_lookup(running: Running) -> None:
    insider = Insider(running)
    prepared = running.keys.prepare(ZVH, "zvh-triage", [(_person(running), "C-REPLAY")])
    response = _ask(running, prepared)
    assert {r.label: r.status for r in response.replies}[POLITIE] == pb.ANSWERED
    assert _disclosures(running, POLITIE, prepared.answer_id) == 1
    before = len(_alarms(running, POLITIE))
    result = insider.lookup(
        POLITIE,
        pb.LookupRequest(
            question=prepared.note,
            envelope=prepared.envelopes[POLITIE],
            proof=insider.proof(response.receipt.leaf_index, POLITIE),
        ),
    )
    _refused(result, "replay", running, POLITIE, before)
    assert _disclosures(running, POLITIE, prepared.answer_id) == 1  # recorded once


def test_a_coordinator_cannot_attach_another_questions_record(running: Running) -> None:
    insider = Insider(running)
    logged = running.keys.prepare(ZVH, "zvh-triage", [(running.named["nowhere"].digits, "C-1")])
    response = _ask(running, logged)
    other = running.keys.prepare(ZVH, "zvh-triage", [(_person(running), "C-NOT-LOGGED")])
    before = len(_alarms(running, POLITIE))
    result = insider.lookup(
        POLITIE,
        pb.LookupRequest(
            question=other.note,
            envelope=other.envelopes[POLITIE],
            proof=insider.proof(response.receipt.leaf_index, POLITIE),
        ),
    )
    _refused(result, "record-mismatch", running, POLITIE, before)
    assert "answer id" in result.details()  # type: ignore[union-attr]
    assert _disclosures(running, POLITIE, other.answer_id) == 0


def test_a_coordinator_cannot_forge_or_invent_a_question(running: Running) -> None:
    """The coordinator holds no organisation's question key: its own signature is refused."""
    insider = Insider(running)
    made_up = NoteKey.generate(q.question_key_name(running.network.name, ZVH))
    prepared = running.keys.prepare(
        ZVH, "zvh-triage", [(_person(running), "C-FORGED")], signer=made_up
    )
    before = len(_alarms(running, POLITIE))
    result = insider.lookup(
        POLITIE, pb.LookupRequest(question=prepared.note, envelope=prepared.envelopes[POLITIE])
    )
    _refused(result, "forged", running, POLITIE, before)


def test_a_coordinator_cannot_use_an_old_question(running: Running) -> None:
    insider = Insider(running)
    old = utcnow() - dt.timedelta(seconds=running.network.coordinator.freshness_seconds + 60)
    prepared = running.keys.prepare(ZVH, "zvh-triage", [(_person(running), "C-OLD")], at=old)
    before = len(_alarms(running, POLITIE))
    result = insider.lookup(
        POLITIE, pb.LookupRequest(question=prepared.note, envelope=prepared.envelopes[POLITIE])
    )
    _refused(result, "stale", running, POLITIE, before)


def _forked_log(insider: Insider, tmp: Path, keep: int) -> AuditLog:
    """A copy of the coordinator's log rewritten from record ``keep``, signed with its key."""
    fork = tmp / "fork.db"
    with sqlite3.connect(insider.db) as src, sqlite3.connect(fork) as dst:
        src.backup(dst)
    key = insider.running.keys.log_key()
    log = AuditLog(make_engine(f"sqlite:///{fork}", LogBase.metadata), key, key.name)
    frontier = merkle.Frontier()
    for leaf in log.leaf_hashes(keep):
        frontier.append(leaf)
    with sqlite3.connect(fork) as conn:
        conn.execute('delete from log_subjects where "index" >= ?', (keep,))
        conn.execute('delete from log_records where "index" >= ?', (keep,))
        conn.execute("delete from log_checkpoints where size > ?", (keep,))
        conn.execute(
            "update log_head set size = ?, frontier = ?", (keep, json.dumps(frontier.to_json()))
        )
    return log


def test_a_coordinator_cannot_answer_under_a_log_that_forks_from_what_the_node_witnessed(
    running: Running, tmp_path: Path
) -> None:
    insider = Insider(running)
    config = str(running.net.node_configs[POLITIE])
    _ask(running, running.keys.prepare(ZVH, "zvh-triage", [(_person(running), "C-W")]))
    assert running.run("node", "witness", "--config", config, "--once").code == 0
    witnessed = insider.witnessed(POLITIE)
    assert witnessed is not None and witnessed[0] >= 2
    # The fork drops the witnessed last record and records a new question in its place.
    log = _forked_log(insider, tmp_path, witnessed[0] - 1)
    prepared = running.keys.prepare(ZVH, "zvh-triage", [(_person(running), "C-FORK")])
    question = q.peek_question(prepared.note)
    purpose = running.network.purpose("zvh-triage")
    assert purpose is not None
    [index] = log.append([rules.search_entry_for(question, prepared.note, purpose, utcnow(), "x")])
    store = AuditStore.__new__(AuditStore)
    store.engine, store.log = log.engine, log
    proof = store.log_proof(store.receipt(index), witnessed[0])
    before = len(_alarms(running, POLITIE))
    result = insider.lookup(
        POLITIE,
        pb.LookupRequest(
            question=prepared.note,
            envelope=prepared.envelopes[POLITIE],
            proof=log_proof_to_wire(proof),
        ),
    )
    _refused(result, "fork", running, POLITIE, before)
    assert _disclosures(running, POLITIE, prepared.answer_id) == 0


def test_a_second_history_signed_for_one_question_is_caught_at_the_next_witness_check(
    running: Running,
) -> None:
    """The coordinator signs a checkpoint that extends what the node witnessed but includes a
    record it never keeps: the node answers (it cannot know yet), keeps the checkpoint as seen,
    and its next witness check proves the fork with the coordinator's own two signatures."""
    insider = Insider(running)
    config = str(running.net.node_configs[POLITIE])
    assert running.run("node", "witness", "--config", config, "--once").code in (0, 8)
    alarms_before = _alarms(running, POLITIE).count("witness-fork")
    store = insider.store()
    size = store.log.size()
    leaves = store.log.leaf_hashes(size)
    store.engine.dispose()
    prepared = running.keys.prepare(ZVH, "zvh-triage", [(_person(running), "C-SECRET")])
    question = q.peek_question(prepared.note)
    purpose = running.network.purpose("zvh-triage")
    assert purpose is not None
    record = leaf_bytes(
        size, rules.search_entry_for(question, prepared.note, purpose, utcnow(), "")
    )
    secret_leaves = [*leaves, merkle.leaf_hash(record)]
    origin = insider.running.keys.log_key().name
    checkpoint = sign_checkpoint(
        Checkpoint(origin, size + 1, merkle.root(secret_leaves)), insider.running.keys.log_key()
    )
    witnessed = insider.witnessed(POLITIE)
    assert witnessed is not None
    proof = LogProof(
        record,
        size,
        size + 1,
        checkpoint,
        tuple(merkle.inclusion_proof(secret_leaves, size)),
        witnessed[0],
        tuple(merkle.consistency_proof(secret_leaves, witnessed[0])),
    )
    result = insider.lookup(
        POLITIE,
        pb.LookupRequest(
            question=prepared.note,
            envelope=prepared.envelopes[POLITIE],
            proof=log_proof_to_wire(proof),
        ),
    )
    assert isinstance(result, pb.LookupResponse)  # accepted for now...
    # ... the real log moves on without that record (two more real questions) ...
    for case in ("C-AFTER-1", "C-AFTER-2"):
        _ask(running, running.keys.prepare(ZVH, "zvh-triage", [(_person(running), case)]))
    # ... and the next witness check (the node's own loop or this one) raises the alarm.
    running.run("node", "witness", "--config", config, "--once")
    assert _alarms(running, POLITIE).count("witness-fork") == alarms_before + 1
    db = running.net.node_configs[POLITIE].parent / "node.db"
    with sqlite3.connect(db) as conn:
        (content,) = conn.execute(
            "select content from log_records where event = 'alarm' order by \"index\" desc limit 1"
        ).fetchone()
    assert prepared.answer_id in json.loads(content)["details"]["answer_ids"]
    status = running.run("node", "status", "--config", config)
    assert "witness-fork" in status.stdout


# --- a node's administrator -------------------------------------------------------------------
def test_a_node_that_keeps_every_envelope_learns_no_other_organisations_pseudonym(
    running: Running,
) -> None:
    keys = running.keys
    people = [running.named["several"], running.named["nowhere"], running.named["one"]]
    with replaced_node(running, POLITIE) as curious:
        for number, bsn in enumerate(people):
            assert running.query(ZVH, bsn.digits, "zvh-triage", f"C-KEEP-{number}").code == 0
        kept = list(curious.received)
    assert len(kept) == len(people)
    harvested = []
    for request in kept:
        question = q.peek_question(request.question)
        opened = env.open_sealed(
            keys.envelope_key(POLITIE),
            q.envelope_info(running.network.name, question.answer_id, POLITIE),
            request.envelope,
        )
        harvested += [i.pseudonym for i in q.EnvelopeContent.from_bytes(opened).items]
    # Under politie's key: exactly the persons asked about...
    assert sorted(harvested) == sorted(keys.pseudonym(POLITIE, b.digits).value for b in people)
    # ... and nothing that matches the person under any other organisation's key, nor anything
    # in any other organisation's database (two nodes' data cannot be joined).
    for bsn in people:
        for org in running.network.organisations:
            if org.id != POLITIE:
                assert keys.pseudonym(org.id, bsn.digits).value not in harvested
    for org in (GGZ, GEMEENTE, RECLASSERING, ZVH):
        data = b"".join(
            p.read_bytes() for p in running.net.node_configs[org].parent.glob("node.db*")
        )
        for value in harvested:
            assert value not in data and value.hex().encode() not in data
    # The tags in the question are useless to it too: they are made with ZVH's pseudonyms.
    for request in kept:
        question = q.peek_question(request.question)
        for value in harvested:
            assert q.tag(value, question.answer_id) not in question.tags


def test_a_node_that_discloses_nothing_for_a_purpose_receives_no_bytes_about_it(
    running: Running,
) -> None:
    """GGZ defers for zsm-context, the gemeente declines it: neither node hears of the question."""
    person = running.named["several"].digits  # registered at both
    for org in (GGZ, GEMEENTE):
        with replaced_node(running, org) as node:
            answer = running.query(POLITIE, person, "zsm-context", "ZSM-NOTHING")
            assert answer.code == 0, answer.stderr
            assert node.received == []  # not a byte: not the question, not an envelope
            # Control: for a purpose where it looks something up, it does receive the question.
            assert running.query(ZVH, person, "zvh-triage", "ZVH-SOMETHING").code == 0
            assert len(node.received) == 1
        entry = next(
            o for o in answer.json["persons"][0]["organisations"] if o["organisation_id"] == org
        )
        assert entry["by_policy"] is True and entry["outcome"] in ("deferred", "declined")


# --- a coordinator that tampers with answers -----------------------------------------------------
def test_a_coordinator_that_forges_or_drops_replies_never_produces_a_no(
    running: Running, tmp_path: Path
) -> None:
    """A coordinator replacing politie's sealed reply with one it made, and dropping the
    reclassering's: the requester shows ERROR for both, never 'not involved' (P5)."""
    from betrokken.coordinator.servicer import CoordinatorServicer
    from betrokken.identity.rpc import make_server
    from tests.test_adversarial import _free_port

    class Tampering(CoordinatorServicer):
        def _replies(self, question, results):  # type: ignore[no-untyped-def]
            replies = super()._replies(question, results)
            kept = [r for r in replies if r.label != RECLASSERING]
            for reply in kept:
                if reply.label == POLITIE:
                    forged = q.ReplyContent(
                        question.answer_id, POLITIE, ({"outcome": "not-involved"},)
                    ).to_bytes()
                    reply.reply = env.seal_reply(
                        env.new_reply_key(),
                        q.reply_aad(running.network.name, question.answer_id, POLITIE),
                        forged,
                    )
            return kept

    from betrokken.config.load import load_coordinator
    from betrokken.coordinator.fanout import GrpcNodeLink
    from betrokken.identity.names import organisation_uri

    loaded = load_coordinator(running.net.coordinator_config)
    store = Insider(running).store()  # the same database: one log, as replicas share it
    links = {
        o.id: GrpcNodeLink(o.node_address or "", loaded.tls, o.server_name, organisation_uri(o.id))
        for o in running.network.nodes()
    }
    address = f"127.0.0.1:{_free_port()}"
    server = make_server(address, loaded.tls)
    pb_grpc.add_CoordinatorServicer_to_server(Tampering(running.network, store, links), server)
    server.start()
    try:
        node = load_node(running.net.node_configs[ZVH])
        network = node.network.model_copy(
            update={"coordinator": node.network.coordinator.model_copy(update={"address": address})}
        )
        node = type(node)(node.path, node.component, network, node.tls)
        from betrokken.crypto.bsn import parse_bsn
        from betrokken.requester.client import Person

        with Requester.from_config(node) as requester:
            result = requester.ask(
                [Person(parse_bsn(_person(running)), "C-TAMPER")],
                purpose="zvh-triage",
                user="tester",
                role="regisseur",
            )
    finally:
        server.stop(0).wait()
        store.engine.dispose()
    outcomes = {r.organisation_id: r.answer.outcome.value for r in result.persons[0].answers}
    assert outcomes[POLITIE] == "error" and outcomes[RECLASSERING] == "error"
    assert result.complete is False
    assert "not-involved" not in (outcomes[POLITIE], outcomes[RECLASSERING])


def test_a_node_cannot_answer_in_another_organisations_name(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """politie's node claims the gemeente is involved: its reply is unusable (ERROR), and the
    gemeente's own answer stands."""
    from betrokken.answer import Answer, Outcome

    def lying(*_: object, **__: object) -> Answer:
        return Answer(Outcome.INVOLVED, organisation_id=GEMEENTE, organisation_name="Gemeente")

    monkeypatch.setattr(rules, "answer_for", lying)  # in this process only: the replaced node
    person = running.named["nowhere"].digits  # involved nowhere
    with replaced_node(running, POLITIE):
        result = running.query(ZVH, person, "zvh-triage", "C-LIAR")
    outcomes = {
        o["organisation_id"]: o["outcome"] for o in result.json["persons"][0]["organisations"]
    }
    assert outcomes[POLITIE] == "error" and outcomes[GEMEENTE] == "not-involved"
    assert result.code == 3
