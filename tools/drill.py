"""``make drill``: the store drills (docs/operator.md, "Recovery") on real processes.

Each drill breaks a database under a running network, asks questions through the real CLI while
it is broken, repairs it, and checks that the network answers again **without restarting any
betrokken process** (the process ids are compared), and that each refusal was logged at ERROR
with the database driver's own message.

1. SQLite read-only at start-up: the coordinator starts on a database it cannot write, says so,
   refuses questions, and answers once the file is writable.
2. SQLite read-only while running, then writable again.
3. Disk full, then space back: the coordinator's and a node's databases live on a small
   filesystem made for the drill that a filler file fills up; a question and a
   node import are refused cleanly, and both work once the filler is gone. (A real filesystem
   rather than SQLite's ``max_page_count``: that is a per-connection setting, would need a hook
   in the code under test, and only imitates SQLITE_FULL — the drill wants the kernel's ENOSPC,
   for the WAL file too. The filesystem is ext4 in a 32 MB loop image, not tmpfs: on tmpfs the
   immutable flag of drills 1 and 2 does not stop writes through files already open.)
4. PostgreSQL read-only (as after a fail-over to a standby: sessions dropped, new ones read-only),
   then writable again.
5. PostgreSQL restarted (``pg_ctlcluster ... restart``).

Not part of ``make test``: it needs root (``mount``, ``chattr +i`` — root ignores ``chmod``), and
drill 5 restarts the machine's shared PostgreSQL, which would break other tests running then.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from betrokken.app.cluster import Cluster, betrokken_command
from betrokken.app.demo import ORGS, POLITIE, ZVH, synthetic_population, write_export
from betrokken.app.devnet import DevNetwork, init_network
from betrokken.crypto.bsn import Bsn, parse_bsn

PG_ADMIN = os.environ.get(
    "BETROKKEN_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PG_CLUSTER = os.environ.get("BETROKKEN_DRILL_PG_CLUSTER", "15 main").split()
RECOVERY_SECONDS = 30.0
FAILED: list[str] = []


def say(line: str = "") -> None:
    print(line, flush=True)


def check(condition: bool, what: str) -> None:
    say(f"    {'ok  ' if condition else 'FAIL'} {what}")
    if not condition:
        FAILED.append(what)


# --- the network under drill ----------------------------------------------------------------------
class Drilled:
    def __init__(self, net: DevNetwork, person: Bsn, logs: Path) -> None:
        self.net = net
        self.person = person
        self.cluster = DrillCluster(net, logs)

    def run(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            betrokken_command(*args), capture_output=True, text=True, timeout=timeout, check=False
        )

    def ask(self, case: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            "query",
            "--config",
            self.net.node_configs[ZVH],
            "--bsn",
            self.person.digits,
            "--purpose",
            "zvh-triage",
            "--case",
            case,
            "--user",
            "tester",  # the development network's service account (people use the portal)
        )

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.cluster.processes.items() if p.poll() is None}

    def log(self, name: str) -> str:
        path = self.cluster.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def recovered(self, case: str) -> tuple[bool, float, int]:
        """Ask until the whole network answers again (or the time is up): answered?, seconds,
        questions asked. Complete means exit 0: an incomplete answer (exit 3) still leaves a
        node skipped, e.g. until the coordinator's next health probe sees it serving."""
        started = time.monotonic()
        tries = 0
        while time.monotonic() - started < RECOVERY_SECONDS:
            tries += 1
            done = self.ask(f"{case}-{tries}")
            if done.returncode == 0:
                return True, time.monotonic() - started, tries
            time.sleep(0.5)
        return False, time.monotonic() - started, tries


class DrillCluster(Cluster):
    """The cluster, with its logs outside the databases' (possibly full) filesystem."""

    def __init__(self, net: DevNetwork, logs: Path) -> None:
        super().__init__(net)
        self._logs = logs

    @property
    def log_dir(self) -> Path:
        return self._logs


