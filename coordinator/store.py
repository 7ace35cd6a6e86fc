"""The coordinator's audit records: every query, outcome and refusal, written before answering.

Append-only: a query is recorded (and committed) before any node is asked; its outcome is a second
record. If a record cannot be written the coordinator refuses to answer (fail closed, P6).
The coordinator keeps nothing else: no copy of any node's registrations (P4).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Integer, MetaData, String, Text, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from betrokken.db import make_engine
from betrokken.errors import AuditUnavailable


class Base(DeclarativeBase):
    metadata = MetaData()


class EventType(StrEnum):
    QUERY = "query"
    OUTCOME = "outcome"
    REFUSAL = "refusal"


class AuditRow(Base):
    __tablename__ = "audit_records"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    answer_id: Mapped[str] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    requester_organisation: Mapped[str] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(String(128))
    acted_for: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(64))
    legal_basis: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True)
class AuditRecord:
    answer_id: str
    event: EventType
    at: dt.datetime
    requester_organisation: str
    user: str
    acted_for: str
    role: str
    purpose: str
    legal_basis: str
    body: dict[str, Any]


class AuditStore:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, Base.metadata)

    def append(self, record: AuditRecord) -> int:
        """Write one record durably; raise AuditUnavailable if that is not possible."""
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    insert(AuditRow)
                    .values(
                        answer_id=record.answer_id,
                        event=record.event.value,
                        at=record.at,
                        requester_organisation=record.requester_organisation,
                        user=record.user,
                        acted_for=record.acted_for,
                        role=record.role,
                        purpose=record.purpose,
                        legal_basis=record.legal_basis,
                        body=json.dumps(record.body, sort_keys=True, separators=(",", ":")),
                    )
                    .returning(AuditRow.seq)
                )
                return int(result.scalar_one())
        except SQLAlchemyError as exc:
            cause = type(getattr(exc, "orig", None) or exc).__name__
            raise AuditUnavailable(
                f"the audit record could not be written ({cause})",
                hint="the coordinator's operator must restore its database; nothing was asked",
            ) from None

    def records(self, answer_id: str | None = None) -> list[AuditRecord]:
        statement = select(AuditRow).order_by(AuditRow.seq)
        if answer_id is not None:
            statement = statement.where(AuditRow.answer_id == answer_id)
        with self.engine.connect() as conn:
            rows = conn.execute(statement).all()
        return [
            AuditRecord(
                answer_id=row.answer_id,
                event=EventType(row.event),
                at=row.at,
                requester_organisation=row.requester_organisation,
                user=row.user,
                acted_for=row.acted_for,
                role=row.role,
                purpose=row.purpose,
                legal_basis=row.legal_basis,
                body=json.loads(row.body),
            )
            for row in rows
        ]
