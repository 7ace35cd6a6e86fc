"""Faults on the real network (every service its own process, mutual TLS on loopback): a hung
node, the asking organisation's own database gone read-only, revoked and renewed certificates,
and a hostile peer flooding refusals (ADRs 0016 and 0017)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from betrokken.answer import Outcome
from betrokken.app.demo import GEMEENTE, GGZ, POLITIE, RECLASSERING, ZVH
from betrokken.audit.witness import ALARMS_PER_KIND_PER_MINUTE
from betrokken.config.load import load_node
from betrokken.config.schema import TlsFiles
from betrokken.coordinator.ratelimit import INDIVIDUAL_PER_MINUTE
from betrokken.crypto import question as q
from betrokken.errors import CertificateRefused
from betrokken.identity.certs import diagnose, fingerprint_file
from betrokken.identity.names import COORDINATOR_URI, organisation_uri
from betrokken.identity.pki import Issued, issue_certificate, write_issued
from betrokken.identity.rpc import RELOAD_CHECK_SECONDS, channel, error_from_rpc
from betrokken.requester.client import Person, QueryResult, Requester
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc
from tests.e2e.conftest import Running
from tests.fsutil import read_only
from tests.harness import listed

pytestmark = pytest.mark.e2e


# --- item 3: one hung node -----------------------------------------------------------------------
@contextmanager
def hung(running: Running, org: str) -> Iterator[None]:
    """The node's process stopped dead (SIGSTOP): its port still accepts, nothing answers."""
    process = running.cluster.processes[f"node-{org}"]
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


def _ask(running: Running, case: str) -> QueryResult:
    person = running.named["several"]
    with Requester.from_config(load_node(running.net.node_configs[ZVH])) as requester:
        return requester.ask(
            [Person(person, case)], purpose="zvh-triage", user="regisseur", role="regisseur"
        )


def test_a_hung_node_costs_the_other_nodes_nothing_under_32_concurrent_questions(
    running: Running,
) -> None:
    deadline = running.network.coordinator.deadline_seconds
    started = time.monotonic()
    with hung(running, GEMEENTE), ThreadPoolExecutor(32) as askers:
        results = list(askers.map(lambda n: _ask(running, f"C-HUNG-{n}"), range(32)))
    elapsed = time.monotonic() - started
    assert len(results) == 32
    for result in results:
        outcomes = {a.organisation_id: a.answer.outcome for a in result.persons[0].answers}
        assert outcomes[GEMEENTE] is Outcome.UNREACHABLE  # never a "no"
        assert outcomes[POLITIE] is Outcome.INVOLVED
        assert outcomes[RECLASSERING].answered, outcomes
        # The GGZ and Veilig Thuis disclose only their domain for triage: two anonymous lines,
        # both answered.
        domain = [a for a in result.persons[0].answers if not a.organisation_id]
        assert len(domain) == 2 and all(d.answer.outcome.answered for d in domain), domain
        assert not result.complete
    # Each question ends at its own deadline, not after the others' (no shared pool).
    assert elapsed < 4 * deadline + 10, elapsed
    # And the node that was hung answers again once it runs.
    after = _ask(running, "C-HUNG-AFTER")
    assert {a.organisation_id: a.answer.outcome for a in after.persons[0].answers}[
        GEMEENTE
    ].answered


# --- item 5: the answer, then the problem ---------------------------------------------------------
def test_an_unwritable_trail_still_shows_the_answer_then_the_problem(running: Running) -> None:
    # As processes: each opens the database when it starts, as a user's command does (a
    # connection this process already holds would still write).
    database = running.net.node_configs[ZVH].parent / "node.db"
    person = running.named["several"].digits
    with read_only(database):
        text = running.run_process(
            "query",
            "--config",
            str(running.net.node_configs[ZVH]),
            "--bsn",
            person,
            "--purpose",
            "zvh-triage",
            "--case",
            "C-TRAIL-RO",
            "--user",
            "regisseur",
        )
        answer = running.run_process(
            "query",
            "--config",
            str(running.net.node_configs[ZVH]),
            "--bsn",
            person,
            "--purpose",
            "zvh-triage",
            "--case",
            "C-TRAIL-RO-JSON",
            "--user",
            "tester",
            "--json",
        )
    running.typed.add(person)
    assert text.code == 7, text.stderr
    assert "Traceback" not in text.stderr
    assert "politie-nh" in text.stdout and "INVOLVED" in text.stdout  # the answer
    assert "could not be kept" in text.stderr and "readonly database" in text.stderr
    assert answer.code == 7
    shown = answer.json  # one JSON document: the answer, with the problem in it
    assert shown["persons"][0]["organisations"] and shown["problem"]["exit_code"] == 7


