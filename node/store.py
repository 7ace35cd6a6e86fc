"""A node's store: registrations (pseudonyms, never BSNs), its own trail, and answered questions."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import (
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from betrokken.audit.log import RECORDS, AuditLog
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.clock import utcnow
from betrokken.config.schema import DisclosureLevel
from betrokken.crypto.note import NoteKey
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.db import make_engine
from betrokken.errors import QuestionRefused


class Base(DeclarativeBase):
    metadata = MetaData()


class RegistrationRow(Base):
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


class AnsweredQuestion(Base):
    """The answer ids of questions this node answered, kept only as long as a question is fresh.

    This is the replay check (P7): a question is answered at most once. Only a hash of the
    random answer id and the time are kept — nothing about the persons asked about — and rows
    older than twice the network's freshness window are removed by the expiry loop.
    """

    __tablename__ = "answered_questions"

    answer_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class Change(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Registration:
    """What a node knows about one person it is betrokken with (no name, no BSN)."""

    pseudonym: Pseudonym
    domain: str
    contact: str
    since: dt.date
    until: dt.date
    reference: str | None = None
    disclosure: DisclosureLevel | None = None  # stricter than the policy: only 'domain'


@dataclass(frozen=True)
class Hit:
    registration_id: int
    since: dt.date
    contact: str
    domain: str
    reference: str | None
    disclosure: DisclosureLevel | None


@dataclass(frozen=True)
class Status:
    active: int
    ended_not_yet_removed: int
    by_domain: dict[str, int]
    key_ids: dict[str, int]
    disclosures: int
    last_change: dt.datetime | None


class NodeStore:
    """Registrations and this node's own tamper-evident trail (same Merkle log as the coordinator).

    Every change and every disclosure is appended to the trail in the same transaction as the
    change itself. Misses leave nothing, in the trail or anywhere (P3).
    """

    def __init__(self, url: str, signer: NoteKey | None = None, origin: str = "node") -> None:
        self.engine = make_engine(url, Base.metadata)
        self.trail = AuditLog(self.engine, signer, origin)
        self.organisation = origin.rsplit("/", 1)[-1]

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
    def upsert(self, registrations: Sequence[Registration], actor: str = "") -> list[Change]:
        """Add or update registrations in one transaction (all or nothing), with trail records."""
        changes: list[Change] = []
        with Session(self.engine) as session, session.begin():
            entries = []
            for reg in registrations:
                change = self._upsert_one(session, reg)
                changes.append(change)
                if change is not Change.UNCHANGED:
                    entries.append(
                        self._trail_entry(
                            change.value,
                            reg.pseudonym.value,
                            reg.pseudonym.key_id,
                            actor,
                            reference=reg.reference or "",
                            since=reg.since.isoformat(),
                            until=reg.until.isoformat(),
                        )
                    )
            if entries:
                self.trail.append(entries, session.connection())
        return changes

    def _upsert_one(self, session: Session, reg: Registration) -> Change:
        row = session.scalars(
            select(RegistrationRow).where(
                RegistrationRow.pseudonym == reg.pseudonym.value,
                RegistrationRow.key_id == reg.pseudonym.key_id,
            )
        ).one_or_none()
        values = {
            "domain": reg.domain,
            "contact": reg.contact,
            "since": reg.since,
            "until": reg.until,
            "reference": reg.reference,
            "disclosure": reg.disclosure.value if reg.disclosure else None,
        }
        if row is None:
            session.add(
                RegistrationRow(
                    pseudonym=reg.pseudonym.value, key_id=reg.pseudonym.key_id, **values
                )
            )
            session.flush()
            return Change.ADDED
        if all(getattr(row, key) == value for key, value in values.items()):
            return Change.UNCHANGED
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        return Change.UPDATED

    def withdraw(
        self, pseudonym: Pseudonym | None = None, reference: str | None = None, actor: str = ""
    ) -> int:
        """Remove registrations (involvement ended). Returns how many were removed."""
        condition: ColumnElement[bool]
        if pseudonym is not None:
            condition = (RegistrationRow.pseudonym == pseudonym.value) & (
                RegistrationRow.key_id == pseudonym.key_id
            )
        elif reference is not None:
            condition = RegistrationRow.reference == reference
        else:
            raise ValueError("withdraw needs a pseudonym or a reference")
        return self._remove(condition, "withdrawn", actor)

    def expire(self, today: dt.date, actor: str = "expiry") -> int:
        """Remove registrations whose term ended before ``today``."""
        return self._remove(RegistrationRow.until < today, "expired", actor)

    def _remove(self, condition: ColumnElement[bool], reason: str, actor: str) -> int:
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(
                    RegistrationRow.pseudonym, RegistrationRow.key_id, RegistrationRow.reference
                ).where(condition)
            ).all()
            if not rows:
                return 0
            conn.execute(delete(RegistrationRow).where(condition))
            self.trail.append(
                [self._trail_entry(reason, r[0], r[1], actor, reference=r[2] or "") for r in rows],
                conn,
            )
            return len(rows)

    def find(self, pseudonyms: Iterable[Pseudonym], today: dt.date) -> dict[bytes, Hit]:
        """Active registrations among ``pseudonyms`` (by pseudonym value)."""
        values = [p.value for p in pseudonyms]
        if not values:
            return {}
        key_ids = {p.key_id for p in pseudonyms}
        with Session(self.engine) as session:
            rows = session.scalars(
                select(RegistrationRow).where(
                    RegistrationRow.pseudonym.in_(values),
                    RegistrationRow.key_id.in_(key_ids),
                    RegistrationRow.until >= today,
                    RegistrationRow.since <= today,
                )
            ).all()
            hits: dict[bytes, Hit] = {}
            for reg in rows:
                hits[reg.pseudonym] = Hit(
                    registration_id=reg.id,
                    since=reg.since,
                    contact=reg.contact,
                    domain=reg.domain,
                    reference=reg.reference,
                    disclosure=DisclosureLevel(reg.disclosure) if reg.disclosure else None,
                )
        return hits

    # --- answering -----------------------------------------------------------------------------
    def answered(self, answer_id: str, at: dt.datetime, trail: Sequence[AuditEntry] = ()) -> None:
        """Mark a question answered and record its disclosures, in one durable transaction.

        Every answered question — hit or miss — costs the same one transaction, so the time a node
        takes says little about whether it disclosed. A question answered before is refused
        (:class:`QuestionRefused`, kind ``replay``) and nothing is recorded twice.
        """
        answer_hash = hashlib.sha256(answer_id.encode()).hexdigest()
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(AnsweredQuestion).values(answer_hash=answer_hash, at=at))
                if trail:
                    self.trail.append(trail, conn)
        except IntegrityError:
            raise QuestionRefused(
                f"question {answer_id} was answered here before: a replay", kind="replay"
            ) from None

    def forget_answered(self, before: dt.datetime) -> int:
        """Remove answered-question marks older than ``before`` (past the freshness window)."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(AnsweredQuestion).where(AnsweredQuestion.at < before))
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
        return Status(
            active=int(active),
            ended_not_yet_removed=int(ended),
            by_domain={str(k): int(v) for k, v in by_domain.items()},
            key_ids={str(k): int(v) for k, v in key_ids.items()},
            disclosures=self.disclosures(),
            last_change=last_change,
        )
