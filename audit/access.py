"""Opening the audit log of any component from its configuration file, and reading it.

Reading the log is itself an event: :func:`record_access` appends who read it, when, and with
which filter (NEN 7513 asks that access to the log is logged too).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from betrokken.audit.keys import log_origin, read_log_key
from betrokken.audit.log import AuditLog, LogBase, StoredRecord
from betrokken.audit.record import AuditEntry, Event
from betrokken.config.load import Loaded, load_coordinator, load_keyservice, load_node
from betrokken.config.schema import Network, TlsFiles
from betrokken.db import make_engine
from betrokken.errors import ConfigError


@dataclass(frozen=True)
class OpenedLog:
    kind: str  # "coordinator" | "node" | "keyservice"
    component: str  # the log's name: "coordinator", "keyservice" or the organisation id
    log: AuditLog
    verifier: str
    network: Network
    tls: TlsFiles
    config_path: Path

    @property
    def organisation(self) -> str:
        return self.component if self.kind == "node" else ""


def open_log(config_path: Path | str) -> OpenedLog:
    path = Path(config_path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found", hint="pass a component's --config") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
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
    engine = make_engine(loaded.component.database, LogBase.metadata)
    log = AuditLog(engine, signer, log_origin(loaded.network.name, component))
    return OpenedLog(kind, component, log, verifier, loaded.network, loaded.tls, path)


def record_access(opened: OpenedLog, user: str, command: str, details: dict[str, str]) -> int:
    """Append the log-access record; returns its index."""
    entry = AuditEntry(
        event=Event.LOG_ACCESS,
        at=dt.datetime.now(dt.UTC),
        organisation=opened.organisation,
        user=user,
        role="dpo",
        access_point=f"betrokken audit {command}",
        reason=command,
        details={k: v for k, v in details.items() if v},
    )
    return opened.log.append([entry])[0]


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


def select_records(log: AuditLog, wanted: Filter) -> Iterator[tuple[int, AuditEntry]]:
    for record in log.records(
        since=wanted.since, until=wanted.until, organisation=wanted.organisation
    ):
        entry = record.entry
        if entry is not None and wanted.matches(entry):
            yield record.index, entry


def with_entries(records: Iterable[StoredRecord]) -> Iterator[tuple[int, AuditEntry | None]]:
    for record in records:
        yield record.index, record.entry
