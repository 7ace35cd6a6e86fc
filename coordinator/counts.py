"""Counted refusals kept durably until their minute's record is written (docs/adr/0017).

The coordinator counts a caller's refusals beyond the first few of a minute (and every call the
rate limit refuses) in memory, and writes one record per kind and caller when the minute is over.
A coordinator killed mid-minute (SIGKILL, power) would lose those counts: the refusals of a flood
left no record at all. So every flush (a few seconds) also writes the counts of the minute that
is still running into ``refusal_counts``; a coordinator that starts finds what a killed one kept
there and records it, marked as kept through a stop, before it answers anything.

What can still go wrong is bounded: counts of the last flush interval before a kill are lost, and
a kill between writing a finished minute's record and clearing its row records that count twice
(marked, so a DPO sees it). One coordinator process per database, as everywhere else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import DateTime, Integer, MetaData, String, Table, delete, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from betrokken.tally import Tally


class CountBase(DeclarativeBase):
    metadata = MetaData()


class RefusalCountRow(CountBase):
    """One kind of refusal of one caller in one minute that is still running, as counted."""

    __tablename__ = "refusal_counts"

    caller: Mapped[str] = mapped_column(String(256), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    methods: Mapped[str] = mapped_column(String(512))


_COUNTS: Table = RefusalCountRow.__table__  # type: ignore[assignment]


def _utc(moment: dt.datetime) -> dt.datetime:  # SQLite returns naive UTC
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def keep(engine: Engine, running: Sequence[Tally]) -> None:
    """Replace what is kept by the counts of the minutes still running (one transaction)."""
    with engine.begin() as conn:
        conn.execute(delete(_COUNTS))
        if running:
            conn.execute(
                insert(_COUNTS),
                [
                    {
                        "caller": t.caller[:256],
                        "kind": t.kind[:64],
                        "minute": t.minute,
                        "count": t.count,
                        "methods": ",".join(t.methods)[:512],
                    }
                    for t in running
                ],
            )


def kept(engine: Engine) -> list[Tally]:
    """What a coordinator that stopped without writing it kept (cleared by the next :func:`keep`,
    once the records are written)."""
    with engine.connect() as conn:
        rows = conn.execute(select(*_COUNTS.columns).order_by(_COUNTS.c.minute)).mappings().all()
    return [
        Tally(
            row["caller"],
            row["kind"],
            _utc(row["minute"]),
            row["count"],
            tuple(m for m in row["methods"].split(",") if m),
        )
        for row in rows
    ]
