"""The register of access requests (inzageverzoeken): when each arrived, its deadline, when the
letter was made and when it was sent.

Kept in the organisation's own database (the node's), table ``access_requests`` (migration
``node_0011``), beside the portal's accounts. It holds no BSN and no name: the organisation's
reference (which the FG's correspondence file uses too) and the fingerprint (``ps-…``) of the
person's pseudonym under the organisation's own key, so the FG can find the request's records in
the log. The deadline is one month after receipt (:func:`betrokken.rules.access_request_deadline`).
Each request remembers the answer id of the FG's question to the partners (``answer_id``), whose
late answers the letter waits for: every partner's FG agrees or restricts within the purpose's
term (docs/adr/0039); :func:`betrokken.rules.access_request_ask_by` is the last day to ask so
that the term ends before the deadline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Date, DateTime, Engine, Integer, MetaData, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from betrokken.clock import utcnow
from betrokken.rules import access_request_deadline


class RegisterBase(DeclarativeBase):
    metadata = MetaData()


class AccessRequestRow(RegisterBase):
    __tablename__ = "access_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(100), default="")
    fingerprint: Mapped[str] = mapped_column(String(64))
    received_on: Mapped[dt.date] = mapped_column(Date)
    deadline: Mapped[dt.date] = mapped_column(Date)
    made_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    made_by: Mapped[str] = mapped_column(String(128))
    sent_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    sent_by: Mapped[str] = mapped_column(String(128), default="")
    # the FG's question to the partners (migration node_0016, docs/adr/0039); "" before it
    answer_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    asked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class AccessRequest:
    id: int
    reference: str
    fingerprint: str
    received_on: dt.date
    deadline: dt.date
    made_at: dt.datetime
    made_by: str
    sent_on: dt.date | None
    sent_by: str
    answer_id: str = ""
    asked_at: dt.datetime | None = None

    def overdue(self, today: dt.date) -> bool:
        return self.sent_on is None and today > self.deadline

    def days_left(self, today: dt.date) -> int:
        return (self.deadline - today).days


def _request(row: AccessRequestRow) -> AccessRequest:
    made_at = row.made_at if row.made_at.tzinfo else row.made_at.replace(tzinfo=dt.UTC)
    return AccessRequest(
        row.id,
        row.reference,
        row.fingerprint,
        row.received_on,
        row.deadline,
        made_at,
        row.made_by,
        row.sent_on,
        row.sent_by,
        row.answer_id or "",
        _utc(row.asked_at) if row.asked_at is not None else None,
    )


def _utc(moment: dt.datetime) -> dt.datetime:  # SQLite returns naive UTC
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class Register:
    """The access-request register in the organisation's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def letter_made(
        self, reference: str, fingerprint: str, received_on: dt.date, made_by: str
    ) -> AccessRequest:
        """Record that a letter was made; the same reference (or, without one, the same person
        received the same day) is one request, made again."""
        with Session(self.engine) as session, session.begin():
            query = select(AccessRequestRow).where(AccessRequestRow.sent_on.is_(None))
            if reference:
                query = query.where(AccessRequestRow.reference == reference)
            else:
                query = query.where(
                    AccessRequestRow.reference == "",
                    AccessRequestRow.fingerprint == fingerprint,
                    AccessRequestRow.received_on == received_on,
                )
            row = session.scalars(query).first()
            if row is None:
                row = AccessRequestRow(reference=reference, sent_by="")
                session.add(row)
            row.fingerprint = fingerprint
            row.received_on = received_on
            row.deadline = access_request_deadline(received_on)
            row.made_at = utcnow()
            row.made_by = made_by
            session.flush()
            return _request(row)

    def asked(self, request_id: int, answer_id: str, at: dt.datetime) -> None:
        """Remember the FG's question to the partners for a request (its answer id and time)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(AccessRequestRow, request_id)
            if row is not None:
                row.answer_id, row.asked_at = answer_id, at

    def sent(self, request_id: int, on: dt.date, by: str) -> AccessRequest | None:
        with Session(self.engine) as session, session.begin():
            row = session.get(AccessRequestRow, request_id)
            if row is None:
                return None
            if row.sent_on is None:
                row.sent_on, row.sent_by = on, by
            session.flush()
            return _request(row)

    def requests(self) -> list[AccessRequest]:
        """Open requests first, nearest deadline first; then the sent ones, newest first."""
        with Session(self.engine) as session:
            rows = [_request(r) for r in session.scalars(select(AccessRequestRow))]
        open_ = sorted((r for r in rows if r.sent_on is None), key=lambda r: (r.deadline, r.id))
        done = sorted((r for r in rows if r.sent_on is not None), key=lambda r: -r.id)
        return open_ + done
