"""Running a ``betrokken`` command from a test: in this process, or as its own process.

:func:`invoke` runs the command's own code in this process through click's ``CliRunner`` (the same
group ``betrokken`` runs, its exit code, its standard output and error apart): no interpreter to
start and no imports to repeat (a process costs 1.2 s or more of imports before its first line).
Use it wherever what is tested is what the command does. A failure no command handles (anything
but the exit the commands' ``guard`` makes) fails the test with its traceback, so an error that
would reach a user as a traceback is caught here too.

:func:`run_process` starts ``python -m betrokken`` where the process boundary is the point: a
server that must start or refuse to, a signal, bytes on the command line that are not UTF-8, what
gRPC's core library writes to the terminal, a terminal itself. Tests that use it are marked
``e2e`` (``make check`` runs none of them; tests/conftest.py refuses a Python process started by
a test that is not).
"""

from __future__ import annotations

import json
import subprocess
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from betrokken.app.cli import main
from betrokken.app.cluster import betrokken_command


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


def invoke(*args: str | Path, stdin: str | bytes | None = None) -> Done:
    """Run ``betrokken ARGS`` in this process; its exit code and what it printed."""
    result = CliRunner().invoke(main, [str(a) for a in args], input=stdin, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        raise AssertionError(f"betrokken {' '.join(map(str, args))} raised:\n{trace}")
    return Done(result.exit_code, result.stdout, result.stderr)


def run_process(*args: str | Path, stdin: str | None = None, timeout: float = 120) -> Done:
    """Run ``betrokken ARGS`` as its own process (``python -m betrokken``)."""
    done = subprocess.run(
        betrokken_command(*args),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        input=stdin,
    )
    return Done(done.returncode, done.stdout, done.stderr)
