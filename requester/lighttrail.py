"""The asking organisation's trail and witness state written through the database driver.

``betrokken query`` asks one question and exits; importing SQLAlchemy (and building its
declarative tables) cost it about 0.3 s of CPU, more than the question itself (docs/adr/0044).
This module does what the question needs of the organisation's own database — read the day's
questions for the user limits, read the newest witnessed checkpoint, append the question's record
to the trail with its checkpoint and keep the receipt's checkpoint as accepted or seen, in one
transaction — with plain SQL run by ``sqlite3`` or ``psycopg`` themselves.

The schema is the one the SQLAlchemy tables (:mod:`betrokken.audit.log`,
:mod:`betrokken.audit.witness`) declare and the node's Alembic chain creates; what is written
here reads back identically through :class:`~betrokken.audit.log.AuditLog` and the ``audit``
tools (tests/requester/test_lighttrail.py, SQLite and PostgreSQL). It only vouches for the usual
case: a database at the newest revision of the node's chain, with its head row and stored subtree
hashes up to date, and nothing beyond a record and a witnessed checkpoint to write. Anything else
— an empty or outdated database, a URL it does not know, a log to catch up, awaited late answers,
an alarm — is handed to the SQLAlchemy store (:meth:`LightTrail.full`), which does it as before,
with the same errors.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from betrokken.audit.leaves import StoredRecord, leaf_bytes
from betrokken.audit.proofs import Accepted
from betrokken.audit.record import AuditEntry
from betrokken.clock import utcnow
from betrokken.crypto import merkle
from betrokken.crypto.note import Checkpoint, NoteKey, sign_checkpoint
from betrokken.errors import InternalError, QuestionRefused
from betrokken.migrations import head_from_files

if TYPE_CHECKING:
    from betrokken.audit.log import AuditLog
    from betrokken.audit.witness import WitnessStore
    from betrokken.config.load import Loaded
    from betrokken.config.schema import NodeConfig

# As betrokken.db sets up every SQLite connection (WAL, durable commits, a bounded WAL).
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA wal_autocheckpoint=256",
    "PRAGMA foreign_keys=ON",
)
_SQLITE_URL = re.compile(r"^sqlite:///(/[^?]+)$")
_POSTGRES_URL = re.compile(r"^(postgresql|postgres)(\+psycopg)?://")


class NotVouched(Exception):
    """The light store does not vouch for this database or this step: use the full store."""


def _sqlite_time(value: dt.datetime) -> str:
    """A DateTime value as SQLAlchemy's SQLite dialect stores it (its wall fields, no zone)."""
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )


def _covered(max_position: int | None) -> int:
    """How many leaves the stored subtrees cover (as :mod:`betrokken.audit.log` counts)."""
    if max_position is None:
        return 0
    level, index = merkle.subtree_at(int(max_position))
    return (index + 1) << level


