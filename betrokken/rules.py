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
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from betrokken.answer import LATE_OUTCOMES, LOOKUP_OUTCOMES, Answer, Outcome
from betrokken.audit.record import AuditEntry, Event
from betrokken.config.plain import DisclosureLevel
from betrokken.crypto.question import Kind as QuestionKind
from betrokken.crypto.question import Question
from betrokken.errors import (
    AanmelderNotAllowed,
    BadInput,
    MalformedMessage,
    PolicyRefusal,
    PurposeNotAllowed,
    QuotaExceeded,
    UnknownPurpose,
    UnlawfulConfiguration,
    shown,
)

if TYPE_CHECKING:  # pydantic only where a file is validated (docs/adr/0045)
    from betrokken.config.schema import Network, Organisation, Purpose

DOMAIN_LABEL = "domain:"


# --- who may ask what ----------------------------------------------------------------------------
def check_may_ask(
    network: Network, requester: str, purpose_id: str, role: str, on_behalf_of: str
) -> Purpose:
    """The purpose, if ``requester`` in ``role`` may ask it on behalf of ``on_behalf_of``; else the
    refusal saying why.

    This is the one place the rule lives; the requesting side, the coordinator, every node and
    the key service all call it. ``on_behalf_of`` is the aanmelder: the organisation the question
    is asked for, equal to ``requester`` when it asks on its own basis. Closed unless configured:
    a role the purpose does not list is refused (a purpose that lists none admits nobody); an
    aanmelder other than the requester must be in the purpose's ``on_behalf_of``; an organisation
    that ``acts_for_others`` (a ZVH) must always name one.
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
    if role not in purpose.allowed_roles:
        raise PurposeNotAllowed(
            f"role '{shown(role)}' may not ask for purpose '{purpose.id}'",
            hint="allowed roles: "
            + (
                ", ".join(purpose.allowed_roles)
                or "none (the network file names no role for this purpose, so nobody may ask it)"
            ),
        )
    aanmelders = [a.organisation for a in purpose.on_behalf_of]
    asker = network.organisation(requester)
    if on_behalf_of == requester:
        if asker is not None and asker.acts_for_others:
            raise AanmelderNotAllowed(
                f"organisation '{requester}' has no basis of its own and must name the partner "
                f"it asks for (the aanmelder) under purpose '{purpose.id}'",
                hint="name the aanmelder with --on-behalf-of; allowed: "
                + (", ".join(aanmelders) or "none (the network file lists no aanmelder)"),
            )
    elif on_behalf_of not in aanmelders:
        raise AanmelderNotAllowed(
            f"the question is asked on behalf of '{shown(on_behalf_of)}', which purpose "
            f"'{purpose.id}' does not list as an aanmelder",
            hint="name the partner that brought the case in, as the purpose's on_behalf_of "
            "lists it: " + (", ".join(aanmelders) or "none"),
        )
    return purpose


def aanmelder_basis(network: Network, purpose_id: str, on_behalf_of: str) -> str:
    """The aanmelder's own basis for a purpose, as the network file gives it ("" if none)."""
    purpose = network.purpose(purpose_id)
    for aanmelder in purpose.on_behalf_of if purpose else ():
        if aanmelder.organisation == on_behalf_of:
            return aanmelder.legal_basis
    return ""


def recorded_aanmelder(
    network: Network, purpose_id: str, requester: str, on_behalf_of: str
) -> dict[str, str]:
    """What a record says about the aanmelder of a question: nothing when the requester asked on
    its own basis; else the aanmelder and its basis for the purpose as the network file states
    it when the record is written (``aanmelder_basis``; "(not in the network file)" when the
    file no longer lists it, which a DPO should see rather than an empty field)."""
    if not on_behalf_of or on_behalf_of == requester:
        return {}
    basis = aanmelder_basis(network, purpose_id, on_behalf_of)
    return {
        "on_behalf_of": on_behalf_of,
        "aanmelder_basis": basis or "(not in the network file)",
    }


def check_service_account(network: Network, organisation: str, user: str, role: str) -> None:
    """The command line asks only as a service account the network file names."""
    for account in network.service_accounts:
        if (account.organisation, account.user, account.role) == (organisation, user, role):
            return
    raise PurposeNotAllowed(
        f"user '{shown(user)}' in role '{shown(role)}' is not a service account of "
        f"'{organisation}' in the network file; people ask through the portal",
        hint="use a service account the network file's service_accounts lists for your "
        "organisation: "
        + (
            ", ".join(
                f"{a.user} ({a.role})"
                for a in network.service_accounts
                if a.organisation == organisation
            )
            or "none"
        ),
    )