# --- item 9: revoked certificates, refused everywhere ---------------------------------------------
def _ca(running: Running) -> Issued:
    folder = running.net.directory / "ca"
    return Issued((folder / "ca.key").read_bytes(), (folder / "ca.crt").read_bytes())


def _second_certificate(running: Running, tmp: Path, uri: str, name: str) -> TlsFiles:
    """A certificate of the network CA with the right identity that the network file does not
    list: what a revoked certificate is once its line is removed."""
    hosts = ("localhost", "127.0.0.1", f"{name}.org.betrokken.internal")
    cert, key = write_issued(tmp, name, issue_certificate(_ca(running), uri, name, hosts=hosts))
    return TlsFiles(
        certificate=str(cert),
        private_key=str(key),
        ca=str(running.net.directory / "ca" / "ca.crt"),
    )


def _refusals(running: Running, reason: str) -> int:
    db = running.net.directory / "coordinator" / "coordinator.db"
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute(
            "select count(*) from log_records where event = 'refusal' and content like ?",
            (f'%"reason":"{reason}"%',),
        ).fetchone()
    return int(count)


def test_a_revoked_certificate_is_refused_by_every_server(running: Running, tmp_path: Path) -> None:
    network = running.network
    revoked = _second_certificate(running, tmp_path, organisation_uri(POLITIE), POLITIE)
    before = _refusals(running, "CertificateRefused")
    # The coordinator: a question, and the log proofs witnesses ask for.
    node_dir = running.net.node_configs[POLITIE].parent
    config = tmp_path / "node.toml"
    config.write_text(
        running.net.node_configs[POLITIE]
        .read_text()
        .replace('network = "../../network.toml"', f'network = "{running.net.network_file}"')
        .replace(f'certificate = "{POLITIE}.crt"', f'certificate = "{revoked.certificate}"')
        .replace(f'private_key = "{POLITIE}.key"', f'private_key = "{revoked.private_key}"')
        .replace('ca = "../../ca/ca.crt"', f'ca = "{revoked.ca}"')
        .replace('"log.key"', f'"{node_dir / "log.key"}"')
        .replace('"question.key"', f'"{node_dir / "question.key"}"')
        .replace('"envelope.key"', f'"{node_dir / "envelope.key"}"')
        .replace('"sqlite:///node.db"', f'"sqlite:///{node_dir / "node.db"}"')
    )
    asked = running.run(
        "query",
        "--config",
        str(config),
        "--bsn",
        running.named["several"].digits,
        "--purpose",
        "zsm-context",
        "--case",
        "C-REVOKED",
        "--user",
        "tester",
    )
    # The asking side knows before it sends anything...
    assert asked.code == 6, asked.stdout + asked.stderr
    assert "allow-list" in asked.stderr and "Traceback" not in asked.stderr
    # ... and the coordinator refuses it anyway, for questions and for the log's proofs: in the
    # TLS handshake, since every party's certificates are listed (docs/adr/0024, section 11).
    prepared = running.keys.prepare(
        POLITIE, "zsm-context", [(running.named["several"].digits, "C")]
    )
    request = pb.QueryRequest(
        question=prepared.note,
        envelopes=[pb.Envelope(node=n, sealed=s) for n, s in prepared.envelopes.items()],
    )
    with channel(network.coordinator.address, revoked, network.coordinator.tls_name) as ch:
        stub = pb_grpc.CoordinatorStub(ch)
        with pytest.raises(grpc.RpcError) as question:
            stub.Query(request, timeout=10)
        with pytest.raises(grpc.RpcError) as proof:
            stub.GetCheckpoint(pb.CheckpointRequest(), timeout=10)
    assert question.value.code() == grpc.StatusCode.UNAVAILABLE
    assert proof.value.code() == grpc.StatusCode.UNAVAILABLE
    refused = error_from_rpc(
        question.value, "coordinator", network.coordinator.address, tls=revoked
    )
    assert isinstance(refused, CertificateRefused) and "refuses our certificate" in refused.message
    # The key service.
    with (
        channel(network.keyservice.address, revoked, network.keyservice.tls_name) as ch,
        pytest.raises(grpc.RpcError) as keys,
    ):
        pb_grpc.KeyServiceStub(ch).Describe(pb.DescribeRequest(), timeout=10)
    assert keys.value.code() == grpc.StatusCode.UNAVAILABLE
    # A node, called by a coordinator certificate the network file does not list.
    coordinator = _second_certificate(running, tmp_path / "c", COORDINATOR_URI, "coordinator")
    politie = network.organisation(POLITIE)
    assert politie is not None and politie.node_address
    with (
        channel(politie.node_address, coordinator, politie.server_name) as ch,
        pytest.raises(grpc.RpcError) as lookup,
    ):
        pb_grpc.NodeStub(ch).Lookup(pb.LookupRequest(), timeout=10)
    assert lookup.value.code() == grpc.StatusCode.UNAVAILABLE
    # Refused before the application saw a byte: nothing of it reached the coordinator's log.
    assert _refusals(running, "CertificateRefused") == before


