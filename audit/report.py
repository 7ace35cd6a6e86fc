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
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from betrokken.audit.record import AuditEntry, Event

KINDS = ("volume", "off-hours", "repeat-subject", "batch-near-limit", "quota", "alarm")
# Questions: the coordinator's search records, and an organisation's records of its own questions.
_QUESTIONS = (Event.SEARCH, Event.OWN_QUERY)
_LONG_HEX = re.compile(r"[0-9a-fA-F]{64,}")
_MAX_DAYS = 92  # longer periods are charted per month


@dataclass(frozen=True)
class IndexedEntry:
    """One record of the log with its leaf index."""

    index: int
    entry: AuditEntry | None  # None: content pruned after the retention term


@dataclass(frozen=True)
class Anomaly:
    """Something a DPO should look at, with the records behind it."""

    kind: str  # one of KINDS
    title: str
    indices: tuple[int, ...]


@dataclass(frozen=True)
class ReportSettings:
    """Thresholds of the anomalies and the local time they are judged in."""

    max_batch: int = 100
    timezone: str = "Europe/Amsterdam"
    office_start: int = 7  # local hour, inclusive
    office_end: int = 19  # local hour, exclusive
    volume_factor: float = 3.0
    volume_minimum: int = 10
    repeat_minimum: int = 3
    batch_fraction: float = 0.9


