"""The found partner is told: the trail writer keeps one notice per hit, nothing for a miss; the
portal's door reads, marks read and acknowledges them (docs/adr/0024, section 7)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest

from betrokken.audit.record import Event
from betrokken.crypto.bsn import generate_bsn
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.crypto.question import format_time
from betrokken.errors import BadInput
from betrokken.node import notices, outbox
from betrokken.node.store import NodeStore
from tests.conftest import LocalPseudonymiser

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
CONTACTS = {"zvh": "ZVH-desk 023 555 0100", "politie": "Wijkagent 0900-8844"}
BASIS = "artikel 20 Wet politiegegevens"


def _aanmelder(purpose: str, requester: str, on_behalf_of: str) -> dict[str, str]:
    """What the network file says of the aanmelder (rules.recorded_aanmelder, for this test)."""
    if on_behalf_of == requester:
        return {}
    return {"on_behalf_of": on_behalf_of, "aanmelder_basis": BASIS}


@pytest.fixture
def people(local_pseudonymiser: LocalPseudonymiser) -> list[Pseudonym]:
    rng = random.Random(5)
    return local_pseudonymiser.pseudonymise([generate_bsn(rng) for _ in range(3)])


def _hit(person: Pseudonym, index: int, level: str, case: str) -> outbox.Disclosed:
    return outbox.Disclosed(
        index, person.value.hex(), person.key_id, case, "r.jansen", "", level, f"OWN-{index}"
    )


def _answered(answer_id: str, *hits: outbox.Disclosed) -> outbox.Answered:
    return outbox.Answered(
        answer_id=answer_id,
        at=format_time(NOW),
        requester="zvh",
        on_behalf_of="politie",
        role="regisseur",
        purpose="zvh-triage",
        kind="list",
        access_point="ipv4:127.0.0.1:1",
        hits=hits,
    )


def _drain(store: NodeStore) -> int:
    return store.drain_outbox(
        lambda e: outbox.records(e, "ggz", lambda p: "basis", _aanmelder),
        notices=lambda e: outbox.notices(e, CONTACTS.__getitem__, _aanmelder),
    )


def test_a_hit_at_a_naming_level_leaves_a_notice_with_who_why_and_how_to_reach_them(
    people: list[Pseudonym],
) -> None:
    entry = outbox.encode(
        _answered("a-1", _hit(people[1], 1, "organisation", "C-2")), 3
    )  # persons 0 and 2 were misses
    [notice] = outbox.notices([entry], CONTACTS.__getitem__, _aanmelder)
    assert dataclasses.asdict(notice) == {
        "answer_id": "a-1",
        "person": 1,
        "asked_at": NOW,
        "requester": "zvh",
        "role": "regisseur",
        "on_behalf_of": "politie",
        "purpose": "zvh-triage",
        "case": "C-2",
        "reference": "OWN-1",
        "level": "organisation",
        "asker_contact": CONTACTS["zvh"],
        "aanmelder_basis": BASIS,
    }
    # The trail's disclosure record says the aanmelder and its basis too.
    [record] = outbox.records([entry], "ggz", lambda p: "basis", _aanmelder)
    assert record.event is Event.DISCLOSURE
    assert record.details["on_behalf_of"] == "politie"
    assert record.details["aanmelder_basis"] == BASIS


def test_a_person_refused_for_its_case_reference_is_an_alarm_and_no_disclosure_nor_notice(
    people: list[Pseudonym],
) -> None:
    refused = dataclasses.replace(
        _answered("a-4", _hit(people[0], 0, "organisation", "C-1")),
        refused=(_hit(people[1], 1, "organisation", "ALGEMEEN"),),
    )
    entry = outbox.encode(refused, 2)
    assert outbox.decode(entry).refused == refused.refused
    records = outbox.records([entry], "ggz", lambda p: "basis", _aanmelder)
    assert [(r.event, r.reason) for r in records] == [
        (Event.DISCLOSURE, "disclosed: organisation"),
        (Event.ALARM, "case-refused"),
    ]
    alarm = records[1]
    assert alarm.user == "r.jansen" and alarm.subjects[0].case == "ALGEMEEN"
    assert alarm.details["requester"] == "zvh" and alarm.details["aanmelder_basis"] == BASIS
    assert [n.person for n in outbox.notices([entry], CONTACTS.__getitem__)] == [0]
    # Only a refusal: still kept (not a miss), and still no notice.
    only = outbox.encode(dataclasses.replace(refused, hits=()), 2)
    assert [r.reason for r in outbox.records([only], "ggz", lambda p: "basis")] == ["case-refused"]
    assert outbox.notices([only], CONTACTS.__getitem__) == []


def test_a_miss_leaves_no_notice_and_neither_does_a_level_that_tells_nothing(
    people: list[Pseudonym],
) -> None:
    miss = outbox.encode(outbox.Answered(), 1)
    told_nothing = outbox.encode(_answered("a-2", _hit(people[0], 0, "none", "C-1")), 1)
    domain = outbox.encode(_answered("a-3", _hit(people[0], 0, "domain", "C-1")), 1)
    assert outbox.notices([miss, told_nothing], CONTACTS.__getitem__) == []
    assert [n.level for n in outbox.notices([domain], CONTACTS.__getitem__)] == ["domain"]


@pytest.mark.postgres
def test_the_writer_keeps_the_notice_with_the_disclosure_and_acknowledging_is_one_trail_record(
    database_url: str, people: list[Pseudonym]
) -> None:
    store = NodeStore(database_url)
    store.answered(
        "a-1", NOW, outbox.encode(_answered("a-1", _hit(people[0], 0, "domain", "C")), 1)
    )
    store.answered("a-2", NOW, outbox.encode(outbox.Answered(), 1))  # a miss
    assert _drain(store) == 2
    [notice] = notices.list_notices(store.engine)
    assert notice.unread and notice.case == "C" and notice.asker_contact == CONTACTS["zvh"]
    assert notice.aanmelder_basis == BASIS
    assert notices.unread_count(store.engine) == 1
    opened = notices.open_notice(store.engine, notice.id, "k.smit")
    assert not opened.unread and opened.read_by == "k.smit" and opened.acknowledged_at is None
    # Opening it again by someone else does not change who read it first.
    assert notices.open_notice(store.engine, notice.id, "other").read_by == "k.smit"

    def acknowledgements() -> list[object]:
        return [r.entry for r in store.trail.records() if r.entry.event is Event.NOTICE]

    assert acknowledgements() == []
    done = notices.acknowledge(store.engine, store.trail, "ggz", notice.id, "k.smit", "regisseur")
    assert done.acknowledged_by == "k.smit" and done.acknowledged_at is not None
    notices.acknowledge(store.engine, store.trail, "ggz", notice.id, "other", "regisseur")
    [record] = acknowledgements()
    assert record.user == "k.smit" and record.answer_id == "a-1"  # type: ignore[attr-defined]
    assert record.details["asked_by"] == "zvh"  # type: ignore[attr-defined]
    with pytest.raises(BadInput):
        notices.acknowledge(store.engine, store.trail, "ggz", notice.id + 1, "k.smit", "regisseur")
    # Past its term the notice goes; the trail keeps the disclosure and the acknowledgement.
    assert store.forget_notices(NOW) == 0
    assert store.forget_notices(NOW + dt.timedelta(seconds=1)) == 1
    assert notices.list_notices(store.engine) == []
    assert len(acknowledgements()) == 1 and store.disclosures() == 1


@pytest.mark.postgres
def test_every_notice_of_a_batch_is_written_with_each_field_as_the_portal_reads_it(
    database_url: str, people: list[Pseudonym]
) -> None:
    """The trail writer writes a batch's notices with one driver statement (docs/adr/0046):
    each row reads back through SQLAlchemy exactly as it was meant, its time included."""
    store = NodeStore(database_url)
    later = NOW + dt.timedelta(minutes=3, microseconds=250)
    first = _answered(
        "b-1", _hit(people[0], 0, "domain", "C-1"), _hit(people[2], 2, "organisation", "C-3")
    )
    second = dataclasses.replace(
        _answered("b-2", _hit(people[1], 1, "domain", "C-2")),
        at=format_time(later),
        on_behalf_of="zvh",
    )
    store.answered("b-1", NOW, outbox.encode(first, 3))
    store.answered("b-2", later, outbox.encode(second, 1))
    assert _drain(store) == 2
    found = sorted(notices.list_notices(store.engine), key=lambda n: n.case)
    assert [(n.answer_id, n.case, n.level, n.reference) for n in found] == [
        ("b-1", "C-1", "domain", "OWN-0"),
        ("b-2", "C-2", "domain", "OWN-1"),
        ("b-1", "C-3", "organisation", "OWN-2"),
    ]
    assert [n.asked_at for n in found] == [NOW, later, NOW]
    assert all(n.unread and n.read_by == "" and n.acknowledged_at is None for n in found)
    assert [n.aanmelder_basis for n in found] == [BASIS, "", BASIS]
    assert {n.asker_contact for n in found} == {CONTACTS["zvh"]}
    assert notices.unread_count(store.engine) == 3


@pytest.mark.parametrize(
    ("value", "kept"),
    [("C-2026/17 ë", "C-2026/17 ë"), ("C-1\nX\t\x00", "C-1?X??"), ("", ""), ("x" * 200, "x" * 128)],
)
def test_text_in_an_outbox_entry_is_printable_and_clipped(value: str, kept: str) -> None:
    assert outbox._text(value) == kept
