"""What the DPO's report flags: the rules that decide, pure (records in, anomalies out).

Each anomaly carries its kind, the records behind it and its facts (numbers, names, dates) as
plain values, so every reader words it in its own language: the portal in Dutch through its
catalogue, ``betrokken audit report`` in English (:attr:`Anomaly.title`). An anomaly is a reason
to look, not a verdict: a ZSM morning list is a legitimate large batch, a night shift a
legitimate night question when the purpose's office hours say so.

Fishing shows in an organisation's own trail (its ``own-query`` records name the user, the case
and the persons as pseudonyms); the coordinator's log names neither user nor person, so there
only what it can see is flagged (volume, hours, list size, refusals).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.holidays import holiday

KINDS = (
    "volume",
    "off-hours",
    "repeat-subject",
    "case-many-persons",
    "person-many-cases",
    "unknown-user",
    "low-hit-rate",
    "batch-near-limit",
    "quota",
    "failed-logins",
    "role-change",
    "alarm",
)
QUESTIONS = (Event.SEARCH, Event.OWN_QUERY)
HITS = frozenset({"involved", "involved-domain-only"})  # answers that name an involvement
Facts = dict[str, str | int]


@dataclass(frozen=True)
class IndexedEntry:
    """One record of the log with its leaf index."""

    index: int
    entry: AuditEntry | None  # None: content pruned after the retention term


@dataclass(frozen=True)
class Hours:
    """Office hours in local time: from ``start`` (inclusive) to ``end`` (exclusive) o'clock; a
    start after the end runs over midnight; ``weekend``: Saturday and Sunday count too. Hours
    that do not count the weekend do not count Dutch public holidays either
    (:mod:`betrokken.holidays`); a purpose that works weekends works them."""

    start: int = 7
    end: int = 19
    weekend: bool = False

    def contains(self, local: dt.datetime) -> bool:
        if not self.weekend and (local.weekday() >= 5 or holiday(local.date())):
            return False
        if self.start == 0 and self.end == 24:
            return True
        if self.start < self.end:
            return self.start <= local.hour < self.end
        return local.hour >= self.start or local.hour < self.end

    @property
    def always(self) -> bool:
        return self.weekend and self.start == 0 and self.end == 24

    def __str__(self) -> str:
        return f"{self.start:02d}:00–{self.end:02d}:00"


@dataclass(frozen=True)
class ReportSettings:
    """Thresholds of the anomalies and the local time they are judged in."""

    max_batch: int = 100
    timezone: str = "Europe/Amsterdam"
    office_hours: Hours = Hours()  # the network's, for a purpose without its own
    purpose_hours: Mapping[str, Hours] = field(default_factory=dict)
    volume_factor: float = 3.0
    volume_minimum: int = 10
    repeat_minimum: int = 3
    batch_fraction: float = 0.9
    case_persons_minimum: int = 5  # one case reference for this many persons (not a gezin)
    cases_per_person_minimum: int = 3  # one person under this many case references
    failed_login_minimum: int = 3  # per account per day
    hit_rate_minimum: int = 10  # persons a user asked about before their hit rate is judged
    hit_rate_factor: float = 0.5  # flagged below this share of the other users' rate
    accounts: frozenset[str] | None = None  # the portal's accounts; None: not known here
    follow_up_working_days: int = 10  # the network's after_the_hit settings
    follow_up_goal_percent: int = 90

    def hours_for(self, purpose: str) -> Hours:
        return self.purpose_hours.get(purpose, self.office_hours)


@dataclass(frozen=True)
class Anomaly:
    """Something a DPO should look at, with the records behind it and its facts."""

    kind: str  # one of KINDS
    title: str  # in English, for the command line's report
    indices: tuple[int, ...]
    facts: Mapping[str, str | int] = field(default_factory=dict, compare=False)


# --- reading records -----------------------------------------------------------------------------
def local(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(zone)


def questions(entries: Sequence[IndexedEntry]) -> list[tuple[int, AuditEntry]]:
    return [
        (item.index, item.entry)
        for item in entries
        if item.entry is not None and item.entry.event in QUESTIONS
    ]


def persons_in(entry: AuditEntry) -> int:
    """How many persons a question was about (the coordinator records only the number)."""
    if entry.subjects:
        return len(entry.subjects)
    try:
        return int(entry.details.get("persons", "0"))
    except ValueError:
        return 0


def weight(entry: AuditEntry) -> int:
    """How many events one record stands for: a refusal or alarm with ``details.count`` counts
    that many (beyond the first ten a minute they are counted, not recorded one by one)."""
    try:
        return max(1, int(entry.details.get("count", "1") or 1))
    except ValueError:
        return 1


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _who(organisation: str, user: str) -> str:
    return f"user {user or '(unknown)'} ({organisation or 'unknown organisation'})"


def _day(day: dt.date) -> str:
    return f"{day:%A} {day.isoformat()}"


def find_anomalies(entries: Sequence[IndexedEntry], settings: ReportSettings) -> list[Anomaly]:
    """Every anomaly, grouped by kind in the order of :data:`KINDS`."""
    zone = ZoneInfo(settings.timezone)
    asked = questions(entries)
    found: list[Anomaly] = []
    found += _volume(asked, settings, zone)
    found += _off_hours(asked, settings, zone)
    found += _repeats(asked, settings)
    found += case_many_persons(asked, settings)
    found += person_many_cases(asked, settings)
    found += unknown_users(asked, settings)
    found += low_hit_rates(asked, settings)
    found += _batches(asked, settings, zone)
    found += _quota(entries, zone)
    found += failed_logins(entries, settings, zone)
    found += role_changes(entries, zone)
    found += _alarms(entries, zone)
    return found


# --- volume, hours, repeats, lists -----------------------------------------------------------
def _volume(
    asked: list[tuple[int, AuditEntry]], settings: ReportSettings, zone: ZoneInfo
) -> list[Anomaly]:
    """A user far above their own usual daily number of questions."""
    per_user: dict[tuple[str, str], dict[dt.date, list[int]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for index, entry in asked:
        per_user[(entry.organisation, entry.user)][local(entry.at, zone).date()].append(index)
    found: list[Anomaly] = []
    for (organisation, user), days in sorted(per_user.items()):
        for day, indices in sorted(days.items()):
            count = len(indices)
            others = [len(v) for d, v in days.items() if d != day]
            usual: float | None = None
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
                facts: Facts = {
                    "organisation": organisation,
                    "user": user,
                    "count": count,
                    "day": day.isoformat(),
                    "usual": f"{usual:g}" if usual is not None else "",
                }
                found.append(Anomaly("volume", title, tuple(indices), facts))
    return found


def _off_hours(
    asked: list[tuple[int, AuditEntry]], settings: ReportSettings, zone: ZoneInfo
) -> list[Anomaly]:
    """Questions outside the purpose's office hours (local time), per user, purpose and day."""
    grouped: dict[tuple[str, str, str, dt.date], list[tuple[int, dt.datetime]]] = defaultdict(list)
    for index, entry in asked:
        moment = local(entry.at, zone)
        if not settings.hours_for(entry.purpose).contains(moment):
            key = (entry.organisation, entry.user, entry.purpose, moment.date())
            grouped[key].append((index, moment))
    found: list[Anomaly] = []
    for (organisation, user, purpose, day), items in sorted(grouped.items()):
        hours = settings.hours_for(purpose)
        times = ", ".join(f"{t:%H:%M}" for _, t in items[:12])
        if len(items) > 12:
            times += ", …"
        weekend = day.weekday() >= 5 and not hours.weekend
        feast = "" if hours.weekend or weekend else holiday(day)
        when = (
            "in the weekend"
            if weekend
            else f"on a public holiday ({feast})"
            if feast
            else "outside office hours"
        )
        days = "every day" if hours.weekend else "Monday to Friday"
        title = (
            f"{_who(organisation, user)} asked {_plural(len(items), 'question')} {when} on "
            f"{_day(day)} at {times} (office hours for {purpose or 'this purpose'}: {hours}, "
            f"{days})"
        )
        facts: Facts = {
            "organisation": organisation,
            "user": user,
            "purpose": purpose,
            "count": len(items),
            "day": day.isoformat(),
            "times": times,
            "weekend": int(weekend),
            "holiday": feast,
            "hours": str(hours),
            "every_day": int(hours.weekend),
        }
        found.append(Anomaly("off-hours", title, tuple(i for i, _ in items), facts))
    return found


