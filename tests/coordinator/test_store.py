"""The audit store writes durably or refuses (fail closed), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from betrokken.coordinator.store import AuditRecord, AuditStore, EventType
from betrokken.errors import AuditUnavailable


def _record(answer_id: str) -> AuditRecord:
    return AuditRecord(
        answer_id=answer_id,
        event=EventType.QUERY,
        at=dt.datetime.now(dt.UTC),
        requester_organisation="zvh",
        user="u",
        acted_for="",
        role="regisseur",
        purpose="zvh-triage",
        legal_basis="AVG 6(1)(e)",
        body={"items": [{"case": "C"}]},
    )


@pytest.mark.postgres
def test_append_and_read_back(database_url: str) -> None:
    store = AuditStore(database_url)
    first = store.append(_record("a"))
    second = store.append(_record("b"))
    assert second > first
    assert [r.answer_id for r in store.records()] == ["a", "b"]
    assert store.records("b")[0].body == {"items": [{"case": "C"}]}


@pytest.mark.postgres
def test_an_unwritable_store_refuses(database_url: str) -> None:
    store = AuditStore(database_url)
    with store.engine.begin() as conn:
        if database_url.startswith("sqlite"):
            conn.execute(
                text(
                    "create trigger refuse before insert on audit_records "
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
                    "create trigger refuse before insert on audit_records "
                    "for each row execute function refuse()"
                )
            )
    with pytest.raises(AuditUnavailable) as info:
        store.append(_record("c"))
    assert info.value.exit_code == 7
    assert store.records() == []