def network(base: Path, name: str, databases: dict[str, str]) -> Drilled:
    """A five-organisation network with the given component databases, filled and running."""
    net = init_network(base / name, ORGS, name=f"drill-{name}")
    configs = {"coordinator": net.coordinator_config, **net.node_configs}
    for component, url in databases.items():
        config = configs[component]
        config.write_text(
            config.read_text().replace(
                next(
                    line for line in config.read_text().splitlines() if line.startswith("database")
                ),
                f'database = "{url}"',
            )
        )
    truth, named = synthetic_population(random.Random(9), ORGS, 30)
    drilled = Drilled(net, named["several"], base / f"{name}-logs")
    drilled.cluster.start()
    exports = base / f"{name}-exports"
    exports.mkdir()
    for org in ORGS:
        write_export(exports / f"{org}.csv", truth.registrations[org])
        drilled.run(
            "node", "import", "--config", net.node_configs[org], exports / f"{org}.csv", "--quiet"
        )
    shutil.rmtree(exports)
    return drilled


def error_lines(log: str, since: int, *needles: str) -> list[str]:
    return [
        line
        for line in log[since:].splitlines()
        if " ERROR " in line and all(n in line for n in needles)
    ]


def show(done: subprocess.CompletedProcess[str]) -> str:
    first = (done.stderr.strip().splitlines() or [""])[0]
    return f"exit {done.returncode}" + (f": {first[:150]}" if done.returncode else "")


def chattr(flag: str, *paths: Path) -> None:
    for path in paths:
        if path.exists():
            subprocess.run(["chattr", flag, str(path)], check=True)


def sqlite_files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal")]


# --- the drills ----------------------------------------------------------------------------------
def drill_read_only_at_start(s: Drilled, db: Path) -> None:
    say("\n1. SQLite: the coordinator starts on a read-only database, then it becomes writable")
    s.cluster.stop_process("coordinator")
    chattr("+i", *sqlite_files(db))
    say(f"    chattr +i {db.name} (root ignores chmod; the immutable flag stops it too)")
    mark = len(s.log("coordinator"))
    try:
        s.cluster._start(
            "coordinator",
            betrokken_command("coordinator", "serve", "--config", s.net.coordinator_config),
            _coordinator_address(s),
        )
        probe = error_lines(s.log("coordinator"), mark, "NOT writable")
        check(bool(probe), "start-up probe: " + (probe[0].split(" ERROR ", 1)[1] if probe else "-"))
        pids = s.pids()
        refused = s.ask("DRILL1-RO")
        check(refused.returncode == 7, f"question while read-only: {show(refused)}")
        logged = error_lines(s.log("coordinator"), mark, "readonly")
        check(
            bool(logged), "logged: " + (logged[-1].split(" ERROR ", 1)[1][:160] if logged else "-")
        )
    finally:
        chattr("-i", *sqlite_files(db))
    say("    chattr -i: writable again")
    ok, seconds, tries = s.recovered("DRILL1-BACK")
    check(ok, f"answered again after {seconds:.1f} s ({tries} question(s))")
    check(s.pids() == pids, "no betrokken process was restarted")


def _coordinator_address(s: Drilled) -> str:
    from betrokken.config.load import load_network

    return load_network(s.net.network_file).coordinator.address


def drill_read_only_while_running(s: Drilled, db: Path) -> None:
    say("\n2. SQLite: the coordinator's database becomes read-only while it runs, then writable")
    pids = s.pids()
    before = s.ask("DRILL2-BEFORE")
    check(before.returncode == 0, f"question before: {show(before)}")
    mark = len(s.log("coordinator"))
    chattr("+i", *sqlite_files(db))
    say(f"    chattr +i {db.name} {db.name}-wal")
    try:
        refused = s.ask("DRILL2-RO")
        check(refused.returncode == 7, f"question while read-only: {show(refused)}")
        logged = error_lines(s.log("coordinator"), mark, "unavailable")
        check(
            bool(logged), "logged: " + (logged[-1].split(" ERROR ", 1)[1][:160] if logged else "-")
        )
    finally:
        chattr("-i", *sqlite_files(db))
    say("    chattr -i: writable again")
    ok, seconds, tries = s.recovered("DRILL2-BACK")
    check(ok, f"answered again after {seconds:.1f} s ({tries} question(s))")
    check(s.pids() == pids, "no betrokken process was restarted")


