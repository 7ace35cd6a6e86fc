"""Witnessing the coordinator's log: what this organisation accepted, and checking proofs.

A node (regularly, and for every question it is sent) and a requester (for every receipt) check
that the coordinator's log is the one they witnessed before: a signed checkpoint that consistently
extends — or is a prefix of — the last checkpoint they accepted. What was accepted is stored in the
organisation's own database; an alarm (rollback, fork, forged checkpoint, a refused question) is a
record in the organisation's own trail, so ``node status`` and the DPO report show it.

A checkpoint shown with a question is checked against the last *witnessed* one at once, and kept as
*seen*; the witness loop confirms every seen checkpoint against the newest log at its next check. So
a coordinator that signs a second history just to get one question answered is caught within one
witness interval, and the two signed checkpoints it made are the evidence (ADR 0007).
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from betrokken.audit.log import RECORDS, AuditLog, entry_from_leaf
from betrokken.audit.record import AuditEntry, Event
from betrokken.crypto import merkle
from betrokken.crypto.note import Checkpoint, open_checkpoint
from betrokken.errors import (
    BetrokkenError,
    MalformedMessage,
    QuestionRefused,
    VerificationError,
    WitnessStale,
    escape_text,
)
from betrokken.tally import MinuteTally

log = logging.getLogger("betrokken.witness")
# Alarms of one kind recorded one by one per minute; further ones that minute are counted in one
# record, so a hostile coordinator sending refused questions cannot fill a node's disk.
ALARMS_PER_KIND_PER_MINUTE = 5


class WitnessBase(DeclarativeBase):
    metadata = MetaData()


class Witnessed(WitnessBase):
    __tablename__ = "witnessed_checkpoints"

    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    accepted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Seen(WitnessBase):
    """A checkpoint shown with a question, until the witness loop confirms it (then removed)."""

    __tablename__ = "seen_checkpoints"

    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    answer_ids: Mapped[str] = mapped_column(Text, default="")  # the questions it came with


# The statements of every question's witness check, built once (measured: building a statement
# anew cost several times running it).
_W: Table = Witnessed.__table__  # type: ignore[assignment]
_S: Table = Seen.__table__  # type: ignore[assignment]
_LAST = select(_W).order_by(_W.c.size.desc()).limit(1)
_WITNESSED_ROOT = select(_W.c.root).where(_W.c.size == bindparam("size"))
_SEEN_ROOT = select(_S.c.root).where(_S.c.size == bindparam("size"))
_SEEN_IDS = select(_S.c.answer_ids).where(_S.c.size == bindparam("size"))
_ADD_SEEN = insert(_S)
_MORE_SEEN = update(_S).where(_S.c.size == bindparam("at_size"))


@dataclass(frozen=True)
class Accepted:
    size: int
    root: bytes
    note: str
    accepted_at: dt.datetime | None = None
    answer_ids: tuple[str, ...] = ()  # for a seen checkpoint: the questions it came with


@dataclass(frozen=True)
class AlarmRecord:
    at: dt.datetime
    kind: str
    message: str
    count: int = 1  # a record that counts repeats stands for this many alarms


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WitnessStore:
    """The checkpoints of the coordinator's log this organisation accepted, and its alarms."""

    def __init__(
        self,
        engine: Engine,
        trail: AuditLog,
        organisation: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.trail = trail
        self.organisation = organisation
        self._repeats = MinuteTally(clock, ALARMS_PER_KIND_PER_MINUTE)
        self._flush_lock = threading.Lock()
        self._flush_scheduled = False
        self._at_exit = False
        WitnessBase.metadata.create_all(engine)

    def last(self) -> Accepted | None:
        with self.engine.connect() as conn:
            row = conn.execute(_LAST).first()
        return Accepted(row.size, bytes(row.root), row.note, row.accepted_at) if row else None

    def accepted(self) -> list[Accepted]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Witnessed).order_by(Witnessed.size)).all()
        return [Accepted(r.size, bytes(r.root), r.note, r.accepted_at) for r in rows]

    def accept(self, checkpoint: Checkpoint, note: str, conn: Connection | None = None) -> None:
        if conn is None:
            with self.engine.begin() as own:
                self._accept(own, checkpoint, note)
        else:
            self._accept(conn, checkpoint, note)

    def _accept(self, conn: Connection, checkpoint: Checkpoint, note: str) -> None:
        known = conn.execute(
            select(Witnessed.root).where(Witnessed.size == checkpoint.size)
        ).scalar_one_or_none()
        if known is None:
            conn.execute(
                insert(Witnessed).values(
                    size=checkpoint.size, root=checkpoint.root, note=note, accepted_at=utcnow()
                )
            )

    def seen(
        self, checkpoint: Checkpoint, note: str, answer_id: str, conn: Connection | None = None
    ) -> None:
        """Keep a checkpoint shown with a question; a second root for a size is a fork.

        In ``conn``'s transaction if given (a node keeps it with its answer, one commit)."""
        if conn is None:
            with self.engine.begin() as own:
                self._seen(own, checkpoint, note, answer_id)
        else:
            self._seen(conn, checkpoint, note, answer_id)

    def check_seen(self, checkpoint: Checkpoint) -> None:
        """Refuse at once a checkpoint whose size this organisation saw with another root."""
        with self.engine.connect() as conn:
            self._conflict(conn, checkpoint)

    def _conflict(self, conn: Connection, checkpoint: Checkpoint) -> None:
        for statement in (_WITNESSED_ROOT, _SEEN_ROOT):
            known = conn.execute(statement, {"size": checkpoint.size}).scalar_one_or_none()
            if known is not None and bytes(known) != checkpoint.root:
                raise QuestionRefused(
                    f"the coordinator signed two different logs of {checkpoint.size} records "
                    "(a fork)",
                    kind="fork",
                )

    def _seen(self, conn: Connection, checkpoint: Checkpoint, note: str, answer_id: str) -> None:
        self._conflict(conn, checkpoint)
        witnessed = conn.execute(_WITNESSED_ROOT, {"size": checkpoint.size}).scalar_one_or_none()
        if witnessed is not None:
            return  # already part of the witnessed log
        already = conn.execute(_SEEN_IDS, {"size": checkpoint.size}).scalar_one_or_none()
        if already is None:
            conn.execute(
                _ADD_SEEN,
                {
                    "size": checkpoint.size,
                    "root": checkpoint.root,
                    "note": note,
                    "seen_at": utcnow(),
                    "answer_ids": answer_id,
                },
            )
        elif answer_id not in already.split(",") and len(already) < 64_000:
            conn.execute(
                _MORE_SEEN, {"at_size": checkpoint.size, "answer_ids": f"{already},{answer_id}"}
            )

    def unconfirmed(self) -> list[Accepted]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Seen).order_by(Seen.size)).all()
        return [
            Accepted(
                r.size,
                bytes(r.root),
                r.note,
                r.seen_at,
                tuple(a for a in r.answer_ids.split(",") if a),
            )
            for r in rows
        ]

    def confirmed(self, sizes: Sequence[int]) -> None:
        if sizes:
            with self.engine.begin() as conn:
                conn.execute(delete(Seen).where(Seen.size.in_(list(sizes))))

    def alarm(self, kind: str, message: str, **details: str) -> None:
        """Record an alarm in the organisation's trail and the service log (never person data).

        The first :data:`ALARMS_PER_KIND_PER_MINUTE` alarms of a kind in a minute are records of
        their own; further ones are counted and written as one record when the minute is over.
        """
        if not self._repeats.admit(kind, kind):
            if self._repeats.first_counted(kind, kind):
                log.error(
                    "ALARM %s again: further alarms of this kind this minute are counted in one "
                    "record",
                    kind,
                )
                self._schedule_flush()
            return
        log.error("ALARM %s: %s", kind, message)
        self.trail.append(
            [
                AuditEntry(
                    event=Event.ALARM,
                    at=utcnow(),
                    organisation=self.organisation,
                    reason=kind,
                    details={
                        "message": escape_text(message)[:500],
                        **{k: escape_text(v)[:500] for k, v in details.items() if v},
                    },
                )
            ]
        )

    def flush_alarms(self, final: bool = False) -> int:
        """Write one record per kind for the alarms counted in minutes that are over (all of
        them with ``final``); how many records were written."""
        tallies = self._repeats.due(final)
        for tally in tallies:
            self.trail.append(
                [
                    AuditEntry(
                        event=Event.ALARM,
                        at=utcnow(),
                        organisation=self.organisation,
                        reason=tally.kind,
                        details={
                            "message": f"{tally.count} more alarm(s) of this kind in the minute "
                            f"from {tally.minute:%Y-%m-%d %H:%M} UTC (counted, not recorded "
                            "one by one)",
                            "count": str(tally.count),
                            "minute": f"{tally.minute:%Y-%m-%dT%H:%MZ}",
                        },
                    )
                ]
            )
            log.error(
                "ALARM %s: %d more in the minute from %s",
                tally.kind,
                tally.count,
                f"{tally.minute:%H:%M}",
            )
        return len(tallies)

    def _schedule_flush(self) -> None:
        """Flush when the minute is over (and at exit); one timer at a time."""
        with self._flush_lock:
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
            at_exit, self._at_exit = not self._at_exit, True
        ref = weakref.ref(self)

        def flush(final: bool = False) -> None:
            store = ref()
            if store is None:
                return
            with store._flush_lock:
                store._flush_scheduled = False
            try:
                store.flush_alarms(final)
            except (BetrokkenError, SQLAlchemyError) as exc:
                log.error("counted alarms could not be recorded: %s", exc)

        wait = 61.0 - (self._repeats.clock() % 60.0)
        timer = threading.Timer(wait, flush)
        timer.daemon = True
        timer.start()
        if at_exit:
            atexit.register(flush, True)

    def alarms(self) -> list[AlarmRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(RECORDS.c.content)
                .where(RECORDS.c.event == Event.ALARM.value, RECORDS.c.content.is_not(None))
                .order_by(RECORDS.c.index)
            ).all()
        found = []
        for (content,) in rows:
            _, entry = entry_from_leaf(content)
            count = entry.details.get("count", "1")
            found.append(
                AlarmRecord(
                    entry.at,
                    entry.reason,
                    entry.details.get("message", ""),
                    int(count) if count.isdigit() else 1,
                )
            )
        return found


