"""The audit store writes durably or refuses (fail closed), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text

from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.coordinator.store import AuditStore
from betrokken.crypto import merkle
from betrokken.crypto.note import NoteKey, open_checkpoint
from betrokken.errors import AuditUnavailable

KEY = NoteKey.generate("betrokken/test/coordinator")


def _entry(answer_id: str) -> AuditEntry:
    return AuditEntry(
        event=Event.SEARCH,
        at=dt.datetime.now(dt.UTC),
        answer_id=answer_id,
        organisation="zvh",
        user="u",
        role="regisseur",
        purpose="zvh-triage",
        legal_basis="AVG 6(1)(e)",
        subjects=(Subject("ab" * 64, "k1", "ps-1", "C"),),
    )


@pytest.mark.postgres
def test_append_sign_and_prove(database_url: str) -> None:
    store = AuditStore(database_url, KEY, KEY.name)
    first = store.append(_entry("a"))
    second = store.append(_entry("b"))
    assert (first, second) == (0, 1)
    receipt = store.receipt(second)
    checkpoint = open_checkpoint(receipt.checkpoint, KEY.verifier(), KEY.name)
    assert checkpoint.size == 2
    assert merkle.verify_inclusion(
        merkle.leaf_hash(receipt.record), 1, 2, receipt.inclusion_proof, checkpoint.root
    )
    assert [r.entry.answer_id for r in store.log.records() if r.entry] == ["a", "b"]
    assert store.log.indices_for_subject("ab" * 64) == [0, 1]


@pytest.mark.postgres
def test_an_unwritable_store_refuses(database_url: str) -> None:
    store = AuditStore(database_url, KEY, KEY.name)
    with store.engine.begin() as conn:
        if database_url.startswith("sqlite"):
            conn.execute(
                text(
                    "create trigger refuse before insert on log_records "
                    "begin select raise(abort, 'broken'); end"
                )
            )
        else:
            conn.execute(
                text(
                    "create function refuse() returns trigger language plpgsql as "
                    "$$ begin raise exception 'broken'; end $$"
                )
            )
            conn.execute(
                text(
                    "create trigger refuse before insert on log_records "
                    "for each row execute function refuse()"
                )
            )
    with pytest.raises(AuditUnavailable) as info:
        store.append(_entry("c"))
    assert info.value.exit_code == 7
    assert list(store.log.records()) == []
    assert store.log.size() == 0  # the head did not move either


def test_the_replay_check_reads_one_answer_ids_records_not_every_search(tmp_path: Path) -> None:
    """At 10^6 records the replay check read every search record (SQLite chose the
    index on event), so questions slowed as the log grew. It must use the answer id's index,
    whatever the log holds; and still find a replayed question, and only that."""
    import sqlite3

    from betrokken.coordinator.store import _EVENTS_OF_ANSWER

    store = AuditStore(f"sqlite:///{tmp_path / 'c.db'}", KEY, KEY.name)
    for n in range(300):
        store.append(_entry(f"q-{n}"))
    assert store.asked_before("q-7")
    assert not store.asked_before("q-300")
    statement = _EVENTS_OF_ANSWER.params(answer_id="q-7")
    sql = str(statement.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with sqlite3.connect(tmp_path / "c.db") as conn:
        conn.execute("ANALYZE")  # with statistics, too
        plan = " ".join(str(row) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
    assert "ix_log_records_answer_id" in plan, plan
