"""What the coordinator remembers of each node outside the node: the largest size of its log the
node cosigned (a cosignature is the node's signed word that it accepted that checkpoint).

A node that later says it accepted fewer records (``WitnessStale`` with a smaller size) has a
database that went back — deleted, restored from an older copy, a lost WAL — and may have lost
registrations with it. Until it cosigns again at its anchored size it is neither counted as a
witness nor asked: its organisation is answered "failed", never "not involved" (P5). The event is
kept (``went_back_at``, ``went_back_to``) and shown by ``betrokken status``, so the coordinator's
operator can ask the node's operator what happened. The node itself refuses to serve on an empty
or older database (node/anchor.py); this is the second line, for a node whose state file went
back with its database.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass

from sqlalchemy import (
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

log = logging.getLogger("betrokken.coordinator")
# A node's clock further off than this from the coordinator's is warned about (once per episode):
# a quarter of the default freshness window, so it is seen before questions are refused.
CLOCK_WARNING = 30.0


class AnchorBase(DeclarativeBase):
    metadata = MetaData()


class NodeAnchorRow(AnchorBase):
    __tablename__ = "node_anchors"

    organisation: Mapped[str] = mapped_column(String(64), primary_key=True)
    cosigned_size: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    went_back_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    went_back_to: Mapped[int | None] = mapped_column(Integer, nullable=True)
    clock_offset: Mapped[float | None] = mapped_column(Float, nullable=True)


ANCHORS: Table = NodeAnchorRow.__table__  # type: ignore[assignment]
_UPDATE_ANCHOR = (
    update(ANCHORS)
    .where(ANCHORS.c.organisation == bindparam("org"))
    .values(
        cosigned_size=bindparam("new_cosigned_size"),
        updated_at=bindparam("new_updated_at"),
        went_back_at=bindparam("new_went_back_at"),
        went_back_to=bindparam("new_went_back_to"),
        clock_offset=bindparam("new_clock_offset"),
    )
)


@dataclass
class NodeAnchor:
    organisation: str
    cosigned_size: int
    updated_at: dt.datetime
    went_back_at: dt.datetime | None = None
    went_back_to: int | None = None
    behind: bool = False  # went back and has not cosigned its anchored size again
    # seconds the node's clock is ahead of the coordinator's (its last cosignature's signed time)
    clock_offset: float | None = None

    def describe(self) -> str:
        text = f"{self.organisation}: cosigned {self.cosigned_size:,} records"
        if self.clock_offset is not None:
            way = "ahead of" if self.clock_offset >= 0 else "behind"
            text += f"; its clock {abs(self.clock_offset):.0f} s {way} the coordinator's"
        if self.went_back_at is not None:
            text += (
                f"; its database went back at {self.went_back_at:%Y-%m-%d %H:%M} UTC to "
                f"{self.went_back_to or 0:,} records"
                + (" (not asked until it catches up)" if self.behind else " (caught up since)")
            )
        return text


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class NodeAnchors:
    """The anchors, in memory with the database behind them (written as they grow, at most every
    flush; a node going back at once)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._dirty: set[str] = set()
        with Session(engine) as session:
            self._anchors = {
                row.organisation: NodeAnchor(
                    row.organisation,
                    row.cosigned_size,
                    row.updated_at,
                    row.went_back_at,
                    row.went_back_to,
                    behind=row.went_back_at is not None and row.went_back_at >= row.updated_at,
                    clock_offset=row.clock_offset,
                )
                for row in session.scalars(select(NodeAnchorRow))
            }

    def sizes(self) -> dict[str, int]:
        with self._lock:
            return {org: a.cosigned_size for org, a in self._anchors.items()}

    def all(self) -> list[NodeAnchor]:
        with self._lock:
            return [NodeAnchor(**vars(a)) for a in sorted(self._anchors.values(), key=str)]

    def behind(self, organisation: str) -> NodeAnchor | None:
        with self._lock:
            anchor = self._anchors.get(organisation)
            return NodeAnchor(**vars(anchor)) if anchor is not None and anchor.behind else None

    def cosigned(self, organisation: str, size: int) -> None:
        """``organisation`` cosigned a checkpoint of ``size`` records."""
        with self._lock:
            anchor = self._anchors.get(organisation)
            if anchor is None:
                self._anchors[organisation] = NodeAnchor(organisation, size, _now())
            elif size >= anchor.cosigned_size:
                if anchor.behind:
                    log.info("node %s cosigned %d records again: caught up", organisation, size)
                anchor.cosigned_size, anchor.updated_at, anchor.behind = size, _now(), False
            else:
                return
            self._dirty.add(organisation)

    def clock(self, organisation: str, offset: float, window: float = CLOCK_WARNING) -> None:
        """The node's clock is ``offset`` seconds ahead of ours (negative: behind), measured from
        a cosignature's signed time. Logged once when it goes beyond ``window`` (an episode),
        and once when it is back."""
        with self._lock:
            anchor = self._anchors.get(organisation)
            if anchor is None:
                return
            before = anchor.clock_offset
            anchor.clock_offset = offset
            if before is None or abs(before - offset) >= 1:
                self._dirty.add(organisation)
        was_off = before is not None and abs(before) > window
        if abs(offset) > window and not was_off:
            log.warning(
                "node %s's clock is %.0f s %s the coordinator's (its cosignature's time): "
                "questions will be refused as stale there; tell its operator (NTP)",
                organisation,
                abs(offset),
                "ahead of" if offset > 0 else "behind",
            )
        elif was_off and abs(offset) <= window:
            log.info("node %s's clock agrees with the coordinator's again", organisation)

    def accepted(self, organisation: str, size: int) -> bool:
        """``organisation`` says it accepted ``size`` records. False (and the event kept) when
        that is fewer than it cosigned before: its database went back."""
        with self._lock:
            anchor = self._anchors.get(organisation)
            if anchor is None or size >= anchor.cosigned_size:
                return True
            first = not anchor.behind
            anchor.went_back_at, anchor.went_back_to, anchor.behind = _now(), size, True
            self._dirty.add(organisation)
        if first:
            log.warning(
                "node %s says it accepted %d records of this log, but it cosigned %d before: "
                "its database went back (deleted, restored, a lost WAL); it is not asked until "
                "it catches up, and its operator should check for lost registrations",
                organisation,
                size,
                anchor.cosigned_size,
            )
        self.flush()
        return False

    def flush(self) -> int:
        """Write the anchors that changed; how many."""
        with self._lock:
            changed = [NodeAnchor(**vars(self._anchors[o])) for o in self._dirty]
            self._dirty.clear()
        if not changed:
            return 0
        rows = [
            {
                "org": anchor.organisation,
                "new_cosigned_size": anchor.cosigned_size,
                "new_updated_at": anchor.updated_at,
                "new_went_back_at": anchor.went_back_at,
                "new_went_back_to": anchor.went_back_to,
                "new_clock_offset": anchor.clock_offset,
            }
            for anchor in changed
        ]
        # Two statements however many changed (every cosigning round moves a few): the rows
        # there are updated at once, the ones not there yet are added.
        with self.engine.begin() as conn:
            there = set(
                conn.execute(
                    select(ANCHORS.c.organisation).where(
                        ANCHORS.c.organisation.in_([r["org"] for r in rows])
                    )
                ).scalars()
            )
            old = [r for r in rows if r["org"] in there]
            new = [r for r in rows if r["org"] not in there]
            if old:
                conn.execute(_UPDATE_ANCHOR, old)
            if new:
                conn.execute(
                    insert(ANCHORS),
                    [
                        {"organisation": r["org"]}
                        | {key.removeprefix("new_"): v for key, v in r.items() if key != "org"}
                        for r in new
                    ],
                )
        return len(changed)
