"""Loading registrations from the organisation's case system: one at a time or a CSV file.

A BSN lives here only in memory, between reading a line and pseudonymising it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from betrokken.config.schema import DisclosureLevel, Network, Organisation
from betrokken.crypto.bsn import Bsn, mask, parse_bsn
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.errors import BadInput, InvalidBsn
from betrokken.node.store import Change, NodeStore, Registration

COLUMNS = ("bsn", "since", "until", "contact", "domain", "reference", "disclosure")
BATCH = 500


class PseudonymSource(Protocol):
    def pseudonymise(self, bsns: Sequence[Bsn]) -> list[Pseudonym]: ...


@dataclass(frozen=True)
class Details:
    """Everything of a registration except the person."""

    since: dt.date
    until: dt.date
    contact: str
    domain: str
    reference: str | None = None
    disclosure: DisclosureLevel | None = None


@dataclass
class ImportSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    @property
    def stored(self) -> int:
        return self.added + self.updated + self.unchanged

    def count(self, change: Change) -> None:
        setattr(self, change.value, getattr(self, change.value) + 1)


def details(
    network: Network,
    org: Organisation,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    contact: str | None = None,
    domain: str | None = None,
    reference: str | None = None,
    disclosure: str | None = None,
    today: dt.date,
) -> Details:
    """Fill defaults and check one registration's details (raises BadInput)."""
    start = since or today
    latest = start + dt.timedelta(days=network.retention.registration_days)
    end = until or latest
    if end < start:
        raise BadInput(f"until ({end}) is before since ({start})")
    if end > latest:
        raise BadInput(
            f"until ({end}) is beyond the network's retention term of "
            f"{network.retention.registration_days} days after since ({latest} at the latest)",
            hint="register for the retention term; renew the registration if involvement goes on",
        )
    level: DisclosureLevel | None = None
    if disclosure:
        if disclosure != DisclosureLevel.DOMAIN.value:
            raise BadInput(
                f"disclosure override '{disclosure}' is not allowed",
                hint="a registration may only narrow disclosure to 'domain'; leave it empty "
                "otherwise (the network's policy decides)",
            )
        level = DisclosureLevel.DOMAIN
    if reference is not None and len(reference) > 128:
        raise BadInput("reference is longer than 128 characters")
    return Details(
        since=start,
        until=end,
        contact=contact or org.contact,
        domain=domain or org.domain,
        reference=reference or None,
        disclosure=level,
    )


def _date(value: str, column: str) -> dt.date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{column} '{value}' is not a date (use YYYY-MM-DD)") from None


class Registrar:
    """Registers and withdraws this organisation's involvement."""

    def __init__(
        self,
        network: Network,
        org: Organisation,
        store: NodeStore,
        pseudonyms: PseudonymSource,
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
        actor: str = "",
    ) -> None:
        self.network = network
        self.org = org
        self.store = store
        self.pseudonyms = pseudonyms
        self.today = today
        self.actor = actor  # who makes the changes, for the node's trail

    def register(self, bsn: Bsn, info: Details) -> Change:
        pseudonym = self.pseudonyms.pseudonymise([bsn])[0]
        return self.store.upsert([_registration(pseudonym, info)], actor=self.actor)[0]

    def withdraw(self, bsn: Bsn) -> int:
        pseudonym = self.pseudonyms.pseudonymise([bsn])[0]
        return self.store.withdraw(pseudonym=pseudonym, actor=self.actor)

    def import_csv(
        self, path: Path, progress: Callable[[int], None] | None = None
    ) -> ImportSummary:
        """Import a CSV file; bad lines are reported and skipped, never half-stored."""
        summary = ImportSummary()
        pending: list[tuple[Bsn, Details]] = []
        for line, parsed in self._read(path):
            if isinstance(parsed, str):
                summary.rejected.append((line, parsed))
                if progress:
                    progress(1)
                continue
            pending.append(parsed)
            if len(pending) >= BATCH:
                self._store_batch(pending, summary, progress)
                pending = []
        if pending:
            self._store_batch(pending, summary, progress)
        return summary

    def _store_batch(
        self,
        batch: list[tuple[Bsn, Details]],
        summary: ImportSummary,
        progress: Callable[[int], None] | None,
    ) -> None:
        pseudonyms = self.pseudonyms.pseudonymise([bsn for bsn, _ in batch])
        changes = self.store.upsert(
            [_registration(p, info) for p, (_, info) in zip(pseudonyms, batch, strict=True)],
            actor=self.actor,
        )
        for change in changes:
            summary.count(change)
        if progress:
            progress(len(batch))

    def _read(self, path: Path) -> Iterator[tuple[int, tuple[Bsn, Details] | str]]:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise BadInput(f"{path}: file not found") from None
        except UnicodeDecodeError:
            raise BadInput(f"{path}: not UTF-8 text", hint="save the file as UTF-8 CSV") from None
        try:
            dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else "", delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel  # type: ignore[assignment]
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        header = [name.strip().lower() for name in reader.fieldnames or []]
        if "bsn" not in header:
            raise BadInput(
                f"{path}: the first line must be a header with a 'bsn' column",
                hint="optional columns: " + ", ".join(COLUMNS[1:]),
            )
        unknown = [name for name in header if name not in COLUMNS]
        if unknown:
            raise BadInput(
                f"{path}: unknown column(s) {', '.join(unknown)}",
                hint="known columns: " + ", ".join(COLUMNS),
            )
        reader.fieldnames = header
        today = self.today()
        for row in reader:
            line = reader.line_num
            yield line, self._parse_row(row, today)

    def _parse_row(self, row: dict[str, str | None], today: dt.date) -> tuple[Bsn, Details] | str:
        value = (row.get("bsn") or "").strip()
        try:
            bsn = parse_bsn(value)
        except InvalidBsn as exc:
            return exc.message
        try:
            info = details(
                self.network,
                self.org,
                since=_date(row.get("since") or "", "since"),
                until=_date(row.get("until") or "", "until"),
                contact=(row.get("contact") or "").strip() or None,
                domain=(row.get("domain") or "").strip() or None,
                reference=(row.get("reference") or "").strip() or None,
                disclosure=(row.get("disclosure") or "").strip() or None,
                today=today,
            )
        except BadInput as exc:
            return f"{mask(value)}: {exc.message}"
        return bsn, info


def _registration(pseudonym: Pseudonym, info: Details) -> Registration:
    return Registration(
        pseudonym=pseudonym,
        domain=info.domain,
        contact=info.contact,
        since=info.since,
        until=info.until,
        reference=info.reference,
        disclosure=info.disclosure,
    )
