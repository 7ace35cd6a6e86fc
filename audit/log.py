"""A tamper-evident audit log: records as leaves of an RFC 9162 Merkle tree, signed checkpoints.

The same code serves the coordinator's log, each node's own trail and the key service's log.
Records and their leaves are appended in the caller's transaction (so a record and what it
records commit together, or not at all), the tree's right edge (its frontier) lives in a one-row
head table whose update serialises appends across processes, and a checkpoint (C2SP signed note)
is signed for every new tree size.

Each leaf is the canonical JSON of a record plus its own index, so a record moved to another
position no longer matches. Pruning (after the retention term) empties a record's content but
keeps its leaf hash, so the tree still verifies.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
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

from betrokken.audit.record import AuditEntry, canonical_json
from betrokken.crypto import merkle
from betrokken.crypto.note import Checkpoint, NoteKey, sign_checkpoint
from betrokken.errors import InternalError, MalformedMessage


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


RECORDS: Table = LogRecord.__table__  # type: ignore[assignment]
SUBJECTS: Table = LogSubject.__table__  # type: ignore[assignment]
HEAD: Table = LogHead.__table__  # type: ignore[assignment]
CHECKPOINTS: Table = LogCheckpoint.__table__  # type: ignore[assignment]


def leaf_bytes(index: int, entry: AuditEntry) -> bytes:
    """What a leaf commits to: the record's canonical JSON with its own index."""
    return canonical_json({**entry.to_json(), "index": index})


def entry_from_leaf(data: str | bytes) -> tuple[int, AuditEntry]:
    raw = data.encode() if isinstance(data, str) else data
    try:
        parsed: dict[str, Any] = json.loads(raw)
        index = int(parsed.pop("index"))
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedMessage(f"stored record is not a log leaf: {exc}") from None
    entry = AuditEntry.from_json(parsed)
    if leaf_bytes(index, entry) != raw:
        raise MalformedMessage("stored record is not in canonical form")
    return index, entry


@dataclass(frozen=True)
class SignedCheckpoint:
    size: int
    root: bytes
    note: str


@dataclass(frozen=True)
class StoredRecord:
    index: int
    leaf_hash: bytes
    content: str | None  # None once pruned
    pruned_at: dt.datetime | None

    @property
    def entry(self) -> AuditEntry | None:
        return entry_from_leaf(self.content)[1] if self.content is not None else None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AuditLog:
    """An append-only Merkle log in the component's own database."""

    def __init__(self, engine: Engine, signer: NoteKey | None, origin: str) -> None:
        self.engine = engine
        self.signer = signer
        self.origin = origin
        LogBase.metadata.create_all(engine)
        with engine.begin() as conn:
            if conn.execute(select(HEAD.c.id)).first() is None:
                conn.execute(
                    insert(HEAD).values(
                        id=1, size=0, frontier=json.dumps(merkle.Frontier().to_json())
                    )
                )

    # --- writing -------------------------------------------------------------------------------
    def append(self, entries: Sequence[AuditEntry], conn: Connection | None = None) -> list[int]:
        """Append records (in ``conn``'s transaction if given); returns their indices."""
        if conn is None:
            with self.engine.begin() as own:
                return self._append(own, entries)
        return self._append(conn, entries)

    def _append(self, conn: Connection, entries: Sequence[AuditEntry]) -> list[int]:
        # Taking the head row first serialises appends (a row lock on PostgreSQL).
        conn.execute(update(HEAD).where(HEAD.c.id == 1).values(size=HEAD.c.size))
        head = conn.execute(select(HEAD.c.size, HEAD.c.frontier).where(HEAD.c.id == 1)).one()
        frontier = merkle.Frontier.from_json(json.loads(head.frontier))
        if frontier.size != head.size:
            raise InternalError("audit log head is inconsistent; run `betrokken audit verify`")
        indices = []
        for entry in entries:
            index = frontier.size
            data = leaf_bytes(index, entry)
            leaf = merkle.leaf_hash(data)
            conn.execute(
                insert(RECORDS).values(
                    index=index,
                    leaf_hash=leaf,
                    content=data.decode(),
                    at=entry.at,
                    event=entry.event.value,
                    answer_id=entry.answer_id,
                    organisation=entry.organisation,
                )
            )
            for subject in entry.subjects:
                conn.execute(insert(SUBJECTS).values(index=index, pseudonym=subject.pseudonym))
            frontier.append(leaf)
            indices.append(index)
        conn.execute(
            update(HEAD)
            .where(HEAD.c.id == 1)
            .values(size=frontier.size, frontier=json.dumps(frontier.to_json()))
        )
        if self.signer is not None:
            root = frontier.root()
            note = sign_checkpoint(Checkpoint(self.origin, frontier.size, root), self.signer)
            conn.execute(
                insert(CHECKPOINTS).values(
                    size=frontier.size, root=root, note=note, created_at=utcnow()
                )
            )
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

    def checkpoint(self, size: int) -> SignedCheckpoint | None:
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
        leaves = self.leaf_hashes(size)
        if not 0 <= index < size or len(leaves) != size:
            raise MalformedMessage(f"no record {index} in a tree of size {size}")
        return merkle.inclusion_proof(leaves, index)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        leaves = self.leaf_hashes(new_size)
        if not 0 <= old_size <= new_size or len(leaves) != new_size:
            raise MalformedMessage(f"no consistency proof from {old_size} to {new_size}")
        return merkle.consistency_proof(leaves, old_size)

    def records(
        self,
        *,
        start: int = 0,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        organisation: str | None = None,
        indices: Sequence[int] | None = None,
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
        return len(indices), min(indices), max(indices)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(RECORDS)).scalar_one())