def case_pattern(network: Network, requester: str) -> str:
    """The asking organisation's pattern for case references ("" when it sets none)."""
    asker = network.organisation(requester)
    return asker.case_pattern if asker else ""


def case_matches(pattern: str, case: str) -> bool:
    """Whether ``case`` is a reference of the pattern's case system (the whole reference matches;
    an empty pattern admits any reference that is not empty). The one rule the asking side
    (:func:`check_case_references`) and a node that opens the case on a hit both use."""
    if not case:
        return False
    return not pattern or re.fullmatch(pattern, case) is not None


def check_case_references(
    network: Network, requester: str, kind: QuestionKind, cases: Sequence[str]
) -> None:
    """Case references that mean a case: each matches the asking organisation's
    ``case_pattern``; one reference for several persons only as ``gezin`` and for at most
    ``user_limits.persons_per_case`` persons; ``gezin`` is one case for all."""
    pattern = case_pattern(network, requester)
    for case in dict.fromkeys(cases):
        if pattern and not case_matches(pattern, case):
            raise BadInput(
                f"the case reference '{shown(case)}' does not match your organisation's pattern "
                f"for case references ({shown(pattern)})",
                hint="use the reference of the case in your own case system: a question is asked "
                "for a case you work on",
            )
    limit = network.user_limits.persons_per_case
    counts = Counter(cases)
    if kind is QuestionKind.GEZIN:
        if len(counts) != 1:
            raise BadInput(
                "a household (gezin) question is one case for all its persons",
                hint="give every person the same case reference, or ask them as a list",
            )
        if len(cases) > limit:
            raise PolicyRefusal(
                f"{len(cases)} persons under one case reference; a household question may "
                f"hold at most {limit}",
                hint="a larger group is not one household: ask each person under a case of its own",
            )
        return
    repeated = sorted(case for case, count in counts.items() if count > 1)
    if repeated:
        raise PolicyRefusal(
            f"{counts[repeated[0]]} persons in this list share the case reference "
            f"'{shown(repeated[0])}'; one case for several persons is only a household question",
            hint="ask them together as a household (--gezin, at most "
            f"{limit} persons), or give each person the case reference it belongs to",
        )


def check_user_limits(
    network: Network,
    user: str,
    asked_today: int,
    cases_today: Mapping[str, int],
    cases: Sequence[str],
) -> None:
    """Bounds per user: at most ``user_limits.daily_persons`` persons a day, and at most
    ``persons_per_case`` distinct persons under one case reference a day (a case is not a
    fishing licence). ``asked_today`` and ``cases_today`` are what the organisation's own trail
    holds for this user since midnight (Europe/Amsterdam)."""
    limits = network.user_limits
    if asked_today + len(cases) > limits.daily_persons:
        raise QuotaExceeded(
            f"user '{shown(user)}' asked about {asked_today} persons today; {len(cases)} more "
            f"would pass the network's limit of {limits.daily_persons} per user per day",
            hint="ask again tomorrow; a larger need is one for the network's administrators",
        )
    for case, count in Counter(cases).items():
        if cases_today.get(case, 0) + count > limits.persons_per_case:
            raise PolicyRefusal(
                f"user '{shown(user)}' asked about {cases_today.get(case, 0)} persons under case "
                f"reference '{shown(case)}' today; {count} more would pass "
                f"{limits.persons_per_case} persons for one case",
                hint="give each person the case reference it belongs to",
            )


# --- a network file that is lawful (closed unless configured) ------------------------------------
def _rule(dutch: str, english: str) -> str:
    return f"Regel: {dutch} / Rule: {english}"


def domain_members(network: Network, purpose_id: str) -> dict[str, list[str]]:
    """Domain -> the nodes that answer a purpose with only that domain."""
    members: dict[str, list[str]] = {}
    for org in network.nodes():
        if level(network, org.id, purpose_id) is DisclosureLevel.DOMAIN:
            members.setdefault(org.domain, []).append(org.id)
    return members


