"""The found partner's notices: read, marked read, acknowledged (docs/adr/0024, section 7).

The trail writer keeps a notice per hit at level ``organisation`` or ``domain``
(:func:`betrokken.node.outbox.notices`, :class:`betrokken.node.store.NoticeRow`). This module is
the one door the portal's "Meldingen" page uses, beside the node it runs with: it reads the
notices from the organisation's own database and writes what its users do with them.
Acknowledging is a record in the organisation's trail, in the same transaction as the notice's
state, so the DPO sees who acknowledged which hit and when.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, RowMapping, func, select, update

from betrokken.audit.log import AuditLog
from betrokken.audit.record import AuditEntry, Event
from betrokken.clock import utcnow
from betrokken.errors import BadInput
from betrokken.node.store import NoticeRow


@dataclass(frozen=True)
class Notice:
    """One notice as its page shows it."""

    id: int
    answer_id: str
    asked_at: dt.datetime
    requester: str
    role: str
    on_behalf_of: str
    purpose: str
    case: str
    reference: str
    level: str
    asker_contact: str
    aanmelder_basis: str  # the aanmelder's basis as the network file stated it ("" if none)
    read_at: dt.datetime | None
    read_by: str
    acknowledged_at: dt.datetime | None
    acknowledged_by: str

    @property
    def unread(self) -> bool:
        return self.read_at is None


def _notice(row: RowMapping) -> Notice:
    return Notice(
        id=row["id"],
        answer_id=row["answer_id"],
        asked_at=_utc(row["asked_at"]) or row["asked_at"],
        requester=row["requester"],
        role=row["role"],
        on_behalf_of=row["on_behalf_of"],
        purpose=row["purpose"],
        case=row["case_reference"],
        reference=row["reference"],
        level=row["level"],
        asker_contact=row["asker_contact"],
        aanmelder_basis=row["aanmelder_basis"] or "",
        read_at=_utc(row["read_at"]),
        read_by=row["read_by"] or "",
        acknowledged_at=_utc(row["acknowledged_at"]),
        acknowledged_by=row["acknowledged_by"] or "",
    )


def _utc(moment: dt.datetime | None) -> dt.datetime | None:  # SQLite returns naive UTC
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


_COLUMNS = list(NoticeRow.__table__.columns)


def list_notices(engine: Engine) -> list[Notice]:
    """Every notice kept, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(*_COLUMNS).order_by(NoticeRow.asked_at.desc())).mappings()
        return [_notice(row) for row in rows]


def unread_count(engine: Engine) -> int:
    """How many notices nobody has opened yet (the portal's menu shows it)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(NoticeRow).where(NoticeRow.read_at.is_(None))
            ).scalar_one()
        )


def open_notice(engine: Engine, notice_id: int, user: str) -> Notice:
    """The notice, marked read by ``user`` when nobody had read it yet."""
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            update(NoticeRow)
            .where(NoticeRow.id == notice_id, NoticeRow.read_at.is_(None))
            .values(read_at=now, read_by=user)
        )
        row = conn.execute(select(*_COLUMNS).where(NoticeRow.id == notice_id)).mappings().first()
    if row is None:
        raise BadInput(
            f"there is no notice {notice_id}",
            hint="it may have passed its term (after_the_hit.notice_days); see the list",
        )
    return _notice(row)


def acknowledge(
    engine: Engine, trail: AuditLog, organisation: str, notice_id: int, user: str, role: str
) -> Notice:
    """``user`` acknowledges the notice: its state and a ``notice`` record in the trail, in one
    transaction. Acknowledging twice changes nothing and writes nothing."""
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(*_COLUMNS).where(NoticeRow.id == notice_id)).mappings().first()
        if row is None:
            raise BadInput(
                f"there is no notice {notice_id}",
                hint="it may have passed its term (after_the_hit.notice_days); see the list",
            )
        notice = _notice(row)
        if notice.acknowledged_at is not None:
            return notice
        conn.execute(
            update(NoticeRow)
            .where(NoticeRow.id == notice_id)
            .values(
                acknowledged_at=now,
                acknowledged_by=user,
                read_at=notice.read_at or now,
                read_by=notice.read_by or user,
            )
        )
        trail.append(
            [
                AuditEntry(
                    event=Event.NOTICE,
                    at=now,
                    organisation=organisation,
                    answer_id=notice.answer_id,
                    user=user,
                    role=role,
                    purpose=notice.purpose,
                    reason="acknowledged",
                    details={
                        "asked_by": notice.requester,
                        "on_behalf_of": notice.on_behalf_of,
                        **(
                            {"aanmelder_basis": notice.aanmelder_basis}
                            if notice.aanmelder_basis
                            else {}
                        ),
                        "registration_reference": notice.reference,
                    },
                )
            ],
            conn,
        )
    return open_notice(engine, notice_id, user)