def drill_disk_full(s: Drilled, small: Path, base: Path) -> None:
    say("\n3. Disk full, then space back (the databases' 32 MB filesystem filled up by a file)")
    pids = s.pids()
    mark = len(s.log("coordinator"))
    filler = small / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    for size in (1 << 20, 1 << 12, 1):  # down to the last byte
        while True:
            try:
                os.write(fd, b"\0" * size)
            except OSError:
                break
    os.close(fd)
    free = shutil.disk_usage(small).free
    say(f"    {filler.name}: {filler.stat().st_size // (1 << 20)} MB; {free} bytes free")
    try:
        refused = s.ask("DRILL3-FULL")
        check(refused.returncode == 7, f"question on a full disk: {show(refused)}")
        logged = error_lines(s.log("coordinator"), mark, "full")
        check(
            bool(logged), "logged: " + (logged[-1].split(" ERROR ", 1)[1][:160] if logged else "-")
        )
        export = base / "drill3.csv"
        # More than a WAL holds (1 MiB, written into the main file at 256 pages, and reused
        # after that): 300 lines fitted into the room the node's WAL already had, and the
        # import on a "full" disk succeeded.
        people, _ = synthetic_population(random.Random(3), (POLITIE,), 5_000)
        write_export(export, people.registrations[POLITIE])
        imported = s.run(
            "node", "import", "--config", s.net.node_configs[POLITIE], export, "--quiet"
        )
        check(
            imported.returncode == 7 and "Traceback" not in imported.stderr,
            f"node import on a full disk: {show(imported)}",
        )
        check("import interrupted" in imported.stderr, "the import said how far it got")
    finally:
        filler.unlink()
    say(f"    filler removed: {shutil.disk_usage(small).free // (1 << 20)} MB free")
    ok, seconds, tries = s.recovered("DRILL3-BACK")
    check(ok, f"answered again after {seconds:.1f} s ({tries} question(s))")
    again = s.run("node", "import", "--config", s.net.node_configs[POLITIE], export, "--quiet")
    summary = (again.stdout.splitlines() or [""])[0].rsplit(": ", 1)[-1]
    check(again.returncode in (0, 2), f"the same import finishes: {summary}")
    check(s.pids() == pids, "no betrokken process was restarted")


@contextmanager
def pg_databases(*names: str) -> Iterator[dict[str, str]]:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    urls = {}
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            urls[name] = PG_ADMIN.rsplit("/", 1)[0].replace("+psycopg", "") + f"/{name}"
    try:
        yield urls
    finally:
        admin.dispose()  # drill 5 restarted the server under the pooled connection
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def pg_read_only(names: list[str], on: bool) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            value = "on" if on else "off"
            conn.execute(
                text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {value}')
            )
            if on:  # the sessions of the old primary are gone, new ones are read-only
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
    admin.dispose()


def drill_pg_read_only(p: Drilled, names: list[str]) -> None:
    say("\n4. PostgreSQL: the coordinator's and politie's databases go read-only, then writable")
    pids = p.pids()
    mark = len(p.log("coordinator"))
    pg_read_only(names, True)
    say("    ALTER DATABASE ... SET default_transaction_read_only = on; sessions terminated")
    try:
        refused = p.ask("DRILL4-RO")
        check(refused.returncode == 7, f"question while read-only: {show(refused)}")
        logged = error_lines(p.log("coordinator"), mark, "read-only")
        check(
            bool(logged), "logged: " + (logged[-1].split(" ERROR ", 1)[1][:160] if logged else "-")
        )
    finally:
        pg_read_only(names, False)
    say("    default_transaction_read_only = off")
    ok, seconds, tries = p.recovered("DRILL4-BACK")
    check(ok, f"answered again after {seconds:.1f} s ({tries} question(s))")
    check(p.pids() == pids, "no betrokken process was restarted")


