"""The DPO's HTML report: figures match the records, planted anomalies are flagged."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import replace
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.audit.report import (
    Anomaly,
    IndexedEntry,
    ReportSettings,
    find_anomalies,
    render_report,
)

SETTINGS = ReportSettings(max_batch=10)
AMS = ZoneInfo("Europe/Amsterdam")
NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source"}


def _subject(n: int, case: str | None = None) -> Subject:
    """A person; without a case, each person has a case of their own."""
    return Subject(f"{n:0128x}", "k1", f"ps-{n:012x}", f"C-{n}" if case is None else case)


def _search(
    at: dt.datetime,
    org: str,
    user: str,
    purpose: str,
    subjects: int = 1,
    first: int = 0,
    case: str | None = None,
) -> AuditEntry:
    return AuditEntry(
        event=Event.SEARCH,
        at=at.astimezone(dt.UTC),
        organisation=org,
        user=user,
        role="regisseur",
        purpose=purpose,
        legal_basis="art. 6 lid 1 sub e AVG",
        subjects=tuple(_subject(first + i, case) for i in range(subjects)),
    )


def _local(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=AMS)


def _population() -> tuple[list[IndexedEntry], dict[str, list[int]], dict[str, list[int]]]:
    """Synthetic records: (entries, planted anomaly indices per kind, indices per user)."""
    entries: list[AuditEntry | None] = [None, None, None]  # pruned after the retention term
    planted: dict[str, list[int]] = {}
    by_user: dict[str, list[int]] = {}

    def add(entry: AuditEntry | None) -> int:
        entries.append(entry)
        if entry is not None and entry.event is Event.SEARCH:
            by_user.setdefault(entry.user, []).append(len(entries) - 1)
        return len(entries) - 1

    # Innocent: 12 questions every weekday (busy but steady), office hours, new people each time.
    for day in range(16, 21):
        for k in range(12):
            add(
                _search(
                    _local(day, 8 + k % 10, k),
                    "zvh",
                    "eva",
                    "zvh-triage",
                    first=10_000 + day * 100 + k,
                    case=f"Z-{day}-{k}",
                )
            )
    # Bob: 2 a day for four days, then 30 on one day -> volume.
    for day in range(16, 20):
        for k in range(2):
            add(
                _search(
                    _local(day, 9, k),
                    "politie",
                    "bob",
                    "zsm-context",
                    first=20_000 + day * 10 + k,
                    case=f"P-{day}-{k}",
                )
            )
    planted["volume"] = [
        add(_search(_local(20, 11, k), "politie", "bob", "zsm-context", first=21_000 + k))
        for k in range(30)
    ]
    # Off hours: a Saturday night question.
    planted["off-hours"] = [
        add(_search(_local(21, 23, 30), "gemeente", "carl", "wijkteam", first=30_000))
    ]
    # The same person, same case, four times.
    planted["repeat-subject"] = [
        add(_search(_local(18, 14, k), "gemeente", "dora", "wijkteam", first=40_000, case="G-1"))
        for k in range(4)
    ]
    # A batch of 9 of the maximum 10.
    planted["batch-near-limit"] = [
        add(_search(_local(19, 8), "zvh", "anna", "zvh-triage", subjects=9, first=50_000))
    ]
    # Quota exhaustion at the key service (twice the same day: one anomaly).
    planted["quota"] = [
        add(
            AuditEntry(
                event=Event.REFUSAL,
                at=dt.datetime(2026, 11, 19, 12, k, tzinfo=dt.UTC),
                organisation="politie",
                user="bob",
                reason="QuotaExceeded",
            )
        )
        for k in range(2)
    ]
    add(
        AuditEntry(
            event=Event.REFUSAL,
            at=dt.datetime(2026, 11, 19, 13, tzinfo=dt.UTC),
            organisation="gemeente",
            user="carl",
            purpose="zsm-context",
            reason="PurposeNotAllowed",
        )
    )
    add(
        AuditEntry(
            event=Event.OUTCOME,
            at=dt.datetime(2026, 11, 19, 12, tzinfo=dt.UTC),
            organisation="zvh",
            user="eva",
            purpose="zvh-triage",
            subjects=(_subject(60_000),),
            outcomes={_subject(60_000).fingerprint: {"ggz": "deferred", "politie": "involved"}},
            completeness="partial",
        )
    )
    add(
        _search(
            dt.datetime(2026, 11, 19, 12, tzinfo=dt.UTC),
            "zvh",
            "<script>alert(1)</script>",
            "zvh-triage",
            first=70_000,
        )
    )
    add(
        AuditEntry(
            event=Event.LOG_ACCESS,
            at=dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC),
            organisation="zvh",
            user="fg.zvh",
            role="dpo",
            reason="subject",
            details={"filter": f"{70_000:0128x}"},  # a pseudonym that strayed into a field
        )
    )
    return [IndexedEntry(i, e) for i, e in enumerate(entries)], planted, by_user


class Page(HTMLParser):
    """The machine-readable parts of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, dict[str, int]] = {}
        self.current = ""
        self.anomalies: list[str] = []
        self.anomaly_records: list[tuple[str, tuple[int, ...]]] = []
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.events: dict[str, int] = {}
        self.figures: dict[str, int] = {}
        self.stack: list[str] = []
        self.unbalanced: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag not in VOID:
            self.stack.append(tag)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "section" and "chart" in a.get("class", "").split():
            self.current = a["id"]
            self.charts[self.current] = {}
        if tag == "g" and a.get("class") == "bar":
            self.charts[self.current][a["data-label"]] = int(a["data-value"])
        if "anomaly" in a.get("class", "").split():
            self.anomalies.append(a.get("data-kind", ""))
            numbers = tuple(int(n) for n in a.get("data-records", "").split())
            self.anomaly_records.append((a.get("data-kind", ""), numbers))
        if tag == "tr" and "data-event" in a:
            self.events[a["data-event"]] = int(a["data-value"])
        for key in ("data-records", "data-questions", "data-persons", "data-pruned"):
            if key in a and tag == "span":
                self.figures[key] = int(a[key])
        if tag == "a" and a.get("href", "").startswith("#"):
            self.links.append(a["href"][1:])

    def handle_endtag(self, tag: str) -> None:
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
        else:
            self.unbalanced.append(tag)


