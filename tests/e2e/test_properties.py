"""The properties P1–P8 (docs/architecture.md), each tested on a real running network.

Each test would fail if its property broke; the insiders' moves against P2, P3, P6 and P7 are in
test_insiders.py, the attacks on P8 with a server of the wrong identity also here.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import grpc
import pytest

from betrokken.app.demo import GEMEENTE, GGZ, POLITIE, RECLASSERING, ZVH
from betrokken.config.schema import TlsFiles
from betrokken.crypto import oprf
from betrokken.identity.names import COORDINATOR_URI, organisation_uri
from betrokken.identity.pki import Issued, create_ca, issue_certificate, write_issued
from betrokken.identity.rpc import channel
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc
from tests.e2e.conftest import Running, replaced_node
from tests.harness import bsns_written, trail_written

pytestmark = pytest.mark.e2e


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


_HEX = frozenset(b"0123456789abcdefABCDEF")


def _inside_a_digest(data: bytes, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` (nine digits) lies inside a hex-encoded digest or key: a run
    of at least 32 hex characters with a letter in it. The stores hold many such runs (hashes,
    tags, frontiers), and nine of their digits in a row equal one of a few hundred BSNs by
    chance about once in a few dozen runs of the suite; a BSN written as such is not inside one."""
    while start > 0 and data[start - 1] in _HEX:
        start -= 1
    while end < len(data) and data[end] in _HEX:
        end += 1
    run = data[start:end]
    return len(run) >= 32 and any(c in b"abcdefABCDEF" for c in run)


def _bsns_in(data: bytes, bsns: set[str]) -> list[str]:
    return [
        bsn
        for at, bsn, encoding in bsns_written(data, bsns)
        if encoding == "ascii" and not _inside_a_digest(data, at, at + len(bsn))
    ]


def _trail(running: Running, org: str, event: str) -> list[dict[str, object]]:
    db = running.net.node_configs[org].parent / "node.db"
    trail_written(db)  # the node's trail writer records an answer within a second
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            'select content from log_records where event = ? order by "index"', (event,)
        ).fetchall()
    return [json.loads(c) for (c,) in rows]


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