# Answers that leave a person's answer incomplete (no answer from an organisation).
UNANSWERED = frozenset({"unreachable", "error"})


def is_retry(entry: AuditEntry, subject: Subject, by_answer: Mapping[str, AuditEntry]) -> bool:
    """Whether ``entry`` asks about ``subject`` again only because its earlier answer was
    incomplete: the question names the answer it retries (``details.retry_of``), that answer is
    the same organisation's and user's, earlier, about the same person for the same case, and an
    organisation did not answer about that person there. A retry of a complete answer, or of
    another person's, is a repeat like any other."""
    earlier = by_answer.get(entry.details.get("retry_of", ""))
    if earlier is None or earlier is entry:
        return False
    if (earlier.organisation, earlier.user) != (entry.organisation, entry.user):
        return False
    if earlier.at > entry.at:
        return False
    for before in earlier.subjects:
        if before.pseudonym == subject.pseudonym and before.case == subject.case:
            outcomes = earlier.outcomes.get(before.fingerprint, {})
            return any(value in UNANSWERED for value in outcomes.values())
    return False


def _repeats(asked: list[tuple[int, AuditEntry]], settings: ReportSettings) -> list[Anomaly]:
    """The same organisation asking about the same person for the same case again and again;
    asking again the persons whose answer was incomplete (:func:`is_retry`) is not a repeat."""
    seen: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    fingerprints: dict[str, str] = {}
    users: dict[int, str] = {}
    by_answer = {e.answer_id: e for _, e in asked if e.answer_id and e.event is Event.OWN_QUERY}
    for index, entry in asked:
        users[index] = entry.user
        for subject in entry.subjects:
            if is_retry(entry, subject, by_answer):
                continue
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
        facts: Facts = {
            "organisation": organisation,
            "times": len(records),
            "persons": len(prints),
            "person": prints[0],
            "case": case,
            "users": asked_by,
        }
        found.append(Anomaly("repeat-subject", title, records, facts))
    return found


