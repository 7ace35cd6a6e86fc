"""The rules that decide, in one pure module (no gRPC, no database, no I/O).

* **Who may ask what** (doelbinding), on whose behalf (the aanmelder): :func:`check_may_ask`,
  :func:`check_watch_days`; and under which organisations' keys the key service evaluates for a
  question (:func:`question_keys`).
* **What a node discloses**, decided before any lookup (P7): :func:`level`, :func:`nodes_to_ask`,
  :func:`policy_answer`, :func:`answer_for`.
* **Domain-only anonymity**: a node that discloses only its domain for a purpose answers under the
  label ``domain:<domain>``, with the same reply key as every other member of its domain, so the
  requester cannot tell the members apart (:func:`reply_label`, :func:`reply_groups`).
* **How answers combine into completeness** (P5): :func:`combine` — a node that did not answer is
  never "not involved".
* **Whether a question and its record agree** (P6): :func:`record_problems`, :func:`is_fresh`.

The servicers, the CLI and the portal are thin adapters around these functions; the tests in
tests/test_rules.py state them as tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from betrokken.answer import LOOKUP_OUTCOMES, Answer, Outcome
from betrokken.audit.record import AuditEntry, Event
from betrokken.config.schema import DisclosureLevel, Network, Organisation, Purpose
from betrokken.crypto.question import Question
from betrokken.errors import BadInput, MalformedMessage, PurposeNotAllowed, UnknownPurpose

DOMAIN_LABEL = "domain:"


# --- who may ask what ----------------------------------------------------------------------------
def check_may_ask(
    network: Network, requester: str, purpose_id: str, role: str, on_behalf_of: str
) -> Purpose:
    """The purpose, if ``requester`` in ``role`` may ask it on behalf of ``on_behalf_of``; else the
    refusal saying why.

    This is the one place the rule lives; the requesting side, the coordinator, every node and
    the key service all call it. ``on_behalf_of`` is the aanmelder: the organisation the question
    is asked for, equal to ``requester`` when it asks on its own basis. Today any organisation the
    network file knows is accepted as aanmelder; the network file's per-purpose list of
    aanmelders (ADR 0024, section 9) narrows it here, for every party at once.
    """
    purpose = network.purpose(purpose_id)
    if purpose is None:
        raise UnknownPurpose(
            f"purpose '{purpose_id[:64]}' is not defined in network '{network.name}'",
            hint="known purposes: " + ", ".join(p.id for p in network.purposes),
        )
    if requester not in purpose.allowed_organisations:
        raise PurposeNotAllowed(
            f"organisation '{requester}' may not ask for purpose '{purpose.id}' "
            f"({purpose.description})",
            hint="choose a purpose your organisation is allowed in the network file, or ask the "
            "network's administrators to allow it under the covenant",
        )
    if purpose.allowed_roles and role not in purpose.allowed_roles:
        raise PurposeNotAllowed(
            f"role '{role[:64]}' may not ask for purpose '{purpose.id}'",
            hint="allowed roles: " + ", ".join(purpose.allowed_roles),
        )
    if on_behalf_of != requester and network.organisation(on_behalf_of) is None:
        raise PurposeNotAllowed(
            f"the question is asked on behalf of '{on_behalf_of[:64]}', which is not an "
            f"organisation of network '{network.name}'",
            hint="name the partner that brought the case in (the aanmelder), as the network "
            "file spells it",
        )
    return purpose


def may_ask(
    network: Network, requester: str, purpose_id: str, role: str, on_behalf_of: str | None = None
) -> bool:
    try:
        check_may_ask(network, requester, purpose_id, role, on_behalf_of or requester)
    except (UnknownPurpose, PurposeNotAllowed):
        return False
    return True


def check_watch_days(purpose: Purpose, watch_days: int) -> None:
    """A question may leave a signal at the nodes only for as long as its purpose allows."""
    if watch_days > purpose.watch_days:
        raise PurposeNotAllowed(
            f"the question would leave a signal for {watch_days} day(s); purpose "
            f"'{purpose.id}' allows {purpose.watch_days}",
            hint="ask without a signal, or for at most the purpose's watch_days",
        )


def question_keys(network: Network, purpose_id: str, requester: str) -> list[str]:
    """The organisations under whose keys the key service evaluates for a question: the asker's
    own (for its tags and its trail) and those of the nodes the purpose asks — no other."""
    return [requester, *(org.id for org in nodes_to_ask(network, purpose_id, requester))]


# --- what a node discloses -----------------------------------------------------------------------
def level(network: Network, org_id: str, purpose_id: str) -> DisclosureLevel:
    return network.disclosure_level(org_id, purpose_id)


def needs_lookup(disclosure: DisclosureLevel) -> bool:
    """Only ``organisation`` and ``domain`` look anything up; ``none`` and ``defer`` never do."""
    return disclosure in (DisclosureLevel.ORGANISATION, DisclosureLevel.DOMAIN)


def nodes_to_ask(network: Network, purpose_id: str, requester: str) -> list[Organisation]:
    """The nodes that receive an envelope: every other node whose level looks something up."""
    return [
        org
        for org in network.nodes()
        if org.id != requester and needs_lookup(level(network, org.id, purpose_id))
    ]


def policy_organisations(network: Network, purpose_id: str, requester: str) -> list[Organisation]:
    """The other nodes answered from the network file: they receive nothing (P3)."""
    return [
        org
        for org in network.nodes()
        if org.id != requester and not needs_lookup(level(network, org.id, purpose_id))
    ]


def policy_answer(disclosure: DisclosureLevel, org: Organisation) -> Answer:
    """The one answer, the same for every person, of a node whose level looks nothing up."""
    if disclosure is DisclosureLevel.DEFER:
        return Answer(
            Outcome.DEFERRED,
            organisation_id=org.id,
            organisation_name=org.name,
            domain=org.domain,
            contact=org.contact,
            message=org.defer_message,
            by_policy=True,
        )
    return Answer(
        Outcome.DECLINED,
        organisation_id=org.id,
        organisation_name=org.name,
        message="this organisation does not disclose involvement for this purpose",
        by_policy=True,
    )


class Found(Protocol):
    """What a node found about one person (a registration), as far as the rules need it."""

    @property
    def since(self) -> dt.date: ...
    @property
    def contact(self) -> str: ...
    @property
    def domain(self) -> str: ...
    @property
    def disclosure(self) -> DisclosureLevel | None: ...
    @property
    def advice(self) -> str | None: ...


def effective_level(policy: DisclosureLevel, found: Found) -> DisclosureLevel:
    """A registration may narrow what is disclosed (organisation -> domain), never widen it."""
    if found.disclosure is DisclosureLevel.DOMAIN:
        return DisclosureLevel.DOMAIN
    return policy


def answer_for(
    disclosure: DisclosureLevel, org: Organisation, found: Found | None, desk_contact: str
) -> Answer:
    """A node's answer for one person after a lookup (level organisation or domain).

    A hit carries the registration's advice code, if any (the same codes for every member of a
    network, so it does not tell domain members apart)."""
    if found is None:
        if disclosure is DisclosureLevel.DOMAIN:
            return Answer(Outcome.NOT_INVOLVED, domain=org.domain)
        return Answer(Outcome.NOT_INVOLVED, organisation_id=org.id, organisation_name=org.name)
    advice = found.advice or ""
    if effective_level(disclosure, found) is DisclosureLevel.DOMAIN:
        return Answer(
            Outcome.INVOLVED_DOMAIN_ONLY, domain=org.domain, contact=desk_contact, advice=advice
        )
    return Answer(
        Outcome.INVOLVED,
        organisation_id=org.id,
        organisation_name=org.name,
        domain=found.domain,
        contact=found.contact,
        since=found.since.isoformat(),
        advice=advice,
    )


# --- domain-only anonymity -----------------------------------------------------------------------
def reply_label(network: Network, org: Organisation, purpose_id: str) -> str:
    """How a node's reply is labelled to the requester: its id, or only its domain."""
    if level(network, org.id, purpose_id) is DisclosureLevel.DOMAIN:
        return DOMAIN_LABEL + org.domain
    return org.id


