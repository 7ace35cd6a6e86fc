"""The one place engines are made: recovery without a restart, no person data in errors, files
only their owner reads, and read-only opening that never creates (ADR 0017)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from betrokken.audit.log import AuditLog, LogBase
from betrokken.audit.record import AuditEntry, Event
from betrokken.db import (
    PROBE_TABLE,
    make_engine,
    open_read_only,
    open_writable,
    report_writable,
    writable_problem,
)
from betrokken.errors import ConfigError
from tests.conftest import PG_ADMIN_URL
from tests.fsutil import read_only

pytestmark = pytest.mark.postgres

METADATA = MetaData()
NOTES = Table(
    "notes", METADATA, Column("id", Integer, primary_key=True), Column("body", String(200))
)
SECRET = "case-ZVH-2026-0042 of J. Jansen"  # what a failed write must never put in a message


def _write(engine, body: str = SECRET) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(insert(NOTES).values(body=body))


def _count(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return len(conn.execute(select(NOTES.c.id)).all())


@contextmanager
def _unwritable(url: str) -> Iterator[None]:
    """The database refuses writes: a read-only file (SQLite), or a server that only opens
    read-only sessions and dropped the ones it had, as after a fail-over to a standby
    (PostgreSQL)."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        with read_only(path):
            yield
        return
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = off'))
        admin.dispose()


def test_a_read_only_database_is_used_again_once_writable_without_a_restart(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(database_url, METADATA)
    _write(engine, "before")
    engine.dispose()  # connections opened from now on see the database as it is
    with _unwritable(database_url):
        with pytest.raises(SQLAlchemyError) as failed:
            _write(engine)
        with pytest.raises(SQLAlchemyError):
            _write(engine)
    # The connection opened while the database was read-only was discarded with the failure:
    # the very next write works.
    _write(engine, "after")
    assert _count(engine) == 2
    assert writable_problem(engine) is None
    # Nothing of the statement's values is in the error or the log; the driver's message is.
    assert SECRET not in str(failed.value)
    errors = [r for r in caplog.records if r.name == "betrokken.store"]
    assert errors and all(r.levelno == logging.ERROR for r in errors)
    assert any("read-only" in r.getMessage() or "readonly" in r.getMessage() for r in errors)
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    engine.dispose()


def test_the_start_up_probe_says_whether_the_database_is_writable_and_leaves_nothing(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(database_url, METADATA)
    caplog.set_level(logging.INFO, logger="betrokken")
    assert report_writable(engine, database_url, "test")
    assert "is writable" in caplog.text
    engine.dispose()
    with _unwritable(database_url):
        assert not report_writable(engine, database_url, "test")
    assert "NOT writable" in caplog.text and "no restart needed" in caplog.text
    with engine.connect() as conn:
        tables = conn.dialect.get_table_names(conn)
    assert PROBE_TABLE not in tables
    engine.dispose()


def test_sqlite_files_are_created_for_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    engine = make_engine(f"sqlite:///{path}", METADATA)
    _write(engine)
    for file in tmp_path.iterdir():  # the database and its WAL files alike
        assert stat.S_IMODE(file.stat().st_mode) & 0o077 == 0, file
    engine.dispose()


def test_a_database_others_can_read_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "shared.db"
    make_engine(f"sqlite:///{path}", METADATA).dispose()
    os.chmod(path, 0o644)
    make_engine(f"sqlite:///{path}", METADATA).dispose()
    assert "can be read by other users" in caplog.text and "chmod 600" in caplog.text


def _log_with_a_record(url: str) -> None:
    log = AuditLog(make_engine(url, LogBase.metadata), None, "test")
    log.append([AuditEntry(event=Event.PRUNE, at=dt.datetime.now(dt.UTC))])
    log.engine.dispose()


def test_opening_read_only_never_creates_and_never_writes(database_url: str) -> None:
    tables = sorted(LogBase.metadata.tables)
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        with pytest.raises(ConfigError, match="there is no database"):
            open_read_only(database_url, tables, "test")
        assert not path.exists()
        path.touch()  # an empty file: a database without the log
    with pytest.raises(ConfigError, match="holds no audit log"):
        open_read_only(database_url, tables, "test")
    _log_with_a_record(database_url)
    engine = open_read_only(database_url, tables, "test")
    with pytest.raises(SQLAlchemyError), engine.begin() as conn:
        conn.execute(text("DELETE FROM log_records"))
    assert AuditLog(engine, None, "test").count() == 1
    engine.dispose()
    writer = open_writable(database_url)
    assert AuditLog(writer, None, "test").count() == 1
    writer.dispose()


def test_a_postgresql_database_that_does_not_exist_is_a_configuration_error() -> None:
    from tests.conftest import _postgres_problem, require_or_skip

    require_or_skip(_postgres_problem())
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/betrokken_no_such_database"
    with pytest.raises(ConfigError, match="does not exist"):
        open_read_only(url, ["log_records"], "test")
