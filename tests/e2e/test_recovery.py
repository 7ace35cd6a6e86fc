"""Faults that would otherwise end in a false "no", on real processes: a node whose database was
deleted (with its WAL) refuses to serve and is shown unreachable, never "not involved"; the backup
restores it and it answers right again; `node reset --confirm` is the knowing way on without one."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from betrokken.app.cluster import Cluster, betrokken_command
from betrokken.app.devnet import init_network
from betrokken.config.load import load_node
from betrokken.db import sqlite_path
from tests.conftest import network_ports, require_or_skip
from tests.ops.conftest import run

pytestmark = pytest.mark.e2e

ORGS = ["zvh-rec", "politie-rec", "ggz-rec"]
PERSON = "999993653"
OTHER = "111222333"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    net = init_network(tmp_path / "net", ORGS, name="rec", base_port=network_ports(len(ORGS)))
    for config in [net.coordinator_config, *net.node_configs.values()]:
        body = config.read_text()
        config.write_text(body.replace("\n[tls]", "health_interval_seconds = 0.3\n\n[tls]", 1))
    running = Cluster(net)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _outcome(cluster: Cluster, bsn: str = PERSON) -> tuple[int, str]:
    done = run(
        "query",
        "--config",
        cluster.net.node_configs["zvh-rec"],
        "--bsn",
        bsn,
        "--purpose",
        "zvh-triage",
        "--case",
        "REC-1",
        "--user",
        "tester",
        "--json",
    )
    answer = json.loads(done.stdout)
    entry = next(
        o for o in answer["persons"][0]["organisations"] if o["organisation_id"] == "politie-rec"
    )
    return done.code, str(entry["outcome"])


def _database_files(config: Path) -> list[Path]:
    path = sqlite_path(load_node(config).component.database)
    assert path is not None
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def _start_refused(cluster: Cluster, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        betrokken_command("node", "serve", "--config", config),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cluster.net.directory,
    )


def test_a_node_whose_database_was_deleted_refuses_to_serve_and_is_never_not_involved(
    cluster: Cluster,
) -> None:
    config = cluster.net.node_configs["politie-rec"]
    assert run("node", "register", "--config", config, "--bsn", PERSON).code == 0
    assert _outcome(cluster) == (0, "involved")

    cluster.stop_node("politie-rec")  # its last act: the state file anchors what it held
    for path in _database_files(config):
        path.unlink(missing_ok=True)

    refused = _start_refused(cluster, config)
    assert refused.returncode == 11, refused.stderr[-1500:]
    assert "de database van de node is leeg" in refused.stderr
    assert "the node's database is empty" in refused.stderr
    assert "node reset" in refused.stderr and "restore" in refused.stderr
    # The message: Dutch first, then English
    message = refused.stderr[refused.stderr.index("gegevens kwijt / data lost") :]
    assert message.index("is leeg") < message.index("is empty")

    code, outcome = _outcome(cluster)
    assert outcome == "unreachable" and code == 3  # partial, never "not involved"

    status = run("node", "status", "--config", config)
    assert "PROBLEM" in status.stdout and "refuses to serve" in status.stdout
    doctor = run("doctor", "--config", config)
    assert doctor.code == 2 and "anchor" in doctor.stdout

    # No backup: go on knowingly. The reset is in the trail, and the node serves again.
    assert run("node", "reset", "--config", config).code == 2  # needs --confirm
    reset = run("node", "reset", "--config", config, "--confirm")
    assert reset.code == 0, reset.stderr
    assert "reset recorded in the trail" in reset.stdout
    cluster.start_node("politie-rec")
    trail = run("audit", "log", "--config", config, "--format", "json")
    assert '"reset"' in trail.stdout


def test_a_node_started_on_an_older_copy_of_its_database_refuses(cluster: Cluster) -> None:
    config = cluster.net.node_configs["politie-rec"]
    assert run("node", "register", "--config", config, "--bsn", OTHER).code == 0
    cluster.stop_node("politie-rec")
    database = _database_files(config)[0]
    old = database.with_name("old-copy.db")
    assert run("backup", "--config", config, old).code == 0
    assert run("node", "register", "--config", config, "--bsn", PERSON).code == 0
    # The operator copies last week's file over the database, as if it were the backup.
    for path in _database_files(config):
        path.unlink(missing_ok=True)
    database.write_bytes(old.read_bytes())

    refused = _start_refused(cluster, config)
    assert refused.returncode == 11, refused.stderr[-1500:]
    assert "older than its anchor" in refused.stderr, refused.stderr[-1500:]


def test_a_deleted_database_and_wal_are_restored_from_the_backup_and_answer_right_again(
    cluster: Cluster, tmp_path: Path
) -> None:
    config = cluster.net.node_configs["politie-rec"]
    assert run("node", "register", "--config", config, "--bsn", PERSON).code == 0
    backup = tmp_path / "politie.backup"
    made = run("backup", "--config", config, backup)
    assert made.code == 0, made.stderr
    assert "verified" in made.stdout
    # A registration after the backup: the restore says it must be imported again.
    assert run("node", "register", "--config", config, "--bsn", OTHER).code == 0

    cluster.stop_node("politie-rec")
    for path in _database_files(config):
        path.unlink(missing_ok=True)
    assert _start_refused(cluster, config).returncode == 11

    restored = run("restore", "--config", config, backup)
    assert restored.code == 0, restored.stderr
    assert "import" in restored.stdout  # what changed since the backup comes back by import
    cluster.start_node("politie-rec")
    assert _outcome(cluster) == (0, "involved")
    # ...and the registration made after the backup, once imported again:
    assert run("node", "register", "--config", config, "--bsn", OTHER).code == 0
    assert _outcome(cluster, OTHER) == (0, "involved")


# Debian's libfaketime, wherever the machine's multiarch folder is.
FAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), None)


def _alarms(config: Path) -> list[dict[str, object]]:
    path = _database_files(config)[0]
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "select content from log_records where event = 'alarm' order by \"index\""
        ).fetchall()
    return [json.loads(c) for (c,) in rows]


def test_a_node_whose_clock_is_three_minutes_ahead_names_its_own_clock_once_per_episode(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault: a node 3 minutes off turned every question into an alarm, and nobody was told
    whose clock was off. The node's clock is moved with libfaketime (its process only)."""
    require_or_skip(
        None
        if FAKETIME
        else "no libfaketime to move one process's clock: apt-get install "
        "libfaketime (docs/operator.md, 'Drills'; .ci/run does)"
    )
    assert FAKETIME is not None
    config = cluster.net.node_configs["politie-rec"]
    assert run("node", "register", "--config", config, "--bsn", PERSON).code == 0
    cluster.stop_node("politie-rec")
    monkeypatch.setenv("LD_PRELOAD", str(FAKETIME))
    monkeypatch.setenv("FAKETIME", "+180s")
    monkeypatch.setenv("FAKETIME_DONT_RESET", "1")
    cluster.start_node("politie-rec")
    monkeypatch.delenv("LD_PRELOAD")
    monkeypatch.delenv("FAKETIME")
    before = len(_alarms(config))
    outcomes = [_outcome(cluster) for _ in range(4)]
    # never "not involved": the node's refusal makes the answer partial
    assert all(code == 3 and outcome == "error" for code, outcome in outcomes), outcomes
    stale = [a for a in _alarms(config)[before:] if a["reason"] == "stale"]
    assert len(stale) == 1, stale  # one alarm for the episode, not one per question
    message = str(stale[0]["details"]["message"])  # type: ignore[index]
    assert re.search(r"this node's clock is off: 1[78]\d s ahead of the other witnesses'", message)


