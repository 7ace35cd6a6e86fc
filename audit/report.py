"""The DPO's report: one self-contained HTML page with inline SVG charts and anomalies.

Pure: records in, a string out. No external assets, no scripts; chart bars carry ``data-label``
and ``data-value``, anomalies ``class="anomaly"`` and ``data-kind``, so the page can be checked
by machine. Subjects are only ever shown by their fingerprint, and any long hex run in a record
(a pseudonym that strayed into a free-text field) is shortened before it is shown.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from betrokken.audit.anomalies import (
    KINDS,
    QUESTIONS,
    Anomaly,
    Hours,
    IndexedEntry,
    ReportSettings,
    find_anomalies,
    local,
    persons_in,
    questions,
    weight,
)
from betrokken.audit.anomalies import _plural as _anomaly_plural
from betrokken.audit.followup import hits_in, report_section
from betrokken.audit.record import AuditEntry, Event
from betrokken.config.schema import Network, OfficeHours

__all__ = [
    "KINDS",
    "STYLE",
    "Anomaly",
    "Hours",
    "IndexedEntry",
    "ReportSettings",
    "find_anomalies",
    "persons_in",
    "render_report",
    "settings_for",
]

# Questions: the coordinator's search records, and an organisation's records of its own questions.
_QUESTIONS = QUESTIONS
_LONG_HEX = re.compile(r"[0-9a-fA-F]{64,}")
_MAX_DAYS = 92  # longer periods are charted per month
_searches = questions
_local = local
_plural = _anomaly_plural


# --- rendering ---------------------------------------------------------------------------------
def _mask(text: str) -> str:
    return _LONG_HEX.sub(lambda m: m.group(0)[:8] + "…", text)


def _e(value: object) -> str:
    """Escape for HTML text and attributes, shortening any pseudonym-like hex run."""
    return html.escape(_mask(str(value)), quote=True)


def _short(label: str, limit: int = 30) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _step(top: int) -> int:
    """A round tick step giving at most about five ticks up to ``top``."""
    rough = max(top / 5, 1.0)
    power = 10 ** math.floor(math.log10(rough))
    for factor in (1, 2, 5, 10):
        if factor * power >= rough:
            return int(factor * power)
    return int(10 * power)  # pragma: no cover


def _bar_chart(chart_id: str, title: str, axis: str, items: Sequence[tuple[str, int]]) -> str:
    """A horizontal bar chart; labels on the left, the number written after each bar."""
    head = f'<section class="chart" id="{chart_id}"><h3 id="{chart_id}-title">{_e(title)}</h3>'
    if not items:
        return head + '<p class="none">No records.</p></section>'
    width, label_w, plot_w, bar_h, gap, axis_h = 660, 190, 420, 16, 5, 34
    step = _step(max(v for _, v in items))
    scale = max(step * math.ceil(max(v for _, v in items) / step), 1)
    plot_h = len(items) * (bar_h + gap) + gap
    height = plot_h + axis_h
    parts: list[str] = []
    for tick in range(0, scale + 1, step):
        x = label_w + plot_w * tick / scale
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{plot_h}"></line>'
            f'<text class="tick" x="{x:.1f}" y="{plot_h + 13}" text-anchor="middle">{tick}</text>'
        )
    for n, (label, value) in enumerate(items):
        y = gap + n * (bar_h + gap)
        length = plot_w * value / scale
        shown = _short(label) if label else "(none)"
        parts.append(
            f'<g class="bar" data-label="{_e(label)}" data-value="{value}">'
            f"<title>{_e(label or '(none)')}: {value}</title>"
            f'<text x="{label_w - 6}" y="{y + bar_h - 4}" text-anchor="end">{_e(shown)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_h}"></rect>'
            f'<text class="value" x="{label_w + length + 4:.1f}" y="{y + bar_h - 4}">{value}</text>'
            "</g>"
        )
    parts.append(
        f'<line class="axis" x1="{label_w}" y1="0" x2="{label_w}" y2="{plot_h}"></line>'
        f'<line class="axis" x1="{label_w}" y1="{plot_h}" x2="{label_w + plot_w}" '
        f'y2="{plot_h}"></line>'
        f'<text class="caption" x="{label_w + plot_w / 2:.1f}" y="{height - 3}" '
        f'text-anchor="middle">{_e(axis)}</text>'
    )
    return (
        head + f'<svg role="img" aria-labelledby="{chart_id}-title" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">' + "".join(parts) + "</svg></section>"
    )


def _ranges(indices: Iterable[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for index in sorted(indices):
        if ranges and index == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], index)
        else:
            ranges.append((index, index))
    return ranges


def _pruned_text(first: int, last: int) -> str:
    what = f"record {first}" if first == last else f"records {first}&ndash;{last}"
    return f"<li>{what} pruned (content removed after the retention term; hashes kept)</li>"


def _timeline(
    counts: Counter[dt.date], first: dt.date, last: dt.date
) -> tuple[str, list[tuple[str, int]]]:
    """Every day (or, for a long period, every month) from first to last, zeros included."""
    if (last - first).days < _MAX_DAYS:
        days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
        return "day", [(d.isoformat(), counts.get(d, 0)) for d in days]
    months: Counter[str] = Counter()
    for day, count in counts.items():
        months[f"{day:%Y-%m}"] += count
    labels: list[str] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        labels.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return "month", [(label, months.get(label, 0)) for label in labels]


def settings_for(network: Network, *, accounts: frozenset[str] | None = None) -> ReportSettings:
    """The report's settings from the network file: list limit, office hours per purpose."""

    def hours(value: OfficeHours) -> Hours:
        return Hours(value.start, value.end, value.weekend)

    return ReportSettings(
        max_batch=network.coordinator.max_batch,
        office_hours=hours(network.office_hours),
        purpose_hours={
            p.id: hours(p.office_hours) for p in network.purposes if p.office_hours is not None
        },
        accounts=accounts,
        follow_up_working_days=network.after_the_hit.follow_up_working_days,
        follow_up_goal_percent=network.after_the_hit.follow_up_goal_percent,
    )


