"""Importing registrations as case systems export them; what a line means for the registration."""

from __future__ import annotations

import codecs
import datetime as dt
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from betrokken.config.schema import Network
from betrokken.crypto.bsn import Bsn, generate_bsn
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.errors import SyncGuarded, Unavailable
from betrokken.node.importer import (
    FIELDS,
    REQUIRED,
    Details,
    ImportSummary,
    InvalidDetails,
    Registrar,
    details,
)
from betrokken.node.store import Change, NodeStore
from betrokken.tabular import Table, open_table
from tests.conftest import LocalPseudonymiser

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
TODAY = NOW.date()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, days: int) -> None:
        self.now += dt.timedelta(days=days)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> NodeStore:
    return NodeStore(f"sqlite:///{tmp_path / 'n.db'}")


@pytest.fixture
def registrar(
    network: Network, store: NodeStore, local_pseudonymiser: LocalPseudonymiser, clock: Clock
) -> Registrar:
    org = network.organisation("politie-test")
    assert org is not None
    return Registrar(network, org, store, local_pseudonymiser, clock=clock)


def _people(n: int, seed: int = 5) -> list[Bsn]:
    rng = random.Random(seed)
    return [generate_bsn(rng) for _ in range(n)]


def _table(path: Path, text: str | bytes, **mapping: str) -> Table:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return open_table(path, FIELDS, required=REQUIRED, mapping=mapping)


def _found(registrar: Registrar, people: Sequence[Bsn], days: int = 0) -> int:
    pseudonyms = registrar.pseudonyms.pseudonymise(list(people))
    return len(registrar.store.find(pseudonyms, TODAY + dt.timedelta(days=days)))


def test_an_import_reports_bad_lines_and_stores_the_rest(
    registrar: Registrar, tmp_path: Path
) -> None:
    good = _people(3)
    table = _table(
        tmp_path / "export.csv",
        "bsn,since,until,reference\n"
        f"{good[0].digits},2026-01-01,,R1\n"
        "123456789,,,R2\n"  # elfproef fails
        f"{good[1].digits},2026-13-01,,R3\n"  # a date that does not exist
        f"{good[2].digits},,,R4\n"
        "0000000000,,,R5\n"  # ten digits
        f"{good[1].digits},2026-02-01,2026-01-01,R6\n",  # until before since
    )
    seen: list[int] = []
    summary = registrar.import_table(table, progress=seen.append)
    assert (summary.added, summary.updated, summary.unchanged) == (2, 0, 0)
    assert sum(seen) == 6 and summary.lines_read == 6 and summary.last_committed_line == 7
    text = "\n".join(summary.problems.lines())
    assert "line 3: BSN fails the elfproef" in text
    assert "line 4: since: not a date that exists" in text
    assert "line 6: BSN does not have 9 digits" in text
    assert "line 7: until is before since" in text
    assert "123456789" not in text and good[1].digits not in text
    again = registrar.import_table(table)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)


def test_a_semicolon_bom_export_with_dutch_dates_and_extra_columns(
    registrar: Registrar, tmp_path: Path
) -> None:
    """The gap: extra columns, dd-mm-jjjj dates and a BOM were refused."""
    people = _people(3)
    lines = ["Dossiernummer;BSN;Naam;Startdatum;Einddatum;Behandelaar"]
    lines += [
        f"Z-{i};{p.digits};Persoon {i};{3 + i}-09-2024;;medewerker {i}"
        for i, p in enumerate(people)
    ]
    table = _table(
        tmp_path / "export.csv",
        codecs.BOM_UTF8 + ("\r\n".join(lines) + "\r\n").encode(),
        since="Startdatum",
        until="einddatum",
        reference="dossiernummer",
    )
    assert table.ignored == ("Naam", "Behandelaar")
    summary = registrar.import_table(table)
    assert (summary.added, summary.rejected) == (3, 0)
    # Open cases since 2024: active now, and for the retention term after this import.
    assert _found(registrar, people) == 3
    term = registrar.retention_days
    assert _found(registrar, people, days=term) == 3
    assert _found(registrar, people, days=term + 1) == 0
    assert summary.open_until == TODAY + dt.timedelta(days=term)