@dataclass(frozen=True)
class LogProof:
    """A record of the coordinator's log with what proves it is in the witnessed log."""

    record: bytes
    leaf_index: int
    tree_size: int
    checkpoint: str
    inclusion_proof: Sequence[bytes] = field(default_factory=tuple)
    consistency_size: int = 0
    consistency_proof: Sequence[bytes] = field(default_factory=tuple)


@dataclass(frozen=True)
class Proven:
    """What a verified LogProof establishes."""

    index: int
    entry: AuditEntry
    checkpoint: Checkpoint
    first_seen: bool  # nothing was witnessed before: accepted on first use


def check_log_proof(
    proof: LogProof, verifier: str, origin: str, witnessed: Accepted | None
) -> Proven:
    """Check signature, inclusion, and consistency with ``witnessed``; say which check failed.

    Raises :class:`QuestionRefused` (with ``kind`` forged, unlogged or fork) when the proof does
    not hold, and :class:`WitnessStale` when the consistency proof relates to another size than the
    one witnessed (the sender should try again with the right one; not an alarm).
    """
    try:
        checkpoint = open_checkpoint(proof.checkpoint, verifier, origin)
    except (VerificationError, MalformedMessage) as exc:
        raise QuestionRefused(
            f"the checkpoint is not signed by the coordinator's log key: {exc.message}",
            kind="forged-checkpoint",
        ) from None
    leaf = merkle.leaf_hash(proof.record)
    if checkpoint.size != proof.tree_size or not merkle.verify_inclusion(
        leaf, proof.leaf_index, proof.tree_size, list(proof.inclusion_proof), checkpoint.root
    ):
        raise QuestionRefused(
            "the question's record is not in the coordinator's signed log", kind="unlogged"
        )
    try:
        index, entry = entry_from_leaf(proof.record)
    except MalformedMessage as exc:
        raise QuestionRefused(f"the record is unreadable: {exc.message}", kind="unlogged") from None
    if index != proof.leaf_index:
        raise QuestionRefused("the record names another position in the log", kind="unlogged")
    if witnessed is None:
        return Proven(index, entry, checkpoint, first_seen=True)
    if proof.consistency_size != witnessed.size:
        raise WitnessStale(
            f"the consistency proof is from {proof.consistency_size} records; "
            f"{witnessed.size} were witnessed here",
            witnessed_size=witnessed.size,
        )
    old, new = sorted((witnessed.size, checkpoint.size))
    old_root, new_root = (
        (witnessed.root, checkpoint.root)
        if witnessed.size <= checkpoint.size
        else (checkpoint.root, witnessed.root)
    )
    if not merkle.verify_consistency(old, new, old_root, new_root, list(proof.consistency_proof)):
        raise QuestionRefused(
            f"the coordinator's log of {checkpoint.size} records is not consistent with the "
            f"{witnessed.size} records witnessed here: history was rewritten (fork)",
            kind="fork",
        )
    return Proven(index, entry, checkpoint, first_seen=False)
