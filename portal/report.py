"""The FG's report inside the portal: the anomalies of :mod:`betrokken.audit.anomalies`, worded
through the catalogue, and the figures as tables a screen reader can read.

Records in, a view out: the page (``dpo/report.html``) only lays it out. Every anomaly names the
records behind it; those records are listed on the page with an anchor each, and each links back
to its anomalies. Persons appear only as fingerprints (``ps-…``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from babel.dates import format_date
from babel.numbers import format_decimal

from betrokken import rules
from betrokken.audit.anomalies import (
    KINDS,
    Anomaly,
    IndexedEntry,
    ReportSettings,
    find_anomalies,
    hit_rates,
    local,
    persons_in,
    questions,
    weight,
)
from betrokken.audit.followup import hits_in, overall, rates
from betrokken.audit.record import AuditEntry, Event
from betrokken.audit.report import _timeline
from betrokken.portal import i18n
from betrokken.portal.i18n import gettext as _
from betrokken.portal.web import N_

BAR_WIDTH = 160  # px of the longest bar

KIND_LABELS = {
    "volume": N_("Unusually many questions"),
    "off-hours": N_("Outside the purpose's office hours"),
    "repeat-subject": N_("Same person, same case, again and again"),
    "case-many-persons": N_("One case reference for many persons"),
    "person-many-cases": N_("One person under several case references"),
    "unknown-user": N_("User name without a portal account"),
    "low-hit-rate": N_("Few involvements found"),
    "batch-near-limit": N_("List close to the maximum"),
    "quota": N_("Daily limit used up"),
    "failed-logins": N_("Failed logins"),
    "role-change": N_("Account or role changed"),
    "alarm": N_("Alarm"),
}
TEXTS = {
    "volume": N_(
        "%(user)s (%(organisation)s) asked %(count)s questions on %(day)s; usually %(usual)s a day."
    ),
    "volume-first": N_(
        "%(user)s (%(organisation)s) asked %(count)s questions on %(day)s, the only day with "
        "questions in this period."
    ),
    "off-hours": N_(
        "%(user)s (%(organisation)s) asked %(count)s question(s) for %(purpose)s on %(day)s at "
        "%(times)s; the office hours of this purpose are %(hours)s, %(days)s."
    ),
    "off-hours-holiday": N_(
        "%(user)s (%(organisation)s) asked %(count)s question(s) for %(purpose)s on %(day)s, a "
        "public holiday (%(holiday)s), at %(times)s; the office hours of this purpose are "
        "%(hours)s, %(days)s, not on public holidays."
    ),
    "repeat-subject": N_(
        "%(organisation)s asked %(times)s times about %(person)s for the same case %(case)s "
        "(asked by %(users)s)."
    ),
    "repeat-subject-list": N_(
        "%(organisation)s asked %(times)s times about the same %(persons)s persons (%(person)s, "
        "…) for the same case %(case)s (asked by %(users)s)."
    ),
    "case-many-persons": N_(
        "%(organisation)s asked about %(persons)s different persons under the one case reference "
        "%(case)s (asked by %(users)s). Only a household question (gezin) may share one case."
    ),
    "person-many-cases": N_(
        "%(organisation)s asked about %(person)s under %(count)s different case references: "
        "%(cases)s (asked by %(users)s)."
    ),
    "person-many-cases-list": N_(
        "%(organisation)s asked about %(persons)s persons (%(person)s, …) under %(count)s "
        "different case references: %(cases)s (asked by %(users)s)."
    ),
    "unknown-user": N_(
        "%(count)s question(s) under the user name “%(user)s” (%(organisation)s), which is no "
        "account of this portal: it was typed at the command line, nobody logged in as that "
        "person."
    ),
    "low-hit-rate": N_(
        "%(user)s (%(organisation)s) found an involved organisation for %(hits)s of %(persons)s "
        "persons (%(rate)s%%); colleagues %(usual)s%%. Asking about persons nobody works with "
        "can be fishing."
    ),
    "batch-near-limit": N_(
        "%(user)s (%(organisation)s) asked about %(size)s persons at once on %(when)s; the "
        "maximum is %(limit)s."
    ),
    "quota": N_("%(organisation)s had used up its daily limit on %(day)s: %(count)s refusal(s)."),
    "failed-logins": N_("%(count)s failed logins for the account %(user)s on %(day)s."),
    "failed-logins-unknown": N_(
        "%(count)s failed logins with user names that are no account, on %(day)s."
    ),
    "role-change": N_("Account %(account)s: %(action)s by %(by)s on %(when)s (roles: %(roles)s)."),
    "alarm": N_(
        "%(count)s alarm(s) of kind “%(alarm)s” on %(day)s: a question that failed our node's "
        "checks, or a fork of the coordinator's log."
    ),
}
ACTIONS = {  # the reasons `betrokken portal user` records
    "account added": N_("added"),
    "account reset": N_("changed or reset (roles, purposes, password or code)"),
    "account disabled": N_("disabled"),
}


@dataclass(frozen=True)
class AnomalyView:
    number: int
    kind: str
    label: str
    text: str
    records: tuple[int, ...]


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    width: int  # px


@dataclass(frozen=True)
class Figure:
    ident: str
    title: str
    column: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class HitRow:
    organisation: str
    user: str
    persons: int
    hits: int
    percent: int


@dataclass(frozen=True)
class RecordRow:
    index: int
    when: str
    event: str
    organisation: str
    user: str
    purpose: str
    cases: str
    persons: str
    anomalies: tuple[int, ...]


@dataclass(frozen=True)
class BehalfRow:
    """Questions this organisation's node answered for an asker acting for a partner (the
    aanmelder): who asked, for whom, on the aanmelder's basis as the network file stated it."""

    asker: str
    aanmelder: str
    basis: str
    purpose: str
    count: int


