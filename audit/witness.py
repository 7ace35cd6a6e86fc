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
from dataclasses import dataclass
from typing import Any

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
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from betrokken.audit.log import RECORDS, AuditLog, entry_from_leaf
from betrokken.audit.proofs import COSIGNATURE_FUTURE_SECONDS as COSIGNATURE_FUTURE_SECONDS
from betrokken.audit.proofs import Accepted as Accepted
from betrokken.audit.proofs import LogProof as LogProof
from betrokken.audit.proofs import Proven as Proven
from betrokken.audit.proofs import check_cosigned as check_cosigned
from betrokken.audit.proofs import check_log_proof as check_log_proof
from betrokken.audit.proofs import witness_cosigners as witness_cosigners
from betrokken.audit.record import AuditEntry, Event
from betrokken.config.schema import Network
from betrokken.crypto import merkle
from betrokken.crypto.cosignature import cosign, note_body
from betrokken.crypto.note import Checkpoint, NoteKey
from betrokken.db import Driver, Statements, driver_transaction
from betrokken.errors import (
    BadInput,
    BetrokkenError,
    QuestionRefused,
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


class PeerComparison(WitnessBase):
    """The last time this node compared its witnessed checkpoint with another node's (one row
    per peer; ``node status`` shows them). ``outcome`` is ``consistent``, ``fork`` or what kept
    the comparison from being made."""

    __tablename__ = "peer_comparisons"

    peer: Mapped[str] = mapped_column(Text, primary_key=True)
    compared_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    own_size: Mapped[int] = mapped_column(Integer)
    peer_size: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(Text)


# The statements of every question's witness check, built once (measured: building a statement
# anew cost several times running it).
_W: Table = Witnessed.__table__  # type: ignore[assignment]
_S: Table = Seen.__table__  # type: ignore[assignment]
_LAST = select(_W).order_by(_W.c.size.desc()).limit(1)
_WITNESSED_ROOT = select(_W.c.root).where(_W.c.size == bindparam("size"))
_SEEN_ROOT = select(_S.c.root).where(_S.c.size == bindparam("size"))
_WITNESSED_NOTE = select(_W.c.note).where(_W.c.size == bindparam("size"))
_AT_SIZE = select(_W).where(_W.c.size == bindparam("size"))
_SEEN_IDS = select(_S.c.answer_ids).where(_S.c.size == bindparam("size"))
_ADD_SEEN = insert(_S)
_ADD_WITNESSED = insert(_W)


def _add_witnessed_once(dialect: str) -> Any:
    """An accepted checkpoint's insert that leaves a row of the same size alone (both SQLite
    and PostgreSQL say ``ON CONFLICT (size) DO NOTHING``)."""
    if dialect == "postgresql":
        return postgresql_insert(_W).on_conflict_do_nothing(index_elements=[_W.c.size])
    return sqlite_insert(_W).on_conflict_do_nothing(index_elements=[_W.c.size])


_MORE_SEEN = update(_S).where(_S.c.size == bindparam("at_size"))


def _fork_message(size: int) -> str:
    return (
        f"asked to cosign a log of {size} records: the coordinator signed two different logs "
        f"of {size} records (a fork)"
    )


class _Contradiction(Exception):
    """A checkpoint a witness was asked to cosign contradicts one it accepted (``known``)."""

    def __init__(self, message: str, known: str) -> None:
        super().__init__(message)
        self.message = message
        self.known = known


@dataclass(frozen=True)
class AlarmRecord:
    at: dt.datetime
    kind: str
    message: str
    count: int = 1  # a record that counts repeats stands for this many alarms


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# One lock per database: checking a checkpoint against the witness state and storing it happen
# together, or two checks of the same old state could each store a checkpoint the other has not
# been checked against (C2SP tlog-witness: "must be performed atomically").
_STATE_LOCKS: dict[str, threading.RLock] = {}
_STATE_LOCKS_LOCK = threading.Lock()


def _state_lock(engine: Engine) -> threading.RLock:
    key = engine.url.render_as_string(hide_password=True)
    with _STATE_LOCKS_LOCK:
        return _STATE_LOCKS.setdefault(key, threading.RLock())


class _Memory:
    """The newest checkpoint a database's witness state accepted, kept in memory for a node's
    every question. Shared by every :class:`WitnessStore` of one engine in this process (the
    servicer, the witness loop, the anchor), changed only after the transaction that wrote the
    database committed (write-through), and never stale: every question reads the database's
    largest accepted size in its one statement of witness state (:meth:`WitnessStore.at_question`)
    and reads the checkpoint again when another process (``node witness``, the asking side)
    accepted a newer one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded = False
        self.last: Accepted | None = None
        self.changes = 0  # write-throughs so far: a load that overlapped one reads again

    def load(self, engine: Engine) -> Accepted | None:
        while True:
            changes = self.changes
            with engine.connect() as conn:
                row = conn.execute(_LAST).first()
            with self.lock:
                if changes != self.changes:
                    continue
                self.last = (
                    Accepted(int(row.size), bytes(row.root), row.note, row.accepted_at)
                    if row is not None
                    else None
                )
                self.loaded = True
                return self.last

    def store(self, last: Accepted | None, changes: int) -> None:
        """Keep ``last``, read when ``changes`` write-throughs had been made (unless more were
        made since: then the next read reads again)."""
        with self.lock:
            if changes == self.changes:
                self.last = last
                self.loaded = True

    def accepted(self, checkpoint: Checkpoint, note: str, at: dt.datetime | None) -> None:
        with self.lock:
            self.changes += 1
            if self.loaded and (self.last is None or checkpoint.size > self.last.size):
                self.last = Accepted(checkpoint.size, checkpoint.root, note, at)

    def forget(self) -> None:
        with self.lock:
            self.changes += 1
            self.loaded = False


_MEMORIES: weakref.WeakKeyDictionary[Engine, _Memory] = weakref.WeakKeyDictionary()


def _memory(engine: Engine) -> _Memory:
    with _STATE_LOCKS_LOCK:
        memory = _MEMORIES.get(engine)
        if memory is None:
            memory = _MEMORIES[engine] = _Memory()
        return memory


# All a question needs of the witness state, in one statement: the largest accepted size (is
# the newest checkpoint in memory still the newest?), and the roots accepted and seen at the
# question's size.
_AT_QUESTION_SQL = (
    "SELECT (SELECT max(size) FROM witnessed_checkpoints), "
    "(SELECT root FROM witnessed_checkpoints WHERE size = ?), "
    "(SELECT root FROM seen_checkpoints WHERE size = ?)"
)
# A seen checkpoint kept with its question in one statement: a new size is added; a known one
# with the same root gets the answer id (a bounded list); another root changes nothing, and
# that (no row) is the fork. One statement, so two questions at once need no lock between them.
_SEE_SQL = (
    "INSERT INTO seen_checkpoints (size, root, note, seen_at, answer_ids) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (size) DO UPDATE SET answer_ids = CASE "
    "WHEN length(seen_checkpoints.answer_ids) < 64000 "
    "THEN seen_checkpoints.answer_ids || ',' || excluded.answer_ids "
    "ELSE seen_checkpoints.answer_ids END "
    "WHERE seen_checkpoints.root = excluded.root"
)


@dataclass(frozen=True)
class AtQuestion:
    """The witness state a question's checkpoint is checked against (one statement)."""

    last: Accepted | None  # the newest accepted checkpoint
    accepted: bytes | None  # the root accepted at the question's size, if any
    seen: bytes | None  # the root seen with an earlier question at that size, if any

    def known(self, size: int) -> Accepted | None:
        """The accepted checkpoint of ``size`` records (root only), for check_log_proof."""
        return Accepted(size, self.accepted, "") if self.accepted is not None else None

    def check(self, checkpoint: Checkpoint) -> None:
        """Refuse at once a checkpoint whose size this organisation accepted or saw with
        another root (a fork)."""
        for root in (self.accepted, self.seen):
            if root is not None and root != checkpoint.root:
                raise QuestionRefused(
                    f"the coordinator signed two different logs of {checkpoint.size} records "
                    "(a fork)",
                    kind="fork",
                )


class WitnessStore:
    """The checkpoints of the coordinator's log this organisation accepted, and its alarms.

    With ``in_memory`` (a running node) the newest accepted checkpoint is kept in memory
    (:class:`_Memory`); otherwise every read goes to the database. A node's answer and a
    cosignature read and write it through the driver, in the caller's or one transaction
    (docs/adr/0032).
    """

    def __init__(
        self,
        engine: Engine,
        trail: AuditLog,
        organisation: str = "",
        clock: Callable[[], float] = time.time,
        in_memory: bool = False,
    ) -> None:
        self.engine = engine
        self.trail = trail
        self.organisation = organisation
        self._repeats = MinuteTally(clock, ALARMS_PER_KIND_PER_MINUTE)
        self._flush_lock = threading.Lock()
        self._flush_scheduled = False
        self._at_exit = False
        self.lock = _state_lock(engine)  # held while a checkpoint is checked and stored
        WitnessBase.metadata.create_all(engine)
        self._memory = _memory(engine) if in_memory else None
        statements = Statements(engine)  # a node's answer and cosignature, run by the driver
        self._see_sql = statements.sql(_SEE_SQL)
        self._at_question_sql = statements.sql(_AT_QUESTION_SQL)
        self._last_sql = statements.sql(
            "SELECT size, root, note, accepted_at FROM witnessed_checkpoints "
            "ORDER BY size DESC LIMIT 1"
        )
        self._add_witnessed_sql = statements.sql(
            "INSERT INTO witnessed_checkpoints (size, root, note, accepted_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (size) DO NOTHING"
        )
        self._witnessed_root_sql = statements.sql(
            "SELECT root FROM witnessed_checkpoints WHERE size = ?"
        )
        self._seen_at = statements.bind(_S.c.seen_at)
        self._accepted_at = statements.bind(_W.c.accepted_at)
        self._read_accepted_at = statements.result(_W.c.accepted_at)

    def reload(self) -> Accepted | None:
        """The newest accepted checkpoint as the database holds it now (what another process
        accepted too), kept in memory again."""
        if self._memory is not None:
            return self._memory.load(self.engine)
        return self.last()

    def last(self) -> Accepted | None:
        memory = self._memory
        if memory is not None:
            if memory.loaded and memory.last is not None:
                return memory.last
            return memory.load(self.engine)  # nothing accepted yet: perhaps another process did
        with self.engine.connect() as conn:
            row = conn.execute(_LAST).first()
        return Accepted(row.size, bytes(row.root), row.note, row.accepted_at) if row else None

    def at_question(self, driver: Driver, size: int) -> AtQuestion:
        """What a question with a checkpoint of ``size`` records is checked against, read in one
        statement on the question's own connection (``driver``); the newest checkpoint comes
        from memory unless the database holds a newer one."""
        top, accepted, seen = driver.first(self._at_question_sql, (size, size))
        last = self._newest(driver, top)
        return AtQuestion(
            last,
            bytes(accepted) if accepted is not None else None,
            bytes(seen) if seen is not None else None,
        )

    def at_size(self, size: int) -> Accepted | None:
        """The checkpoint of exactly ``size`` records this organisation accepted, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(_AT_SIZE, {"size": size}).first()
        return Accepted(row.size, bytes(row.root), row.note, row.accepted_at) if row else None

    def accepted(self) -> list[Accepted]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Witnessed).order_by(Witnessed.size)).all()
        return [Accepted(r.size, bytes(r.root), r.note, r.accepted_at) for r in rows]

    def accept(self, checkpoint: Checkpoint, note: str, conn: Connection | None = None) -> None:
        try:
            if conn is None:
                with self.engine.begin() as own:
                    self._accept(own, checkpoint, note)
                self._accepted(checkpoint, note)
                return
            self._accept(conn, checkpoint, note)
        except _Contradiction as exc:
            known = self._note_at(checkpoint.size)
            self.alarm("witness-fork", exc.message, evidence=f"{known}\n{note}"[:4000])
            raise QuestionRefused(exc.message, kind="witness-fork") from None
        if self._memory is not None:  # committed by the caller: read again when needed
            self._memory.forget()

    def _accepted(self, checkpoint: Checkpoint, note: str) -> None:
        """Write-through, after the commit."""
        if self._memory is not None:
            self._memory.accepted(checkpoint, note, utcnow())

    def _accept(
        self, conn: Connection, checkpoint: Checkpoint, note: str, known: bool | None = None
    ) -> None:
        if known is None:
            known = conn.execute(_WITNESSED_ROOT, {"size": checkpoint.size}).first() is not None
        if known:
            return
        # Another process of this organisation (the running node's witness loop, `node
        # witness`, the asking side) may accept the same size between the read above and this
        # write: the insert leaves an existing row alone, and a row it left is checked to hold
        # this very root, so a race is no error and a second root for a size is still a fork.
        added = conn.execute(
            _add_witnessed_once(conn.dialect.name),
            {
                "size": checkpoint.size,
                "root": checkpoint.root,
                "note": note,
                "accepted_at": utcnow(),
            },
        )
        if added.rowcount == 0:
            root = conn.execute(_WITNESSED_ROOT, {"size": checkpoint.size}).scalar_one()
            if bytes(root) != checkpoint.root:
                raise _Contradiction(_fork_message(checkpoint.size), "")

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

    def _newest(self, driver: Driver, top: int | None) -> Accepted | None:
        """The newest accepted checkpoint, whose size the database says is ``top``: from memory
        when it holds that one, else read on ``driver``'s connection (no second connection
        while this one is held) and kept."""
        memory = self._memory
        changes = 0
        if memory is not None:
            changes = memory.changes
            last = memory.last
            if memory.loaded and (last.size if last is not None else None) == top:
                return last
        row = driver.first(self._last_sql)
        if row is None:
            last = None
        else:
            size, root, note, at = row
            last = Accepted(int(size), bytes(root), note, self._read_accepted_at(at))
        if memory is not None:
            memory.store(last, changes)  # another process accepted one (or the first read)
        return last

    def check_seen(self, checkpoint: Checkpoint) -> None:
        """Refuse at once a checkpoint whose size this organisation saw with another root."""
        with self.engine.connect() as conn:
            self._conflict(conn, checkpoint)

    def see(
        self, driver: Driver, checkpoint: Checkpoint, note: str, answer_id: str, at: AtQuestion
    ) -> None:
        """:meth:`seen` inside a node's answer (``driver``'s transaction), with the state the
        question was checked against (``at``): nothing when its size was accepted with this
        root, else one statement, which refuses a root another question saw meanwhile."""
        at.check(checkpoint)
        if at.accepted is not None:
            return  # already part of the witnessed log
        cursor = driver.execute(
            self._see_sql,
            (checkpoint.size, checkpoint.root, note, self._seen_at(utcnow()), answer_id),
        )
        if cursor.rowcount == 0:  # seen with another root since the question was checked
            raise QuestionRefused(
                f"the coordinator signed two different logs of {checkpoint.size} records (a fork)",
                kind="fork",
            )

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

    def cosign(
        self,
        checkpoint: Checkpoint,
        note: str,
        old_size: int,
        proof: Sequence[bytes],
        key: NoteKey,
        now: float | None = None,
    ) -> str:
        """Cosign ``checkpoint`` (C2SP tlog-cosignature/v1), as a tlog-witness add-checkpoint.

        Only when ``old_size`` is the size this witness last accepted and the checkpoint extends
        it consistently (``proof``); the checkpoint is stored before the cosignature is made, in
        one transaction with the check. Raises :class:`WitnessStale` (with this witness's size)
        when the coordinator assumed another size or sent an older checkpoint, and — recorded as
        an alarm — :class:`QuestionRefused` when the checkpoint contradicts what this witness
        accepted or was shown before: it never cosigns two histories.
        """
        with self.lock:
            try:
                self._cosign_on_driver(checkpoint, note, old_size, proof)
                self._accepted(checkpoint, note)
            except _Contradiction as exc:
                self.alarm("cosign-fork", exc.message, evidence=f"{exc.known}\n{note}"[:4000])
                raise QuestionRefused(exc.message, kind="cosign-fork") from None
        stamp = int(time.time() if now is None else now)
        return cosign(note_body(note), key, stamp)

    def _cosign_on_driver(
        self, checkpoint: Checkpoint, note: str, old_size: int, proof: Sequence[bytes]
    ) -> None:
        """The check and the store of :meth:`cosign` in one transaction run by the driver: one
        statement reads the witness state at the checkpoint's size, one stores it."""
        with driver_transaction(self.engine) as driver:
            top, accepted, seen = driver.first(
                self._at_question_sql, (checkpoint.size, checkpoint.size)
            )
            last = self._newest(driver, top)
            roots = [bytes(r) for r in (accepted, seen) if r is not None]
            known = self._check_cosignable(
                checkpoint, last, old_size, proof, roots, accepted is not None
            )
            if not known:
                added = driver.execute(
                    self._add_witnessed_sql,
                    (checkpoint.size, checkpoint.root, note, self._accepted_at(utcnow())),
                )
                if added.rowcount == 0:  # another process accepted this size meanwhile
                    (root,) = driver.first(self._witnessed_root_sql, (checkpoint.size,))
                    if bytes(root) != checkpoint.root:
                        raise _Contradiction(_fork_message(checkpoint.size), "")

    def _note_at(self, size: int) -> str:
        with self.engine.connect() as conn:
            known = conn.execute(_WITNESSED_NOTE, {"size": size}).scalar_one_or_none()
        return str(known or "")

    def _check_cosignable(
        self,
        checkpoint: Checkpoint,
        last: Accepted | None,
        old_size: int,
        proof: Sequence[bytes],
        roots: Sequence[bytes],
        witnessed: bool,
    ) -> bool:
        """Refuse what may not be cosigned, given the roots accepted or seen at the
        checkpoint's size (``roots``) and whether one was accepted there (``witnessed``);
        whether this very checkpoint was accepted before."""
        if any(root != checkpoint.root for root in roots):
            raise _Contradiction(_fork_message(checkpoint.size), self._note_at(checkpoint.size))
        have = last.size if last is not None else 0
        if old_size != have or checkpoint.size < have:
            raise WitnessStale(
                f"this witness last cosigned {have} records, not {old_size}"
                if old_size != have
                else f"this witness has already cosigned {have} records; it does not cosign "
                f"an older checkpoint of {checkpoint.size}",
                witnessed_size=have,
            )
        accepted = last is not None and last.size == checkpoint.size
        if last is None:
            if proof:
                raise BadInput("the first checkpoint a witness cosigns comes without a proof")
            return False  # nothing accepted yet
        if checkpoint.size == last.size:
            good = checkpoint.root == last.root
        else:
            good = merkle.verify_consistency(
                last.size, checkpoint.size, last.root, checkpoint.root, list(proof)
            )
        if not good:
            raise _Contradiction(
                f"the coordinator asked this witness to cosign a log of {checkpoint.size} "
                f"records that does not consistently extend the {last.size} records it "
                "cosigned before: two histories (or a broken proof); nothing was cosigned",
                last.note,
            )
        if accepted or not roots:
            return accepted  # the usual case: a new, larger checkpoint, never accepted
        return witnessed

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

    def compared(self, peer: str, own_size: int, peer_size: int, outcome: str) -> None:
        """Keep the outcome of the latest comparison with ``peer``."""
        table: Table = PeerComparison.__table__  # type: ignore[assignment]
        values = {
            "compared_at": utcnow(),
            "own_size": own_size,
            "peer_size": peer_size,
            "outcome": outcome[:500],
        }
        with self.engine.begin() as conn:
            changed = conn.execute(update(table).where(table.c.peer == peer).values(**values))
            if not changed.rowcount:
                conn.execute(insert(table).values(peer=peer, **values))

    def comparisons(self) -> list[tuple[str, dt.datetime, int, int, str]]:
        """The latest comparison with each peer, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(PeerComparison).order_by(PeerComparison.compared_at.desc())
            ).all()
        return [(r.peer, r.compared_at, r.own_size, r.peer_size, r.outcome) for r in rows]

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


def check_network_cosigned(note: str, size: int, network: Network, own: str | None) -> None:
    """:func:`check_cosigned` with the network file's witnesses and quorum."""
    check_cosigned(note, size, witness_cosigners(network), network.witness_quorum(), own)
