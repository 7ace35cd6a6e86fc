"""Database engines: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError

from betrokken.errors import ConfigError, Unavailable


def _normalise(url: str) -> str:
    # Use the psycopg (3) driver for plain postgresql:// URLs.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, metadata: MetaData, *, component: str | None = None) -> Engine:
    """An engine with the schema created; SQLite files get WAL and a busy timeout.

    With ``component`` (node, keyservice, coordinator) the schema is that component's migration
    chain: see :func:`_schema_from_migrations`. Without it (tests, tools) ``metadata`` is created.
    """
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

        else:
            engine = create_engine(_normalise(url), pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(
            f"database URL is not usable ({exc})",
            hint="use sqlite:///path/to/file.db or postgresql://user@host:5432/database",
        ) from None
    try:
        if component is None:
            metadata.create_all(engine)
        else:
            _schema_from_migrations(engine, component, url)
    except OperationalError as exc:
        raise Unavailable(
            f"cannot open the database ({exc.orig})",
            hint="check the database URL in the component's configuration and that the server runs",
        ) from None
    return engine


def _schema_from_migrations(engine: Engine, component: str, url: str) -> None:
    """The Alembic hook: an empty database is created at the newest revision of the component's
    chain; a current one is used; an older (or newer, or another component's) one is refused with
    :class:`~betrokken.errors.SchemaOutdated` (exit code 5) and what to do."""
    from betrokken.migrations import ensure_current

    ensure_current(engine, component, redacted(url))


def redacted(url: str) -> str:
    """The URL without a password, for status output and logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url
