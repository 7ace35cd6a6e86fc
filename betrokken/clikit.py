"""Shared pieces of the command line: error handling and common options."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from betrokken.errors import BetrokkenError, InvalidBsn

F = TypeVar("F", bound=Callable[..., Any])


def fail(error: BetrokkenError) -> NoReturn:
    click.echo(error.diagnostics(), err=True)
    sys.exit(error.exit_code)


def guard(fn: F) -> F:
    """Turn BetrokkenError into its message and exit code; never a traceback for user errors."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BetrokkenError as exc:
            fail(exc)
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The component's configuration file (for a regisseur: the organisation's node.toml).",
)


def read_bsn(value: str) -> str:
    """``-`` reads the BSN from standard input (or a hidden prompt): not in history or ``ps``."""
    if value != "-":
        return value
    if sys.stdin.isatty():
        return str(click.prompt("BSN", hide_input=True, err=True))
    line = sys.stdin.buffer.readline()
    try:
        return line.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidBsn("the BSN read from standard input is not text") from None


def serve(start: Callable[[], Any], name: str) -> None:
    """Start a service, then block until SIGINT/SIGTERM."""
    from betrokken.service import configure_logging, run_until_stopped

    configure_logging()
    running = start()
    if isinstance(running, tuple):
        run_until_stopped(running[0], name)
    else:
        run_until_stopped(running.server, name, running.stop_expiry.set)