@dataclass
class _Connection:
    """One DBAPI connection and the dialect's ways with placeholders and times."""

    raw: Any
    sqlite: bool
    errors: tuple[type[BaseException], ...]
    writing: bool = False  # inside :func:`_transaction`

    def done_reading(self) -> None:
        """End a read outside a transaction (psycopg began one); nothing inside one."""
        if not self.writing:
            self.raw.rollback()

    def sql(self, text: str) -> str:
        return text if self.sqlite else text.replace("?", "%s")

    def time(self, value: dt.datetime) -> Any:
        return _sqlite_time(value) if self.sqlite else value

    def read_time(self, value: Any) -> dt.datetime | None:
        if value is None or isinstance(value, dt.datetime):
            return value
        return dt.datetime.fromisoformat(value)  # SQLite: naive, as SQLAlchemy gives it

    def rows(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        cursor = self.raw.cursor()
        try:
            cursor.execute(self.sql(text), params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def run(self, text: str, params: Sequence[Any] = ()) -> None:
        cursor = self.raw.cursor()
        try:
            cursor.execute(self.sql(text), params)
        finally:
            cursor.close()

    def many(self, text: str, params: Sequence[Sequence[Any]]) -> None:
        cursor = self.raw.cursor()
        try:
            cursor.executemany(self.sql(text), params)
        finally:
            cursor.close()


def _connect(url: str) -> _Connection:
    """A connection to a database the light store knows how to open, else :class:`NotVouched`."""
    found = _SQLITE_URL.match(url)
    if found:
        import sqlite3

        path = Path(found.group(1))
        if not path.is_file():
            raise NotVouched("no database file yet")  # the full store creates it (0600)
        from betrokken.dbfile import warn_if_shared

        warn_if_shared(path, "database")
        raw = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            for pragma in _SQLITE_PRAGMAS:
                raw.execute(pragma).close()
        except sqlite3.Error as exc:
            raw.close()
            raise NotVouched(str(exc)) from None  # the full store says it in its own words
        return _Connection(raw, True, (sqlite3.Error,))
    if _POSTGRES_URL.match(url):
        import psycopg

        conninfo = "postgresql://" + url.split("://", 1)[1]
        try:
            server = psycopg.connect(conninfo)
        except psycopg.Error as exc:
            raise NotVouched(str(exc)) from None  # the full store says it in its own words
        return _Connection(server, False, (psycopg.Error,))
    raise NotVouched("a database URL the light store does not open")


@contextmanager
def _transaction(conn: _Connection) -> Iterator[_Connection]:
    """One transaction, committed at the end, rolled back on any error."""
    conn.raw.rollback()  # no read left open (psycopg)
    if conn.sqlite:
        conn.raw.execute("BEGIN").close()
    conn.writing = True
    try:
        yield conn
    except BaseException:
        conn.raw.rollback()
        raise
    else:
        conn.raw.commit()
    finally:
        conn.writing = False


class LightTrail:
    """The organisation's own trail as a question needs it (the subset of
    :class:`~betrokken.audit.log.AuditLog` that :class:`~betrokken.requester.client.Requester`
    uses), on one driver connection."""

    def __init__(
        self, conn: _Connection, signer: NoteKey | None, origin: str, loaded: Loaded[NodeConfig]
    ) -> None:
        self._conn = conn
        self.signer = signer
        self.origin = origin
        self._loaded = loaded
        self._full: tuple[AuditLog, WitnessStore] | None = None
        self.store_errors = conn.errors

    @classmethod
    def open(cls, loaded: Loaded[NodeConfig], signer: NoteKey) -> LightTrail:
        """The trail of ``loaded``'s organisation when its database is current and its log up to
        date; :class:`NotVouched` otherwise (the full store opens, creates or refuses it)."""
        newest = head_from_files("node")
        if newest is None:
            raise NotVouched("the chain's head is not read from its files")
        conn = _connect(loaded.component.database)
        try:
            try:
                revisions = [r[0] for r in conn.rows("SELECT version_num FROM alembic_version")]
                head = conn.rows(
                    "SELECT size, (SELECT max(position) FROM log_subtrees) FROM log_head "
                    "WHERE id = 1"
                )
            finally:
                conn.raw.rollback()  # end the read (psycopg opened a transaction)
        except conn.errors as exc:
            conn.raw.close()
            raise NotVouched(str(exc)) from None
        if revisions != [newest] or not head or _covered(head[0][1]) < (int(head[0][0]) & ~1):
            conn.raw.close()
            raise NotVouched("the database is not current, or its log has to catch up")
        return cls(conn, signer, signer.name, loaded)

    def close(self) -> None:
        self._conn.raw.close()
        if self._full is not None:
            self._full[0].engine.dispose()

    def full(self) -> tuple[AuditLog, WitnessStore]:
        """The SQLAlchemy trail and witness state of the same database (made once)."""
        if self._full is None:
            from betrokken.audit.trail import open_trail

            self._full = open_trail(self._loaded)
        return self._full

    def begin(self) -> Any:
        """A transaction (a context manager giving the connection to pass to :meth:`append`)."""
        return _transaction(self._conn)

    def records(
        self,
        *,
        start: int = 0,
        since: dt.datetime | None = None,
        organisation: str | None = None,
        event: str | None = None,
    ) -> Iterator[StoredRecord]:
        conn = self._conn
        where, params = ['"index" >= ?'], [start]  # type: list[str], list[Any]
        if since is not None:
            where.append("at >= ?")
            params.append(conn.time(since))
        if organisation is not None:
            where.append("organisation = ?")
            params.append(organisation)
        if event is not None:
            where.append("event = ?")
            params.append(str(event))
        try:
            rows = conn.rows(  # the conditions are fixed texts; the values are parameters
                'SELECT "index", leaf_hash, content, pruned_at FROM log_records WHERE '  # noqa: S608
                + " AND ".join(where)
                + ' ORDER BY "index"',
                params,
            )
        finally:
            conn.done_reading()
        for index, leaf, content, pruned_at in rows:
            yield StoredRecord(int(index), bytes(leaf), content, conn.read_time(pruned_at))

    def append(self, entries: Sequence[AuditEntry], conn: _Connection) -> list[int]:
        """Append records in ``conn``'s transaction, as :meth:`AuditLog.append` does: the head
        row taken first (it serialises appends), leaves, subjects, completed subtrees, the new
        head and a signed checkpoint. :class:`NotVouched` when the stored subtrees lag (the
        full store catches them up)."""
        conn.run("UPDATE log_head SET size = size WHERE id = 1")
        rows = conn.rows(
            "SELECT size, frontier, (SELECT max(position) FROM log_subtrees) FROM log_head "
            "WHERE id = 1"
        )
        if not rows:
            raise NotVouched("no head row")
        size, frontier_json, highest = rows[0]
        frontier = merkle.Frontier.from_json(json.loads(frontier_json))
        if frontier.size != size:
            raise InternalError("audit log head is inconsistent; run `betrokken audit verify`")
        if _covered(highest) != (int(size) & ~1):
            raise NotVouched("the stored subtrees lag behind the head")
        indices, records, subjects, subtrees = [], [], [], []
        for entry in entries:
            index = frontier.size
            data = leaf_bytes(index, entry)
            leaf = merkle.leaf_hash(data)
            records.append(
                (
                    index,
                    leaf,
                    data.decode(),
                    conn.time(entry.at),
                    entry.event.value,
                    entry.answer_id,
                    entry.organisation,
                )
            )
            subjects += [(index, s.pseudonym or s.fingerprint) for s in entry.subjects]
            subtrees += [
                (merkle.stored_position(level, i), value)
                for level, i, value in frontier.append(leaf)
            ]
            indices.append(index)
        if records:
            conn.many(
                'INSERT INTO log_records ("index", leaf_hash, content, at, event, answer_id, '
                "organisation, pruned_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                records,
            )
        if subjects:
            conn.many('INSERT INTO log_subjects ("index", pseudonym) VALUES (?, ?)', subjects)
        if subtrees:
            conn.many("INSERT INTO log_subtrees (position, hash) VALUES (?, ?)", subtrees)
        conn.run(
            "UPDATE log_head SET size = ?, frontier = ? WHERE id = 1",
            (frontier.size, json.dumps(frontier.to_json())),
        )
        if self.signer is not None:
            root = frontier.root()
            note = sign_checkpoint(Checkpoint(self.origin, frontier.size, root), self.signer)
            conn.run(
                "INSERT INTO log_checkpoints (size, root, note, created_at) VALUES (?, ?, ?, ?)",
                (frontier.size, root, note, conn.time(utcnow())),
            )
        return indices


class LightWitness:
    """What the organisation witnessed of the coordinator's log, as a question needs it (the
    subset of :class:`~betrokken.audit.witness.WitnessStore` the requester uses)."""

    def __init__(self, trail: LightTrail) -> None:
        self.trail = trail

    def last(self) -> Accepted | None:
        conn = self.trail._conn
        try:
            rows = conn.rows(
                "SELECT size, root, note, accepted_at FROM witnessed_checkpoints "
                "ORDER BY size DESC LIMIT 1"
            )
        finally:
            conn.done_reading()
        if not rows:
            return None
        size, root, note, at = rows[0]
        return Accepted(int(size), bytes(root), note, conn.read_time(at))

    def alarm(self, kind: str, message: str, **details: str) -> None:
        """An alarm is rare and recorded as the full store records it."""
        self.trail.full()[1].alarm(kind, message, **details)

    def accept(self, checkpoint: Checkpoint, note: str, conn: _Connection) -> None:
        known = conn.rows(
            "SELECT root FROM witnessed_checkpoints WHERE size = ?", (checkpoint.size,)
        )
        if not known:
            conn.run(
                "INSERT INTO witnessed_checkpoints (size, root, note, accepted_at) "
                "VALUES (?, ?, ?, ?)",
                (checkpoint.size, checkpoint.root, note, conn.time(utcnow())),
            )

    def seen(self, checkpoint: Checkpoint, note: str, answer_id: str, conn: _Connection) -> None:
        """As :meth:`WitnessStore.seen`: a second root for a size is a fork; a checkpoint
        already witnessed is not kept again; one seen before gains the answer id."""
        size = checkpoint.size
        witnessed = conn.rows("SELECT root FROM witnessed_checkpoints WHERE size = ?", (size,))
        seen = conn.rows("SELECT root, answer_ids FROM seen_checkpoints WHERE size = ?", (size,))
        for root, *_rest in (*witnessed, *seen):
            if bytes(root) != checkpoint.root:
                raise QuestionRefused(
                    f"the coordinator signed two different logs of {size} records (a fork)",
                    kind="fork",
                )
        if witnessed:
            return  # already part of the witnessed log
        if not seen:
            conn.run(
                "INSERT INTO seen_checkpoints (size, root, note, seen_at, answer_ids) "
                "VALUES (?, ?, ?, ?, ?)",
                (size, checkpoint.root, note, conn.time(utcnow()), answer_id),
            )
            return
        already = seen[0][1]
        if answer_id not in already.split(",") and len(already) < 64_000:
            conn.run(
                "UPDATE seen_checkpoints SET answer_ids = ? WHERE size = ?",
                (f"{already},{answer_id}", size),
            )
