"""The registration API on real processes: a case system's feed applied in bulk by the example
client, the node killed (SIGKILL) in the middle and started again, and the client's rerun of the
same file resuming through its idempotency keys — nothing lost, nothing applied twice."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from betrokken.app.cluster import Cluster
from betrokken.app.devnet import init_network
from betrokken.crypto.bsn import generate_bsn
from betrokken.node.feeds_api import secret_sha256
from tests.conftest import network_ports

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "docs" / "examples" / "feed_client.py"
SECRET = "e2e-feed-secret"
# The size of the feed. `make test` feeds 5,000 changes (the same steps, within the suite's
# minutes); `make drill` feeds 100,000 (BETROKKEN_FEED_ROWS), about 5 minutes on an idle machine.
ROWS = int(os.environ.get("BETROKKEN_FEED_ROWS", "5000"))
ORG = "gemeente-test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _accepted(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM registrations").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


def _count(database: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_a_bulk_feed_survives_the_node_killed_in_the_middle(tmp_path: Path) -> None:
    import random

    net = init_network(
        tmp_path / "net", [ORG, "politie-test"], name="feed-e2e", base_port=network_ports(2)
    )
    config = net.node_configs[ORG]
    port = _free_port()
    with config.open("a", encoding="utf-8") as handle:
        handle.write(
            f'\n[[feeds]]\nname = "gcos"\ntoken_sha256 = "{secret_sha256(SECRET)}"\n'
            f'\n[feed_api]\nlisten = "127.0.0.1:{port}"\n'
        )
    rng = random.Random(41)
    persons = {generate_bsn(rng).digits for _ in range(ROWS)}
    while len(persons) < ROWS:
        persons.add(generate_bsn(rng).digits)
    changes = tmp_path / "changes.csv"
    changes.write_text("operation,bsn\n" + "".join(f"register,{p}\n" for p in sorted(persons)))
    (tmp_path / "gcos.secret").write_text(SECRET)
    database = config.parent / "node.db"
    command = [
        sys.executable,
        str(CLIENT),
        str(changes),
        "--url",
        f"https://127.0.0.1:{port}",
        "--ca",
        str(net.directory / "ca" / "ca.crt"),
        "--client-id",
        "gcos",
        "--secret-file",
        str(tmp_path / "gcos.secret"),
    ]
    with Cluster(net) as cluster:
        client = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            while _accepted(database) < ROWS // 3:  # a third applied: kill the node
                assert client.poll() is None, client.stderr.read() if client.stderr else ""
                time.sleep(0.2)
            cluster.processes[f"node-{ORG}"].kill()
            cluster.processes[f"node-{ORG}"].wait()
            cluster.processes.pop(f"node-{ORG}")
            killed_at = _accepted(database)
            assert killed_at < ROWS
            cluster.start_node(ORG)
            out, err = client.communicate(timeout=3600)
        finally:
            if client.poll() is None:
                client.kill()
        # The client kept retrying its call with the same key and finished the feed.
        assert client.returncode == 0, err.decode()[-2000:]
        # And its rerun of the whole file (as after a crash of the client) changes nothing.
        trail = _count(database, "SELECT count(*) FROM log_records")
        again = subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600)
        assert again.returncode == 0, again.stderr[-2000:]
        assert _count(database, "SELECT count(*) FROM log_records") == trail
    held = _count(database, "SELECT count(*) FROM registrations")
    assert held == ROWS  # nothing lost
    assert "refused" not in out.decode()
