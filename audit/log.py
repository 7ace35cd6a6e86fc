"""A tamper-evident audit log: records as leaves of an RFC 9162 Merkle tree, signed checkpoints.

The same code serves the coordinator's log, each node's own trail and the key service's log.
Records and their leaves are appended in the caller's transaction (so a record and what it
records commit together, or not at all), the tree's right edge (its frontier) lives in a one-row
head table whose update serialises appends across processes, and a checkpoint (C2SP signed note)
is signed for every new tree size.

Each leaf is the canonical JSON of a record plus its own index, so a record moved to another
position no longer matches. Pruning (after the retention term) empties a record's content but
keeps its leaf hash, so the tree still verifies.

Proofs read O(log n) hashes (ADR 0010): every full subtree of 2**level leaves (level >= 1) has
its hash stored in ``log_subtrees``, written by the append that completes it, in the same
transaction; level 0 is the record's leaf hash. A database made before that table existed (or
one a writer without it appended to) is brought up to date from the leaf hashes when opened, or
at the next append, under the head row's lock.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    Label,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from betrokken.audit.leaves import SignedCheckpoint as SignedCheckpoint
from betrokken.audit.leaves import StoredRecord as StoredRecord
from betrokken.audit.leaves import entry_from_leaf as entry_from_leaf
from betrokken.audit.leaves import leaf_bytes as leaf_bytes
from betrokken.audit.record import AuditEntry
from betrokken.crypto import merkle
from betrokken.crypto.note import Checkpoint, NoteKey, sign_checkpoint
from betrokken.db import Driver, Statements, driver_on
from betrokken.errors import InternalError, LogDamaged, MalformedMessage

log = logging.getLogger("betrokken.audit")

# Leaves read (and subtree rows written) per statement when stored subtrees are built in bulk.
BACKFILL_CHUNK = 50_000


class LogBase(DeclarativeBase):
    metadata = MetaData()


class LogRecord(LogBase):
    __tablename__ = "log_records"

    index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    event: Mapped[str] = mapped_column(String(32), index=True)
    answer_id: Mapped[str] = mapped_column(String(64), index=True)
    organisation: Mapped[str] = mapped_column(String(64), index=True)
    pruned_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LogSubject(LogBase):
    """Which records concern which pseudonym: for a citizen's access request."""

    __tablename__ = "log_subjects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    index: Mapped[int] = mapped_column(ForeignKey("log_records.index"), index=True)
    pseudonym: Mapped[str] = mapped_column(String(128), index=True)


class LogHead(LogBase):
    __tablename__ = "log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    frontier: Mapped[str] = mapped_column(Text)


class LogCheckpoint(LogBase):
    __tablename__ = "log_checkpoints"

    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class LogSubtree(LogBase):
    """The hash of one full subtree of 2**level leaves, level >= 1 (ADR 0010).

    Keyed by ``merkle.stored_position(level, index)``: the order in which appends complete
    subtrees, so one range covers everything up to a tree size. Derived from the leaf hashes,
    written in the same transaction as the append that completes the subtree.
    """

    __tablename__ = "log_subtrees"

    position: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


RECORDS: Table = LogRecord.__table__  # type: ignore[assignment]
SUBJECTS: Table = LogSubject.__table__  # type: ignore[assignment]
HEAD: Table = LogHead.__table__  # type: ignore[assignment]
CHECKPOINTS: Table = LogCheckpoint.__table__  # type: ignore[assignment]
SUBTREES: Table = LogSubtree.__table__  # type: ignore[assignment]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


HASHES_KEPT = 65_536  # stored hashes a log remembers (a few MB): the ones every proof needs
RECENT_KEPT = 1_024  # of its own latest appends: records and checkpoints remembered


