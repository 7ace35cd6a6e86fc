"""A node's store: registrations (pseudonyms, never BSNs), its own trail, and answered questions.

A registration is looked up by its ``lookup_key``, a one-way hash of its pseudonym
(:func:`betrokken.crypto.question.lookup_key`): a question carries only that hash, so a node that
does not know the person never holds the pseudonym it was asked about (docs/adr/0024).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from betrokken import lifecycle
from betrokken.audit.log import RECORDS, AuditLog
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.clock import utcnow
from betrokken.config.schema import DisclosureLevel
from betrokken.crypto.note import NoteKey
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.crypto.question import lookup_key
from betrokken.db import Driver, Statements, driver_on, driver_transaction, make_engine
from betrokken.errors import QuestionRefused, Unavailable

# The lifecycle rules' names, as callers of the store know them.
from betrokken.lifecycle import KEEPABLE as KEEPABLE
from betrokken.lifecycle import Change as Change
from betrokken.lifecycle import Marker
from betrokken.node.outbox import Notice

AANMELDER_BASIS_CHARS = 1024


class Base(DeclarativeBase):
    metadata = MetaData()


class RegistrationRow(Base):
    """One registration. ``until`` is the last day it is active: the end the case system gave
    (``given_until``) or the retention term after the last confirmation (``confirmed_at``),
    whichever comes first. Lookups only compare ``until``; every write recomputes it."""

    __tablename__ = "registrations"
    __table_args__ = (UniqueConstraint("pseudonym", "key_id", name="uq_registration_pseudonym"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[bytes] = mapped_column(LargeBinary(64))
    key_id: Mapped[str] = mapped_column(String(64))
    domain: Mapped[str] = mapped_column(String(64))
    contact: Mapped[str] = mapped_column(String(256))
    since: Mapped[dt.date] = mapped_column(Date)
    until: Mapped[dt.date] = mapped_column(Date, index=True)
    reference: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    disclosure: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Added when registrations came to follow the case system (ADR 0011; additive: nullable, no
    # default needed for existing rows).
    given_until: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    # What a question looks the person up by: SHA-256("betrokken-lookup/v1" || 0x00 || pseudonym),
    # written with every insert (docs/adr/0024).
    lookup_key: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    # A short coded advice from the network file's advice_codes, shown with a hit.
    advice: Mapped[str | None] = mapped_column(String(64), nullable=True)


class WithdrawalRow(Base):
    """A registration withdrawn by hand, remembered so that an import does not undo it.

    Only the pseudonym (under this organisation's own key), the day of the withdrawal and the
    day it is forgotten: no reference, contact or dates of the case (docs/adr/0011).
    """

    __tablename__ = "withdrawals"
    __table_args__ = (UniqueConstraint("pseudonym", "key_id", name="uq_withdrawal_pseudonym"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[bytes] = mapped_column(LargeBinary(64))
    key_id: Mapped[str] = mapped_column(String(64))
    withdrawn_on: Mapped[dt.date] = mapped_column(Date)
    remember_until: Mapped[dt.date] = mapped_column(Date, index=True)


class AnsweredQuestion(Base):
    """The answer ids of questions this node answered, kept only as long as a question is fresh,
    each with its outbox entry until the trail writer has handled it.

    This is the replay check (P7): a question is answered at most once. Only a hash of the
    random answer id and the time are kept, and rows older than twice the network's freshness
    window are removed by the expiry loop. ``outbox`` is what the answer leaves for the trail
    writer (:mod:`betrokken.node.outbox`): for a hit the disclosure, for a miss padding, of a size
    that depends only on the number of persons, so a lookup writes the same one row in one
    transaction whatever it found (docs/adr/0024, "nothing from timing"). The writer turns it
    into trail records within a second and empties it.
    """

    __tablename__ = "answered_questions"

    answer_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    outbox: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class AnsweredRecord(Base):
    """The coordinator's log position and leaf hash of every question this node answered, so
    that the witness loop can ask for a sample of those records again and check that what the
    coordinator stores is what it was sent (docs/adr/0042). Nothing a node did not receive: the
    record came with the question. Written in the question's transaction, hit or miss the same
    row; kept as long as the coordinator must keep its log (``retention.audit_years``).
    ``seq`` numbers the rows, so a uniform sample is a few lookups by key."""

    __tablename__ = "answered_records"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    log_index: Mapped[int] = mapped_column(Integer)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    answered_on: Mapped[dt.date] = mapped_column(Date, index=True)
    alarmed: Mapped[bool] = mapped_column(Boolean, default=False)  # one alarm per damaged record


@dataclass(frozen=True)
class KeptRecord:
    """One question's record as this node answered under it (:class:`AnsweredRecord`)."""

    seq: int
    log_index: int
    leaf_hash: bytes
    answered_on: dt.date
    alarmed: bool


class NoticeRow(Base):
    """A notice for this organisation's contact point: a partner asked about a person known here
    and was told (docs/adr/0024, section 7). Written by the trail writer from the answer's outbox
    entry, in the transaction that records the disclosure; kept ``after_the_hit.notice_days``."""

    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("answer_id", "person", name="uq_notice_answer_person"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    answer_id: Mapped[str] = mapped_column(String(64))
    person: Mapped[int] = mapped_column(Integer)
    asked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    requester: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(256))
    on_behalf_of: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(64))
    case_reference: Mapped[str] = mapped_column(String(256))
    reference: Mapped[str] = mapped_column(String(256))
    level: Mapped[str] = mapped_column(String(16))
    asker_contact: Mapped[str] = mapped_column(String(256))
    # The aanmelder's basis for the purpose as the network file stated it when the notice was
    # written ("" when the asker asked on its own basis).
    aanmelder_basis: Mapped[str] = mapped_column(
        String(AANMELDER_BASIS_CHARS), default="", server_default=""
    )
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    read_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    acknowledged_by: Mapped[str | None] = mapped_column(String(128), nullable=True)