def network_problems(network: Network) -> list[str]:
    """Every way a parsed network file breaks the handvat, each naming its rule (Dutch first).

    ``network check``, ``network init`` and every component's start refuse a file with any."""
    problems: list[str] = []
    role_ids = [r.id for r in network.roles]
    known_orgs = {o.id for o in network.organisations}
    if len(set(role_ids)) != len(role_ids):
        problems.append(_rule("elke rol staat één keer in 'roles'", "each role appears once"))
    for purpose in network.purposes:
        if not purpose.allowed_roles:
            problems.append(
                _rule(
                    f"doel '{purpose.id}' noemt geen rollen (allowed_roles); zonder rollen mag "
                    "niemand het vragen",
                    f"purpose '{purpose.id}' names no allowed_roles; name the roles that may "
                    "ask it",
                )
            )
        for role in purpose.allowed_roles:
            if role not in role_ids:
                problems.append(
                    _rule(
                        f"doel '{purpose.id}' noemt rol '{role}', die niet in de gesloten lijst "
                        "'roles' van het netwerk staat",
                        f"purpose '{purpose.id}' allows role '{role}', which is not in the "
                        "network's roles",
                    )
                )
        for aanmelder in purpose.on_behalf_of:
            if aanmelder.organisation not in known_orgs:
                problems.append(
                    _rule(
                        f"doel '{purpose.id}' noemt onbekende aanmelder '{aanmelder.organisation}'",
                        f"purpose '{purpose.id}' names an unknown aanmelder",
                    )
                )
        for org_id in purpose.allowed_organisations:
            org = network.organisation(org_id)
            if org is not None and org.acts_for_others and not purpose.on_behalf_of:
                problems.append(
                    _rule(
                        f"'{org_id}' heeft geen eigen grondslag en vraagt altijd namens een "
                        f"aanmelder, maar doel '{purpose.id}' noemt geen aanmelders "
                        "(on_behalf_of)",
                        f"'{org_id}' acts for others, so purpose '{purpose.id}' must list "
                        "on_behalf_of",
                    )
                )
        for domain, orgs in sorted(domain_members(network, purpose.id).items()):
            if len(orgs) < 2:
                problems.append(
                    _rule(
                        f"voor doel '{purpose.id}' antwoordt alleen {orgs[0]} met het domein "
                        f"'{domain}'; een domein heeft voor een doel minstens twee leden, anders "
                        "noemt 'een organisatie uit het domein' die ene organisatie",
                        f"a domain answers a purpose with at least two members "
                        f"('{domain}' for '{purpose.id}' has one)",
                    )
                )
        for org in network.nodes():
            disclosure = level(network, org.id, purpose.id)
            if org.professional_secrecy and disclosure is DisclosureLevel.ORGANISATION:
                problems.append(
                    _rule(
                        f"een organisatie met beroepsgeheim kan voor een doel alleen 'defer' of "
                        f"'none' zijn, of 'domain' met minstens twee leden; '{org.id}' noemt "
                        f"zichzelf voor '{purpose.id}' ('organisation')",
                        f"a secrecy-bound organisation ('{org.id}') is only defer, none or "
                        "domain, never organisation",
                    )
                )
            if disclosure is not DisclosureLevel.NONE and not _providing_basis(
                network, org.id, purpose.id
            ):
                problems.append(
                    _rule(
                        f"wie iets deelt, noemt zijn eigen verstrekkingsgrondslag: '{org.id}' "
                        f"deelt '{disclosure.value}' voor '{purpose.id}' zonder "
                        "providing_basis in een policy",
                        f"every level but none needs a policy with a providing_basis "
                        f"('{org.id}', '{purpose.id}')",
                    )
                )
    problems += access_request_problems(network)
    for policy in network.policies:
        unknown = [r for r in policy.decided_by if r not in DECIDING_PORTAL_ROLES]
        if policy.decided_by and (policy.level is not DisclosureLevel.DEFER or unknown):
            problems.append(
                _rule(
                    f"alleen bij 'defer' beslist een professional, in een portaalrol "
                    f"({', '.join(DECIDING_PORTAL_ROLES)}); '{policy.organisation}' noemt "
                    f"decided_by voor '{policy.purpose}' ('{policy.level.value}')",
                    "decided_by goes with level defer and names portal roles only",
                )
            )
    for account in network.service_accounts:
        if account.organisation not in known_orgs or account.role not in role_ids:
            problems.append(
                _rule(
                    f"serviceaccount '{account.user}' noemt een onbekende organisatie of rol",
                    "a service account names a known organisation and role",
                )
            )
    return problems


