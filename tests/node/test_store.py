"""The node's store, on SQLite and PostgreSQL: registrations mean what the case system means."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from betrokken.audit.record import Event
from betrokken.config.schema import DisclosureLevel
from betrokken.crypto.bsn import generate_bsn
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.crypto.question import format_time, lookup_key
from betrokken.errors import QuestionRefused, Unavailable
from betrokken.node import outbox
from betrokken.node.store import Change, NodeStore, Registration
from tests.conftest import LocalPseudonymiser

TODAY = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
TERM = 730  # retention.registration_days


def _reg(p: Pseudonym, **changes: object) -> Registration:
    values: dict[str, object] = dict(
        pseudonym=p,
        domain="veiligheid",
        contact="desk",
        since=TODAY,
        until=None,
        reference="R-1",
        disclosure=None,
    )
    values.update(changes)
    return Registration(**values)  # type: ignore[arg-type]


def _at(days: int) -> dt.datetime:
    return NOW + dt.timedelta(days=days)


def _day(days: int) -> dt.date:
    return TODAY + dt.timedelta(days=days)


@pytest.fixture
def people(local_pseudonymiser: LocalPseudonymiser) -> list[Pseudonym]:
    rng = random.Random(3)
    return local_pseudonymiser.pseudonymise([generate_bsn(rng) for _ in range(5)])


def _upsert(
    store: NodeStore, regs: list[Registration], days: int = 0, **kw: object
) -> list[Change]:
    return [
        s.change
        for s in store.upsert(regs, retention_days=TERM, now=_at(days), **kw)  # type: ignore[arg-type]
    ]


@pytest.mark.postgres
def test_upsert_counts_added_updated_unchanged(database_url: str, people: list[Pseudonym]) -> None:
    store = NodeStore(database_url)
    assert _upsert(store, [_reg(people[0]), _reg(people[1])]) == [Change.ADDED, Change.ADDED]
    assert _upsert(store, [_reg(people[0])]) == [Change.UNCHANGED]
    assert _upsert(store, [_reg(people[0], contact="other desk")]) == [Change.UPDATED]
    hits = store.find(people, TODAY)
    assert set(hits) == {people[0].value, people[1].value}
    assert hits[people[0].value].contact == "other desk"


@pytest.mark.postgres
def test_an_open_case_since_long_ago_is_active_and_ends_a_term_after_its_last_confirmation(
    database_url: str, people: list[Pseudonym]
) -> None:
    """The gap: `since` 2024-09-03 used to be stored with until 2026-09-03, already ended."""
    store = NodeStore(database_url)
    [stored] = store.upsert(
        [_reg(people[0], since=dt.date(2024, 9, 3))], retention_days=TERM, now=NOW
    )
    assert stored.change is Change.ADDED
    assert stored.until == _day(TERM) and stored.ends_by_confirmation
    assert set(store.find(people, TODAY)) == {people[0].value}
    assert store.status(TODAY).active == 1

    # Confirmed again 100 days later: the term starts anew, with no fact changed.
    trail_before = store.trail.size()
    assert _upsert(store, [_reg(people[0], since=dt.date(2024, 9, 3))], days=100) == [
        Change.UNCHANGED
    ]
    assert store.trail.size() == trail_before  # a confirmation is not a change of fact
    assert set(store.find(people, _day(100 + TERM))) == {people[0].value}
    assert store.expire(_day(100 + TERM)) == 0
    # Not confirmed any more: it ends the day after the term.
    assert store.find(people, _day(101 + TERM)) == {}
    assert store.expire(_day(101 + TERM)) == 1
    assert store.trail.size() == trail_before + 1  # the expiry is in the trail


@pytest.mark.postgres
def test_an_explicit_end_is_the_case_systems_and_may_come_later(
    database_url: str, people: list[Pseudonym]
) -> None:
    store = NodeStore(database_url)
    [first] = store.upsert([_reg(people[0], until=_day(30))], retention_days=TERM, now=NOW)
    assert first.until == _day(30) and not first.ends_by_confirmation
    # A later end, given after the registration exists, is accepted (it used to be refused).
    [later] = store.upsert([_reg(people[0], until=_day(400))], retention_days=TERM, now=NOW)
    assert later.change is Change.UPDATED and later.until == _day(400)
    # An end beyond the term: active until the term after this confirmation, then confirm again.
    [far] = store.upsert([_reg(people[0], until=_day(5000))], retention_days=TERM, now=NOW)
    assert far.until == _day(TERM) and far.given_until == _day(5000) and far.ends_by_confirmation
    assert set(store.find(people, _day(TERM))) == {people[0].value}
    assert store.find(people, _day(TERM + 1)) == {}


@pytest.mark.postgres
def test_values_not_given_are_kept_and_a_result_already_ended_is_refused(
    database_url: str, people: list[Pseudonym]
) -> None:
    store = NodeStore(database_url)
    _upsert(store, [_reg(people[0], reference="CASE-7", since=dt.date(2025, 1, 6), until=_day(9))])
    keep = frozenset({"reference", "since", "until", "contact"})
    [again] = store.upsert(
        [_reg(people[0], reference=None, since=TODAY, contact="x", keep=keep)],
        retention_days=TERM,
        now=_at(5),
    )
    assert again.change is Change.UNCHANGED and again.since == dt.date(2025, 1, 6)
    hit = store.find(people, _day(5))[people[0].value]
    assert (hit.reference, hit.since, hit.contact) == ("CASE-7", dt.date(2025, 1, 6), "desk")
    # Confirmed after the kept end has passed: it would be ended at once, so nothing is stored.
    [ended] = store.upsert([_reg(people[0], keep=keep)], retention_days=TERM, now=_at(10))
    assert ended.change is Change.ALREADY_ENDED and ended.given_until == _day(9)


@pytest.mark.postgres
def test_a_withdrawal_by_hand_is_not_undone_by_an_import_unless_asked(
    database_url: str, people: list[Pseudonym]
) -> None:
    store = NodeStore(database_url)
    _upsert(store, [_reg(people[0], reference="A"), _reg(people[1], reference="B")])
    assert store.withdraw(pseudonym=people[0], remember_days=TERM, today=TODAY) == 1
    assert store.withdraw(reference="B", remember_days=TERM, today=TODAY) == 1
    assert store.withdraw(reference="B", remember_days=TERM, today=TODAY) == 0
    assert store.find(people, TODAY) == {}
    assert store.status(TODAY).withdrawals_remembered == 2

    results = store.upsert([_reg(people[0]), _reg(people[1])], retention_days=TERM, now=_at(3))
    assert [r.change for r in results] == [Change.KEPT_WITHDRAWN] * 2
    assert results[0].withdrawn_on == TODAY
    assert store.find(people, _day(3)) == {}

    [back] = store.upsert([_reg(people[0])], retention_days=TERM, now=_at(4), reactivate=True)
    assert back.change is Change.ADDED and back.withdrawn_on == TODAY
    assert set(store.find(people, _day(4))) == {people[0].value}
    assert store.status(_day(4)).withdrawals_remembered == 1


@pytest.mark.postgres
def test_a_withdrawal_is_forgotten_a_term_after_the_last_import_that_held_it(
    database_url: str, people: list[Pseudonym]
) -> None:
    store = NodeStore(database_url)
    _upsert(store, [_reg(people[0])])
    store.withdraw(pseudonym=people[0], remember_days=TERM, today=TODAY)
    _upsert(store, [_reg(people[0])], days=200)  # still in the export: remembered longer
    assert store.forget_withdrawals(_day(TERM + 1)) == 0
    assert store.expire(_day(200 + TERM + 1)) == 0
    assert store.status(_day(200 + TERM + 1)).withdrawals_remembered == 0
    # Forgotten: the case system's line registers the person again.
    assert _upsert(store, [_reg(people[0])], days=200 + TERM + 1) == [Change.ADDED]


@pytest.mark.postgres
def test_sync_ends_what_the_full_caseload_no_longer_holds(
    database_url: str, people: list[Pseudonym]
) -> None:
    store = NodeStore(database_url)
    first = store.upsert([_reg(p) for p in people[:4]], retention_days=TERM, now=NOW)
    store.withdraw(pseudonym=people[3], remember_days=TERM, today=TODAY)
    started = _at(1)
    # The full export holds people 0 and 3 (3 is withdrawn by hand and kept so).
    seen = store.upsert([_reg(people[0]), _reg(people[3])], retention_days=TERM, now=started)
    assert [s.change for s in seen] == [Change.UNCHANGED, Change.KEPT_WITHDRAWN]
    # A register while the import ran (confirmed after it started) is not ended.
    store.upsert([_reg(people[4])], retention_days=TERM, now=started + dt.timedelta(minutes=5))
    trail_before = store.trail.size()
    ended = store.end_missing(
        {s.registration_id for s in seen if s.registration_id},
        {s.withdrawal_id for s in seen if s.withdrawal_id},
        started,
        actor="import",
    )
    assert ended == 2  # people 1 and 2
    assert set(store.find(people, _day(1))) == {people[0].value, people[4].value}
    assert store.trail.size() == trail_before + 2
    reasons = [r.entry.details.get("note") for r in store.trail.records(start=trail_before)]
    assert reasons == ["not in the full caseload (import --sync)"] * 2
    assert first[1].registration_id not in {s.registration_id for s in seen}
    # A withdrawal the full caseload no longer holds is forgotten (the case was closed).
    ended = store.end_missing({seen[0].registration_id or 0}, set(), _at(2))
    assert store.status(_day(2)).withdrawals_remembered == 0


@pytest.mark.postgres
def test_status_counts_what_ends_soon_for_lack_of_confirmation(
    database_url: str, people: list[Pseudonym]
) -> None:
    store = NodeStore(database_url)
    _upsert(store, [_reg(people[0]), _reg(people[1], until=_day(TERM - 10))])
    _upsert(store, [_reg(people[2])], days=40)
    _upsert(store, [_reg(people[3], until=_day(TERM + 100))])
    status = store.status(_day(TERM - 15))
    assert status.active == 4
    # 0 and 3 end within 30 days unless confirmed; 1 ends then too, but that is the case's end.
    assert status.ending_unconfirmed == 2
    assert status.last_confirmation is not None
    later = store.status(_day(TERM + 1))
    assert (later.active, later.ended_not_yet_removed) == (1, 3)


@pytest.mark.postgres
def test_an_ended_registration_confirmed_again_is_active_again(
    database_url: str, people: list[Pseudonym]
) -> None:
    store = NodeStore(database_url)
    _upsert(store, [_reg(people[0])])
    assert store.find(people, _day(TERM + 5)) == {}
    assert _upsert(store, [_reg(people[0])], days=TERM + 5) == [Change.UPDATED]
    assert set(store.find(people, _day(TERM + 5))) == {people[0].value}


@pytest.mark.postgres
def test_find_ignores_ended_and_future_registrations(
    database_url: str, people: list[Pseudonym]
) -> None:
    store = NodeStore(database_url)
    _upsert(
        store,
        [
            _reg(people[0], until=_day(1), since=_day(-9)),
            _reg(people[1], since=_day(5)),
            _reg(people[2], disclosure=DisclosureLevel.DOMAIN),
        ],
    )
    hits = store.find(people, _day(2))
    assert set(hits) == {people[2].value}
    assert hits[people[2].value].disclosure is DisclosureLevel.DOMAIN
    # A question looks up by the hash of the pseudonym; the hit carries the pseudonym itself.
    keys = [lookup_key(p.value) for p in people]
    found = store.lookup(keys, {people[0].key_id}, _day(2))
    assert set(found) == {keys[2]} and found[keys[2]].pseudonym == people[2].value
    assert store.lookup(keys, {"k1-another"}, _day(2)) == {}
    assert store.expire(_day(2)) == 1
    assert store.status(_day(2)).active == 2


def _entry(people: list[Pseudonym], answer_id: str, hit: bool) -> bytes:
    if not hit:
        return outbox.encode(outbox.Answered(), 1)
    person = people[0]
    return outbox.encode(
        outbox.Answered(
            answer_id=answer_id,
            at=format_time(NOW),
            requester="zvh",
            on_behalf_of="politie",
            role="regisseur",
            purpose="zvh-triage",
            kind="person",
            access_point="ipv4:127.0.0.1:1",
            hits=(
                outbox.Disclosed(
                    0, person.value.hex(), person.key_id, "C-1", "u", "", "organisation", "R-1"
                ),
            ),
        ),
        1,
    )


@pytest.mark.postgres
def test_an_answered_question_is_recorded_once_and_a_replay_is_refused(
    database_url: str, people: list[Pseudonym]
) -> None:
    store = NodeStore(database_url)
    _upsert(store, [_reg(people[0])])
    store.answered("a-1", dt.datetime.now(dt.UTC), _entry(people, "a-1", hit=True))
    store.answered("a-2", dt.datetime.now(dt.UTC), _entry(people, "a-2", hit=False))  # a miss
    with pytest.raises(QuestionRefused) as info:
        store.answered("a-1", dt.datetime.now(dt.UTC), _entry(people, "a-1", hit=True))
    assert info.value.kind == "replay"
    # Marks waiting for the trail writer are kept, whatever their age.
    assert store.forget_answered(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) == 0
    assert store.outbox_waiting() == 2
    # The writer turns the hit into one disclosure record and the miss into nothing.
    assert store.drain_outbox(lambda e: outbox.records(e, "politie", lambda p: "basis")) == 2
    assert store.outbox_waiting() == 0
    assert store.drain_outbox(lambda e: outbox.records(e, "politie", lambda p: "basis")) == 0
    [record] = [r.entry for r in store.trail.records() if r.entry.event is Event.DISCLOSURE]
    assert record.answer_id == "a-1" and record.user == "u" and record.legal_basis == "basis"
    assert (
        record.subjects[0].case == "C-1" and record.subjects[0].fingerprint == people[0].fingerprint
    )
    assert record.details["on_behalf_of"] == "politie"
    # The disclosure is one trail record, kept after the registration is withdrawn.
    store.withdraw(pseudonym=people[0], remember_days=TERM, today=TODAY)
    status = store.status(TODAY)
    assert status.disclosures == 1 and status.active == 0
    # Marks are forgotten after the freshness window: nothing about questions is kept longer.
    assert store.forget_answered(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) == 2


@pytest.mark.postgres
def test_a_hit_and_a_miss_write_the_same_one_row_of_the_same_size(
    database_url: str, people: list[Pseudonym]
) -> None:
    """The lookup path writes one fixed-size row in one transaction for a hit and a miss."""
    from sqlalchemy import event

    store = NodeStore(database_url)
    statements: dict[str, list[str]] = {}
    current: list[str] = []

    def seen(statement: str) -> None:
        word = statement.split()[0].upper()
        if word in {"SELECT", "INSERT", "UPDATE", "DELETE"}:  # not BEGIN, COMMIT
            current.append(word)

    # The answer's statements are run by the driver itself (docs/adr/0032): watched there.
    @event.listens_for(store.engine, "checkout")
    def watch(dbapi_connection, record, proxy):  # type: ignore[no-untyped-def]
        if store.engine.dialect.name == "sqlite":
            dbapi_connection.set_trace_callback(seen)
        else:
            import psycopg

            class Watched(psycopg.Cursor):  # type: ignore[type-arg]
                def execute(self, query, params=None, **kw):  # type: ignore[no-untyped-def]
                    seen(str(query))
                    return super().execute(query, params, **kw)

            dbapi_connection.cursor_factory = Watched

    for index, (name, hit) in enumerate((("hit", True), ("miss", False))):
        current.clear()
        entry = _entry(people, f"s-{name}", hit)
        # with the question's log index and leaf hash, kept for the witness's sample
        store.answered(f"s-{name}", NOW, entry, record=(index, bytes(32)))
        statements[name] = list(current)
        assert len(entry) == outbox.size(1)
    assert statements["hit"] == statements["miss"] == ["INSERT", "INSERT"]
    # Random padding: a database that compresses values stores both alike.
    assert _entry(people, "x", False) != _entry(people, "x", False)


def test_a_database_that_cannot_be_written_is_unavailable_not_a_traceback(
    tmp_path: Path, people: list[Pseudonym]
) -> None:
    path = tmp_path / "n.db"
    store = NodeStore(f"sqlite:///{path}")
    _upsert(store, [_reg(people[0])])
    store.engine.dispose()
    readonly = NodeStore(f"sqlite:///file:{path}?mode=ro&uri=true")  # works as root too
    with pytest.raises(Unavailable) as info:
        _upsert(readonly, [_reg(people[1])])
    assert "cannot store registrations" in info.value.message
    with pytest.raises(Unavailable):
        readonly.withdraw(pseudonym=people[0], remember_days=TERM, today=TODAY)


@pytest.mark.postgres
def test_the_records_of_answered_questions_are_sampled_uniformly_with_the_newest_always_in(
    database_url: str, people: list[Pseudonym]
) -> None:
    store = NodeStore(database_url)
    for index in range(10):
        entry = _entry(people, f"k-{index}", False)
        store.answered(f"k-{index}", NOW, entry, record=(100 + index, bytes([index]) * 32))
    picks = iter([3, 3, 7])  # the test's "random" numbers: two the same, one other

    def pick(low: int, high: int) -> int:
        return low + next(picks) - 1

    kept = store.kept_records(3, 110, pick)
    assert [k.log_index for k in kept] == [102, 106, 109]  # sample (once each) and the newest
    assert kept[0].leaf_hash == bytes([2]) * 32 and not kept[0].alarmed
    # Only records under the witnessed checkpoint: the newest beyond it is not asked for yet.
    assert max(k.log_index for k in store.kept_records(0, 105, pick)) == 104
    store.record_alarmed(kept[0].seq)
    assert store.kept_records(0, 103, pick)[0].alarmed
    # Kept as long as the coordinator keeps its log, then forgotten.
    assert store.forget_records(NOW.date()) == 0
    assert store.forget_records(NOW.date() + dt.timedelta(days=1)) == 10
    assert store.kept_records(3, 110, pick) == []
