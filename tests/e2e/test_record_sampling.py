"""A node checks the coordinator's records of the questions it answered, on real processes
(docs/adr/0042): an altered record in the coordinator's database — as an insider or a disk fault
would leave it — is one alarm at the node that answered that question, within one witness interval
(driven here by ``node witness --once``, which runs the interval's checks); an undamaged log is
no alarm; and a node asking for a record of a question it was not asked is refused. Then the
node's view of the coordinator's clock, moved with libfaketime: shown by ``node status`` and
``doctor``, and one alarm per episode."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from betrokken.app.cluster import Cluster
from betrokken.app.devnet import init_network
from betrokken.config.load import load_node
from betrokken.crypto import merkle
from betrokken.db import sqlite_path
from betrokken.errors import WrongRole
from betrokken.node.witness import CoordinatorLog
from tests.conftest import network_ports, require_or_skip
from tests.ops.conftest import run

pytestmark = pytest.mark.e2e

ORGS = ["zvh-smp", "politie-smp", "ggz-smp"]
PERSON = "999993653"
# Debian's libfaketime, wherever the machine's multiarch folder is.
FAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), None)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three nodes; ggz-smp declines the ZVH's triage purpose (level none), so the questions
    asked here are sent to zvh-smp and politie-smp, never to ggz-smp."""
    folder = tmp_path_factory.mktemp("sampling")
    net = init_network(folder / "net", ORGS, name="smp", base_port=network_ports(len(ORGS)))
    network = net.directory / "network.toml"
    text = network.read_text()
    declined, count = re.subn(
        r'(?s)organisation = "ggz-smp"\npurpose = "zvh-triage"\nlevel = "[a-z]+"\n.*?\n\n',
        'organisation = "ggz-smp"\npurpose = "zvh-triage"\nlevel = "none"\n\n',
        text,
        count=1,
    )
    assert count == 1
    network.write_text(declined)
    running = Cluster(net)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _coordinator_db(cluster: Cluster) -> Path:
    return cluster.net.coordinator_config.parent / "coordinator.db"


def _ask(cluster: Cluster, case: str) -> int:
    """Ask one triage question as the ZVH; the index of its search record."""
    done = run(
        "query",
        "--config",
        cluster.net.node_configs["zvh-smp"],
        "--bsn",
        PERSON,
        "--purpose",
        "zvh-triage",
        "--case",
        case,
        "--user",
        "tester",
        "--json",
    )
    assert done.code in (0, 3), done.stderr
    answer_id = json.loads(done.stdout)["answer_id"]
    with sqlite3.connect(_coordinator_db(cluster)) as conn:
        (index,) = conn.execute(
            "select \"index\" from log_records where event = 'search' and answer_id = ?",
            (answer_id,),
        ).fetchone()
    return int(index)


def _alarms(cluster: Cluster, org: str, reason: str) -> list[str]:
    path = sqlite_path(load_node(cluster.net.node_configs[org]).component.database)
    assert path is not None
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "select content from log_records where event = 'alarm' order by \"index\""
        ).fetchall()
    found = [json.loads(c) for (c,) in rows]
    return [str(a["details"]["message"]) for a in found if a["reason"] == reason]


def _witness(cluster: Cluster, org: str) -> tuple[int, str]:
    done = run("node", "witness", "--config", cluster.net.node_configs[org], "--once")
    return done.code, done.stdout + done.stderr


def test_a_node_raises_no_alarm_about_records_on_an_undamaged_log(cluster: Cluster) -> None:
    before = len(_alarms(cluster, "politie-smp", "record-damaged"))
    _ask(cluster, "SMP-QUIET")
    code, said = _witness(cluster, "politie-smp")
    assert code == 0, said
    assert re.search(r"checked [1-9]\d* record\(s\) of questions answered here", said), said
    assert len(_alarms(cluster, "politie-smp", "record-damaged")) == before


def test_an_altered_record_in_the_coordinators_database_is_one_alarm_at_the_node_that_answered(
    cluster: Cluster,
) -> None:
    index = _ask(cluster, "SMP-ALTERED")
    before = len(_alarms(cluster, "politie-smp", "record-damaged"))
    with sqlite3.connect(_coordinator_db(cluster)) as conn:
        (original,) = conn.execute(
            'select content from log_records where "index" = ?', (index,)
        ).fetchone()
        # The insider (or the disk) changes what the record says the question was about.
        altered = original.replace('"purpose":"zvh-triage"', '"purpose":"zsm-context"')
        assert altered != original
        conn.execute('update log_records set content = ? where "index" = ?', (altered, index))
    try:
        code, said = _witness(cluster, "politie-smp")
        assert code == 8, said  # within one interval: the newest record is always checked
        assert f"damaged or refused: {index}" in said or "record-damaged" in said, said
        alarms = _alarms(cluster, "politie-smp", "record-damaged")[before:]
        assert len(alarms) == 1, alarms
        assert f"record {index} van het log van de coördinator" in alarms[0]
        assert f"record {index} of the coordinator's log" in alarms[0]
        assert "differs from the record this node answered under" in alarms[0]
        assert alarms[0].index("gewijzigd") < alarms[0].index("altered")  # Dutch first

        # The next interval finds it again, but it is one alarm for the damaged record.
        assert _witness(cluster, "politie-smp")[0] == 8
        assert len(_alarms(cluster, "politie-smp", "record-damaged")[before:]) == 1
    finally:
        with sqlite3.connect(_coordinator_db(cluster)) as conn:
            conn.execute('update log_records set content = ? where "index" = ?', (original, index))
    # Restored from the backup (here: put back), the log is whole again at the node too.
    assert _witness(cluster, "politie-smp")[0] == 0