def case_many_persons(
    asked: list[tuple[int, AuditEntry]], settings: ReportSettings
) -> list[Anomaly]:
    """One case reference used for many different persons by one organisation ("ALGEMEEN"), not
    counting a household question (``kind`` gezin), where persons share their case by design."""
    persons: dict[tuple[str, str], set[str]] = defaultdict(set)
    records: dict[tuple[str, str], list[int]] = defaultdict(list)
    users: dict[tuple[str, str], set[str]] = defaultdict(set)
    for index, entry in asked:
        if entry.details.get("kind") == "gezin":
            continue
        for subject in entry.subjects:
            key = (entry.organisation, subject.case)
            persons[key].add(subject.pseudonym)
            if not records[key] or records[key][-1] != index:
                records[key].append(index)
            users[key].add(entry.user or "(unknown)")
    found: list[Anomaly] = []
    for (organisation, case), who in sorted(persons.items()):
        if len(who) < settings.case_persons_minimum:
            continue
        asked_by = ", ".join(sorted(users[(organisation, case)]))
        title = (
            f"{organisation or 'unknown organisation'} asked about {len(who)} different persons "
            f"under one case reference {case or '(no case)'} (asked by {asked_by})"
        )
        facts: Facts = {
            "organisation": organisation,
            "case": case,
            "persons": len(who),
            "users": asked_by,
        }
        found.append(
            Anomaly("case-many-persons", title, tuple(records[(organisation, case)]), facts)
        )
    return found


def person_many_cases(
    asked: list[tuple[int, AuditEntry]], settings: ReportSettings
) -> list[Anomaly]:
    """One person asked about by one organisation under several case references (NOSY-A,
    NOSY-B, NOSY-C): a way around the repeat rule, which counts per case."""
    cases: dict[tuple[str, str], set[str]] = defaultdict(set)
    records: dict[tuple[str, str], list[int]] = defaultdict(list)
    users: dict[tuple[str, str], set[str]] = defaultdict(set)
    prints: dict[str, str] = {}
    for index, entry in asked:
        for subject in entry.subjects:
            key = (entry.organisation, subject.pseudonym)
            cases[key].add(subject.case)
            if not records[key] or records[key][-1] != index:
                records[key].append(index)
            users[key].add(entry.user or "(unknown)")
            prints[subject.pseudonym] = subject.fingerprint
    # Persons asked about together under the same cases become one anomaly.
    merged: dict[tuple[str, tuple[str, ...], tuple[int, ...]], list[str]] = defaultdict(list)
    for (organisation, pseudonym), named in cases.items():
        if len(named) >= settings.cases_per_person_minimum:
            group = (organisation, tuple(sorted(named)), tuple(records[(organisation, pseudonym)]))
            merged[group].append(pseudonym)
    found: list[Anomaly] = []
    for (organisation, cases_named, indices), pseudonyms in sorted(
        merged.items(), key=lambda kv: (kv[0][2], kv[0][0])
    ):
        fingerprints = sorted(prints[p] for p in pseudonyms)
        asked_by = ", ".join(sorted({u for p in pseudonyms for u in users[(organisation, p)]}))
        shown = ", ".join(c or "(no case)" for c in cases_named)
        persons = (
            fingerprints[0]
            if len(fingerprints) == 1
            else f"{len(fingerprints)} persons ({fingerprints[0]}, …)"
        )
        title = (
            f"{organisation or 'unknown organisation'} asked about {persons} under "
            f"{len(cases_named)} different case references: {shown} (asked by {asked_by})"
        )
        facts: Facts = {
            "organisation": organisation,
            "person": fingerprints[0],
            "persons": len(fingerprints),
            "cases": shown,
            "count": len(cases_named),
            "users": asked_by,
        }
        found.append(Anomaly("person-many-cases", title, indices, facts))
    return found