def _weighted(refusals: Sequence[AuditEntry]) -> Counter[str]:
    """Refusals per reason, a counted record (``details.count``) for that many."""
    counts: Counter[str] = Counter()
    for entry in refusals:
        counts[entry.reason] += weight(entry)
    return counts


def _by_count(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))


def _outcome(entry: AuditEntry) -> str:
    """Completeness and, per subject, the organisations that did not simply answer 'no'."""
    parts = [_e(entry.completeness)] if entry.completeness else []
    quiet = 0
    for fingerprint, answers in sorted(entry.outcomes.items()):
        told = [f"{org}={result}" for org, result in sorted(answers.items())]
        notable = [t for t in told if not t.endswith("=not-involved")]
        quiet += len(told) - len(notable)
        if notable:
            parts.append(f"{_e(fingerprint)}: {_e(', '.join(notable))}")
    if quiet:
        parts.append(f"{_plural(quiet, 'answer')} not-involved")
    return "<br>".join(parts)


def _reason(entry: AuditEntry) -> str:
    details = "; ".join(f"{k}={v}" for k, v in sorted(entry.details.items()))
    if entry.reason and details:
        return f"{_e(entry.reason)}<br><small>{_e(details)}</small>"
    return _e(entry.reason or details)


STYLE = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#222;
margin:1.5em auto;max-width:76em;padding:0 1em}
h1{font-size:1.5em;margin:0 0 .4em}h2{font-size:1.2em;border-bottom:1px solid #bbb;
margin-top:1.8em;break-after:avoid}h3{font-size:1em;margin:1.2em 0 .3em;break-after:avoid}
.summary{border-collapse:collapse;margin:.5em 0}.summary th{text-align:left;font-weight:600;
padding:1px 1.2em 1px 0;background:none;border:none;white-space:nowrap}
.summary td{border:none;padding:1px 0}
.verification{white-space:pre-wrap;padding:.4em .6em;border:1px solid;border-radius:3px}
.ok{color:#1e6b30;border-color:#1e6b30;background:#eef7f0}
.bad{color:#a32116;border-color:#a32116;background:#fbeeec;font-weight:600}
.pruned{color:#555}
svg{display:block;max-width:100%;height:auto}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:#222}
svg rect{fill:#3b6ea5}svg .grid{stroke:#e2e2e2;stroke-width:1}
svg .axis{stroke:#555;stroke-width:1}svg .tick,svg .caption{fill:#555}
svg .value{font-weight:600}
.chart{break-inside:avoid}.none{color:#555;font-style:italic}
table.data{border-collapse:collapse;width:100%;font-size:.8em}
.fp{white-space:nowrap}
.data td,.data th{border:1px solid #ccc;padding:2px 4px;text-align:left;vertical-align:top}
.data th{background:#eee}.data td{overflow-wrap:break-word}
.data td.num{text-align:right;white-space:nowrap}.data td.time{white-space:nowrap}
.data tr.flagged td:first-child{border-left:3px solid #a32116}
.anomaly{margin:.4em 0;padding:.35em .6em;border-left:4px solid #a32116;background:#fbeeec;
break-inside:avoid}.anomaly .kind{font-weight:600}.anomaly .refs{font-size:.9em}
:target{outline:2px solid #e0a100}
table.data.events{width:auto;min-width:20em}
@media screen and (max-width:48em){
table.data,table.data thead,table.data tbody,table.data tr,table.data th,
table.data td{display:block;width:auto;min-width:0}
table.data thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
table.data tr{border:1px solid #ccc;margin:0 0 .6em;padding:.2em .4em}
.data td,.data td.num,.data td.time,.fp{border:none;text-align:left;white-space:normal;
overflow-wrap:anywhere}
.summary th{white-space:normal}
}
.figure{font-size:2em;font-weight:700;margin:.3em 0}
@page{size:A4;margin:14mm 12mm}@page wide{size:A4 landscape;margin:12mm}
@media print{
body{max-width:none;margin:0;padding:0;font-size:10pt}
#records{page:wide}table.data{font-size:7pt}thead{display:table-header-group}tr{break-inside:avoid}
a{color:inherit;text-decoration:none}
.anomaly,.ok,.bad,.data th{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""


def render_report(
    entries: Sequence[IndexedEntry],
    *,
    title: str,
    generated_at: dt.datetime,
    settings: ReportSettings,
    verification: str = "",
) -> str:
    """The whole report as one HTML5 page (inline CSS and SVG, nothing fetched, no scripts)."""
    zone = ZoneInfo(settings.timezone)
    present = [(item.index, item.entry) for item in entries if item.entry is not None]
    pruned = [item.index for item in entries if item.entry is None]
    searches = _searches(entries)
    anomalies = find_anomalies(entries, settings)

    def local_day(entry: AuditEntry) -> dt.date:
        return _local(entry.at, zone).date()

    def stamp(moment: dt.datetime, *, seconds: bool = False) -> str:
        pattern = "%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z"
        return _local(moment, zone).strftime(pattern)

    times = sorted(entry.at for _, entry in present)
    period = f"{stamp(times[0])} – {stamp(times[-1])}" if times else "no records with content"
    persons = sum(persons_in(entry) for _, entry in searches)
    distinct = len({s.pseudonym for _, entry in searches for s in entry.subjects})
    refusals = [entry for _, entry in present if entry.event is Event.REFUSAL]

    if present:
        days = [local_day(entry) for _, entry in present]
        first, last = min(days), max(days)
        per_day: Counter[dt.date] = Counter(local_day(e) for _, e in searches)
        partial: Counter[dt.date] = Counter(
            local_day(e)
            for _, e in present
            if e.event is Event.OUTCOME and e.completeness == "partial"
        )
        unit, day_items = _timeline(per_day, first, last)
        _, partial_items = _timeline(partial, first, last)
    else:
        unit, day_items, partial_items = "day", [], []

    def user_label(entry: AuditEntry) -> str:
        return f"{entry.user or '(unknown)'} ({entry.organisation or '?'})"

    charts = [
        _bar_chart("per-day", f"Questions per {unit}", "questions", day_items),
        _bar_chart(
            "per-organisation",
            "Questions per organisation",
            "questions",
            _by_count(Counter(e.organisation for _, e in searches)),
        ),
        _bar_chart(
            "per-purpose",
            "Questions per purpose",
            "questions",
            _by_count(Counter(e.purpose for _, e in searches)),
        ),
        _bar_chart(
            "per-user",
            "Questions per user (organisation)",
            "questions",
            _by_count(Counter(user_label(e) for _, e in searches)),
        ),
        _bar_chart(
            "refusals",
            "Refusals per reason",
            "refusals",
            _by_count(_weighted(refusals)),
        ),
        _bar_chart("partial", f"Partial answers per {unit}", "partial answers", partial_items),
    ]

    events = Counter(entry.event for _, entry in present)
    event_rows = "".join(
        f'<tr data-event="{_e(event.value)}" data-value="{events.get(event, 0)}">'
        f'<td>{_e(event.value)}</td><td class="num">{events.get(event, 0)}</td></tr>'
        for event in Event
    )

    flagged: dict[int, list[int]] = defaultdict(list)
    for number, anomaly in enumerate(anomalies):
        for index in anomaly.indices:
            flagged[index].append(number)
    kinds = Counter(a.kind for a in anomalies)
    anomaly_parts = [
        "<p>"
        + "; ".join(f"{_e(kind)}: {kinds.get(kind, 0)}" for kind in KINDS)
        + ". An anomaly is a reason to look, not a verdict.</p>"
    ]
    for number, anomaly in enumerate(anomalies):
        links = ", ".join(f'<a href="#record-{i}">{i}</a>' for i in anomaly.indices)
        anomaly_parts.append(
            f'<div class="anomaly" id="anomaly-{number}" data-kind="{_e(anomaly.kind)}" '
            f'data-records="{" ".join(str(i) for i in anomaly.indices)}">'
            f'<span class="kind">{_e(anomaly.kind)}</span>: {_e(anomaly.title)}'
            f'<div class="refs">{_plural(len(anomaly.indices), "record")}: {links}</div></div>'
        )
    if not anomalies:
        anomaly_parts.append("<p>No anomalies found.</p>")

    rows: list[str] = []
    for index, entry in present:
        cases = ", ".join(sorted({s.case for s in entry.subjects if s.case}))
        prints = ", ".join(f'<span class="fp">{_e(s.fingerprint)}</span>' for s in entry.subjects)
        user = _e(entry.user)
        if entry.role:
            user += f"<br><small>{_e(entry.role)}</small>"
        purpose = _e(entry.purpose)
        if entry.legal_basis:
            purpose += f"<br><small>{_e(entry.legal_basis)}</small>"
        asker = _e(entry.organisation)
        aanmelder = entry.details.get("on_behalf_of", "")
        if aanmelder and aanmelder != entry.organisation:
            asker += f"<br><small>on behalf of {_e(aanmelder)}</small>"
        marks = flagged.get(index, [])
        backlinks = "".join(f' <a href="#anomaly-{n}" title="anomaly">&#9873;</a>' for n in marks)
        css = ' class="flagged"' if marks else ""
        rows.append(
            f'<tr id="record-{index}"{css}><td class="num">{index}{backlinks}</td>'
            f'<td class="time">{stamp(entry.at, seconds=True)}</td><td>{_e(entry.event.value)}</td>'
            f"<td>{asker}</td><td>{user}</td><td>{_e(entry.acted_for)}</td>"
            f"<td>{purpose}</td><td>{_e(cases)}</td><td>{prints}</td>"
            f"<td>{_outcome(entry)}</td><td>{_reason(entry)}</td></tr>"
        )

    verified = ""
    if verification:
        css = "bad" if "FAILED" in verification.upper() else "ok"
        verified = f'<p class="verification {css}">{_e(verification)}</p>'
    pruned_list = "".join(_pruned_text(a, b) for a, b in _ranges(pruned))
    pruned_html = f'<ul class="pruned">{pruned_list}</ul>' if pruned_list else ""
    header_rows: list[tuple[str, str]] = [
        ("Generated", stamp(generated_at)),
        ("Period covered", period),
        ("Times shown in", _e(settings.timezone)),
        (
            "Records",
            f'<span data-records="{len(entries)}">{len(entries)}</span> '
            f'({len(present)} with content, <span data-pruned="{len(pruned)}">{len(pruned)}'
            "</span> pruned)",
        ),
        (
            "Questions",
            f'<span data-questions="{len(searches)}">{len(searches)}</span> about '
            f'<span data-persons="{persons}">{_plural(persons, "person")}</span> '
            + (
                f"({distinct} distinct)"
                if distinct
                else "(which persons is sealed: only the asking organisations' trails can say)"
            ),
        ),
        ("Refusals", str(sum(weight(e) for e in refusals))),
        ("Anomalies", f'<span data-anomalies="{len(anomalies)}">{len(anomalies)}</span>'),
    ]
    summary = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in header_rows)
    head_cells = "".join(
        f"<th>{h}</th>"
        for h in (
            "#",
            "time",
            "event",
            "organisation",
            "user / role",
            "acted for",
            "purpose / legal basis",
            "case(s)",
            "subjects (fingerprints)",
            "outcome / completeness",
            "reason / details",
        )
    )

    def section(ident: str, heading: str, body: str) -> str:
        return f'<section id="{ident}"><h2>{heading}</h2>{body}</section>'

    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f'<header><h1>{_e(title)}</h1><table class="summary">{summary}</table>'
        f"{verified}{pruned_html}</header>"
        + section("anomalies", "Anomalies", "".join(anomaly_parts))
        + section("figures", "Figures", "".join(charts))
        + section(
            "follow-up",
            "Follow-up of hits",
            report_section(
                hits_in(entry for _, entry in present),
                settings.follow_up_working_days,
                settings.follow_up_goal_percent,
                _local(generated_at, zone).date(),
            ),
        )
        + section(
            "events",
            "Records per event type",
            '<table class="data events"><thead><tr><th>event</th><th>records</th></tr></thead>'
            f"<tbody>{event_rows}</tbody></table>",
        )
        + section(
            "records",
            "Records",
            f'<table class="data"><thead><tr>{head_cells}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
            if rows
            else "<p>No records with content.</p>",
        )
        + "</body></html>\n"
    )
