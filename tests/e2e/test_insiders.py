"""The insiders' moves on a real running network (every service its own process, mutual TLS).

The coordinator's operator has its certificate, its signing key and its whole database; a node's
administrator keeps whatever reaches the node. Each test makes one move such an insider could make
and checks that it is refused (and, where a node notices the move, an alarm recorded) or learns
nothing — and would fail if the defence were removed.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from betrokken import rules
from betrokken.app.demo import GEMEENTE, GGZ, POLITIE, RECLASSERING, ZVH
from betrokken.audit.log import AuditLog, LogBase, leaf_bytes
from betrokken.audit.record import AuditEntry, Event
from betrokken.audit.witness import LogProof
from betrokken.clock import utcnow
from betrokken.config.load import Loaded, load_node
from betrokken.config.schema import Network, NodeConfig
from betrokken.coordinator.store import AuditStore, Receipt
from betrokken.coordinator.witnesses import WitnessRounds
from betrokken.crypto import envelope as env
from betrokken.crypto import merkle
from betrokken.crypto import question as q
from betrokken.crypto.note import Checkpoint, NoteKey, sign_checkpoint
from betrokken.db import make_engine
from betrokken.errors import AanmelderNotAllowed, VerificationError
from betrokken.identity.rpc import channel
from betrokken.requester.client import Prepared, Requester
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc
from betrokken.wire import log_proof_to_wire
from tests.e2e.conftest import Running, replaced_node
from tests.harness import trail_written

pytestmark = pytest.mark.e2e


@dataclass
class Insider:
    """The coordinator's operator: its certificate, its log key and its database."""

    running: Running
    rounds: WitnessRounds | None = None  # its own cosigning rounds, made on first use

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

    def proof(self, receipt: pb.LogProof, org: str, index: int | None = None) -> pb.LogProof:
        """The record of a question it recorded (the receipt's own, or record ``index`` that the
        receipt's cosigned checkpoint covers), proven consistent with what ``org`` witnessed."""
        store = self.store()
        try:
            seen = self.witnessed(org)
            proof = pb.LogProof()
            proof.CopyFrom(receipt)
            if index is not None:
                covered = store.receipt(index, (receipt.tree_size, receipt.checkpoint))
                proof.record = covered.record
                proof.leaf_index = covered.leaf_index
                del proof.inclusion_proof[:]
                proof.inclusion_proof.extend(covered.inclusion_proof)
            proof.consistency_size = seen[0] if seen else 0
            del proof.consistency_proof[:]
            proof.consistency_proof.extend(
                store.consistency(receipt.tree_size, seen[0] if seen else 0)
            )
            return proof
        finally:
            store.engine.dispose()

    def cosigned(self, store: AuditStore, index: int) -> Receipt:
        """A receipt for record ``index`` under a checkpoint the witnesses cosigned: the
        operator runs cosigning rounds of its own over the real nodes, as its coordinator would
        before it forwards."""
        from betrokken.coordinator.fanout import GrpcNodeLink
        from betrokken.identity.names import organisation_uri

        if self.rounds is None:
            network = self.running.network
            tls = self.running.keys.tls("coordinator")

            def latest() -> tuple[int, str] | None:
                checkpoint = store.log.latest_checkpoint()
                return (checkpoint.size, checkpoint.note) if checkpoint is not None else None

            cosign = {
                o.id: GrpcNodeLink(
                    o.node_address or "", tls, o.server_name, organisation_uri(o.id)
                ).cosign
                for o in network.nodes()
            }
            self.rounds = WitnessRounds(network, cosign, latest, store.consistency_proof)
        return store.receipt(index, self.covering(store, index))

    def covering(self, store: AuditStore, index: int) -> tuple[int, str]:
        """A checkpoint the witnesses cosigned that covers record ``index`` (its size and note):
        one round for several questions, as a busy coordinator's round covers them."""
        if self.rounds is None:
            self.cosigned(store, index)
        assert self.rounds is not None
        cosigned = self.rounds.covering(index + 1, time.monotonic() + 15)
        return (cosigned.size, cosigned.note)

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
    trail_written(db)
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


@contextmanager
def _own_coordinator(running: Running, servicer: type) -> Iterator[Loaded[NodeConfig]]:
    """A coordinator of the operator's own making (``servicer``, a subclass of the real one) with
    the real certificate and database, as a replica would share them; and the asking
    organisation's configuration pointed at it."""
    from betrokken.config.load import load_coordinator
    from betrokken.coordinator.fanout import GrpcNodeLink
    from betrokken.identity.names import organisation_uri
    from betrokken.identity.rpc import make_server
    from tests.test_adversarial import _free_port

    loaded = load_coordinator(running.net.coordinator_config)
    store = Insider(running).store()  # the same database: one log, as replicas share it
    links = {
        o.id: GrpcNodeLink(o.node_address or "", loaded.tls, o.server_name, organisation_uri(o.id))
        for o in running.network.nodes()
    }
    address = f"127.0.0.1:{_free_port()}"
    server = make_server(address, loaded.tls)
    pb_grpc.add_CoordinatorServicer_to_server(servicer(running.network, store, links), server)
    server.start()
    try:
        node = load_node(running.net.node_configs[ZVH])
        settings = node.network.coordinator.model_copy(update={"address": address})
        network = node.network.model_copy(update={"coordinator": settings})
        yield type(node)(node.path, node.component, network, node.tls)
    finally:
        server.stop(0).wait()
        store.engine.dispose()


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
            proof=insider.proof(response.receipt, POLITIE),
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
            proof=insider.proof(response.receipt, POLITIE),
        ),
    )
    _refused(result, "record-mismatch", running, POLITIE, before)
    assert "answer id" in result.details()  # type: ignore[union-attr]
    assert _disclosures(running, POLITIE, other.answer_id) == 0


