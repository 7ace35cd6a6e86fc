"""Registrations fed by the organisation's case systems: what each feeding system holds, its
events, the files held back for a beheerder, and its health (docs/adr/0036).

A node may be fed by several case systems (``[[feeds]]`` in node.toml). A full export of one
system (its drop folder, or its bulk API) is that system's whole caseload: registrations the
system fed before and no longer holds end — but only those no other system still holds, and
never those registered by hand. For that the node remembers which system holds which
registration (``feed_holdings``, by pseudonym under the organisation's own key, as the
registrations themselves).

Every feed event (a success, refused lines, a file held back, a failure) goes through
:func:`record_feed_event` into ``feed_status``, one row per system; :func:`feed_health` reads it
back for ``betrokken node status``, the beheerder's page, the metrics and the doctor, and
:func:`raise_quiet_alarms` writes an alarm to the trail when a system has been quiet longer than
its ``quiet_after_minutes``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from betrokken.audit.record import AuditEntry, Event
from betrokken.config.schema import FeedSystem, Network, Organisation
from betrokken.lifecycle import sync_ends_too_many
from betrokken.node.importer import ImportSummary, PseudonymSource, Registrar
from betrokken.node.store import NodeStore, RegistrationRow

log = logging.getLogger("betrokken.node.feeds")
_CHUNK = 500


class FeedEvent(StrEnum):
    SUCCESS = "success"  # a full export or an API call was applied
    REFUSED = "refused"  # lines or calls were refused (counted; the rest may have been applied)
    HELD = "held"  # a full export would end too much: held back for a beheerder
    FAILED = "failed"  # an export could not be applied (unreadable, key service gone, ...)


class FeedBase(DeclarativeBase):
    metadata = MetaData()


class FeedStatusRow(FeedBase):
    """One row per feeding system: its last events and counts (no person, no value of a line)."""

    __tablename__ = "feed_status"

    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    known_since: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    last_event_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    last_event: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_source: Mapped[str | None] = mapped_column(String(256), nullable=True)
    last_added: Mapped[int] = mapped_column(Integer, default=0)
    last_confirmed: Mapped[int] = mapped_column(Integer, default=0)
    last_ended: Mapped[int] = mapped_column(Integer, default=0)
    last_refused: Mapped[int] = mapped_column(Integer, default=0)
    refused_total: Mapped[int] = mapped_column(Integer, default=0)
    last_problem: Mapped[str | None] = mapped_column(String(512), nullable=True)
    # when the quiet alarm was raised for the current quiet spell (cleared by a success)
    quiet_alarm_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )


class FeedHoldingRow(FeedBase):
    """A registration a feeding system holds: its last full export or call named it."""

    __tablename__ = "feed_holdings"

    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    pseudonym: Mapped[bytes] = mapped_column(LargeBinary(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    confirmed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class HeldFileRow(FeedBase):
    """A full export held back because it would end too many of its system's registrations,
    until a beheerder confirms or refuses it (``decision``)."""

    __tablename__ = "feed_held_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system: Mapped[str] = mapped_column(String(64), index=True)
    file_name: Mapped[str] = mapped_column(String(256))
    held_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ending: Mapped[int] = mapped_column(Integer)
    holding: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str | None] = mapped_column(String(16), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    done_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


CONFIRM = "confirm"
REFUSE = "refuse"
# Why a full export ended nothing (codes: the reader's words are in the portal's catalogue).
REFUSED_LINES = "refused-lines"  # some line was refused: the file is not known to be whole
EMPTY = "empty"  # no registration in it: far more often a failed export than an empty caseload
HELD_BACK = "held-back"
UNREADABLE = "unreadable"
REFUSED_BY_BEHEERDER = "refused-by-beheerder"


def create_tables(store: NodeStore) -> None:
    """For stores made without the migration chain (tests, tools): the feed tables."""
    FeedBase.metadata.create_all(store.engine)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives back naive datetimes: they were stored as UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


# --- events ---------------------------------------------------------------------------------------
def _ensure(conn: Any, system: str, now: dt.datetime) -> None:
    if conn.execute(select(FeedStatusRow.system).where(FeedStatusRow.system == system)).first():
        return
    conn.execute(
        insert(FeedStatusRow).values(
            system=system,
            known_since=now,
            last_added=0,
            last_confirmed=0,
            last_ended=0,
            last_refused=0,
            refused_total=0,
        )
    )


def record_feed_event(
    store: NodeStore,
    system: str,
    kind: FeedEvent | str,
    *,
    at: dt.datetime,
    source: str = "",
    added: int = 0,
    confirmed: int = 0,
    ended: int = 0,
    refused: int = 0,
    problem: str = "",
) -> None:
    """Record one feed event of ``system``: counts only, never a value of a line."""
    kind = FeedEvent(kind)
    values: dict[str, Any] = {
        "last_event_at": at,
        "last_event": kind.value,
        "last_source": source[:256] or None,
        "refused_total": FeedStatusRow.refused_total + refused,
    }
    if kind is FeedEvent.SUCCESS:
        values |= {
            "last_success_at": at,
            "last_added": added,
            "last_confirmed": confirmed,
            "last_ended": ended,
            "last_refused": refused,
            "last_problem": problem[:512] or None,
            "quiet_alarm_at": None,
        }
    else:
        values |= {"last_problem": problem[:512] or None}
        if refused:
            values["last_refused"] = refused
    with store.engine.begin() as conn:
        _ensure(conn, system, at)
        conn.execute(update(FeedStatusRow).where(FeedStatusRow.system == system).values(**values))


# --- holdings and the end of what a system no longer holds ----------------------------------------
def hold(store: NodeStore, system: str, registration_ids: Iterable[int], at: dt.datetime) -> None:
    """``system`` holds these registrations (its export or call named them now): a few statements
    per batch of registrations, whatever their number."""
    ids = list(registration_ids)
    regs = RegistrationRow.__table__
    holdings = FeedHoldingRow.__table__
    with store.engine.begin() as conn:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            named = {
                (bytes(p), k)
                for p, k in conn.execute(
                    select(regs.c.pseudonym, regs.c.key_id).where(regs.c.id.in_(chunk))
                ).all()
            }
            if not named:
                continue
            values = [p for p, _ in named]
            held = {
                (bytes(p), k)
                for p, k in conn.execute(
                    select(holdings.c.pseudonym, holdings.c.key_id).where(
                        holdings.c.system == system, holdings.c.pseudonym.in_(values)
                    )
                ).all()
            }
            if held:
                conn.execute(
                    update(FeedHoldingRow)
                    .where(
                        FeedHoldingRow.system == system,
                        FeedHoldingRow.pseudonym.in_([p for p, _ in held]),
                    )
                    .values(confirmed_at=at)
                )
            new = named - held
            if new:
                conn.execute(
                    insert(FeedHoldingRow),
                    [
                        {"system": system, "pseudonym": p, "key_id": k, "confirmed_at": at}
                        for p, k in sorted(new)
                    ],
                )


@dataclass(frozen=True)
class Missing:
    """What a full export of a system leaves out: registrations to end, and registrations another
    system still holds (only this system's holding is let go)."""

    end: tuple[int, ...]
    release: tuple[tuple[bytes, str], ...]
    holding: int  # registrations this system held before the export

    @property
    def ending(self) -> int:
        return len(self.end)


def _missing(conn: Any, system: str, seen: set[int], started: dt.datetime) -> Missing:
    regs = RegistrationRow.__table__
    holdings = FeedHoldingRow.__table__
    rows = conn.execute(
        select(regs.c.id, regs.c.pseudonym, regs.c.key_id, regs.c.confirmed_at).join(
            holdings,
            and_(
                holdings.c.pseudonym == regs.c.pseudonym,
                holdings.c.key_id == regs.c.key_id,
                holdings.c.system == system,
            ),
        )
    ).all()
    mine, others = holdings.alias("mine"), holdings.alias("others")
    elsewhere = {
        (bytes(p), k)
        for p, k in conn.execute(
            select(others.c.pseudonym, others.c.key_id)
            .join(
                mine,
                and_(
                    mine.c.pseudonym == others.c.pseudonym,
                    mine.c.key_id == others.c.key_id,
                    mine.c.system == system,
                ),
            )
            .where(others.c.system != system)
        ).all()
    }
    end: list[int] = []
    release: list[tuple[bytes, str]] = []
    for reg_id, pseudonym, key_id, confirmed_at in rows:
        if reg_id in seen:
            continue
        confirmed = _utc(confirmed_at)
        if confirmed is not None and confirmed >= started:
            continue  # confirmed by hand or by another feed while this export ran
        if (bytes(pseudonym), key_id) in elsewhere:
            release.append((bytes(pseudonym), key_id))
        else:
            end.append(int(reg_id))
    return Missing(tuple(end), tuple(release), len(rows))


def missing(store: NodeStore, system: str, seen: set[int], started: dt.datetime) -> Missing:
    """What ending the registrations ``system`` no longer holds would do (nothing changes)."""
    with store.engine.connect() as conn:
        return _missing(conn, system, seen, started)


def end_missing(
    store: NodeStore, system: str, seen: set[int], started: dt.datetime, actor: str
) -> int:
    """After a system's full export: end the registrations it held, no longer holds, and no
    other system holds; let go of its holding of the others. One transaction. Returns how many
    registrations were ended."""
    holdings = FeedHoldingRow.__table__
    regs = RegistrationRow.__table__
    assert isinstance(holdings, Table)
    with store.engine.begin() as conn:
        gone = _missing(conn, system, seen, started)
        ended_keys = (
            conn.execute(
                select(regs.c.pseudonym, regs.c.key_id).where(regs.c.id.in_(gone.end))
            ).all()
            if gone.end
            else []
        )
        ended = store.end_in(conn, gone.end, actor, f"not in the full export of {system}")
        let_go = [bytes(p) for p, _ in [*gone.release, *ended_keys]]
        for start in range(0, len(let_go), _CHUNK):
            conn.execute(
                delete(holdings).where(
                    holdings.c.system == system,
                    holdings.c.pseudonym.in_(let_go[start : start + _CHUNK]),
                )
            )
        # holdings of registrations that ended otherwise (expiry, a withdrawal by hand)
        present = select(regs.c.id).where(
            regs.c.pseudonym == holdings.c.pseudonym, regs.c.key_id == holdings.c.key_id
        )
        conn.execute(delete(holdings).where(holdings.c.system == system, ~present.exists()))
        return ended


class FeedRegistrar(Registrar):
    """The node's import for one feeding system: every stored line is held by that system."""

    def __init__(
        self,
        network: Network,
        org: Organisation,
        store: NodeStore,
        pseudonyms: PseudonymSource,
        system: str,
        clock: Callable[[], dt.datetime],
    ) -> None:
        super().__init__(network, org, store, pseudonyms, clock=clock, actor=f"feed:{system}")
        self.system = system
        self.seen: set[int] = set()  # the registrations stored lines named, this import

    def _store_batch(
        self,
        batch: Any,
        pseudonyms: Any,
        summary: ImportSummary,
        reactivate: bool,
        seen_registrations: set[int],
        seen_withdrawals: set[int],
    ) -> None:
        before = set(seen_registrations)
        super()._store_batch(
            batch, pseudonyms, summary, reactivate, seen_registrations, seen_withdrawals
        )
        new = seen_registrations - before
        hold(self.store, self.system, new, self.clock())
        self.seen |= new


@dataclass(frozen=True)
class FullExport:
    """What a system's full export did (or would do, when ``held``)."""

    summary: ImportSummary
    ended: int = 0
    ending: int = 0  # when held: how many it would end
    holding: int = 0  # registrations the system held before
    held: bool = False
    skipped: str = ""  # why nothing was ended: REFUSED_LINES or EMPTY


def apply_full_export(
    registrar: FeedRegistrar,
    table: Any,
    share: float | None,
) -> FullExport:
    """Import ``table`` as ``registrar.system``'s whole caseload: store and confirm every line,
    then end what the system no longer holds — unless lines were refused (then the file is not
    known to be whole), the file holds nothing, or it would end more than ``share`` of the
    system's registrations (then it is held: nothing is ended). ``share`` None: a beheerder
    confirmed it. A crash anywhere leaves a state that running it again completes."""
    summary = ImportSummary()
    started = registrar.clock()
    registrar.seen = set()
    registrar.import_table(table, summary, sync=False)
    seen = registrar.seen
    store, system = registrar.store, registrar.system
    if summary.rejected:
        return FullExport(summary, skipped=REFUSED_LINES)
    if summary.stored + summary.kept_withdrawn == 0:
        return FullExport(summary, skipped=EMPTY)
    gone = missing(store, system, seen, started)
    if share is not None and sync_ends_too_many(gone.holding, gone.ending, share):
        return FullExport(summary, ending=gone.ending, holding=gone.holding, held=True)
    ended = end_missing(store, system, seen, started, registrar.actor)
    summary.ended = ended
    return FullExport(summary, ended=ended, ending=ended, holding=gone.holding)


# --- files held back ------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeldFile:
    id: int
    system: str
    file_name: str
    held_at: dt.datetime
    ending: int
    holding: int
    decision: str | None
    decided_by: str | None
    decided_at: dt.datetime | None

    @property
    def share(self) -> float:
        return self.ending / self.holding if self.holding else 0.0


def _held(row: Any) -> HeldFile:
    return HeldFile(
        id=row.id,
        system=row.system,
        file_name=row.file_name,
        held_at=_utc(row.held_at) or row.held_at,
        ending=row.ending,
        holding=row.holding,
        decision=row.decision,
        decided_by=row.decided_by,
        decided_at=_utc(row.decided_at),
    )


def hold_file(
    store: NodeStore, system: str, file_name: str, ending: int, holding: int, at: dt.datetime
) -> int:
    """Remember a file held back (and raise an alarm in the trail). Returns its id."""
    with store.engine.begin() as conn:
        held_id = conn.execute(
            insert(HeldFileRow).values(
                system=system, file_name=file_name, held_at=at, ending=ending, holding=holding
            )
        ).inserted_primary_key
        store.trail.append(
            [
                AuditEntry(
                    event=Event.ALARM,
                    at=at,
                    organisation=store.organisation,
                    user=f"feed:{system}",
                    reason="feed-held-back",
                    details={
                        "system": system,
                        "file": file_name,
                        "message": f"the full export would end {ending} of the {holding} "
                        "registrations this system feeds; held back for a beheerder",
                    },
                )
            ],
            conn,
        )
    assert held_id is not None
    return int(held_id[0])


def held_files(store: NodeStore, *, open_only: bool = True) -> list[HeldFile]:
    """Files held back, oldest first; ``open_only``: those not yet done."""
    query = select(HeldFileRow).order_by(HeldFileRow.held_at, HeldFileRow.id)
    if open_only:
        query = query.where(HeldFileRow.done_at.is_(None))
    with store.engine.connect() as conn:
        return [_held(r) for r in conn.execute(query).all()]


def decide(store: NodeStore, held_id: int, decision: str, user: str, at: dt.datetime) -> HeldFile:
    """A beheerder's decision on a held file: ``confirm`` (the watcher then applies it, ending
    what it leaves out) or ``refuse`` (nothing is ended); recorded in the trail. A decision once
    taken stands (raises ``LookupError`` for an unknown, decided or done file)."""
    if decision not in (CONFIRM, REFUSE):
        raise ValueError(decision)
    with store.engine.begin() as conn:
        row = conn.execute(select(HeldFileRow).where(HeldFileRow.id == held_id)).first()
        if row is None or row.decision is not None or row.done_at is not None:
            raise LookupError(held_id)
        conn.execute(
            update(HeldFileRow)
            .where(HeldFileRow.id == held_id, HeldFileRow.decision.is_(None))
            .values(decision=decision, decided_by=user, decided_at=at)
        )
        store.trail.append(
            [
                AuditEntry(
                    event=Event.REGISTRATION,
                    at=at,
                    organisation=store.organisation,
                    user=user,
                    role="beheerder",
                    reason=f"feed held back: {decision}ed by beheerder",
                    details={
                        "system": row.system,
                        "file": row.file_name,
                        "ending": str(row.ending),
                        "holding": str(row.holding),
                    },
                )
            ],
            conn,
        )
        updated = conn.execute(select(HeldFileRow).where(HeldFileRow.id == held_id)).one()
    return _held(updated)


def held_done(store: NodeStore, held_id: int, at: dt.datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(HeldFileRow).where(HeldFileRow.id == held_id).values(done_at=at))


# --- health ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedHealth:
    """One feeding system's health, as ``node status``, the beheerder's page and the metrics say."""

    system: str
    drop_folder: bool
    last_success: dt.datetime | None
    lag: dt.timedelta | None  # since the last success (None: never)
    quiet_for: dt.timedelta  # since the last success, or since the node first knew the system
    last_event: str | None
    last_event_at: dt.datetime | None
    last_added: int
    last_confirmed: int
    last_ended: int
    last_refused: int
    refused_total: int
    last_problem: str | None
    held: int  # files waiting for a beheerder
    quiet_after: dt.timedelta | None

    @property
    def quiet(self) -> bool:
        return self.quiet_after is not None and self.quiet_for > self.quiet_after


def feed_health(
    store: NodeStore, feeds: Sequence[FeedSystem], now: dt.datetime
) -> list[FeedHealth]:
    """Every configured system's health (a system never heard from is quiet since the node first
    looked: the first read records that moment)."""
    if not feeds:
        return []
    with store.engine.begin() as conn:
        for feed in feeds:
            _ensure(conn, feed.name, now)
        return read_health(conn, feeds, now)


def read_health(conn: Any, feeds: Sequence[FeedSystem], now: dt.datetime) -> list[FeedHealth]:
    """Every configured system's health, changing nothing (``betrokken doctor``): a system the
    node has not looked at yet counts as known from ``now``."""
    rows = {
        r.system: r
        for r in conn.execute(
            select(FeedStatusRow).where(FeedStatusRow.system.in_([f.name for f in feeds]))
        ).all()
    }
    held = dict(
        conn.execute(
            select(HeldFileRow.system, func.count())
            .where(HeldFileRow.done_at.is_(None))
            .group_by(HeldFileRow.system)
        ).all()
    )
    out = []
    for feed in feeds:
        row = rows.get(feed.name)
        last = _utc(row.last_success_at) if row is not None else None
        since = last or (_utc(row.known_since) if row is not None else None) or now
        out.append(
            FeedHealth(
                system=feed.name,
                drop_folder=feed.drop_folder is not None,
                last_success=last,
                lag=now - last if last else None,
                quiet_for=max(now - since, dt.timedelta(0)),
                last_event=row.last_event if row is not None else None,
                last_event_at=_utc(row.last_event_at) if row is not None else None,
                last_added=row.last_added if row is not None else 0,
                last_confirmed=row.last_confirmed if row is not None else 0,
                last_ended=row.last_ended if row is not None else 0,
                last_refused=row.last_refused if row is not None else 0,
                refused_total=row.refused_total if row is not None else 0,
                last_problem=row.last_problem if row is not None else None,
                held=int(held.get(feed.name, 0)),
                quiet_after=dt.timedelta(minutes=feed.quiet_after_minutes)
                if feed.quiet_after_minutes
                else None,
            )
        )
    return out


def raise_quiet_alarms(
    store: NodeStore, feeds: Sequence[FeedSystem], now: dt.datetime
) -> list[FeedHealth]:
    """An alarm in the trail (and the log) for each system quiet longer than its
    ``quiet_after_minutes``, once per quiet spell (a success ends the spell). Returns the
    systems alarmed now."""
    alarmed = []
    for health in feed_health(store, feeds, now):
        if not health.quiet:
            continue
        with store.engine.begin() as conn:
            claimed = conn.execute(
                update(FeedStatusRow)
                .where(
                    FeedStatusRow.system == health.system, FeedStatusRow.quiet_alarm_at.is_(None)
                )
                .values(quiet_alarm_at=now)
            ).rowcount
            if not claimed:
                continue
            minutes = int(health.quiet_for.total_seconds() // 60)
            store.trail.append(
                [
                    AuditEntry(
                        event=Event.ALARM,
                        at=now,
                        organisation=store.organisation,
                        user=f"feed:{health.system}",
                        reason="feed-quiet",
                        details={
                            "system": health.system,
                            "message": f"no successful feed from {health.system} for {minutes} "
                            "minutes; its registrations are no longer confirmed",
                        },
                    )
                ],
                conn,
            )
        log.warning(
            "ALARM feed-quiet: no successful feed from %s for %d minutes (quiet_after_minutes %d)",
            health.system,
            minutes,
            int(health.quiet_after.total_seconds() // 60) if health.quiet_after else 0,
        )
        alarmed.append(health)
    return alarmed


Figure = tuple[str, str, float, dict[str, str]]


def feed_figures(store: NodeStore, feeds: Sequence[FeedSystem], now: dt.datetime) -> list[Figure]:
    """The feeds' health as metric figures (name, help, value, labels), one label: the system."""
    figures: list[Figure] = []
    for health in feed_health(store, feeds, now):
        labels = {"system": health.system}
        figures += [
            (
                "betrokken_node_feed_last_success_timestamp_seconds",
                "When the feeding system's last full export or call was applied, Unix time; "
                "0 never",
                health.last_success.timestamp() if health.last_success else 0.0,
                labels,
            ),
            (
                "betrokken_node_feed_quiet_seconds",
                "Seconds since the feeding system's last success (or since the node first knew it)",
                health.quiet_for.total_seconds(),
                labels,
            ),
            (
                "betrokken_node_feed_quiet",
                "1 when the feeding system is quiet longer than its quiet_after_minutes",
                1.0 if health.quiet else 0.0,
                labels,
            ),
            (
                "betrokken_node_feed_refused_lines",
                "Lines or calls of the feeding system refused, in total",
                float(health.refused_total),
                labels,
            ),
            (
                "betrokken_node_feed_held_files",
                "Full exports of the feeding system held back for a beheerder",
                float(health.held),
                labels,
            ),
        ]
    return figures
