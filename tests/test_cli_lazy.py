"""`betrokken --help` starts at once: the service commands are imported only when used."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import click
import pytest

from betrokken.app.cli import LAZY_COMMANDS, main
from betrokken.app.devnet import init_network
from betrokken.audit.log import AuditLog, LogBase
from betrokken.config.load import load_node
from betrokken.db import make_engine
from betrokken.errors import ConfigError
from tests.conftest import network_ports


def test_every_lazily_listed_help_line_is_the_commands_own_short_help() -> None:
    for name, (module, attribute, short) in LAZY_COMMANDS.items():
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        assert command.name == name
        assert command.get_short_help_str(limit=1000) == short, name


@pytest.mark.e2e
def test_help_lists_every_command_without_importing_sqlalchemy_or_grpc() -> None:
    probe = (
        "import sys\n"
        "from betrokken.app.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'grpc', 'cryptography', 'alembic', 'pydantic')"
        " if m in sys.modules)\n"
        "print('HEAVY', ','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip().endswith("HEAVY"), done.stdout[-500:]
    for name in LAZY_COMMANDS:
        assert f"  {name} " in done.stdout


def test_a_lazy_command_runs_as_before() -> None:
    ctx = click.Context(main)
    command = main.get_command(ctx, "audit")
    assert command is not None and isinstance(command, click.Group)
    assert "verify" in command.list_commands(ctx)


@pytest.mark.e2e
def test_query_help_imports_neither_sqlalchemy_nor_pydantic_nor_grpc() -> None:
    """`betrokken query --help` shows its options without loading what asking needs."""
    probe = (
        "import sys\n"
        "from betrokken.app.cli import main\n"
        "try:\n"
        "    main(['query', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'grpc', 'pydantic', 'rbcl')"
        " if m in sys.modules)\n"
        "print('HEAVY', ','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert "--purpose" in done.stdout
    assert done.stdout.strip().endswith("HEAVY"), done.stdout[-500:]


def _query_in_a_process(config: Path, heavy: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """`betrokken query` for one person in a new Python process; its output ends with the exit
    code (``EXIT n``) and which of the ``heavy`` modules the command imported (``HEAVY a,b``)."""
    probe = (
        "import sys\n"
        "from betrokken.app.cli import main\n"
        "try:\n"
        f"    main(['query', '--config', {str(config)!r}, '--bsn', '123456782', '--purpose',"
        " 'zvh-triage', '--case', 'CASE-1', '--user', 'tester'])\n"
        "except SystemExit as exc:\n"
        "    print('EXIT', exc.code)\n"
        f"heavy = sorted(m for m in {heavy!r} if m in sys.modules)\n"
        "print('HEAVY', ','.join(heavy))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )


@pytest.mark.e2e
def test_query_writes_its_trail_without_importing_sqlalchemy(tmp_path: Path) -> None:
    """`betrokken query` keeps its question in the organisation's trail through the database
    driver (docs/adr/0044): once the database exists at the current schema, SQLAlchemy is never
    imported; the first question, which creates the database, goes through SQLAlchemy as ever.
    The key service is not running, so each question fails there, after the trail was read, and
    is kept as a failed question."""
    net = init_network(
        tmp_path / "net",
        ["zvh-test", "politie-test"],
        name="lazy-query",
        base_port=network_ports(2),  # held by this process: no other network listens there
    )
    config = net.node_configs["zvh-test"]
    runs = [_query_in_a_process(config, ("sqlalchemy", "alembic")).stdout for _ in range(2)]
    assert "HEAVY alembic,sqlalchemy" in runs[0]  # the database made by its migrations
    assert runs[1].strip().endswith("HEAVY"), runs[1][-500:]
    assert "EXIT 7" in runs[1]  # the key service unreachable
    loaded = load_node(config)
    engine = make_engine(loaded.component.database, LogBase.metadata)
    try:
        kept = [r.entry for r in AuditLog(engine, None, "check").records()]
    finally:
        engine.dispose()
    assert [e.reason if e else None for e in kept] == ["Unavailable", "Unavailable"]
    assert [e.user if e else None for e in kept] == ["tester", "tester"]


@pytest.mark.e2e
def test_query_reads_its_configuration_without_importing_pydantic(tmp_path: Path) -> None:
    """`betrokken query` reads the usual network and node files with the light reader
    (docs/adr/0045): pydantic is not imported. A file the light reader does not vouch for — here
    a misspelled field — is read by pydantic, with pydantic's error naming the field, the same
    message and exit code as every other command gives."""
    net = init_network(
        tmp_path / "net",
        ["zvh-test", "politie-test"],
        name="light-config",
        base_port=network_ports(2),  # held by this process: no other network listens there
    )
    config = net.node_configs["zvh-test"]

    def ask() -> subprocess.CompletedProcess[str]:
        return _query_in_a_process(config, ("pydantic", "sqlalchemy"))

    ask()  # the first question creates the organisation's database (SQLAlchemy, Alembic)
    usual = ask().stdout
    assert "EXIT 7" in usual  # the key service is not running: the question got that far
    assert usual.strip().endswith("HEAVY"), usual[-500:]
    config.write_text(config.read_text().replace("database =", "databse =", 1))
    with pytest.raises(ConfigError) as expected:
        load_node(config)
    assert "field 'databse' is not a known setting (misspelled?)" in expected.value.message
    misspelled = ask()
    assert "EXIT 5" in misspelled.stdout
    assert "HEAVY pydantic" in misspelled.stdout
    assert expected.value.message in misspelled.stderr
