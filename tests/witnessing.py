"""A coordinator's log in memory and a witness's state on disk, for tests of witnessing.

The log is a list of leaf hashes signed with a key made for the test; the witness state is an
organisation's database (SQLite) with its trail, as a node keeps it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from betrokken.audit.log import AuditLog, LogBase
from betrokken.audit.witness import WitnessStore
from betrokken.crypto import merkle
from betrokken.crypto.note import Checkpoint, NoteKey, sign_checkpoint
from betrokken.db import make_engine

ORIGIN = "betrokken/test/coordinator"
LOG = NoteKey.generate(ORIGIN)


def leaves(count: int, label: str = "record") -> list[bytes]:
    return [merkle.leaf_hash(f"{label} {i}".encode()) for i in range(count)]


def signed(history: list[bytes]) -> tuple[Checkpoint, str]:
    """The checkpoint of ``history`` and its note, signed with the test log's key."""
    checkpoint = Checkpoint(ORIGIN, len(history), merkle.root(history))
    return checkpoint, sign_checkpoint(checkpoint, LOG)


@contextmanager
def witness_state(
    folder: Path, organisation: str = "politie", *, in_memory: bool = False
) -> Iterator[WitnessStore]:
    key = NoteKey.generate(f"betrokken/test/{organisation}")
    trail = AuditLog(
        make_engine(f"sqlite:///{folder / 'node.db'}", LogBase.metadata), key, key.name
    )
    try:
        yield WitnessStore(trail.engine, trail, organisation, in_memory=in_memory)
    finally:
        trail.engine.dispose()
