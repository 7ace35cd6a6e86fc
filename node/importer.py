"""Loading registrations from the organisation's case system: one at a time or a whole export.

A BSN lives here only in memory, between reading a line and pseudonymising it.

What a registration means follows the case system (docs/adr/0011): each import or register
*confirms* it; an open case stays active while it is confirmed and ends at the network's
retention term after its last confirmation; an end the case system gives ends it earlier. A line
that would be stored already ended is refused, never stored silently as "not involved".
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from betrokken.clock import utcnow
from betrokken.config.schema import DisclosureLevel, Network, Organisation
from betrokken.crypto.bsn import Bsn, mask, parse_bsn
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.errors import BadInput, InvalidBsn, SyncGuarded
from betrokken.lifecycle import sync_ends_too_many
from betrokken.node.store import KEEPABLE, Change, NodeStore, Registration, Stored
from betrokken.tabular import CellError, Headers, Problems, Row, Table

FIELDS = ("bsn", "since", "until", "contact", "domain", "reference", "disclosure", "advice")
REQUIRED = ("bsn",)
# The headers Dutch case systems use for the fields, recognised without a mapping (an explicit
# mapping always wins); a date-like column left unread while since or until is not read is
# refused (tabular.Headers).
HEADERS = Headers(
    aliases={
        "bsn": ("burgerservicenummer", "bsn-nummer", "sofinummer"),
        "since": (
            "startdatum",
            "begindatum",
            "datum start",
            "datum begin",
            "ingangsdatum",
            "aanvangsdatum",
            "datum aanvang",
            "vanaf",
            "van",
        ),
        "until": (
            "einddatum",
            "datum einde",
            "datum eind",
            "afsluitdatum",
            "datum afsluiting",
            "tot en met",
            "tot",
            "t/m",
        ),
        "contact": ("contactpersoon", "contactgegevens", "telefoon", "telefoonnummer"),
        "domain": ("domein",),
        "reference": (
            "zaaknummer",
            "dossiernummer",
            "zaak",
            "zaaknr",
            "zaaknr.",
            "dossiernr",
            "dossiernr.",
            "kenmerk",
            "referentie",
        ),
        "disclosure": ("openbaarheid", "verstrekking"),
        "advice": ("advies",),
    },
    dates=("since", "until"),
)
BATCH = 500
# Columns whose empty cell is a statement of the case system (no end; the policy decides);
# for the others an empty cell means "not given": an existing registration keeps its value.
STATED_WHEN_EMPTY = frozenset({"until", "disclosure", "advice"})
_ENDED_HINT = (
    "leave ended cases out of the export (import it with --sync and registrations no longer in "
    "it end), or end the registration now with `betrokken node withdraw`"
)


class PseudonymSource(Protocol):
    def pseudonymise(self, bsns: Sequence[Bsn]) -> list[Pseudonym]: ...


@dataclass(frozen=True)
class Rejected:
    """Why a line was not stored: ``kind`` has no value in it (lines are grouped by it)."""

    kind: str
    detail: str = ""


class InvalidDetails(BadInput):
    """A registration's details cannot be used; ``kind`` says what, without any value."""

    def __init__(self, kind: str, message: str | None = None, *, hint: str | None = None) -> None:
        super().__init__(message or kind, hint=hint)
        self.kind = kind


