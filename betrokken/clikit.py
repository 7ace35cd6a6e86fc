"""Shared pieces of the command line: error handling and common options.

Every command runs under :func:`guard`: an error a user, a file, the database or a peer can cause
is shown as what went wrong and what to do, with its documented exit code (docs/operator.md,
"Exit codes") — never a traceback. Only ``BETROKKEN_DEBUG=1`` adds the traceback, for a developer.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from betrokken.errors import (
    BadInput,
    BetrokkenError,
    InternalError,
    InvalidBsn,
    Unavailable,
    escape_text,
    shown,
)

F = TypeVar("F", bound=Callable[..., Any])
DEBUG_ENV = "BETROKKEN_DEBUG"
_DIGIT_RUNS = re.compile(r"\d[\d .-]{6,}\d")  # anything that could be a BSN in a foreign message


@contextlib.contextmanager
def importing() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a short command imports what it needs.

    Importing allocates hundreds of thousands of long-lived objects (modules, classes, functions,
    protobuf descriptors); every few hundred allocations the collector walks the young ones, and
    ever more often the old ones, finding nothing to free: about a sixth of ``betrokken query``'s
    CPU (docs/adr/0045). Afterwards what was imported is frozen out of the collector's view
    (``gc.freeze``: it is kept for the process's life anyway) and collection resumes as before
    for the command's own work. Used by the command line's one-shot commands, never by a service.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def fail(error: BetrokkenError) -> NoReturn:
    click.echo(escape_lines(error.diagnostics()), err=True)
    sys.exit(error.exit_code)


def escape_lines(text: str) -> str:
    """Escape control characters line by line (a message's own line breaks stay)."""
    return "\n".join(escape_text(line) for line in text.split("\n"))


def _foreign(text: str) -> str:
    """A message from a library, made safe to show: one line, short, no digit runs."""
    return shown(_DIGIT_RUNS.sub("[digits]", text.splitlines()[0] if text else ""), 200)


def _file_error(exc: OSError) -> BetrokkenError:
    name = exc.filename if isinstance(exc.filename, str) else None
    where = f"{shown(name, 200)}: " if name else ""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return Unavailable(
            f"{where}no space left on the device ({reason})",
            hint="free space there (or choose another place) and run the command again",
        )
    if isinstance(exc, FileNotFoundError):
        return BadInput(f"{where}file or folder not found", hint="check the path")
    if isinstance(exc, IsADirectoryError | NotADirectoryError):
        return BadInput(f"{where}{reason}", hint="give the path of a file")
    if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
        return BadInput(
            f"{where}not allowed ({reason})",
            hint="check the file's permissions, or choose a place you may write to",
        )
    return Unavailable(f"{where}{reason}", hint="check the file and the device it is on")


def as_error(exc: Exception) -> BetrokkenError:
    """The BetrokkenError (and so the exit code) for an exception no command expected."""
    from betrokken.dbfile import driver_message, is_database_error

    if isinstance(exc, BetrokkenError):
        return exc
    if is_database_error(exc):
        return Unavailable(
            f"the database failed ({driver_message(exc)})",
            hint="check that the database is reachable and writable (disk space, permissions); "
            "nothing of the failed step was stored",
        )
    if isinstance(exc, UnicodeDecodeError):
        return BadInput(
            "the input holds bytes that are not text in the expected encoding "
            f"({exc.encoding}, at byte {exc.start})",
            hint="save the file as UTF-8 (or as the command's help says) and try again",
        )
    if isinstance(exc, UnicodeEncodeError):
        return BadInput(
            "an argument or value holds bytes that are not UTF-8 text",
            hint="type it again as plain text",
        )
    if isinstance(exc, OSError):
        return _file_error(exc)
    if isinstance(exc, MemoryError):
        return Unavailable("out of memory", hint="give the command less at once")
    try:
        import grpc

        if isinstance(exc, grpc.RpcError):
            return Unavailable(f"a service call failed ({_foreign(str(exc))})")
    except ImportError:  # pragma: no cover - grpc is a dependency
        pass
    return InternalError(
        f"an unexpected {type(exc).__name__}: {_foreign(str(exc))}",
        hint="this is a bug in betrokken; please report it with the command you ran "
        f"({DEBUG_ENV}=1 shows the details)",
    )


def guard(fn: F) -> F:
    """Turn every error into its message and exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            sys.exit(130)
        except BetrokkenError as exc:
            fail(exc)
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                traceback.print_exc()
            fail(as_error(exc))

    return wrapper  # type: ignore[return-value]


def check_printable(option: str, value: str | None, limit: int = 128) -> None:
    """Free text a command passes on (user, role, case, purpose): printable, and short."""
    if value is None:
        return
    if not value.isprintable():
        raise BadInput(
            f"{option} must be printable text; '{shown(value)}' holds control characters (a "
            "newline, a tab, NUL, ...) or bytes that are not UTF-8",
            hint="type the value again as plain text",
        )
    if len(value.encode("utf-8")) > limit:
        raise BadInput(
            f"{option} is longer than {limit} bytes ('{shown(value)}')",
            hint="use a shorter value",
        )


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
    if sys.stdin is None:
        raise InvalidBsn("there is no standard input to read the BSN from")
    if sys.stdin.isatty():
        return str(click.prompt("BSN", hide_input=True, err=True))
    line = sys.stdin.buffer.readline(64)
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
        run_until_stopped(running.server, name, running.after_stop)