def _providing_basis(network: Network, org_id: str, purpose_id: str) -> str:
    for policy in network.policies:
        if policy.organisation == org_id and policy.purpose == purpose_id:
            return policy.providing_basis
    return ""


def check_lawful(network: Network, where: str = "") -> None:
    """Refuse a network file that breaks the handvat (:func:`network_problems`)."""
    problems = network_problems(network)
    if problems:
        raise UnlawfulConfiguration(
            (f"{where}: " if where else "") + "\n  ".join(problems),
            hint="pas het netwerkbestand aan (docs/dpo.md, 'Gesloten tenzij geregeld') / correct "
            "the network file as each rule says",
        )


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
    """``organisation``, ``domain`` and ``defer`` receive the question and look the person up
    (``defer`` for its professionals to decide, docs/adr/0037); ``none`` never does."""
    return disclosure in (
        DisclosureLevel.ORGANISATION,
        DisclosureLevel.DOMAIN,
        DisclosureLevel.DEFER,
    )


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
    """A node's answer for one person after a lookup (level organisation, domain or defer).

    A hit carries the registration's advice code, if any (the same codes for every member of a
    network, so it does not tell domain members apart). ``defer`` answers ``pending``, the same
    for a hit and a miss: its professionals decide, and the asker hears at the deadline."""
    if disclosure is DisclosureLevel.DEFER:
        return Answer(Outcome.PENDING, organisation_id=org.id, organisation_name=org.name)
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


def case_refused(disclosure: DisclosureLevel, org: Organisation) -> Answer:
    """A node's answer for a person it knows when the question's case reference (opened on the
    hit) does not match the asking organisation's pattern (docs/adr/0041): a refusal, never "not
    involved", labelled as the node's other answers are (its domain only at level ``domain``).
    A ``defer`` node answers ``pending`` as for everyone, and no professional is asked."""
    if disclosure is DisclosureLevel.DEFER:
        return Answer(Outcome.PENDING, organisation_id=org.id, organisation_name=org.name)
    if disclosure is DisclosureLevel.DOMAIN:
        return Answer(Outcome.CASE_REFUSED, domain=org.domain)
    return Answer(Outcome.CASE_REFUSED, organisation_id=org.id, organisation_name=org.name)


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
    if answer.outcome is Outcome.CASE_REFUSED and (answer.contact or answer.since):
        raise MalformedMessage("a 'case-refused' answer carries a contact point")
    if answer.outcome is Outcome.PENDING and (
        label.startswith(DOMAIN_LABEL) or answer.organisation_id != label or answer.contact
    ):
        raise MalformedMessage("a 'pending' answer names only its own organisation")
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


# A node's and the coordinator's clocks further apart than this are an alarm at the node and a
# warning at the coordinator, once per episode (a quarter of the default freshness window).
CLOCK_OFF_SECONDS = 30.0


def clock_offset(sent: float, received: float, theirs: float) -> tuple[float, float]:
    """The other side's clock minus ours, from a call sent at ``sent`` and answered at
    ``received`` (our clock) that read ``theirs`` on the other side, as NTP does: the answer was
    read somewhere in between, so the offset is taken from the middle and is uncertain by half
    the round trip. Returns (offset, uncertainty) in seconds."""
    half = max(received - sent, 0.0) / 2
    return theirs - (sent + half), half


def clock_is_off(offset: float, uncertainty: float, threshold: float = CLOCK_OFF_SECONDS) -> bool:
    """Whether an offset measured with ``uncertainty`` is surely beyond ``threshold``."""
    return abs(offset) - uncertainty > threshold


def clock_verdict(offset: float, uncertainty: float, threshold: float = CLOCK_OFF_SECONDS) -> str:
    """The coordinator's clock as a node measured it, Dutch then English, with the threshold."""
    seconds = abs(offset)
    nl_way = "voor op" if offset >= 0 else "achter op"
    en_way = "ahead of" if offset >= 0 else "behind"
    verdict = "TE VER AF" if clock_is_off(offset, uncertainty, threshold) else "goed"
    en_verdict = "TOO FAR OFF" if verdict != "goed" else "fine"
    return (
        f"de klok van de coördinator loopt {seconds:.1f} s (± {uncertainty:.1f} s) {nl_way} die "
        f"van dit knooppunt: {verdict} (grens {threshold:.0f} s) / the coordinator's clock is "
        f"{seconds:.1f} s (± {uncertainty:.1f} s) {en_way} this node's: {en_verdict} "
        f"(threshold {threshold:.0f} s)"
    )