def test_revoking_is_removing_a_line_and_needs_no_restart(running: Running) -> None:
    network_file = running.net.network_file
    original = network_file.read_text()
    tls = load_node(running.net.node_configs[RECLASSERING]).tls
    entry = listed(Path(tls.certificate).read_bytes())
    assert entry in original
    coordinator = running.network.coordinator

    def checkpoint() -> grpc.StatusCode:
        with channel(coordinator.address, tls, coordinator.tls_name) as ch:
            try:
                pb_grpc.CoordinatorStub(ch).GetCheckpoint(pb.CheckpointRequest(), timeout=10)
            except grpc.RpcError as exc:
                return exc.code()
        return grpc.StatusCode.OK

    assert checkpoint() == grpc.StatusCode.OK
    # Replace the entry by another organisation's certificate (a list that is not empty): a new
    # connection fails the handshake.
    other = listed(Path(load_node(running.net.node_configs[GGZ]).tls.certificate).read_bytes())
    try:
        network_file.write_text(original.replace(entry, other, 1))
        time.sleep(RELOAD_CHECK_SECONDS + 0.3)
        assert checkpoint() == grpc.StatusCode.UNAVAILABLE
    finally:
        network_file.write_text(original)
    time.sleep(RELOAD_CHECK_SECONDS + 0.3)
    assert checkpoint() == grpc.StatusCode.OK


def test_a_renewed_node_certificate_is_served_without_a_restart(
    running: Running, tmp_path: Path
) -> None:
    loaded = load_node(running.net.node_configs[GGZ])
    organisation = running.network.organisation(GGZ)
    assert organisation is not None and organisation.node_address
    old = fingerprint_file(loaded.tls.certificate)
    renewed = _second_certificate(running, tmp_path, organisation_uri(GGZ), GGZ)
    network_file = running.net.network_file
    original = network_file.read_text()
    saved = {
        name: Path(getattr(loaded.tls, name)).read_bytes()
        for name in ("certificate", "private_key")
    }
    asker = load_node(running.net.node_configs[ZVH]).tls
    try:
        # The network lists the new certificate next to the old one, then the node gets it.
        new = fingerprint_file(renewed.certificate)
        entry = listed(saved["certificate"])
        network_file.write_text(
            original.replace(entry, entry + listed(Path(renewed.certificate).read_bytes()))
        )
        for name in ("private_key", "certificate"):
            staged = Path(getattr(loaded.tls, name) + ".new")
            shutil.copy2(getattr(renewed, name), staged)
            os.chmod(staged, 0o600)
            os.replace(staged, getattr(loaded.tls, name))
        time.sleep(RELOAD_CHECK_SECONDS + 0.3)
        assert diagnose(organisation.node_address, asker).server_fingerprint == new
        answer = running.query(ZVH, running.named["several"].digits, "zvh-triage", "C-RENEWED")
        assert answer.code in (0, 3) and answer.json["complete"], answer.stdout
    finally:
        for name, data in saved.items():
            Path(getattr(loaded.tls, name)).write_bytes(data)
        network_file.write_text(original)
        time.sleep(RELOAD_CHECK_SECONDS + 0.3)
    assert diagnose(organisation.node_address, asker).server_fingerprint == old


