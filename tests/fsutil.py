"""Making files read-only for tests, also when the tests run as root.

``chmod 444`` does not stop root (CAP_DAC_OVERRIDE); the immutable attribute (``chattr +i``) does.
As root the file gets both; as another user ``chmod`` is enough. SQLite then opens the database
read-only, exactly as it does for a service account that lost write permission.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import require_or_skip


def _chattr(flag: str, path: Path) -> str | None:
    if shutil.which("chattr") is None:
        return "chattr is not installed, so a root test cannot make a file read-only"
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"chattr {flag} failed on {path} ({done.stderr.strip()})"
    return None


def make_read_only(path: Path) -> None:
    path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
    if os.geteuid() == 0:
        require_or_skip(_chattr("+i", path))


def make_writable(path: Path) -> None:
    if os.geteuid() == 0:
        _chattr("-i", path)
    path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o200)


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    done: list[Path] = []
    try:
        for path in paths:
            make_read_only(path)
            done.append(path)
        yield
    finally:
        for path in done:
            make_writable(path)
