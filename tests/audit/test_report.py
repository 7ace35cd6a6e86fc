"""The DPO's HTML report: figures match the records, planted anomalies are flagged."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.audit.report import IndexedEntry, ReportSettings, find_anomalies, render_report

SETTINGS = ReportSettings(max_batch=10)
AMS = dt.timezone(dt.timedelta(hours=1))  # Amsterdam in November


def _subject(n: int, case: str = "C") -> Subject:
    return Subject(f"{n:0128x}", "k1", f"ps-{n:04d}", case)


def _search(
    at: dt.datetime,
    org: str,
    user: str,
    purpose: str,
    subjects: int = 1,
    first: int = 0,
    case: str = "C",
) -> AuditEntry:
    return AuditEntry(
        event=Event.SEARCH,
        at=at.astimezone(dt.UTC),
        organisation=org,
        user=user,
        purpose=purpose,
        subjects=tuple(_subject(first + i, case) for i in range(subjects)),
    )


def _population() -> tuple[list[IndexedEntry], dict[str, list[int]]]:
    entries: list[AuditEntry | None] = [None, None, None]  # pruned
    planted: dict[str, list[int]] = {}
    # A normal user: 3 questions a day on 5 weekdays, office hours, different people.
    for day in range(16, 21):
        for k in range(3):
            entries.append(
                _search(
                    dt.datetime(2026, 11, day, 10 + k, tzinfo=AMS),
                    "zvh",
                    "anna",
                    "zvh-triage",
                    first=day * 10 + k,
                    case=f"Z-{day}-{k}",
                )
            )
    # Bob: 2 a day for four days, then 30 on one day -> volume.
    for day in range(16, 20):
        for k in range(2):
            entries.append(
                _search(
                    dt.datetime(2026, 11, day, 9, k, tzinfo=AMS),
                    "politie",
                    "bob",
                    "zsm-context",
                    first=500 + day * 10 + k,
                    case=f"P-{k}",
                )
            )
    start = len(entries)
    for k in range(30):
        entries.append(
            _search(
                dt.datetime(2026, 11, 20, 11, k, tzinfo=AMS),
                "politie",
                "bob",
                "zsm-context",
                first=700 + k,
                case=f"P-x{k}",
            )
        )
    planted["volume"] = list(range(start, len(entries)))
    # Off hours: a Saturday night question.
    planted["off-hours"] = [len(entries)]
    entries.append(
        _search(
            dt.datetime(2026, 11, 21, 23, 30, tzinfo=AMS),
            "gemeente",
            "carl",
            "wijkteam-coordination",
            first=900,
        )
    )
    # The same person, same case, four times.
    planted["repeat-subject"] = list(range(len(entries), len(entries) + 4))
    for k in range(4):
        entries.append(
            _search(
                dt.datetime(2026, 11, 18, 14, k, tzinfo=AMS),
                "gemeente",
                "dora",
                "wijkteam-coordination",
                first=950,
                case="G-1",
            )
        )
    # A batch of 9 of the maximum 10.
    planted["batch-near-limit"] = [len(entries)]
    entries.append(
        _search(
            dt.datetime(2026, 11, 19, 8, 0, tzinfo=AMS),
            "zvh",
            "anna",
            "zvh-triage",
            subjects=9,
            first=1000,
            case="Z-batch",
        )
    )
    # Quota exhaustion at the key service.
    planted["quota"] = [len(entries)]
    entries.append(
        AuditEntry(
            event=Event.REFUSAL,
            at=dt.datetime(2026, 11, 19, 12, tzinfo=dt.UTC),
            organisation="politie",
            reason="QuotaExceeded",
        )
    )
    entries.append(
        AuditEntry(
            event=Event.OUTCOME,
            at=dt.datetime(2026, 11, 19, 12, tzinfo=dt.UTC),
            organisation="zvh",
            completeness="partial",
        )
    )
    entries.append(
        AuditEntry(
            event=Event.SEARCH,
            at=dt.datetime(2026, 11, 19, 12, tzinfo=dt.UTC),
            organisation="zvh",
            user="<script>alert(1)</script>",
            purpose="zvh-triage",
            subjects=(_subject(2000),),
        )
    )
    return [IndexedEntry(i, e) for i, e in enumerate(entries)], planted


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, dict[str, int]] = {}
        self.current = ""
        self.anomalies: list[str] = []
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if tag == "section" and "chart" in (a.get("class") or ""):
            self.current = a.get("id") or ""
            self.charts[self.current] = {}
        if tag == "g" and a.get("class") == "bar":
            self.charts[self.current][a["data-label"] or ""] = int(a["data-value"] or 0)
        if a.get("class") == "anomaly":
            self.anomalies.append(a.get("data-kind") or "")
        if tag == "a" and a.get("href", "").startswith("#"):  # type: ignore[union-attr]
            self.links.append((a["href"] or "")[1:])


def test_anomalies_are_found_and_the_innocent_are_not() -> None:
    entries, planted = _population()
    found = find_anomalies(entries, SETTINGS)
    by_kind: dict[str, list[int]] = {}
    for anomaly in found:
        by_kind.setdefault(anomaly.kind, []).extend(anomaly.indices)
    for kind, indices in planted.items():
        assert sorted(by_kind[kind]) == sorted(indices), kind
    assert not any("anna" in a.title for a in found if a.kind == "volume")
    assert not any(a.kind == "off-hours" and "anna" in a.title for a in found)


def test_the_page_matches_the_records() -> None:
    entries, planted = _population()
    page_text = render_report(
        entries,
        title="t",
        generated_at=dt.datetime.now(dt.UTC),
        settings=SETTINGS,
        verification="audit log verified",
    )
    page = Page()
    page.feed(page_text)
    searches = [e.entry for e in entries if e.entry and e.entry.event is Event.SEARCH]
    per_org: dict[str, int] = {}
    per_purpose: dict[str, int] = {}
    for entry in searches:
        per_org[entry.organisation] = per_org.get(entry.organisation, 0) + 1
        per_purpose[entry.purpose] = per_purpose.get(entry.purpose, 0) + 1
    assert page.charts["per-organisation"] == per_org
    assert page.charts["per-purpose"] == per_purpose
    assert page.charts["refusals"] == {"QuotaExceeded": 1}
    assert sum(page.charts["partial"].values()) == 1
    assert set(planted) <= set(page.anomalies)
    assert page.links and all(link in page.ids for link in page.links)
    for forbidden in ("http://", "https://", "<script", "<link"):
        assert forbidden not in page_text
    assert f"{2000:0128x}" not in page_text  # never a full pseudonym
    assert "records 0&ndash;2 pruned" in page_text
