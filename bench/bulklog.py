"""Large audit logs made quickly, for tests and measurements: records inserted in bulk.

Signing 10^5 checkpoints one append at a time would take minutes; this writes the records rows
and the head directly, as a database from before ADR 0010 would hold them, and leaves the
subtree hashes to the backfill ``AuditLog`` runs when it opens such a log.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import Engine, insert, update

from betrokken.audit.log import HEAD, RECORDS, AuditLog, LogBase, leaf_bytes
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.crypto import merkle

AT = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
CHUNK = 20_000


def realistic_entry(n: int) -> AuditEntry:
    """A search record of the size the coordinator writes (one person asked)."""
    return AuditEntry(
        event=Event.SEARCH,
        at=AT,
        answer_id=f"{n:032x}",
        organisation="zvh-amsterdam",
        user="regisseur-17",
        role="regisseur",
        access_point="10.0.0.7:51234",
        purpose="zvh-triage",
        legal_basis="Wet verplichte ggz art. 8:1",
        subjects=(Subject(f"{n:0128x}", "k1", f"{n:016x}", "CASE-2026-000123"),),
        details={"asked": "ggz,politie,gemeente,reclassering", "persons": "1"},
    )


def add_records(engine: Engine, start: int, stop: int, *, content: bool = False) -> None:
    """Insert records ``start..stop-1`` and move the head to ``stop`` (no subtree hashes).

    Without ``content`` the records look pruned (leaf hash kept, content emptied).
    """
    LogBase.metadata.create_all(engine)
    with engine.begin() as conn:
        head = conn.execute(HEAD.select()).one()
        frontier = merkle.Frontier.from_json(json.loads(head.frontier))
        assert frontier.size == start, f"the log has {frontier.size} records, not {start}"
        for low in range(start, stop, CHUNK):
            rows = []
            for index in range(low, min(stop, low + CHUNK)):
                data = (
                    leaf_bytes(index, realistic_entry(index))
                    if content
                    else index.to_bytes(8, "big")
                )
                leaf = merkle.leaf_hash(data)
                frontier.append(leaf)
                rows.append(
                    {
                        "index": index,
                        "leaf_hash": leaf,
                        "content": data.decode() if content else None,
                        "at": AT,
                        "event": Event.SEARCH.value,
                        "answer_id": "",
                        "organisation": "",
                        "pruned_at": None if content else AT,
                    }
                )
            conn.execute(insert(RECORDS), rows)
        conn.execute(update(HEAD).values(size=stop, frontier=json.dumps(frontier.to_json())))


def bulk_log(engine: Engine, size: int, *, content: bool = False) -> AuditLog:
    """A log of ``size`` records; opening it stores the subtree hashes (the backfill path)."""
    AuditLog(engine, None, "bulk")  # creates the tables and the head row
    add_records(engine, 0, size, content=content)
    return AuditLog(engine, None, "bulk")
