"""`betrokken node import/register/withdraw/status` against a real key service (its own process,
mutual TLS): exports as case systems produce them, summaries that fit on a screen, imports cut off
and finished, and a BSN that never has to be typed on the command line.

The commands run in this process (:func:`tests.cli.invoke`) where what they do is the subject;
an import that is cut off or interrupted, bytes on standard input, and the terminal that asks for
the BSN without echo run as processes."""

from __future__ import annotations

import codecs
import datetime as dt
import os
import random
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from betrokken.app.cluster import betrokken_command
from betrokken.app.devnet import DevNetwork, init_network
from betrokken.config.load import load_network
from betrokken.crypto.bsn import Bsn, generate_bsn
from betrokken.node.importer import BATCH
from tests.cli import Done, invoke
from tests.conftest import network_ports

pytestmark = pytest.mark.e2e

ORG = "politie-cli"
SCREEN = 24


@dataclass
class Net:
    net: DevNetwork
    keyservice: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> str:
        return str(self.net.node_configs[ORG])

    @property
    def database(self) -> Path:
        return self.net.node_configs[ORG].parent / "node.db"

    def start_keyservice(self) -> None:
        address = load_network(self.net.network_file).keyservice.address
        host, port = address.rsplit(":", 1)
        log = (self.net.directory / "keyservice.log").open("ab")
        self.keyservice = subprocess.Popen(
            betrokken_command("keyservice", "serve", "--config", self.net.keyservice_config),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.net.directory,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.keyservice.poll() is None, "the key service exited"
            try:
                with socket.create_connection((host, int(port)), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the key service did not start")

    def kill_keyservice(self) -> None:
        if self.keyservice is not None and self.keyservice.poll() is None:
            self.keyservice.kill()
            self.keyservice.wait()
        self.keyservice = None

    def run(self, *args: str, stdin: str | None = None) -> Done:
        """``betrokken ARGS`` in this process."""
        return invoke(*args, stdin=stdin)

    def registrations(self) -> int:
        if not self.database.exists():
            return 0
        with sqlite3.connect(self.database, timeout=5) as conn:
            try:
                return int(conn.execute("select count(*) from registrations").fetchone()[0])
            except sqlite3.OperationalError:
                return 0


def _network(base: Path) -> Iterator[Net]:
    net = Net(
        init_network(
            base / "net",
            ["zvh-cli", ORG],
            name="cli-test",
            quota=1_000_000,
            base_port=network_ports(2),
        )
    )
    net.start_keyservice()
    try:
        yield net
    finally:
        net.kill_keyservice()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    yield from _network(tmp_path_factory.mktemp("cli"))


@pytest.fixture
def own_network(tmp_path: Path) -> Iterator[Net]:
    yield from _network(tmp_path)


def _people(n: int, seed: int) -> list[Bsn]:
    rng = random.Random(seed)
    seen: dict[str, Bsn] = {}
    while len(seen) < n:
        bsn = generate_bsn(rng)
        seen[bsn.digits] = bsn
    return list(seen.values())


def _export(path: Path, people: list[Bsn], bad: bool = True) -> None:
    """A case system's export: BOM, semicolons, CRLF, Dutch dates, columns nobody asked for.

    With ``bad``, 5% of lines carry the mistakes case systems make, in four kinds.
    """
    rng = random.Random(len(people))
    today = dt.datetime.now(dt.UTC).date()
    lines = ["Dossiernummer;BSN;Naam;Adres;Startdatum;Einddatum;Behandelaar"]
    for i, person in enumerate(people):
        start = today - dt.timedelta(days=rng.randrange(0, 900))  # many older than the term
        digits = person.digits
        if i % 7 == 0 and digits.startswith("0"):
            digits = digits[1:]  # Excel dropped the leading zero
        end = ""
        if i % 10 == 3:
            end = f"{(today + dt.timedelta(days=rng.randrange(1, 300))):%d-%m-%Y}"
        since = f"{start.day}-{start.month}-{start.year}"
        if bad and i % 20 == 1:
            kind = i // 20 % 4
            if kind == 0:
                digits = digits[:-1] + str((int(digits[-1]) + 1) % 10)  # elfproef fails
            elif kind == 1:
                since = f"{start:%d-%m-%y}"  # two-digit year
            elif kind == 2:
                since = f"{(today - dt.timedelta(days=400)):%d-%m-%Y}"
                end = f"{(today - dt.timedelta(days=5)):%d-%m-%Y}"  # ended already
            else:
                digits = ""
        lines.append(
            f"Z-{i:05d};{digits};Persoon {i};Dorpsstraat {i}, Haarlem;{since};{end};mw. {i % 9}"
        )
    path.write_bytes(codecs.BOM_UTF8 + ("\r\n".join(lines) + "\r\n").encode())


def test_a_real_5000_line_export_imports_without_editing_and_the_summary_fits_a_screen(
    network: Net, tmp_path: Path
) -> None:
    config = Path(network.config)
    config.write_text(
        config.read_text()
        + '\n[import]\ncolumns = { since = "Startdatum", reference = "Dossiernummer" }\n'
    )
    people = _people(5000, seed=1)
    export = tmp_path / "export.csv"
    _export(export, people)
    done = network.run(
        "node", "import", "--config", network.config, str(export), "--columns", "until=Einddatum"
    )
    assert done.code == 2, done.stdout + done.stderr  # some lines were rejected
    lines = done.stdout.rstrip("\n").splitlines()
    assert len(lines) <= SCREEN, done.stdout
    summary = done.stdout
    assert "4750 added, 0 updated, 0 unchanged, 250 rejected" in lines[0]
    assert "CSV, semicolon-separated, UTF-8 with BOM; 5,000 line(s)" in summary
    assert "since=Startdatum" in summary and "until=Einddatum" in summary
    assert "ignored:  Naam, Adres, Behandelaar" in summary
    assert lines[-5:] == [
        "  rejected (250 line(s); nothing of them was stored):",
        "    63 lines: BSN fails the elfproef (11-check) — e.g. line 3, 83, 163",
        "    63 lines: since: not a date (use YYYY-MM-DD or dd-mm-jjjj) — e.g. line 23, 103, 183",
        "    62 lines: until is in the past: the registration would be ended at once "
        "— e.g. line 43, 123, 203",
        "    62 lines: no BSN — e.g. line 63, 143, 223",
    ]
    assert "Traceback" not in done.stderr
    for person in people:
        assert person.digits not in done.stdout + done.stderr

    # Nothing stored already ended: every open case is active, whatever its start.
    status = network.run("node", "status", "--config", network.config)
    assert status.code == 0, status.stderr
    assert "active:             4750 registration(s)" in status.stdout
    assert "ended, not removed: 0" in status.stdout
    assert "ending in 30 days:  0 for lack of confirmation" in status.stdout

    # The same export again: idempotent, every stored line confirmed.
    again = network.run(
        "node",
        "import",
        "--config",
        network.config,
        str(export),
        "--columns",
        "until=Einddatum",
        "--quiet",
    )
    assert "0 added, 0 updated, 4750 unchanged, 250 rejected" in again.stdout


def test_register_and_withdraw_read_the_bsn_from_standard_input(network: Net) -> None:
    [person] = _people(1, seed=77)
    done = network.run(
        "node",
        "register",
        "--config",
        network.config,
        "--bsn",
        "-",
        "--since",
        "03-09-2024",
        "--reference",
        "ZAAK-1",
        stdin=person.digits + "\n",
    )
    assert done.code == 0, done.stderr
    term_end = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=730)
    # The gap: a case open since 2024-09-03 used to be "added (until 2026-09-03)", ended.
    assert f"{person.masked()}: added; active until {term_end}" in done.stdout
    # Confirming again without --reference keeps it.
    again = network.run(
        "node", "register", "--config", network.config, "--bsn", "-", stdin=person.digits
    )
    assert f"{person.masked()}: unchanged" in again.stdout, again.stderr
    withdrawn = network.run("node", "withdraw", "--config", network.config, "--reference", "ZAAK-1")
    assert "reference ZAAK-1: withdrawn (1 registration(s) removed)" in withdrawn.stdout
    assert "remembered as withdrawn" in withdrawn.stdout
    none = network.run(
        "node", "withdraw", "--config", network.config, "--bsn", "-", stdin=person.digits
    )
    assert "no registration found" in none.stdout
    for result in (done, again, withdrawn, none):
        assert person.digits not in result.stdout + result.stderr
    bad = network.run("node", "register", "--config", network.config, "--bsn", "-", stdin="")
    assert bad.code == 2 and "no BSN given" in bad.stderr
    binary = subprocess.run(
        betrokken_command("node", "withdraw", "--config", network.config, "--bsn", "-"),
        input=b"\xff\xfe9999\n",
        capture_output=True,
        check=False,
    )
    assert binary.returncode == 2 and b"Traceback" not in binary.stderr


def test_register_refuses_an_end_in_the_past_and_accepts_a_later_one(network: Net) -> None:
    [person] = _people(1, seed=78)
    past = network.run(
        "node",
        "register",
        "--config",
        network.config,
        "--bsn",
        "-",
        "--until",
        "2026-01-01",
        stdin=person.digits,
    )
    assert past.code == 2
    assert "in the past" in past.stderr and "what to do" in past.stderr
    ok = network.run(
        "node", "register", "--config", network.config, "--bsn", "-", stdin=person.digits
    )
    assert ok.code == 0
    later = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2000)).isoformat()
    longer = network.run(
        "node",
        "register",
        "--config",
        network.config,
        "--bsn",
        "-",
        "--until",
        later,
        stdin=person.digits,
    )
    assert longer.code == 0, longer.stderr
    assert "updated" in longer.stdout and f"the case's end {later} is later" in longer.stdout


