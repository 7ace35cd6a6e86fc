"""Schema migrations (Alembic), one chain per component: the node, the key service, the coordinator.

Each component's database has its own chain of revisions in ``migrations/<component>/versions``,
named ``<component>_NNNN`` so that a database says which component it belongs to. Revision
``<component>_0001`` is the schema of the last release before migrations existed (commit 6fe2f79);
every later change is a revision on top. The chain is the one source of truth for a schema: a fresh
database is made by running it from the start (milliseconds for empty tables), an existing one is
brought up to date by ``betrokken db upgrade``, and a test checks that the chain ends exactly at
the tables the code declares (``tests/ops/test_migrations.py``).

At start-up every component opens its database through :func:`betrokken.db.make_engine`, which calls
:func:`ensure_current`: an empty database is created at the newest revision; a database at the
newest revision is used; any other is refused with what to do (exit code 5) — never opened by code
that expects another schema. See ``migrations/README.md`` for adding a revision.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # SQLAlchemy is imported where a database is opened, not with the chain's head
    from sqlalchemy import Connection, Engine

from betrokken.errors import ConfigError, SchemaOutdated

FOLDER = Path(__file__).resolve().parent
COMPONENTS = ("node", "keyservice", "coordinator")
VERSION_TABLE = "alembic_version"
# Held while a database is created or upgraded, so replicas starting together do it once.
_PG_LOCK = 0x6265_7472_6F6B  # "betrok"
log = logging.getLogger("betrokken.migrations")
logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines stay out of service logs


class Status(StrEnum):
    EMPTY = "empty"  # no table at all: created at the newest revision on first use
    CURRENT = "current"  # at the newest revision this code knows
    OUTDATED = "outdated"  # an older revision of this component: `betrokken db upgrade`
    UNVERSIONED = "unversioned"  # tables from before migrations existed: `betrokken db upgrade`
    NEWER = "newer"  # a revision this code does not know: written by a newer betrokken
    FOREIGN = "foreign"  # another component's database


@dataclass(frozen=True)
class SchemaState:
    component: str
    status: Status
    revision: str | None  # the database's revision (None: empty or unversioned)
    head: str  # the newest revision this code knows

    def describe(self) -> str:
        what = {
            Status.EMPTY: "empty (created at the current schema on first start)",
            Status.CURRENT: f"current (revision {self.head})",
            Status.OUTDATED: f"revision {self.revision}, older than this betrokken's {self.head}",
            Status.UNVERSIONED: "from before schema migrations (betrokken 0.1); needs an upgrade "
            f"to {self.head}",
            Status.NEWER: f"revision {self.revision}, which this betrokken does not know (it "
            f"knows up to {self.head}): written by a newer version",
            Status.FOREIGN: f"revision {self.revision}, which belongs to another component's "
            f"database, not the {self.component}'s",
        }
        return what[self.status]


def _check(component: str) -> None:
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}")


def _config(component: str, connection: Connection | None, **attributes: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(FOLDER / component))
    config.attributes["connection"] = connection
    config.attributes.update(attributes)
    return config


@cache
def _script(component: str) -> Any:
    from alembic.script import ScriptDirectory

    _check(component)
    return ScriptDirectory(str(FOLDER / component))


def head(component: str) -> str:
    """The newest revision of ``component``'s chain."""
    heads = _script(component).get_heads()
    assert len(heads) == 1, f"{component}: the migration chain has several heads {heads}"
    return str(heads[0])


def revisions(component: str) -> list[str]:
    """Every revision of ``component``'s chain, oldest first."""
    return [str(r.revision) for r in reversed(list(_script(component).walk_revisions()))]