def drill_pg_restart(p: Drilled) -> None:
    say("\n5. PostgreSQL restarted")
    pids = p.pids()
    before = p.ask("DRILL5-BEFORE")
    check(before.returncode == 0, f"question before: {show(before)}")
    started = time.monotonic()
    done = subprocess.run(
        ["pg_ctlcluster", *PG_CLUSTER, "restart"], capture_output=True, text=True, check=False
    )
    check(
        done.returncode == 0,
        f"pg_ctlcluster {' '.join(PG_CLUSTER)} restart ({time.monotonic() - started:.1f} s)",
    )
    ok, seconds, tries = p.recovered("DRILL5-BACK")
    check(ok, f"answered after the restart in {seconds:.1f} s ({tries} question(s))")
    check(p.pids() == pids, "no betrokken process was restarted")


# --- the faults that would end in a false "no" (docs/operator.md, "Recovery") --------------------
FAKETIME = next(
    iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))),
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
)


def outcome_of(done: subprocess.CompletedProcess[str], org: str) -> str:
    """The outcome the asking side shows for ``org`` (from `query --json`)."""
    import json

    try:
        answer = json.loads(done.stdout)
        return str(
            next(
                o["outcome"]
                for o in answer["persons"][0]["organisations"]
                if o["organisation_id"] == org
            )
        )
    except (ValueError, KeyError, StopIteration):
        return "-"


def ask_json(f: Drilled, case: str) -> subprocess.CompletedProcess[str]:
    return f.run(
        "query",
        "--config",
        f.net.node_configs[ZVH],
        "--bsn",
        f.person.digits,
        "--purpose",
        "zvh-triage",
        "--case",
        case,
        "--user",
        "tester",
        "--json",
    )


def node_files(f: Drilled) -> list[Path]:
    db = f.net.node_configs[POLITIE].parent / "node.db"
    return [db, db.with_name("node.db-wal"), db.with_name("node.db-shm")]


def start_refused(f: Drilled) -> subprocess.CompletedProcess[str]:
    return f.run("node", "serve", "--config", f.net.node_configs[POLITIE], timeout=60)


def answered_again(f: Drilled, case: str) -> subprocess.CompletedProcess[str]:
    """Ask until the whole network answers (the coordinator sees a restarted node serving at
    its next health probe), or the time is up; the last answer."""
    started = time.monotonic()
    while True:
        done = ask_json(f, case)
        if done.returncode == 0 or time.monotonic() - started > RECOVERY_SECONDS:
            return done
        time.sleep(0.5)


def drill_node_database_deleted(f: Drilled, base: Path) -> None:
    say("\n6. A node's database and WAL deleted: it refuses to serve, the backup restores it")
    config = f.net.node_configs[POLITIE]
    backup = base / "politie.backup"
    made = f.run("backup", "--config", config, backup)
    check(made.returncode == 0 and "verified" in made.stdout, f"backup while running: {show(made)}")
    before = ask_json(f, "DRILL6-BEFORE")
    check(outcome_of(before, POLITIE) == "involved", "politie answers 'involved' before")
    f.cluster.stop_node(POLITIE)
    for path in node_files(f):
        path.unlink(missing_ok=True)
    say("    rm node.db node.db-wal node.db-shm")
    refused = start_refused(f)
    tail = refused.stderr.strip().splitlines()
    check(refused.returncode == 11, f"node serve refuses: exit {refused.returncode}")
    check(
        any("is leeg" in line for line in tail) and any("is empty" in line for line in tail),
        "the refusal, Dutch then English: "
        + next((line for line in tail if "data lost" in line), "-")[:140],
    )
    asked = ask_json(f, "DRILL6-LOST")
    check(
        asked.returncode == 3 and outcome_of(asked, POLITIE) == "unreachable",
        f"a question meanwhile: exit {asked.returncode}, politie {outcome_of(asked, POLITIE)} "
        "(never 'not involved')",
    )
    doctor = f.run("doctor", "--config", config)
    check(doctor.returncode == 2 and "anchor" in doctor.stdout, "doctor: PROBLEM anchor")
    restored = f.run("restore", "--config", config, backup)
    check(restored.returncode == 0, f"restore: {show(restored)}")
    f.cluster.start_node(POLITIE)
    after = answered_again(f, "DRILL6-AFTER")
    check(
        after.returncode == 0 and outcome_of(after, POLITIE) == "involved",
        f"after the restore: exit {after.returncode}, politie {outcome_of(after, POLITIE)}",
    )


