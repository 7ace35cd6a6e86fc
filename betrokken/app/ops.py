"""Operations on any component's configuration file: which component it is, its database's schema
(``betrokken db upgrade`` / ``db current``), and the pieces ``status`` and ``doctor`` share.

A component file is recognised by what it holds: ``organisation`` (a node: the organisation's
node, trail and witness state), ``oprf_seed`` (the key service), neither (the coordinator).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Integer,
    String,
    Text,
    column,
    create_engine,
    delete,
    func,
    inspect,
    select,
    table,
)

from betrokken.clock import utcnow
from betrokken.config.load import Loaded, load_coordinator, load_keyservice, load_node
from betrokken.db import redacted
from betrokken.errors import ConfigError
from betrokken.health import COORDINATOR, KEYSERVICE, NODE, peer_lines


def component_of(path: Path) -> str:
    """Which component ``path`` configures (read without validating it)."""
    if not path.is_file():
        raise ConfigError(
            f"{path}: file not found",
            hint="pass a component's configuration file (node.toml, coordinator.toml or "
            "keyservice.toml) with --config",
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})", hint="fix the syntax there") from None
    if "organisations" in data and "purposes" in data:
        raise ConfigError(
            f"{path} is the network file, not a component's configuration",
            hint="pass node.toml, coordinator.toml or keyservice.toml",
        )
    if "organisation" in data:
        return NODE
    if "oprf_seed" in data:
        return KEYSERVICE
    return COORDINATOR


def load_component(path: Path) -> tuple[str, Loaded[Any]]:
    """The component and its loaded (validated) configuration."""
    component = component_of(path)
    loaded: Loaded[Any]
    if component == NODE:
        loaded = load_node(path)
    elif component == KEYSERVICE:
        loaded = load_keyservice(path)
    else:
        loaded = load_coordinator(path)
    return component, loaded


def raw_engine(url: str) -> Engine:
    """An engine that creates nothing (unlike :func:`betrokken.db.make_engine`)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"timeout": 30})
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})


def sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        return Path(url[len(prefix) :])
    return None


def backup_sqlite(path: Path, label: str) -> Path:
    """An online copy of a SQLite database next to it (SQLite's backup API), mode 0600."""
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.before-{label}-{stamp}")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    source = sqlite3.connect(path)
    copy = sqlite3.connect(target)
    try:
        with copy:
            source.backup(copy)
    finally:
        copy.close()
        source.close()
    return target


# --- db upgrade ---------------------------------------------------------------------------------
_WITNESS_ALARMS = table(
    "witness_alarms",
    column("id", Integer()),
    column("at", DateTime(timezone=True)),
    column("kind", String(32)),
    column("message", Text()),
)