def reply_groups(network: Network, purpose_id: str, requester: str) -> dict[str, list[str]]:
    """Label -> the nodes answering under it (one per organisation, several per domain)."""
    groups: dict[str, list[str]] = {}
    for org in nodes_to_ask(network, purpose_id, requester):
        groups.setdefault(reply_label(network, org, purpose_id), []).append(org.id)
    return groups


def check_reply(answer: Answer, label: str, network: Network | None = None) -> None:
    """What a reply under ``label`` may say; anything else is a malformed reply."""
    if answer.outcome not in LOOKUP_OUTCOMES:
        raise MalformedMessage(f"a node cannot answer '{answer.outcome}' after a lookup")
    if answer.advice and (
        not answer.outcome.involved or (network and not network.advice(answer.advice))
    ):
        raise MalformedMessage(
            f"the advice '{answer.advice[:64]}' is not one the network file gives"
        )
    if label.startswith(DOMAIN_LABEL):
        if answer.organisation_id or answer.organisation_name or answer.outcome is Outcome.INVOLVED:
            raise MalformedMessage("a domain-only answer names an organisation")
        if answer.domain != label[len(DOMAIN_LABEL) :]:
            raise MalformedMessage("a domain-only answer is for another domain")
    elif answer.organisation_id not in ("", label) or (
        answer.outcome is not Outcome.INVOLVED_DOMAIN_ONLY and answer.organisation_id != label
    ):
        raise MalformedMessage(f"an answer labelled '{label}' is from another organisation")