def _render(entries: list[IndexedEntry], verification: str = "audit log verified: ok") -> str:
    return render_report(
        entries, title="t", generated_at=NOW, settings=SETTINGS, verification=verification
    )


def _parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def _by_kind(found: list[Anomaly]) -> dict[str, list[int]]:
    by_kind: dict[str, list[int]] = {}
    for anomaly in found:
        by_kind.setdefault(anomaly.kind, []).extend(anomaly.indices)
    return by_kind


def test_planted_anomalies_are_flagged_with_their_records() -> None:
    entries, planted, _ = _population()
    found = find_anomalies(entries, SETTINGS)
    by_kind = _by_kind(found)
    assert set(by_kind) == set(planted)
    for kind, indices in planted.items():
        assert sorted(by_kind[kind]) == sorted(indices), kind
    assert Counter(a.kind for a in found) == {k: 1 for k in planted}
    (volume,) = [a for a in found if a.kind == "volume"]
    assert "bob" in volume.title and "30 questions" in volume.title
    assert "usually 2 a day" in volume.title


def test_the_innocent_are_not_flagged() -> None:
    entries, _, by_user = _population()
    found = find_anomalies(entries, SETTINGS)
    flagged = {i for a in found for i in a.indices}
    assert not flagged & set(by_user["eva"])
    assert not any("eva" in a.title for a in found)
    # Bob's ordinary days are not part of his volume anomaly.
    assert not flagged & set(by_user["bob"][:8])


def test_volume_of_a_single_active_day() -> None:
    def day_of(count: int) -> list[IndexedEntry]:
        return [
            IndexedEntry(k, _search(_local(17, 10, k), "politie", "new", "zsm", first=k))
            for k in range(count)
        ]

    assert not find_anomalies(day_of(29), ReportSettings())
    (anomaly,) = find_anomalies(day_of(30), ReportSettings())
    assert anomaly.kind == "volume" and anomaly.indices == tuple(range(30))


def test_office_hours_are_judged_in_local_time() -> None:
    times = {
        0: dt.datetime(2026, 7, 1, 5, 30, tzinfo=dt.UTC),  # 07:30 CEST, Wednesday: in
        1: dt.datetime(2026, 12, 2, 5, 30, tzinfo=dt.UTC),  # 06:30 CET: out
        2: dt.datetime(2026, 12, 2, 17, 59, tzinfo=dt.UTC),  # 18:59 CET: in
        3: dt.datetime(2026, 12, 2, 18, 0, tzinfo=dt.UTC),  # 19:00 CET: out
        4: dt.datetime(2026, 12, 4, 23, 30, tzinfo=dt.UTC),  # Saturday 00:30 CET: out
        5: dt.datetime(2026, 12, 5, 11, 0, tzinfo=dt.UTC),  # Saturday noon: out
    }
    entries = [
        IndexedEntry(i, _search(at, "politie", "owl", "zsm", first=i)) for i, at in times.items()
    ]
    found = find_anomalies(entries, ReportSettings())
    assert {a.kind for a in found} == {"off-hours"}
    assert sorted(a.indices for a in found) == [(1, 3), (4, 5)]
    saturday = next(a for a in found if a.indices == (4, 5))
    assert "2026-12-05" in saturday.title and "weekend" in saturday.title