def test_a_coordinator_cannot_give_a_node_an_envelope_of_its_own_or_another_nodes(
    running: Running,
) -> None:
    """The question commits to its envelopes by hash (a sorted list, no node ids); each is
    sealed to one node. A coordinator that seals an envelope of its own to politie for a logged
    question (to probe a person with a reply key it knows), or hands politie the gemeente's, is
    refused and raises an alarm."""
    insider = Insider(running)
    prepared = running.keys.prepare(ZVH, "zvh-triage", [(_person(running), "C-SWAP")])
    question = q.peek_question(prepared.note)
    purpose = running.network.purpose("zvh-triage")
    politie = running.network.organisation(POLITIE)
    assert purpose is not None and politie is not None
    store = insider.store()
    index = store.append(
        rules.search_entry_for(question, prepared.note, purpose, utcnow(), "insider")
    )
    store.engine.dispose()
    # A real question after it gets a checkpoint cosigned that covers the insider's record.
    later = _ask(running, running.keys.prepare(ZVH, "zvh-triage", [(_person(running), "C-LATER")]))
    own = q.EnvelopeContent(
        question.answer_id,
        POLITIE,
        env.new_reply_key(),
        (
            q.LookupItem.seal(
                secrets.token_bytes(64),
                politie.pseudonym_key_id,
                question.answer_id,
                POLITIE,
                0,
                q.NeedToKnow("C-PROBE", "coordinator"),
            ),
        ),
    )
    made_up = env.seal(
        politie.envelope_public_key,
        q.envelope_info(running.network.name, question.answer_id, POLITIE),
        own.to_bytes(),
    )
    for envelope, kind in ((made_up, "misdirected"), (prepared.envelopes[GEMEENTE], "envelope")):
        before = len(_alarms(running, POLITIE))
        result = insider.lookup(
            POLITIE,
            pb.LookupRequest(
                question=prepared.note,
                envelope=envelope,
                proof=insider.proof(later.receipt, POLITIE, index),
            ),
        )
        _refused(result, kind, running, POLITIE, before)
    assert _disclosures(running, POLITIE, prepared.answer_id) == 0


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


@pytest.mark.parametrize("role", ["dpo", "<b>anyone</b>"])
def test_a_requester_signing_a_role_its_purpose_does_not_allow_is_refused_everywhere(
    running: Running, role: str
) -> None:
    """Roles are a closed list: a requester that signs a role the purpose does not name (its own
    question key, its own certificate, past its own software's check) gets no pseudonym from the
    key service and no answer from the coordinator; a coordinator that forwards it anyway gets
    it refused at the node, with an alarm."""
    from betrokken.crypto.bsn import parse_bsn
    from betrokken.errors import PurposeNotAllowed
    from betrokken.keyservice.client import QUESTION, Pseudonymiser

    prepared = running.keys.prepare(ZVH, "zvh-triage", [(_person(running), "C-ROLE")], role=role)
    assert q.peek_question(prepared.note).role == role  # signed as the attacker chose
    with pytest.raises(grpc.RpcError) as refused:
        _ask(running, prepared)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may not ask for purpose 'zvh-triage'" in (refused.value.details() or "")
    assert _disclosures(running, POLITIE, prepared.answer_id) == 0
    before = len(_alarms(running, POLITIE))
    result = Insider(running).lookup(
        POLITIE, pb.LookupRequest(question=prepared.note, envelope=prepared.envelopes[POLITIE])
    )
    _refused(result, "not-allowed", running, POLITIE, before)
    with (
        Pseudonymiser(running.network, running.keys.tls(ZVH), ZVH) as client,
        pytest.raises(PurposeNotAllowed),
    ):
        client.pseudonymise_under(
            [parse_bsn(_person(running))],
            [ZVH, POLITIE],
            QUESTION,
            purpose="zvh-triage",
            role=role,
        )


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


def test_a_second_history_signed_for_one_question_is_refused_without_cosignatures(
    running: Running,
) -> None:
    """The coordinator signs a checkpoint that extends what the node witnessed with a record it
    never keeps. Once the node only took it on trust until its next witness check; now it is
    refused at once: no other witness cosigned it (docs/adr/0024, section 10). With the other
    witnesses' cosignatures it would be part of the history they vouch for — and every one of
    them refuses the real log from then on (tests/e2e/test_split_view.py)."""
    insider = Insider(running)
    config = str(running.net.node_configs[POLITIE])
    _ask(running, running.keys.prepare(ZVH, "zvh-triage", [(_person(running), "C-BEFORE-2")]))
    assert running.run("node", "witness", "--config", config, "--once").code in (0, 8)
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
    before = len(_alarms(running, POLITIE))
    result = insider.lookup(
        POLITIE,
        pb.LookupRequest(
            question=prepared.note,
            envelope=prepared.envelopes[POLITIE],
            proof=log_proof_to_wire(proof),
        ),
    )
    _refused(result, "no-quorum", running, POLITIE, before)
    assert "cosignature" in result.details()  # type: ignore[union-attr]
    assert _disclosures(running, POLITIE, prepared.answer_id) == 0


def _forged_cosignatures(note: str) -> str:
    """``note`` with every cosignature line's signature altered, the log's own line kept."""
    body, lines = note.split("\n\n", 1)
    own, *cosignatures = lines.rstrip("\n").split("\n")
    forged = []
    for line in cosignatures:
        name, blob = line.rsplit(" ", 1)
        raw = bytearray(base64.b64decode(blob))
        raw[-1] ^= 1
        forged.append(f"{name} {base64.b64encode(bytes(raw)).decode()}")
    assert forged, "the checkpoint carries no cosignatures to forge"
    return f"{body}\n\n" + "\n".join([own, *forged]) + "\n"


