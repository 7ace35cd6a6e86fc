"""Every command, given broken input, says what is wrong with its documented exit code — never a
traceback (ADR 0017).

The commands are taken from the ``betrokken`` group itself, so a command added without a case
here fails :func:`test_every_command_is_exercised`. Most cases run in this process (the commands'
own code paths, fast); the ``serve`` commands, bytes that are not UTF-8 on the command line and the
real entry point run as processes, where a traceback would really reach a user's terminal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from betrokken.app.cli import main
from betrokken.app.cluster import betrokken_command
from betrokken.app.devnet import DevNetwork, init_network
from betrokken.audit.record import AuditEntry, Event
from betrokken.config.load import load_node
from betrokken.node.server import open_store, open_witness
from tests.fsutil import make_read_only, make_writable

# docs/operator.md and docs/regisseur.md, "Exit codes"
DOCUMENTED = {0, 2, 3, 4, 5, 6, 7, 8, 130}
NOT_UTF8 = b"bsn;case\n\xff\xfe\x00garbage \xe9\xe8\n"
SURROGATES = "\udcff\udcfe"  # what Python makes of the argument bytes ff fe


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    codes: frozenset[int]
    stdin: bytes | None = None

    @property
    def command(self) -> tuple[str, ...]:
        """The command's path in the group, e.g. ('audit', 'log')."""
        path: list[str] = []
        group: click.Command | None = main
        for arg in self.args:
            if not isinstance(group, click.Group):
                break
            found = group.get_command(click.Context(group), arg)  # lazy commands too
            if found is None:
                break
            path.append(arg)
            group = found
        return tuple(path)


@dataclass
class World:
    net: DevNetwork
    tmp: Path

    @property
    def node(self) -> str:
        return str(self.net.node_configs["politie-cli"])

    @property
    def asker(self) -> str:
        return str(self.net.node_configs["zvh-cli"])

    @property
    def node_db(self) -> Path:
        return self.net.node_configs["politie-cli"].parent / "node.db"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("cli-errors")
    net = init_network(tmp / "net", ["zvh-cli", "politie-cli"], name="cli-errors")
    # Each node's database holds its schema and a trail record, as a node that has run does.
    for org in ("politie-cli", "zvh-cli"):
        store = open_witness(open_store(load_node(net.node_configs[org])))
        store.trail.append([AuditEntry(event=Event.PRUNE, at=_now())])
        store.engine.dispose()
    (tmp / "not-utf8.csv").write_bytes(NOT_UTF8)
    (tmp / "not-utf8.toml").write_bytes(b'network = "\xff\xfe"\n')
    (tmp / "a-folder").mkdir()
    locked = tmp / "locked"
    locked.mkdir()
    make_read_only(locked)
    # A node configuration whose database is somewhere else (a mistyped path).
    moved = net.node_configs["politie-cli"].parent / "mistyped.toml"
    moved.write_text(net.node_configs["politie-cli"].read_text().replace("node.db", "no-such.db"))
    # A node configuration naming key files that were never made.
    keyless = net.node_configs["politie-cli"].parent / "keyless.toml"
    keyless.write_text(
        net.node_configs["politie-cli"]
        .read_text()
        .replace('"question.key"', '"never-made-question.key"')
        .replace('"envelope.key"', '"never-made-envelope.key"')
    )
    try:
        yield World(net, tmp)
    finally:
        make_writable(locked)


def _now():  # type: ignore[no-untyped-def]
    import datetime as dt

    return dt.datetime.now(dt.UTC)