def _aware(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _old_alarms(engine: Engine) -> int:
    with engine.connect() as conn:
        if "witness_alarms" not in inspect(conn).get_table_names():
            return 0
        return int(conn.execute(select(func.count()).select_from(_WITNESS_ALARMS)).scalar_one())


def move_witness_alarms(loaded: Loaded[Any], engine: Engine) -> Callable[[Connection], None]:
    """Before ``node_0004``: each row of release 0.1's ``witness_alarms`` becomes an alarm record
    in the node's trail (kind ``witness-<kind>``, its own time and message), in the upgrade's
    transaction, signed with the node's trail key; then the row is deleted."""
    from betrokken.audit.keys import read_log_key
    from betrokken.audit.log import AuditLog
    from betrokken.audit.record import AuditEntry, Event

    org = loaded.network.organisation(loaded.component.organisation)
    assert org is not None
    signer = read_log_key(loaded.resolve(loaded.component.log_key), org.log_key)
    # Opened without touching the schema: the upgrade is under way (its tables exist since
    # release 0.1, and log_subtrees since node_0003, which runs before this hook).
    trail = AuditLog.attached(engine, signer, signer.name)

    def move(conn: Connection) -> None:
        rows = conn.execute(select(_WITNESS_ALARMS).order_by(_WITNESS_ALARMS.c.id)).all()
        entries = [
            AuditEntry(
                event=Event.ALARM,
                at=_aware(row.at),
                organisation=org.id,
                reason=row.kind if row.kind.startswith("witness-") else f"witness-{row.kind}",
                details={
                    "message": str(row.message)[:500],
                    "moved": "from table witness_alarms at the upgrade to node_0004",
                },
            )
            for row in rows
        ]
        if entries:
            trail.append(entries, conn)
            conn.execute(delete(_WITNESS_ALARMS))

    return move


@dataclass(frozen=True)
class UpgradeReport:
    component: str
    database: str
    before: str | None
    after: str
    steps: tuple[str, ...]
    unversioned: bool
    backup: Path | None

    def lines(self) -> list[str]:
        lines = [f"{self.component} database {self.database}"]
        if self.backup is not None:
            lines.append(f"  backup:   {self.backup} (restore it to undo the upgrade)")
        if not self.steps and not self.unversioned:
            lines.append(f"  already current at {self.after}; nothing to do")
            return lines
        start = self.before or "empty"
        if self.unversioned:
            start = f"{self.before} (a database from before schema migrations)"
        lines.append(f"  from:     {start}")
        lines.append(f"  applied:  {', '.join(self.steps) or 'none (its tables are current)'}")
        lines.append(f"  now:      {self.after} (current)")
        return lines


def db_upgrade(config: Path, backup: bool = True) -> UpgradeReport:
    """``betrokken db upgrade``: bring the component's database to the newest revision."""
    from betrokken import migrations

    component, loaded = load_component(config)
    url = loaded.component.database
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise ConfigError(
            f"{config}: the database {path} does not exist",
            hint="check 'database' in the configuration; a new database is created at the "
            "current schema when the component first starts, it needs no upgrade",
        )
    engine = raw_engine(url)
    try:
        found = migrations.state(engine, component)
        if found.status in (migrations.Status.NEWER, migrations.Status.FOREIGN):
            raise migrations.refusal(found, redacted(url), str(config))
        copy = None
        if path is not None and backup and found.status is not migrations.Status.CURRENT:
            copy = backup_sqlite(path, found.revision or "release-0.1")
        hooks: dict[str, Any] = {}
        attributes: dict[str, Any] = {}
        if component == NODE and _old_alarms(engine):
            hooks["node_0004"] = move_witness_alarms(loaded, engine)
        if component == NODE:
            attributes["registration_days"] = loaded.network.retention.registration_days
        done = migrations.upgrade(engine, component, redacted(url), before_step=hooks, **attributes)
    finally:
        engine.dispose()
    return UpgradeReport(
        component, redacted(url), done.before, done.after, done.steps, done.unversioned, copy
    )


def db_current(config: Path) -> tuple[str, str, Any]:
    """``betrokken db current``: (component, database, its schema state)."""
    from betrokken import migrations

    component, loaded = load_component(config)
    url = loaded.component.database
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise ConfigError(
            f"{config}: the database {path} does not exist",
            hint="check 'database'; it is created when the component first starts",
        )
    engine = raw_engine(url)
    try:
        return component, redacted(url), migrations.state(engine, component)
    finally:
        engine.dispose()


# --- status of the coordinator and the key service ---------------------------------------------
def _certificate_line(loaded: Loaded[Any]) -> str:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(Path(loaded.tls.certificate).read_bytes())
    except (OSError, ValueError) as exc:
        return f"cannot be read ({exc})"
    left = cert.not_valid_after_utc - utcnow()
    text = f"valid until {cert.not_valid_after_utc:%Y-%m-%d} ({left.days} days)"
    if left.days < CERTIFICATE_WARNING_DAYS:
        text += "  WARNING: renew it (docs/operator.md, 'Certificate rotation')"
    return text


CERTIFICATE_WARNING_DAYS = 30


def _schema_line(component: str, url: str) -> tuple[str, Engine | None]:
    """The schema line, and an engine when the database can be read by this code."""
    from betrokken import migrations

    path = sqlite_path(url)
    if path is not None and not path.exists():
        return "not created yet (created at the first start)", None
    engine = raw_engine(url)
    try:
        found = migrations.state(engine, component)
    except Exception as exc:
        engine.dispose()
        return f"cannot be read ({str(getattr(exc, 'orig', exc)).splitlines()[0][:200]})", None
    if found.status is not migrations.Status.CURRENT:
        engine.dispose()
        return f"{found.describe()}  -> betrokken db upgrade", None
    return found.describe(), engine


def _log_figures(engine: Engine) -> list[str]:
    from betrokken.audit.log import CHECKPOINTS, RECORDS

    today = dt.datetime.combine(utcnow().date(), dt.time(), tzinfo=dt.UTC)
    with engine.connect() as conn:
        size = conn.execute(select(func.count()).select_from(RECORDS)).scalar_one()
        latest = conn.execute(
            select(CHECKPOINTS.c.size, CHECKPOINTS.c.created_at)
            .order_by(CHECKPOINTS.c.size.desc())
            .limit(1)
        ).first()
        counts: dict[str, int] = {
            str(event): int(count)
            for event, count in conn.execute(
                select(RECORDS.c.event, func.count())
                .where(RECORDS.c.at >= today)
                .group_by(RECORDS.c.event)
            ).all()
        }
        partial = conn.execute(
            select(func.count())
            .select_from(RECORDS)
            .where(
                RECORDS.c.at >= today,
                RECORDS.c.event == "outcome",
                RECORDS.c.content.like('%"completeness":"partial"%'),
            )
        ).scalar_one()
    when = f" signed {latest.created_at:%Y-%m-%d %H:%M} UTC" if latest else ""
    return [
        f"  audit log:          {size} record(s); latest checkpoint "
        + (f"at {latest.size}{when}" if latest else "none"),
        f"  today (UTC):        {counts.get('search', 0)} question(s), {partial} partial, "
        f"{counts.get('refusal', 0)} refusal(s)",
    ]


def status_lines(component: str, loaded: Loaded[Any]) -> list[str]:
    """``betrokken status`` for the coordinator or the key service (the node has `node status`)."""
    network = loaded.network
    settings = network.coordinator if component == COORDINATOR else network.keyservice
    name = "coordinator" if component == COORDINATOR else "key service"
    url = loaded.component.database
    lines = [f"{name} of network '{network.name}'"]
    lines.append(f"  listens on:         {loaded.component.listen or settings.address}")
    metrics = loaded.component.metrics_listen
    lines.append(f"  metrics:            {f'http://{metrics}/metrics' if metrics else 'off'}")
    lines.append(f"  database:           {redacted(url)}")
    schema, engine = _schema_line(component, url)
    lines.append(f"  schema:             {schema}")
    lines.append(f"  certificate:        {_certificate_line(loaded)}")
    if engine is not None:
        try:
            lines += _log_figures(engine)
            if component == KEYSERVICE:
                lines += _quota_lines(loaded, engine)
            else:
                lines += _anchor_lines(engine)
        finally:
            engine.dispose()
    if component == KEYSERVICE:
        lines.append(f"  OPRF seed:          {_seed_line(loaded)}")
    lines.append("  health (mutual TLS):")
    lines += peer_lines(component, loaded)
    return lines


def _anchor_lines(engine: Engine) -> list[str]:
    """What the coordinator remembers of each node (coordinator/anchors.py)."""
    from betrokken.coordinator.anchors import NodeAnchors

    try:
        anchors = NodeAnchors(engine).all()
    except Exception:  # an older schema: `db upgrade` says so above
        return []
    if not anchors:
        return ["  node anchors:       none yet (each node's cosignatures make them)"]
    lines = ["  node anchors:"]
    for anchor in anchors:
        flag = "WARNING: " if anchor.behind else ""
        lines.append(f"    {flag}{anchor.describe()}")
    return lines


def _quota_lines(loaded: Loaded[Any], engine: Engine) -> list[str]:
    from betrokken.keyservice.store import QuotaUsage

    network = loaded.network
    today = utcnow().date()
    with engine.connect() as conn:
        rows = conn.execute(
            select(QuotaUsage.organisation, QuotaUsage.use, QuotaUsage.used).where(
                QuotaUsage.day == today
            )
        ).all()
    if not rows:
        return ["  quota today (UTC):  nothing evaluated yet"]
    lines = ["  quota today (UTC):"]
    for organisation, use, used in sorted(rows):
        limit = (
            network.daily_bulk_quota(organisation)
            if use == "import"
            else network.daily_quota(organisation)
        )
        share = f"{100 * used / limit:.0f}%" if limit else "-"
        lines.append(f"    {organisation} {use}: {used:,} of {limit:,} ({share})")
    return lines


def _seed_line(loaded: Loaded[Any]) -> str:
    from betrokken.keyservice.keys import KeyRing, read_seed

    path = loaded.resolve(loaded.component.oprf_seed)
    try:
        ring = KeyRing.load(read_seed(path), loaded.network, str(path))
    except ConfigError as exc:
        return f"PROBLEM: {exc.message}"
    mode = path.stat().st_mode & 0o777
    warn = "  WARNING: readable by others: chmod 600" if mode & 0o077 else ""
    return (
        f"{path} (mode {mode:o}); keys of {len(ring.keys)} organisation(s) match the network{warn}"
    )
