"""A database file's permissions, without SQLAlchemy (``betrokken query`` opens its SQLite file
through the driver: docs/adr/0044)."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

log = logging.getLogger("betrokken.db")


def warn_if_shared(path: Path, what: str) -> None:
    """Warn (not refuse) when a file can be read by group or others (docs/adr/0016)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "%s %s can be read by other users (mode %s); restrict it: chmod 600 %s",
            what,
            path,
            oct(stat.S_IMODE(mode)),
            path,
        )