C2, C5, C7 = frozenset({2}), frozenset({5}), frozenset({7})
UNREACHABLE = frozenset({6, 7})  # nothing runs here (another network's server on the port: 6)
BSN = "999993653"
ASK = ("query", "--config", "{asker}", "--bsn", BSN)
CASES = [
    # network
    Case("init into a read-only folder", ("network", "init", "{locked}", "--orgs", "a,b"), C2),
    Case("init onto a file", ("network", "init", "{not_utf8}", "--orgs", "a,b"), C2),
    Case(
        "init, port out of range",
        ("network", "init", "{tmp}/n1", "--orgs", "a,b", "--base-port", "70000"),
        C2,
    ),
    Case("init, bad bytes in an id", ("network", "init", "{tmp}/n2", "--orgs", "a\udcff,b"), C2),
    Case(
        "init, bad bytes in the name",
        ("network", "init", "{tmp}/n3", "--orgs", "a,b", "--name", "x" + SURROGATES),
        C2,
    ),
    Case(
        "init, a name with a space",
        ("network", "init", "{tmp}/n4", "--orgs", "a,b", "--name", "Zorg en Veiligheid"),
        C2,
    ),
    Case(
        "init, a name with a quote",
        ("network", "init", "{tmp}/n5", "--orgs", "a,b", "--name", 'zvh"x'),
        C2,
    ),
    Case("check a missing file", ("network", "check", "{missing}"), C5),
    Case("check bad bytes", ("network", "check", "{not_utf8}"), C5),
    Case("check a folder", ("network", "check", "{folder}"), C2),
    # key service
    Case("derive, missing config", ("keyservice", "derive", "--config", "{missing}", "x"), C5),
    Case("derive, bad bytes", ("keyservice", "derive", "--config", "{ks}", "x" + SURROGATES), C2),
    Case(
        "derive, config with bad bytes", ("keyservice", "derive", "--config", "{not_utf8}", "x"), C5
    ),
    # node
    Case(
        "register, invalid BSN",
        ("node", "register", "--config", "{node}", "--bsn", "123456789"),
        C2,
    ),
    Case(
        "register, impossible date",
        ("node", "register", "--config", "{node}", "--bsn", BSN, "--since", "99-99-2024"),
        C2,
    ),
    Case(
        "register, BSN as bad bytes",
        ("node", "register", "--config", "{node}", "--bsn", "-"),
        C2,
        stdin=b"\xff\xfe\n",
    ),
    Case(
        "register, no key service",
        ("node", "register", "--config", "{node}", "--bsn", BSN),
        UNREACHABLE,
    ),
    Case(
        "withdraw, missing config",
        ("node", "withdraw", "--config", "{missing}", "--reference", "x"),
        C5,
    ),
    Case("import a missing file", ("node", "import", "--config", "{node}", "{tmp}/nope.csv"), C2),
    Case(
        "import bad bytes",
        ("node", "import", "--config", "{node}", "{tmp}/not-utf8.csv", "--quiet"),
        C2,
    ),
    Case("import a folder", ("node", "import", "--config", "{node}", "{folder}"), C2),
    Case("status, config with bad bytes", ("node", "status", "--config", "{not_utf8}"), C5),
    Case("status, config is a folder", ("node", "status", "--config", "{folder}"), C2),
    Case("expire, missing config", ("node", "expire", "--config", "{missing}"), C5),
    Case(
        "witness, no coordinator", ("node", "witness", "--config", "{node}", "--once"), UNREACHABLE
    ),
    Case("witnessed, missing config", ("node", "witnessed", "--config", "{missing}"), C5),
    Case("watch, missing config", ("node", "watch", "--config", "{missing}", "--once"), C5),
    Case("watch, config with bad bytes", ("node", "watch", "--config", "{not_utf8}"), C5),
    Case("watch, no drop folder configured", ("node", "watch", "--config", "{node}", "--once"), C5),
    Case("watch, no interval", ("node", "watch", "--config", "{node}", "--interval", "0"), C2),
    # query
    Case(
        "query, bad bytes in --user",
        (*ASK, "--purpose", "zvh-triage", "--case", "C", "--user", "u" + SURROGATES),
        C2,
    ),
    Case("query, a newline in --purpose", (*ASK, "--purpose", "zvh\nWARNING x", "--case", "C"), C2),
    Case("query, NUL in --case", (*ASK, "--purpose", "zvh-triage", "--case", "C\x00"), C2),
    Case("query, a 1 MB purpose", (*ASK, "--purpose", "p" * 1_000_000, "--case", "C"), C2),
    Case(
        "query, list file with bad bytes",
        ("query", "--config", "{asker}", "--file", "{tmp}/not-utf8.csv", "--purpose", "zvh-triage"),
        C2,
    ),
    Case(
        "query, list file missing",
        ("query", "--config", "{asker}", "--file", "{tmp}/nope.csv", "--purpose", "zvh-triage"),
        C2,
    ),
    Case(
        "query, --json, missing config",
        ("query", "--config", "{missing}", "--bsn", BSN, "--purpose", "p", "--case", "C", "--json"),
        C5,
    ),
    Case("keys, missing config", ("node", "keys", "--config", "{missing}"), C5),
    Case("collect, missing config", ("collect", "--config", "{missing}"), C5),
    Case("collect, no coordinator", ("collect", "--config", "{node}"), UNREACHABLE),
    Case("keys, config with bad bytes", ("node", "keys", "--config", "{not_utf8}"), C5),
    Case("keys without --create, files missing", ("node", "keys", "--config", "{keyless}"), C5),
    # operations: status, doctor, db (docs/operator.md)
    Case("status, missing config", ("status", "--config", "{missing}"), C5),
    Case("status, config with bad bytes", ("status", "--config", "{not_utf8}"), C5),
    Case("status, config is a folder", ("status", "--config", "{folder}"), C2),
    Case("doctor, missing config", ("doctor", "--config", "{missing}"), C2),
    Case("doctor, config with bad bytes", ("doctor", "--config", "{not_utf8}"), C2),
    Case("db current, missing config", ("db", "current", "--config", "{missing}"), C5),
    Case("db current, config with bad bytes", ("db", "current", "--config", "{not_utf8}"), C5),
    Case("db upgrade, missing config", ("db", "upgrade", "--config", "{missing}"), C5),
    Case("db upgrade, config is a folder", ("db", "upgrade", "--config", "{folder}"), C2),
    Case("backup, missing config", ("backup", "--config", "{missing}", "{tmp}/b.db"), C5),
    Case(
        "backup into a folder that is not there", ("backup", "--config", "{node}", "{tmp}/no/b"), C2
    ),
    Case("restore, no such backup", ("restore", "--config", "{node}", "{tmp}/nope.db"), C2),
    Case(
        "restore, not a database", ("restore", "--config", "{node}", "{not_utf8}"), frozenset({8})
    ),
    Case("node reset without --confirm", ("node", "reset", "--config", "{node}"), C2),
    # audit
    Case(
        "verify a database that does not exist", ("audit", "verify", "--config", "{mistyped}"), C5
    ),
    Case(
        "verify, witnessed file missing",
        ("audit", "verify", "--config", "{node}", "--witnessed", "{tmp}/nope.txt"),
        C2,
    ),
    Case("log, unknown event", ("audit", "log", "--config", "{node}", "--event", "serch"), C2),
    Case("log, unknown outcome", ("audit", "log", "--config", "{node}", "--outcome", "yes"), C2),
    Case(
        "log, unknown organisation",
        ("audit", "log", "--config", "{node}", "--organisation", "politie"),
        C2,
    ),
    Case(
        "log, bad delimiter",
        ("audit", "log", "--config", "{node}", "--format", "csv", "--delimiter", "x"),
        C2,
    ),
    Case(
        "log, bad bytes in --for-user",
        ("audit", "log", "--config", "{node}", "--for-user", SURROGATES),
        C2,
    ),
    Case(
        "log, impossible date", ("audit", "log", "--config", "{node}", "--since", "2026-13-45"), C2
    ),
    Case("subject, invalid BSN", ("audit", "subject", "--config", "{node}", "--bsn", "12"), C2),
    Case(
        "subject, --out in a missing folder",
        ("audit", "subject", "--config", "{node}", "--bsn", BSN, "--out", "{tmp}/nope/x.html"),
        C2,
    ),
    Case(
        "report to a full device",
        ("audit", "report", "--config", "{node}", "--out", "/dev/full"),
        C7,
    ),
    Case(
        "report into a read-only folder",
        ("audit", "report", "--config", "{node}", "--out", "{locked}/r.html"),
        C2,
    ),
    Case("prune a database that does not exist", ("audit", "prune", "--config", "{mistyped}"), C5),
    Case(
        "follow-up, combined with a file that is not JSON",
        ("audit", "follow-up", "--config", "{node}", "--combine", "/etc/hostname"),
        C2,
    ),
    Case(
        "report of a coordinator that never recorded",
        ("audit", "report", "--config", "{coord}", "--out", "{tmp}/r.html"),
        C5,
    ),
    # portal (its serve command is in SERVE)
    Case(
        "portal user add, no such config",
        ("portal", "user", "add", "--config", "{missing}", "r.x", "--role", "regisseur"),
        C5,
    ),
    Case(
        "portal user add, unknown role",
        ("portal", "user", "add", "--config", "{portal}", "r.y", "--role", "koning"),
        C2,
        stdin=b"a long enough password\n",
    ),
    Case(
        "portal user add, short password",
        ("portal", "user", "add", "--config", "{portal}", "r.z", "--role", "regisseur"),
        C2,
        stdin=b"kort\n",
    ),
    Case(
        "portal user add, unknown purpose",
        (
            "portal",
            "user",
            "add",
            "--config",
            "{portal}",
            "r.w",
            "--role",
            "regisseur",
            "--purpose",
            "nieuwsgierigheid",
        ),
        C2,
        stdin=b"a long enough password\n",
    ),
    Case(
        "portal user add, a user name with a newline",
        ("portal", "user", "add", "--config", "{portal}", "r\nx", "--role", "regisseur"),
        C2,
        stdin=b"a long enough password\n",
    ),
    Case(
        "portal user reset, no such account",
        ("portal", "user", "reset", "--config", "{portal}", "niemand"),
        C2,
    ),
    Case(
        "portal user disable, no such account",
        ("portal", "user", "disable", "--config", "{portal}", "niemand"),
        C2,
    ),
    Case(
        "portal user list, config not UTF-8",
        ("portal", "user", "list", "--config", "{not_utf8}"),
        C5,
    ),
    # demo
    Case("demo, port out of range", ("demo", "--base-port", "70000"), C2),
    Case("demo, no registrations", ("demo", "--per-node", "0"), C2),
    Case("demo into a read-only folder", ("demo", "--dir", "{locked}", "--per-node", "5"), C2),
]


