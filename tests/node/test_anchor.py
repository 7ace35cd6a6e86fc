"""A node's anchor outside its database (node/anchor.py): an empty, older or other database is
told apart from the one the node anchored, and a state file not signed by the node's key is
refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from betrokken.audit.record import AuditEntry, Event
from betrokken.crypto.note import NoteKey
from betrokken.errors import DataLost
from betrokken.node.anchor import measure, problem, read_anchor, refusal, write_anchor
from betrokken.node.store import NodeStore

NOW = dt.datetime(2026, 12, 7, 5, 0, tzinfo=dt.UTC)
KEY = NoteKey.generate("betrokken-test/politie-test")


def _store(path: Path, records: int) -> NodeStore:
    store = NodeStore(f"sqlite:///{path}", KEY, "betrokken-test/politie-test")
    store.trail.append(
        [
            AuditEntry(event=Event.REGISTRATION, at=NOW, reason=f"r{i}", organisation="p")
            for i in range(records)
        ]
    )
    return store


def test_the_anchor_round_trips_and_the_same_database_passes(tmp_path: Path) -> None:
    store = _store(tmp_path / "n.db", 5)
    anchor = measure(store.trail, "politie-test", 3, 7, NOW)
    write_anchor(tmp_path / "node.state", anchor, KEY)
    assert (tmp_path / "node.state").stat().st_mode & 0o777 == 0o600
    assert read_anchor(tmp_path / "node.state", KEY.verifier()) == anchor
    assert problem(anchor, store.trail) is None
    store.trail.append([AuditEntry(event=Event.REGISTRATION, at=NOW, reason="later")])
    assert problem(anchor, store.trail) is None  # grown since: fine


def test_an_empty_an_older_and_another_database_are_each_named(tmp_path: Path) -> None:
    store = _store(tmp_path / "n.db", 5)
    anchor = measure(store.trail, "politie-test", 3, 7, NOW)
    empty = _store(tmp_path / "empty.db", 0)
    older = _store(tmp_path / "older.db", 3)
    other = NodeStore(f"sqlite:///{tmp_path / 'other.db'}", KEY, "betrokken-test/politie-test")
    other.trail.append(
        [AuditEntry(event=Event.REGISTRATION, at=NOW, reason=f"x{i}") for i in range(6)]
    )
    why = problem(anchor, empty.trail)
    assert why is not None and "leeg" in why[0] and "empty" in why[1]
    why = problem(anchor, older.trail)
    assert why is not None and "older than its anchor" in why[1]
    why = problem(anchor, other.trail)
    assert why is not None and "another than the anchored one" in why[1]
    error = refusal(tmp_path / "node.state", why)
    assert error.exit_code == 11 and "node reset" in (error.hint or "")
    assert error.message.index("andere") < error.message.index("another")  # Dutch first


def test_a_state_file_altered_or_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path / "n.db", 5)
    path = tmp_path / "node.state"
    write_anchor(path, measure(store.trail, "politie-test", 3, 7, NOW), KEY)
    # The attacker's move: lower the anchored size so an older database passes.
    path.write_text(path.read_text().replace("trail_size 5", "trail_size 1"))
    with pytest.raises(DataLost, match="not signed by the node's own key"):
        read_anchor(path, KEY.verifier())
    write_anchor(path, measure(store.trail, "politie-test", 0, 0, NOW), NoteKey.generate("x"))
    with pytest.raises(DataLost):
        read_anchor(path, KEY.verifier())
    assert read_anchor(tmp_path / "missing.state", KEY.verifier()) is None
