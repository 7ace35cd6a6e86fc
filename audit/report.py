"""The DPO's report: one self-contained HTML page with inline SVG charts and anomalies.

Pure: records in, a string out. No external assets, no scripts; figures carry ``data-label`` /
``data-value`` attributes and anomalies ``data-kind`` so the page can be checked by machine.
Subjects are only ever shown by their fingerprint.
"""

from __future__ import annotations

import datetime as dt
import html
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from betrokken.audit.record import AuditEntry, Event


@dataclass(frozen=True)
class IndexedEntry:
    index: int
    entry: AuditEntry | None  # None: content pruned after the retention term


@dataclass(frozen=True)
class Anomaly:
    kind: str  # volume | off-hours | repeat-subject | batch-near-limit | quota
    title: str
    indices: tuple[int, ...]


@dataclass(frozen=True)
class ReportSettings:
    max_batch: int = 100
    timezone: str = "Europe/Amsterdam"
    office_start: int = 7
    office_end: int = 19
    volume_factor: float = 3.0
    volume_minimum: int = 10
    repeat_minimum: int = 3
    batch_fraction: float = 0.9


def _local(entry: AuditEntry, settings: ReportSettings) -> dt.datetime:
    return entry.at.astimezone(ZoneInfo(settings.timezone))


def _searches(entries: Sequence[IndexedEntry]) -> list[tuple[int, AuditEntry]]:
    return [(e.index, e.entry) for e in entries if e.entry and e.entry.event is Event.SEARCH]


