"""Operations on real processes: the health service and the coordinator skipping a node that is
not serving, every component's metrics endpoint after an end-to-end run (names present, no person
data), `status` of the coordinator and key service, `node status` peers, and `doctor`."""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from betrokken.app.cluster import Cluster
from betrokken.app.devnet import init_network
from betrokken.config.load import load_coordinator, load_keyservice, load_network, load_node
from betrokken.health import check_peer
from tests.conftest import PG_ADMIN_URL, _postgres_problem, network_ports, require_or_skip
from tests.e2e.conftest import Running
from tests.ops.conftest import run

pytestmark = pytest.mark.e2e


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _scrape(listen: str) -> str:
    with urllib.request.urlopen(f"http://{listen}/metrics", timeout=5) as response:
        return str(response.read().decode())


# --- health ---------------------------------------------------------------------------------------
@pytest.fixture
def pg_node_network(tmp_path: Path) -> Iterator[tuple[Cluster, str, str]]:
    """Three organisations on loopback; politie-ops keeps its node's database in PostgreSQL."""
    require_or_skip(_postgres_problem())
    name = f"betrokken_ops_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    orgs = ["zvh-ops", "politie-ops", "gemeente-ops"]
    net = init_network(tmp_path / "net", orgs, name="ops", base_port=network_ports(len(orgs)))
    for config in [net.coordinator_config, net.keyservice_config, *net.node_configs.values()]:
        body = config.read_text()
        if config == net.node_configs["politie-ops"]:
            body = re.sub(r"(?m)^database = .*$", f'database = "{url}"', body)
        config.write_text(body.replace("\n[tls]", "health_interval_seconds = 0.3\n\n[tls]", 1))
    cluster = Cluster(net)
    cluster.start()
    try:
        yield cluster, name, url
    finally:
        cluster.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _read_only(admin_url: str, database: str, on: bool) -> None:
    """Make the node's PostgreSQL database read-only (or writable again) for new sessions, and
    end its sessions, as an administrator would when a volume turns read-only."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    setting = "on" if on else "off"
    with admin.connect() as conn:
        conn.execute(
            text(f'ALTER DATABASE "{database}" SET default_transaction_read_only = {setting}')
        )
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": database},
        )
    admin.dispose()


def test_a_node_whose_database_is_read_only_reports_not_serving_and_is_skipped_never_a_no(
    pg_node_network: tuple[Cluster, str, str],
) -> None:
    cluster, database, _url = pg_node_network
    net = cluster.net
    zvh = load_node(net.node_configs["zvh-ops"])
    politie = zvh.network.organisation("politie-ops")
    assert politie is not None and politie.node_address

    def health() -> str:
        return check_peer("node", politie.node_address or "", zvh.tls, politie.server_name).status

    def ask() -> tuple[int, dict[str, object]]:
        import json

        done = run(
            "query",
            "--config",
            net.node_configs["zvh-ops"],
            "--bsn",
            "999993653",
            "--purpose",
            "zvh-triage",
            "--case",
            "OPS-1",
            "--user",
            "tester",
            "--json",
        )
        answer = json.loads(done.stdout)
        entry = next(
            o
            for o in answer["persons"][0]["organisations"]
            if o["organisation_id"] == "politie-ops"
        )
        return done.code, entry

    assert health() == "serving"
    code, entry = ask()
    assert code == 0 and entry["outcome"] == "not-involved"

    _read_only(PG_ADMIN_URL, database, on=True)
    _wait(lambda: health() == "not serving", "the node to report NOT_SERVING")
    coordinator = load_coordinator(net.coordinator_config).component.metrics_listen
    assert coordinator
    _wait(
        lambda: (
            'betrokken_coordinator_node_serving{node="politie-ops"} 0.0' in _scrape(coordinator)
        ),
        "the coordinator to see it",
    )
    code, entry = ask()
    assert code == 3  # a partial answer: never a "no"
    assert entry["outcome"] == "unreachable"
    assert entry["message"] == "the node reports it is not serving"
    log = (cluster.log_dir / "node-politie-ops.log").read_text()
    assert "node is NOT SERVING: its database is not writable" in log
    scraped = _scrape(coordinator)
    assert (
        'betrokken_coordinator_node_lookups_total{node="politie-ops",status="not-serving"} 1.0'
        in scraped
    )
    assert 'betrokken_coordinator_partial_answers_total{purpose="zvh-triage"} 1.0' in scraped

    _read_only(PG_ADMIN_URL, database, on=False)  # recovers without a restart
    _wait(lambda: health() == "serving", "the node to serve again")
    _wait(
        lambda: (
            'betrokken_coordinator_node_serving{node="politie-ops"} 1.0' in _scrape(coordinator)
        ),
        "the coordinator to see it serving",
    )
    code, entry = ask()
    assert code == 0 and entry["outcome"] == "not-involved"


# --- metrics ------------------------------------------------------------------------------------
EXPECTED = {
    "coordinator": [
        "betrokken_coordinator_questions_total",
        "betrokken_coordinator_question_duration_seconds_bucket",
        "betrokken_coordinator_partial_answers_total",
        "betrokken_coordinator_persons_total",
        "betrokken_coordinator_node_lookups_total",
        "betrokken_coordinator_node_lookup_duration_seconds_bucket",
        "betrokken_coordinator_node_serving",
        "betrokken_refusals_total",
        "betrokken_rpc_duration_seconds_bucket",
        "betrokken_audit_log_records",
        "betrokken_serving 1.0",
        "betrokken_build_info",
    ],
    "keyservice": [
        "betrokken_keyservice_persons_total",
        "betrokken_keyservice_evaluations_total",
        "betrokken_keyservice_quota_used_persons",
        "betrokken_keyservice_quota_limit_persons",
        "betrokken_rpc_duration_seconds_bucket",
        "betrokken_serving 1.0",
    ],
    "node": [
        "betrokken_node_lookups_total",
        "betrokken_node_persons_looked_up_total",
        "betrokken_node_registrations_active",
        "betrokken_node_registrations_ending_unconfirmed",
        "betrokken_node_registrations_old_key 0.0",
        "betrokken_node_last_confirmation_timestamp_seconds",
        "betrokken_node_disclosures",
        "betrokken_node_witnessed_size",
        "betrokken_node_alarms_recorded",
        "betrokken_audit_log_records",
        "betrokken_serving 1.0",
    ],
}


def test_every_components_metrics_count_the_run_and_hold_no_person_data(running: Running) -> None:
    from betrokken.app.demo import GGZ, ZVH

    # An end-to-end run: questions, and one the asking side itself refuses.
    # Registered persons (every BSN a test typed, invalid ones too, is in all_bsns()).
    people = sorted({b.digits for regs in running.truth.registrations.values() for b in regs})[:3]
    for bsn in people:
        assert running.query(ZVH, bsn, "zvh-triage", "OPS-CASE-SECRET").code in (0, 3)
    assert running.query(ZVH, people[0], "zsm-context", "OPS-CASE-SECRET").code == 4
    net = running.net
    endpoints = {
        "coordinator": load_coordinator(net.coordinator_config).component.metrics_listen,
        "keyservice": load_keyservice(net.keyservice_config).component.metrics_listen,
        **{
            f"node-{org}": load_node(path).component.metrics_listen
            for org, path in net.node_configs.items()
        },
    }
    scraped = {name: _scrape(listen) for name, listen in endpoints.items() if listen}
    assert len(scraped) == 2 + len(net.node_configs)
    for name, body in scraped.items():
        for expected in EXPECTED[name if not name.startswith("node-") else "node"]:
            assert expected in body, f"{name}: no {expected}"
    coordinator = scraped["coordinator"]
    assert re.search(
        r'betrokken_coordinator_questions_total\{completeness="(complete|partial)",'
        r'organisation="zvh-kennemerland",purpose="zvh-triage"\} [1-9]',
        coordinator,
    )
    assert "# TYPE betrokken_refusals_total counter" in coordinator
    assert (
        'betrokken_keyservice_persons_total{organisation="zvh-kennemerland",use="question"}'
        in (scraped["keyservice"])
    )
    assert 'use="import"' in scraped["keyservice"]
    assert re.search(r"betrokken_node_registrations_active [1-9]", scraped[f"node-{GGZ}"])

    # No person data: no BSN (whole or masked), no pseudonym of anyone, no case, no user.
    keys = running.keys
    forbidden = {"OPS-CASE-SECRET", "tester", "CASE-1"}
    for bsn in running.all_bsns():
        if len(bsn) < 9:
            continue  # an invalid value a test typed (e.g. eight zeros) is a number, not a BSN
        forbidden.add(bsn)
        for value in keys.every_pseudonym(bsn).values():
            forbidden.add(value.hex())
            forbidden.add(value.hex()[:16])
    for name, body in scraped.items():
        leaked = [item for item in forbidden if item in body]
        assert not leaked, f"{name} exposes person data: {leaked[:3]}"
    # Every label value is an id the network file or the code defines.
    network = load_network(net.network_file)
    allowed = (
        {o.id for o in network.organisations}
        | {p.id for p in network.purposes}
        | {
            "complete",
            "partial",
            "question",
            "import",
            "answered",
            "refused",
            "unreachable",
            "failed",
            "deadline",
            "witness-retry",
            "not-serving",
            "other",
            "OK",
        }
    )
    for name, body in scraped.items():
        for label, value in re.findall(
            r'(organisation|purpose|node|use|completeness|status)="([^"]*)"', body
        ):
            assert value in allowed, f"{name}: unexpected {label}={value!r}"


# --- status and doctor ----------------------------------------------------------------------------
def test_status_shows_the_coordinator_and_key_service_and_node_status_its_peers(
    running: Running,
) -> None:
    net = running.net
    coordinator = run("status", "--config", net.coordinator_config)
    assert coordinator.code == 0, coordinator.output
    assert "coordinator of network 'e2e'" in coordinator.stdout
    assert "schema:             current (revision coordinator_" in coordinator.stdout
    assert "this coordinator at" in coordinator.stdout
    assert coordinator.stdout.count(": serving") >= 1 + len(net.node_configs)
    keyservice = run("status", "--config", net.keyservice_config)
    assert keyservice.code == 0, keyservice.output
    assert "key service of network 'e2e'" in keyservice.stdout
    assert "import:" in keyservice.stdout and "keys of" in keyservice.stdout
    node = run("node", "status", "--config", next(iter(net.node_configs.values())))
    assert node.code == 0, node.output
    assert re.search(r"coordinator at 127\.0\.0\.1:\d+: serving", node.stdout)
    assert re.search(r"key service at 127\.0\.0\.1:\d+: serving", node.stdout)
    for result in (coordinator, keyservice, node):
        assert not any(bsn in result.stdout for bsn in running.all_bsns())


def test_doctor_says_what_is_fine_and_what_to_fix(running: Running, tmp_path: Path) -> None:
    import shutil

    net = running.net
    for config in (net.coordinator_config, net.keyservice_config, *net.node_configs.values()):
        done = run("doctor", "--config", config)
        assert done.code in (0, 1), done.output  # the machine's clock may not be NTP-synced
        for check in (
            "certificate identity",
            "private key",
            "network CA",
            "schema",
            "database writable",
        ):
            assert f"OK       {check}" in done.stdout, (check, done.stdout)
        assert "PROBLEM" not in done.stdout
    # A copy with a key file others can read and a foreign certificate: problems, exit code 2.
    copy = tmp_path / "net"
    shutil.copytree(net.directory, copy, ignore=shutil.ignore_patterns("*.db*", "logs", "*.csv"))
    node_dir = copy / "nodes" / "politie-nh"
    (node_dir / "log.key").chmod(0o644)
    (node_dir / "politie-nh.crt").write_bytes(
        (copy / "coordinator" / "coordinator.crt").read_bytes()
    )
    broken = run("doctor", "--config", node_dir / "node.toml")
    assert broken.code == 2, broken.output
    assert "PROBLEM  trail signing key" in broken.stdout and "chmod 600" in broken.stdout
    assert "PROBLEM  certificate identity" in broken.stdout
    assert "PROBLEM  private key" in broken.stdout
    missing = run("doctor", "--config", tmp_path / "nowhere.toml")
    assert missing.code == 2 and "PROBLEM  configuration" in missing.stdout
    assert "Traceback" not in broken.output + missing.output
