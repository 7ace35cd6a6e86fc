"""The leaves of an audit log and their stored form, without the database (light to import).

What a leaf commits to (a record's canonical JSON with its own index), reading one back, and the
stored record and signed checkpoint as plain values. :mod:`betrokken.audit.log` writes and reads
them through SQLAlchemy; ``betrokken query`` (:mod:`betrokken.requester.lighttrail`) through the
database driver itself, and must produce exactly the same bytes (docs/adr/0044).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from betrokken.audit.record import AuditEntry, canonical_json
from betrokken.crypto import merkle
from betrokken.errors import MalformedMessage


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

    def checked(self) -> tuple[AuditEntry | None, str | None]:
        """The record's entry (None when pruned) and what is wrong with it (None when nothing):
        content that is unreadable, not in canonical form, claims another index, or does not
        match its leaf hash. A reader shows every good record and names the bad ones."""
        if self.content is None:
            return None, None
        try:
            claimed, entry = entry_from_leaf(self.content)
        except MalformedMessage as exc:
            return None, f"content is unreadable ({exc.message})"
        if claimed != self.index:
            return None, f"holds record {claimed} (records moved or reordered)"
        if merkle.leaf_hash(self.content.encode()) != self.leaf_hash:
            return None, "content does not match its leaf hash (altered)"
        return entry, None