class _Remembered:
    """What an :class:`AuditLog` remembers of its own database between proofs.

    The hash of a perfect subtree never changes once its last leaf is written (the log only
    grows), so each is read once, or kept straight from the append that completed it; the
    records and checkpoints this process appended are kept for the receipts made right after;
    ``head`` is the largest size this process saw the log at (a proof for a size up to it needs
    no look-up of the head). All bounded, least recently used first out. An append that finds the
    head smaller than remembered (a log rolled back by hand) makes it forget everything.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hashes: OrderedDict[merkle.Subtree, bytes] = OrderedDict()
        self.records: OrderedDict[int, str] = OrderedDict()
        self.checkpoints: OrderedDict[int, SignedCheckpoint] = OrderedDict()
        self.newest: SignedCheckpoint | None = None
        self.head = 0

    def forget(self) -> None:
        with self.lock:
            self.hashes.clear()
            self.records.clear()
            self.checkpoints.clear()
            self.newest = None
            self.head = 0

    def known(
        self, size: int, nodes: Sequence[merkle.Subtree]
    ) -> tuple[dict[merkle.Subtree, bytes], list[merkle.Subtree]] | None:
        """The remembered hashes of ``nodes`` and the ones to read; None when ``size`` is beyond
        the head remembered (then the head is read, with all of them)."""
        found: dict[merkle.Subtree, bytes] = {}
        missing: list[merkle.Subtree] = []
        with self.lock:
            if size > self.head:
                return None
            hashes = self.hashes
            for node in nodes:
                value = hashes.get(node)
                if value is None:
                    missing.append(node)
                else:
                    hashes.move_to_end(node)
                    found[node] = value
        return found, missing

    def learn(self, head: int, hashes: dict[merkle.Subtree, bytes]) -> None:
        """Hashes read from the database with its head (a head read outside the append lock
        may be older than one remembered: it only ever moves the remembered head forward)."""
        with self.lock:
            self.head = max(self.head, head)
            self._keep(self.hashes, hashes, HASHES_KEPT)

    def appended(
        self,
        head: int,
        hashes: dict[merkle.Subtree, bytes],
        records: dict[int, str],
        checkpoint: SignedCheckpoint | None,
    ) -> None:
        with self.lock:
            self.head = max(self.head, head)
            self._keep(self.hashes, hashes, HASHES_KEPT)
            self._keep(self.records, records, RECENT_KEPT)
            if checkpoint is not None:
                self._keep(self.checkpoints, {checkpoint.size: checkpoint}, RECENT_KEPT)
                if self.newest is None or checkpoint.size > self.newest.size:
                    self.newest = checkpoint

    @staticmethod
    def _keep(kept: OrderedDict[Any, Any], new: dict[Any, Any], limit: int) -> None:
        kept.update(new)
        for key in new:
            kept.move_to_end(key)
        while len(kept) > limit:
            kept.popitem(last=False)


def _covered(max_position: int | None) -> int:
    """How many leaves the stored subtrees cover, from the highest stored position."""
    if max_position is None:
        return 0
    level, index = merkle.subtree_at(max_position)
    return (index + 1) << level


def _should_cover(size: int) -> int:
    """How many leaves the subtrees of a tree of ``size`` cover (a last odd leaf completes none)."""
    return size & ~1


def _highest() -> Label[int]:
    """The highest stored subtree position (NULL when none is stored)."""
    return select(func.max(SUBTREES.c.position)).scalar_subquery().label("highest")


# One query for a proof: the head's size, the leaf hashes (level 0) and the stored subtree hashes
# it needs. The SQL text is made once per number of leaves and subtrees asked for and given to the
# driver as it is: building the statement per call cost more than running it (profiled), and an
# "expanding" IN list is rewritten by SQLAlchemy on every execution.
_KIND_HEAD, _KIND_LEAF, _KIND_SUBTREE = 0, 1, 2
_PROOF_SQL: dict[tuple[str, str, int, int], str] = {}


def _proof_sql(dialect: str, paramstyle: str, leaves: int, inner: int) -> str:
    key = (dialect, paramstyle, leaves, inner)
    sql = _PROOF_SQL.get(key)
    if sql is None:
        # Only constants and placeholders go into the text; the values are bound by the driver.
        mark = "?" if paramstyle == "qmark" else "%s"
        nothing = "CAST(NULL AS bytea)" if dialect == "postgresql" else "NULL"
        parts = [f"SELECT {_KIND_HEAD}, size, {nothing} FROM log_head WHERE id = 1"]  # noqa: S608
        if leaves:
            marks = ", ".join([mark] * leaves)
            parts.append(
                f'SELECT {_KIND_LEAF}, "index", leaf_hash FROM log_records '  # noqa: S608
                f'WHERE "index" IN ({marks})'
            )
        if inner:
            marks = ", ".join([mark] * inner)
            parts.append(
                f"SELECT {_KIND_SUBTREE}, position, hash FROM log_subtrees "  # noqa: S608
                f"WHERE position IN ({marks})"
            )
        sql = _PROOF_SQL.setdefault(key, " UNION ALL ".join(parts))
    return sql


# The statements of an append, as plain SQL run by the driver (docs/adr/0043): an append runs
# them on every question in the coordinator (two per question), the nodes and the requester;
# through SQLAlchemy each cost an execution context and a result object, several times the
# statement itself (building them per call, before, cost more still).
_APPEND_SQL = {
    "lock_head": "UPDATE log_head SET size = size WHERE id = 1",
    "read_head": "SELECT size, frontier, (SELECT max(position) FROM log_subtrees) "
    "FROM log_head WHERE id = 1",
    "add_record": 'INSERT INTO log_records ("index", leaf_hash, content, at, event, answer_id, '
    "organisation, pruned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "add_subject": 'INSERT INTO log_subjects ("index", pseudonym) VALUES (?, ?)',
    "add_subtree": "INSERT INTO log_subtrees (position, hash) VALUES (?, ?)",
    "move_head": "UPDATE log_head SET size = ?, frontier = ? WHERE id = 1",
    "add_checkpoint": "INSERT INTO log_checkpoints (size, root, note, created_at) "
    "VALUES (?, ?, ?, ?)",
}


class _AppendSql:
    """:data:`_APPEND_SQL` for one engine's driver, with SQLAlchemy's conversion of the values
    it converts (the times on SQLite), so the rows read back as if SQLAlchemy wrote them."""

    def __init__(self, engine: Engine) -> None:
        statements = Statements(engine)
        self.sql = {name: statements.sql(text_) for name, text_ in _APPEND_SQL.items()}
        self.at = statements.bind(RECORDS.c.at)
        self.created_at = statements.bind(CHECKPOINTS.c.created_at)


def _hashes(
    conn: Connection, nodes: Sequence[merkle.Subtree]
) -> tuple[int, dict[merkle.Subtree, bytes]]:
    """The head's size and the stored hashes of ``nodes`` (absent ones left out), in one query."""
    leaves = [index for level, index in nodes if level == 0]
    inner = {
        merkle.stored_position(level, index): (level, index) for level, index in nodes if level
    }
    size = 0
    found: dict[merkle.Subtree, bytes] = {}
    sql = _proof_sql(conn.dialect.name, conn.dialect.paramstyle, len(leaves), len(inner))
    for kind, key, value in conn.exec_driver_sql(sql, (*leaves, *inner)):
        if kind == _KIND_HEAD:
            size = int(key)
        else:
            found[(0, int(key)) if kind == _KIND_LEAF else inner[int(key)]] = bytes(value)
    return size, found