def unknown_users(asked: list[tuple[int, AuditEntry]], settings: ReportSettings) -> list[Anomaly]:
    """Questions under a user name that is no account of the portal (typed at the command line
    with ``--user``): nobody logged in as that person. Needs the list of accounts."""
    if settings.accounts is None:
        return []
    per_user: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, entry in asked:
        if entry.event is Event.OWN_QUERY and entry.user not in settings.accounts:
            per_user[(entry.organisation, entry.user)].append(index)
    return [
        Anomaly(
            "unknown-user",
            f"{_plural(len(indices), 'question')} under the user name "
            f"'{user or '(none)'}' ({organisation}), which is no account of the portal",
            tuple(indices),
            {"organisation": organisation, "user": user, "count": len(indices)},
        )
        for (organisation, user), indices in sorted(per_user.items())
    ]


@dataclass(frozen=True)
class HitRate:
    """How many of the persons a user asked about were known somewhere."""

    organisation: str
    user: str
    persons: int
    hits: int
    indices: tuple[int, ...]

    @property
    def rate(self) -> float:
        return self.hits / self.persons if self.persons else 0.0


def hit_rates(asked: list[tuple[int, AuditEntry]]) -> list[HitRate]:
    """Per user, from the organisation's own questions (the answers are only there): a person
    is a hit when any organisation answered it is involved."""
    persons: dict[tuple[str, str], int] = defaultdict(int)
    hits: dict[tuple[str, str], int] = defaultdict(int)
    records: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, entry in asked:
        if entry.event is not Event.OWN_QUERY or not entry.outcomes:
            continue
        key = (entry.organisation, entry.user)
        records[key].append(index)
        for subject in entry.subjects:
            persons[key] += 1
            answers = entry.outcomes.get(subject.fingerprint, {})
            if any(value in HITS for value in answers.values()):
                hits[key] += 1
    return [
        HitRate(org, user, persons[(org, user)], hits[(org, user)], tuple(records[(org, user)]))
        for org, user in sorted(persons)
    ]


def low_hit_rates(asked: list[tuple[int, AuditEntry]], settings: ReportSettings) -> list[Anomaly]:
    """A user whose questions find far fewer involvements than their colleagues' (asking about
    persons nobody works with looks like fishing)."""
    rates = hit_rates(asked)
    found: list[Anomaly] = []
    for rate in rates:
        if rate.persons < settings.hit_rate_minimum:
            continue
        others = [r for r in rates if r.organisation == rate.organisation and r.user != rate.user]
        persons = sum(r.persons for r in others)
        if persons < settings.hit_rate_minimum:
            continue
        usual = sum(r.hits for r in others) / persons
        if rate.rate < settings.hit_rate_factor * usual:
            title = (
                f"{_who(rate.organisation, rate.user)} found an involvement for {rate.hits} of "
                f"{rate.persons} persons ({rate.rate:.0%}); colleagues {usual:.0%}"
            )
            facts: Facts = {
                "organisation": rate.organisation,
                "user": rate.user,
                "hits": rate.hits,
                "persons": rate.persons,
                "rate": round(100 * rate.rate),
                "usual": round(100 * usual),
            }
            found.append(Anomaly("low-hit-rate", title, rate.indices, facts))
    return found


def _batches(
    asked: list[tuple[int, AuditEntry]], settings: ReportSettings, zone: ZoneInfo
) -> list[Anomaly]:
    """List questions with nearly the allowed number of persons."""
    threshold = settings.batch_fraction * settings.max_batch - 1e-9
    found: list[Anomaly] = []
    for index, entry in asked:
        size = persons_in(entry)
        if size and size >= threshold:
            moment = local(entry.at, zone)
            title = (
                f"{_who(entry.organisation, entry.user)} asked about {size} persons at once "
                f"on {moment:%Y-%m-%d %H:%M}; the limit is {settings.max_batch}"
            )
            facts: Facts = {
                "organisation": entry.organisation,
                "user": entry.user,
                "size": size,
                "when": f"{moment:%d-%m-%Y %H:%M}",
                "limit": settings.max_batch,
            }
            found.append(Anomaly("batch-near-limit", title, (index,), facts))
    return found