def drill_wal_deleted(f: Drilled) -> None:
    say("\n7. A node's WAL deleted after SIGKILL: a bounded loss; a loss is refused, never a 'no'")
    from betrokken.db import CHECKPOINT_SECONDS

    config = f.net.node_configs[POLITIE]
    say(f"    waiting {CHECKPOINT_SECONDS:.0f} s: the running node checkpoints its WAL that often")
    time.sleep(CHECKPOINT_SECONDS + 2)
    process = f.cluster.processes.pop(f"node-{POLITIE}")
    process.kill()
    process.wait()
    wal = node_files(f)[1]
    size = wal.stat().st_size if wal.exists() else 0
    wal.unlink(missing_ok=True)
    node_files(f)[2].unlink(missing_ok=True)
    say(f"    SIGKILL, rm node.db-wal ({size:,} bytes)")
    f.cluster.start_node(POLITIE)
    asked = answered_again(f, "DRILL7")
    check(
        asked.returncode == 0 and outcome_of(asked, POLITIE) == "involved",
        f"checkpointed: nothing lost, politie {outcome_of(asked, POLITIE)}",
    )
    other = parse_bsn("111222333")
    f.run("node", "register", "--config", config, "--bsn", other.digits)
    process = f.cluster.processes.pop(f"node-{POLITIE}")
    process.kill()
    process.wait()
    for path in node_files(f)[1:]:
        path.unlink(missing_ok=True)
    say("    a registration, then at once SIGKILL and rm node.db-wal")
    refused = start_refused(f)
    check(
        refused.returncode in (0, 11),
        f"node serve: exit {refused.returncode}"
        + (" (its anchor is ahead of the database: refused)" if refused.returncode == 11 else ""),
    )
    if refused.returncode == 11:
        reset = f.run("node", "reset", "--config", config, "--confirm")
        check(reset.returncode == 0, f"node reset --confirm: {show(reset)}")
    f.cluster.start_node(POLITIE)


def drill_sync_guard(f: Drilled, base: Path) -> None:
    say("\n8. A partial export imported with --sync: stopped before anything changes")
    config = f.net.node_configs[POLITIE]
    status = f.run("node", "status", "--config", config).stdout
    part = base / "part.csv"
    part.write_text(f"bsn\n{f.person.digits}\n")
    guarded = f.run("node", "import", "--config", config, part, "--sync", "--quiet")
    check(guarded.returncode == 12, f"import --sync: {show(guarded)}")
    after = f.run("node", "status", "--config", config).stdout
    active = [line for line in status.splitlines() if "active:" in line]
    check(active == [line for line in after.splitlines() if "active:" in line], "nothing ended")


def drill_damaged_record(f: Drilled) -> None:
    say(
        "\n9. A record of the coordinator's log altered: reports still work, the bad one named, "
        "the node that answered the question alarms"
    )
    db = f.net.coordinator_config.parent / "coordinator.db"
    import json
    import sqlite3

    asked = answered_again(f, "DRILL9-BEFORE")
    answer_id = json.loads(asked.stdout)["answer_id"] if asked.returncode == 0 else ""
    with sqlite3.connect(db) as conn:
        conn.execute(
            'UPDATE log_records SET content = replace(content, \'"at":"20\', \'"at":"19\') '
            "WHERE event = 'search' AND answer_id = ?",
            (answer_id,),
        )
        found = conn.execute(
            "SELECT \"index\" FROM log_records WHERE event = 'search' AND answer_id = ?",
            (answer_id,),
        ).fetchone()
    index = found[0] if found else -1
    shown = f.run("audit", "log", "--config", f.net.coordinator_config, "--user", "drill")
    damaged = [line for line in shown.stderr.splitlines() if line.startswith("DAMAGED")]
    check(
        shown.returncode == 8 and len(damaged) == 1 and shown.stdout.count("\n") > 0,
        f"audit log: exit {shown.returncode}, {shown.stdout.count(chr(10))} records shown; "
        + (damaged[0] if damaged else "-"),
    )
    # One witness interval of politie's node (which answered that question), run at once.
    witnessed = f.run("node", "witness", "--config", f.net.node_configs[POLITIE], "--once")
    alarms = [
        line
        for line in node_alarms(f, "record-damaged")
        if f"record {index} of the coordinator's log" in line
    ]
    check(
        witnessed.returncode == 8 and len(alarms) == 1,
        f"politie's witness check: exit {witnessed.returncode}, {len(alarms)} alarm(s) naming "
        f"record {index}: " + (alarms[0].split(" / ")[-1][:120] if alarms else "-"),
    )
    asked = ask_json(f, "DRILL9")
    check(asked.returncode == 0, f"a question after the damage: {show(asked)}")


