"""Database engines: SQLite (WAL) by default, PostgreSQL by URL. The one place engines are made.

Every engine made here

* never formats statement parameters into errors or logs (``hide_parameters``): a failed write of
  a trail record must not put a pseudonym, a case or a user into a service log;
* **recovers by itself**: when a statement fails because the store is unavailable (read-only, disk
  full, I/O error, connection lost, server shutting down), the failure is logged at ERROR with the
  driver's own message and every pooled connection is discarded, so the next use opens a fresh
  one. Without that, a SQLite connection opened while the file was read-only — or a PostgreSQL
  session opened on a read-only server — stays read-only until the process restarts;
* creates SQLite files readable by their owner only (0600) and warns about an existing file that
  others can read.

:func:`open_read_only` opens a database for the DPO's commands without ever creating or changing
it; :func:`writable_problem` is the start-up probe.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext

from betrokken.dbfile import driver_message as driver_message
from betrokken.dbfile import warn_if_shared as warn_if_shared
from betrokken.errors import ConfigError, Unavailable

log = logging.getLogger("betrokken.db")
# Failures of the store, one line each (services log them; the CLI shows the error instead).
failures = logging.getLogger("betrokken.store")

# SQLSTATE classes that mean "the store cannot do its job now", not "this statement is wrong":
# 08 connection exception, 25 invalid transaction state (read-only), 53 insufficient resources
# (disk full), 57 operator intervention (shutdown), 58 system error (I/O).
_UNAVAILABLE_SQLSTATES = frozenset({"08", "25", "53", "57", "58"})
PROBE_TABLE = "betrokken_write_probe"


def _normalise(url: str) -> str:
    # Use the psycopg (3) driver for plain postgresql:// URLs.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other databases and in-memory ones)."""
    if not url.startswith("sqlite:///") or ":memory:" in url:
        return None
    rest = url[len("sqlite:///") :].split("?", 1)[0]
    if rest.startswith("file:"):
        rest = rest[len("file:") :]
    return Path(rest) if rest else None


def is_unavailable(exc: BaseException) -> bool:
    """Whether a database error means the store cannot work now (rather than a wrong statement)."""
    orig = getattr(exc, "orig", None) or exc
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATES:
        return True
    if isinstance(exc, sa_exc.OperationalError) or type(orig).__name__ == "OperationalError":
        message = str(orig).lower()
        # A busy SQLite database waited its timeout: the store works, it is only contended.
        return "locked" not in message and "busy" not in message
    return False


def store_unavailable(exc: BaseException, what: str) -> Unavailable:
    """The error to raise (or show) when ``what`` failed because the store is unavailable."""
    return Unavailable(
        f"cannot {what}: the database is unavailable ({driver_message(exc)})",
        hint="check that the database is reachable and writable (disk space, permissions, a "
        "read-only server); nothing of the failed step was stored, and the service recovers by "
        "itself once the database is back",
    )


def _on_error(url: str) -> Any:
    shown = redacted(url)

    def handle_error(context: ExceptionContext) -> None:
        error = context.sqlalchemy_exception or context.original_exception
        if error is None or not is_unavailable(error):
            return
        # Every pooled connection goes: one opened while the store was read-only stays so.
        context.is_disconnect = True
        _log_unavailable(shown, context.original_exception or error)

    return handle_error


def _log_unavailable(shown: str, error: BaseException) -> None:
    failures.error(
        "database %s unavailable: %s; pooled connections discarded, the next use reconnects",
        shown,
        driver_message(error),
    )


