"""The coordinator's only state: its tamper-evident audit log (P4, P6).

Every question is a ``search`` record appended, and covered by a signed checkpoint, before any
node is asked; which nodes answered is an ``outcome`` record; refusals are records too. If a record
cannot be written the coordinator refuses to answer (fail closed). It keeps no copy of any node's
registrations, and — the question's envelopes and replies being sealed — no pseudonym, case
reference or answer either.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.exc import SQLAlchemyError

from betrokken.audit.log import RECORDS, AuditLog, LogBase, entry_from_leaf
from betrokken.audit.record import AuditEntry, Event
from betrokken.audit.witness import LogProof
from betrokken.crypto.note import NoteKey
from betrokken.db import make_engine
from betrokken.errors import (
    AuditUnavailable,
    LogDamaged,
    MalformedMessage,
    Unavailable,
    WrongRole,
)

PROOFS_KEPT = 1024  # consistency proofs remembered (a few per question, and the witnesses')
# The events recorded for one answer id: by the answer_id index only (see asked_before).
_EVENTS_OF_ANSWER = select(RECORDS.c.event).where(RECORDS.c.answer_id == bindparam("answer_id"))
_RECORD_AT = select(RECORDS.c.event, RECORDS.c.answer_id, RECORDS.c.content).where(
    RECORDS.c.index == bindparam("index")
)
_CONTENTS_OF_ANSWER = select(RECORDS.c.event, RECORDS.c.content).where(
    RECORDS.c.answer_id == bindparam("answer_id")
)


class _Proofs:
    """Consistency proofs made, by (old size, new size): bounded, least recently used out."""

    def __init__(self, limit: int = PROOFS_KEPT) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[int, int], tuple[bytes, ...]] = OrderedDict()

    def get(self, olds: Sequence[int], new: int) -> list[tuple[bytes, ...] | None]:
        found: list[tuple[bytes, ...] | None] = []
        with self._lock:
            kept = self._kept
            for old in olds:
                proof = kept.get((old, new))
                if proof is not None:
                    kept.move_to_end((old, new))
                found.append(proof)
        return found

    def put(self, new: int, made: dict[int, list[bytes]]) -> None:
        with self._lock:
            for old, proof in made.items():
                self._kept[(old, new)] = tuple(proof)
            while len(self._kept) > self.limit:
                self._kept.popitem(last=False)


@dataclass(frozen=True)
class Receipt:
    """A record's inclusion in the checkpoint signed right after it was written."""

    leaf_index: int
    tree_size: int
    checkpoint: str
    inclusion_proof: list[bytes]
    record: bytes