def _offset(seconds: float) -> str:
    way = "ahead" if seconds > 0 else "behind"
    return f"{abs(seconds):.0f} s {way}"


def whose_clock(
    asked_at: dt.datetime,
    recorded_at: dt.datetime | None,
    now: dt.datetime,
    window_seconds: float,
    witnessed_at: dt.datetime | None = None,
) -> str:
    """Which side's clock is off, and by how much, when a node finds a question stale.

    The clocks that speak: the asking side's (``asked_at``, in the signed question), the
    coordinator's (``recorded_at``, in its log record; None when unknown), this node's (``now``)
    and — the strongest — the other witnesses' (``witnessed_at``: the median time in their
    cosignatures of the checkpoint the question came under, signed by them seconds before it was
    forwarded; None when unknown). Clocks that agree (within a quarter of the window, at most
    30 s) outvote the one that does not.
    """
    agree = min(window_seconds / 4, 30.0)

    def off(a: dt.datetime, b: dt.datetime) -> float:
        return (a - b).total_seconds()

    if witnessed_at is not None:
        if abs(off(now, witnessed_at)) > agree:
            return (
                f"this node's clock is off: {_offset(off(now, witnessed_at))} of the other "
                "witnesses' clocks (their cosignatures of the checkpoint)"
            )
        if recorded_at is not None and abs(off(recorded_at, witnessed_at)) > agree:
            return (
                f"the coordinator's clock is off: its record is {_offset(off(recorded_at, now))} "
                "of this node's and the other witnesses' clocks, which agree — or it forwarded "
                "an old question"
            )
        return (
            f"the asking side's clock is off: the question is {_offset(off(asked_at, now))} of "
            "this node's and the other witnesses' clocks, which agree — or it is an old question"
        )
    node_vs_asker = off(now, asked_at)
    if recorded_at is None:
        return (
            f"this node's clock is {_offset(node_vs_asker)} of the asking side's; which of the "
            "two is off is not known (no record time to compare)"
        )
    node_vs_coordinator = off(now, recorded_at)
    asker_vs_coordinator = off(asked_at, recorded_at)
    if abs(asker_vs_coordinator) <= agree:
        return (
            f"this node's clock is off: {_offset(node_vs_coordinator)} of the coordinator's and "
            "the asking side's, which agree"
        )
    if abs(node_vs_coordinator) <= agree:
        return (
            f"the asking side's clock is off: {_offset(asker_vs_coordinator)} of the "
            "coordinator's and this node's, which agree"
        )
    if abs(node_vs_asker) <= agree:
        return (
            f"the coordinator's clock is off: {_offset(-node_vs_coordinator)} of the asking "
            "side's and this node's, which agree"
        )
    return (
        f"no two clocks agree: this node is {_offset(node_vs_coordinator)} of the coordinator, "
        f"the asking side {_offset(asker_vs_coordinator)} of it"
    )


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


def access_request_deadline(received: dt.date) -> dt.date:
    """The last day to answer an access request received on ``received``: one month later
    (article 12, third paragraph, GDPR), the same day of the next month, or that month's last
    day when it is shorter (31 January: 28 or 29 February)."""
    year, month = divmod(received.year * 12 + received.month, 12)  # the next month, 0-based
    first_after = dt.date(year, month + 1, 1) + dt.timedelta(days=31)
    last_day = (first_after.replace(day=1) - dt.timedelta(days=1)).day
    return dt.date(year, month + 1, min(received.day, last_day))


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