def _wait_for_rows(net: Net, process: subprocess.Popen[bytes], at_least: int) -> None:
    deadline = time.monotonic() + 120
    while net.registrations() < at_least:
        assert process.poll() is None, "the import finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _import(net: Net, export: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        betrokken_command("node", "import", "--config", net.config, str(export), *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_an_import_cut_off_by_the_key_service_says_how_far_it_got_and_a_rerun_finishes(
    own_network: Net, tmp_path: Path
) -> None:
    net = own_network
    people = _people(6_000, seed=2)
    export = tmp_path / "export.csv"
    _export(export, people, bad=False)
    args = ("--columns", "since=Startdatum,until=Einddatum", "--quiet", "--sync")
    process = _import(net, export, *args)
    _wait_for_rows(net, process, 500)
    net.kill_keyservice()
    stdout, stderr = (s.decode() for s in process.communicate(timeout=120))
    assert process.returncode == 7, stdout + stderr  # the key service's own exit code
    stored = net.registrations()
    assert 500 <= stored < 6_000
    assert f"every line up to line {stored + 1:,} is done ({stored:,} stored" in stderr
    assert "run the same command again to finish" in stderr
    assert "service unavailable" in stderr and "Traceback" not in stderr
    assert "--sync:   nothing ended (the import did not finish)" in stdout

    net.start_keyservice()
    rerun = net.run("node", "import", "--config", net.config, str(export), *args)
    assert rerun.code == 0, rerun.stdout + rerun.stderr
    assert f"{6_000 - stored} added, 0 updated, {stored} unchanged, 0 rejected" in rerun.stdout
    assert "0 registration(s) not in the file ended" in rerun.stdout
    assert net.registrations() == 6_000