def test_a_restarted_portal_keeps_its_logged_in_users_and_their_forms(cluster: Cluster) -> None:
    """The fault: after a portal restart every session was gone (kept in memory)."""
    import httpx
    import pyotp

    from betrokken.app.demo_portal import _csrf, add_account

    account = add_account(cluster, "zvh-rec", "r.regisseur", ("regisseur",))
    url = cluster.start_portal("zvh-rec")
    with httpx.Client(base_url=url, follow_redirects=True, timeout=60) as client:
        login = client.get("/inloggen")
        client.post(
            "/inloggen",
            data={
                "csrf": _csrf(login),
                "gebruikersnaam": account.name,
                "wachtwoord": account.password,
                "code": pyotp.TOTP(account.secret).now(),
            },
        )
        form = client.get("/vraag")
        assert form.url.path == "/vraag"
        csrf = _csrf(form)

        cluster.stop_process("portal-zvh-rec")
        cluster.start_portal("zvh-rec")

        again = client.get("/vraag")
        assert again.url.path == "/vraag", "logged out by the restart"
        answer = client.post(  # the form opened before the restart still posts
            "/vraag", data={"csrf": csrf, "bsn": PERSON, "doel": "zvh-triage", "zaak": "REC-P"}
        )
        assert answer.status_code == 200 and "/antwoord/" in str(answer.url)

        # The session ends (idle for two hours) while the form is open: the posted question is
        # not asked, its fields are kept without the BSN, and the user is told.
        cluster.stop_process("portal-zvh-rec")
        node_db = _database_files(cluster.net.node_configs["zvh-rec"])[0]
        with sqlite3.connect(node_db) as conn:
            conn.execute("UPDATE portal_sessions SET last_seen = last_seen - 7200")
        cluster.start_portal("zvh-rec")
        posted = client.post(
            "/vraag", data={"csrf": csrf, "bsn": PERSON, "doel": "zvh-triage", "zaak": "REC-KEPT"}
        )
        assert posted.url.path == "/inloggen"
        assert "vraag is NIET gesteld" in posted.text
        relogin = client.post(
            "/inloggen",
            data={
                "csrf": _csrf(posted),
                "gebruikersnaam": account.name,
                "wachtwoord": account.password,
                "code": pyotp.TOTP(account.secret).at(time.time() + 30),
            },
        )
        assert relogin.url.path == "/vraag"
        assert 'value="REC-KEPT"' in relogin.text and "NIET gesteld" in relogin.text
        assert PERSON not in relogin.text  # never the BSN
    cluster.stop_process("portal-zvh-rec")