def test_a_repeated_list_is_one_anomaly_and_a_new_case_each_time_is_another() -> None:
    entries = [
        IndexedEntry(k, _search(_local(17, 10, k), "zvh", "zsm", "zsm", subjects=5, case="Z"))
        for k in range(3)
    ]
    # The same person under three made-up case references: no repeat per case, but fishing.
    entries += [
        IndexedEntry(3 + k, _search(_local(17, 11, k), "zvh", "x", "zvh", first=99, case=f"N{k}"))
        for k in range(3)
    ]
    found = find_anomalies(entries, ReportSettings())
    assert [(a.kind, a.indices) for a in found] == [
        ("repeat-subject", (0, 1, 2)),
        ("case-many-persons", (0, 1, 2)),
        ("person-many-cases", (3, 4, 5)),
    ]
    assert "5 persons" in found[0].title
    assert found[2].facts["cases"] == "N0, N1, N2"


def test_batch_threshold_and_quota_per_organisation_per_day() -> None:
    settings = ReportSettings(max_batch=100)
    entries = [
        IndexedEntry(0, _search(_local(17, 10), "zvh", "a", "p", subjects=89, first=0)),
        IndexedEntry(1, _search(_local(17, 11), "zvh", "a", "p", subjects=90, first=100)),
    ]
    refusal = AuditEntry(event=Event.REFUSAL, at=_local(17, 12), reason="QuotaExceeded")
    entries += [
        IndexedEntry(2, replace(refusal, organisation="politie")),
        IndexedEntry(3, replace(refusal, organisation="politie")),
        IndexedEntry(4, replace(refusal, organisation="halt")),
        IndexedEntry(5, replace(refusal, reason="RateLimited")),
    ]
    found = find_anomalies(entries, settings)
    assert [(a.kind, a.indices) for a in found] == [
        ("batch-near-limit", (1,)),
        ("quota", (4,)),
        ("quota", (2, 3)),
    ]


def test_the_page_matches_the_records() -> None:
    entries, planted, _ = _population()
    page = _parse(_render(entries))
    present = [e.entry for e in entries if e.entry is not None]
    searches = [e for e in present if e.event is Event.SEARCH]
    assert page.charts["per-organisation"] == Counter(e.organisation for e in searches)
    assert page.charts["per-purpose"] == Counter(e.purpose for e in searches)
    assert sum(page.charts["per-user"].values()) == len(searches)
    assert page.charts["per-user"]["bob (politie)"] == 38
    assert sum(page.charts["per-day"].values()) == len(searches)
    assert page.charts["per-day"]["2026-11-21"] == 1  # Saturday
    assert page.charts["refusals"] == {"QuotaExceeded": 2, "PurposeNotAllowed": 1}
    assert page.charts["partial"]["2026-11-19"] == 1
    assert sum(page.charts["partial"].values()) == 1
    assert page.events == {e.value: Counter(x.event for x in present)[e] for e in Event}
    assert page.figures == {
        "data-records": len(entries),
        "data-pruned": 3,
        "data-questions": len(searches),
        "data-persons": sum(len(e.subjects) for e in searches),
    }
    assert set(planted) <= set(page.anomalies)


def test_anomalies_link_to_records_that_exist() -> None:
    entries, _, _ = _population()
    page = _parse(_render(entries))
    found = find_anomalies(entries, SETTINGS)
    assert page.anomaly_records == [(a.kind, a.indices) for a in found]
    assert page.links and all(link in page.ids for link in page.links)
    for anomaly in found:
        assert all(f"record-{i}" in page.links for i in anomaly.indices)
    for item in entries:
        assert (f"record-{item.index}" in page.ids) is (item.entry is not None)


def test_the_page_is_self_contained_and_well_formed() -> None:
    entries, _, _ = _population()
    text = _render(entries)
    assert text.startswith("<!DOCTYPE html>")
    for forbidden in ("http://", "https://", "<script", "<link", "<img", "@import", "url("):
        assert forbidden not in text
    page = _parse(text)
    assert page.stack == [] and page.unbalanced == []
    assert "@page" in text and "A4" in text


def test_no_pseudonym_is_shown_in_full() -> None:
    entries, _, _ = _population()
    text = _render(entries)
    assert not re.search(r"[0-9a-f]{64}", text)
    for item in entries:
        for subject in item.entry.subjects if item.entry else ():
            assert subject.pseudonym not in text
    assert _subject(60_000).fingerprint in text
    assert "involved" in text  # the outcome per organisation is shown