def test_a_node_asking_for_the_record_of_a_question_it_was_not_asked_is_refused(
    cluster: Cluster,
) -> None:
    index = _ask(cluster, "SMP-NOT-YOURS")
    with sqlite3.connect(_coordinator_db(cluster)) as conn:
        (content,) = conn.execute(
            'select content from log_records where "index" = ?', (index,)
        ).fetchone()
    size = index + 1

    def record_as(org: str) -> tuple[bytes, list[bytes]]:
        loaded = load_node(cluster.net.node_configs[org])
        source = CoordinatorLog(loaded.network, loaded.tls)
        try:
            return source.record(index, size)
        finally:
            source.close()

    # The node the question was sent to gets it, proven...
    record, proof = record_as("politie-smp")
    assert record == content.encode()
    assert len(proof) == len(merkle.inclusion_subtrees(index, size))
    # ... the attacker's move: another node asks for it, and is refused, and that is recorded.
    with pytest.raises(WrongRole, match="was not asked"):
        record_as("ggz-smp")
    with sqlite3.connect(_coordinator_db(cluster)) as conn:
        refusals = [
            c
            for (c,) in conn.execute(
                "select content from log_records where event = 'refusal' and organisation = ?",
                ("ggz-smp",),
            )
        ]
    assert any("Coordinator.GetRecord" in c for c in refusals), refusals


def test_the_node_shows_the_coordinators_clock_and_alarms_once_when_it_is_off(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node's own clock is moved with libfaketime (in the `node witness` processes only):
    to the node, the coordinator's clock is then that much behind."""
    require_or_skip(
        None
        if FAKETIME
        else "no libfaketime to move one process's clock: apt-get install libfaketime"
    )
    config = cluster.net.node_configs["zvh-smp"]
    assert run("node", "witness", "--config", config, "--once").code == 0
    status = run("node", "status", "--config", config).stdout
    assert re.search(r"klok coördinator: +de klok van de coördinator loopt \d+\.\d s", status)
    assert "goed (grens 30 s)" in status and "fine (threshold 30 s)" in status
    before = len(_alarms(cluster, "zvh-smp", "clock"))

    # The running node shares the clock file with `node witness` but not the moved clock: its own
    # witness loop (every 60 s) would measure with the right clock between the moved runs and end
    # the episode, which on one machine cannot happen. It is paused while the clock is moved.
    node = cluster.processes["node-zvh-smp"]
    os.kill(node.pid, signal.SIGSTOP)
    try:
        monkeypatch.setenv("LD_PRELOAD", str(FAKETIME))
        monkeypatch.setenv("FAKETIME", "+120s")
        for _ in range(2):  # two intervals with the clock off: one episode, one alarm
            done = run_moved("node", "witness", "--config", str(config), "--once")
            assert done[0] == 0, done[1]
        monkeypatch.delenv("LD_PRELOAD")
        monkeypatch.delenv("FAKETIME")

        alarms = _alarms(cluster, "zvh-smp", "clock")[before:]
        assert len(alarms) == 1, alarms
        assert re.search(
            r"loopt 1[12]\d s achter op die van dit knooppunt \(grens 30 s\)", alarms[0]
        )
        assert re.search(
            r"the coordinator's clock is 1[12]\d s behind this node's clock", alarms[0]
        )
        status = run("node", "status", "--config", config).stdout
        assert "TE VER AF (grens 30 s)" in status and "TOO FAR OFF (threshold 30 s)" in status
        doctor = run("doctor", "--config", config)
        assert re.search(
            r"PROBLEM +coordinator clock: de klok van de coördinator loopt 1[12]\d", doctor.stdout
        )
    finally:
        os.kill(node.pid, signal.SIGCONT)

    # The clock right again: the episode ends, and a later one is an alarm of its own.
    assert run("node", "witness", "--config", config, "--once").code == 0
    assert "goed (grens 30 s)" in run("node", "status", "--config", config).stdout
    assert len(_alarms(cluster, "zvh-smp", "clock")[before:]) == 1


def run_moved(*args: str) -> tuple[int, str]:
    """A command as its own process, so that libfaketime (LD_PRELOAD) moves its clock."""
    from tests.cli import run_process

    done = run_process(*args)
    return done.code, done.stdout + done.stderr