@dataclass(frozen=True)
class HoursRow:
    purpose: str
    hours: str


@dataclass(frozen=True)
class FollowUpRow:
    partner: str
    purpose: str
    hits: int
    followed: int
    in_time: int
    waiting: int
    share: str


@dataclass(frozen=True)
class FollowUpView:
    """The share of our hits followed up within the network's working days: counts only."""

    share: str
    in_time: int
    counted: int  # hits whose term has passed or that were followed up
    waiting: int
    days: int
    goal: int
    met: bool
    rows: tuple[FollowUpRow, ...]


def _percent(share: float | None) -> str:
    if share is None:
        return "–"
    return format_decimal(share * 100, format="0.0", locale=i18n.current_language()) + "%"


def _found(found: str, names: dict[str, str]) -> str:
    if found.startswith(rules.DOMAIN_LABEL):
        return _("An organisation in the field {domain}").format(
            domain=found.removeprefix(rules.DOMAIN_LABEL).split(" (")[0]
        )
    return names.get(found.split(" (")[0], found)


def follow_up_view(
    present: Sequence[tuple[int, AuditEntry]],
    settings: ReportSettings,
    names: dict[str, str],
    today: dt.date,
) -> FollowUpView | None:
    """The follow-up of the hits in this trail (None: no hits here)."""
    days, goal = settings.follow_up_working_days, settings.follow_up_goal_percent
    found = rates(hits_in(e for _i, e in present), days, today)
    if not found:
        return None
    total = overall(found)
    share = total.share_in_time
    return FollowUpView(
        share=_percent(share),
        in_time=total.in_time,
        counted=total.hits - total.waiting,
        waiting=total.waiting,
        days=days,
        goal=goal,
        met=share is not None and share * 100 >= goal,
        rows=tuple(
            FollowUpRow(
                _found(r.partner, names),
                r.purpose,
                r.hits,
                r.followed,
                r.in_time,
                r.waiting,
                _percent(r.share_in_time),
            )
            for r in found
        ),
    )


@dataclass(frozen=True)
class ReportView:
    generated: str
    period: str
    records: int
    pruned: int
    questions: int
    persons: int
    refusals: int
    verified: bool
    verification: str
    checked: int  # records the verification checked: the whole log, whatever the period
    anomalies: tuple[AnomalyView, ...]
    per_kind: tuple[tuple[str, str, int], ...]  # kind, label, count
    figures: tuple[Figure, ...]
    hit_rates: tuple[HitRow, ...]
    rows: tuple[RecordRow, ...]
    hours: tuple[HoursRow, ...]
    follow_up: FollowUpView | None = None
    on_behalf: tuple[BehalfRow, ...] = ()


def _day(iso: str) -> str:
    return format_date(dt.date.fromisoformat(iso), "EEEE d MMMM y", locale=i18n.current_language())