class AuditStore:
    def __init__(self, url: str, signer: NoteKey | None, origin: str) -> None:
        self.engine = make_engine(url, LogBase.metadata, component="coordinator")
        self.log = AuditLog(self.engine, signer, origin)

    @property
    def _proofs(self) -> _Proofs:
        proofs: _Proofs | None = self.__dict__.get("_kept_proofs")
        if proofs is None:
            proofs = self.__dict__.setdefault("_kept_proofs", _Proofs())
        return proofs

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """The log's consistency proof from ``old`` to ``new``, made once: a proof between two
        sizes of an append-only log never changes, and a question needs the same few (its
        witnesses' and its nodes' sizes to the cosigned one) in its round, its lookups and its
        receipt, as the witnesses' checks need the same few for every node."""
        return self.consistency_proofs([old], new)[0]

    def consistency_proofs(self, olds: Sequence[int], new: int) -> list[list[bytes]]:
        """:meth:`consistency_proof` for each of ``olds``; those not made before in one read."""
        proofs = self._proofs
        found = dict(zip(olds, proofs.get(olds, new), strict=True))
        missing = list(dict.fromkeys(old for old, proof in found.items() if proof is None))
        if missing:
            made = dict(zip(missing, self.log.consistency_proofs(missing, new), strict=True))
            proofs.put(new, made)
            found.update((old, tuple(proof)) for old, proof in made.items())
        return [list(found[old] or ()) for old in olds]

    def append(self, entry: AuditEntry) -> int:
        """Write one record durably (with its signed checkpoint), or raise AuditUnavailable."""
        try:
            return self.log.append([entry])[0]
        except SQLAlchemyError as exc:
            cause = type(getattr(exc, "orig", None) or exc).__name__
            raise AuditUnavailable(
                f"the audit record could not be written ({cause})",
                hint="the coordinator's operator must restore its database; nothing was asked",
            ) from None

    def asked_before(self, answer_id: str) -> bool:
        """Whether a question with this answer id was recorded already (a replay).

        Looked up by answer id alone, its own index (a question has two or three records): with
        the event in the WHERE clause SQLite chose the index on event and read every search
        record, so each question cost more as the log grew (found by bench.hotspots).
        """
        with self.engine.connect() as conn:
            events = conn.execute(_EVENTS_OF_ANSWER, {"answer_id": answer_id}).scalars().all()
        return Event.SEARCH.value in events

    def record_for_node(
        self,
        index: int,
        size: int,
        node: str,
        asking: Callable[[str], bool] = lambda answer_id: False,
    ) -> tuple[bytes, list[bytes]]:
        """The stored content of search record ``index`` — read from the database, never from
        memory, damage and all — with its inclusion proof in the tree of ``size``, for ``node``
        only if that question's outcome record names ``node`` as asked (docs/adr/0042): a node
        sees again only a record it was sent with a question, never another's (P3).

        Raises :class:`WrongRole` for any other record, :class:`Unavailable` while the question
        is still being asked (``asking``: its outcome is not written yet), and
        :class:`LogDamaged` when the record is not there or whom it concerns cannot be read (the
        node then alarms).
        """
        with self.engine.connect() as conn:
            row = conn.execute(_RECORD_AT, {"index": index}).first()
            others = (
                conn.execute(_CONTENTS_OF_ANSWER, {"answer_id": row.answer_id}).all()
                if row is not None and row.answer_id
                else []
            )
        if row is None:
            raise LogDamaged(
                f"record {index} is not in the coordinator's log database",
                hint="`betrokken audit verify` names the missing records; restore the log's "
                "database from its backup",
            )
        if row.event != Event.SEARCH.value:
            raise WrongRole(f"record {index} is not a question's record; a node gets only those")
        asked: set[str] | None = None
        for event, content in others:
            if event != Event.OUTCOME.value or content is None:
                continue
            try:
                asked = set(entry_from_leaf(content)[1].details.get("asked", "").split(","))
            except (MalformedMessage, ValueError, UnicodeDecodeError):
                continue
        if asked is None and asking(row.answer_id):
            raise Unavailable(f"record {index}'s question is still being asked; ask again later")
        if asked is None:
            raise LogDamaged(
                f"the outcome of record {index} is missing or cannot be read, so whom it "
                "concerns is unknown (the coordinator stopped during the question, or the "
                "record was removed or altered)",
                hint="`betrokken audit verify` names the damaged records",
            )
        if node not in asked:
            raise WrongRole(
                f"record {index} is of a question {node} was not asked; a node gets only the "
                "records of its own questions"
            )
        proof = self.log.inclusion_proof(index, size)
        return (row.content or "").encode(), proof

    def receipt(self, index: int, at: tuple[int, str] | None = None) -> Receipt:
        """Inclusion of record ``index`` in the checkpoint signed right after it was written,
        or in the checkpoint ``at`` (its size and its note: a cosigned one that covers it)."""
        try:
            size = at[0] if at is not None else index + 1
            checkpoint = self.log.checkpoint(size)
            content = self.log.record_content(index)
            proof = self.log.inclusion_proof(index, size)
        except SQLAlchemyError:
            raise AuditUnavailable("the audit log could not produce a receipt") from None
        if checkpoint is None or content is None:
            raise AuditUnavailable("the audit log has no checkpoint for this record")
        note = checkpoint.note
        if at is not None:
            if not at[1].startswith(checkpoint.note.rstrip("\n")):
                raise AuditUnavailable("the cosigned checkpoint is not the log's own")
            note = at[1]
        return Receipt(index, size, note, proof, content.encode())

    def consistency(self, size: int, witnessed: int) -> list[bytes]:
        """The proof between ``size`` and a witness's ``witnessed`` size, in either direction.

        A witnessed size beyond the log (a witness that saw records this log no longer has) gets
        no proof: the witness's own check then fails, as it should.
        """
        if witnessed <= 0 or witnessed == size:
            return []
        old, new = sorted((size, witnessed))
        try:
            return self.consistency_proof(old, new)
        except MalformedMessage:
            return []
        except SQLAlchemyError:
            raise AuditUnavailable("the audit log could not produce a consistency proof") from None

    def log_proof(self, receipt: Receipt, witnessed: int | None) -> LogProof:
        size = witnessed or 0
        return LogProof(
            record=receipt.record,
            leaf_index=receipt.leaf_index,
            tree_size=receipt.tree_size,
            checkpoint=receipt.checkpoint,
            inclusion_proof=tuple(receipt.inclusion_proof),
            consistency_size=size,
            consistency_proof=tuple(self.consistency(receipt.tree_size, size)),
        )