# --- defer decided by a professional, and the late answer (docs/adr/0037) ------------------------
# What a professional decides about a deferred question, and the grounds each decision is recorded
# with (codes, never free text: a typed reason would hold personal data in a trail kept for years).
DECISIONS = ("delen", "niet-delen")
# The portal roles a network file may let decide (``decided_by``): the professionals who work with
# the person (the portal role regisseur), and, for the access-request purpose only, the FG (the
# portal role dpo, :func:`access_request_problems`); never the beheerder.
ACCESS_REQUEST_DECIDER = "dpo"
DECIDING_PORTAL_ROLES = ("regisseur", ACCESS_REQUEST_DECIDER)
DISCLOSE_GROUNDS = ("toestemming", "wettelijke-plicht", "conflict-van-plichten", "meldrecht")
DECLINE_GROUNDS = ("beroepsgeheim", "geen-toestemming", "belang-van-de-client")
# An access request (docs/adr/0039): a partner's FG lets its involvement be shown to the person
# (his right of access, article 15 GDPR), or restricts it on a ground of article 41, first
# paragraph, UAVG (article 23 GDPR) that fits a partner of this network.
ACCESS_DISCLOSE_GROUNDS = ("recht-op-inzage",)
ACCESS_DECLINE_GROUNDS = (
    "voorkoming-en-opsporing-van-strafbare-feiten",  # onder d
    "toezicht-en-inspectie",  # onder h
    "bescherming-van-de-betrokkene",  # onder i
    "rechten-en-vrijheden-van-anderen",  # onder i
)
# The longest term a partner's FG has to decide about an access request: five days (three
# working days and a weekend), so that the one month of article 12 GDPR keeps room for the letter.
ACCESS_REQUEST_MAX_DEFER_HOURS = 120.0
# The kinds of late message the coordinator's mailbox carries.
LATE_KINDS = ("decision", "signal")
# How long the coordinator keeps a late message nobody collected.
MAILBOX_DAYS = 30


def defer_deadline(asked_at: dt.datetime, purpose: Purpose) -> dt.datetime:
    """When a deferred question's term ends: the question's signed time plus the purpose's
    ``defer_hours``. Neither the asker nor the node chooses it, and both compute the same."""
    return asked_at + dt.timedelta(hours=purpose.defer_hours)


def deciding_roles(network: Network, org_id: str, purpose_id: str) -> frozenset[str]:
    """The portal roles of ``org_id`` that decide its deferred questions for a purpose: the
    policy's ``decided_by``; nobody when the level is not ``defer`` or the policy names none."""
    for policy in network.policies:
        if policy.organisation == org_id and policy.purpose == purpose_id:
            if policy.level is DisclosureLevel.DEFER:
                return frozenset(policy.decided_by)
            return frozenset()
    return frozenset()


def check_decision(
    network: Network,
    org_id: str,
    purpose_id: str,
    roles: frozenset[str],
    decision: str,
    ground: str,
    now: dt.datetime,
    deadline: dt.datetime,
) -> None:
    """A professional's decision that may be recorded: by a role the network file lets decide
    for this organisation and purpose, before the term ends, a known decision with a ground of
    its own list."""
    allowed = deciding_roles(network, org_id, purpose_id)
    if not allowed & roles:
        raise PurposeNotAllowed(
            f"your role may not decide about questions for purpose '{purpose_id}' here",
            hint="the network file's policy for this purpose names who decides (decided_by)",
        )
    if now >= deadline:
        raise BadInput(
            "the term of this question has passed; the asker was told no information was given",
            hint="contact the asker outside this system if sharing is still needed",
        )
    if decision not in DECISIONS:
        raise BadInput(f"'{decision[:20]}' is not a decision", hint="delen or niet-delen")
    disclose, decline = decision_grounds(network, purpose_id)
    grounds = disclose if decision == "delen" else decline
    if ground not in grounds:
        raise BadInput(
            f"'{ground[:40]}' is not a ground for '{decision}'", hint="one of " + ", ".join(grounds)
        )