def _paths(w: World) -> dict[str, str]:
    return {
        "tmp": str(w.tmp),
        "missing": str(w.tmp / "missing" / "x.toml"),
        "not_utf8": str(w.tmp / "not-utf8.toml"),
        "folder": str(w.tmp / "a-folder"),
        "locked": str(w.tmp / "locked"),
        "ks": str(w.net.keyservice_config),
        "coord": str(w.net.coordinator_config),
        "mistyped": str(w.net.node_configs["politie-cli"].parent / "mistyped.toml"),
        "keyless": str(w.net.node_configs["politie-cli"].parent / "keyless.toml"),
        "node": w.node,
        "asker": w.asker,
        "portal": str(w.net.portal_configs["zvh-cli"]),
    }


def _filled(case: Case, w: World) -> Case:
    paths = _paths(w)
    args = tuple(a.format(**paths) if a.startswith("{") else a for a in case.args)
    return Case(case.name, args, case.codes, case.stdin)


SERVE = [
    ("keyservice", "serve"),
    ("coordinator", "serve"),
    ("node", "serve"),
    ("portal", "serve"),
]


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the lazy ones too, whether loaded yet or not
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found |= _commands(command, (*prefix, name))
        else:
            found.add((*prefix, name))
    return found


def test_every_command_is_exercised(world: World) -> None:
    exercised = {case.command for case in CASES} | set(SERVE)
    listed = _commands(main)
    assert listed - exercised == set(), "commands without a broken-input case"
    assert all(exercised), "a case whose first word is no command"
    assert any(command[:1] == ("portal",) for command in exercised)