def hours_text(start: int, end: int, weekend: bool) -> str:
    if weekend and start == 0 and end == 24:
        return _("day and night, every day")
    days = _("every day") if weekend else _("Monday to Friday, not on public holidays")
    return f"{start:02d}:00–{end:02d}:00, {days}"


def word(anomaly: Anomaly, names: dict[str, str]) -> str:
    """What the FG reads about one anomaly, in the portal's language."""
    facts: dict[str, object] = dict(anomaly.facts)
    if "organisation" in facts:
        org = str(facts["organisation"])
        facts["organisation"] = names.get(org, org) or _("unknown organisation")
    for key in ("user", "by", "account"):
        if key in facts and not facts[key]:
            facts[key] = _("(unknown)")
    if "case" in facts and not facts["case"]:
        facts["case"] = _("(no case)")
    if "day" in facts:
        facts["day"] = _day(str(facts["day"]))
    key = anomaly.kind
    if key == "volume" and not facts.get("usual"):
        key = "volume-first"
    elif key in ("repeat-subject", "person-many-cases") and int(str(facts["persons"])) > 1:
        key += "-list"
    elif key == "failed-logins" and facts["user"] == _("(unknown)"):
        key = "failed-logins-unknown"
    elif key == "off-hours":
        facts["days"] = _("every day") if facts.get("every_day") else _("Monday to Friday")
        if facts.get("holiday"):
            key = "off-hours-holiday"
    elif key == "role-change":
        action = str(facts.get("action", ""))
        facts["action"] = _(ACTIONS[action]) if action in ACTIONS else action or _("changed")
        facts["roles"] = facts.get("roles") or "-"
    return _(TEXTS[key]) % facts


def decision_label(reason: str) -> str:
    """A decision record's reason ("niet-delen: rechten-en-vrijheden-van-anderen") in words."""
    from betrokken.portal.beslissen import GROUNDS

    decision, _sep, ground = reason.partition(": ")
    label = _(GROUNDS[ground]) if ground in GROUNDS else ground
    if decision == "delen":
        return _("Share: {ground}").format(ground=label)
    if decision == "niet-delen":
        return _("Do not share: {ground}").format(ground=label)
    return reason


def _bars(items: Sequence[tuple[str, int]]) -> tuple[Bar, ...]:
    top = max((value for _label, value in items), default=0) or 1
    return tuple(
        Bar(label or _("(none)"), value, round(BAR_WIDTH * value / top)) for label, value in items
    )


def _by_count(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))


# The records of this organisation's node that a question asked for an aanmelder leaves.
_ANSWERED_FOR = frozenset({Event.DISCLOSURE, Event.DECISION, Event.ALARM})


def behalf_rows(
    present: Sequence[tuple[int, AuditEntry]], names: dict[str, str]
) -> tuple[BehalfRow, ...]:
    """Per asker, aanmelder, basis and purpose: how many of our node's records (disclosures,
    decisions waiting, refusals) came from a question asked on behalf of an aanmelder."""
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for _index, entry in present:
        basis = entry.details.get("aanmelder_basis", "")
        aanmelder = entry.details.get("on_behalf_of", "")
        if entry.event not in _ANSWERED_FOR or not basis or not aanmelder:
            continue
        asker = entry.details.get("requester", "") if entry.event is Event.ALARM else ""
        asker = asker or entry.organisation
        counts[(asker, aanmelder, basis, entry.purpose)] += 1
    return tuple(
        BehalfRow(names.get(a, a), names.get(m, m), b, p, n)
        for (a, m, b, p), n in sorted(counts.items())
    )


