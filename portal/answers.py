"""How an answer reads in the portal: per person, per organisation, in a professional's words.

Pure functions from the requester's :class:`~betrokken.requester.client.QueryResult` (and from
the organisation's trail, for "Mijn vragen") to what the templates show. Labels, explanations and
next steps are keyed by :class:`~betrokken.answer.Outcome` in the catalogue (i18n.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from betrokken.answer import Outcome
from betrokken.audit.record import AuditEntry
from betrokken.config.schema import Network
from betrokken.portal.i18n import AMSTERDAM, _, outcome_explanation, outcome_label, pgettext
from betrokken.requester.client import OrganisationResult, PersonResult

# Hits first, then what needs a person's attention, then the rest.
ORDER = {
    Outcome.INVOLVED: 0,
    Outcome.INVOLVED_DOMAIN_ONLY: 1,
    Outcome.DEFERRED: 2,
    Outcome.PENDING: 2,
    Outcome.UNREACHABLE: 3,
    Outcome.ERROR: 3,
    Outcome.CASE_REFUSED: 3,
    Outcome.DECLINED: 4,
    Outcome.NO_DISCLOSURE: 4,
    Outcome.NOT_INVOLVED: 5,
}
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PHONE = re.compile(r"(?:\+31|0)[0-9](?:[ -]?[0-9]){7,10}")


@dataclass(frozen=True)
class Segment:
    text: str
    href: str = ""  # tel:... or mailto:... ; empty for plain text


def contact_segments(text: str) -> list[Segment]:
    """A contact point as text with its e-mail addresses and phone numbers made clickable."""
    found = sorted(
        [(m.start(), m.end(), "mailto:" + m.group()) for m in _EMAIL.finditer(text)]
        + [(m.start(), m.end(), "tel:" + _tel(m.group())) for m in _PHONE.finditer(text)]
    )
    segments: list[Segment] = []
    position = 0
    for start, end, href in found:
        if start < position:  # overlaps a previous match (digits inside an e-mail address)
            continue
        if start > position:
            segments.append(Segment(text[position:start]))
        segments.append(Segment(text[start:end], href))
        position = end
    if position < len(text):
        segments.append(Segment(text[position:]))
    return segments


def _tel(number: str) -> str:
    digits = re.sub(r"[^0-9+]", "", number)
    return "+31" + digits[1:] if digits.startswith("0") else digits


@dataclass(frozen=True)
class OrganisationAnswer:
    who: str
    outcome: Outcome
    label: str
    explanation: str
    next_step: str
    contact: list[Segment]
    since: str
    detail: str  # why there was no answer (unreachable, error), for the administrator
    advice: str = ""  # the label of the advice code the registration carries (network file)


@dataclass(frozen=True)
class PersonView:
    number: int
    masked_bsn: str
    case: str
    fingerprint: str
    complete: bool
    answers: list[OrganisationAnswer]
    involved: list[str]  # who is involved (names, or "an organisation in the field zorg")
    missing: list[str]  # who did not answer

    @property
    def anchor(self) -> str:
        return f"persoon-{self.number}"

    @property
    def attention(self) -> int:
        """Sort key for the overview: hits first, then incomplete answers, then the rest."""
        if self.involved:
            return 0
        return 1 if not self.complete else 2


def who(network: Network, result: OrganisationResult) -> str:
    if not result.organisation_id:
        return _("An organisation in the field {domain}").format(domain=result.answer.domain or "?")
    org = network.organisation(result.organisation_id)
    return result.answer.organisation_name or (org.name if org else result.organisation_id)


def _since(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).strftime("%d-%m-%Y")
    except ValueError:
        return text


def organisation_answer(network: Network, result: OrganisationResult) -> OrganisationAnswer:
    answer = result.answer
    outcome = answer.outcome
    contact = answer.contact
    if outcome is Outcome.INVOLVED_DOMAIN_ONLY and not contact:
        contact = network.desk_contact
    if outcome in (Outcome.UNREACHABLE, Outcome.ERROR) and result.organisation_id:
        org = network.organisation(result.organisation_id)
        contact = org.contact if org else ""
    if outcome in (
        Outcome.NOT_INVOLVED,
        Outcome.DECLINED,
        Outcome.NO_DISCLOSURE,
        Outcome.CASE_REFUSED,
    ):
        contact = ""
    return OrganisationAnswer(
        who=who(network, result),
        outcome=outcome,
        label=outcome_label(outcome),
        explanation=outcome_explanation(outcome),
        next_step=pgettext("outcome-next", outcome.value),
        contact=contact_segments(contact) if contact else [],
        since=_since(answer.since) if outcome is Outcome.INVOLVED and answer.since else "",
        detail=answer.message if outcome in (Outcome.UNREACHABLE, Outcome.ERROR) else "",
        advice=_advice(network, answer.advice) if outcome.involved and answer.advice else "",
    )


def _advice(network: Network, code: str) -> str:
    """The advice's label as the network file gives it (written in Dutch by the partners)."""
    advice = network.advice(code)
    return advice.label if advice else code