class FeedRequestRow(Base):
    """A call of the registration API by a case system, kept under its idempotency key so a
    retried call changes nothing and gets the same answer (node/feeds_api.py).

    ``body_sha256`` is a hash of the request (never the request: it holds BSNs); ``owner`` is the
    serving process that claimed the key, ``answer`` the JSON answer once it was applied (no
    BSN in it either). A key whose owner is another process and has no answer was left by a
    process that stopped mid-call: the next call with it takes it over and applies it again.
    """

    __tablename__ = "feed_requests"

    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answer: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


@dataclass(frozen=True)
class Claim:
    """What :meth:`NodeStore.claim_feed_request` found for an idempotency key."""

    state: str  # "claimed" (apply it), "done" (answer below), "busy", "mismatch"
    status: int | None = None
    answer: bytes | None = None


class _Contended(Exception):
    """Another trail writer claimed some of the same outbox entries first."""


@dataclass(frozen=True)
class Registration:
    """What a node knows about one person it is betrokken with (no name, no BSN).

    ``until`` is the end the case system gives; ``None`` is an open case, which stays active
    while it is confirmed and ends at the retention term after its last confirmation. Fields
    named in ``keep`` were not given: an existing registration keeps its own value for them
    (a new one takes the value given here, the caller's default).
    """

    pseudonym: Pseudonym
    domain: str
    contact: str
    since: dt.date
    until: dt.date | None = None
    reference: str | None = None
    disclosure: DisclosureLevel | None = None  # stricter than the policy: only 'domain'
    advice: str | None = None  # a code of the network file's advice_codes, shown with a hit
    keep: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Stored:
    """What became of one registration given to :meth:`NodeStore.upsert`."""

    change: Change
    until: dt.date | None = None  # last day active; None when nothing was stored
    given_until: dt.date | None = None  # the case system's end, when it gave one
    since: dt.date | None = None
    withdrawn_on: dt.date | None = None  # for KEPT_WITHDRAWN, and for a reactivation
    registration_id: int | None = None
    withdrawal_id: int | None = None

    @property
    def ends_by_confirmation(self) -> bool:
        """Whether the registration ends for lack of confirmation (not at the case's end)."""
        return self.until is not None and (
            self.given_until is None or self.given_until > self.until
        )


@dataclass(frozen=True)
class Hit:
    registration_id: int
    pseudonym: bytes = field(repr=False)
    key_id: str
    since: dt.date
    contact: str
    domain: str
    reference: str | None
    disclosure: DisclosureLevel | None
    advice: str | None = None


@dataclass(frozen=True)
class Status:
    active: int
    ended_not_yet_removed: int
    by_domain: dict[str, int]
    key_ids: dict[str, int]
    disclosures: int
    last_change: dt.datetime | None
    ending_unconfirmed: int = 0  # active, ending within ENDING_SOON_DAYS unless confirmed
    withdrawals_remembered: int = 0
    last_confirmation: dt.datetime | None = None
    # answered questions the trail writer has not recorded yet (the node is down, or just busy)
    answers_waiting: int = 0


ENDING_SOON_DAYS = 30
_REGISTRATIONS = RegistrationRow.__table__
_ANSWERED = AnsweredQuestion.__table__
_KEPT = AnsweredRecord.__table__
_NOTICES = NoticeRow.__table__
_CHUNK = 500
_KeyFilter = Callable[[type["RegistrationRow"] | type["WithdrawalRow"]], ColumnElement[bool]]


def _ident(reg: Registration) -> tuple[bytes, str]:
    return (reg.pseudonym.value, reg.pseudonym.key_id)


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


@contextmanager
def _writing(what: str) -> Iterator[None]:
    """A failed write is a clear 'unavailable' with the driver's message, never a traceback."""
    try:
        yield
    except OperationalError as exc:
        raise Unavailable(
            f"cannot {what} in the node's database ({exc.orig})",
            hint="check that the database is reachable and writable (disk space, permissions); "
            "nothing of the failed step was stored, so running the command again is safe",
        ) from None