# --- completeness --------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrganisationResult:
    organisation_id: str  # empty when only a domain is disclosed
    answer: Answer


@dataclass(frozen=True)
class PersonAnswers:
    answers: tuple[OrganisationResult, ...]
    complete: bool


@dataclass(frozen=True)
class Reply:
    """One node's reply as the requester holds it after opening (or not) the sealed answer."""

    label: str
    answers: Sequence[Answer] | None  # one per person; None when there was no answer
    problem: Outcome = Outcome.UNREACHABLE  # UNREACHABLE or ERROR when answers is None
    message: str = ""


def combine(
    network: Network, purpose_id: str, requester: str, replies: Sequence[Reply], persons: int
) -> list[PersonAnswers]:
    """Per person: every other node's answer, named or anonymous, and whether all answered.

    Nodes answered from the network file come first (named), then named replies in network order,
    then the anonymous domain answers sorted by domain and outcome. A node without a reply is
    UNREACHABLE or ERROR — never NOT_INVOLVED (P5).
    """
    order = {org.id: position for position, org in enumerate(network.organisations)}
    policy = [
        OrganisationResult(org.id, policy_answer(level(network, org.id, purpose_id), org))
        for org in policy_organisations(network, purpose_id, requester)
    ]
    results: list[PersonAnswers] = []
    for index in range(persons):
        named: list[tuple[int, OrganisationResult]] = []
        anonymous: list[OrganisationResult] = []
        for reply in replies:
            domain = (
                reply.label[len(DOMAIN_LABEL) :] if reply.label.startswith(DOMAIN_LABEL) else ""
            )
            if reply.answers is None:
                answer = Answer(reply.problem, domain=domain, message=reply.message)
            else:
                answer = reply.answers[index]
            if domain:
                anonymous.append(OrganisationResult("", answer))
            else:
                named.append(
                    (order.get(reply.label, len(order)), OrganisationResult(reply.label, answer))
                )
        named.sort(key=lambda pair: pair[0])
        anonymous.sort(key=lambda r: (r.answer.domain, r.answer.outcome.value))
        answers = (*policy, *(r for _, r in named), *anonymous)
        results.append(
            PersonAnswers(answers, complete=all(r.answer.outcome.answered for r in answers))
        )
    return results


# --- a question and its record ------------------------------------------------------------------
def is_fresh(at: dt.datetime, now: dt.datetime, window_seconds: float) -> bool:
    return abs((now - at).total_seconds()) <= window_seconds