def decision_grounds(network: Network, purpose_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The grounds to share and to decline with, for a purpose: the access-request purpose has
    its own (the person's right of access; a restriction of article 41 UAVG), every other
    purpose the professional's (consent, legal duty, ...; professional secrecy, ...)."""
    if purpose_id and purpose_id == network.access_requests.purpose:
        return ACCESS_DISCLOSE_GROUNDS, ACCESS_DECLINE_GROUNDS
    return DISCLOSE_GROUNDS, DECLINE_GROUNDS


def access_request_problems(network: Network) -> list[str]:
    """The restriction step of an access request (artikel 23 AVG / artikel 41 UAVG, docs/adr/0039).

    Every partner is asked, per request, whether its involvement may be shown to the person: at
    every node the access-request purpose is ``defer`` decided by its FG (portal role ``dpo``),
    within at most :data:`ACCESS_REQUEST_MAX_DEFER_HOURS`. A partner on ``organisation`` or
    ``domain`` would be shown without being asked, and is refused. ``none`` stays lawful (closed
    unless configured: it tells nothing, and the letter says it does not answer access requests
    through the system). The FG decides nothing else (``dpo`` in ``decided_by`` of another
    purpose), and a regisseur does not decide an access request."""
    problems: list[str] = []
    purpose = network.purpose(network.access_requests.purpose)
    for policy in network.policies:
        if ACCESS_REQUEST_DECIDER in policy.decided_by and (
            purpose is None or policy.purpose != purpose.id
        ):
            problems.append(
                _rule(
                    f"de FG (portaalrol '{ACCESS_REQUEST_DECIDER}') beslist alleen over een "
                    f"inzageverzoek; '{policy.organisation}' noemt hem in decided_by voor "
                    f"'{policy.purpose}'",
                    "the FG decides only about access requests (access_requests.purpose)",
                )
            )
    if purpose is None:
        return problems
    if purpose.defer_hours > ACCESS_REQUEST_MAX_DEFER_HOURS:
        problems.append(
            _rule(
                f"de termijn waarin een partner beslist over een inzageverzoek is ten hoogste "
                f"{ACCESS_REQUEST_MAX_DEFER_HOURS:.0f} uur, zodat de maand van artikel 12 AVG "
                f"ruimte houdt voor de brief; doel '{purpose.id}' geeft {purpose.defer_hours:g}",
                f"an access request's defer_hours is at most {ACCESS_REQUEST_MAX_DEFER_HOURS:.0f}",
            )
        )
    for org in network.nodes():
        disclosure = level(network, org.id, purpose.id)
        deciders = sorted(deciding_roles(network, org.id, purpose.id))
        if disclosure is DisclosureLevel.NONE:
            continue
        if disclosure is not DisclosureLevel.DEFER or deciders != [ACCESS_REQUEST_DECIDER]:
            problems.append(
                _rule(
                    f"bij een inzageverzoek wordt elke partner eerst gevraagd of zijn "
                    f"betrokkenheid getoond mag worden, en kan hij dat per verzoek beperken "
                    f"(artikel 23 AVG / artikel 41 UAVG): '{org.id}' moet voor '{purpose.id}' "
                    f"'defer' zijn met decided_by = ['{ACCESS_REQUEST_DECIDER}'] (zijn FG), "
                    f"niet '{disclosure.value}'"
                    + (f" met decided_by {deciders}" if deciders else ""),
                    f"the access-request purpose is defer decided by the FG at every partner "
                    f"('{org.id}')",
                )
            )
    return problems


def access_request_ask_by(received: dt.date, purpose: Purpose) -> dt.date:
    """The last day to make the letter (and so ask the partners) for a request received on
    ``received`` so that the partners' term ends before the one-month deadline: the deadline
    less the term in whole days, less one day to finish and send the letter."""
    term_days = math.ceil(purpose.defer_hours / 24)
    return access_request_deadline(received) - dt.timedelta(days=term_days + 1)


def late_answer(org: Organisation, found: Found | None, decision: str) -> Answer:
    """One person's late answer: the organisation with its contact point when a professional
    decided to share, else ``no-disclosure`` — the same for a miss, a refusal and a term that
    passed undecided, so the asker cannot tell them apart."""
    if found is not None and decision == "delen":
        return Answer(
            Outcome.INVOLVED,
            organisation_id=org.id,
            organisation_name=org.name,
            domain=found.domain,
            contact=found.contact,
            since=found.since.isoformat(),
        )
    return Answer(Outcome.NO_DISCLOSURE, organisation_id=org.id, organisation_name=org.name)


def may_watch(disclosure: DisclosureLevel) -> bool:
    """Only a node that names itself keeps a watch: a signal comes from one organisation, so a
    domain-only partner would be named by it, and a defer partner's professional decides instead."""
    return disclosure is DisclosureLevel.ORGANISATION


def watch_until(asked_at: dt.datetime, watch_days: int) -> dt.datetime:
    """Until when a question's watch is kept at a node: its signed time plus ``watch_days``."""
    return asked_at + dt.timedelta(days=watch_days)


def check_late_answer(answer: Answer, label: str) -> None:
    """What a late answer under ``label`` may say; anything else is a malformed message."""
    if answer.outcome not in LATE_OUTCOMES:
        raise MalformedMessage(f"a late answer cannot be '{answer.outcome}'")
    if label.startswith(DOMAIN_LABEL) or answer.organisation_id != label:
        raise MalformedMessage(
            f"a late answer labelled '{label[:64]}' is from another organisation"
        )
    if answer.outcome is Outcome.NO_DISCLOSURE and (answer.contact or answer.since):
        raise MalformedMessage("a 'no-disclosure' answer carries a contact point")
