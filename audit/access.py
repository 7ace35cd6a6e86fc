"""Opening the audit log of any component from its configuration file, and reading it.

The DPO's commands open the database **read-only** (SQLite ``mode=ro``; PostgreSQL read-only
transactions) and never create one: a mistyped path or an empty database is a configuration error
(exit code 5), not a freshly created log that "verifies" and holds no record about anyone.

Reading the log is itself an event: :func:`record_access` appends who read it, when, and with
which filter (NEN 7513 asks that access to the log is logged too). That one record is a write, so
it goes through a separate, writable connection opened only for it (docs/adr/0017).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from betrokken.answer import Outcome
from betrokken.audit.keys import log_origin, read_log_key
from betrokken.audit.log import HEAD, RECORDS, AuditLog, LogBase, StoredRecord
from betrokken.audit.record import AuditEntry, Event
from betrokken.config.load import Loaded, load_coordinator, load_keyservice, load_node
from betrokken.config.schema import Network, TlsFiles
from betrokken.crypto.note import NoteKey
from betrokken.db import driver_message, open_read_only, open_writable, redacted
from betrokken.errors import ConfigError, Unavailable, shown

LOG_TABLES = sorted(LogBase.metadata.tables)


@dataclass(frozen=True)
class OpenedLog:
    kind: str  # "coordinator" | "node" | "keyservice"
    component: str  # the log's name: "coordinator", "keyservice" or the organisation id
    log: AuditLog
    verifier: str
    network: Network
    tls: TlsFiles
    config_path: Path
    url: str = ""
    signer: NoteKey | None = None

    @property
    def organisation(self) -> str:
        return self.component if self.kind == "node" else ""


def open_log(config_path: Path | str, *, writable: bool = False) -> OpenedLog:
    """The component's audit log, read-only (``writable`` only for ``audit prune``); refuses a
    database that does not exist, holds no audit log or — where records are expected (the
    coordinator's log and a node's trail) — holds no record at all."""
    path = Path(config_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found", hint="pass a component's --config") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({shown(str(exc), 200)})") from None
    loaded: Loaded[Any]
    if "organisation" in raw:
        loaded = load_node(path)
        org = loaded.network.organisation(loaded.component.organisation)
        assert org is not None
        kind, component, verifier = "node", org.id, org.log_key
    elif "oprf_seed" in raw:
        loaded = load_keyservice(path)
        kind, component = "keyservice", "keyservice"
        verifier = loaded.network.keyservice.log_key
    else:
        loaded = load_coordinator(path)
        kind, component = "coordinator", "coordinator"
        verifier = loaded.network.coordinator.log_key
    signer = read_log_key(loaded.resolve(loaded.component.log_key), verifier)
    url = loaded.component.database
    what = f"{path} ({component}'s log)"
    reader = open_read_only(url, LOG_TABLES, what)
    try:
        _check_not_empty(reader, url, what, records_expected=kind != "keyservice")
    except BaseException:
        reader.dispose()
        raise
    engine = reader
    if writable:
        reader.dispose()
        engine = open_writable(url)
    log = AuditLog(engine, signer, log_origin(loaded.network.name, component))
    return OpenedLog(kind, component, log, verifier, loaded.network, loaded.tls, path, url, signer)


def _check_not_empty(engine: Engine, url: str, what: str, *, records_expected: bool) -> None:
    try:
        with engine.connect() as conn:
            head = conn.execute(select(HEAD.c.size).where(HEAD.c.id == 1)).first()
            count = int(conn.execute(select(func.count()).select_from(RECORDS)).scalar_one())
    except SQLAlchemyError as exc:
        raise Unavailable(
            f"{what}: the database {redacted(url)} cannot be read ({driver_message(exc)})"
        ) from None
    if head is None or (records_expected and count == 0):
        raise ConfigError(
            f"{what}: the audit log in {redacted(url)} holds no record at all",
            hint="check 'database' in the configuration file: a component that has run holds "
            "records; nothing was created or changed",
        )


def record_access(
    opened: OpenedLog,
    user: str,
    command: str,
    details: dict[str, str],
    *,
    access_point: str = "",
    role: str = "dpo",
) -> int:
    """Append the log-access record, through a connection opened for this one write (the DPO's
    reading connection stays read-only); returns its index. Fails closed: when the record cannot
    be written, nothing is read. ``access_point`` says where it was read (default: the CLI
    command; the portal gives its page)."""
    entry = AuditEntry(
        event=Event.LOG_ACCESS,
        at=dt.datetime.now(dt.UTC),
        organisation=opened.organisation,
        user=shown(user, 128),
        role=role,
        access_point=access_point or f"betrokken audit {command}",
        reason=command,
        details={k: shown(v, 128) for k, v in details.items() if v},
    )
    if not opened.url:  # opened by hand (tests): the log's own engine
        return opened.log.append([entry])[0]
    engine = open_writable(opened.url)
    try:
        return AuditLog(engine, opened.signer, opened.log.origin).append([entry])[0]
    except SQLAlchemyError as exc:
        raise Unavailable(
            f"reading the log is itself recorded (NEN 7513), and that record could not be "
            f"written ({driver_message(exc)}); nothing was read",
            hint="make the database writable for the component's account (or read a writable "
            "copy of it), then run the command again",
        ) from None
    finally:
        engine.dispose()


@dataclass
class Filter:
    """What a DPO asks for in ``audit log``."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    organisation: str | None = None
    user: str | None = None
    purpose: str | None = None
    case: str | None = None
    outcome: str | None = None  # complete | partial | refused | an organisation outcome
    events: set[str] = field(default_factory=set)

    def describe(self) -> dict[str, str]:
        return {
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "organisation": self.organisation or "",
            "user": self.user or "",
            "purpose": self.purpose or "",
            "case": self.case or "",
            "outcome": self.outcome or "",
            "events": ",".join(sorted(self.events)),
        }

    def matches(self, entry: AuditEntry) -> bool:
        if self.user and entry.user != self.user:
            return False
        if self.purpose and entry.purpose != self.purpose:
            return False
        if self.case and not any(s.case == self.case for s in entry.subjects):
            return False
        if self.events and entry.event.value not in self.events:
            return False
        if self.outcome:
            if self.outcome in ("complete", "partial"):
                return entry.completeness == self.outcome
            if self.outcome == "refused":
                return entry.event is Event.REFUSAL
            return any(self.outcome in per.values() for per in entry.outcomes.values())
        return True