@dataclass
class Gate:
    """Lets ``open_calls`` import evaluations through, then holds each further one until
    released: an import held there is mid-way, with a known number of batches stored."""

    open_calls: int
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    holding: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def passes(self) -> None:
        with self.lock:
            self.calls += 1
            held = self.calls > self.open_calls
        if held:
            self.holding.set()
            self.released.wait(120)


@contextmanager
def gated_keyservice(net: DevNetwork, gate: Gate) -> Iterator[None]:
    """The network's key service in this process (its own keys, database and certificate, mutual
    TLS on its own address), with ``gate`` in front of every import evaluation."""
    from betrokken.config.load import load_keyservice
    from betrokken.identity.rpc import make_server
    from betrokken.keyservice.keys import KeyRing, read_seed
    from betrokken.keyservice.servicer import KeyServiceServicer
    from betrokken.keyservice.store import QuotaStore
    from betrokken.v1 import betrokken_pb2 as pb
    from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

    loaded = load_keyservice(net.keyservice_config)
    seed = loaded.resolve(loaded.component.oprf_seed)
    ring = KeyRing.load(read_seed(seed), loaded.network, str(seed))
    store = QuotaStore(loaded.component.database)

    class GatedKeyService(KeyServiceServicer):
        def Evaluate(self, request: Any, context: Any) -> Any:
            if request.use == pb.IMPORT:
                gate.passes()
            return super().Evaluate(request, context)

    server = make_server(loaded.network.keyservice.address, loaded.tls)
    pb_grpc.add_KeyServiceServicer_to_server(GatedKeyService(loaded.network, ring, store), server)
    server.start()
    try:
        yield
    finally:
        gate.released.set()
        server.stop(0).wait()
        store.engine.dispose()