# --- anomalies ---------------------------------------------------------------------------------
def _local(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(zone)


def _searches(entries: Sequence[IndexedEntry]) -> list[tuple[int, AuditEntry]]:
    return [
        (item.index, item.entry)
        for item in entries
        if item.entry is not None and item.entry.event in _QUESTIONS
    ]


def persons_in(entry: AuditEntry) -> int:
    """How many persons a question was about (the coordinator records only the number)."""
    if entry.subjects:
        return len(entry.subjects)
    try:
        return int(entry.details.get("persons", "0"))
    except ValueError:
        return 0


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _who(organisation: str, user: str) -> str:
    return f"user {user or '(unknown)'} ({organisation or 'unknown organisation'})"


def _day(day: dt.date) -> str:
    return f"{day:%A} {day.isoformat()}"


def find_anomalies(entries: Sequence[IndexedEntry], settings: ReportSettings) -> list[Anomaly]:
    """Flag unusual volume, off-hours and repeated questions, near-limit batches and quotas."""
    zone = ZoneInfo(settings.timezone)
    searches = _searches(entries)
    found: list[Anomaly] = []
    found += _volume(searches, settings, zone)
    found += _off_hours(searches, settings, zone)
    found += _repeats(searches, settings)
    found += _batches(searches, settings, zone)
    found += _quota(entries, zone)
    found += _alarms(entries, zone)
    return found


def _volume(
    searches: list[tuple[int, AuditEntry]], settings: ReportSettings, zone: ZoneInfo
) -> list[Anomaly]:
    """A user far above their own usual daily number of questions."""
    per_user: dict[tuple[str, str], dict[dt.date, list[int]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for index, entry in searches:
        day = _local(entry.at, zone).date()
        per_user[(entry.organisation, entry.user)][day].append(index)
    found: list[Anomaly] = []
    for (organisation, user), days in sorted(per_user.items()):
        for day, indices in sorted(days.items()):
            count = len(indices)
            others = [len(v) for d, v in days.items() if d != day]
            if others:
                usual = statistics.median(others)
                flagged = (
                    count >= settings.volume_minimum and count > settings.volume_factor * usual
                )
                usual_text = f"usually {usual:g} a day"
            else:
                flagged = count >= settings.volume_minimum * 3
                usual_text = "no other active days"
            if flagged:
                title = (
                    f"{_who(organisation, user)} asked {_plural(count, 'question')} on "
                    f"{_day(day)}; {usual_text}"
                )
                found.append(Anomaly("volume", title, tuple(indices)))
    return found


def _off_hours(
    searches: list[tuple[int, AuditEntry]], settings: ReportSettings, zone: ZoneInfo
) -> list[Anomaly]:
    """Questions outside office hours (local time) or in the weekend, per user per day."""
    grouped: dict[tuple[str, str, dt.date], list[tuple[int, dt.datetime]]] = defaultdict(list)
    for index, entry in searches:
        local = _local(entry.at, zone)
        weekend = local.weekday() >= 5
        if weekend or not settings.office_start <= local.hour < settings.office_end:
            grouped[(entry.organisation, entry.user, local.date())].append((index, local))
    found: list[Anomaly] = []
    for (organisation, user, day), items in sorted(grouped.items()):
        times = ", ".join(f"{t:%H:%M}" for _, t in items[:12])
        if len(items) > 12:
            times += ", …"
        when = "in the weekend" if day.weekday() >= 5 else "outside office hours"
        title = (
            f"{_who(organisation, user)} asked {_plural(len(items), 'question')} {when} on "
            f"{_day(day)} at {times} (office hours {settings.office_start:02d}:00–"
            f"{settings.office_end:02d}:00, Monday to Friday)"
        )
        found.append(Anomaly("off-hours", title, tuple(i for i, _ in items)))
    return found


def _repeats(searches: list[tuple[int, AuditEntry]], settings: ReportSettings) -> list[Anomaly]:
    """The same organisation asking about the same person for the same case again and again."""
    seen: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    fingerprints: dict[str, str] = {}
    users: dict[int, str] = {}
    for index, entry in searches:
        users[index] = entry.user
        for subject in entry.subjects:
            indices = seen[(entry.organisation, subject.pseudonym, subject.case)]
            if not indices or indices[-1] != index:
                indices.append(index)
            fingerprints[subject.pseudonym] = subject.fingerprint
    # Persons asked about together (a repeated list) become one anomaly, not one per person.
    merged: dict[tuple[str, str, tuple[int, ...]], list[str]] = defaultdict(list)
    for (organisation, pseudonym, case), indices in seen.items():
        if len(indices) >= settings.repeat_minimum:
            merged[(organisation, case, tuple(indices))].append(fingerprints[pseudonym])
    found: list[Anomaly] = []
    for (organisation, case, records), prints in sorted(
        merged.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])
    ):
        prints.sort()
        persons = prints[0] if len(prints) == 1 else f"{len(prints)} persons ({prints[0]}, …)"
        asked_by = ", ".join(sorted({users[i] or "(unknown)" for i in records}))
        title = (
            f"{organisation or 'unknown organisation'} asked {len(records)} times about "
            f"{persons} for the same case {case or '(no case)'} (asked by {asked_by})"
        )
        found.append(Anomaly("repeat-subject", title, records))
    return found


def _batches(
    searches: list[tuple[int, AuditEntry]], settings: ReportSettings, zone: ZoneInfo
) -> list[Anomaly]:
    """List questions with nearly the allowed number of persons."""
    threshold = settings.batch_fraction * settings.max_batch - 1e-9
    found: list[Anomaly] = []
    for index, entry in searches:
        size = persons_in(entry)
        if size and size >= threshold:
            title = (
                f"{_who(entry.organisation, entry.user)} asked about {size} persons at once "
                f"on {_local(entry.at, zone):%Y-%m-%d %H:%M}; the limit is {settings.max_batch}"
            )
            found.append(Anomaly("batch-near-limit", title, (index,)))
    return found


def _quota(entries: Sequence[IndexedEntry], zone: ZoneInfo) -> list[Anomaly]:
    """Refusals because an organisation's quota was used up, per organisation per day."""
    grouped: dict[tuple[str, dt.date], list[int]] = defaultdict(list)
    for item in entries:
        entry = item.entry
        if entry is not None and entry.event is Event.REFUSAL and entry.reason == "QuotaExceeded":
            grouped[(entry.organisation, _local(entry.at, zone).date())].append(item.index)
    return [
        Anomaly(
            "quota",
            f"{organisation or 'unknown organisation'} had used up its quota on {_day(day)}: "
            f"{_plural(len(indices), 'refusal')}",
            tuple(indices),
        )
        for (organisation, day), indices in sorted(grouped.items())
    ]


def _alarms(entries: Sequence[IndexedEntry], zone: ZoneInfo) -> list[Anomaly]:
    """Questions a node refused because they failed its checks, and witness alarms, per kind."""
    grouped: dict[tuple[str, dt.date], list[int]] = defaultdict(list)
    for item in entries:
        entry = item.entry
        if entry is not None and entry.event is Event.ALARM:
            grouped[(entry.reason, _local(entry.at, zone).date())].append(item.index)
    return [
        Anomaly(
            "alarm",
            f"{_plural(len(indices), 'alarm')} of kind '{kind}' on {_day(day)}: a question that "
            "failed this organisation's checks (forged, unlogged, replayed, …) or a fork of the "
            "coordinator's log",
            tuple(indices),
        )
        for (kind, day), indices in sorted(grouped.items())
    ]


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
            _by_count(Counter(e.reason for e in refusals)),
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
        ("Refusals", str(len(refusals))),
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