def _run(case: Case) -> tuple[int, str, BaseException | None]:
    runner = CliRunner()
    result = runner.invoke(main, list(case.args), input=case.stdin, catch_exceptions=True)
    return result.exit_code, result.output, result.exception


@pytest.mark.parametrize("template", CASES, ids=[case.name for case in CASES])
def test_a_broken_input_gets_its_exit_code_and_no_traceback(world: World, template: Case) -> None:
    case = _filled(template, world)
    code, output, exception = _run(case)
    assert "Traceback" not in output, f"{case.name}: {output}"
    assert exception is None or isinstance(exception, SystemExit), (
        f"{case.name}: {type(exception).__name__}: {exception}"
    )
    assert code in case.codes, f"{case.name}: exit {code}, expected {set(case.codes)}:\n{output}"
    assert code in DOCUMENTED
    assert "this is a bug" not in output, f"{case.name}: fell through to the safety net:\n{output}"
    assert "\udcff" not in output and "\x00" not in output  # echoed values are escaped
    assert len(output) < 4000, f"{case.name}: {len(output)} characters of output"


def test_a_read_only_database_refuses_writes_and_serves_reads(world: World) -> None:
    # The database and, when an earlier connection left one, its write-ahead log: SQLite
    # appends to the WAL file, so a read-only main file alone would still take a write.
    wal = world.node_db.with_name(world.node_db.name + "-wal")
    frozen = [world.node_db, *([wal] if wal.exists() else [])]
    for path in frozen:
        make_read_only(path)
    try:
        status = _run(Case("status", ("node", "status", "--config", world.node), frozenset()))
        expire = _run(Case("expire", ("node", "expire", "--config", world.node), frozenset()))
        prune = _run(Case("prune", ("audit", "prune", "--config", world.node), frozenset()))
        verify = _run(Case("verify", ("audit", "verify", "--config", world.node), frozenset()))
    finally:
        for path in frozen:
            make_writable(path)
    assert status[0] == 0, status[1]
    # Expiring nothing may or may not need a write (SQLite decides): refused cleanly if it does.
    assert expire[0] in (0, 7) and "Traceback" not in expire[1], expire[1]
    assert expire[0] == 0 or "readonly database" in expire[1]
    assert prune[0] == 7, prune[1]
    assert "readonly database" in prune[1] and "Traceback" not in prune[1]
    # Reading the log is itself recorded; with no way to record it, nothing is read.
    assert verify[0] == 7 and "NEN 7513" in verify[1]