# --- item 6: a hostile coordinator flooding a node ------------------------------------------------
def _alarms(running: Running, org: str, kind: str) -> int:
    db = running.net.node_configs[org].parent / "node.db"
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute(
            "select count(*) from log_records where event = 'alarm' and content like ?",
            (f'%"reason":"{kind}"%',),
        ).fetchone()
    return int(count)


def test_a_coordinator_flooding_refused_questions_cannot_fill_a_nodes_disk(
    running: Running,
) -> None:
    """Lookups for another network, signed by a real organisation's key, sent with the real
    coordinator's certificate: each is refused, and the node's trail grows by a bounded number
    of records (the rest are counted in one record when the minute is over)."""
    keys = running.keys
    elsewhere = running.network.model_copy(update={"name": "elsewhere"})
    prepared = keys.prepare(ZVH, "zvh-triage", [(running.named["nowhere"].digits, "C-FLOOD")])
    question = q.peek_question(prepared.note)
    note = q.sign_question(
        q.Question(**{**question.__dict__, "network": elsewhere.name}), keys.question_key(ZVH)
    )
    politie = running.network.organisation(POLITIE)
    assert politie is not None and politie.node_address
    before = _alarms(running, POLITIE, "other-network")
    codes = set()
    with channel(politie.node_address, keys.tls("coordinator"), politie.server_name) as ch:
        stub = pb_grpc.NodeStub(ch)
        for _ in range(60):
            try:
                stub.Lookup(pb.LookupRequest(question=note), timeout=10)
            except grpc.RpcError as exc:
                codes.add(exc.code())
    assert codes == {grpc.StatusCode.DATA_LOSS}
    added = _alarms(running, POLITIE, "other-network") - before
    # At most one minute's worth one by one (two if the flood straddled a minute), and the
    # counted rest later: never one record per refused lookup.
    assert 1 <= added <= 2 * ALARMS_PER_KIND_PER_MINUTE, added


def test_a_client_flooding_refused_questions_adds_a_bounded_number_of_records(
    running: Running,
) -> None:
    """Reclassering may ask no purpose at all: every question it sends is refused."""
    db = running.net.directory / "coordinator" / "coordinator.db"

    def size() -> int:
        with sqlite3.connect(db) as conn:
            (count,) = conn.execute("select count(*) from log_records").fetchone()
        return int(count)

    before = size()
    prepared = running.keys.prepare(
        RECLASSERING, "zvh-triage", [(running.named["nowhere"].digits, "C-FLOOD")]
    )
    request = pb.QueryRequest(
        question=prepared.note,
        envelopes=[pb.Envelope(node=n, sealed=s) for n, s in prepared.envelopes.items()],
    )
    coordinator = running.network.coordinator
    refused = 0
    with channel(coordinator.address, running.keys.tls(RECLASSERING), coordinator.tls_name) as ch:
        stub = pb_grpc.CoordinatorStub(ch)
        for _ in range(200):
            try:
                stub.Query(request, timeout=10)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.PERMISSION_DENIED
                refused += 1
    assert refused == 200
    grown = size() - before
    # The first refusals of a minute one by one (two minutes at most), counts at minute's end.
    assert grown <= 2 * INDIVIDUAL_PER_MINUTE + 2, grown
    assert _refusals(running, "PurposeNotAllowed") >= 1
