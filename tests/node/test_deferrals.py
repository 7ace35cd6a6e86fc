"""A defer partner's node keeps what a professional decides about: the trail writer keeps a timer
for every deferred question and a request only for a person known here; a decision is recorded
once, by a role the network file names, before the term ends; a watch is kept sealed
(docs/adr/0037). SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import select

from betrokken.audit.record import Event
from betrokken.config.schema import Network
from betrokken.crypto.bsn import generate_bsn
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.crypto.question import format_time
from betrokken.errors import BadInput, PurposeNotAllowed
from betrokken.node import deferrals, outbox
from betrokken.node.store import NodeStore
from tests.conftest import LocalPseudonymiser

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
DEADLINE = NOW + dt.timedelta(hours=8)


@pytest.fixture
def people(local_pseudonymiser: LocalPseudonymiser) -> list[Pseudonym]:
    rng = random.Random(11)
    return local_pseudonymiser.pseudonymise([generate_bsn(rng) for _ in range(2)])


def _deferred(answer_id: str, *hits: outbox.Disclosed) -> outbox.Answered:
    return outbox.Answered(
        answer_id=answer_id,
        at=format_time(NOW),
        requester="politie-test",
        on_behalf_of="politie-test",
        role="regisseur",
        purpose="zsm-context",
        kind="person",
        access_point="ipv4:127.0.0.1:1",
        hits=hits,
        reply_key="ab" * 32,
        label="ggz-test",
        deadline=format_time(DEADLINE),
        persons=1,
    )


def _drain(store: NodeStore) -> int:
    return store.drain_outbox(
        lambda e: outbox.records(e, "ggz-test", lambda p: "basis"), also=deferrals.keep
    )


@pytest.mark.postgres
def test_a_deferred_question_leaves_a_timer_and_only_a_hit_leaves_a_request(
    database_url: str, people: list[Pseudonym], network: Network
) -> None:
    store = NodeStore(database_url)
    hit = outbox.Disclosed(
        0, people[0].value.hex(), people[0].key_id, "ZSM-1", "tester", "", "defer", "GGZ-7"
    )
    store.answered("hit", NOW, outbox.encode(_deferred("hit", hit), 1))
    store.answered("miss", NOW, outbox.encode(_deferred("miss"), 1))
    # A hit and a miss leave an entry of the same size (nothing to tell them apart by).
    assert len(outbox.encode(_deferred("hit", hit), 1)) == len(outbox.encode(_deferred("m"), 1))
    assert _drain(store) == 2
    with store.engine.connect() as conn:
        timers = conn.execute(select(deferrals._QUESTIONS.c.answer_id)).scalars().all()
    assert sorted(timers) == ["hit", "miss"]
    [request] = deferrals.list_requests(store.engine)
    assert (request.answer_id, request.case, request.reference) == ("hit", "ZSM-1", "GGZ-7")
    assert request.deadline == DEADLINE and not request.decision
    # The hit is a "pending" decision record in the trail, not a disclosure: nothing was shared.
    [pending] = [r.entry for r in store.trail.records() if r.entry.event is Event.DECISION]
    assert pending.reason == "pending" and store.disclosures() == 0

    def decide(roles: frozenset[str], decision: str, ground: str, at: dt.datetime) -> object:
        return deferrals.decide(
            store.engine, store.trail, network, "ggz-test", request.id, "p.arts", roles,
            decision, ground, at,
        )  # fmt: skip

    with pytest.raises(PurposeNotAllowed):  # a role the network file does not name
        decide(frozenset({"beheerder"}), "delen", "toestemming", NOW)
    with pytest.raises(BadInput):  # the term has passed
        decide(frozenset({"regisseur"}), "delen", "toestemming", DEADLINE)
    decide(frozenset({"regisseur"}), "niet-delen", "beroepsgeheim", NOW)
    with pytest.raises(BadInput):  # decided once
        decide(frozenset({"regisseur"}), "delen", "toestemming", NOW)
    [decided] = deferrals.list_requests(store.engine)
    assert (decided.decision, decided.ground, decided.decided_by) == (
        "niet-delen",
        "beroepsgeheim",
        "p.arts",
    )
    reasons = [r.entry.reason for r in store.trail.records() if r.entry.event is Event.DECISION]
    assert reasons == ["pending", "niet-delen: beroepsgeheim"]


@pytest.mark.postgres
def test_a_watch_is_kept_as_the_sealed_item_it_came_in(
    database_url: str, people: list[Pseudonym]
) -> None:
    store = NodeStore(database_url)
    watch = outbox.Watch(0, "cd" * 32, people[0].key_id, "ef" * 560)
    entry = outbox.Answered(
        answer_id="w",
        at=format_time(NOW),
        requester="zvh-test",
        purpose="zvh-triage",
        label="politie-test",
        persons=1,
        watches=(watch,),
        watch_until=format_time(NOW + dt.timedelta(days=30)),
    )
    store.answered("w", NOW, outbox.encode(entry, 1))
    assert _drain(store) == 1
    assert deferrals.watch_count(store.engine) == 1
    with store.engine.connect() as conn:
        row = conn.execute(select(deferrals._WATCHES)).mappings().one()
    assert bytes(row["sealed"]) == bytes.fromhex("ef" * 560)
    assert bytes(row["lookup_key"]) == bytes.fromhex("cd" * 32)
    assert deferrals.list_requests(store.engine) == []  # nothing a page shows