class Driver:
    """One transaction on a pooled connection's own DBAPI connection (:func:`driver_transaction`).

    For the few statements a service runs on every request (a node's answer): plain SQL run by
    the driver itself, none of SQLAlchemy's per-statement work (compiling, an execution context,
    result objects). The driver prepares each statement once per connection: sqlite3 keeps a
    cache of prepared statements by their text, psycopg prepares a statement on the server after
    a few executions of the same text. SQL is written with ``?`` placeholders
    (:meth:`Statements.sql` gives PostgreSQL its ``%s``). Callables in :attr:`after_commit` run
    once the transaction committed (to update what a process keeps in memory: write-through).
    """

    __slots__ = ("after_commit", "cursor", "integrity_error", "raw")

    def __init__(self, raw: Any, integrity_error: type[Exception]) -> None:
        self.raw = raw
        self.cursor = raw.cursor()
        self.integrity_error = integrity_error  # the driver's: a unique key was taken
        self.after_commit: list[Callable[[], None]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cursor = self.cursor
        cursor.execute(sql, params)
        return cursor

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        """One statement for each of ``rows`` (the driver's executemany)."""
        cursor = self.cursor
        cursor.executemany(sql, rows)
        return cursor

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        cursor = self.cursor
        cursor.execute(sql, params)
        return list(cursor.fetchall())

    def first(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row (None when none); the statement is run to its end, so that SQLite
        holds no read snapshot after it (a later write in the transaction starts from now)."""
        cursor = self.cursor
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        return rows[0] if rows else None


class Statements:
    """SQL for one engine's driver: ``?`` placeholders as its DBAPI wants them, each text made
    once, and SQLAlchemy's own conversions of a column's values (dates and times on SQLite) so
    that a row written here reads back through SQLAlchemy exactly as if SQLAlchemy wrote it."""

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect
        self.sqlite = engine.dialect.name == "sqlite"
        self._texts: dict[str, str] = {}

    def sql(self, text_: str) -> str:
        done = self._texts.get(text_)
        if done is None:
            done = self._texts[text_] = text_ if self.sqlite else text_.replace("?", "%s")
        return done

    def bind(self, column: Any) -> Callable[[Any], Any]:
        """How a value of ``column`` is given to the driver (identity when unchanged)."""
        process = column.type.dialect_impl(self.dialect).bind_processor(self.dialect)
        return process if process is not None else _same

    def result(self, column: Any) -> Callable[[Any], Any]:
        """How the driver's value of ``column`` becomes the Python value SQLAlchemy gives."""
        process = column.type.dialect_impl(self.dialect).result_processor(self.dialect, None)
        return process if process is not None else _same


def _same(value: Any) -> Any:
    return value


def _as_sqlalchemy(engine: Engine, exc: Exception, raw: Any) -> sa_exc.StatementError:
    """A driver's error as SQLAlchemy would raise it; one that means the store is unavailable
    is logged and empties the pool, as :func:`_on_error` does for SQLAlchemy's statements."""
    wrapped = sa_exc.DBAPIError.instance(
        None,
        None,
        exc,
        engine.dialect.loaded_dbapi.Error,
        hide_parameters=True,
        dialect=engine.dialect,
    )
    if is_unavailable(wrapped):
        with suppress(Exception):
            raw.invalidate(exc)
        engine.pool.dispose()
        _log_unavailable(redacted(engine.url.render_as_string(hide_password=True)), exc)
    return wrapped


@contextmanager
def driver_on(conn: Connection) -> Iterator[Driver]:
    """A :class:`Driver` on a SQLAlchemy connection's own DBAPI connection, in its transaction
    (for a few plain statements next to SQLAlchemy's); a driver's error comes out as
    SQLAlchemy's, as in :func:`driver_transaction`."""
    engine = conn.engine
    raw = conn.connection
    dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
    try:
        driver = Driver(raw, engine.dialect.loaded_dbapi.IntegrityError)
        try:
            yield driver
        finally:
            with suppress(dbapi_error):
                driver.cursor.close()
    except dbapi_error as exc:
        raise _as_sqlalchemy(engine, exc, raw) from None


@contextmanager
def driver_transaction(engine: Engine) -> Iterator[Driver]:
    """One connection checkout and one transaction, committed at the end (rolled back on any
    error), on the DBAPI connection itself (:class:`Driver`).

    A driver's error comes out as SQLAlchemy's (``IntegrityError``, ``OperationalError``...), so
    callers handle it as any other database error; when it means the store is unavailable it is
    logged and every pooled connection discarded, as for a statement run through SQLAlchemy
    (:func:`_on_error`).
    """
    dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
    raw = engine.raw_connection()
    try:
        driver = Driver(raw, engine.dialect.loaded_dbapi.IntegrityError)
        try:
            yield driver
            raw.commit()
        except BaseException:
            with suppress(dbapi_error):  # the connection is gone; the original error says why
                raw.rollback()
            raise
        finally:
            with suppress(dbapi_error):
                driver.cursor.close()
    except dbapi_error as exc:
        raise _as_sqlalchemy(engine, exc, raw) from None
    finally:
        raw.close()
    for hook in driver.after_commit:
        hook()


def _private_sqlite_file(path: Path) -> None:
    """Create a new SQLite file 0600; warn when an existing one can be read by others."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        warn_if_shared(path, "database")
        return
    except OSError:
        return  # the driver reports the real problem (no folder, no permission) in its own words
    os.close(fd)


def _engine(url: str, *, read_only: bool = False) -> Engine:
    try:
        if url.startswith("sqlite"):
            path = sqlite_path(url)
            if read_only:
                if path is None:
                    raise ConfigError(f"{url}: only a database file can be opened read-only")
                target = "sqlite:///file:" + str(path) + "?mode=ro&uri=true"
            else:
                target = url
                if path is not None:
                    _private_sqlite_file(path)
            engine = create_engine(
                target,
                connect_args={"timeout": 30, "check_same_thread": False},
                hide_parameters=True,
            )

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                if read_only:
                    cursor.execute("PRAGMA query_only=ON")
                else:
                    cursor.execute("PRAGMA journal_mode=WAL")
                    cursor.execute("PRAGMA synchronous=FULL")
                    # A bounded WAL: checkpointed into the main file at WAL_PAGES pages (and a
                    # running node every CHECKPOINT_SECONDS), so a lost WAL loses little.
                    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

        else:
            engine = create_engine(
                _normalise(url),
                pool_pre_ping=True,
                hide_parameters=True,
                execution_options={"postgresql_readonly": True} if read_only else {},
            )
    except (sa_exc.ArgumentError, ImportError) as exc:
        raise ConfigError(
            f"database URL is not usable ({exc})",
            hint="use sqlite:///path/to/file.db or postgresql://user@host:5432/database",
        ) from None
    event.listen(engine, "handle_error", _on_error(url))
    return engine


# How much a lost SQLite WAL can take with it (docs/operator.md, 'Recovery'): the WAL is written
# into the main file once it holds WAL_PAGES pages (of 4 KiB: 1 MiB) and, by a running node,
# every CHECKPOINT_SECONDS.
WAL_PAGES = 256
CHECKPOINT_SECONDS = 60.0


def checkpoint(engine: Engine) -> None:
    """Write a SQLite database's WAL into its main file, as far as no reader needs it (PASSIVE:
    never waits). Nothing for other databases."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def make_engine(url: str, metadata: MetaData, *, component: str | None = None) -> Engine:
    """An engine with the schema created; SQLite files get WAL and a busy timeout.

    With ``component`` (node, keyservice, coordinator) the schema is that component's migration
    chain: see :func:`_schema_from_migrations`. Without it (tests, tools) ``metadata`` is created.
    """
    engine = _engine(url)
    try:
        if component is None:
            metadata.create_all(engine)
        else:
            _schema_from_migrations(engine, component, url)
    except sa_exc.SQLAlchemyError as exc:
        engine.dispose()
        raise Unavailable(
            f"cannot open the database {redacted(url)} ({driver_message(exc)})",
            hint="check the database URL in the component's configuration, that the server runs "
            "and that the file's folder is writable",
        ) from None
    return engine


def _schema_from_migrations(engine: Engine, component: str, url: str) -> None:
    """The Alembic hook: an empty database is created at the newest revision of the component's
    chain; a current one is used; an older (or newer, or another component's) one is refused with
    :class:`~betrokken.errors.SchemaOutdated` (exit code 5) and what to do."""
    from betrokken.migrations import ensure_current

    ensure_current(engine, component, redacted(url))


def open_read_only(url: str, tables: list[str], what: str) -> Engine:
    """An engine that cannot create or change anything, on a database that must already hold
    ``tables``: a missing or empty database is a configuration error (exit code 5), never a new
    empty one (SQLite ``mode=ro``; PostgreSQL read-only transactions)."""
    path = sqlite_path(url)
    if url.startswith("sqlite") and path is not None and not path.is_file():
        raise ConfigError(
            f"{what}: there is no database at {path}",
            hint="check 'database' in the configuration file: it must name the component's "
            "existing database (nothing was created)",
        )
    engine = _engine(url, read_only=True)
    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
    except sa_exc.SQLAlchemyError as exc:
        engine.dispose()
        orig = getattr(exc, "orig", None)
        message = driver_message(exc)
        # invalid_catalog_name, or at connection time only the server's words for it
        if getattr(orig, "sqlstate", None) == "3D000" or (
            "database" in message and "does not exist" in message
        ):
            raise ConfigError(
                f"{what}: the database {redacted(url)} does not exist ({driver_message(exc)})",
                hint="check 'database' in the configuration file (nothing was created)",
            ) from None
        raise Unavailable(
            f"{what}: cannot open the database {redacted(url)} ({driver_message(exc)})",
            hint="check that the database server runs and the URL is right",
        ) from None
    missing = [t for t in tables if t not in present]
    if missing:
        engine.dispose()
        raise ConfigError(
            f"{what}: the database {redacted(url)} holds no audit log "
            f"(no table {', '.join(missing)})",
            hint="check 'database' in the configuration file: it must name the component's own "
            "database (nothing was created)",
        )
    return engine


def writable_problem(engine: Engine) -> str | None:
    """None when the database accepts a write now, else the driver's reason (the start-up probe).

    The probe creates a table inside a transaction and rolls it back: nothing is left behind.
    """
    try:
        if engine.dialect.name == "sqlite":
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                try:
                    cursor.execute("BEGIN IMMEDIATE")
                    cursor.execute(f"CREATE TABLE {PROBE_TABLE} (x INTEGER)")
                finally:
                    raw.rollback()
                    cursor.close()
            finally:
                raw.close()
        else:
            with engine.connect() as conn:
                conn.execute(text(f"CREATE TABLE {PROBE_TABLE} (x INTEGER)"))
                conn.rollback()
    except (sa_exc.SQLAlchemyError, sqlite3.Error) as exc:
        engine.pool.dispose()  # a connection opened read-only must not be used again
        return driver_message(exc)
    return None


def report_writable(engine: Engine, url: str, component: str) -> bool:
    """Log whether the database is writable now (at start-up); True when it is.

    A service whose database is not writable still starts: it refuses what needs a write (and
    logs each refusal) and recovers by itself once the database is writable again.
    """
    problem = writable_problem(engine)
    shown = redacted(url)
    if problem is not None:
        failures.error(
            "%s: database %s is NOT writable (%s); what needs a write is refused until it is "
            "(no restart needed)",
            component,
            shown,
            problem,
        )
        return False
    free = ""
    path = sqlite_path(url)
    if path is not None:
        try:
            free = f", {shutil.disk_usage(path.parent).free // (1024 * 1024):,} MB free"
        except OSError:
            free = ""
    log.info("%s: database %s is writable%s", component, shown, free)
    return True


def redacted(url: str) -> str:
    """The URL without a password, for status output and logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


def open_writable(url: str) -> Engine:
    """An engine on an existing database, creating nothing (for the one record the DPO's read
    leaves, after :func:`open_read_only` found the log there)."""
    return _engine(url)
