"""``betrokken backup`` and ``betrokken restore``: any component's database, copied while it runs
and checked after writing; put back while it is stopped.

* SQLite: SQLite's online backup API (a consistent copy of the database and its WAL while the
  component serves), then the copy is opened on its own and checked: ``PRAGMA integrity_check``,
  the audit log's head against its records, and the root of its latest signed checkpoint
  recomputed from the stored hashes.
* PostgreSQL: ``pg_dump --format=custom``, checked by ``pg_restore --list``; restored with
  ``pg_restore --clean --if-exists --single-transaction``.

A node's restore also anchors the restored database (node/anchor.py): the operator restored it
knowingly, the trail records it, and the command says how many registrations the anchor knew
more — what changed since the backup comes back by importing the case system's export again.
docs/operator.md, 'Recovery', has the schedule.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from betrokken.app.ops import load_component
from betrokken.db import redacted, sqlite_path
from betrokken.errors import BadInput, ConfigError, Unavailable, VerificationError
from betrokken.health import COORDINATOR, KEYSERVICE, NODE


@dataclass
class Checked:
    """What the check of a backup found."""

    records: int = 0
    checkpoint: int | None = None
    lines: list[str] = field(default_factory=list)


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql", "postgres://"))


def _pg_url(url: str) -> str:
    """A libpq URL (pg_dump does not know SQLAlchemy's driver suffix)."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if "+" in scheme or scheme == "postgres" else url


def _private(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def check_sqlite(path: Path) -> Checked:
    """Open the SQLite file ``path`` on its own and check it; :class:`VerificationError` names
    what is wrong."""
    from betrokken.audit.log import AuditLog
    from betrokken.crypto.note import _parse_body, _split  # the checkpoint body, unsigned

    checked = Checked()
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = connection.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
            if verdict != "ok":
                raise VerificationError(f"{path}: SQLite's integrity check says: {verdict}")
            if "log_head" not in tables:
                raise VerificationError(f"{path}: holds no betrokken audit log")
            head = connection.execute("SELECT size FROM log_head WHERE id = 1").fetchone()
            count = connection.execute("SELECT count(*) FROM log_records").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise VerificationError(f"{path}: not a readable SQLite database ({exc})") from None
    size = int(head[0]) if head else 0
    if size != count:
        raise VerificationError(f"{path}: the log's head says {size} records, it holds {count}")
    checked.records = size
    checked.lines.append(f"integrity check ok; audit log of {size:,} record(s)")
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        log = AuditLog.attached(engine, None, "backup")
        latest = log.latest_checkpoint()
        if latest is not None:
            body = _parse_body(_split(latest.note)[0])
            if log.root(latest.size) != latest.root or body.root != latest.root:
                raise VerificationError(
                    f"{path}: the root of the signed checkpoint at {latest.size} records does "
                    "not match the stored hashes"
                )
            checked.checkpoint = latest.size
            checked.lines.append(
                f"the signed checkpoint at {latest.size:,} records matches the stored hashes"
            )
    finally:
        engine.dispose()
    return checked


def _listening(address: str) -> bool:
    if not address or ":" not in address:
        return False
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


def _address(component: str, loaded: Any) -> str:
    network = loaded.network
    if component == NODE:
        org = network.organisation(loaded.component.organisation)
        return str(loaded.component.listen or (org.node_address if org else "") or "")
    if component == KEYSERVICE:
        return str(loaded.component.listen or network.keyservice.address)
    assert component == COORDINATOR
    return str(loaded.component.listen or network.coordinator.address)


def backup(config: Path, target: Path) -> list[str]:
    """Copy the database of the component ``config`` configures to ``target`` and check the
    copy. Returns what it did, line by line."""
    component, loaded = load_component(config)
    url: str = loaded.component.database
    if target.exists():
        raise BadInput(f"{target}: exists already", hint="give a new file name (e.g. with a date)")
    if not target.parent.is_dir():
        raise BadInput(f"{target.parent}: no such folder")
    started = dt.datetime.now(dt.UTC)
    if _is_postgres(url):
        _pg(["pg_dump", "--format=custom", "--file", str(target), _pg_url(url)], url)
        os.chmod(target, 0o600)
        _pg(["pg_restore", "--list", str(target)], url)
        lines = [f"{component} database {redacted(url)} -> {target} (pg_dump, custom format)"]
        lines.append("verified: pg_restore reads the whole archive")
        return lines
    path = sqlite_path(url)
    if path is None or not path.is_file():
        raise ConfigError(f"{redacted(url)}: no database file to back up")
    _private(target)
    source = sqlite3.connect(path, timeout=30)
    copy = sqlite3.connect(target)
    try:
        with copy:
            source.backup(copy)  # online: a consistent snapshot, the WAL's pages included
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        copy.close()
        source.close()
    try:
        checked = check_sqlite(target)
    except VerificationError:
        target.unlink(missing_ok=True)
        raise
    took = (dt.datetime.now(dt.UTC) - started).total_seconds()
    return [
        f"{component} database {path} -> {target} ({target.stat().st_size:,} bytes, {took:.1f} s)",
        *(f"verified: {line}" for line in checked.lines),
    ]


def _pg(command: list[str], url: str) -> None:
    if shutil.which(command[0]) is None:
        raise Unavailable(
            f"{command[0]} is not installed", hint="install the PostgreSQL client tools"
        )
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        message = done.stderr.strip().replace(_pg_url(url), redacted(url))[:500]
        raise Unavailable(f"{command[0]} failed: {message}")


def restore(config: Path, source: Path) -> list[str]:
    """Put the backup ``source`` back as the database of the (stopped) component ``config``."""
    component, loaded = load_component(config)
    url: str = loaded.component.database
    if not source.is_file():
        raise BadInput(f"{source}: no such backup file")
    address = _address(component, loaded)
    if _listening(address):
        raise BadInput(
            f"the {component} still listens on {address}: stop it before restoring",
            hint="stop the service (systemctl stop ... or Ctrl-C), restore, start it again",
        )
    lines: list[str] = []
    if _is_postgres(url):
        _pg(["pg_restore", "--list", str(source)], url)
        _pg(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "--dbname",
                _pg_url(url),
                str(source),
            ],
            url,
        )
        lines.append(f"restored {source} into {redacted(url)} (pg_restore)")
    else:
        checked = check_sqlite(source)
        path = sqlite_path(url)
        if path is None:
            raise ConfigError(f"{redacted(url)}: not a database file")
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        for suffix in ("", "-wal", "-shm"):
            old = path.with_name(path.name + suffix)
            if old.exists():
                kept = old.with_name(f"{old.name}.before-restore-{stamp}")
                old.rename(kept)
                lines.append(f"kept the database file that was there as {kept}")
        _private(path)
        origin = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        copy = sqlite3.connect(path)
        try:
            with copy:
                origin.backup(copy)
            copy.execute("PRAGMA journal_mode=WAL")
        finally:
            copy.close()
            origin.close()
        lines.append(f"restored {source} as {path} ({checked.records:,} audit record(s))")
    if component == NODE:
        lines += _anchor_restored(loaded)
    return lines


def _anchor_restored(loaded: Any) -> list[str]:
    """Record the restore in the node's trail and anchor the restored database."""
    import getpass

    from betrokken.audit.record import AuditEntry, Event
    from betrokken.errors import DataLost
    from betrokken.node.anchor import problem
    from betrokken.node.server import open_store, read_own_anchor, refresh_anchor

    try:
        old = read_own_anchor(loaded)
    except DataLost:
        old = None
    store = open_store(loaded)
    now = dt.datetime.now(dt.UTC)
    details = {"action": "restore"}
    behind = old is not None and problem(old, store.trail) is not None
    if old is not None:
        details.update(
            anchored_trail_size=str(old.trail_size),
            anchored_active=str(old.active),
            anchored_at=old.written_at.isoformat(timespec="seconds"),
        )
    store.trail.append(
        [
            AuditEntry(
                event=Event.REGISTRATION,
                at=now,
                organisation=store.organisation,
                user=getpass.getuser(),
                reason="restored",
                details=details,
            )
        ]
    )
    anchor = refresh_anchor(loaded, store, replace=True)
    assert anchor is not None
    lines = [f"the node holds {anchor.active:,} active registration(s) as of the backup"]
    if old is not None and behind:
        lines.append(
            f"the anchor knew {old.active:,} active at {old.when()}: import the case system's "
            "whole export again now (`betrokken node import --sync FILE`), so what changed since "
            "the backup comes back / importeer nu de hele export van het zaaksysteem opnieuw"
        )
    else:
        lines.append(
            "import the case system's export again if anything changed since the backup "
            "(`betrokken node import --sync FILE`)"
        )
    lines.append("the restore is recorded in the node's trail; the state file anchors it")
    return lines
