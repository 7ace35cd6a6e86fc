"""The properties P1–P8 of docs (shared/architecture.md), each tested on a real running network.

Each test would fail if its property broke.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import grpc
import pytest

from betrokken.config.schema import TlsFiles
from betrokken.crypto import oprf
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.demo import GGZ, POLITIE, RECLASSERING, ZVH
from betrokken.identity.names import COORDINATOR_URI, KEYSERVICE_URI, organisation_uri
from betrokken.identity.pki import Issued, create_ca, issue_certificate, write_issued
from betrokken.identity.rpc import channel
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc
from tests.e2e.conftest import Running

pytestmark = pytest.mark.e2e


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _secret(running: Running) -> bytes:
    return bytes.fromhex((running.net.directory / "keyservice" / "oprf.key").read_text().strip())


def _pseudonym(running: Running, digits: str) -> bytes:
    return oprf.evaluate(_secret(running), digits.encode())


def _disclosures(running: Running, org: str) -> list[tuple[str, ...]]:
    db = running.net.node_configs[org].parent / "node.db"
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "select answer_id, requester_organisation, user, purpose, case_reference "
            "from disclosures"
        ).fetchall()


def _audit(running: Running) -> list[tuple[int, str, str]]:
    with sqlite3.connect(running.net.directory / "coordinator" / "coordinator.db") as conn:
        return conn.execute(
            'select "index", answer_id, event from log_records order by "index"'
        ).fetchall()


def _ca(running: Running) -> Issued:
    ca_dir = running.net.directory / "ca"
    return Issued((ca_dir / "ca.key").read_bytes(), (ca_dir / "ca.crt").read_bytes())


def _tls(running: Running, tmp: Path, issued: Issued, ca_pem: bytes | None = None) -> TlsFiles:
    cert, key = write_issued(tmp, "peer", issued)
    ca = tmp / "ca.crt"
    ca.write_bytes(ca_pem or _ca(running).cert_pem)
    return TlsFiles(certificate=str(cert), private_key=str(key), ca=str(ca))


def _query_request(running: Running, purpose: str = "zvh-triage") -> pb.QueryRequest:
    value = _pseudonym(running, running.named["several"].digits)
    return pb.QueryRequest(
        context=pb.QueryContext(purpose=purpose, user="x", role="regisseur"),
        items=[
            pb.QueryItem(
                pseudonym=pb.Pseudonym(value=value, key_id=running.network.keyservice.key_id),
                case_reference="C-P",
            )
        ],
    )


# --- P1 ------------------------------------------------------------------------------------------
def test_p1_no_bsn_at_rest(running: Running) -> None:
    """After hits, misses, bad input and a failure scenario, no file written holds a BSN."""
    several = running.named["several"].digits
    assert running.query(ZVH, several, "zvh-triage").code == 0
    assert running.query(ZVH, running.named["nowhere"].digits, "zvh-triage").code == 0
    assert running.query(ZVH, "123456789", "zvh-triage").code == 2
    assert running.query(ZVH, several, "zsm-context").code == 4
    running.cluster.stop_node(GGZ)
    try:
        assert running.query(ZVH, several, "zvh-triage").code == 3
    finally:
        running.cluster.start_node(GGZ)
    # register and withdraw one at a time too
    one = running.named["one"].digits
    config = str(running.net.node_configs[POLITIE])
    assert running.run("node", "register", "--config", config, "--bsn", one).code == 0
    assert running.run("node", "withdraw", "--config", config, "--bsn", one).code == 0

    bsns = running.all_bsns()
    assert len(bsns) > 200
    files = _files(running.net.directory)
    assert any(f.name == "node.db" for f in files)
    assert any(f.name == "coordinator.db" for f in files)
    assert any(f.suffix == ".log" for f in files)
    offenders = []
    for path in files:
        data = path.read_bytes()
        for bsn in bsns:
            if bsn.encode() in data:
                offenders.append((path.name, bsn[-3:]))
    assert offenders == []


# --- P2 ------------------------------------------------------------------------------------------
def test_p2_pseudonymisation_key_only_in_the_key_service(running: Running) -> None:
    secret = _secret(running)
    keyservice_dir = running.net.directory / "keyservice"
    for path in _files(running.net.directory):
        if keyservice_dir in path.parents:
            continue
        data = path.read_bytes()
        assert secret not in data, path
        assert secret.hex().encode() not in data, path
    # Node and coordinator configurations do not point at the key.
    for config in [*running.net.node_configs.values(), running.net.coordinator_config]:
        assert "oprf_key" not in config.read_text()
    # Without the key, a node's stored pseudonyms cannot be recomputed from a BSN:
    # a different key gives an unrelated value.
    digits = running.named["several"].digits
    other = oprf.generate_key_pair()
    assert oprf.evaluate(other.secret, digits.encode()) != _pseudonym(running, digits)
    node_dir = running.net.node_configs[POLITIE].parent
    db = b"".join(p.read_bytes() for p in node_dir.glob("node.db*"))  # WAL included
    assert _pseudonym(running, digits) in db


# --- P3 ------------------------------------------------------------------------------------------
def test_p3_node_learns_only_when_involved(running: Running) -> None:
    before = {org: len(_disclosures(running, org)) for org in running.net.node_configs}
    miss = running.query(ZVH, running.named["nowhere"].digits, "zvh-triage", "CASE-MISS")
    assert miss.code == 0
    after_miss = {org: len(_disclosures(running, org)) for org in running.net.node_configs}
    assert after_miss == before  # a miss leaves nothing at any node
    miss_id = miss.json["answer_id"]
    for log in (running.net.directory / "logs").glob("node-*.log"):
        assert miss_id not in log.read_text()

    hit = running.query(ZVH, running.named["several"].digits, "zvh-triage", "CASE-HIT")
    hit_id = hit.json["answer_id"]
    rows = [r for r in _disclosures(running, POLITIE) if r[0] == hit_id]
    assert rows == [(hit_id, ZVH, "tester", "zvh-triage", "CASE-HIT")]
    # Nodes that were not involved recorded nothing about this query either.
    assert not [r for r in _disclosures(running, ZVH) if r[0] == hit_id]


# --- P4 ------------------------------------------------------------------------------------------
def test_p4_no_central_index(running: Running) -> None:
    coordinator_db = running.net.directory / "coordinator" / "coordinator.db"
    with sqlite3.connect(coordinator_db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert tables == {"log_records", "log_subjects", "log_head", "log_checkpoints"}
    data = b"".join(p.read_bytes() for p in coordinator_db.parent.glob("coordinator.db*"))
    queried = running.typed
    never_asked = [
        b for regs in running.truth.registrations.values() for b in regs if b.digits not in queried
    ]
    assert len(never_asked) > 100
    for bsn in never_asked:
        value = _pseudonym(running, bsn.digits)
        assert value not in data and value.hex().encode() not in data


# --- P5 ------------------------------------------------------------------------------------------
def test_p5_never_a_false_no(running: Running) -> None:
    bsn = running.named["several"].digits  # registered at reclassering
    running.cluster.stop_node(RECLASSERING)
    try:
        result = running.query(ZVH, bsn, "zvh-triage")
    finally:
        running.cluster.start_node(RECLASSERING)
    assert result.code == 3
    answer = result.json
    assert answer["complete"] is False and answer["persons"][0]["complete"] is False
    entry = next(
        o for o in answer["persons"][0]["organisations"] if o["organisation_id"] == RECLASSERING
    )
    assert entry["outcome"] == "unreachable"
    assert "incomplete" in answer["persons"][0]["completeness"].lower()


# --- P6 ------------------------------------------------------------------------------------------
def test_p6_recorded_before_answered_and_fails_closed(running: Running) -> None:
    result = running.query(ZVH, running.named["several"].digits, "zvh-triage")
    answer_id = result.json["answer_id"]
    events = [(seq, event) for seq, aid, event in _audit(running) if aid == answer_id]
    assert [e for _, e in events] == ["search", "outcome"]
    # The receipt the requester got proves the search record, before the outcome.
    assert result.json["receipt"]["leaf_index"] == events[0][0]
    # Every answer id any node recorded has a search record at the coordinator.
    recorded = {aid for _, aid, event in _audit(running) if event == "search"}
    for org in running.net.node_configs:
        for row in _disclosures(running, org):
            assert row[0] in recorded

    # Every search record, and every checkpoint, is intact: nothing can change unseen
    # (tampering of each kind is tested in test_audit.py).
    verified = running.run("audit", "verify", "--config", str(running.net.coordinator_config))
    assert verified.code == 0, verified.stdout + verified.stderr

    # Make the audit store refuse writes (as a full or broken database would).
    db = running.net.directory / "coordinator" / "coordinator.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "create trigger refuse before insert on log_records "
            "begin select raise(abort, 'audit store broken'); end"
        )
    before = len(_disclosures(running, POLITIE))
    try:
        refused = running.query(ZVH, running.named["several"].digits, "zvh-triage")
    finally:
        with sqlite3.connect(db) as conn:
            conn.execute("drop trigger refuse")
    assert refused.code == 7
    assert "audit" in refused.stderr
    assert refused.json["error"] == "AuditUnavailable"  # no answer, only the refusal
    assert "persons" not in refused.json
    # Nothing was asked: the node where the person is registered saw no lookup.
    assert len(_disclosures(running, POLITIE)) == before


# --- P7 ------------------------------------------------------------------------------------------
def test_p7_purpose_bound_and_decided_before_lookup(running: Running, tmp_path: Path) -> None:
    refused = running.query(ZVH, running.named["several"].digits, "zsm-context")
    assert refused.code == 4
    with sqlite3.connect(running.net.directory / "coordinator" / "coordinator.db") as conn:
        (content,) = conn.execute(
            'select content from log_records order by "index" desc limit 1'
        ).fetchone()
    last = json.loads(content)
    assert (last["event"], last["purpose"], last["organisation"], last["reason"]) == (
        "refusal",
        "zsm-context",
        ZVH,
        "PurposeNotAllowed",
    )

    # The coordinator and the key service cannot originate a query.
    for uri in (COORDINATOR_URI, KEYSERVICE_URI):
        tls = _tls(
            running, tmp_path / uri.rsplit(":", 1)[1], issue_certificate(_ca(running), uri, "x")
        )
        with (
            channel(running.network.coordinator.address, tls) as ch,
            pytest.raises(grpc.RpcError) as info,
        ):
            pb_grpc.CoordinatorStub(ch).Query(_query_request(running), timeout=10)
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # A defer node's answers for a hit and a miss are byte-identical.
    coordinator_tls = TlsFiles(
        certificate=str(running.net.directory / "coordinator" / "coordinator.crt"),
        private_key=str(running.net.directory / "coordinator" / "coordinator.key"),
        ca=str(running.net.directory / "ca" / "ca.crt"),
    )
    ggz_hit = next(b for b in running.truth.registrations[GGZ])
    responses = []
    address = running.network.organisation(GGZ).node_address  # type: ignore[union-attr]
    with channel(address, coordinator_tls) as ch:
        stub = pb_grpc.NodeStub(ch)
        for digits in (ggz_hit.digits, running.named["nowhere"].digits):
            request = pb.LookupRequest(
                requester_organisation=POLITIE,
                context=pb.QueryContext(purpose="zsm-context", user="u", role="regisseur"),
                items=[
                    pb.LookupItem(
                        pseudonym=pb.Pseudonym(
                            value=_pseudonym(running, digits),
                            key_id=running.network.keyservice.key_id,
                        ),
                        case_reference="C-1",
                    )
                ],
                answer_id="00000000-0000-0000-0000-000000000000",
            )
            responses.append(stub.Lookup(request, timeout=10).SerializeToString())
    assert responses[0] == responses[1]
    assert pb.LookupResponse.FromString(responses[0]).results[0].outcome == pb.DEFERRED


# --- P8 ------------------------------------------------------------------------------------------
def _refused(address: str, tls: TlsFiles, call: str, request: object) -> grpc.StatusCode:
    with channel(address, tls) as ch:
        stub = pb_grpc.CoordinatorStub(ch) if call == "Query" else pb_grpc.NodeStub(ch)
        with pytest.raises(grpc.RpcError) as info:
            getattr(stub, call)(request, timeout=10)
    return info.value.code()


def test_p8_only_known_parties_speak(running: Running, tmp_path: Path) -> None:
    ca = _ca(running)
    coordinator = running.network.coordinator.address
    request = _query_request(running)

    # A certificate from another CA: the TLS handshake fails.
    foreign_ca = create_ca("someone else")
    foreign = _tls(
        running,
        tmp_path / "foreign",
        issue_certificate(foreign_ca, organisation_uri(ZVH), "fake zvh"),
    )
    assert _refused(coordinator, foreign, "Query", request) == grpc.StatusCode.UNAVAILABLE

    # An expired certificate from the right CA.
    expired = _tls(
        running,
        tmp_path / "expired",
        issue_certificate(
            ca,
            organisation_uri(ZVH),
            "old zvh",
            valid_days=1,
            not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=10),
        ),
    )
    assert _refused(coordinator, expired, "Query", request) in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNAUTHENTICATED,
    )

    # A valid certificate of an organisation the network does not know.
    stranger = _tls(
        running,
        tmp_path / "stranger",
        issue_certificate(ca, organisation_uri("not-a-partner"), "stranger"),
    )
    assert _refused(coordinator, stranger, "Query", request) == grpc.StatusCode.UNAUTHENTICATED

    # An organisation's certificate calling a node directly (coordinator-only).
    zvh_dir = running.net.node_configs[ZVH].parent
    zvh_tls = TlsFiles(
        certificate=str(zvh_dir / f"{ZVH}.crt"),
        private_key=str(zvh_dir / f"{ZVH}.key"),
        ca=str(running.net.directory / "ca" / "ca.crt"),
    )
    lookup = pb.LookupRequest(
        requester_organisation=ZVH,
        context=pb.QueryContext(purpose="zvh-triage", user="u"),
        items=[pb.LookupItem(pseudonym=request.items[0].pseudonym, case_reference="C")],
        answer_id="x",
    )
    address = running.network.organisation(POLITIE).node_address  # type: ignore[union-attr]
    assert _refused(address, zvh_tls, "Lookup", lookup) == grpc.StatusCode.PERMISSION_DENIED

    # Each refusal the application can see is logged, naming the reason.
    coordinator_log = (running.net.directory / "logs" / "coordinator.log").read_text()
    assert "not-a-partner" in coordinator_log and "refused" in coordinator_log
    node_log = (running.net.directory / "logs" / f"node-{POLITIE}.log").read_text()
    assert "may not call Node.Lookup" in node_log
    # The handshake-level refusals (foreign CA, expired) are logged by gRPC itself.
    assert "Handshake failed" in coordinator_log or "handshake" in coordinator_log.lower()


def test_p8_pseudonyms_carry_their_key_id(running: Running, tmp_path: Path) -> None:
    """A pseudonym made with another key is an error, never a silent 'no hit'."""
    zvh_dir = running.net.node_configs[ZVH].parent
    tls = TlsFiles(
        certificate=str(zvh_dir / f"{ZVH}.crt"),
        private_key=str(zvh_dir / f"{ZVH}.key"),
        ca=str(running.net.directory / "ca" / "ca.crt"),
    )
    request = _query_request(running)
    request.items[0].pseudonym.key_id = "k1-someoldkey"
    with (
        channel(running.network.coordinator.address, tls) as ch,
        pytest.raises(grpc.RpcError) as info,
    ):
        pb_grpc.CoordinatorStub(ch).Query(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.DATA_LOSS
    assert "k1-someoldkey" in (info.value.details() or "")
    _ = Pseudonym  # the type under test
