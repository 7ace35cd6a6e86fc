"""Regie and follow-up: what the asking organisation did after each hit, from its own trail.

Every hit (an ``own-query`` record's outcome ``involved`` or ``involved-domain-only``, per person
and per organisation or field that answered so) can get ``follow-up`` records: contact made, a
casusoverleg planned, no action needed (with a reason), regie taken by an organisation. They are
records in the asker's own trail, under the asker's own pseudonym of the person, like the question
itself: nothing central lists persons. The DPO's report counts them per partner and purpose (how
many hits, how many followed up, how many within the network's ``follow_up_working_days``); the
pages show each hit's latest state.

Working days are Monday to Friday (public holidays are not counted out: a hit around Easter has
one or two days less than the goal says).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from betrokken.audit.record import AuditEntry, Event, Subject

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
HIT_OUTCOMES = frozenset({"involved", "involved-domain-only"})
_NUMBERED = re.compile(r" \(\d+\)$")


@dataclass(frozen=True)
class HitKey:
    """One hit: a question, a person in it (the asker's fingerprint), who answered 'involved'
    (an organisation id, or ``domain:<field>`` for an answer without a name)."""

    answer_id: str
    fingerprint: str
    found: str


@dataclass(frozen=True)
class FollowUp:
    state: str
    at: dt.datetime
    user: str
    reason: str = ""
    regie: str = ""


@dataclass
class Hit:
    key: HitKey
    asked_at: dt.datetime
    user: str
    role: str
    purpose: str
    subject: Subject
    follow_ups: list[FollowUp] = field(default_factory=list)

    @property
    def partner(self) -> str:
        """Who was found, without the number that tells two anonymous answers apart."""
        return _NUMBERED.sub("", self.key.found)

    @property
    def latest(self) -> FollowUp | None:
        return self.follow_ups[-1] if self.follow_ups else None

    @property
    def first(self) -> FollowUp | None:
        return self.follow_ups[0] if self.follow_ups else None

    def due(self, working_days: int) -> dt.date:
        """The last day a follow-up counts as in time (Dutch calendar days)."""
        return add_working_days(self.asked_at.astimezone(AMSTERDAM).date(), working_days)

    def in_time(self, working_days: int) -> bool:
        first = self.first
        return first is not None and first.at.astimezone(AMSTERDAM).date() <= self.due(working_days)


def add_working_days(day: dt.date, count: int) -> dt.date:
    """The day ``count`` working days (Monday to Friday) after ``day``."""
    while count > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def follow_up_entry(
    organisation: str,
    hit: Hit,
    user: str,
    role: str,
    state: str,
    *,
    reason: str = "",
    regie: str = "",
    at: dt.datetime | None = None,
) -> AuditEntry:
    """The trail record of one follow-up of ``hit`` (checked by ``rules.check_follow_up``)."""
    details = {"found": hit.key.found, "state": state, "asked_at": hit.asked_at.isoformat()}
    if reason:
        details["reason"] = reason
    if regie:
        details["regie"] = regie
    return AuditEntry(
        event=Event.FOLLOW_UP,
        at=at or dt.datetime.now(dt.UTC),
        organisation=organisation,
        answer_id=hit.key.answer_id,
        user=user,
        role=role,
        purpose=hit.purpose,
        subjects=(hit.subject,),
        reason=state,
        details=details,
    )


def hits_in(entries: Iterable[AuditEntry]) -> list[Hit]:
    """Every hit in the trail with its follow-ups (oldest first), the newest hit first."""
    found: dict[HitKey, Hit] = {}
    follow_ups: list[AuditEntry] = []
    for entry in entries:
        if entry.event is Event.FOLLOW_UP:
            follow_ups.append(entry)
            continue
        if entry.event is not Event.OWN_QUERY or entry.reason != "answered":
            continue
        for subject in entry.subjects:
            for who, outcome in entry.outcomes.get(subject.fingerprint, {}).items():
                if outcome in HIT_OUTCOMES:
                    key = HitKey(entry.answer_id, subject.fingerprint, who)
                    found[key] = Hit(key, entry.at, entry.user, entry.role, entry.purpose, subject)
    for entry in sorted(follow_ups, key=lambda e: e.at):
        for subject in entry.subjects:
            key = HitKey(entry.answer_id, subject.fingerprint, entry.details.get("found", ""))
            hit = found.get(key)
            if hit is not None:
                hit.follow_ups.append(
                    FollowUp(
                        state=entry.reason,
                        at=entry.at,
                        user=entry.user,
                        reason=entry.details.get("reason", ""),
                        regie=entry.details.get("regie", ""),
                    )
                )
    return sorted(found.values(), key=lambda h: h.asked_at, reverse=True)


@dataclass(frozen=True)
class Rate:
    """Follow-up of the hits at one partner (or field) for one purpose."""

    partner: str
    purpose: str
    hits: int
    followed: int
    in_time: int
    waiting: int  # not followed up, still within the term

    @property
    def share_in_time(self) -> float | None:
        """In time among the hits whose term has passed or that were followed up."""
        counted = self.hits - self.waiting
        return self.in_time / counted if counted else None


def rates(hits: Sequence[Hit], working_days: int, today: dt.date) -> list[Rate]:
    """Per partner and purpose: hits, followed up, in time, and still waiting within the term."""
    groups: dict[tuple[str, str], list[Hit]] = {}
    for hit in hits:
        groups.setdefault((hit.partner, hit.purpose), []).append(hit)
    return [
        Rate(
            partner=partner,
            purpose=purpose,
            hits=len(group),
            followed=sum(1 for h in group if h.first is not None),
            in_time=sum(1 for h in group if h.in_time(working_days)),
            waiting=sum(1 for h in group if h.first is None and today <= h.due(working_days)),
        )
        for (partner, purpose), group in sorted(groups.items())
    ]


def overall(found: Sequence[Rate]) -> Rate:
    """All partners and purposes together."""
    return Rate(
        partner="",
        purpose="",
        hits=sum(r.hits for r in found),
        followed=sum(r.followed for r in found),
        in_time=sum(r.in_time for r in found),
        waiting=sum(r.waiting for r in found),
    )


def percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f}%"


def report_section(
    hits: Sequence[Hit], working_days: int, goal_percent: int, today: dt.date
) -> str:
    """The follow-up part of the DPO's report (HTML, escaped): the share of hits followed up in
    time, and a table per partner and purpose. Counts only: no person, no case."""
    from html import escape

    found = rates(hits, working_days, today)
    if not found:
        return (
            "<p>No hits in this log. (Hits and their follow-up are in the asking organisation's "
            "own trail.)</p>"
        )
    total = overall(found)
    share = total.share_in_time
    met = share is not None and share * 100 >= goal_percent
    figure = (
        f'<p class="figure" data-follow-up-share="{percent(share)}">'
        f"{percent(share)} of hits followed up within {working_days} working days</p>"
        f"<p>{total.in_time} of {total.hits - total.waiting} hits whose term has passed or that "
        f"were followed up; {total.waiting} still within their term; goal {goal_percent}% "
        f"({'met' if met else 'not met'}).</p>"
    )
    rows = "".join(
        f'<tr data-partner="{escape(r.partner)}" data-purpose="{escape(r.purpose)}">'
        f"<td>{escape(r.partner)}</td><td>{escape(r.purpose)}</td>"
        f'<td class="num">{r.hits}</td><td class="num">{r.followed}</td>'
        f'<td class="num">{r.in_time}</td><td class="num">{r.waiting}</td>'
        f'<td class="num">{percent(r.share_in_time)}</td></tr>'
        for r in found
    )
    return (
        figure + '<table class="data follow-up"><thead><tr><th>partner found</th><th>purpose</th>'
        "<th>hits</th><th>followed up</th><th>in time</th><th>within term, open</th>"
        f"<th>in time (share)</th></tr></thead><tbody>{rows}</tbody></table>"
    )


# --- counts to share: the network's figure without a list of persons ---------------------------
COUNTS_VERSION = "betrokken-follow-up-counts/v1"


def counts_document(
    organisation: str, found: Sequence[Rate], working_days: int, as_of: dt.date
) -> dict[str, object]:
    """An organisation's follow-up counts as a document it can hand to the network (JSON): per
    partner found and purpose, numbers only."""
    return {
        "version": COUNTS_VERSION,
        "organisation": organisation,
        "working_days": working_days,
        "as_of": as_of.isoformat(),
        "rates": [
            {
                "partner": r.partner,
                "purpose": r.purpose,
                "hits": r.hits,
                "followed": r.followed,
                "in_time": r.in_time,
                "waiting": r.waiting,
            }
            for r in found
        ],
    }


def combine(documents: Sequence[dict[str, object]]) -> list[Rate]:
    """The network's rates per asking organisation and purpose, from the organisations' counts
    (``Rate.partner`` is then the asking organisation). A document of another kind, or counted
    with other working days than the first, is refused."""
    from betrokken.errors import BadInput

    groups: dict[tuple[str, str], list[int]] = {}
    days: object = None
    for document in documents:
        if not isinstance(document, dict) or document.get("version") != COUNTS_VERSION:
            raise BadInput(
                "a file is not an organisation's follow-up counts",
                hint="make each with `betrokken audit follow-up --json` at that organisation",
            )
        if days is None:
            days = document.get("working_days")
        elif document.get("working_days") != days:
            raise BadInput(
                "the organisations counted with different working days",
                hint="count again with the network file's after_the_hit.follow_up_working_days",
            )
        rows = document.get("rates")
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict):
                raise BadInput("a file's follow-up counts are not rows of numbers")
            key = (str(document.get("organisation", "")), str(row.get("purpose", "")))
            totals = groups.setdefault(key, [0, 0, 0, 0])
            for place, name in enumerate(("hits", "followed", "in_time", "waiting")):
                value = row.get(name, 0)
                if not isinstance(value, int) or value < 0:
                    raise BadInput(f"a file's follow-up count '{name}' is not a number")
                totals[place] += value
    return [
        Rate(organisation, purpose, *totals)
        for (organisation, purpose), totals in sorted(groups.items())
    ]


def describe(found: Sequence[Rate], working_days: int, goal_percent: int, by: str) -> str:
    """The rates as text: the figure, then one line per ``by`` (partner or organisation) and
    purpose."""
    total = overall(found)
    share = total.share_in_time
    met = share is not None and share * 100 >= goal_percent
    lines = [
        f"{percent(share)} of hits followed up within {working_days} working days "
        f"(goal {goal_percent}%: {'met' if met else 'not met'})",
        f"{total.hits} hits, {total.followed} followed up, {total.in_time} in time, "
        f"{total.waiting} still within their term",
        "",
        f"{by:<24} {'purpose':<24} {'hits':>5} {'followed':>8} {'in time':>7} {'open':>5} "
        f"{'share':>6}",
    ]
    lines += [
        f"{r.partner:<24} {r.purpose:<24} {r.hits:>5} {r.followed:>8} {r.in_time:>7} "
        f"{r.waiting:>5} {percent(r.share_in_time):>6}"
        for r in found
    ]
    return "\n".join(lines) + "\n"
