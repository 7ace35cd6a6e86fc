"""The coordinator's only state: its tamper-evident audit log (P4, P6).

Every question is a ``search`` record appended, and covered by a signed checkpoint, before any
node is asked; its ``outcome`` is a second record; refusals are records too. If a record cannot be
written the coordinator refuses to answer (fail closed). No copy of any node's registrations.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from betrokken.audit.log import AuditLog, LogBase
from betrokken.audit.record import AuditEntry
from betrokken.crypto.note import NoteKey
from betrokken.db import make_engine
from betrokken.errors import AuditUnavailable


@dataclass(frozen=True)
class Receipt:
    leaf_index: int
    tree_size: int
    checkpoint: str
    inclusion_proof: list[bytes]
    record: bytes


class AuditStore:
    def __init__(self, url: str, signer: NoteKey | None, origin: str) -> None:
        self.engine = make_engine(url, LogBase.metadata)
        self.log = AuditLog(self.engine, signer, origin)

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

    def receipt(self, index: int) -> Receipt:
        """Inclusion of record ``index`` in the checkpoint signed right after it was written."""
        try:
            size = index + 1
            checkpoint = self.log.checkpoint(size)
            record = next(iter(self.log.records(indices=[index])))
            proof = self.log.inclusion_proof(index, size)
        except (SQLAlchemyError, StopIteration):
            raise AuditUnavailable("the audit log could not produce a receipt") from None
        if checkpoint is None or record.content is None:
            raise AuditUnavailable("the audit log has no checkpoint for this record")
        return Receipt(index, size, checkpoint.note, proof, record.content.encode())
