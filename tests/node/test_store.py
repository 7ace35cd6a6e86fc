"""The node's store, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.config.schema import DisclosureLevel
from betrokken.crypto.bsn import generate_bsn
from betrokken.errors import QuestionRefused
from betrokken.node.store import Change, NodeStore, Registration
from tests.conftest import LocalPseudonymiser

TODAY = dt.date(2026, 11, 23)


def _reg(p, **changes):  # type: ignore[no-untyped-def]
    values = dict(
        pseudonym=p,
        domain="veiligheid",
        contact="desk",
        since=TODAY,
        until=TODAY + dt.timedelta(days=30),
        reference="R-1",
        disclosure=None,
    )
    values.update(changes)
    return Registration(**values)


@pytest.fixture
def people(local_pseudonymiser: LocalPseudonymiser):  # type: ignore[no-untyped-def]
    import random

    rng = random.Random(3)
    return local_pseudonymiser.pseudonymise([generate_bsn(rng) for _ in range(5)])


@pytest.mark.postgres
def test_upsert_counts_added_updated_unchanged(database_url: str, people) -> None:  # type: ignore[no-untyped-def]
    store = NodeStore(database_url)
    assert store.upsert([_reg(people[0]), _reg(people[1])]) == [Change.ADDED, Change.ADDED]
    assert store.upsert([_reg(people[0])]) == [Change.UNCHANGED]
    assert store.upsert([_reg(people[0], contact="other desk")]) == [Change.UPDATED]
    hits = store.find(people, TODAY)
    assert set(hits) == {people[0].value, people[1].value}
    assert hits[people[0].value].contact == "other desk"


@pytest.mark.postgres
def test_find_ignores_ended_and_future_registrations(database_url: str, people) -> None:  # type: ignore[no-untyped-def]
    store = NodeStore(database_url)
    store.upsert(
        [
            _reg(people[0], until=TODAY - dt.timedelta(days=1), since=TODAY - dt.timedelta(days=9)),
            _reg(people[1], since=TODAY + dt.timedelta(days=1)),
            _reg(people[2], disclosure=DisclosureLevel.DOMAIN),
        ]
    )
    hits = store.find(people, TODAY)
    assert set(hits) == {people[2].value}
    assert hits[people[2].value].disclosure is DisclosureLevel.DOMAIN
    assert store.expire(TODAY) == 1
    assert store.status(TODAY).active == 2


@pytest.mark.postgres
def test_withdraw_by_pseudonym_and_reference(database_url: str, people) -> None:  # type: ignore[no-untyped-def]
    store = NodeStore(database_url)
    store.upsert([_reg(people[0], reference="A"), _reg(people[1], reference="B")])
    assert store.withdraw(pseudonym=people[0]) == 1
    assert store.withdraw(reference="B") == 1
    assert store.withdraw(reference="B") == 0
    assert store.find(people, TODAY) == {}


@pytest.mark.postgres
def test_an_answered_question_is_recorded_once_and_a_replay_is_refused(
    database_url: str,
    people,  # type: ignore[no-untyped-def]
) -> None:
    store = NodeStore(database_url)
    store.upsert([_reg(people[0])])
    disclosure = AuditEntry(
        event=Event.DISCLOSURE,
        at=dt.datetime.now(dt.UTC),
        answer_id="a-1",
        organisation="zvh",
        user="u",
        purpose="zvh-triage",
        subjects=(Subject(people[0].value.hex(), people[0].key_id, people[0].fingerprint, "C-1"),),
        reason="disclosed: organisation",
    )
    store.answered("a-1", dt.datetime.now(dt.UTC), [disclosure])
    store.answered("a-2", dt.datetime.now(dt.UTC))  # a miss: a mark, no trail record
    with pytest.raises(QuestionRefused) as info:
        store.answered("a-1", dt.datetime.now(dt.UTC), [disclosure])
    assert info.value.kind == "replay"
    # The disclosure is one trail record, kept after the registration is withdrawn.
    store.withdraw(pseudonym=people[0])
    status = store.status(TODAY)
    assert status.disclosures == 1 and status.active == 0
    # Marks are forgotten after the freshness window: nothing about questions is kept longer.
    assert store.forget_answered(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) == 2