def test_a_forged_cosignature_over_a_checkpoint_the_node_already_verified_is_refused(
    running: Running,
) -> None:
    """The node keeps the checkpoints whose cosignatures it verified, so the next question under
    one costs no signature checks (docs/adr/0043). The coordinator reuses such a checkpoint —
    the same size, root and log signature — with cosignatures of its own making: it is another
    note, checked in full, and refused for want of the quorum. The same lookup with the genuine
    checkpoint is then answered: only the cosignatures were wrong."""
    insider = Insider(running)
    prepared = running.keys.prepare(ZVH, "zvh-triage", [(_person(running), "C-REUSED")])
    question = q.peek_question(prepared.note)
    purpose = running.network.purpose("zvh-triage")
    assert purpose is not None
    store = insider.store()
    index = store.append(
        rules.search_entry_for(question, prepared.note, purpose, utcnow(), "insider")
    )
    store.engine.dispose()
    # A real question after it: politie answers it under a cosigned checkpoint covering both.
    later = _ask(running, running.keys.prepare(ZVH, "zvh-triage", [(_person(running), "C-NEXT")]))
    assert {r.label: r.status for r in later.replies}[POLITIE] == pb.ANSWERED
    proof = insider.proof(later.receipt, POLITIE, index)
    genuine = proof.checkpoint
    proof.checkpoint = _forged_cosignatures(genuine)  # same size, root and log signature
    before = len(_alarms(running, POLITIE))
    request = pb.LookupRequest(
        question=prepared.note, envelope=prepared.envelopes[POLITIE], proof=proof
    )
    result = insider.lookup(POLITIE, request)
    _refused(result, "no-quorum", running, POLITIE, before)
    assert "cosignature" in result.details()  # type: ignore[union-attr]
    assert _disclosures(running, POLITIE, prepared.answer_id) == 0
    # (the proof made again: the node's witness state may have moved on meanwhile)
    request.proof.CopyFrom(insider.proof(later.receipt, POLITIE, index))
    assert request.proof.checkpoint == genuine
    answered = insider.lookup(POLITIE, request)
    assert isinstance(answered, pb.LookupResponse), answered
    assert _disclosures(running, POLITIE, prepared.answer_id) == 1


# --- a node's administrator -------------------------------------------------------------------
def _opened(running: Running, org: str, request: pb.LookupRequest) -> q.EnvelopeContent:
    question = q.peek_question(request.question)
    return q.EnvelopeContent.from_bytes(
        env.open_sealed(
            running.keys.envelope_key(org),
            q.envelope_info(running.network.name, question.answer_id, org),
            request.envelope,
        )
    )


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
    harvested = [i.lookup for request in kept for i in _opened(running, POLITIE, request).items]
    # Under politie's key, and only as a one-way hash of it: exactly the persons asked about...
    assert sorted(harvested) == sorted(
        q.lookup_key(keys.pseudonym(POLITIE, b.digits).value) for b in people
    )
    raw = b"".join(r.SerializeToString() for r in kept)
    opened = b"".join(_opened(running, POLITIE, r).to_bytes() for r in kept)
    # ... and nothing that is the person's pseudonym under any organisation's key (its own
    # included), nor anything in any other organisation's database (two nodes' data cannot be
    # joined).
    for bsn in people:
        for org in running.network.organisations:
            value = keys.pseudonym(org.id, bsn.digits).value
            for form in (value, value.hex().encode()):
                assert form not in raw and form not in opened
            if org.id != POLITIE:
                assert q.lookup_key(value) not in harvested
    for org in (GGZ, GEMEENTE, RECLASSERING, ZVH):
        data = b"".join(
            p.read_bytes() for p in running.net.node_configs[org].parent.glob("node.db*")
        )
        for value in harvested:
            assert value not in data and value.hex().encode() not in data
    # The tags in the question are useless to it too: they are made with ZVH's pseudonyms.
    for request in kept:
        question = q.peek_question(request.question)
        for bsn in people:
            own = keys.pseudonym(POLITIE, bsn.digits).value
            assert q.tag(own, question.answer_id) not in question.tags