def test_a_line_whose_end_has_passed_is_refused_with_what_to_do(
    registrar: Registrar, tmp_path: Path
) -> None:
    people = _people(4)
    table = _table(
        tmp_path / "export.csv",
        "bsn;until\n"
        f"{people[0].digits};01-01-2026\n"
        f"{people[1].digits};\n"
        f"{people[2].digits};2026-02-01\n"
        f"{people[3].digits};{(TODAY + dt.timedelta(days=3)).isoformat()}\n",
    )
    summary = registrar.import_table(table)
    assert (summary.added, summary.rejected) == (2, 2)
    assert summary.problems.lines() == [
        "2 lines: until is in the past: the registration would be ended at once — e.g. line 2, 4"
    ]
    with pytest.raises(InvalidDetails) as info:
        details(
            registrar.network,
            registrar.org,
            until=dt.date(2026, 1, 1),
            today=TODAY,
            given=["until"],
        )
    assert "withdraw" in (info.value.hint or "") and "--sync" in (info.value.hint or "")


def test_five_thousand_identical_errors_are_one_line(registrar: Registrar, tmp_path: Path) -> None:
    people = _people(5021, seed=9)
    body = "".join(f"{p.digits},2024/09/03x\n" for p in people)
    summary = registrar.import_table(_table(tmp_path / "e.csv", "bsn,since\n" + body))
    assert summary.rejected == 5021
    assert summary.problems.lines() == [
        "5,021 lines: since: not a date (use YYYY-MM-DD or dd-mm-jjjj) — e.g. line 2, 3, 4"
    ]


def test_reimporting_does_not_undo_a_withdrawal_by_hand_unless_asked(
    registrar: Registrar, tmp_path: Path
) -> None:
    people = _people(3)
    table = _table(tmp_path / "e.csv", "bsn\n" + "".join(f"{p.digits}\n" for p in people))
    registrar.import_table(table)
    assert registrar.withdraw(people[1]) == 1
    again = registrar.import_table(table)
    assert (again.unchanged, again.kept_withdrawn, again.added) == (2, 1, 0)
    assert _found(registrar, people) == 2
    back = registrar.import_table(table, reactivate=True)
    assert (back.unchanged, back.added, back.kept_withdrawn) == (2, 1, 0)
    assert _found(registrar, people) == 3


def test_registering_by_hand_registers_a_withdrawn_person_again(registrar: Registrar) -> None:
    [person] = _people(1)
    registrar.register(person, Details())
    registrar.withdraw(person)
    stored = registrar.register(person, Details())
    assert stored.change is Change.ADDED and stored.withdrawn_on == TODAY


def test_reregistering_without_reference_or_since_keeps_them(
    registrar: Registrar, network: Network, clock: Clock
) -> None:
    """The gap: re-registering without --reference/--since cleared them."""
    [person] = _people(1)
    org = registrar.org
    first = details(network, org, since=dt.date(2025, 3, 1), reference="CASE-9", today=TODAY)
    registrar.register(person, first)
    clock.advance(10)
    stored = registrar.register(person, details(network, org, today=clock().date()))
    assert stored.change is Change.UNCHANGED and stored.since == dt.date(2025, 3, 1)
    hit = registrar.store.find(registrar.pseudonyms.pseudonymise([person]), clock().date())
    assert [h.reference for h in hit.values()] == ["CASE-9"]
    # The confirmation moved the end: the term counts from now.
    assert stored.until == clock().date() + dt.timedelta(days=registrar.retention_days)


def test_a_later_explicit_until_is_accepted(registrar: Registrar, network: Network) -> None:
    """The gap: a later explicit --until was refused as beyond the retention term."""
    [person] = _people(1)
    registrar.register(person, details(network, registrar.org, today=TODAY))
    later = TODAY + dt.timedelta(days=3000)
    stored = registrar.register(person, details(network, registrar.org, until=later, today=TODAY))
    assert stored.change is Change.UPDATED and stored.given_until == later
    assert stored.ends_by_confirmation