def test_pruned_ranges_are_mentioned() -> None:
    entries, _, _ = _population()
    text = _render(entries)
    assert (
        "records 0&ndash;2 pruned (content removed after the retention term; hashes kept)" in text
    )
    single = [IndexedEntry(7, None), *entries[3:5]]
    assert "record 7 pruned" in _render(single)


def test_strings_from_records_are_escaped() -> None:
    entries, _, _ = _population()
    text = _render(entries, verification="audit log FAILED verification: <b>x</b>")
    assert "<script" not in text and "<b>x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert 'class="verification bad"' in text


def test_an_empty_or_fully_pruned_log_renders() -> None:
    for entries in ([], [IndexedEntry(0, None), IndexedEntry(1, None)]):
        page = _parse(_render(entries, verification=""))
        assert page.stack == [] and page.anomalies == []
        assert page.charts["per-organisation"] == {}


def test_a_long_period_is_charted_per_month() -> None:
    entries = [
        IndexedEntry(0, _search(dt.datetime(2026, 1, 5, 10, tzinfo=AMS), "a", "u", "p")),
        IndexedEntry(1, _search(dt.datetime(2026, 6, 5, 10, tzinfo=AMS), "a", "u", "p", first=1)),
    ]
    page = _parse(_render(entries))
    assert page.charts["per-day"] == {
        "2026-01": 1,
        "2026-02": 0,
        "2026-03": 0,
        "2026-04": 0,
        "2026-05": 0,
        "2026-06": 1,
    }


def _as(entry: IndexedEntry, event: Event) -> IndexedEntry:
    if entry.entry is None or entry.entry.event is not Event.SEARCH:
        return entry
    from dataclasses import replace

    return IndexedEntry(entry.index, replace(entry.entry, event=event))


def test_every_planted_anomaly_is_flagged_in_the_asking_organisations_trail() -> None:
    """Since the coordinator is blind (ADR 0007), the records of who asked about whom are the
    asking organisation's own-query records: every anomaly is still found there."""
    entries, planted, _ = _population()
    trail = [_as(e, Event.OWN_QUERY) for e in entries]
    by_kind = _by_kind(find_anomalies(trail, SETTINGS))
    assert set(by_kind) == set(planted)
    for kind, indices in planted.items():
        assert sorted(by_kind[kind]) == sorted(indices), kind


def test_the_coordinators_log_flags_what_it_can_see_and_no_person() -> None:
    """The coordinator's search records name no user and no person, only how many: it flags
    volume, off-hours and near-limit lists per organisation, never a repeat about a person."""
    from dataclasses import replace

    entries, planted, _ = _population()
    blind = [
        IndexedEntry(
            e.index,
            replace(
                e.entry,
                user="",
                subjects=(),
                details={"persons": str(len(e.entry.subjects))},
            ),
        )
        if e.entry is not None and e.entry.event is Event.SEARCH
        else e
        for e in entries
    ]
    by_kind = _by_kind(find_anomalies(blind, SETTINGS))
    assert "repeat-subject" not in by_kind
    assert sorted(by_kind["batch-near-limit"]) == planted["batch-near-limit"]
    assert set(planted["off-hours"]) <= set(by_kind["off-hours"])
    assert set(planted["volume"]) <= set(by_kind["volume"])


def test_alarms_are_counted_per_kind_and_day() -> None:
    alarms = [
        IndexedEntry(i, AuditEntry(event=Event.ALARM, at=_local(18, 10, i), reason=kind))
        for i, kind in enumerate(["replay", "replay", "forged", "witness-fork"])
    ]
    found = [a for a in find_anomalies(alarms, SETTINGS) if a.kind == "alarm"]
    assert sorted(len(a.indices) for a in found) == [1, 1, 2]
    assert any("'replay'" in a.title and "2 alarms" in a.title for a in found)


def test_a_question_asked_for_a_partner_shows_the_aanmelder_beside_the_asker() -> None:
    entry = replace(
        _search(NOW - dt.timedelta(hours=1), "zvh-test", "r.jansen", "zvh-triage"),
        details={"on_behalf_of": "politie-test", "persons": "1"},
    )
    own = _search(NOW - dt.timedelta(hours=2), "politie-test", "p.agent", "zsm-context")
    text = _render([IndexedEntry(0, own), IndexedEntry(1, entry)])
    assert "zvh-test<br><small>on behalf of politie-test</small>" in text
    assert "politie-test<br><small>on behalf of" not in text  # on its own basis: no line
