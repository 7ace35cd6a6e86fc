"""`betrokken --help` starts at once: the service commands are imported only when used."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest

from betrokken.app.cli import LAZY_COMMANDS, main


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
