"""The node's store, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from betrokken.config.schema import DisclosureLevel
from betrokken.crypto.bsn import generate_bsn
from betrokken.node.store import Change, DisclosureRecord, NodeStore, Registration
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
def test_disclosures_are_recorded_and_survive_withdrawal(database_url: str, people) -> None:  # type: ignore[no-untyped-def]
    store = NodeStore(database_url)
    store.upsert([_reg(people[0])])
    hit = store.find(people, TODAY)[people[0].value]
    store.record_disclosures(
        [
            DisclosureRecord(
                answer_id="a-1",
                requester_organisation="zvh",
                user="u",
                acted_for="",
                role="regisseur",
                purpose="zvh-triage",
                case_reference="C-1",
                level=DisclosureLevel.ORGANISATION,
                registration_id=hit.registration_id,
                registration_reference=hit.reference,
            )
        ]
    )
    store.withdraw(pseudonym=people[0])
    rows = store.disclosures()
    assert [(r.answer_id, r.registration_id, r.registration_reference) for r in rows] == [
        ("a-1", None, "R-1")
    ]
    status = store.status(TODAY)
    assert status.disclosures == 1 and status.active == 0