def node_alarms(f: Drilled, reason: str) -> list[str]:
    """The messages of politie's alarms of ``reason``, oldest first."""
    import json
    import sqlite3

    with sqlite3.connect(node_files(f)[0]) as conn:
        rows = conn.execute(
            "select content from log_records where event = 'alarm' order by \"index\""
        ).fetchall()
    found = [json.loads(c) for (c,) in rows if c]
    return [str(a["details"].get("message", "")) for a in found if a["reason"] == reason]


def drill_clock_skew(f: Drilled) -> None:
    say("\n10. A node's clock 3 minutes ahead: every question refused, one alarm naming its clock")
    if not FAKETIME.is_file():
        check(False, f"{FAKETIME} missing: apt-get install libfaketime")
        return
    f.cluster.stop_node(POLITIE)
    os.environ.update(LD_PRELOAD=str(FAKETIME), FAKETIME="+180s")
    try:
        f.cluster.start_node(POLITIE)
    finally:
        del os.environ["LD_PRELOAD"], os.environ["FAKETIME"]
    db = node_files(f)[0]
    import sqlite3

    def alarms() -> list[str]:
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                "select content from log_records where event = 'alarm' order by \"index\""
            ).fetchall()
        return [str(c) for (c,) in rows if '"reason":"stale"' in c]

    before = len(alarms())
    codes = [ask_json(f, f"DRILL10-{i}") for i in range(3)]
    check(
        all(c.returncode == 3 and outcome_of(c, POLITIE) == "error" for c in codes),
        "3 questions: partial, politie 'error' (never 'not involved')",
    )
    new = alarms()[before:]
    check(len(new) == 1, f"{len(new)} stale alarm(s) in politie's trail")
    check(
        bool(new) and "this node's clock is off" in new[0],
        "it names the clock: "
        + (new[0].split("seconds from this node's time")[-1][28:110] if new else "-"),
    )
    # The node measured the coordinator's clock at its first witness check: one alarm, and
    # `node status` (run with the right clock) shows the offset against the threshold.
    started = time.monotonic()
    while not node_alarms(f, "clock") and time.monotonic() - started < RECOVERY_SECONDS:
        time.sleep(0.5)
    clock = node_alarms(f, "clock")
    status = f.run("node", "status", "--config", f.net.node_configs[POLITIE]).stdout
    shown_line = next((line for line in status.splitlines() if "klok co" in line), "-")
    check(
        len(clock) == 1 and "TE VER AF" in shown_line and "TOO FAR OFF" in shown_line,
        f"{len(clock)} clock alarm(s); node status: {shown_line.strip()[:150]}",
    )
    f.cluster.stop_node(POLITIE)
    f.cluster.start_node(POLITIE)
    again = answered_again(f, "DRILL10-AFTER")
    check(again.returncode == 0, f"the clock right again: {show(again)}")


def drill_portal_restart(f: Drilled) -> None:
    say("\n11. The ZVH's portal restarted with a user logged in and a question form open")
    import httpx
    import pyotp

    from betrokken.app.demo_portal import _csrf, add_account

    account = add_account(f.cluster, ZVH, "drill.regisseur", ("regisseur",))
    url = f.cluster.start_portal(ZVH)
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
        csrf = _csrf(client.get("/vraag"))
        f.cluster.stop_process(f"portal-{ZVH}")
        f.cluster.start_portal(ZVH)
        say("    portal stopped (SIGTERM) and started again")
        again = client.get("/vraag")
        check(again.url.path == "/vraag", f"still logged in: {again.url.path}")
        answer = client.post(
            "/vraag",
            data={"csrf": csrf, "bsn": f.person.digits, "doel": "zvh-triage", "zaak": "DRILL11"},
        )
        check(
            "/antwoord/" in str(answer.url),
            f"the form opened before the restart posts: {answer.url.path}",
        )
    f.cluster.stop_process(f"portal-{ZVH}")