def search_entry_for(
    question: Question, note: str, purpose: Purpose, at: dt.datetime, access_point: str
) -> AuditEntry:
    """The coordinator's record of a question: who asked, for whom, why, how many — no more.

    It does not list the nodes asked: every node that answers receives this record, and a node
    learns how many envelopes there were, not whose. The *answered* record (written after the
    fan-out, seen by nobody but the coordinator and its DPO) lists them.
    """
    return AuditEntry(
        event=Event.SEARCH,
        at=at,
        answer_id=question.answer_id,
        organisation=question.requester,
        role=question.role,
        access_point=access_point,
        purpose=question.purpose,
        legal_basis=purpose.legal_basis,
        details=search_details(question, note),
    )


def search_details(question: Question, note: str) -> dict[str, str]:
    details = {
        "persons": str(question.persons),
        "on_behalf_of": question.on_behalf_of,
        "kind": question.kind.value,
        "question": note,
    }
    if question.watch_days:
        details["watch_days"] = str(question.watch_days)
    return details


def record_problems(
    entry: AuditEntry, question: Question, note: str, network: Network
) -> list[str]:
    """Every field in which a recorded search differs from the question it should record."""
    purpose = network.purpose(question.purpose)
    details = search_details(question, note)
    expected: Mapping[str, object] = {
        "event": Event.SEARCH,
        "answer id": question.answer_id,
        "organisation": question.requester,
        "purpose": question.purpose,
        "role": question.role,
        "legal basis": purpose.legal_basis if purpose else "(unknown purpose)",
        "persons": details["persons"],
        "on behalf of": details["on_behalf_of"],
        "kind": details["kind"],
        "watch days": details.get("watch_days"),
        "signed question": note,
        "nothing else": sorted(details),
    }
    actual: Mapping[str, object] = {
        "event": entry.event,
        "answer id": entry.answer_id,
        "organisation": entry.organisation,
        "purpose": entry.purpose,
        "role": entry.role,
        "legal basis": entry.legal_basis,
        "persons": entry.details.get("persons"),
        "on behalf of": entry.details.get("on_behalf_of"),
        "kind": entry.details.get("kind"),
        "watch days": entry.details.get("watch_days"),
        "signed question": entry.details.get("question"),
        "nothing else": sorted(entry.details),
    }
    return [name for name in expected if expected[name] != actual[name]]


# --- after the hit: the asker's follow-up (audit/followup.py) ------------------------------------
# What a professional can record after a hit, each a code the pages show in Dutch: contact made,
# a casusoverleg planned, no action needed (with one of the reasons), regie taken by a partner.
FOLLOW_UP_STATES = (
    "contact-gelegd",
    "casusoverleg-gepland",
    "geen-actie-nodig",
    "regie-overgenomen",
)
# Why no action is needed: codes, never free text (a reason typed by hand would hold personal data).
NO_ACTION_REASONS = ("al-afgestemd", "niet-relevant-voor-de-zaak", "zaak-afgesloten")


def check_follow_up(network: Network, state: str, reason: str = "", regie: str = "") -> None:
    """A follow-up the asker may record: a known state; a reason exactly for 'geen-actie-nodig';
    an organisation of the network exactly for 'regie-overgenomen'."""
    if state not in FOLLOW_UP_STATES:
        raise BadInput(
            f"'{state[:40]}' is not a follow-up state",
            hint="one of " + ", ".join(FOLLOW_UP_STATES),
        )
    if (state == "geen-actie-nodig") != bool(reason):
        raise BadInput(
            "a reason goes with 'geen-actie-nodig', and only with it",
            hint="one of " + ", ".join(NO_ACTION_REASONS),
        )
    if reason and reason not in NO_ACTION_REASONS:
        raise BadInput(
            f"'{reason[:40]}' is not a reason", hint="one of " + ", ".join(NO_ACTION_REASONS)
        )
    if (state == "regie-overgenomen") != bool(regie):
        raise BadInput(
            "the organisation that took regie goes with 'regie-overgenomen', and only with it",
            hint="name an organisation of the network file",
        )
    if regie and network.organisation(regie) is None:
        raise BadInput(
            f"'{regie[:64]}' is not an organisation of the network",
            hint="name an organisation of the network file",
        )