def test_sync_ends_registrations_missing_from_the_full_caseload(
    registrar: Registrar, tmp_path: Path, clock: Clock
) -> None:
    """The gap: a full export that no longer held a case never ended it."""
    people = _people(5)
    full = _table(tmp_path / "a.csv", "bsn\n" + "".join(f"{p.digits}\n" for p in people))
    registrar.import_table(full)
    clock.advance(1)
    now = _table(tmp_path / "b.csv", "bsn\n" + "".join(f"{p.digits}\n" for p in people[:3]))
    plain = registrar.import_table(now)
    assert plain.ended is None and _found(registrar, people, 1) == 5  # without --sync: nothing
    synced = registrar.import_table(now, sync=True)
    assert synced.ended == 2 and synced.unchanged == 3
    assert _found(registrar, people, 1) == 3


def test_sync_ends_nothing_when_a_line_was_rejected_or_the_file_is_empty(
    registrar: Registrar, tmp_path: Path
) -> None:
    people = _people(3)
    registrar.import_table(
        _table(tmp_path / "a.csv", "bsn\n" + "".join(f"{p.digits}\n" for p in people))
    )
    partial = _table(tmp_path / "b.csv", f"bsn,since\n{people[0].digits},\n{people[1].digits},x\n")
    summary = registrar.import_table(partial, sync=True)
    assert summary.ended is None and summary.sync_skipped is not None
    assert "1 line(s) were rejected" in summary.sync_skipped
    empty = registrar.import_table(_table(tmp_path / "c.csv", "bsn\n"), sync=True)
    assert empty.ended is None and "no registrations" in (empty.sync_skipped or "")
    assert _found(registrar, people) == 3


class FailingPseudonymiser:
    """The real local OPRF, until the key service 'goes away' after some batches."""

    def __init__(self, inner: LocalPseudonymiser, batches: int) -> None:
        self.inner = inner
        self.batches = batches

    def pseudonymise(self, bsns: Sequence[Bsn]) -> list[Pseudonym]:
        if self.batches == 0:
            raise Unavailable("the key service at 127.0.0.1:1 cannot be reached")
        self.batches -= 1
        return self.inner.pseudonymise(bsns)


def test_an_interrupted_import_says_how_far_it_got_and_a_rerun_finishes_it(
    registrar: Registrar, tmp_path: Path, local_pseudonymiser: LocalPseudonymiser
) -> None:
    people = _people(1300, seed=11)
    table = _table(tmp_path / "big.csv", "bsn\n" + "".join(f"{p.digits}\n" for p in people))
    registrar.pseudonyms = FailingPseudonymiser(local_pseudonymiser, batches=2)
    summary = ImportSummary()
    with pytest.raises(Unavailable):
        registrar.import_table(table, summary, sync=True)
    assert summary.stored == 1000 and summary.last_committed_line == 1001
    assert summary.ended is None  # --sync ends nothing when the import did not finish
    registrar.pseudonyms = local_pseudonymiser
    again = registrar.import_table(table, sync=True)
    assert (again.unchanged, again.added, again.ended) == (1000, 300, 0)
    assert _found(registrar, people) == 1300