def _revision_of(conn: Connection) -> tuple[bool, str | None]:
    """(whether the database has tables, its revision)."""
    from sqlalchemy import inspect, text

    tables = set(inspect(conn).get_table_names())
    if VERSION_TABLE not in tables:
        return bool(tables), None
    rows = [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    if len(rows) != 1:
        return True, ",".join(sorted(rows)) or None
    return True, str(rows[0])


def state_of(conn: Connection, component: str) -> SchemaState:
    """Where ``conn``'s database stands, for ``component``'s chain."""
    newest = head(component)
    has_tables, revision = _revision_of(conn)
    if revision is None:
        status = Status.UNVERSIONED if has_tables else Status.EMPTY
    elif revision == newest:
        status = Status.CURRENT
    elif revision in revisions(component):
        status = Status.OUTDATED
    elif any(revision.startswith(f"{other}_") for other in COMPONENTS if other != component):
        status = Status.FOREIGN
    else:
        status = Status.NEWER
    return SchemaState(component, status, revision, newest)


def state(engine: Engine, component: str) -> SchemaState:
    with engine.connect() as conn:
        return state_of(conn, component)


@contextmanager
def _exclusive(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that no other process can hold at the same time."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, DDL included
        elif engine.dialect.name == "postgresql":
            from sqlalchemy import text

            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        yield conn
        conn.commit()


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Alembic's own INFO lines (plugins, each step) stay out of the services' logs."""
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        alembic_log.setLevel(level)


def _run_upgrade(conn: Connection, component: str, target: str, **attributes: Any) -> None:
    from alembic import command

    with _quiet_alembic():
        command.upgrade(_config(component, conn, **attributes), target)


def refusal(found: SchemaState, url: str, config_hint: str = "") -> ConfigError:
    """The error for a database this code must not open."""
    where = f"the {found.component}'s database {url}"
    command = f"betrokken db upgrade --config {config_hint or '<this component>.toml'}"
    if found.status in (Status.OUTDATED, Status.UNVERSIONED):
        return SchemaOutdated(
            f"{where} is {found.describe()}",
            hint=f"stop the {found.component}, back the database up, run `{command}`, then "
            "start it again (docs/operator.md, 'Upgrades')",
        )
    if found.status is Status.NEWER:
        return SchemaOutdated(
            f"{where} is at {found.describe()}",
            hint="run the betrokken version that upgraded it, or restore the backup made before "
            "that upgrade",
        )
    return ConfigError(
        f"{where} is at {found.describe()}",
        hint="point 'database' in the configuration at this component's own database",
    )


_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.M)


@cache
def head_from_files(component: str) -> str | None:
    """The newest revision of ``component``'s chain read from its version files' text.

    Alembic (and Mako, and every migration script) costs more to import than a short command
    runs (measured: half a second of `betrokken query`); a current database, the usual case, is
    recognised with this and one query. None when the files do not name a single head (then
    :func:`head` decides). tests/ops/test_migrations.py checks it against Alembic's answer.
    """
    _check(component)
    named: set[str] = set()
    parents: set[str] = set()
    for path in (FOLDER / component / "versions").glob("*.py"):
        found = dict(
            (key, value.strip("\"'")) for key, value in _REVISION_LINE.findall(path.read_text())
        )
        if "revision" not in found:
            return None
        named.add(found["revision"])
        if found.get("down_revision", "None") != "None":
            parents.add(found["down_revision"])
    heads = named - parents
    return heads.pop() if len(heads) == 1 else None


def ensure_current(engine: Engine, component: str, url: str) -> SchemaState:
    """Create an empty database at the newest revision, accept a current one, refuse the rest."""
    newest = head_from_files(component)
    if newest is not None:  # the usual case, without importing Alembic
        with engine.connect() as conn:
            _, revision = _revision_of(conn)
        if revision == newest:
            return SchemaState(component, Status.CURRENT, revision, newest)
    found = state(engine, component)
    if found.status is Status.CURRENT:
        return found
    if found.status is not Status.EMPTY:
        raise refusal(found, url)
    with _exclusive(engine) as conn:
        found = state_of(conn, component)  # another process may have done it meanwhile
        if found.status is Status.EMPTY:
            _run_upgrade(conn, component, "head")
            found = state_of(conn, component)
            log.info("created the %s's database at revision %s", component, found.revision)
    if found.status is not Status.CURRENT:
        raise refusal(found, url)
    return found


def baseline(conn: Connection, component: str) -> str:
    """The revision an unversioned database (from before migrations) is at, from its tables.

    Release 0.1 (6fe2f79) is ``<component>_0001``; a database that development code of the
    issue-9 branch created (before this chain existed) already has that code's node or key
    service columns and counts as ``<component>_0002``; the chain's later revisions tolerate
    either.
    """
    from sqlalchemy import inspect

    found = inspect(conn)
    tables = set(found.get_table_names())
    if component == "node" and "registrations" in tables:
        columns = {c["name"] for c in found.get_columns("registrations")}
        return "node_0002" if "given_until" in columns else "node_0001"
    if component == "keyservice" and "quota_usage" in tables:
        columns = {c["name"] for c in found.get_columns("quota_usage")}
        return "keyservice_0002" if "use" in columns else "keyservice_0001"
    if component == "coordinator" and "log_records" in tables:
        return "coordinator_0001"
    raise ConfigError(
        f"this database has tables ({', '.join(sorted(tables))[:200]}) but none of a {component}'s",
        hint="point 'database' in the configuration at this component's own database",
    )


@dataclass(frozen=True)
class Upgraded:
    before: str | None  # the revision before (None: the database was empty)
    after: str
    steps: tuple[str, ...]  # revisions applied
    unversioned: bool = False  # it was from before migrations (``before`` found from its tables)


def upgrade(
    engine: Engine,
    component: str,
    url: str,
    *,
    before_step: Mapping[str, Any] | None = None,
    **attributes: Any,
) -> Upgraded:
    """Bring the database to the newest revision (``betrokken db upgrade``).

    ``before_step`` maps a revision to a callable ``fn(connection)`` run in the same transaction
    just before that revision is applied (e.g. moving the node's old witness alarms into its
    trail, which needs the node's signing key). ``attributes`` reach the revisions through
    ``op.get_context().config.attributes`` (e.g. the network's ``registration_days``).
    """
    hooks = dict(before_step or {})
    with _exclusive(engine) as conn:
        found = state_of(conn, component)
        if found.status in (Status.NEWER, Status.FOREIGN):
            raise refusal(found, url)
        before = found.revision
        if found.status is Status.UNVERSIONED:
            before = baseline(conn, component)
            from alembic import command

            with _quiet_alembic():
                command.stamp(_config(component, conn), before)
            log.info("%s: stamped a database from before migrations as %s", component, before)
        chain = revisions(component)
        start = chain.index(before) + 1 if before else 0
        steps = tuple(chain[start:])
        for step in steps:
            hook = hooks.get(step)
            if hook is not None:
                hook(conn)
            _run_upgrade(conn, component, step, **attributes)
        after = state_of(conn, component)
    return Upgraded(before, str(after.revision), steps, found.status is Status.UNVERSIONED)


def run_environment(context: Any) -> None:
    """The body of every ``env.py``: run the revisions on the connection we were given.

    ``betrokken`` passes an open connection (``config.attributes['connection']``); the Alembic
    command line (for developers: ``alembic -c migrations/alembic.ini -n node revision ...``)
    gives a URL instead. ``render_as_batch`` makes autogenerated revisions work on SQLite.
    """
    from sqlalchemy import create_engine

    config = context.config
    target = config.attributes.get("target_metadata")
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url"))
        with engine.begin() as connection:
            context.configure(connection=connection, target_metadata=target, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