def person_view(network: Network, number: int, person: PersonResult) -> PersonView:
    answers = sorted(
        (organisation_answer(network, r) for r in person.answers),
        key=lambda a: ORDER[a.outcome],
    )
    return PersonView(
        number=number,
        masked_bsn=person.masked_bsn,
        case=person.case,
        fingerprint=person.fingerprint,
        complete=person.complete,
        answers=answers,
        involved=[a.who for a in answers if a.outcome.involved],
        missing=[a.who for a in answers if not a.outcome.answered],
    )


def overview(views: Sequence[PersonView]) -> list[PersonView]:
    """One row per person for a list: hits first, then incomplete answers, in list order."""
    return sorted(views, key=lambda v: (v.attention, v.number))


# --- "Mijn vragen": the user's own questions, from the organisation's trail -----------------------
@dataclass(frozen=True)
class AskedPerson:
    fingerprint: str
    involved: list[str]
    missing: list[str]
    complete: bool


@dataclass(frozen=True)
class AskedQuestion:
    at: dt.datetime
    case: str
    purpose: str
    answer_id: str
    refused: str  # the refusal's kind when the question was not answered
    persons: list[AskedPerson]


@dataclass(frozen=True)
class CaseHistory:
    case: str
    questions: list[AskedQuestion]


def _name_of(network: Network, key: str) -> str:
    if key.startswith("domain:"):
        return _("An organisation in the field {domain}").format(
            domain=key.removeprefix("domain:").split(" (")[0]
        )
    org = network.organisation(key.split(" (")[0])
    return org.name if org else key


def my_questions(network: Network, user: str, entries: Iterable[AuditEntry]) -> list[CaseHistory]:
    """The questions ``user`` asked, per case (newest case first, newest question first)."""
    by_case: dict[str, list[AskedQuestion]] = {}
    for entry in entries:
        if entry.event.value != "own-query" or entry.user != user:
            continue
        per_case: dict[str, list[AskedPerson]] = {}
        for subject in entry.subjects:
            outcomes = entry.outcomes.get(subject.fingerprint, {})
            involved = [_name_of(network, k) for k, v in outcomes.items() if v in _INVOLVED_VALUES]
            missing = [_name_of(network, k) for k, v in outcomes.items() if v in _MISSING_VALUES]
            per_case.setdefault(subject.case, []).append(
                AskedPerson(subject.fingerprint, involved, missing, not missing)
            )
        refused = "" if entry.reason == "answered" else entry.reason
        purpose = network.purpose(entry.purpose)
        described = purpose.description if purpose else entry.purpose
        for case, persons in per_case.items():
            by_case.setdefault(case, []).append(
                AskedQuestion(entry.at, case, described, entry.answer_id, refused, persons)
            )
    histories = [
        CaseHistory(case, sorted(qs, key=lambda q: q.at, reverse=True))
        for case, qs in by_case.items()
    ]
    return sorted(histories, key=lambda h: h.questions[0].at, reverse=True)


_INVOLVED_VALUES = {o.value for o in Outcome if o.involved}
_MISSING_VALUES = {o.value for o in Outcome if not o.answered}


T = TypeVar("T")

# Crockford's base 32: no I, L, O or U, so a code read aloud or typed cannot be misheard as
# another letter (and 0/1 are never letters).
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def answer_code(answer_id: str) -> str:
    """The answer's short code to read aloud or quote in a case file: 8 characters (40 bits of
    SHA-256 over the answer number), shown as ``ABCD-EFGH``. Derived, never stored: the answer
    number stays the key in every trail."""
    if not answer_id:
        return ""
    value = int.from_bytes(hashlib.sha256(answer_id.encode()).digest()[:5], "big")
    chars = [_CODE_ALPHABET[(value >> shift) & 31] for shift in range(35, -1, -5)]
    return "".join(chars[:4]) + "-" + "".join(chars[4:])


def normal_code(text: str) -> str:
    """A typed code as :func:`answer_code` shows it (case, spaces, hyphens and the letters
    people read for digits forgiven)."""
    cleaned = "".join(text.upper().split()).replace("-", "")
    cleaned = cleaned.translate(str.maketrans("OIL", "011"))
    return cleaned[:4] + "-" + cleaned[4:] if len(cleaned) == 8 else cleaned


@dataclass(frozen=True)
class CaseFilter:
    """What "Mijn vragen" shows: a part of the case number, a first and a last day (Dutch time),
    an answer code; empty parts match everything."""

    case: str = ""
    first: dt.date | None = None
    last: dt.date | None = None
    code: str = ""

    @property
    def active(self) -> bool:
        return bool(self.case or self.first or self.last or self.code)

    def keeps(self, question: AskedQuestion) -> bool:
        day = question.at.astimezone(AMSTERDAM).date()
        if self.case and self.case.casefold() not in question.case.casefold():
            return False
        if self.first and day < self.first:
            return False
        if self.last and day > self.last:
            return False
        return not (self.code and answer_code(question.answer_id) != normal_code(self.code))