def test_ctrl_c_during_an_import_exits_130_and_says_how_far_it_got(tmp_path: Path) -> None:
    """Deterministic: the key service lets two batches through and holds the third, so the
    import is waiting mid-way (two batches stored) when Ctrl-C comes, however loaded the
    machine; it can never finish first."""
    net = Net(
        init_network(
            tmp_path / "net",
            ["zvh-cli", ORG],
            name="cli-test",
            quota=1_000_000,
            base_port=network_ports(2),
        )
    )
    export = tmp_path / "export.csv"
    _export(export, _people(6_000, seed=3), bad=False)
    gate = Gate(open_calls=2)
    with gated_keyservice(net.net, gate):
        process = _import(net, export, "--columns", "since=Startdatum", "--quiet")
        assert gate.holding.wait(120), "the import never asked for a third batch"
        _wait_for_rows(net, process, 2 * BATCH)
        os.kill(process.pid, signal.SIGINT)
        gate.released.set()
        stdout, stderr = (s.decode() for s in process.communicate(timeout=120))
    assert process.returncode == 130, stdout + stderr
    stored = net.registrations()  # what the summary says is exactly what is stored
    assert 2 * BATCH <= stored < 6_000
    assert f"every line up to line {stored + 1:,} is done ({stored:,} stored" in stderr
    assert "run the same command again to finish" in stderr and "Traceback" not in stderr


def test_on_a_terminal_the_bsn_is_asked_for_without_echo(network: Net) -> None:
    import pty

    [person] = _people(1, seed=79)
    command = betrokken_command("node", "register", "--config", network.config, "--bsn", "-")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal
        os.execv(command[0], command)
    seen = b""
    deadline = time.monotonic() + 60
    while b"BSN:" not in seen and time.monotonic() < deadline:
        seen += os.read(fd, 1024)
    os.write(fd, person.digits.encode() + b"\n")
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert f"{person.masked()}: added".encode() in seen
    assert person.digits.encode() not in seen  # not echoed


def test_a_wrong_column_mapping_in_node_toml_is_a_configuration_error(
    network: Net, tmp_path: Path
) -> None:
    config = Path(network.config)
    base = config.read_text().split("\n[import]")[0]
    wrong = config.with_name("node-wrong-import.toml")
    wrong.write_text(base + '\n[import]\ncolumns = { naam = "Naam" }\n')
    export = tmp_path / "export.csv"
    export.write_text("bsn\n999993653\n")
    done = network.run("node", "import", "--config", str(wrong), str(export))
    assert done.code == 5
    assert "[import] columns names unknown field(s) naam" in done.stderr
    missing = network.run(
        "node", "import", "--config", network.config, str(export), "--columns", "bsn=BSN-nr"
    )
    assert missing.code == 2
    assert "column 'BSN-nr' (mapped to bsn) is not in the file; columns found: 'bsn'" in (
        missing.stderr
    )