def build_report(
    entries: Sequence[IndexedEntry],
    settings: ReportSettings,
    *,
    names: dict[str, str],
    purposes: Sequence[str],
    event_label: Callable[[str], str],
    generated_at: dt.datetime,
    verified: bool,
    verification: str,
    checked: int | None = None,
) -> ReportView:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(settings.timezone)
    present = [(item.index, item.entry) for item in entries if item.entry is not None]
    asked = questions(entries)
    found = find_anomalies(entries, settings)
    views = tuple(
        AnomalyView(n, a.kind, _(KIND_LABELS[a.kind]), word(a, names), a.indices)
        for n, a in enumerate(found)
    )
    kinds = Counter(a.kind for a in found)
    per_kind = tuple((k, _(KIND_LABELS[k]), kinds.get(k, 0)) for k in KINDS)
    refusals = [e for _i, e in present if e.event is Event.REFUSAL]

    def day(entry: AuditEntry) -> dt.date:
        return local(entry.at, zone).date()

    figures: list[Figure] = []
    if present:
        first = min(day(e) for _i, e in present)
        last = max(day(e) for _i, e in present)
        unit, per_day = _timeline(Counter(day(e) for _i, e in asked), first, last)
        _unit, partial = _timeline(
            Counter(
                day(e)
                for _i, e in present
                if e.event is Event.OUTCOME and e.completeness == "partial"
            ),
            first,
            last,
        )
        per_unit = _("Questions per day") if unit == "day" else _("Questions per month")
        figures.append(Figure("per-day", per_unit, _("Questions"), _bars(per_day)))
        if any(v for _label, v in partial):
            figures.append(
                Figure("partial", _("Incomplete answers per day"), _("Answers"), _bars(partial))
            )
    figures += [
        Figure(
            "per-organisation",
            _("Questions per organisation"),
            _("Questions"),
            _bars(_by_count(Counter(names.get(e.organisation, e.organisation) for _i, e in asked))),
        ),
        Figure(
            "per-purpose",
            _("Questions per purpose"),
            _("Questions"),
            _bars(_by_count(Counter(e.purpose for _i, e in asked))),
        ),
        Figure(
            "per-user",
            _("Questions per user"),
            _("Questions"),
            _bars(_by_count(Counter(e.user or _("(unknown)") for _i, e in asked))),
        ),
    ]
    weighted: Counter[str] = Counter()
    for entry in refusals:
        weighted[entry.reason] += weight(entry)
    figures.append(
        Figure("refusals", _("Refusals per reason"), _("Refusals"), _bars(_by_count(weighted)))
    )
    decided = Counter(
        decision_label(e.reason)
        for _i, e in present
        if e.event is Event.DECISION and e.reason not in ("pending", "expired")
    )
    if decided:  # what our professionals and FG decided about partners' questions (ADR 0037, 0039)
        figures.append(
            Figure(
                "decisions",
                _("Decisions about sharing, per ground"),
                _("Decisions"),
                _bars(_by_count(decided)),
            )
        )
    rates = tuple(
        HitRow(
            names.get(r.organisation, r.organisation),
            r.user or _("(unknown)"),
            r.persons,
            r.hits,
            round(100 * r.rate),
        )
        for r in hit_rates(asked)
    )
    flagged: dict[int, list[int]] = {}
    for view in views:
        for index in view.records:
            flagged.setdefault(index, []).append(view.number)
    rows = tuple(
        RecordRow(
            index=index,
            when=i18n.local_time(entry.at, seconds=True),
            event=event_label(entry.event.value),
            organisation=names.get(entry.organisation, entry.organisation) or "-",
            user=entry.user or "-",
            purpose=entry.purpose or "-",
            cases=", ".join(sorted({s.case for s in entry.subjects if s.case})) or "-",
            persons=", ".join(s.fingerprint for s in entry.subjects[:5])
            + (" …" if len(entry.subjects) > 5 else "")
            or str(persons_in(entry) or "-"),
            anomalies=tuple(flagged[index]),
        )
        for index, entry in present
        if index in flagged
    )
    times = sorted(e.at for _i, e in present)
    period = (
        f"{i18n.local_time(times[0])} – {i18n.local_time(times[-1])}"
        if times
        else _("no records with content")
    )
    hours = tuple(
        HoursRow(p, hours_text(h.start, h.end, h.weekend))
        for p in purposes
        for h in (settings.hours_for(p),)
    )
    return ReportView(
        on_behalf=behalf_rows(present, names),
        generated=i18n.local_time(generated_at),
        period=period,
        records=len(entries),
        pruned=sum(1 for item in entries if item.entry is None),
        questions=len(asked),
        persons=sum(persons_in(e) for _i, e in asked),
        refusals=sum(weight(e) for e in refusals),
        verified=verified,
        verification=verification,
        checked=len(entries) if checked is None else checked,
        anomalies=views,
        per_kind=per_kind,
        figures=tuple(figures),
        hit_rates=rates,
        rows=rows,
        hours=hours,
        follow_up=follow_up_view(present, settings, names, generated_at.astimezone(zone).date()),
    )