def _process(
    *args: str | bytes, stdin: bytes | None = None, verbosity: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    command: list[str | bytes] = [*betrokken_command(), *args]
    env = {k: v for k, v in os.environ.items() if k not in ("GRPC_VERBOSITY", "BETROKKEN_DEBUG")}
    if verbosity is not None:
        env["GRPC_VERBOSITY"] = verbosity
    return subprocess.run(
        command, input=stdin, capture_output=True, check=False, timeout=120, env=env
    )


@pytest.mark.parametrize("command", SERVE)
@pytest.mark.e2e
def test_serve_commands_with_a_broken_config_exit_cleanly(
    world: World, command: tuple[str, str]
) -> None:
    for config, code in (
        (str(world.tmp / "missing.toml"), 5),
        (str(world.tmp / "not-utf8.toml"), 5),
    ):
        done = _process(*command, "--config", config)
        assert done.returncode == code, done.stderr.decode(errors="replace")
        assert b"Traceback" not in done.stderr + done.stdout


@pytest.mark.e2e
def test_bytes_that_are_not_utf8_on_the_command_line_are_bad_input(world: World) -> None:
    done = _process(
        "query",
        "--config",
        world.asker,
        "--bsn",
        "999993653",
        "--purpose",
        "zvh-triage",
        "--case",
        "C-1",
        "--user",
        b"\xff\xfe-regisseur",
    )
    assert done.returncode == 2, done.stderr
    assert b"Traceback" not in done.stderr
    assert b"--user must be printable text" in done.stderr and b"\\xff\\xfe" in done.stderr


@pytest.mark.e2e
def test_grpc_core_lines_stay_off_the_terminal(world: World, tmp_path: Path) -> None:
    """A command meeting a server of another network's CA prints betrokken's message only —
    not gRPC's own "Handshake failed" lines (they do appear when GRPC_VERBOSITY is asked for)."""
    import socket

    import grpc

    from betrokken.identity.names import COORDINATOR_URI
    from betrokken.identity.pki import create_ca, issue_certificate, write_issued

    net = tmp_path / "net"
    shutil.copytree(world.net.directory, net)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    network = net / "network.toml"
    text = network.read_text()
    old = text.split("[coordinator]\naddress = ")[1].split("\n")[0]
    network.write_text(text.replace(old, f'"127.0.0.1:{port}"'))
    foreign = create_ca("another network")
    cert, key = write_issued(
        tmp_path,
        "impostor",
        issue_certificate(
            foreign, COORDINATOR_URI, "x", hosts=("127.0.0.1", "coordinator.betrokken.internal")
        ),
    )
    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_secure_port(
        f"127.0.0.1:{port}",
        grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())]),
    )
    server.start()
    config = str(net / "nodes" / "politie-cli" / "node.toml")
    try:
        quiet = _process("node", "witness", "--config", config, "--once")
        loud = _process("node", "witness", "--config", config, "--once", verbosity="INFO")
    finally:
        server.stop(0)

    def core(done: subprocess.CompletedProcess[bytes]) -> list[str]:
        lines = done.stderr.decode(errors="replace").splitlines()
        return [line for line in lines if line[:1] in "EIWD" and line[1:5].isdigit()]

    assert quiet.returncode == 6, quiet.stderr
    assert b"another CA" in quiet.stderr and b"Traceback" not in quiet.stderr
    assert core(quiet) == []
    assert core(loud), "gRPC wrote nothing even when asked to: the check above proves nothing"


def test_an_unexpected_error_is_an_internal_error_without_a_traceback(tmp_path: Path) -> None:
    """The last safety net: even a failure no command foresaw is a message and exit code 1."""
    from betrokken.clikit import as_error

    error = as_error(ZeroDivisionError("division by zero at 999993653"))
    assert error.exit_code == 1 and "this is a bug" in (error.hint or "")
    assert "999993653" not in error.message  # a BSN-like number in a foreign message is hidden
