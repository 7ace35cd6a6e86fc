"""The DPO's report: one self-contained HTML page with inline SVG charts and anomalies.

Pure: records in, a string out, rendered from the template ``audit/templates/report.html``
(Jinja2, autoescape on). No external assets, no scripts, a Content-Security-Policy that allows
the one inline style and nothing else; chart bars carry ``data-label``
and ``data-value``, anomalies ``class="anomaly"`` and ``data-kind``, so the page can be checked
by machine. Subjects are only ever shown by their fingerprint, and any long hex run in a record
(a pseudonym that strayed into a free-text field) is shortened before it is shown.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

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
    watching,
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


def _bar_chart(
    chart_id: str, title: str, axis: str, items: Sequence[tuple[str, int]]
) -> dict[str, object]:
    """A horizontal bar chart's geometry (the template draws it): labels on the left, the
    number written after each bar."""
    chart: dict[str, object] = {"id": chart_id, "title": title, "axis": axis, "bars": []}
    if not items:
        return chart
    width, label_w, plot_w, bar_h, gap, axis_h = 660, 190, 420, 16, 5, 34
    step = _step(max(v for _, v in items))
    scale = max(step * math.ceil(max(v for _, v in items) / step), 1)
    plot_h = len(items) * (bar_h + gap) + gap
    height = plot_h + axis_h
    ticks = [
        {"x": f"{label_w + plot_w * tick / scale:.1f}", "value": tick}
        for tick in range(0, scale + 1, step)
    ]
    bars = []
    for n, (label, value) in enumerate(items):
        y = gap + n * (bar_h + gap)
        length = plot_w * value / scale
        bars.append(
            {
                "label": label,
                "value": value,
                "shown": _short(label) if label else "(none)",
                "y": y,
                "text_y": y + bar_h - 4,
                "length": f"{length:.1f}",
                "value_x": f"{label_w + length + 4:.1f}",
            }
        )
    return chart | {
        "bars": bars,
        "ticks": ticks,
        "width": width,
        "height": height,
        "plot_h": plot_h,
        "plot_w": plot_w,
        "label_w": label_w,
        "bar_h": bar_h,
        "caption_x": f"{label_w + plot_w / 2:.1f}",
    }


def _ranges(indices: Iterable[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for index in sorted(indices):
        if ranges and index == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], index)
        else:
            ranges.append((index, index))
    return ranges


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


def _outcome(entry: AuditEntry) -> list[str]:
    """Completeness and, per subject, the organisations that did not simply answer 'no'."""
    parts = [entry.completeness] if entry.completeness else []
    quiet = 0
    for fingerprint, answers in sorted(entry.outcomes.items()):
        told = [f"{org}={result}" for org, result in sorted(answers.items())]
        notable = [t for t in told if not t.endswith("=not-involved")]
        quiet += len(told) - len(notable)
        if notable:
            parts.append(f"{fingerprint}: {', '.join(notable)}")
    if quiet:
        parts.append(f"{_plural(quiet, 'answer')} not-involved")
    return parts


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


# The page allows its one style element (by the hash of STYLE) and nothing else: no script,
# no image, no font, nothing fetched; a report opened from a mail or a share stays inert.
CSP = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(STYLE.encode("utf-8")).digest()).decode("ascii")
    + "'; base-uri 'none'; form-action 'none'"
)

_TEMPLATE = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=StrictUndefined,
)
_TEMPLATE.filters["mask"] = lambda value: _mask(str(value))
_REPORT = _TEMPLATE.get_template("report.html")


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
        _bar_chart(
            "watches-per-purpose",
            "Questions that left a signal, per purpose",
            "questions",
            _by_count(Counter(e.purpose for _, e in watching(searches))),
        ),
        _bar_chart(
            "watches-per-user",
            "Questions that left a signal, per user (organisation)",
            "questions",
            _by_count(Counter(user_label(e) for _, e in watching(searches))),
        ),
    ]

    events = Counter(entry.event for _, entry in present)
    flagged: dict[int, list[int]] = defaultdict(list)
    for number, anomaly in enumerate(anomalies):
        for index in anomaly.indices:
            flagged[index].append(number)
    kinds = Counter(a.kind for a in anomalies)
    rows = [
        {
            "index": index,
            "marks": flagged.get(index, []),
            "time": stamp(entry.at, seconds=True),
            "event": entry.event.value,
            "organisation": entry.organisation,
            "on_behalf_of": (
                aanmelder
                if (aanmelder := entry.details.get("on_behalf_of", ""))
                and aanmelder != entry.organisation
                else ""
            ),
            "user": entry.user,
            "role": entry.role,
            "acted_for": entry.acted_for,
            "purpose": entry.purpose,
            "legal_basis": entry.legal_basis,
            "cases": ", ".join(sorted({s.case for s in entry.subjects if s.case})),
            "fingerprints": [s.fingerprint for s in entry.subjects],
            "outcome": _outcome(entry),
            "reason": entry.reason,
            "details": "; ".join(f"{k}={v}" for k, v in sorted(entry.details.items())),
        }
        for index, entry in present
    ]
    follow_up = report_section(
        hits_in(entry for _, entry in present),
        settings.follow_up_working_days,
        settings.follow_up_goal_percent,
        _local(generated_at, zone).date(),
    )
    return _REPORT.render(
        csp=Markup(CSP),  # noqa: S704 -- the constant above
        style=Markup(STYLE),  # noqa: S704 -- the constant above, no outside text
        title=title,
        generated=stamp(generated_at),
        period=period,
        timezone=settings.timezone,
        records=len(entries),
        with_content=len(present),
        pruned_count=len(pruned),
        questions=len(searches),
        persons=persons,
        persons_text=_plural(persons, "person"),
        distinct=distinct,
        refusal_count=sum(weight(e) for e in refusals),
        verification=verification,
        verification_class="bad" if "FAILED" in verification.upper() else "ok",
        pruned=_ranges(pruned),
        kind_counts=[(kind, kinds.get(kind, 0)) for kind in KINDS],
        anomalies=[
            {
                "kind": anomaly.kind,
                "title": anomaly.title,
                "indices": anomaly.indices,
                "records_text": _plural(len(anomaly.indices), "record"),
            }
            for anomaly in anomalies
        ],
        charts=charts,
        # report_section escapes what it shows itself (audit/followup.py)
        follow_up=Markup(follow_up),  # noqa: S704
        event_counts=[(event.value, events.get(event, 0)) for event in Event],
        rows=rows,
    )