def test_a_node_that_keeps_every_envelope_of_persons_it_does_not_know_finds_no_user_and_no_case(
    running: Running,
) -> None:
    """Need to know on a miss: politie's administrator keeps every byte that reaches its node.
    For persons not registered there the bytes hold neither the user nor the case (they are
    sealed under a key only the person's pseudonym gives), nor which other nodes were asked;
    for a person it knows, it can open them (it records them with its disclosure)."""
    strangers = [running.named["nowhere"], running.named["one"]]  # not at politie
    assert all(POLITIE not in running.truth.where(b) for b in strangers)
    known = running.named["several"]
    user, cases = "miss.onbekend", ["ZAAK-GEHEIM-1", "ZAAK-GEHEIM-2"]
    with replaced_node(running, POLITIE) as curious:
        for bsn, case in zip(strangers, cases, strict=True):
            answer = running.run(
                "query",
                "--config",
                str(running.net.node_configs[ZVH]),
                "--bsn",
                bsn.digits,
                "--purpose",
                "zvh-triage",
                "--case",
                case,
                "--user",
                user,
                "--json",
            )
            assert answer.code == 0, answer.stderr
        running.typed.update(b.digits for b in strangers)
        missed = list(curious.received)
        assert running.query(ZVH, known.digits, "zvh-triage", "ZAAK-BEKEND").code == 0
        hit = curious.received[-1]
    assert len(missed) == len(strangers)
    everything = b"".join(r.SerializeToString() for r in missed)
    for request in missed:  # the envelope opened with the node's key, each item decoded too
        opened_envelope = _opened(running, POLITIE, request)
        everything += opened_envelope.to_bytes()
        everything += b"".join(i.lookup + i.sealed for i in opened_envelope.items)
    for secret in (user, *cases):
        for form in (secret.encode(), secret.encode("utf-16-le"), secret.encode().hex().encode()):
            assert form not in everything, f"{secret} reached a node that does not know the person"
    # Its own key opens nothing of it: the sealed part needs the pseudonym, which it lacks.
    for request in missed:
        question = q.peek_question(request.question)
        item = _opened(running, POLITIE, request).items[0]
        with pytest.raises(VerificationError):
            item.open(b"\x00" * 64, question.answer_id, POLITIE, 0)
        # The question names the requester and its aanmelder; never another node.
        others = {o.id for o in running.network.organisations} - {ZVH, question.on_behalf_of}
        assert not any(org.encode() in request.question.encode() for org in others)
        assert len(question.envelopes) == len(
            rules.nodes_to_ask(running.network, "zvh-triage", ZVH)
        )
    # Control: for a person it knows, the case and user open with its own pseudonym.
    question = q.peek_question(hit.question)
    item = _opened(running, POLITIE, hit).items[0]
    known_pseudonym = running.keys.pseudonym(POLITIE, known.digits).value
    opened = item.open(known_pseudonym, question.answer_id, POLITIE, 0)
    assert (opened.case, opened.user) == ("ZAAK-BEKEND", "tester")


def test_a_node_that_discloses_nothing_for_a_purpose_receives_no_bytes_about_it(
    running: Running,
) -> None:
    """The gemeente declines zsm-context: its node hears nothing of the question. (The GGZ,
    which defers, now receives it: its professionals decide; see tests/e2e/test_defer.py.)"""
    person = running.named["several"].digits  # registered at both
    for org in (GEMEENTE,):
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
        assert entry["by_policy"] is True and entry["outcome"] == "declined"


# --- a coordinator that tampers with answers -----------------------------------------------------
def test_a_coordinator_that_forges_or_drops_replies_never_produces_a_no(
    running: Running, tmp_path: Path
) -> None:
    """A coordinator replacing politie's sealed reply with one it made, and dropping the
    reclassering's: the requester shows ERROR for both, never 'not involved' (P5)."""
    from betrokken.coordinator.servicer import CoordinatorServicer

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

    from betrokken.crypto.bsn import parse_bsn
    from betrokken.requester.client import Person

    with (
        _own_coordinator(running, Tampering) as node,
        Requester.from_config(node) as requester,
    ):
        result = requester.ask(
            [Person(parse_bsn(_person(running)), "C-TAMPER")],
            purpose="zvh-triage",
            user="tester",
            role="regisseur",
        )
    outcomes = {r.organisation_id: r.answer.outcome.value for r in result.persons[0].answers}
    assert outcomes[POLITIE] == "error" and outcomes[RECLASSERING] == "error"
    assert result.complete is False
    assert "not-involved" not in (outcomes[POLITIE], outcomes[RECLASSERING])


def test_a_requester_refuses_a_receipt_the_witnesses_did_not_cosign(running: Running) -> None:
    """A coordinator that strips the cosignatures from the receipt (or never had them): the
    requesting side does not trust the answer's record, and keeps an alarm (P6)."""
    from betrokken.coordinator.servicer import CoordinatorServicer
    from betrokken.crypto.bsn import parse_bsn
    from betrokken.errors import VerificationError
    from betrokken.requester.client import Person

    class Stripping(CoordinatorServicer):
        def Query(self, request, context):  # type: ignore[no-untyped-def]
            response = super().Query(request, context)
            body, lines = response.receipt.checkpoint.split("\n\n", 1)
            own = lines.split("\n", 1)[0]  # the coordinator's own signature line only
            response.receipt.checkpoint = f"{body}\n\n{own}\n"
            return response

    before = _alarms(running, ZVH).count("receipt-no-quorum")
    with (
        _own_coordinator(running, Stripping) as node,
        Requester.from_config(node) as requester,
        pytest.raises(VerificationError, match="cosignature") as refused,
    ):
        requester.ask(
            [Person(parse_bsn(_person(running)), "C-STRIPPED")],
            purpose="zvh-triage",
            user="tester",
            role="regisseur",
        )
    assert "witnessed" in refused.value.message
    assert _alarms(running, ZVH).count("receipt-no-quorum") == before + 1


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


# --- a requester that hides a question from access requests ---------------------------------------
def test_a_requester_that_writes_wrong_tags_cannot_hide_its_question_from_an_access_request(
    running: Running,
) -> None:
    """ZVH signs a question whose tags are random, not made from its pseudonyms of the persons.
    The coordinator's access request finds it anyway: every node that answered signed tags of
    its own, made from what it received; the DPO sees that the asker's tags did not match."""
    several, nowhere = running.named["several"], running.named["nowhere"]
    prepared = running.keys.prepare(
        ZVH, "zvh-triage", [(several.digits, "C-HIDDEN-1"), (nowhere.digits, "C-HIDDEN-2")]
    )
    honest = q.peek_question(prepared.note)
    hiding = dataclasses.replace(honest, tags=tuple(secrets.token_hex(32) for _ in honest.tags))
    prepared.note = q.sign_question(hiding, running.keys.question_key(ZVH))
    response = _ask(running, prepared)
    assert all(r.status == pb.ANSWERED for r in response.replies)
    search = response.receipt.leaf_index
    for bsn in (several, nowhere):  # a hit at some nodes, and a person known nowhere
        running.typed.add(bsn.digits)
        found = running.run(
            "audit",
            "subject",
            "--config",
            str(running.net.coordinator_config),
            "--bsn",
            bsn.digits,
            "--via",
            str(running.net.node_configs[ZVH]),
            "--user",
            "fg.test",
        )
        assert found.code == 0, found.stderr
        assert f"(record {search})" in found.stdout, found.stdout
        assert "tags in this question do not name this person" in found.stdout
    # The answered record holds each node's tags with its signature, and `audit verify` checks
    # them against the trail keys the network file pins.
    verified = running.run("audit", "verify", "--config", str(running.net.coordinator_config))
    assert verified.code == 0 and "nodes' signed tags" in verified.stdout, verified.stdout