class _AnswerStatements:
    """The statements of every question, in the driver's own SQL (:class:`Statements`), with
    SQLAlchemy's conversions of the columns whose values it converts (dates on SQLite)."""

    _COLUMNS = (
        "lookup_key, pseudonym, key_id, id, since, contact, domain, reference, disclosure, advice"
    )

    def __init__(self, engine: Engine) -> None:
        self.sql = Statements(engine)
        self.sqlite = self.sql.sqlite
        self.day = self.sql.bind(_REGISTRATIONS.c.until)
        self.since = self.sql.result(_REGISTRATIONS.c.since)
        self.at = self.sql.bind(_ANSWERED.c.at)
        self.answered = self.sql.sql(
            "INSERT INTO answered_questions (answer_hash, at, outbox) VALUES (?, ?, ?)"
        )
        self.on = self.sql.bind(_KEPT.c.answered_on)
        self.kept = self.sql.bind(_KEPT.c.alarmed)
        self.record = self.sql.sql(
            "INSERT INTO answered_records (log_index, leaf_hash, answered_on, alarmed) "
            "VALUES (?, ?, ?, ?)"
        )
        # PostgreSQL takes the lists as arrays (one statement, prepared once); SQLite one
        # statement per number of lookup keys and key ids (a handful, each prepared once).
        self._any = self.sql.sql(
            f"SELECT {self._COLUMNS} FROM registrations WHERE lookup_key = ANY(?) "  # noqa: S608
            "AND key_id = ANY(?) AND until >= ? AND since <= ?"
        )
        self._in: dict[tuple[int, int], str] = {}
        self.waiting = self.sql.sql(
            "SELECT answer_hash, outbox FROM answered_questions WHERE outbox IS NOT NULL "
            "ORDER BY at LIMIT ?"
        )
        self._claim_any = self.sql.sql(
            "UPDATE answered_questions SET outbox = NULL "
            "WHERE answer_hash = ANY(?) AND outbox IS NOT NULL"
        )
        self._claim_in: dict[int, str] = {}
        # The trail writer's notices, in the batch's transaction (docs/adr/0046).
        self.asked_at = self.sql.bind(_NOTICES.c.asked_at)
        self.notice = self.sql.sql(
            "INSERT INTO notices (answer_id, person, asked_at, requester, role, on_behalf_of, "
            "purpose, case_reference, reference, level, asker_contact, aanmelder_basis) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )

    def notice_row(self, notice: Notice) -> tuple[object, ...]:
        """The values of :attr:`notice` for ``notice``; ``read_at`` stays empty."""
        return (
            notice.answer_id,
            notice.person,
            self.asked_at(notice.asked_at),
            notice.requester,
            notice.role,
            notice.on_behalf_of,
            notice.purpose,
            notice.case,
            notice.reference,
            notice.level,
            notice.asker_contact,
            notice.aanmelder_basis[:AANMELDER_BASIS_CHARS],
        )

    def claim(self, hashes: list[str]) -> tuple[str, Sequence[object]]:
        """The statement that empties the outbox entries of ``hashes`` still waiting."""
        if not self.sqlite:
            return self._claim_any, (hashes,)
        text = self._claim_in.get(len(hashes))
        if text is None:
            text = self._claim_in[len(hashes)] = (
                "UPDATE answered_questions SET outbox = NULL WHERE answer_hash IN "  # noqa: S608
                f"({', '.join('?' * len(hashes))}) AND outbox IS NOT NULL"
            )
        return text, hashes

    def find(self, lookups: int, key_ids: int) -> str:
        if not self.sqlite:
            return self._any
        text = self._in.get((lookups, key_ids))
        if text is None:
            text = self._in[(lookups, key_ids)] = (
                f"SELECT {self._COLUMNS} FROM registrations WHERE lookup_key IN "  # noqa: S608
                f"({', '.join('?' * lookups)}) AND key_id IN ({', '.join('?' * key_ids)}) "
                "AND until >= ? AND since <= ?"
            )
        return text


class Answering:
    """A question's lookup and its answered mark in one transaction (NodeStore.answering)."""

    __slots__ = ("driver", "statements")

    def __init__(self, statements: _AnswerStatements, driver: Driver) -> None:
        self.statements = statements
        self.driver = driver

    def lookup(
        self, lookups: Sequence[bytes], key_ids: Iterable[str], today: dt.date
    ) -> dict[bytes, Hit]:
        """Active registrations among ``lookups`` (by lookup key), under one of ``key_ids``: one
        statement on the index of lookup_key, run by the driver (measured: through SQLAlchemy it
        cost about ten times the query)."""
        values = [bytes(v) for v in lookups]
        if not values:
            return {}
        keys = list(key_ids)
        st = self.statements
        day = st.day(today)
        if st.sqlite:
            params: list[object] = [*values, *keys, day, day]
        else:
            params = [values, keys, day, day]
        rows = self.driver.all(st.find(len(values), len(keys)), params)
        since = st.since
        return {
            bytes(lookup): Hit(
                registration_id=id_,
                pseudonym=bytes(pseudonym),
                key_id=key_id,
                since=since(since_),
                contact=contact,
                domain=domain,
                reference=reference,
                disclosure=DisclosureLevel(disclosure) if disclosure else None,
                advice=advice,
            )
            for (
                lookup,
                pseudonym,
                key_id,
                id_,
                since_,
                contact,
                domain,
                reference,
                disclosure,
                advice,
            ) in rows
        }

    def answered(
        self,
        answer_id: str,
        at: dt.datetime,
        outbox: bytes,
        also: Callable[[Driver], None] | None = None,
        record: tuple[int, bytes] | None = None,
    ) -> None:
        """The answered mark with its outbox entry (:meth:`NodeStore.answered`); a replay is
        refused (:class:`QuestionRefused`, kind ``replay``) and the transaction rolled back.
        ``record``: the question's log index and leaf hash, kept for the witness's sample."""
        answer_hash = hashlib.sha256(answer_id.encode()).hexdigest()
        st = self.statements
        try:
            self.driver.execute(st.answered, (answer_hash, st.at(at), outbox))
        except Exception as exc:
            if isinstance(exc, self.driver.integrity_error):
                raise QuestionRefused(
                    f"question {answer_id} was answered here before: a replay", kind="replay"
                ) from None
            raise
        if record is not None:
            self.driver.execute(st.record, (record[0], record[1], st.on(at.date()), st.kept(False)))
        if also is not None:  # e.g. keeping the checkpoint that came with the question
            also(self.driver)


class NodeStore:
    """Registrations and this node's own tamper-evident trail (same Merkle log as the coordinator).

    Every change and every disclosure is appended to the trail in the same transaction as the
    change itself. Misses leave nothing in the trail; their replay mark (a hash of the answer id)
    goes after twice the freshness window (P3).
    """

    def __init__(self, url: str, signer: NoteKey | None = None, origin: str = "node") -> None:
        self.engine = make_engine(url, Base.metadata, component="node")
        self.trail = AuditLog(self.engine, signer, origin)
        self.organisation = origin.rsplit("/", 1)[-1]
        self._statements = _AnswerStatements(self.engine)

    def _trail_entry(
        self, reason: str, pseudonym: bytes, key_id: str, actor: str, **details: str
    ) -> AuditEntry:
        p = Pseudonym(pseudonym, key_id)
        return AuditEntry(
            event=Event.REGISTRATION,
            at=utcnow(),
            organisation=self.organisation,
            user=actor,
            subjects=(Subject(pseudonym.hex(), key_id, p.fingerprint),),
            reason=reason,
            details={k: v for k, v in details.items() if v},
        )

    # --- registrations ----------------------------------------------------------------------
    def upsert(
        self,
        registrations: Sequence[Registration],
        actor: str = "",
        *,
        retention_days: int,
        now: dt.datetime | None = None,
        reactivate: bool = False,
        lines: tuple[int, int] | None = None,
    ) -> list[Stored]:
        """Add, update or confirm registrations in one transaction (all or nothing).

        Every registration given is a confirmation by the case system: an open case is then
        active until ``retention_days`` after ``now``; a given end comes first if it is earlier.
        A registration withdrawn by hand is kept withdrawn unless ``reactivate``. One whose
        result would already be ended is not stored (``ALREADY_ENDED``). Added and updated
        registrations get a trail record; a bare confirmation changes no fact and gets none.
        With ``lines`` (an import's batch, its first and last line) the trail gets one record
        per kind of change for the whole batch instead (:meth:`_batch_entries`, ADR 0022).
        """
        now = now or utcnow()
        today = now.date()
        latest = today + dt.timedelta(days=retention_days)
        results: list[Stored] = []
        entries: list[AuditEntry] = []
        with _writing("store registrations"), Session(self.engine) as session, session.begin():
            key = self._keys(registrations)
            existing = {
                (r.pseudonym, r.key_id): r
                for r in session.scalars(select(RegistrationRow).where(key(RegistrationRow)))
            }
            withdrawn = {
                (w.pseudonym, w.key_id): w
                for w in session.scalars(select(WithdrawalRow).where(key(WithdrawalRow)))
            }
            for reg in registrations:
                ident = _ident(reg)
                result, entry, marker = self._upsert_one(
                    session, reg, existing, withdrawn.get(ident), now, latest, reactivate, actor
                )
                if marker is Marker.EXTEND and ident in withdrawn:
                    # Seen again in the case system: remember the withdrawal for a term more.
                    kept = withdrawn[ident]
                    kept.remember_until = max(kept.remember_until, latest)
                elif marker is Marker.FORGET and ident in withdrawn:
                    session.delete(withdrawn.pop(ident))
                results.append(result)
                if entry is not None:
                    entries.append(entry)
            session.flush()  # new rows get their ids
            results = [
                replace(r, registration_id=existing[_ident(reg)].id)
                if r.registration_id is None and r.until is not None
                else r
                for r, reg in zip(results, registrations, strict=True)
            ]
            if lines is not None:
                entries = self._batch_entries(entries, lines, actor)
            if entries:
                self.trail.append(entries, session.connection())
        return results

    def _batch_entries(
        self, entries: Sequence[AuditEntry], lines: tuple[int, int], actor: str
    ) -> list[AuditEntry]:
        """One trail record per kind of change (added, updated) of an import batch.

        It names the batch's lines, how many registrations changed, and a SHA-256 over exactly
        what the per-registration records would have held (pseudonym, key id, reference, since,
        until, reactivation, in order), and lists each person by fingerprint only: enough for an
        access request (audit/subject.py looks fingerprints up) at a fraction of the bytes of a
        record per registration (measured: 77% of an import's bytes were its trail).
        """
        by_reason: dict[str, list[AuditEntry]] = {}
        for entry in entries:
            by_reason.setdefault(entry.reason, []).append(entry)
        batch = []
        for reason, group in by_reason.items():
            digest = hashlib.sha256()
            for entry in group:
                subject = entry.subjects[0]
                facts = [subject.pseudonym, subject.key_id, *sorted(entry.details.items())]
                digest.update(json.dumps(facts, separators=(",", ":")).encode() + b"\n")
            key_ids = sorted({e.subjects[0].key_id for e in group})
            batch.append(
                AuditEntry(
                    event=Event.REGISTRATION,
                    at=utcnow(),
                    organisation=self.organisation,
                    user=actor,
                    subjects=tuple(Subject("", "", e.subjects[0].fingerprint) for e in group),
                    reason=reason,
                    details={
                        "import_lines": f"{lines[0]}-{lines[1]}",
                        "registrations": str(len(group)),
                        "rows_sha256": digest.hexdigest(),
                        "key_id": ",".join(key_ids),
                    },
                )
            )
        return batch

    @staticmethod
    def _keys(registrations: Sequence[Registration]) -> _KeyFilter:
        values = list({r.pseudonym.value for r in registrations})
        key_ids = list({r.pseudonym.key_id for r in registrations})

        def condition(table: type[RegistrationRow] | type[WithdrawalRow]) -> ColumnElement[bool]:
            return table.pseudonym.in_(values) & table.key_id.in_(key_ids)

        return condition

    def _upsert_one(
        self,
        session: Session,
        reg: Registration,
        existing: dict[tuple[bytes, str], RegistrationRow],
        withdrawal: WithdrawalRow | None,
        now: dt.datetime,
        latest: dt.date,
        reactivate: bool,
        actor: str,
    ) -> tuple[Stored, AuditEntry | None, Marker]:
        """Apply what the lifecycle rules (:func:`betrokken.lifecycle.decide`) say of ``reg``."""
        ident = _ident(reg)
        row = existing.get(ident)
        given: dict[str, object] = {
            "domain": reg.domain,
            "contact": reg.contact,
            "since": reg.since,
            "given_until": reg.until,
            "reference": reg.reference,
            "disclosure": reg.disclosure.value if reg.disclosure else None,
            "advice": reg.advice,
        }
        held = None
        if row is not None:
            held = lifecycle.Held({c: getattr(row, c) for c in given}, row.until)
        decision = lifecycle.decide(
            given,
            held,
            keep=reg.keep,
            withdrawn=withdrawal is not None,
            reactivate=reactivate,
            today=now.date(),
            term_end=latest,
        )
        withdrawn_on = withdrawal.withdrawn_on if withdrawal is not None else None
        if not decision.stores:  # kept withdrawn, or already ended: nothing stored
            kept = withdrawal if decision.change is Change.KEPT_WITHDRAWN else None
            return (
                Stored(
                    decision.change,
                    given_until=decision.given_until,
                    since=decision.since,
                    withdrawn_on=kept.withdrawn_on if kept else None,
                    registration_id=row.id if row else None,
                    withdrawal_id=kept.id if kept else None,
                ),
                None,
                decision.marker,
            )
        assert decision.until is not None
        if row is None:
            row = RegistrationRow(
                pseudonym=reg.pseudonym.value,
                lookup_key=lookup_key(reg.pseudonym.value),
                key_id=reg.pseudonym.key_id,
                until=decision.until,
                confirmed_at=now,
                created_at=now,
                updated_at=now,
                **decision.facts,
            )
            session.add(row)
            existing[ident] = row
        else:
            for column, value in decision.facts.items():
                setattr(row, column, value)
            row.until = decision.until
            row.confirmed_at = now
            if decision.change is Change.UPDATED:
                row.updated_at = now
        stored = Stored(
            decision.change,
            until=decision.until,
            given_until=decision.given_until,
            since=decision.since,
            withdrawn_on=withdrawn_on,
            registration_id=row.id,
        )
        if not decision.recorded:
            return stored, None, decision.marker
        details = lifecycle.trail_details(decision, withdrawn_on)
        entry = self._trail_entry(
            decision.change.value, reg.pseudonym.value, reg.pseudonym.key_id, actor, **details
        )
        return stored, entry, decision.marker

    def withdraw(
        self,
        pseudonym: Pseudonym | None = None,
        reference: str | None = None,
        actor: str = "",
        *,
        remember_days: int,
        today: dt.date | None = None,
    ) -> int:
        """End registrations by hand (involvement ended). Returns how many were removed.

        The registration is removed; only its pseudonym is remembered, with the day, for
        ``remember_days`` (each import that still carries the person extends it), so that a
        later import of the same line does not register the person again.
        """
        condition: ColumnElement[bool]
        if pseudonym is not None:
            condition = (RegistrationRow.pseudonym == pseudonym.value) & (
                RegistrationRow.key_id == pseudonym.key_id
            )
        elif reference is not None:
            condition = RegistrationRow.reference == reference
        else:
            raise ValueError("withdraw needs a pseudonym or a reference")
        today = today or utcnow().date()
        remember = today + dt.timedelta(days=remember_days)
        return self._remove(condition, "withdrawn", actor, remember=(today, remember))

    def expire(self, today: dt.date, actor: str = "expiry") -> int:
        """Remove registrations whose last active day is before ``today`` (the case system's
        end, or the retention term after the last confirmation), and forget withdrawals whose
        term has passed. Returns how many registrations were removed."""
        self.forget_withdrawals(today)
        return self._remove(RegistrationRow.until < today, "expired", actor)

    def forget_withdrawals(self, today: dt.date) -> int:
        """Forget withdrawals remembered past their term. Returns how many."""
        with _writing("forget withdrawals"), self.engine.begin() as conn:
            result = conn.execute(delete(WithdrawalRow).where(WithdrawalRow.remember_until < today))
            return int(result.rowcount or 0)

    def end_missing(
        self,
        seen_registrations: set[int],
        seen_withdrawals: set[int],
        started: dt.datetime,
        actor: str = "",
    ) -> int:
        """After a full import (``--sync``): end every registration the file did not hold.

        Registrations confirmed after ``started`` (a ``register`` while the import ran) stay.
        Withdrawals the file no longer holds are forgotten: the case system closed the case.
        Returns how many registrations were ended.
        """
        with _writing("end registrations missing from the import"), self.engine.begin() as conn:
            missing = self._missing(conn, seen_registrations, started)
            markers = conn.execute(select(WithdrawalRow.id)).scalars()
            forget = [i for i in markers if i not in seen_withdrawals]
            for chunk in _chunks(forget):
                conn.execute(delete(WithdrawalRow).where(WithdrawalRow.id.in_(chunk)))
            ended = 0
            for chunk in _chunks(missing):
                ended += self._remove_in(
                    conn,
                    RegistrationRow.id.in_(chunk),
                    "withdrawn",
                    actor,
                    note="not in the full caseload (import --sync)",
                )
            return ended

    def end_in(self, conn: Connection, ids: Sequence[int], actor: str, note: str) -> int:
        """End the registrations ``ids`` in ``conn``'s transaction, each with a trail record (as
        :meth:`end_missing` does); for a feeding system's full export (:mod:`betrokken.node.feeds`).
        Returns how many were ended."""
        ended = 0
        for chunk in _chunks(list(ids)):
            ended += self._remove_in(
                conn, RegistrationRow.id.in_(chunk), "withdrawn", actor, note=note
            )
        return ended

    @staticmethod
    def _missing(conn: Connection, seen_registrations: set[int], started: dt.datetime) -> list[int]:
        candidates = conn.execute(
            select(RegistrationRow.id).where(
                or_(
                    RegistrationRow.confirmed_at.is_(None),
                    RegistrationRow.confirmed_at < started,
                )
            )
        ).scalars()
        return [i for i in candidates if i not in seen_registrations]

    def count_missing(self, seen_registrations: set[int], started: dt.datetime) -> int:
        """How many registrations :meth:`end_missing` would end (nothing changes here)."""
        with self.engine.connect() as conn:
            return len(self._missing(conn, seen_registrations, started))

    def _remove(
        self,
        condition: ColumnElement[bool],
        reason: str,
        actor: str,
        remember: tuple[dt.date, dt.date] | None = None,
    ) -> int:
        with _writing(f"record registrations as {reason}"), self.engine.begin() as conn:
            return self._remove_in(conn, condition, reason, actor, remember=remember)

    def _remove_in(
        self,
        conn: Connection,
        condition: ColumnElement[bool],
        reason: str,
        actor: str,
        remember: tuple[dt.date, dt.date] | None = None,
        note: str = "",
    ) -> int:
        rows = conn.execute(
            select(
                RegistrationRow.pseudonym, RegistrationRow.key_id, RegistrationRow.reference
            ).where(condition)
        ).all()
        if not rows:
            return 0
        conn.execute(delete(RegistrationRow).where(condition))
        if remember is not None:
            withdrawn_on, until = remember
            for pseudonym, key_id, _ in rows:
                marker = (WithdrawalRow.pseudonym == pseudonym) & (WithdrawalRow.key_id == key_id)
                updated = conn.execute(
                    update(WithdrawalRow)
                    .where(marker)
                    .values(withdrawn_on=withdrawn_on, remember_until=until)
                )
                if not updated.rowcount:
                    conn.execute(
                        insert(WithdrawalRow).values(
                            pseudonym=pseudonym,
                            key_id=key_id,
                            withdrawn_on=withdrawn_on,
                            remember_until=until,
                        )
                    )
        self.trail.append(
            [
                self._trail_entry(reason, r[0], r[1], actor, reference=r[2] or "", note=note)
                for r in rows
            ],
            conn,
        )
        return len(rows)

    def find(self, pseudonyms: Iterable[Pseudonym], today: dt.date) -> dict[bytes, Hit]:
        """Active registrations among ``pseudonyms`` (by pseudonym value), for the node's own
        tools; a question looks up by lookup key (:meth:`lookup`)."""
        pseudonyms = list(pseudonyms)
        found = self.lookup(
            [lookup_key(p.value) for p in pseudonyms], {p.key_id for p in pseudonyms}, today
        )
        return {hit.pseudonym: hit for hit in found.values()}

    def lookup(
        self, lookups: Sequence[bytes], key_ids: Iterable[str], today: dt.date
    ) -> dict[bytes, Hit]:
        """Active registrations among ``lookups`` (by lookup key), under one of ``key_ids``.

        The lookup of every question (:meth:`answering`), here in a transaction of its own.
        """
        values = list(lookups)
        if not values:
            return {}
        with self.answering() as answering:
            return answering.lookup(values, key_ids, today)

    # --- answering -----------------------------------------------------------------------------
    @contextmanager
    def answering(self) -> Iterator[Answering]:
        """A question's one connection and one transaction: its lookup, then the answered mark
        with its outbox entry (and what the witness keeps with it), committed durably at the end
        of the block; nothing of it is kept when the block fails (docs/adr/0032)."""
        with driver_transaction(self.engine) as driver:
            yield Answering(self._statements, driver)

    def answered(
        self,
        answer_id: str,
        at: dt.datetime,
        outbox: bytes,
        also: Callable[[Driver], None] | None = None,
        record: tuple[int, bytes] | None = None,
    ) -> None:
        """Mark a question answered with its outbox entry: one row, one durable transaction.

        Every answered question — hit or miss — writes the same one row of a size that depends
        only on the number of persons, so the time a node takes says nothing about whether it
        disclosed; the trail writer (:meth:`drain_outbox`) turns the entry into trail records. A
        question answered before is refused (:class:`QuestionRefused`, kind ``replay``) and
        nothing is recorded twice.
        """
        with self.answering() as answering:
            answering.answered(answer_id, at, outbox, also, record)

    def drain_outbox(
        self,
        records: Callable[[Sequence[bytes]], list[AuditEntry]],
        limit: int = 500,
        notices: Callable[[Sequence[bytes]], list[Notice]] | None = None,
        also: Callable[[Connection, Sequence[bytes]], None] | None = None,
    ) -> int:
        """Turn waiting outbox entries into trail records, in one transaction; how many entries.

        ``also`` writes what else the entries leave (a deferred question's request or timer,
        :mod:`betrokken.node.deferrals`) in the same transaction.

        ``records`` makes the trail records of a batch of entries (:mod:`betrokken.node.outbox`).
        An entry is emptied in the same transaction that appends its records (one statement for
        the batch), so each is recorded exactly once, also with two writers at a time (the one
        that did not claim the whole batch rolls back) or after a crash.
        """
        try:
            return self._drain_outbox(records, limit, notices, also)
        except _Contended:
            return 0  # rolled back; the other writer records them

    def _drain_outbox(
        self,
        records: Callable[[Sequence[bytes]], list[AuditEntry]],
        limit: int,
        notices: Callable[[Sequence[bytes]], list[Notice]] | None = None,
        also: Callable[[Connection, Sequence[bytes]], None] | None = None,
    ) -> int:
        st = self._statements
        with (
            _writing("write answered questions into the trail"),
            self.engine.begin() as conn,
            driver_on(conn) as driver,
        ):
            # The claim of the waiting entries as plain statements run by the driver: the
            # writer looks twice a second, also when nothing waits (docs/adr/0032).
            waiting = [(h, bytes(e)) for h, e in driver.all(st.waiting, (limit,))]
            if not waiting:
                return 0
            hashes = [answer_hash for answer_hash, _ in waiting]
            claimed = driver.execute(*st.claim(hashes)).rowcount
            if claimed != len(waiting):  # another writer took some: only ours
                raise _Contended()
            raw = [entry for _, entry in waiting]
            entries = records(raw)
            if entries:
                self.trail.append(entries, conn)
            told = notices(raw) if notices is not None else []
            if told:
                driver.many(st.notice, [st.notice_row(n) for n in told])
            if also is not None:
                also(conn, raw)
        return len(waiting)

    def outbox_waiting(self) -> int:
        """How many answered questions still wait for the trail writer."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(_ANSWERED.c.outbox.is_not(None))
                ).scalar_one()
            )

    def forget_answered(self, before: dt.datetime) -> int:
        """Remove answered-question marks older than ``before`` (past the freshness window) whose
        outbox entry the trail writer has handled."""
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(AnsweredQuestion).where(
                    AnsweredQuestion.at < before, AnsweredQuestion.outbox.is_(None)
                )
            )
        return int(result.rowcount or 0)

    # --- the records of answered questions, for the witness's sample (docs/adr/0042) ---------
    def kept_records(
        self, count: int, below: int, pick: Callable[[int, int], int]
    ) -> list[KeptRecord]:
        """Up to ``count`` rows at random (``pick(low, high)``: a number in [low, high]) plus the
        newest, of records below log index ``below`` (covered by the witnessed checkpoint);
        each is a lookup by key."""
        kept = _KEPT.c
        eligible = (kept.log_index < below,)
        with self.engine.connect() as conn:
            low, high = conn.execute(
                select(func.min(kept.seq), func.max(kept.seq)).where(*eligible)
            ).one()
            if low is None:
                return []
            rows = {}
            newest = conn.execute(
                select(_KEPT).where(*eligible).order_by(kept.seq.desc()).limit(1)
            ).first()
            if newest is not None:
                rows[newest.seq] = newest
            for _ in range(count):
                row = conn.execute(
                    select(_KEPT)
                    .where(kept.seq >= pick(int(low), int(high)), *eligible)
                    .order_by(kept.seq)
                    .limit(1)
                ).first()
                if row is not None:
                    rows[row.seq] = row
        return [
            KeptRecord(
                int(r.seq), int(r.log_index), bytes(r.leaf_hash), r.answered_on, bool(r.alarmed)
            )
            for r in sorted(rows.values(), key=lambda r: r.seq)
        ]

    def record_alarmed(self, seq: int) -> None:
        """Mark a kept record as alarmed about: its damage is one alarm, not one per interval."""
        with self.engine.begin() as conn:
            conn.execute(
                update(AnsweredRecord).where(AnsweredRecord.seq == seq).values(alarmed=True)
            )

    def forget_records(self, before: dt.date) -> int:
        """Remove kept records of questions answered before ``before`` (past the term the
        coordinator keeps its log)."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(AnsweredRecord).where(AnsweredRecord.answered_on < before))
        return int(result.rowcount or 0)

    def forget_notices(self, before: dt.datetime) -> int:
        """Delete notices of questions asked before ``before`` (past ``notice_days``); the trail
        keeps the disclosure and any acknowledgement."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(NoticeRow).where(NoticeRow.asked_at < before))
        return int(result.rowcount or 0)

    def disclosures(self) -> int:
        """How many disclosures this node's trail records (its own DPO's business)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(RECORDS)
                    .where(RECORDS.c.event == Event.DISCLOSURE.value)
                ).scalar_one()
            )

    def status(self, today: dt.date) -> Status:
        with self.engine.connect() as conn:
            active = conn.execute(
                select(func.count()).where(RegistrationRow.until >= today)
            ).scalar_one()
            ended = conn.execute(
                select(func.count()).where(RegistrationRow.until < today)
            ).scalar_one()
            by_domain: dict[str, int] = {
                str(domain): int(count)
                for domain, count in conn.execute(
                    select(RegistrationRow.domain, func.count())
                    .where(RegistrationRow.until >= today)
                    .group_by(RegistrationRow.domain)
                )
            }
            key_ids: dict[str, int] = {
                str(key): int(count)
                for key, count in conn.execute(
                    select(RegistrationRow.key_id, func.count()).group_by(RegistrationRow.key_id)
                )
            }
            last_change = conn.execute(select(func.max(RegistrationRow.updated_at))).scalar_one()
            soon = today + dt.timedelta(days=ENDING_SOON_DAYS)
            ending = conn.execute(
                select(func.count()).where(
                    RegistrationRow.until >= today,
                    RegistrationRow.until < soon,
                    or_(
                        RegistrationRow.given_until.is_(None),
                        RegistrationRow.given_until > RegistrationRow.until,
                    ),
                )
            ).scalar_one()
            remembered = conn.execute(
                select(func.count()).where(WithdrawalRow.remember_until >= today)
            ).scalar_one()
            last_confirmation = conn.execute(
                select(func.max(RegistrationRow.confirmed_at))
            ).scalar_one()
        return Status(
            active=int(active),
            ended_not_yet_removed=int(ended),
            by_domain={str(k): int(v) for k, v in by_domain.items()},
            key_ids={str(k): int(v) for k, v in key_ids.items()},
            disclosures=self.disclosures(),
            last_change=last_change,
            ending_unconfirmed=int(ending),
            withdrawals_remembered=int(remembered),
            last_confirmation=last_confirmation,
            answers_waiting=self.outbox_waiting(),
        )

    # --- the registration API's idempotency keys and feed state (node/feeds_api.py) ------------
    def claim_feed_request(
        self, system: str, key: str, body_sha256: str, owner: str, now: dt.datetime
    ) -> Claim:
        """Claim an idempotency key for ``owner``, or say what became of it before.

        ``claimed``: apply the call, then :meth:`finish_feed_request`; ``done``: it was applied,
        here is its answer; ``busy``: the same process applies it right now; ``mismatch``: the
        key was used for another request.
        """
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(FeedRequestRow).values(
                        system=system, key=key, body_sha256=body_sha256, owner=owner, claimed_at=now
                    )
                )
            return Claim("claimed")
        except IntegrityError:
            pass
        with _writing("read an idempotency key"), self.engine.begin() as conn:
            row = conn.execute(
                select(
                    FeedRequestRow.body_sha256,
                    FeedRequestRow.owner,
                    FeedRequestRow.status,
                    FeedRequestRow.answer,
                ).where(FeedRequestRow.system == system, FeedRequestRow.key == key)
            ).one_or_none()
            if row is None:  # released between the two statements: try once more
                return self.claim_feed_request(system, key, body_sha256, owner, now)
            if row.body_sha256 != body_sha256:
                return Claim("mismatch")
            if row.answer is not None:
                return Claim("done", row.status, bytes(row.answer))
            if row.owner == owner:
                return Claim("busy")
            taken = conn.execute(
                update(FeedRequestRow)
                .where(
                    FeedRequestRow.system == system,
                    FeedRequestRow.key == key,
                    FeedRequestRow.owner == row.owner,
                    FeedRequestRow.answer.is_(None),
                )
                .values(owner=owner, claimed_at=now)
            )
            return Claim("claimed" if taken.rowcount == 1 else "busy")

    def finish_feed_request(
        self, system: str, key: str, owner: str, status: int, answer: bytes
    ) -> None:
        """Keep the answer of an applied call under its idempotency key."""
        with _writing("keep the answer of a call"), self.engine.begin() as conn:
            conn.execute(
                update(FeedRequestRow)
                .where(
                    FeedRequestRow.system == system,
                    FeedRequestRow.key == key,
                    FeedRequestRow.owner == owner,
                )
                .values(status=status, answer=answer)
            )

    def release_feed_request(self, system: str, key: str, owner: str) -> None:
        """Let go of a claimed key whose call failed before it changed anything (to retry)."""
        with _writing("release an idempotency key"), self.engine.begin() as conn:
            conn.execute(
                delete(FeedRequestRow).where(
                    FeedRequestRow.system == system,
                    FeedRequestRow.key == key,
                    FeedRequestRow.owner == owner,
                    FeedRequestRow.answer.is_(None),
                )
            )

    def forget_feed_requests(self, before: dt.datetime) -> int:
        """Forget idempotency keys claimed before ``before``; how many."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(FeedRequestRow).where(FeedRequestRow.claimed_at < before))
        return int(result.rowcount or 0)

    def end_registrations(self, pseudonyms: Sequence[Pseudonym], actor: str, note: str = "") -> int:
        """End the registrations of ``pseudonyms`` now, as their case system says the
        involvement ended: removed (trail reason ``ended``), with no withdrawal remembered, so a
        later registration by the case system registers the person again. How many."""
        if not pseudonyms:
            return 0
        values = [p.value for p in pseudonyms]
        key_ids = list({p.key_id for p in pseudonyms})
        condition = RegistrationRow.pseudonym.in_(values) & RegistrationRow.key_id.in_(key_ids)
        with _writing("end registrations"), self.engine.begin() as conn:
            return self._remove_in(conn, condition, "ended", actor, note=note)