def _query_request(
    running: Running, asker: str = ZVH, purpose: str = "zvh-triage"
) -> pb.QueryRequest:
    prepared = running.keys.prepare(asker, purpose, [(running.named["several"].digits, "C-P")])
    return pb.QueryRequest(
        question=prepared.note,
        envelopes=[pb.Envelope(node=n, sealed=s) for n, s in prepared.envelopes.items()],
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
        running.start_node(GGZ)
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
        for bsn in _bsns_in(path.read_bytes(), bsns):
            offenders.append((path.name, bsn[-3:]))
    assert offenders == []


# --- P2 ------------------------------------------------------------------------------------------
def test_p2_each_organisation_has_its_own_key_and_only_the_key_service_holds_the_seed(
    running: Running,
) -> None:
    keys = running.keys
    keyservice_dir = running.net.directory / "keyservice"
    secrets = [keys.seed] + [keys.secret(o.id) for o in running.network.organisations]
    for path in _files(running.net.directory):
        if keyservice_dir in path.parents:
            continue
        data = path.read_bytes()
        for secret in secrets:
            assert secret not in data and secret.hex().encode() not in data, path
    for config in [*running.net.node_configs.values(), running.net.coordinator_config]:
        assert "oprf_seed" not in config.read_text()
    # Each node stores pseudonyms under its own organisation's key only...
    person = running.named["several"].digits  # registered at politie and reclassering
    for org in (POLITIE, RECLASSERING):
        data = b"".join(
            p.read_bytes() for p in running.net.node_configs[org].parent.glob("node.db*")
        )
        for other in running.network.organisations:
            stored = keys.pseudonym(other.id, person).value in data
            assert stored == (other.id == org), (org, other.id)

    # ... so two nodes' databases share no pseudonym: they cannot be joined without the key
    # service (the same person is registered at both).
    def values(org: str) -> set[bytes]:
        db = running.net.node_configs[org].parent / "node.db"
        with sqlite3.connect(db) as conn:
            return {bytes(r[0]) for r in conn.execute("select pseudonym from registrations")}

    assert values(POLITIE) and values(RECLASSERING)
    assert values(POLITIE).isdisjoint(values(RECLASSERING))
    # Without an organisation's key a pseudonym cannot be recomputed from a BSN.
    other_key = oprf.generate_key_pair()
    assert oprf.evaluate(other_key.secret, person.encode()) not in values(POLITIE)


# --- P3 ------------------------------------------------------------------------------------------
def test_p3_a_node_learns_of_a_question_only_as_far_as_it_must(running: Running) -> None:
    before = {org: len(_trail(running, org, "disclosure")) for org in running.net.node_configs}
    miss = running.query(ZVH, running.named["nowhere"].digits, "zvh-triage", "CASE-MISS")
    assert miss.code == 0
    after = {org: len(_trail(running, org, "disclosure")) for org in running.net.node_configs}
    assert after == before  # a miss leaves nothing in any node's trail
    miss_id = miss.json["answer_id"]
    for log in (running.net.directory / "logs").glob("node-*.log"):
        assert miss_id not in log.read_text()

    hit = running.query(ZVH, running.named["several"].digits, "zvh-triage", "CASE-HIT")
    hit_id = hit.json["answer_id"]
    rows = [r for r in _trail(running, POLITIE, "disclosure") if r["answer_id"] == hit_id]
    assert [(r["organisation"], r["user"], r["purpose"]) for r in rows] == [
        (ZVH, "tester", "zvh-triage")
    ]
    assert rows[0]["subjects"][0]["case"] == "CASE-HIT"  # type: ignore[index]
    # A node whose policy for the purpose discloses nothing receives nothing at all (the
    # gemeente declines zsm-context; the GGZ, which defers, receives it: its professional decides).
    with replaced_node(running, GEMEENTE) as gemeente:
        assert running.query(POLITIE, running.named["several"].digits, "zsm-context").code == 0
        assert gemeente.received == []


# --- P4 ------------------------------------------------------------------------------------------
def test_p4_the_coordinator_holds_no_pseudonym_case_or_outcome(running: Running) -> None:
    """After questions with hits at several nodes, the coordinator's database holds none of the
    pseudonyms used (under any organisation's key), no case reference and no outcome value."""
    cases = []
    for number, bsn in enumerate(
        [running.named["several"], running.named["one"], *running.truth.registrations[GGZ][:3]]
    ):
        case = f"P4-CASE-{number:03d}"
        cases.append(case)
        result = running.query(ZVH, bsn.digits, "zvh-triage", case)
        assert result.code == 0
        outcomes = {o["outcome"] for o in result.json["persons"][0]["organisations"]}
        if number == 0:
            assert "involved" in outcomes and "involved-domain-only" in outcomes
        assert running.query(POLITIE, bsn.digits, "zsm-context", case).code == 0
    coordinator_db = running.net.directory / "coordinator" / "coordinator.db"
    with sqlite3.connect(coordinator_db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        (subjects,) = conn.execute("select count(*) from log_subjects").fetchone()
        anchors = {r[1] for r in conn.execute("pragma table_info(node_anchors)")}
        counted = {r[1] for r in conn.execute("pragma table_info(refusal_counts)")}
    assert tables <= {
        "log_records",
        "log_subjects",
        "log_head",
        "log_checkpoints",
        "log_subtrees",
        "node_anchors",  # per node: the log size it cosigned and its clock, nothing of a person
        # sealed late answers per asking organisation until collected (scanned below like the rest)
        "mailbox",
        # per caller, kind of refusal and running minute: a count and the methods called, kept
        # until the minute's record is written (coordinator/counts.py)
        "refusal_counts",
        "alembic_version",
    }
    assert anchors <= {
        "organisation",
        "cosigned_size",
        "updated_at",
        "went_back_at",
        "went_back_to",
        "clock_offset",
    }
    assert counted <= {"caller", "kind", "minute", "count", "methods"}
    assert subjects == 0  # no record is indexed by a person
    data = b"".join(p.read_bytes() for p in coordinator_db.parent.glob("coordinator.db*"))
    everyone = {b.digits for regs in running.truth.registrations.values() for b in regs}
    everyone |= {b.digits for b in running.named.values()} | running.typed
    keys = running.keys
    for digits in everyone:
        for value in keys.every_pseudonym(digits).values():
            assert value not in data and value.hex().encode() not in data
    for case in cases:
        assert case.encode() not in data
    # Outcome values as records would hold them (quoted): a purpose's description may say
    # "involved" in prose, an answer never reaches the coordinator.
    for outcome in (b'"involved"', b'"not-involved"', b'"involved-domain-only"', b'"declined"'):
        assert outcome not in data and outcome.replace(b'"', b'\\"') not in data, outcome
    assert b'"deferred"' not in data and b'"pending"' not in data
    assert b'"no-disclosure"' not in data
    assert b"tester" not in data  # nor who asked, beyond organisation and role


# --- P5 ------------------------------------------------------------------------------------------
def test_p5_never_a_false_no(running: Running) -> None:
    bsn = running.named["several"].digits  # registered at reclassering
    running.cluster.stop_node(RECLASSERING)
    try:
        result = running.query(ZVH, bsn, "zvh-triage")
    finally:
        running.start_node(RECLASSERING)
    assert result.code == 3
    answer = result.json
    assert answer["complete"] is False and answer["persons"][0]["complete"] is False
    entry = next(
        o for o in answer["persons"][0]["organisations"] if o["organisation_id"] == RECLASSERING
    )
    assert entry["outcome"] == "unreachable"
    assert "incomplete" in answer["persons"][0]["completeness"].lower()


# --- P6 ------------------------------------------------------------------------------------------
def test_p6_recorded_before_answered_checked_by_the_nodes_and_fails_closed(
    running: Running,
) -> None:
    result = running.query(ZVH, running.named["several"].digits, "zvh-triage")
    answer_id = result.json["answer_id"]
    events = [(seq, event) for seq, aid, event in _audit(running) if aid == answer_id]
    assert [e for _, e in events] == ["search", "outcome"]
    # The receipt the requester checked proves the search record, before the outcome.
    assert result.json["receipt"]["leaf_index"] == events[0][0]
    # Every answer id any node disclosed for has a search record at the coordinator — or the
    # node caught the coordinator signing another history for it (a witness-fork alarm naming
    # the question; see test_insiders.py).
    recorded = {aid for _, aid, event in _audit(running) if event == "search"}
    for org in running.net.node_configs:
        caught = {
            aid
            for alarm in _trail(running, org, "alarm")
            if alarm["reason"] == "witness-fork"
            for aid in str(alarm["details"].get("answer_ids", "")).split(",")  # type: ignore[union-attr]
        }
        for row in _trail(running, org, "disclosure"):
            assert row["answer_id"] in recorded | caught
    verified = running.run("audit", "verify", "--config", str(running.net.coordinator_config))
    assert verified.code == 0, verified.stdout + verified.stderr

    # Make the audit store refuse writes (as a full or broken database would).
    db = running.net.directory / "coordinator" / "coordinator.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "create trigger refuse before insert on log_records "
            "begin select raise(abort, 'audit store broken'); end"
        )
    before = len(_trail(running, POLITIE, "disclosure"))
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
    assert len(_trail(running, POLITIE, "disclosure")) == before


# --- P7 ------------------------------------------------------------------------------------------
def test_p7_purpose_bound_signed_and_decided_before_lookup(
    running: Running, tmp_path: Path
) -> None:
    # The requesting side refuses a purpose its organisation may not ask...
    refused = running.query(ZVH, running.named["several"].digits, "zsm-context")
    assert refused.code == 4
    assert refused.json["error"] == "PurposeNotAllowed"
    # ... and so does the coordinator when a requester sends it anyway (and records it).
    bad = running.keys.prepare(ZVH, "zsm-context", [(running.named["several"].digits, "C")])
    request = pb.QueryRequest(
        question=bad.note,
        envelopes=[pb.Envelope(node=n, sealed=s) for n, s in bad.envelopes.items()],
    )
    network = running.network
    with (
        channel(
            network.coordinator.address, running.keys.tls(ZVH), network.coordinator.tls_name
        ) as ch,
        pytest.raises(grpc.RpcError) as info,
    ):
        pb_grpc.CoordinatorStub(ch).Query(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
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
    # The coordinator and the key service cannot originate a question (with their own, listed
    # certificates: an unlisted one would not get past the handshake).
    for who in ("coordinator", "keyservice"):
        tls = running.keys.tls(who)
        with (
            channel(network.coordinator.address, tls, network.coordinator.tls_name) as ch,
            pytest.raises(grpc.RpcError) as info,
        ):
            pb_grpc.CoordinatorStub(ch).Query(_query_request(running), timeout=10)
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # A defer answer is the same for a hit and a miss: "pending" from the node, after its lookup.
    ggz_hit = next(b for b in running.truth.registrations[GGZ])
    answers = []
    for digits in (ggz_hit.digits, running.named["nowhere"].digits):
        result = running.query(POLITIE, digits, "zsm-context")
        answers.append(
            next(
                o for o in result.json["persons"][0]["organisations"] if o["organisation_id"] == GGZ
            )
        )
    assert answers[0] == answers[1] and answers[0]["outcome"] == "pending"
    assert "by_policy" not in answers[0]


# --- P8 ------------------------------------------------------------------------------------------
def _refused(
    address: str, tls: TlsFiles, server_name: str, call: str, request: object
) -> grpc.StatusCode:
    # A raw gRPC channel: betrokken's own refuses to present an expired certificate at all, and
    # this checks what the *server* does with one.
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(tls.ca).read_bytes(),
        private_key=Path(tls.private_key).read_bytes(),
        certificate_chain=Path(tls.certificate).read_bytes(),
    )
    options = [("grpc.ssl_target_name_override", server_name)]
    with grpc.secure_channel(address, credentials, options=options) as ch:
        stub = pb_grpc.CoordinatorStub(ch) if call == "Query" else pb_grpc.NodeStub(ch)
        with pytest.raises(grpc.RpcError) as info:
            getattr(stub, call)(request, timeout=10)
    return info.value.code()


def test_p8_only_known_parties_speak(running: Running, tmp_path: Path) -> None:
    ca = _ca(running)
    coordinator = running.network.coordinator.address
    name = running.network.coordinator.tls_name
    request = _query_request(running)

    # A certificate from another CA: the TLS handshake fails.
    foreign_ca = create_ca("someone else")
    foreign = _tls(
        running,
        tmp_path / "foreign",
        issue_certificate(foreign_ca, organisation_uri(ZVH), "fake zvh"),
    )
    assert _refused(coordinator, foreign, name, "Query", request) == grpc.StatusCode.UNAVAILABLE

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
    assert _refused(coordinator, expired, name, "Query", request) in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNAUTHENTICATED,
    )

    # A valid certificate of an organisation the network does not know: no allow-list names
    # it, so the handshake fails (docs/adr/0024, section 11).
    stranger = _tls(
        running,
        tmp_path / "stranger",
        issue_certificate(ca, organisation_uri("not-a-partner"), "stranger"),
    )
    assert _refused(coordinator, stranger, name, "Query", request) == grpc.StatusCode.UNAVAILABLE

    # A listed certificate of the wrong role: the key service's, asking a question.
    keyservice = running.keys.tls("keyservice")
    assert _refused(coordinator, keyservice, name, "Query", request) == (
        grpc.StatusCode.PERMISSION_DENIED
    )

    # An organisation's certificate calling a node directly (coordinator-only).
    politie = running.network.organisation(POLITIE)
    assert politie is not None and politie.node_address
    lookup = pb.LookupRequest(question=request.question)
    code = _refused(
        politie.node_address, running.keys.tls(ZVH), politie.server_name, "Lookup", lookup
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED

    # Each refusal the application can see is logged, naming the reason.
    coordinator_log = (running.net.directory / "logs" / "coordinator.log").read_text()
    assert "may not call Coordinator.Query" in coordinator_log and "refused" in coordinator_log
    node_log = (running.net.directory / "logs" / f"node-{POLITIE}.log").read_text()
    assert "may not call Node.Lookup" in node_log


def test_p8_a_server_with_another_organisations_certificate_is_refused_by_its_clients(
    running: Running,
) -> None:
    """politie's certificate answering on the GGZ node's port: the coordinator refuses to talk
    to it, and the answer says GGZ did not answer (error), never that it said no."""
    with replaced_node(running, GGZ, tls_of=POLITIE) as impostor:
        result = running.query(ZVH, running.named["several"].digits, "zvh-triage", "C-IMPOSTOR")
        assert impostor.received == []  # the coordinator never sent it the envelope
    assert result.code == 3
    domain = [o for o in result.json["persons"][0]["organisations"] if o["organisation_id"] is None]
    # The zorg domain's two members: the GGZ did not answer (error); Veilig Thuis said no.
    assert sorted(o["outcome"] for o in domain) == ["error", "not-involved"]
    log = (running.net.directory / "logs" / "coordinator.log").read_text()
    assert "WrongPeer" in log and organisation_uri(GGZ) in log and organisation_uri(POLITIE) in log


def test_p8_a_requester_refuses_a_coordinator_with_the_wrong_certificate(
    running: Running, tmp_path: Path
) -> None:
    """An organisation's certificate on the coordinator's port: the requester says so (exit 6)."""
    from betrokken.app.cluster import betrokken_command
    from betrokken.config.load import load_coordinator
    from betrokken.coordinator.servicer import CoordinatorServicer
    from betrokken.coordinator.store import AuditStore
    from betrokken.identity.rpc import make_server

    loaded = load_coordinator(running.net.coordinator_config)
    key = running.keys.log_key()
    running.cluster.stop_process("coordinator")
    server = make_server(running.network.coordinator.address, running.keys.tls(RECLASSERING))
    pb_grpc.add_CoordinatorServicer_to_server(
        CoordinatorServicer(
            running.network, AuditStore(f"sqlite:///{tmp_path / 'x.db'}", key, key.name), {}
        ),
        server,
    )
    server.start()
    try:
        result = running.query(ZVH, running.named["several"].digits, "zvh-triage", "C-FAKE")
    finally:
        server.stop(0).wait()
        running.cluster._start(
            "coordinator",
            betrokken_command("coordinator", "serve", "--config", running.net.coordinator_config),
            loaded.network.coordinator.address,
        )
    assert result.code == 6, result.stdout + result.stderr
    assert "wrong server identity" in result.stderr
    assert COORDINATOR_URI in result.stderr and organisation_uri(RECLASSERING) in result.stderr


def test_p8_pseudonyms_carry_their_key_id(running: Running) -> None:
    """An envelope holding pseudonyms under another key is refused, never a silent 'no hit'."""
    from betrokken.crypto.pseudonym import Pseudonym
    from betrokken.requester.client import prepare_question

    keys = running.keys
    network = running.network
    org = network.organisation(ZVH)
    assert org is not None
    digits = running.named["several"].digits
    pseudonyms = {o.id: [keys.pseudonym(o.id, digits)] for o in network.organisations}
    # politie's envelope gets the person's pseudonym under GGZ's key (with GGZ's key id).
    pseudonyms[POLITIE] = [Pseudonym(keys.pseudonym(GGZ, digits).value, "k1-someoldkey")]
    prepared = prepare_question(
        network,
        org,
        keys.question_key(ZVH),
        pseudonyms,
        ["C-KEY"],
        purpose="zvh-triage",
        user="tester",
        role="regisseur",
    )
    request = pb.QueryRequest(
        question=prepared.note,
        envelopes=[pb.Envelope(node=n, sealed=s) for n, s in prepared.envelopes.items()],
    )
    with channel(network.coordinator.address, keys.tls(ZVH), network.coordinator.tls_name) as ch:
        response = pb_grpc.CoordinatorStub(ch).Query(request, timeout=30)
    statuses = {r.label: (r.status, r.problem) for r in response.replies}
    assert statuses[POLITIE][0] == pb.FAILED
    assert "another key" in statuses[POLITIE][1]
    assert statuses[RECLASSERING][0] == pb.ANSWERED
