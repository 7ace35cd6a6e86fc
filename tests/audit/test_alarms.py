"""A node's alarms are bounded: repeats of one kind in a minute are counted in one record, so a
hostile coordinator sending refused questions cannot fill a node's disk (ADR 0017)."""

from __future__ import annotations

from pathlib import Path

from betrokken.audit.log import AuditLog, LogBase
from betrokken.audit.witness import ALARMS_PER_KIND_PER_MINUTE, WitnessStore
from betrokken.crypto.note import NoteKey
from betrokken.db import make_engine


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_repeated_alarms_of_one_kind_are_counted_in_one_record(tmp_path: Path) -> None:
    key = NoteKey.generate("betrokken/test/politie")
    trail = AuditLog(
        make_engine(f"sqlite:///{tmp_path / 'node.db'}", LogBase.metadata), key, key.name
    )
    clock = Clock()
    witness = WitnessStore(trail.engine, trail, "politie", clock=clock)
    for number in range(200):
        witness.alarm("forged", f"forged question {number}\nWARNING not a line of its own")
    witness.alarm("stale", "an old question")
    assert trail.size() == ALARMS_PER_KIND_PER_MINUTE + 1
    clock.now += 60
    assert witness.flush_alarms() == 1
    alarms = witness.alarms()
    assert len(alarms) == ALARMS_PER_KIND_PER_MINUTE + 2
    assert sum(a.count for a in alarms if a.kind == "forged") == 200
    counted = alarms[-1]
    assert counted.kind == "forged" and counted.count == 200 - ALARMS_PER_KIND_PER_MINUTE
    assert all("\n" not in a.message for a in alarms)  # stored escaped
    trail.engine.dispose()