# --- refusals, logins, accounts, alarms -------------------------------------------------------
def _quota(entries: Sequence[IndexedEntry], zone: ZoneInfo) -> list[Anomaly]:
    """Refusals because an organisation's quota was used up, per organisation per day."""
    grouped: dict[tuple[str, dt.date], list[int]] = defaultdict(list)
    counts: dict[tuple[str, dt.date], int] = defaultdict(int)
    for item in entries:
        entry = item.entry
        if entry is not None and entry.event is Event.REFUSAL and entry.reason == "QuotaExceeded":
            key = (entry.organisation, local(entry.at, zone).date())
            grouped[key].append(item.index)
            counts[key] += weight(entry)
    return [
        Anomaly(
            "quota",
            f"{organisation or 'unknown organisation'} had used up its quota on {_day(day)}: "
            f"{_plural(counts[(organisation, day)], 'refusal')}",
            tuple(indices),
            {
                "organisation": organisation,
                "day": day.isoformat(),
                "count": counts[(organisation, day)],
            },
        )
        for (organisation, day), indices in sorted(grouped.items())
    ]


def failed_logins(
    entries: Sequence[IndexedEntry], settings: ReportSettings, zone: ZoneInfo
) -> list[Anomaly]:
    """Failed portal logins, per account (or per unknown name) per day, from a threshold."""
    grouped: dict[tuple[str, dt.date], list[int]] = defaultdict(list)
    counts: dict[tuple[str, dt.date], int] = defaultdict(int)
    for item in entries:
        entry = item.entry
        if entry is not None and entry.event is Event.LOGIN_FAILED:
            key = (entry.user, local(entry.at, zone).date())
            grouped[key].append(item.index)
            counts[key] += weight(entry)
    found: list[Anomaly] = []
    for (user, day), indices in sorted(grouped.items()):
        count = counts[(user, day)]
        if count < settings.failed_login_minimum:
            continue
        who = f"account {user}" if user else "unknown account names"
        found.append(
            Anomaly(
                "failed-logins",
                f"{_plural(count, 'failed login')} for {who} on {_day(day)}",
                tuple(indices),
                {"user": user, "day": day.isoformat(), "count": count},
            )
        )
    return found


def role_changes(entries: Sequence[IndexedEntry], zone: ZoneInfo) -> list[Anomaly]:
    """Every change to a portal account (added, roles or purposes changed, reset, disabled):
    who may read the log or ask questions is what the DPO checks first."""
    found: list[Anomaly] = []
    for item in entries:
        entry = item.entry
        if entry is None or entry.event is not Event.ROLE_CHANGE:
            continue
        moment = local(entry.at, zone)
        account = entry.details.get("account", "")
        roles = entry.details.get("roles", "")
        found.append(
            Anomaly(
                "role-change",
                f"account {account or '(unknown)'}: {entry.reason or 'changed'} by "
                f"{entry.user or '(unknown)'} on {moment:%Y-%m-%d %H:%M} (roles: {roles or '-'})",
                (item.index,),
                {
                    "account": account,
                    "action": entry.reason,
                    "by": entry.user,
                    "roles": roles,
                    "when": f"{moment:%d-%m-%Y %H:%M}",
                },
            )
        )
    return found


def _alarms(entries: Sequence[IndexedEntry], zone: ZoneInfo) -> list[Anomaly]:
    """Questions a node refused because they failed its checks, and witness alarms, per kind."""
    grouped: dict[tuple[str, dt.date], list[int]] = defaultdict(list)
    counts: dict[tuple[str, dt.date], int] = defaultdict(int)
    for item in entries:
        entry = item.entry
        if entry is not None and entry.event is Event.ALARM:
            key = (entry.reason, local(entry.at, zone).date())
            grouped[key].append(item.index)
            counts[key] += weight(entry)
    return [
        Anomaly(
            "alarm",
            f"{_plural(counts[(kind, day)], 'alarm')} of kind '{kind}' on {_day(day)}: a question "
            "that failed this organisation's checks (forged, unlogged, replayed, …) or a fork of "
            "the coordinator's log",
            tuple(indices),
            {"alarm": kind, "day": day.isoformat(), "count": counts[(kind, day)]},
        )
        for (kind, day), indices in sorted(grouped.items())
    ]
