"""Two processes of one organisation may accept the same checkpoint at once (the running node's
witness loop and `betrokken node witness`, or the asking side): the second write is no error,
and a second root for a size is still a fork, refused with an alarm."""

from __future__ import annotations

from pathlib import Path

import pytest

from betrokken.audit.log import AuditLog, LogBase
from betrokken.audit.witness import WitnessStore, _Contradiction
from betrokken.crypto.note import Checkpoint, NoteKey
from betrokken.db import make_engine

ORIGIN = "betrokken/test/log"


def _store(path: Path, key: NoteKey) -> WitnessStore:
    trail = AuditLog(make_engine(f"sqlite:///{path}", LogBase.metadata), key, key.name)
    return WitnessStore(trail.engine, trail, "politie")


def test_a_checkpoint_accepted_by_another_process_between_the_read_and_the_write_is_no_error(
    tmp_path: Path,
) -> None:
    key = NoteKey.generate("betrokken/test/politie")
    first, second = _store(tmp_path / "node.db", key), _store(tmp_path / "node.db", key)
    checkpoint = Checkpoint(ORIGIN, 5, b"\x01" * 32)
    first.accept(checkpoint, "note of five")
    with second.engine.begin() as conn:  # as if it had read "not accepted" before the first
        second._accept(conn, checkpoint, "note of five", known=False)
    assert [(a.size, a.root) for a in second.accepted()] == [(5, b"\x01" * 32)]
    for store in (first, second):
        store.engine.dispose()


def test_a_second_root_for_a_size_met_at_the_write_is_a_fork(tmp_path: Path) -> None:
    key = NoteKey.generate("betrokken/test/politie")
    first, second = _store(tmp_path / "node.db", key), _store(tmp_path / "node.db", key)
    first.accept(Checkpoint(ORIGIN, 5, b"\x01" * 32), "note of five")
    with (
        pytest.raises(_Contradiction, match="two different logs of 5 records"),
        second.engine.begin() as conn,
    ):
        second._accept(conn, Checkpoint(ORIGIN, 5, b"\x02" * 32), "other", known=False)
    assert [a.root for a in second.accepted()] == [b"\x01" * 32]
    for store in (first, second):
        store.engine.dispose()