COMPLETENESS = ("complete", "partial", "refused")


def filter_choices(network: Network) -> dict[str, list[str]]:
    """The values a filter field can take: what the log's records can hold."""
    return {
        "event": [e.value for e in Event],
        "outcome": [*COMPLETENESS, *(o.value for o in Outcome)],
        "organisation": [o.id for o in network.organisations],
        "purpose": [p.id for p in network.purposes],
    }


def unknown_value(
    wanted: Filter, network: Network, *, purpose: bool = False
) -> tuple[str, str, list[str]] | None:
    """The first filter value no record can hold, as (field, value, the values allowed); the
    purpose is checked only when asked (the CLI also reads records of purposes since removed)."""
    choices = filter_choices(network)
    asked: list[tuple[str, str | None]] = [("event", e) for e in sorted(wanted.events)]
    asked += [("outcome", wanted.outcome), ("organisation", wanted.organisation)]
    if purpose:
        asked.append(("purpose", wanted.purpose))
    for name, value in asked:
        if value is not None and value not in choices[name]:
            return name, value, choices[name]
    return None


def select_records(
    log: AuditLog, wanted: Filter, damaged: list[tuple[int, str]] | None = None
) -> Iterator[tuple[int, AuditEntry]]:
    """The records ``wanted`` selects. A damaged record is skipped — named in ``damaged`` (index,
    what is wrong) when given, else the reading fails on it."""
    for record in log.records(
        since=wanted.since, until=wanted.until, organisation=wanted.organisation
    ):
        if damaged is None:
            entry = record.entry
        else:
            entry, problem = record.checked()
            if problem is not None:
                damaged.append((record.index, problem))
                continue
        if entry is not None and wanted.matches(entry):
            yield record.index, entry


def gaps(log: AuditLog) -> list[tuple[int, str]]:
    """Records missing from the log's numbering (deleted rows), as (index, what), the first of
    each gap; and records missing after the last stored one, up to the head's size."""
    found: list[tuple[int, str]] = []
    expected = 0
    for record in log.records():
        if record.index != expected:
            found.append(
                (expected, f"missing: records {expected}..{record.index - 1} were removed")
            )
        expected = record.index + 1
    size = log.size()
    if expected < size:
        found.append((expected, f"missing: records {expected}..{size - 1} were removed"))
    return found


def with_entries(records: Iterable[StoredRecord]) -> Iterator[tuple[int, AuditEntry | None]]:
    for record in records:
        yield record.index, record.entry