@dataclass(frozen=True)
class Details:
    """Everything of a registration except the person; ``None`` where not given."""

    since: dt.date | None = None
    until: dt.date | None = None  # the case system's end; None: open (when given)
    contact: str | None = None
    domain: str | None = None
    reference: str | None = None
    disclosure: DisclosureLevel | None = None
    advice: str | None = None  # a code of the network file's advice_codes
    given: frozenset[str] = field(default_factory=frozenset)


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
    advice: str | None = None,
    today: dt.date,
    given: Iterable[str] | None = None,
) -> Details:
    """Check one registration's details (raises :class:`InvalidDetails`).

    ``given`` names the fields the caller states (an empty ``until`` then means "open"); by
    default those that are not ``None``. An advice must be a code of the network file's
    ``advice_codes``: never free text.
    """
    del org  # defaults are applied when storing: an existing registration keeps its own
    if advice and network.advice(advice) is None:
        known = ", ".join(a.code for a in network.advice_codes) or "none are defined"
        raise InvalidDetails(
            "advice is not a code of the network file",
            f"advice '{advice[:64]}' is not one of the network file's advice codes",
            hint=f"use one of: {known}; or leave it empty",
        )
    values = {
        "since": since,
        "until": until,
        "contact": contact,
        "domain": domain,
        "reference": reference,
        "disclosure": disclosure,
        "advice": advice,
    }
    stated = (
        frozenset(given)
        if given is not None
        else frozenset(name for name, value in values.items() if value is not None)
    )
    if until is not None and since is not None and until < since:
        raise InvalidDetails(
            "until is before since",
            f"until ({until}) is before since ({since})",
            hint="check both dates in the case system",
        )
    if until is not None and until < today:
        raise InvalidDetails(
            "until is in the past: the registration would be ended at once",
            f"until ({until}) is in the past: the registration would be ended at once and the "
            "person answered 'not involved'",
            hint=_ENDED_HINT,
        )
    level: DisclosureLevel | None = None
    if disclosure:
        if disclosure != DisclosureLevel.DOMAIN.value:
            raise InvalidDetails(
                "disclosure may only be 'domain' or empty",
                f"disclosure override '{disclosure[:20]}' is not allowed",
                hint="a registration may only narrow disclosure to 'domain'; leave it empty "
                "otherwise (the network's policy decides)",
            )
        level = DisclosureLevel.DOMAIN
    if reference is not None and len(reference) > 128:
        raise InvalidDetails("reference is longer than 128 characters")
    if contact is not None and len(contact) > 256:
        raise InvalidDetails("contact is longer than 256 characters")
    if domain is not None and len(domain) > 64:
        raise InvalidDetails("domain is longer than 64 characters")
    return Details(
        since=since,
        until=until,
        contact=contact or None,
        domain=domain or None,
        reference=reference or None,
        disclosure=level,
        advice=advice or None,
        given=stated & KEEPABLE,
    )


def _bsn_problem(value: str) -> str:
    """What is wrong with a value that is not a BSN, without the value (for collapsing)."""
    cleaned = "".join(value.split()).replace(".", "").replace("-", "")
    if not cleaned:
        return "no BSN"
    if not (cleaned.isascii() and cleaned.isdigit()):
        return "BSN holds characters other than digits"
    if len(cleaned) not in (8, 9):
        return "BSN does not have 9 digits (or 8 when Excel dropped a leading zero)"
    if set(cleaned) == {"0"}:
        return "BSN is all zeros"
    return "BSN fails the elfproef (11-check)"


@contextmanager
def _bookkeeping() -> Iterator[None]:
    """Ctrl-C waits until a stored batch is counted, so the summary says exactly what is stored.

    Only the database write and the counting are covered (milliseconds); waiting for the key
    service stays interruptible. Signal handlers belong to the main thread: elsewhere (a web
    server's worker) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def remember(signum: int, _frame: Any) -> None:
        caught.append(signum)

    previous = signal.signal(signal.SIGINT, remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
        if caught:
            raise KeyboardInterrupt


@dataclass
class ImportSummary:
    """How far an import got; filled as it goes, so an interrupted import can still say so."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_withdrawn: int = 0
    problems: Problems = field(default_factory=Problems)
    lines_read: int = 0
    last_committed_line: int = 0  # every line up to here is stored (or rejected)
    ended: int | None = None  # --sync: registrations not in the file that were ended
    sync_skipped: str | None = None  # --sync: why nothing was ended
    open_until: dt.date | None = None  # open cases confirmed now are active until then
    active_before: int | None = None  # --sync with the guard: active registrations before

    @property
    def stored(self) -> int:
        return self.added + self.updated + self.unchanged

    @property
    def rejected(self) -> int:
        return self.problems.count

    def count(self, stored: Stored) -> None:
        if stored.change is Change.ADDED:
            self.added += 1
        elif stored.change is Change.UPDATED:
            self.updated += 1
        elif stored.change is Change.UNCHANGED:
            self.unchanged += 1
        elif stored.change is Change.KEPT_WITHDRAWN:
            self.kept_withdrawn += 1

    def counts(self) -> str:
        text = (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.rejected} rejected"
        )
        if self.kept_withdrawn:
            text += f", {self.kept_withdrawn} kept withdrawn"
        return text