def find_anomalies(entries: Sequence[IndexedEntry], settings: ReportSettings) -> list[Anomaly]:
    found: list[Anomaly] = []
    searches = _searches(entries)

    # A user far above their usual daily volume.
    per_user_day: dict[str, dict[dt.date, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, entry in searches:
        per_user_day[entry.user][_local(entry, settings).date()].append(index)
    for user, days in sorted(per_user_day.items()):
        for day, indices in sorted(days.items()):
            others = [len(v) for d, v in days.items() if d != day]
            usual = statistics.median(others) if others else 0.0
            count = len(indices)
            if others:
                flagged = (
                    count >= settings.volume_minimum and count > settings.volume_factor * usual
                )
            else:
                flagged = count >= settings.volume_minimum * 3
            if flagged:
                usual_text = f"usually {usual:g} a day" if others else "no other active days"
                found.append(
                    Anomaly(
                        "volume",
                        f"user {user} asked {count} questions on {day}; {usual_text}",
                        tuple(indices),
                    )
                )

    # Questions outside office hours or in the weekend.
    off: dict[tuple[str, dt.date], list[int]] = defaultdict(list)
    for index, entry in searches:
        local = _local(entry, settings)
        weekend = local.weekday() >= 5
        if weekend or not settings.office_start <= local.hour < settings.office_end:
            off[(entry.user, local.date())].append(index)
    for (user, day), indices in sorted(off.items()):
        found.append(
            Anomaly(
                "off-hours",
                f"user {user} asked {len(indices)} question(s) outside office hours on {day}",
                tuple(indices),
            )
        )

    # The same person asked about again and again without a new case.
    repeats: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    fingerprints: dict[str, str] = {}
    for index, entry in searches:
        for subject in entry.subjects:
            repeats[(entry.organisation, subject.pseudonym, subject.case)].append(index)
            fingerprints[subject.pseudonym] = subject.fingerprint
    for (org, pseudonym, case), indices in sorted(repeats.items()):
        if len(indices) >= settings.repeat_minimum:
            found.append(
                Anomaly(
                    "repeat-subject",
                    f"{org} asked {len(indices)} times about {fingerprints[pseudonym]} "
                    f"for the same case {case or '(none)'}",
                    tuple(indices),
                )
            )

    # Batch questions near the limit.
    for index, entry in searches:
        if len(entry.subjects) >= settings.batch_fraction * settings.max_batch:
            found.append(
                Anomaly(
                    "batch-near-limit",
                    f"{entry.organisation} (user {entry.user}) asked about "
                    f"{len(entry.subjects)} persons at once; the limit is {settings.max_batch}",
                    (index,),
                )
            )

    # Quota exhaustion.
    quota: dict[tuple[str, dt.date], list[int]] = defaultdict(list)
    for item in entries:
        refusal = item.entry
        if refusal and refusal.event is Event.REFUSAL and refusal.reason == "QuotaExceeded":
            quota[(refusal.organisation, _local(refusal, settings).date())].append(item.index)
    for (org, day), indices in sorted(quota.items()):
        found.append(
            Anomaly(
                "quota",
                f"{org} exhausted its daily evaluation quota on {day} ({len(indices)} refusal(s))",
                tuple(indices),
            )
        )
    return found


# --- rendering ---------------------------------------------------------------------------------
def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def bar_chart(title: str, counts: Iterable[tuple[str, int]], chart_id: str) -> str:
    items = list(counts)
    if not items:
        return f'<section class="chart" id="{chart_id}"><h3>{_e(title)}</h3><p>none</p></section>'
    width, label_w, bar_h, gap = 640, 220, 18, 6
    top = max(v for _, v in items) or 1
    height = len(items) * (bar_h + gap) + gap
    bars = []
    for i, (label, value) in enumerate(items):
        y = gap + i * (bar_h + gap)
        length = max(1, int((width - label_w - 60) * value / top))
        bars.append(
            f'<g class="bar" data-label="{_e(label)}" data-value="{value}">'
            f'<text x="{label_w - 6}" y="{y + bar_h - 4}" text-anchor="end">{_e(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{length}" height="{bar_h}"></rect>'
            f'<text x="{label_w + length + 4}" y="{y + bar_h - 4}">{value}</text></g>'
        )
    return (
        f'<section class="chart" id="{chart_id}"><h3>{_e(title)}</h3>'
        f'<svg role="img" aria-label="{_e(title)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        + "".join(bars)
        + "</svg></section>"
    )


def _ranges(indices: Sequence[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for index in sorted(indices):
        if ranges and index == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], index)
        else:
            ranges.append((index, index))
    return ranges


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:60em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:1.6em}
.chart svg text{font-size:12px;fill:#222}.chart svg rect{fill:#3b6ea5}
table{border-collapse:collapse;width:100%;font-size:.85em}
td,th{border:1px solid #ccc;padding:3px 5px;text-align:left;vertical-align:top}
th{background:#f0f0f0}td:nth-child(2){white-space:nowrap}
.anomaly{margin:.4em 0;padding:.4em;border-left:4px solid #c0392b;
background:#fdf2f0}.ok{color:#1e7e34}.bad{color:#c0392b;font-weight:bold}
.summary td{border:none;padding:1px 8px 1px 0}
@media print{body{max-width:none;margin:0}section,.anomaly{page-break-inside:avoid}}
@page{size:A4;margin:15mm}
"""


def render_report(
    entries: Sequence[IndexedEntry],
    *,
    title: str,
    generated_at: dt.datetime,
    settings: ReportSettings,
    verification: str = "",
) -> str:
    present = [(e.index, e.entry) for e in entries if e.entry is not None]
    pruned = [e.index for e in entries if e.entry is None]
    searches = _searches(entries)
    times = [entry.at for _, entry in present]
    period = f"{min(times):%Y-%m-%d %H:%M} to {max(times):%Y-%m-%d %H:%M} UTC" if times else "empty"
    persons = sum(len(entry.subjects) for _, entry in searches)

    def day(entry: AuditEntry) -> str:
        return f"{_local(entry, settings):%Y-%m-%d}"

    per_day = Counter(day(e) for _, e in searches)
    per_org = Counter(e.organisation for _, e in searches)
    per_purpose = Counter(e.purpose for _, e in searches)
    per_user = Counter(e.user for _, e in searches)
    refusals = Counter(e.reason for _, e in present if e.event is Event.REFUSAL)
    partial = Counter(
        day(e) for _, e in present if e.event is Event.OUTCOME and e.completeness == "partial"
    )
    events = Counter(e.event.value for _, e in present)
    anomalies = find_anomalies(entries, settings)

    verified = ""
    if verification:
        css = "ok" if "FAILED" not in verification else "bad"
        verified = f'<p class="{css}">{_e(verification)}</p>'
    pruned_text = "".join(
        f"<li>records {a}&ndash;{b} pruned (content removed after the retention term; "
        "hashes kept)</li>"
        for a, b in _ranges(pruned)
    )
    anomaly_html = (
        "".join(
            f'<div class="anomaly" data-kind="{_e(a.kind)}" id="anomaly-{n}">'
            f"<strong>{_e(a.kind)}</strong>: {_e(a.title)}<br>records: "
            + ", ".join(f'<a href="#record-{i}">{i}</a>' for i in a.indices)
            + "</div>"
            for n, a in enumerate(anomalies)
        )
        or "<p>No anomalies found.</p>"
    )

    def sort_desc(counter: Counter[str]) -> list[tuple[str, int]]:
        return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))

    charts = "".join(
        [
            bar_chart("Questions per day", sorted(per_day.items()), "per-day"),
            bar_chart("Questions per organisation", sort_desc(per_org), "per-organisation"),
            bar_chart("Questions per purpose", sort_desc(per_purpose), "per-purpose"),
            bar_chart("Questions per user", sort_desc(per_user), "per-user"),
            bar_chart("Refusals per reason", sort_desc(refusals), "refusals"),
            bar_chart("Partial answers per day", sorted(partial.items()), "partial"),
        ]
    )
    event_rows = "".join(
        f'<tr data-event="{_e(k)}"><td>{_e(k)}</td><td>{v}</td></tr>'
        for k, v in sorted(events.items())
    )
    record_rows = []
    for index, entry in present:
        cases = ", ".join(sorted({s.case for s in entry.subjects if s.case}))
        prints = ", ".join(s.fingerprint for s in entry.subjects[:5])
        if len(entry.subjects) > 5:
            prints += f" (+{len(entry.subjects) - 5})"
        result = entry.completeness or entry.reason
        record_rows.append(
            f'<tr id="record-{index}"><td>{index}</td><td>{entry.at:%Y-%m-%d %H:%M:%S}</td>'
            f"<td>{_e(entry.event.value)}</td><td>{_e(entry.organisation)}</td>"
            f"<td>{_e(entry.user)}</td><td>{_e(entry.acted_for)}</td><td>{_e(entry.purpose)}</td>"
            f"<td>{_e(cases)}</td><td>{_e(prints)}</td><td>{_e(result)}</td></tr>"
        )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        '<table class="summary">'
        f"<tr><td>Generated</td><td>{generated_at:%Y-%m-%d %H:%M} UTC</td></tr>"
        f"<tr><td>Period</td><td>{period}</td></tr>"
        f'<tr><td>Records</td><td data-records="{len(entries)}">{len(entries)} '
        f"({len(pruned)} pruned)</td></tr>"
        f'<tr><td>Questions</td><td data-questions="{len(searches)}">{len(searches)}, about '
        f"{persons} person(s)</td></tr></table>"
        f"{verified}<ul>{pruned_text}</ul>"
        f"<h2>Anomalies</h2>{anomaly_html}"
        f"<h2>Figures</h2>{charts}"
        f"<h2>Events</h2><table><tr><th>event</th><th>records</th></tr>{event_rows}</table>"
        "<h2>Records</h2><table><tr><th>#</th><th>time (UTC)</th><th>event</th>"
        "<th>organisation</th><th>user</th><th>acted for</th><th>purpose</th><th>case</th>"
        "<th>subjects</th><th>result</th></tr>" + "".join(record_rows) + "</table></body></html>\n"
    )