def test_a_node_whose_tags_its_trail_key_did_not_sign_is_failed_never_a_no(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """politie's node signs its tags with a key the network file does not pin (or one that is
    not its own): the coordinator refuses its reply before recording anything from it — the
    requester shows ERROR for politie, never "not involved", and the answered record lists it
    as failed, without tags."""
    stranger = NoteKey.generate("betrokken/e2e/politie-nh")
    real = q.sign_node_tags

    def foreign(key: NoteKey, *args: object) -> bytes:
        return real(stranger, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(q, "sign_node_tags", foreign)  # in this process only: the replaced node
    with replaced_node(running, POLITIE):
        result = running.query(ZVH, running.named["nowhere"].digits, "zvh-triage", "C-TAGS")
    outcomes = {
        o["organisation_id"]: o["outcome"] for o in result.json["persons"][0]["organisations"]
    }
    assert outcomes[POLITIE] == "error" and result.code == 3
    assert outcomes[GEMEENTE] == "not-involved"  # the others stand
    with sqlite3.connect(Insider(running).db) as conn:
        (content,) = conn.execute(
            "select content from log_records where event = 'outcome' and answer_id = ?",
            (result.json["answer_id"],),
        ).fetchone()
    details = json.loads(content)["details"]
    assert POLITIE in details["failed"].split(",") and POLITIE not in details["answered"]
    assert POLITIE not in q.read_node_tags(details["node_tags"])


def test_a_coordinator_cannot_record_node_tags_of_its_own(running: Running, tmp_path: Path) -> None:
    """The coordinator's operator appends an answered record with tags it made itself (to pin a
    question on a person, or to replace tags that would find one): its log still verifies as a
    Merkle log, but `audit verify` names the record whose tags no node signed."""
    insider = Insider(running)
    copy = tmp_path / "coordinator.db"
    with sqlite3.connect(insider.db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    key = running.keys.log_key()
    log = AuditLog(make_engine(f"sqlite:///{copy}", LogBase.metadata), key, key.name)
    made_up = q.NodeTags((secrets.token_hex(32),), secrets.token_bytes(64))
    [index] = log.append(
        [
            AuditEntry(
                event=Event.OUTCOME,
                at=utcnow(),
                answer_id="00000000-0000-4000-8000-00000000beef",
                organisation=ZVH,
                details={"answered": POLITIE, "node_tags": q.node_tags_record({POLITIE: made_up})},
            )
        ]
    )
    log.engine.dispose()
    config = tmp_path / "coordinator.toml"
    original = running.net.coordinator_config
    text = original.read_text().replace('"sqlite:///coordinator.db"', f'"sqlite:///{copy}"')
    for name in ("log.key", "coordinator.crt", "coordinator.key"):
        text = text.replace(f'"{name}"', f'"{original.parent / name}"')
    text = text.replace('"../network.toml"', f'"{running.net.network_file}"')
    text = text.replace('"../ca/ca.crt"', f'"{running.net.directory / "ca" / "ca.crt"}"')
    config.write_text(text)
    verified = running.run("audit", "verify", "--config", str(config))
    assert verified.code == 8, verified.stdout + verified.stderr
    assert f"record {index}: node tags not signed by the node" in verified.stdout


# --- the key service's callers --------------------------------------------------------------------
def _small_keyservice(running: Running, quota: int) -> Network:
    """A second key service process with the network's seed and a small question quota, on its
    own port and database; the network as its clients see it."""
    from betrokken.app.cluster import betrokken_command
    from betrokken.app.devnet import find_ports

    folder = running.net.directory / f"keyservice-{quota}"
    folder.mkdir(exist_ok=True)
    [port] = find_ports(1, None)
    address = f"127.0.0.1:{port}"
    text = running.net.network_file.read_text()
    text = text.replace(running.network.keyservice.address, address)
    text = re.sub(r"default_daily_quota = \d+", f"default_daily_quota = {quota}", text)
    (folder / "network.toml").write_text(text)
    (folder / "keyservice.toml").write_text(
        "\n".join(
            [
                'network = "network.toml"',
                'database = "sqlite:///keyservice.db"',
                'oprf_seed = "../keyservice/oprf.seed"',
                'log_key = "../keyservice/log.key"',
                f'listen = "{address}"',
                "[tls]",
                'certificate = "../keyservice/keyservice.crt"',
                'private_key = "../keyservice/keyservice.key"',
                'ca = "../ca/ca.crt"',
                "",
            ]
        )
    )
    running.cluster.start_process(
        f"keyservice-{quota}",
        betrokken_command("keyservice", "serve", "--config", folder / "keyservice.toml"),
        address,
    )
    from betrokken.config.load import load_network

    return load_network(folder / "network.toml")


def test_the_key_service_evaluates_only_for_what_a_caller_may_ask_with_a_quota_per_key(
    running: Running,
) -> None:
    """The key-service insider attack: an organisation that may ask no purpose gets no
    evaluation at all; one that may ask gets only the keys of that purpose's nodes and its own;
    and a quota counts persons under each key, so five keys cost five times one."""
    from betrokken.crypto.bsn import parse_bsn
    from betrokken.errors import PolicyRefusal, PurposeNotAllowed, QuotaExceeded
    from betrokken.keyservice.client import ACCESS_REQUEST, QUESTION, Pseudonymiser

    network = _small_keyservice(running, quota=10)
    person = parse_bsn(running.named["several"].digits)
    everyone = [o.id for o in network.organisations]
    try:
        # 1. The reclassering may ask no purpose: not one evaluation, whatever it names.
        with Pseudonymiser(network, running.keys.tls(RECLASSERING), RECLASSERING) as fishing:
            for purpose in ["", *(p.id for p in network.purposes)]:
                with pytest.raises(PolicyRefusal):
                    fishing.pseudonymise_under(
                        [person], everyone, QUESTION, purpose=purpose, role="regisseur"
                    )
            # Its DPO's access request is its own use: every key, a small quota, each use kept.
            with pytest.raises(QuotaExceeded):
                fishing.pseudonymise_under([person] * 21, everyone, ACCESS_REQUEST, role="dpo")
            fishing.pseudonymise_under([person], everyone, ACCESS_REQUEST, role="dpo")
        # 2. The politie may ask zsm-context: only under the keys of the nodes that purpose asks
        #    (the GGZ's too, which defers: its professionals decide on a hit; not the
        #    gemeente's, which declines) and its own.
        ask = {"purpose": "zsm-context", "role": "regisseur"}
        with Pseudonymiser(network, running.keys.tls(POLITIE), POLITIE) as politie:
            for outside in (GEMEENTE,):
                with pytest.raises(PurposeNotAllowed):
                    politie.pseudonymise_under([person], [POLITIE, outside], QUESTION, **ask)
            with pytest.raises(PurposeNotAllowed):  # a purpose it may not ask
                politie.pseudonymise_under(
                    [person], [POLITIE, ZVH], QUESTION, purpose="zvh-triage", role="regisseur"
                )
            # 3. The quota (10 a day) counts persons under each key.
            politie.pseudonymise_under([person] * 6, [POLITIE, ZVH], QUESTION, **ask)
            politie.pseudonymise_under([person] * 4, [POLITIE, RECLASSERING], QUESTION, **ask)
            with pytest.raises(QuotaExceeded) as info:  # its own key: 10 used
                politie.pseudonymise_under([person], [POLITIE], QUESTION, **ask)
            assert "under its own key" in info.value.message
            politie.pseudonymise_under([person] * 4, [ZVH, RECLASSERING], QUESTION, **ask)
            with pytest.raises(QuotaExceeded) as info:  # the zvh's key: 10 used
                politie.pseudonymise_under([person], [ZVH, RECLASSERING], QUESTION, **ask)
            assert f"key of {ZVH}" in info.value.message
            politie.pseudonymise_under([person] * 2, [RECLASSERING], QUESTION, **ask)  # 10
    finally:
        running.cluster.stop_process("keyservice-10")
    # Every refusal and the access request are records in that key service's own log.
    db = running.net.directory / "keyservice-10" / "keyservice.db"
    with sqlite3.connect(db) as conn:
        rows = [
            json.loads(c)
            for (c,) in conn.execute('select content from log_records order by "index"')
        ]
    refused = [(r["organisation"], r["reason"]) for r in rows if r["event"] == "refusal"]
    assert refused.count((RECLASSERING, "UnknownPurpose")) == 1
    assert refused.count((RECLASSERING, "PurposeNotAllowed")) == len(network.purposes)
    # the gemeente's key (it declines zsm-context) and a purpose the politie may not ask
    assert refused.count((POLITIE, "PurposeNotAllowed")) == 2
    assert refused.count((POLITIE, "QuotaExceeded")) == 2
    uses = [r for r in rows if r["event"] == "key-use"]
    assert [(u["organisation"], u["role"], u["details"]["keys"]) for u in uses] == [
        (RECLASSERING, "dpo", str(len(everyone)))
    ]


# --- timing ---------------------------------------------------------------------------------------
def _detrended(samples: list[tuple[float, bool]], k: int) -> list[tuple[float, bool]]:
    """Each time minus the median of its neighbours' (the machine's load drifts; a patient
    coordinator compares a lookup with the ones around it). Labels are not used."""
    out = []
    for i, (t, hit) in enumerate(samples):
        around = sorted(u for u, _ in samples[max(0, i - k) : i] + samples[i + 1 : i + 1 + k])
        out.append((t - around[len(around) // 2], hit))
    return out


def _threshold_accuracy(train: list[tuple[float, bool]], test: list[tuple[float, bool]]) -> float:
    """Balanced accuracy on ``test`` of the best single threshold (either direction) on
    ``train``: the coordinator's operator guessing hit or miss from a node's response time."""

    def balanced(samples: list[tuple[float, bool]], cut: float, above_is_hit: bool) -> float:
        hits = [t for t, h in samples if h]
        misses = [t for t, h in samples if not h]
        right_hits = sum((t > cut) == above_is_hit for t in hits) / len(hits)
        right_misses = sum((t > cut) != above_is_hit for t in misses) / len(misses)
        return (right_hits + right_misses) / 2

    best = max(
        ((cut, up) for cut, _ in train for up in (True, False)),
        key=lambda c: balanced(train, c[0], c[1]),
    )
    return balanced(test, *best)


# Hits and misses together, in random order; half train the threshold, half test it. With 500
# tested, a coin's balanced accuracy has a standard deviation of about 0.022, so the margin is
# more than 3.5 of them; the v1 write path (disclosure records in the lookup's transaction) was
# guessed 0.63-0.65 right on this machine.
TIMING_SAMPLES = 1000
TIMING_BATCH = 20  # questions recorded, then cosigned in one round, before they are looked up
TIMING_NEIGHBOURS = 10  # the detrended guess compares a lookup with this many on either side
TIMING_MARGIN = 0.08  # a guess from the time may beat a coin by at most this much


def test_a_coordinator_cannot_tell_a_hit_from_a_miss_by_the_nodes_response_time(
    running: Running,
) -> None:
    """The coordinator's operator times every lookup it forwards to the politie node (a real
    process), for persons registered there and persons known nowhere, in random order. A
    threshold on the time, trained on half the lookups, must guess the other half no better than
    a coin, within TIMING_MARGIN."""
    import random
    import time

    from betrokken.crypto.bsn import generate_bsn
    from betrokken.errors import WitnessStale
    from betrokken.identity.rpc import error_from_rpc

    rng = random.Random(20261207)
    known = [b.digits for b in running.truth.registrations[POLITIE][:20]]
    everyone = {b.digits for people in running.truth.registrations.values() for b in people}
    strangers: list[str] = []
    while len(strangers) < 20:
        digits = generate_bsn(rng).digits
        if digits not in everyone:
            strangers.append(digits)
    insider = Insider(running)
    store = insider.store()
    purpose = running.network.purpose("zvh-triage")
    node = running.network.organisation(POLITIE)
    assert purpose is not None and node is not None and node.node_address
    seen = insider.witnessed(POLITIE)
    witnessed = seen[0] if seen else None
    labels = [i % 2 == 0 for i in range(TIMING_SAMPLES + 20)]
    rng.shuffle(labels)
    samples: list[tuple[float, bool]] = []
    tls = running.keys.tls("coordinator")
    try:
        with channel(node.node_address, tls, node.server_name) as ch:
            stub = pb_grpc.NodeStub(ch)
            batches = [labels[i : i + TIMING_BATCH] for i in range(0, len(labels), TIMING_BATCH)]
            for first, batch in zip(range(0, len(labels), TIMING_BATCH), batches, strict=True):
                recorded = []
                for turn, hit in enumerate(batch, start=first):
                    digits = (known if hit else strangers)[turn % 20]
                    running.typed.add(digits)
                    prepared = running.keys.prepare(ZVH, "zvh-triage", [(digits, f"C-T-{turn}")])
                    question = q.peek_question(prepared.note)
                    index = store.append(
                        rules.search_entry_for(question, prepared.note, purpose, utcnow(), "timing")
                    )
                    recorded.append((turn, hit, prepared, index))
                at = insider.covering(store, recorded[-1][3])  # one cosigning round a batch
                asked = [(t, h, p, store.receipt(i, at)) for t, h, p, i in recorded]
                for turn, hit, prepared, receipt in asked:
                    for _attempt in range(3):
                        request = pb.LookupRequest(
                            question=prepared.note,
                            envelope=prepared.envelopes[POLITIE],
                            proof=log_proof_to_wire(store.log_proof(receipt, witnessed)),
                        )
                        started = time.perf_counter()
                        try:
                            response = stub.Lookup(request, timeout=15)
                        except grpc.RpcError as exc:
                            error = error_from_rpc(exc, "node", node.node_address)
                            assert isinstance(error, WitnessStale), error.message
                            witnessed = error.witnessed_size
                            continue
                        elapsed = time.perf_counter() - started
                        witnessed = response.witnessed_size or witnessed
                        break
                    else:
                        raise AssertionError("the node kept answering WitnessStale")
                    if turn >= 20:  # the first ones warm channels and caches
                        samples.append((elapsed, hit))
    finally:
        store.engine.dispose()
    accuracy = _threshold_accuracy(samples[0::2], samples[1::2])
    relative = _detrended(samples, TIMING_NEIGHBOURS)
    detrended = _threshold_accuracy(relative[0::2], relative[1::2])
    hits = sorted(t for t, h in samples if h)
    misses = sorted(t for t, h in samples if not h)
    summary = (
        f"median hit {hits[len(hits) // 2] * 1000:.2f} ms, miss "
        f"{misses[len(misses) // 2] * 1000:.2f} ms; a threshold guesses {accuracy:.3f} right, "
        f"{detrended:.3f} on the time relative to the neighbouring lookups"
    )
    print(summary)
    assert max(accuracy, detrended) <= 0.5 + TIMING_MARGIN, summary


# --- a requester that skips its own checks: the nodes check what they can read --------------------
def _with_aanmelder(network: Network, purpose_id: str, aanmelder: str) -> Network:
    """``network`` with ``aanmelder`` added to the purpose's on_behalf_of (an insider's copy)."""
    from betrokken.config.schema import Aanmelder

    purposes = [
        p.model_copy(
            update={
                "on_behalf_of": [
                    *p.on_behalf_of,
                    Aanmelder(organisation=aanmelder, legal_basis="eigen"),
                ]
            }
        )
        if p.id == purpose_id
        else p
        for p in network.purposes
    ]
    return network.model_copy(update={"purposes": purposes})


def test_a_question_for_an_aanmelder_the_network_file_does_not_list_is_refused_at_the_node(
    running: Running,
) -> None:
    """The ZVH signs a question "on behalf of" the GGZ, which zvh-triage does not list as an
    aanmelder, past its own software's check; the coordinator's operator has added the GGZ to
    its own copy of the network file, so the question is logged, cosigned and forwarded. Every
    node reads the aanmelder from the signed question and checks it against its own network
    file: refused, an alarm of its own kind, nothing disclosed. A question for a listed
    aanmelder (the control) is answered, and the node records the aanmelder's basis."""
    from betrokken.coordinator.servicer import CoordinatorServicer

    class Lenient(CoordinatorServicer):
        def __init__(self, network: Network, *args: object, **kwargs: object) -> None:
            super().__init__(_with_aanmelder(network, "zvh-triage", GGZ), *args, **kwargs)  # type: ignore[arg-type]

    person = _only_at_politie(running)
    forged = running.keys.prepare(ZVH, "zvh-triage", [(person, "C-BEHALF")], on_behalf_of=GGZ)
    assert q.peek_question(forged.note).on_behalf_of == GGZ  # signed as the attacker chose
    with pytest.raises(AanmelderNotAllowed):  # the requester's own software refuses it
        rules.check_may_ask(running.network, ZVH, "zvh-triage", "regisseur", GGZ)
    before = len(_alarms(running, POLITIE))
    with _own_coordinator(running, Lenient) as node:
        address = node.network.coordinator.address
        response = _ask_at(running, address, forged)
    assert POLITIE in _failed(response), "the node answered a question for an unlisted aanmelder"
    assert _disclosures(running, POLITIE, forged.answer_id) == 0
    assert _alarms(running, POLITIE)[before:] == ["aanmelder-not-allowed"]
    # The control: for a listed aanmelder the same person is disclosed, with that basis.
    lawful = running.keys.prepare(ZVH, "zvh-triage", [(person, "C-BEHALF")], on_behalf_of=GEMEENTE)
    _ask(running, lawful)
    assert _disclosures(running, POLITIE, lawful.answer_id) == 1
    [record] = _trail(running, POLITIE, "disclosure", lawful.answer_id)
    basis = rules.aanmelder_basis(running.network, "zvh-triage", GEMEENTE)
    assert basis and record["details"]["aanmelder_basis"] == basis
    assert record["details"]["on_behalf_of"] == GEMEENTE


def test_a_node_refuses_a_known_person_asked_under_a_case_reference_that_is_not_the_askers(
    running: Running,
) -> None:
    """The network file gives the ZVH a pattern for its case references; a ZVH whose software
    skips its own check (here: its copy of the file lacks the pattern) asks about a person known
    at the politie under the case "ALGEMEEN". The politie's node opens the case on the hit, checks
    it against the ZVH's pattern in its own network file, and answers "case-refused" — never "not
    involved" — with an alarm and no disclosure. The same person under a reference of the ZVH's
    case system (the control) is disclosed."""
    zvh = running.network.organisation(ZVH)
    assert zvh is not None and not zvh.case_pattern  # the asker's copy: no pattern to check
    pattern = r"ZVH-\d{4}-\d{3,6}"
    strict = running.network.model_copy(
        update={
            "organisations": [
                o.model_copy(update={"case_pattern": pattern}) if o.id == ZVH else o
                for o in running.network.organisations
            ]
        }
    )
    person = _only_at_politie(running)
    before = len(_alarms(running, POLITIE))
    with replaced_node(running, POLITIE, network=strict):
        refused = running.query(ZVH, person, "zvh-triage", "ALGEMEEN")
        lawful = running.query(ZVH, person, "zvh-triage", "ZVH-2026-0042")
    outcomes = {
        o["organisation_id"]: o["outcome"] for o in refused.json["persons"][0]["organisations"]
    }
    assert outcomes[POLITIE] == "case-refused", outcomes
    assert _disclosures(running, POLITIE, refused.json["answer_id"]) == 0
    [alarm] = _trail(running, POLITIE, "alarm", refused.json["answer_id"])
    assert alarm["reason"] == "case-refused" and alarm["details"]["requester"] == ZVH
    assert "case-refused" in _alarms(running, POLITIE)[before:]
    # The control: a reference of the ZVH's case system is answered and disclosed as usual.
    good = {o["organisation_id"]: o["outcome"] for o in lawful.json["persons"][0]["organisations"]}
    assert good[POLITIE] == "involved", good
    assert _disclosures(running, POLITIE, lawful.json["answer_id"]) == 1


def _only_at_politie(running: Running) -> str:
    """Someone registered at the politie only: the questions of these tests leave no notice at
    another partner (other tests read those)."""
    from tests.e2e.test_after_the_hit import only_at

    return only_at(running, POLITIE)[0].digits


def _ask_at(running: Running, address: str, prepared: Prepared) -> pb.QueryResponse:
    """Send a prepared question through the coordinator at ``address``."""
    request = pb.QueryRequest(
        question=prepared.note,
        envelopes=[pb.Envelope(node=n, sealed=s) for n, s in prepared.envelopes.items()],
    )
    with channel(address, running.keys.tls(ZVH), running.network.coordinator.tls_name) as ch:
        response: pb.QueryResponse = pb_grpc.CoordinatorStub(ch).Query(request, timeout=30)
    return response


def _failed(response: pb.QueryResponse) -> set[str]:
    """The nodes whose answer the coordinator reports as a problem (refused, unreachable)."""
    return {reply.label for reply in response.replies if reply.problem}


def _trail(running: Running, org: str, event: str, answer_id: str) -> list[dict[str, Any]]:
    db = running.net.node_configs[org].parent / "node.db"
    trail_written(db)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select content from log_records where event = ? and answer_id = ?",
            (event, answer_id),
        ).fetchall()
    return [json.loads(c) for (c,) in rows]