class Registrar:
    """Registers and withdraws this organisation's involvement."""

    def __init__(
        self,
        network: Network,
        org: Organisation,
        store: NodeStore,
        pseudonyms: PseudonymSource,
        clock: Callable[[], dt.datetime] = utcnow,
        actor: str = "",
    ) -> None:
        self.network = network
        self.org = org
        self.store = store
        self.pseudonyms = pseudonyms
        self.clock = clock
        self.actor = actor  # who makes the changes, for the node's trail

    @property
    def retention_days(self) -> int:
        return self.network.retention.registration_days

    def today(self) -> dt.date:
        return self.clock().date()

    def _registration(self, pseudonym: Pseudonym, info: Details, today: dt.date) -> Registration:
        return Registration(
            pseudonym=pseudonym,
            domain=info.domain or self.org.domain,
            contact=info.contact or self.org.contact,
            since=info.since or today,
            until=info.until,
            reference=info.reference,
            disclosure=info.disclosure,
            advice=info.advice,
            keep=KEEPABLE - info.given,
        )

    def register(self, bsn: Bsn, info: Details, *, reactivate: bool = True) -> Stored:
        """Register (or confirm) one person. By hand, a withdrawal is undone (``reactivate``).

        Raises :class:`InvalidDetails` when the result would already be ended.
        """
        now = self.clock()
        pseudonym = self.pseudonyms.pseudonymise([bsn])[0]
        stored = self.store.upsert(
            [self._registration(pseudonym, info, now.date())],
            actor=self.actor,
            retention_days=self.retention_days,
            now=now,
            reactivate=reactivate,
        )[0]
        if stored.change is Change.ALREADY_ENDED:
            raise InvalidDetails(
                "the registration's end is in the past",
                f"{bsn.masked()}: the registration's end ({stored.given_until}) is in the past, "
                "so it would be ended at once; nothing was changed",
                hint="give the new end with --until, or --open when the case goes on without one",
            )
        return stored

    def withdraw(self, bsn: Bsn) -> int:
        pseudonym = self.pseudonyms.pseudonymise([bsn])[0]
        return self.withdraw_pseudonym(pseudonym)

    def withdraw_pseudonym(
        self, pseudonym: Pseudonym | None = None, reference: str | None = None
    ) -> int:
        return self.store.withdraw(
            pseudonym=pseudonym,
            reference=reference,
            actor=self.actor,
            remember_days=self.retention_days,
            today=self.today(),
        )

    def import_table(
        self,
        table: Table,
        summary: ImportSummary | None = None,
        *,
        sync: bool = False,
        reactivate: bool = False,
        progress: Callable[[int], None] | None = None,
        guard_share: float | None = None,
    ) -> ImportSummary:
        """Import every row of ``table`` in batches, each committed on its own.

        Bad lines are counted in ``summary.problems`` and skipped, never half-stored. The
        summary is filled as the import goes: when it is interrupted (the key service gone,
        Ctrl-C), ``summary.last_committed_line`` says how far it got, and running it again
        finishes it (lines already stored are confirmed, "unchanged").
        With ``sync`` the table is the whole caseload: registrations not in it end, but only
        when every line was read without a problem. With ``guard_share`` a sync that would end
        more than that share of the active registrations raises :class:`SyncGuarded`: before
        reading a line when the file has too few lines to keep enough of them, else after
        storing the file's lines and before ending anything.
        """
        summary = summary if summary is not None else ImportSummary()
        started = self.clock()
        today = started.date()
        active = self.store.status(today).active if sync and guard_share is not None else 0
        if sync and guard_share is not None:
            summary.active_before = active
            at_least = active - table.size
            if sync_ends_too_many(active, at_least, guard_share):
                raise self._guarded(at_least, active, guard_share, "at least", before=True)
        summary.open_until = today + dt.timedelta(days=self.retention_days)
        seen_registrations: set[int] = set()
        seen_withdrawals: set[int] = set()
        pending: list[tuple[int, Bsn, Details]] = []
        # Both cores (docs/performance.md): while one batch is stored here, the next one's
        # pseudonyms are made — blinded, evaluated by the key service (another process),
        # checked — on a thread.
        ahead = ThreadPoolExecutor(1, thread_name_prefix="pseudonymise")
        waiting: list[tuple[list[tuple[int, Bsn, Details]], Future[list[Pseudonym]]]] = []

        def store_waiting() -> None:
            batch, pseudonyms = waiting.pop()
            self._store_batch(
                batch,
                pseudonyms.result(),
                summary,
                reactivate,
                seen_registrations,
                seen_withdrawals,
            )
            if progress:
                progress(len(batch))

        def flush() -> None:
            batch = list(pending)
            pending.clear()
            made = ahead.submit(self.pseudonyms.pseudonymise, [bsn for _, bsn, _ in batch])
            if waiting:
                store_waiting()
            waiting.append((batch, made))

        last_line = 0
        try:
            for row in table.rows():
                summary.lines_read += 1
                last_line = row.line
                parsed = self._parse(row, table.columns, today)
                if isinstance(parsed, Rejected):
                    summary.problems.add(row.line, parsed.kind, parsed.detail)
                    if progress:
                        progress(1)
                    if not pending and not waiting:
                        summary.last_committed_line = row.line
                    continue
                pending.append((row.line, *parsed))
                if len(pending) >= BATCH:
                    flush()
            if pending:
                flush()
            if waiting:
                store_waiting()
        finally:
            ahead.shutdown(wait=False, cancel_futures=True)
        summary.last_committed_line = last_line
        if sync:
            if summary.rejected:
                summary.sync_skipped = (
                    f"{summary.rejected} line(s) were rejected, so the file is not known to be "
                    "the whole caseload; nothing was ended. Correct those lines and run the "
                    "import with --sync again"
                )
            elif summary.stored + summary.kept_withdrawn == 0:
                summary.sync_skipped = (
                    "the file holds no registrations; nothing was ended (an empty export is "
                    "far more often a failed export than an empty caseload)"
                )
            else:
                if guard_share is not None:
                    ending = self.store.count_missing(seen_registrations, started)
                    if sync_ends_too_many(active, ending, guard_share):
                        error = self._guarded(ending, active, guard_share, "", before=False)
                        summary.sync_skipped = error.message
                        raise error
                summary.ended = self.store.end_missing(
                    seen_registrations, seen_withdrawals, started, actor=self.actor
                )
        return summary

    @staticmethod
    def _guarded(ending: int, active: int, share: float, how: str, *, before: bool) -> SyncGuarded:
        what = f"{how} {ending:,}".strip()
        done = (
            "nothing was read or changed"
            if before
            else "the file's lines were stored and confirmed; nothing was ended"
        )
        guarded = SyncGuarded(
            f"--sync would end {what} of {active:,} active registrations "
            f"({ending / active:.0%}), more than the {share:.0%} allowed (sync_guard_share); "
            f"{done}. A partial export (one team, one month) read as the whole caseload would end "
            "every case it lacks",
            hint="check that the file is the whole caseload; if so, run the same command with "
            "--force (or raise sync_guard_share in node.toml)",
        )
        guarded.ending, guarded.active, guarded.share, guarded.before = (
            ending,
            active,
            share,
            before,
        )
        return guarded

    def _store_batch(
        self,
        batch: list[tuple[int, Bsn, Details]],
        pseudonyms: list[Pseudonym],
        summary: ImportSummary,
        reactivate: bool,
        seen_registrations: set[int],
        seen_withdrawals: set[int],
    ) -> None:
        now = self.clock()
        registrations = [
            self._registration(p, info, now.date())
            for p, (_, _, info) in zip(pseudonyms, batch, strict=True)
        ]
        with _bookkeeping():
            results = self.store.upsert(
                registrations,
                actor=self.actor,
                retention_days=self.retention_days,
                now=now,
                reactivate=reactivate,
                lines=(batch[0][0], batch[-1][0]),
            )
            self._count(batch, results, summary, seen_registrations, seen_withdrawals)

    @staticmethod
    def _count(
        batch: list[tuple[int, Bsn, Details]],
        results: list[Stored],
        summary: ImportSummary,
        seen_registrations: set[int],
        seen_withdrawals: set[int],
    ) -> None:
        for (line, _, _), stored in zip(batch, results, strict=True):
            if stored.change is Change.ALREADY_ENDED:
                summary.problems.add(
                    line,
                    "no until in the file and the registration's own end is in the past",
                    "add the case's end (or leave the cell empty in an until column for an "
                    "open case)",
                )
            summary.count(stored)
            if stored.registration_id is not None:
                seen_registrations.add(stored.registration_id)
            if stored.withdrawal_id is not None:
                seen_withdrawals.add(stored.withdrawal_id)
        summary.last_committed_line = batch[-1][0]

    def _parse(
        self, row: Row, columns: Mapping[str, str], today: dt.date
    ) -> tuple[Bsn, Details] | Rejected:
        if row.problem:
            return Rejected(row.problem)
        value = row.text("bsn")
        try:
            bsn = parse_bsn(value)
        except InvalidBsn as exc:
            return Rejected(_bsn_problem(value), exc.message)
        try:
            given = {
                name
                for name in columns
                if name in KEEPABLE and (name in STATED_WHEN_EMPTY or row.text(name))
            }
            info = details(
                self.network,
                self.org,
                since=row.date("since"),
                until=row.date("until"),
                contact=row.given("contact"),
                domain=row.given("domain"),
                reference=row.given("reference"),
                disclosure=row.given("disclosure"),
                advice=row.given("advice"),
                today=today,
                given=given,
            )
        except CellError as exc:
            return Rejected(exc.kind)
        except InvalidDetails as exc:
            return Rejected(exc.kind, f"{mask(value)}: {exc.message}")
        return bsn, info