@dataclass
class _Wrote:
    """What one append wrote, remembered once it is committed."""

    size: int = 0
    hashes: dict[merkle.Subtree, bytes] = field(default_factory=dict)
    records: dict[int, str] = field(default_factory=dict)
    checkpoint: SignedCheckpoint | None = None


class AuditLog:
    """An append-only Merkle log in the component's own database."""

    def __init__(self, engine: Engine, signer: NoteKey | None, origin: str) -> None:
        self.engine = engine
        self.signer = signer
        self.origin = origin
        self._remembered = _Remembered()
        LogBase.metadata.create_all(engine)
        with engine.begin() as conn:
            if conn.execute(select(HEAD.c.id)).first() is None:
                conn.execute(
                    insert(HEAD).values(
                        id=1, size=0, frontier=json.dumps(merkle.Frontier().to_json())
                    )
                )
        with engine.connect() as conn:
            size, highest = self._head_state(conn)
        if _covered(highest) < _should_cover(size):
            self.build_subtrees()

    @classmethod
    def attached(cls, engine: Engine, signer: NoteKey | None, origin: str) -> AuditLog:
        """A log on a database whose schema someone else manages (a migration in progress):
        nothing is created or backfilled on opening; appends catch up in their own transaction."""
        log = cls.__new__(cls)
        log.engine, log.signer, log.origin = engine, signer, origin
        log._remembered = _Remembered()
        return log

    @property
    def _mem(self) -> _Remembered:
        """What this log remembers (made on first use for a log made without ``__init__``)."""
        mem: _Remembered | None = self.__dict__.get("_remembered")
        if mem is None:
            mem = self.__dict__.setdefault("_remembered", _Remembered())
        return mem

    # --- stored subtrees -----------------------------------------------------------------------
    @staticmethod
    def _head_state(conn: Connection) -> tuple[int, int | None]:
        """The head's size and the highest stored subtree position, in one query."""
        row = conn.execute(select(HEAD.c.size, _highest()).where(HEAD.c.id == 1)).one()
        return int(row[0]), None if row[1] is None else int(row[1])

    def build_subtrees(self) -> None:
        """Store the subtree hashes the log lacks, from its leaf hashes, under the head's lock.

        Run when a log is opened whose ``log_subtrees`` is missing or behind its head (a
        database from before ADR 0010, or appended to by a writer that did not store them).
        """
        started = time.perf_counter()
        with self.engine.begin() as conn:
            conn.execute(update(HEAD).where(HEAD.c.id == 1).values(size=HEAD.c.size))
            size, highest = self._head_state(conn)
            built = self._catch_up(conn, size, highest, trim=False)
        if built is not None:
            log.info(
                "audit log %s: stored the subtree hashes of records %d..%d in %.2f s",
                self.origin,
                built,
                size - 1,
                time.perf_counter() - started,
            )

    def _catch_up(
        self, conn: Connection, size: int, highest: int | None, *, trim: bool
    ) -> int | None:
        """Make ``log_subtrees`` match a tree of ``size`` (the head is locked by the caller).

        Returns the first leaf it started from, or None if nothing was missing. With ``trim``,
        hashes beyond ``size`` (left by a log rolled back by hand) are deleted first, so the
        appends that follow can store theirs.
        """
        covered, target = _covered(highest), _should_cover(size)
        if covered > target and trim:
            log.warning(
                "audit log %s: stored subtree hashes reach record %d but the head says %d "
                "records (rolled back by hand?); removing them to append",
                self.origin,
                covered - 1,
                size,
            )
            self._mem.forget()
            conn.execute(
                delete(SUBTREES).where(SUBTREES.c.position >= merkle.stored_position(0, size))
            )
            highest = conn.execute(select(_highest())).scalar()
            covered = _covered(highest)
        if covered >= target:
            return None
        frontier = merkle.Frontier()
        if covered:
            edge = merkle.range_subtrees(0, covered)
            _, found = _hashes(conn, edge)
            if len(found) == len(edge):
                frontier = merkle.Frontier(covered, [found[n] for n in edge])
        if frontier.size == 0:  # nothing usable to continue from: build it all again
            conn.execute(delete(SUBTREES))
        start = frontier.size
        while frontier.size < size:
            rows = conn.execute(
                select(RECORDS.c.index, RECORDS.c.leaf_hash)
                .where(RECORDS.c.index >= frontier.size, RECORDS.c.index < size)
                .order_by(RECORDS.c.index)
                .limit(BACKFILL_CHUNK)
            ).all()
            subtrees = []
            for index, leaf in rows:
                if index != frontier.size:
                    break
                subtrees += [
                    {"position": merkle.stored_position(level, i), "hash": value}
                    for level, i, value in frontier.append(bytes(leaf))
                ]
            if subtrees:
                conn.execute(insert(SUBTREES), subtrees)
            if not rows or frontier.size != int(rows[-1][0]) + 1:
                log.warning(
                    "audit log %s: record %d is missing, so proofs past it cannot be made; "
                    "run `betrokken audit verify`",
                    self.origin,
                    frontier.size,
                )
                break
        return start

    # --- writing -------------------------------------------------------------------------------
    def append(self, entries: Sequence[AuditEntry], conn: Connection | None = None) -> list[int]:
        """Append records (in ``conn``'s transaction if given); returns their indices.

        In a transaction of its own, what it wrote is remembered once committed (the receipt and
        the proofs made next need no look-up); in the caller's, nothing is (it may roll back)."""
        if conn is None:
            wrote = _Wrote()
            with self.engine.begin() as own:
                indices = self._append(own, entries, wrote)
            self._mem.appended(wrote.size, wrote.hashes, wrote.records, wrote.checkpoint)
            return indices
        return self._append(conn, entries)

    @property
    def _sql(self) -> _AppendSql:
        """The append's statements for this log's engine (made on first use)."""
        sql: _AppendSql | None = self.__dict__.get("_append_sql")
        if sql is None:
            sql = self.__dict__.setdefault("_append_sql", _AppendSql(self.engine))
        return sql

    def _append(
        self, conn: Connection, entries: Sequence[AuditEntry], wrote: _Wrote | None = None
    ) -> list[int]:
        """The statements run by the driver, in ``conn``'s transaction (docs/adr/0043)."""
        with driver_on(conn) as driver:
            return self._append_on(conn, driver, entries, wrote)

    def _append_on(
        self,
        conn: Connection,
        driver: Driver,
        entries: Sequence[AuditEntry],
        wrote: _Wrote | None,
    ) -> list[int]:
        sql = self._sql
        # Taking the head row first serialises appends (a row lock on PostgreSQL).
        driver.execute(sql.sql["lock_head"])
        head_size, head_frontier, highest = driver.first(sql.sql["read_head"])
        head_size = int(head_size)
        highest = None if highest is None else int(highest)
        frontier = merkle.Frontier.from_json(json.loads(head_frontier))
        if frontier.size != head_size:
            raise InternalError("audit log head is inconsistent; run `betrokken audit verify`")
        if head_size < self._mem.head:  # rolled back by hand since: nothing remembered holds
            self._mem.forget()
        if _covered(highest) != _should_cover(head_size):
            started = time.perf_counter()
            built = self._catch_up(conn, head_size, highest, trim=True)
            if built is not None:
                log.info(
                    "audit log %s: stored the subtree hashes of records %d..%d in %.2f s "
                    "(appended without them)",
                    self.origin,
                    built,
                    head_size - 1,
                    time.perf_counter() - started,
                )
        indices = []
        records: list[tuple[object, ...]] = []
        subtrees: list[tuple[int, bytes]] = []
        subjects: list[tuple[int, str]] = []
        bind_at = sql.at
        for entry in entries:
            index = frontier.size
            data = leaf_bytes(index, entry)
            leaf = merkle.leaf_hash(data)
            content = data.decode()
            records.append(
                (
                    index,
                    leaf,
                    content,
                    bind_at(entry.at),
                    entry.event.value,
                    entry.answer_id,
                    entry.organisation,
                    None,
                )
            )
            # A record of an import batch names its subjects by fingerprint only (ADR 0022).
            subjects += [
                (index, subject.pseudonym or subject.fingerprint) for subject in entry.subjects
            ]
            completed = frontier.append(leaf)
            subtrees += [(merkle.stored_position(level, i), value) for level, i, value in completed]
            if wrote is not None:
                wrote.hashes[(0, index)] = leaf
                wrote.hashes.update(((level, i), value) for level, i, value in completed)
                wrote.records[index] = content
            indices.append(index)
        cursor = driver.cursor
        for name, rows in (
            ("add_record", records),
            ("add_subject", subjects),
            ("add_subtree", subtrees),
        ):
            if len(rows) == 1:
                cursor.execute(sql.sql[name], rows[0])
            elif rows:
                cursor.executemany(sql.sql[name], rows)
        driver.execute(sql.sql["move_head"], (frontier.size, json.dumps(frontier.to_json())))
        if self.signer is not None:
            root = frontier.root()
            note = sign_checkpoint(Checkpoint(self.origin, frontier.size, root), self.signer)
            driver.execute(
                sql.sql["add_checkpoint"],
                (frontier.size, root, note, sql.created_at(utcnow())),
            )
            if wrote is not None:
                wrote.checkpoint = SignedCheckpoint(frontier.size, root, note)
        if wrote is not None:
            wrote.size = frontier.size
        return indices

    # --- reading -------------------------------------------------------------------------------
    def size(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(HEAD.c.size).where(HEAD.c.id == 1)).scalar_one())

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CHECKPOINTS).order_by(CHECKPOINTS.c.size.desc()).limit(1)
            ).first()
        return SignedCheckpoint(row.size, row.root, row.note) if row else None

    def newest_checkpoint(self) -> SignedCheckpoint | None:
        """The newest checkpoint this process signed (no look-up), else :meth:`latest_checkpoint`.

        What a cosigning round asks the witnesses to cosign: it covers every record this process
        wrote; one another writer added since is covered by the next round."""
        newest = self._mem.newest
        return newest if newest is not None else self.latest_checkpoint()

    def checkpoint(self, size: int) -> SignedCheckpoint | None:
        mem = self._mem
        with mem.lock:
            kept = mem.checkpoints.get(size)
        if kept is not None:
            return kept
        with self.engine.connect() as conn:
            row = conn.execute(select(CHECKPOINTS).where(CHECKPOINTS.c.size == size)).first()
        return SignedCheckpoint(row.size, row.root, row.note) if row else None

    def checkpoints(self) -> list[SignedCheckpoint]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(CHECKPOINTS).order_by(CHECKPOINTS.c.size)).all()
        return [SignedCheckpoint(r.size, r.root, r.note) for r in rows]

    def leaf_hashes(self, size: int | None = None) -> list[bytes]:
        statement = select(RECORDS.c.leaf_hash).order_by(RECORDS.c.index)
        if size is not None:
            statement = statement.where(RECORDS.c.index < size)
        with self.engine.connect() as conn:
            return [bytes(row[0]) for row in conn.execute(statement)]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of record ``index`` in the tree of ``size`` (<= the head).

        Two queries (the head's size, then at most 2 log2(size) stored hashes).
        """
        if not 0 <= index < size:
            raise MalformedMessage(f"no record {index} in a tree of size {size}")
        hashes = self._subtree_hashes(size, merkle.inclusion_subtrees(index, size))
        if hashes is None:
            raise MalformedMessage(f"no record {index} in a tree of size {size}")
        return merkle.inclusion_proof_from(index, size, lambda level, i: hashes[(level, i)])

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof between two tree sizes (<= the head), from stored hashes."""
        return self.consistency_proofs([old_size], new_size)[0]

    def consistency_proofs(self, old_sizes: Sequence[int], new_size: int) -> list[list[bytes]]:
        """Consistency proofs from each of ``old_sizes`` to ``new_size``, with one read at most
        (of the hashes not remembered): a witness confirms all it saw in one call."""
        for old_size in old_sizes:
            if not 0 <= old_size <= new_size:
                raise MalformedMessage(f"no consistency proof from {old_size} to {new_size}")
        nodes = list(
            dict.fromkeys(
                n for old in old_sizes for n in merkle.consistency_subtrees(old, new_size)
            )
        )
        hashes = self._subtree_hashes(new_size, nodes)
        if hashes is None:
            raise MalformedMessage(
                f"no consistency proof from {min(old_sizes, default=0)} to {new_size}"
            )
        return [
            merkle.consistency_proof_from(old, new_size, lambda level, i: hashes[(level, i)])
            for old in old_sizes
        ]

    def root(self, size: int) -> bytes:
        """The root of the tree of ``size`` (<= the head), from its right edge's stored hashes."""
        hashes = self._subtree_hashes(size, merkle.range_subtrees(0, size) if size > 0 else [])
        if hashes is None or size < 0:
            raise MalformedMessage(f"no tree of size {size}")
        return merkle.root_from(size, lambda level, i: hashes[(level, i)])

    def _subtree_hashes(
        self, size: int, nodes: Sequence[merkle.Subtree]
    ) -> dict[merkle.Subtree, bytes] | None:
        """The stored hashes of ``nodes`` of the tree of ``size``; None if the log is smaller.

        Remembered ones are not read again; the rest (and the head, unless ``size`` is within
        the head remembered) in one query."""
        mem = self._mem
        remembered = mem.known(size, nodes)
        known, missing = remembered if remembered is not None else ({}, list(nodes))
        if remembered is not None and not missing:
            return known
        with self.engine.connect() as conn:
            head, found = _hashes(conn, missing)
        if size > head:
            return None
        if len(found) < len(missing):  # a writer that does not store subtrees appended since
            self.build_subtrees()
            with self.engine.connect() as conn:
                _, found = _hashes(conn, missing)
            if len(found) < len(missing):
                stored = self.count()
                raise LogDamaged(
                    f"the audit log {self.origin} lacks stored hashes for a tree of {size} "
                    f"records ({stored:,} of {head:,} records are stored): rows were removed",
                    hint="`betrokken audit verify` names them; restore the log's database from "
                    "its backup (`betrokken restore`, docs/operator.md 'Recovery'); until then "
                    "every question is refused, never answered without its proof",
                )
        mem.learn(head, found)
        known.update(found)
        return known

    def record_content(self, index: int) -> str | None:
        """The content of record ``index`` (None when there is none, or it was pruned); one this
        process appended lately is not read again."""
        mem = self._mem
        with mem.lock:
            kept = mem.records.get(index)
        if kept is not None:
            return kept
        for record in self.records(indices=[index]):
            return record.content
        return None

    def stored_subtrees(self) -> Iterator[tuple[int, bytes]]:
        """Every stored subtree hash as (``merkle.stored_position``, hash), in position order."""
        after = -1
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(SUBTREES.c.position, SUBTREES.c.hash)
                    .where(SUBTREES.c.position > after)
                    .order_by(SUBTREES.c.position)
                    .limit(BACKFILL_CHUNK)
                ).all()
            for position, value in rows:
                yield int(position), bytes(value)
            if len(rows) < BACKFILL_CHUNK:
                return
            after = int(rows[-1].position)

    def records(
        self,
        *,
        start: int = 0,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        organisation: str | None = None,
        indices: Sequence[int] | None = None,
        event: str | None = None,
    ) -> Iterator[StoredRecord]:
        statement = select(RECORDS).where(RECORDS.c.index >= start).order_by(RECORDS.c.index)
        if since is not None:
            statement = statement.where(RECORDS.c.at >= since)
        if until is not None:
            statement = statement.where(RECORDS.c.at < until)
        if organisation is not None:
            statement = statement.where(RECORDS.c.organisation == organisation)
        if indices is not None:
            statement = statement.where(RECORDS.c.index.in_(list(indices)))
        if event is not None:
            statement = statement.where(RECORDS.c.event == str(event))
        with self.engine.connect() as conn:
            for row in conn.execute(statement):
                m = row._mapping
                yield StoredRecord(m["index"], bytes(m["leaf_hash"]), m["content"], m["pruned_at"])

    def indices_for_subject(self, pseudonym: str) -> list[int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(SUBJECTS.c.index)
                .where(SUBJECTS.c.pseudonym == pseudonym)
                .order_by(SUBJECTS.c.index)
            )
            return sorted({int(r[0]) for r in rows})

    # --- retention -------------------------------------------------------------------------------
    def prune(self, before: dt.datetime) -> tuple[int, int | None, int | None]:
        """Empty the content of records older than ``before``; keep their leaf hashes.

        Returns (how many, first index, last index).
        """
        now = utcnow()
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(RECORDS.c.index).where(RECORDS.c.at < before, RECORDS.c.content.is_not(None))
            ).all()
            indices = [int(r[0]) for r in rows]
            if not indices:
                return 0, None, None
            conn.execute(delete(SUBJECTS).where(SUBJECTS.c.index.in_(indices)))
            conn.execute(
                update(RECORDS)
                .where(RECORDS.c.index.in_(indices))
                .values(content=None, pruned_at=now, answer_id="", organisation="")
            )
        with self._mem.lock:
            self._mem.records.clear()
        return len(indices), min(indices), max(indices)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(RECORDS)).scalar_one())