def test_an_import_batch_is_one_trail_record_per_kind_and_an_access_request_still_finds_it(
    registrar: Registrar, tmp_path: Path
) -> None:
    """One record per batch (its lines, a hash over its rows), not one per row; the
    person's registration change is found by the access request, and nobody else's is."""
    from betrokken.audit.record import Event
    from betrokken.audit.subject import PersonKeys, find_records

    people = _people(7)
    rows = "\n".join(f"{b.digits},2026-01-0{k + 1},CASE-{k}" for k, b in enumerate(people[:6]))
    before = registrar.store.trail.size()
    registrar.import_table(_table(tmp_path / "a.csv", "bsn,since,reference\n" + rows + "\n"))
    assert registrar.store.trail.size() == before + 1  # six added: one record
    changed = "\n".join(f"{b.digits},2026-01-0{k + 1},NEW-{k}" for k, b in enumerate(people[:2]))
    registrar.import_table(_table(tmp_path / "b.csv", "bsn,since,reference\n" + changed + "\n"))
    assert registrar.store.trail.size() == before + 2  # two updated: one record
    records = list(registrar.store.trail.records())
    added, updated = (r.entry for r in records[-2:])
    assert added is not None and updated is not None
    assert (added.reason, added.details["import_lines"], added.details["registrations"]) == (
        "added",
        "2-7",
        "6",
    )
    assert len(added.details["rows_sha256"]) == 64
    assert (updated.reason, updated.details["import_lines"]) == ("updated", "2-3")
    assert all(s.pseudonym == "" for s in added.subjects)  # fingerprints only

    def request(bsn: Bsn) -> list[int]:
        pseudonym = registrar.pseudonyms.pseudonymise([bsn])[0]
        keys = PersonKeys({"politie-test": pseudonym.value}, frozenset({pseudonym.fingerprint}))
        return [
            index
            for index, entry in find_records(registrar.store.trail, keys)
            if entry.event is Event.REGISTRATION
        ]

    first, last = records[-2].index, records[-1].index
    assert request(people[0]) == [first, last]  # added, then updated
    assert request(people[5]) == [first]  # added only
    assert request(people[6]) == []  # never imported


def test_a_sync_with_far_fewer_lines_than_registrations_stops_before_reading_a_line(
    registrar: Registrar, tmp_path: Path, clock: Clock
) -> None:
    """The fault: a 1,000-line export of one team read as the whole caseload ended 207,001
    registrations. With the guard, a file too short to keep 90% stops before anything changes."""
    people = _people(40)
    registrar.import_table(
        _table(tmp_path / "a.csv", "bsn\n" + "".join(f"{p.digits}\n" for p in people))
    )
    size = registrar.store.trail.size()
    clock.advance(1)
    part = _table(tmp_path / "b.csv", "bsn\n" + "".join(f"{p.digits}\n" for p in people[:5]))
    summary = ImportSummary()
    with pytest.raises(SyncGuarded) as refused:
        registrar.import_table(part, summary, sync=True, guard_share=0.10)
    assert refused.value.exit_code == 12
    assert "at least 35 of 40 active registrations" in refused.value.message
    assert "nothing was read or changed" in refused.value.message
    assert "--force" in (refused.value.hint or "")
    assert summary.lines_read == 0 and registrar.store.trail.size() == size
    assert _found(registrar, people, 1) == 40
    # --force (no guard) goes on
    forced = registrar.import_table(part, sync=True, guard_share=None)
    assert forced.ended == 35 and _found(registrar, people, 1) == 5


def test_a_sync_whose_lines_match_too_few_registrations_ends_nothing(
    registrar: Registrar, tmp_path: Path, clock: Clock
) -> None:
    """A file as long as the caseload but of other persons (another organisation's export):
    its lines are stored, nothing is ended, and the error says how many would have ended."""
    people = _people(20)
    others = _people(20, seed=99)
    registrar.import_table(
        _table(tmp_path / "a.csv", "bsn\n" + "".join(f"{p.digits}\n" for p in people))
    )
    clock.advance(1)
    wrong = _table(
        tmp_path / "b.csv",
        "bsn\n" + "".join(f"{p.digits}\n" for p in people[:17] + others[:3]),
    )
    summary = ImportSummary()
    with pytest.raises(SyncGuarded) as refused:
        registrar.import_table(wrong, summary, sync=True, guard_share=0.10)
    assert "would end 3 of 20 active registrations (15%)" in refused.value.message
    assert "nothing was ended" in refused.value.message
    assert summary.ended is None and _found(registrar, people, 1) == 20
    # ending exactly the share is allowed
    allowed = _table(
        tmp_path / "c.csv", "bsn\n" + "".join(f"{p.digits}\n" for p in people[:18] + others[:3])
    )
    assert registrar.import_table(allowed, sync=True, guard_share=0.10).ended == 2