def faults(base: Path) -> None:
    say("\nnetwork F: faults that would otherwise end in a false 'no' (SQLite)")
    f = network(base, "faults", {})
    try:
        first = f.ask("DRILL-F-START")
        check(first.returncode == 0, f"a question to the healthy network: {show(first)}")
        drill_node_database_deleted(f, base)
        drill_wal_deleted(f)
        drill_sync_guard(f, base)
        drill_damaged_record(f)
        drill_clock_skew(f)
        drill_portal_restart(f)
    finally:
        f.cluster.stop()


# --- running it ----------------------------------------------------------------------------------
def preconditions() -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("run as root (mount a loop image, chattr +i)")
    for tool in ("chattr", "mount", "umount", "mkfs.ext4", "truncate", "pg_ctlcluster"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} is not installed")
    try:
        engine = create_engine(PG_ADMIN, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        problems.append(f"PostgreSQL not reachable at {PG_ADMIN} ({type(exc).__name__})")
    return problems


def main() -> int:
    if sys.argv[1:] == ["faults"]:  # only the fault drills: no root, no shared PostgreSQL restart
        base = Path(tempfile.mkdtemp(prefix="betrokken-drill-"))
        faults(base)
        return finish(base)
    problems = preconditions()
    if problems:
        say("make drill cannot run here: " + "; ".join(problems))
        return 2
    base = Path(tempfile.mkdtemp(prefix="betrokken-drill-"))
    small = base / "small"
    small.mkdir()
    image = base / "small.img"
    subprocess.run(["truncate", "-s", "32M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-m", "0", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(small)], check=True)
    small.chmod(0o700)
    say(f"betrokken drills in {base}; the small filesystem: {small} (ext4, 32 MB loop image)")
    running: list[Drilled] = []
    try:
        say("\nnetwork S: the coordinator's and politie's databases on the small filesystem")
        s = network(
            base,
            "sqlite",
            {
                "coordinator": f"sqlite:///{small}/coordinator.db",
                POLITIE: f"sqlite:///{small}/politie.db",
            },
        )
        running.append(s)
        first = s.ask("DRILL-START")
        check(first.returncode == 0, f"a question to the healthy network: {show(first)}")
        drill_read_only_at_start(s, small / "coordinator.db")
        drill_read_only_while_running(s, small / "coordinator.db")
        drill_disk_full(s, small, base)
        s.cluster.stop()
        running.remove(s)
        suffix = uuid.uuid4().hex[:8]
        names = [f"betrokken_drill_coordinator_{suffix}", f"betrokken_drill_politie_{suffix}"]
        with pg_databases(*names) as urls:
            say("\nnetwork P: the coordinator's and politie's databases on PostgreSQL")
            p = network(base, "postgres", {"coordinator": urls[names[0]], POLITIE: urls[names[1]]})
            running.append(p)
            first = p.ask("DRILL-PG-START")
            check(first.returncode == 0, f"a question to the healthy network: {show(first)}")
            drill_pg_read_only(p, names)
            drill_pg_restart(p)
            p.cluster.stop()
            running.remove(p)
        faults(base)
    finally:
        for drilled in running:
            drilled.cluster.stop()
        subprocess.run(["umount", "-l", str(small)], check=False)
    return finish(base)


def finish(base: Path) -> int:
    say("")
    if FAILED:
        say(f"DRILLS FAILED ({len(FAILED)}): " + "; ".join(FAILED))
        say(f"logs kept in {base}")
        return 1
    shutil.rmtree(base, ignore_errors=True)
    say("all drills passed: each failure refused cleanly and logged, each recovery without restart")
    return 0


if __name__ == "__main__":
    sys.exit(main())
