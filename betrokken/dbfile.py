"""What needs no SQLAlchemy of :mod:`betrokken.db`: a database file's permissions, a driver's
message, whether an exception is a database's (``betrokken query`` writes its trail through the
driver and never imports SQLAlchemy: docs/adr/0044)."""

from __future__ import annotations

import logging
import stat
import sys
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


def driver_message(exc: BaseException) -> str:
    """The database driver's own message, first line only and short (no statement, no values)."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    text_ = lines[0] if lines else type(orig).__name__
    return text_[:200]


# The database errors a command can meet: SQLAlchemy's, and the drivers' own where a command
# runs plain SQL through them. A module not imported cannot have raised its error.
_DATABASE_ERRORS = (
    ("sqlalchemy.exc", "SQLAlchemyError"),
    ("sqlite3", "Error"),
    ("psycopg", "Error"),
)


def is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a database's error (without importing a database library)."""
    for module, name in _DATABASE_ERRORS:
        found = sys.modules.get(module)
        if found is not None and isinstance(exc, getattr(found, name)):
            return True
    return False