def filter_cases(cases: Sequence[CaseHistory], wanted: CaseFilter) -> list[CaseHistory]:
    kept = []
    for case in cases:
        questions = [q for q in case.questions if wanted.keeps(q)]
        if questions:
            kept.append(CaseHistory(case.case, questions))
    return kept


def page_of(items: Sequence[T], number: int, size: int) -> tuple[list[T], int, int]:
    """(the items on page ``number``, counted from 1 and kept within range; that page; pages)."""
    pages = max(1, -(-len(items) // size))
    number = min(max(1, number), pages)
    return list(items[(number - 1) * size : number * size]), number, pages


# --- an answer found again: rebuilt from the asker's own trail record --------------------------
@dataclass(frozen=True)
class ReopenedAnswer:
    """One question of the user's, as the organisation's trail holds it: when, why, per person
    (a number in the question and the case; the trail keeps no BSN) what each organisation
    answered, with the contact point the network file gives for it."""

    at: dt.datetime
    answer_id: str
    purpose: str
    legal_basis: str
    role: str
    complete: bool
    retry_of: str
    persons: list[PersonView]


def find_answer(entries: Iterable[AuditEntry], user: str, code: str) -> AuditEntry | None:
    """The user's own answered question with this answer code (the newest when two share one);
    None for a code of another user's question: nobody reopens another's answer."""
    wanted = normal_code(code)
    found = None
    for entry in entries:
        if entry.event.value != "own-query" or entry.user != user or not entry.answer_id:
            continue
        if answer_code(entry.answer_id) == wanted and (found is None or entry.at > found.at):
            found = entry
    return found


def _reopened_answer(network: Network, key: str, value: str) -> OrganisationAnswer:
    try:
        outcome = Outcome(value)
    except ValueError:
        outcome = Outcome.ERROR
    contact = ""
    if outcome.involved or not outcome.answered:
        if key.startswith("domain:"):
            contact = network.desk_contact
        else:
            org = network.organisation(key.split(" (")[0])
            contact = org.contact if org else ""
    return OrganisationAnswer(
        who=_name_of(network, key),
        outcome=outcome,
        label=outcome_label(outcome),
        explanation=outcome_explanation(outcome),
        next_step=pgettext("outcome-next", outcome.value),
        contact=contact_segments(contact) if contact else [],
        since="",
        detail="",
    )


def reopen(network: Network, entry: AuditEntry) -> ReopenedAnswer:
    persons = []
    for number, subject in enumerate(entry.subjects, start=1):
        answers = sorted(
            (
                _reopened_answer(network, key, value)
                for key, value in entry.outcomes.get(subject.fingerprint, {}).items()
            ),
            key=lambda a: ORDER[a.outcome],
        )
        persons.append(
            PersonView(
                number=number,
                masked_bsn="",
                case=subject.case,
                fingerprint=subject.fingerprint,
                complete=all(a.outcome.answered for a in answers),
                answers=answers,
                involved=[a.who for a in answers if a.outcome.involved],
                missing=[a.who for a in answers if not a.outcome.answered],
            )
        )
    purpose = network.purpose(entry.purpose)
    return ReopenedAnswer(
        at=entry.at,
        answer_id=entry.answer_id,
        purpose=purpose.description if purpose else entry.purpose,
        legal_basis=entry.legal_basis,
        role=entry.role,
        complete=entry.completeness != "partial" and all(p.complete for p in persons),
        retry_of=entry.details.get("retry_of", ""),
        persons=persons,
    )


def N_(message: str) -> str:
    """Marks a message for the catalogue; translated where it is shown."""
    return message


# The columns of an export, in the reader's language (no BSN: the trail keeps none).
EXPORT_COLUMNS = (
    N_("Case"),
    N_("Person in the question"),
    N_("Asked at"),
    N_("Purpose"),
    N_("Answer code"),
    N_("Organisation"),
    N_("Answer"),
    N_("Contact"),
    N_("Complete?"),
)


def export_rows(answers: Iterable[ReopenedAnswer]) -> list[list[str]]:
    """One row per person and organisation (a person without answers: one row)."""
    from betrokken.portal.i18n import local_time

    rows = []
    for answer in answers:
        for person in answer.persons:
            complete = _("complete") if person.complete else _("incomplete")
            base = [
                person.case,
                str(person.number),
                local_time(answer.at),
                answer.purpose,
                answer_code(answer.answer_id),
            ]
            if not person.answers:
                rows.append([*base, "", "", "", complete])
            for given in person.answers:
                contact = "".join(s.text for s in given.contact)
                rows.append([*base, given.who, given.label, contact, complete])
    return rows
