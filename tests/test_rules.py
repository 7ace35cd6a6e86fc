"""The rules that decide (betrokken/rules.py), as tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from betrokken import rules
from betrokken.answer import Answer, Outcome
from betrokken.audit.record import Event
from betrokken.config.schema import DisclosureLevel, Network
from betrokken.crypto import question as q
from betrokken.errors import MalformedMessage, PurposeNotAllowed, UnknownPurpose

# The test network (tests/conftest.py): zvh-test asks zvh-triage, politie-test asks zsm-context,
# gemeente-test asks wijkteam-coordination; ggz-test defers for zsm-context and discloses only its
# domain for zvh-triage.


@pytest.mark.parametrize(
    ("requester", "purpose", "role", "behalf", "refusal"),
    [
        ("zvh-test", "zvh-triage", "regisseur", "zvh-test", None),
        ("zvh-test", "zvh-triage", "regisseur", "politie-test", None),  # for the aanmelder
        ("politie-test", "zsm-context", "", "politie-test", None),
        ("zvh-test", "zvh-triage", "regisseur", "stranger", PurposeNotAllowed),
        ("zvh-test", "zsm-context", "regisseur", "zvh-test", PurposeNotAllowed),
        ("ggz-test", "zvh-triage", "regisseur", "ggz-test", PurposeNotAllowed),
        ("zvh-test", "fishing", "regisseur", "zvh-test", UnknownPurpose),
        ("stranger", "zvh-triage", "regisseur", "stranger", PurposeNotAllowed),
    ],
)
def test_who_may_ask_what_on_whose_behalf(
    network: Network, requester: str, purpose: str, role: str, behalf: str, refusal: type | None
) -> None:
    if refusal is None:
        assert rules.check_may_ask(network, requester, purpose, role, behalf).id == purpose
        assert rules.may_ask(network, requester, purpose, role, behalf)
    else:
        with pytest.raises(refusal):
            rules.check_may_ask(network, requester, purpose, role, behalf)
        assert not rules.may_ask(network, requester, purpose, role, behalf)


@pytest.mark.parametrize(
    ("requester", "purpose", "keys"),
    [
        # The asker's own key and the keys of the nodes the purpose asks; never a none/defer node.
        ("zvh-test", "zvh-triage", ["zvh-test", "politie-test", "gemeente-test", "ggz-test"]),
        ("politie-test", "zsm-context", ["politie-test", "zvh-test", "gemeente-test"]),
    ],
)
def test_the_keys_a_question_is_evaluated_under(
    network: Network, requester: str, purpose: str, keys: list[str]
) -> None:
    assert sorted(rules.question_keys(network, purpose, requester)) == sorted(keys)
    assert rules.question_keys(network, purpose, requester)[0] == requester


def test_a_signal_is_left_only_as_long_as_the_purpose_allows(network: Network) -> None:
    purpose = network.purpose("zvh-triage")
    assert purpose is not None and purpose.watch_days == 0
    rules.check_watch_days(purpose, 0)
    with pytest.raises(PurposeNotAllowed):
        rules.check_watch_days(purpose, 1)
    rules.check_watch_days(purpose.model_copy(update={"watch_days": 90}), 90)


def test_a_purpose_with_roles_admits_only_those_roles(network: Network) -> None:
    purposes = [
        p.model_copy(update={"allowed_roles": ["procesregisseur"]}) if p.id == "zvh-triage" else p
        for p in network.purposes
    ]
    strict = network.model_copy(update={"purposes": purposes})
    assert rules.may_ask(strict, "zvh-test", "zvh-triage", "procesregisseur")
    with pytest.raises(PurposeNotAllowed) as info:
        rules.check_may_ask(strict, "zvh-test", "zvh-triage", "stagiair", "zvh-test")
    assert "procesregisseur" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("requester", "purpose", "asked", "by_policy"),
    [
        # Every other node that looks something up gets an envelope; none/defer nodes get nothing.
        ("zvh-test", "zvh-triage", {"politie-test", "gemeente-test", "ggz-test"}, set()),
        ("politie-test", "zsm-context", {"zvh-test", "gemeente-test"}, {"ggz-test"}),
        ("gemeente-test", "wijkteam-coordination", {"zvh-test", "politie-test", "ggz-test"}, set()),
    ],
)
def test_which_nodes_are_asked_and_which_answer_by_policy(
    network: Network, requester: str, purpose: str, asked: set[str], by_policy: set[str]
) -> None:
    assert {o.id for o in rules.nodes_to_ask(network, purpose, requester)} == asked
    assert {o.id for o in rules.policy_organisations(network, purpose, requester)} == by_policy
    assert requester not in asked | by_policy  # never asked about its own


@pytest.mark.parametrize(
    ("level", "looks_up"),
    [
        (DisclosureLevel.ORGANISATION, True),
        (DisclosureLevel.DOMAIN, True),
        (DisclosureLevel.NONE, False),
        (DisclosureLevel.DEFER, False),
    ],
)
def test_only_organisation_and_domain_look_anything_up(
    level: DisclosureLevel, looks_up: bool
) -> None:
    assert rules.needs_lookup(level) is looks_up


def test_policy_answers_are_the_same_for_every_person(network: Network) -> None:
    ggz = network.organisation("ggz-test")
    assert ggz is not None
    deferred = rules.policy_answer(DisclosureLevel.DEFER, ggz)
    declined = rules.policy_answer(DisclosureLevel.NONE, ggz)
    assert deferred.outcome is Outcome.DEFERRED and deferred.by_policy
    assert deferred.contact == ggz.contact and deferred.message == ggz.defer_message
    assert declined.outcome is Outcome.DECLINED and declined.by_policy
    assert rules.policy_answer(DisclosureLevel.DEFER, ggz) == deferred


@dataclass(frozen=True)
class Found:
    since: dt.date = dt.date(2026, 1, 2)
    contact: str = "wijkagent, 0900-8844"
    domain: str = "veiligheid"
    disclosure: DisclosureLevel | None = None
    advice: str | None = None


@pytest.mark.parametrize(
    ("level", "found", "outcome", "named", "contact"),
    [
        (DisclosureLevel.ORGANISATION, Found(), Outcome.INVOLVED, True, "wijkagent, 0900-8844"),
        (DisclosureLevel.ORGANISATION, None, Outcome.NOT_INVOLVED, True, ""),
        # A registration may narrow what is disclosed, never widen it.
        (
            DisclosureLevel.ORGANISATION,
            Found(disclosure=DisclosureLevel.DOMAIN),
            Outcome.INVOLVED_DOMAIN_ONLY,
            False,
            "desk",
        ),
        (DisclosureLevel.DOMAIN, Found(), Outcome.INVOLVED_DOMAIN_ONLY, False, "desk"),
        (DisclosureLevel.DOMAIN, None, Outcome.NOT_INVOLVED, False, ""),
    ],
)
def test_what_a_node_discloses_after_a_lookup(
    network: Network,
    level: DisclosureLevel,
    found: Found | None,
    outcome: Outcome,
    named: bool,
    contact: str,
) -> None:
    org = network.organisation("politie-test")
    assert org is not None
    answer = rules.answer_for(level, org, found, "desk")
    assert answer.outcome is outcome
    assert bool(answer.organisation_id) is named
    assert answer.contact == contact
    assert (answer.since == "2026-01-02") is (outcome is Outcome.INVOLVED)


@pytest.mark.parametrize(
    ("level", "found", "advice"),
    [
        (DisclosureLevel.ORGANISATION, Found(advice="eerst-contact"), "eerst-contact"),
        (DisclosureLevel.DOMAIN, Found(advice="eerst-contact"), "eerst-contact"),
        (DisclosureLevel.ORGANISATION, None, ""),
        (DisclosureLevel.ORGANISATION, Found(), ""),
    ],
)
def test_a_hit_carries_its_registrations_advice(
    network: Network, level: DisclosureLevel, found: Found | None, advice: str
) -> None:
    org = network.organisation("politie-test")
    assert org is not None
    assert rules.answer_for(level, org, found, "desk").advice == advice


def test_a_reply_may_carry_only_an_advice_the_network_file_gives(network: Network) -> None:
    from betrokken.config.schema import AdviceCode

    with_codes = network.model_copy(
        update={"advice_codes": [AdviceCode(code="eerst-contact", label="Neem eerst contact op")]}
    )
    hit = Answer(Outcome.INVOLVED, organisation_id="politie-test", advice="eerst-contact")
    rules.check_reply(hit, "politie-test", with_codes)
    for bad, net in (
        (Answer(Outcome.INVOLVED, organisation_id="politie-test", advice="bel-niet"), with_codes),
        (hit, network),  # a network without that code
        (
            Answer(Outcome.NOT_INVOLVED, organisation_id="politie-test", advice="eerst-contact"),
            with_codes,
        ),
    ):
        with pytest.raises(MalformedMessage):
            rules.check_reply(bad, "politie-test", net)


def test_domain_only_nodes_share_a_label_and_everyone_else_has_their_own(
    network: Network,
) -> None:
    ggz = network.organisation("ggz-test")
    assert ggz is not None
    assert rules.reply_label(network, ggz, "zvh-triage") == "domain:zorg"
    assert rules.reply_label(network, ggz, "wijkteam-coordination") == "ggz-test"
    groups = rules.reply_groups(network, "zvh-triage", "zvh-test")
    assert groups == {
        "politie-test": ["politie-test"],
        "gemeente-test": ["gemeente-test"],
        "domain:zorg": ["ggz-test"],
    }


@pytest.mark.parametrize(
    ("label", "answer", "allowed"),
    [
        ("politie-test", Answer(Outcome.INVOLVED, organisation_id="politie-test"), True),
        ("politie-test", Answer(Outcome.NOT_INVOLVED, organisation_id="politie-test"), True),
        ("politie-test", Answer(Outcome.INVOLVED_DOMAIN_ONLY, domain="veiligheid"), True),
        ("politie-test", Answer(Outcome.INVOLVED, organisation_id="gemeente-test"), False),
        ("politie-test", Answer(Outcome.NOT_INVOLVED), False),
        ("politie-test", Answer(Outcome.DEFERRED, organisation_id="politie-test"), False),
        ("politie-test", Answer(Outcome.UNREACHABLE), False),
        ("domain:zorg", Answer(Outcome.INVOLVED_DOMAIN_ONLY, domain="zorg"), True),
        ("domain:zorg", Answer(Outcome.NOT_INVOLVED, domain="zorg"), True),
        ("domain:zorg", Answer(Outcome.INVOLVED, domain="zorg"), False),
        ("domain:zorg", Answer(Outcome.NOT_INVOLVED, domain="zorg", organisation_id="ggz"), False),
        ("domain:zorg", Answer(Outcome.NOT_INVOLVED, domain="wonen"), False),
    ],
)
def test_what_a_reply_under_a_label_may_say(label: str, answer: Answer, allowed: bool) -> None:
    if allowed:
        rules.check_reply(answer, label)
    else:
        with pytest.raises(MalformedMessage):
            rules.check_reply(answer, label)


NOT = Answer(Outcome.NOT_INVOLVED, organisation_id="politie-test")
HIT = Answer(Outcome.INVOLVED, organisation_id="politie-test")


@pytest.mark.parametrize(
    ("replies", "outcomes", "complete"),
    [
        # Everyone answered.
        (
            [rules.Reply("politie-test", [HIT]), rules.Reply("gemeente-test", [NOT])],
            ["deferred", "involved", "not-involved"],
            True,
        ),
        # No reply from a node is never a "no" (P5).
        (
            [rules.Reply("politie-test", None), rules.Reply("gemeente-test", [NOT])],
            ["deferred", "unreachable", "not-involved"],
            False,
        ),
        (
            [rules.Reply("politie-test", None, Outcome.ERROR), rules.Reply("gemeente-test", [NOT])],
            ["deferred", "error", "not-involved"],
            False,
        ),
    ],
)
def test_answers_combine_into_completeness(
    network: Network, replies: list[rules.Reply], outcomes: list[str], complete: bool
) -> None:
    # politie-test asking zsm-context: ggz-test defers by policy (first), then the named replies.
    [person] = rules.combine(network, "zsm-context", "zvh-test", replies, 1)
    assert [r.answer.outcome.value for r in person.answers] == outcomes
    assert person.complete is complete
    assert person.answers[0].answer.by_policy


def test_anonymous_answers_come_last_sorted_so_their_order_says_nothing(network: Network) -> None:
    replies = [
        rules.Reply("domain:zorg", [Answer(Outcome.NOT_INVOLVED, domain="zorg")]),
        rules.Reply("domain:zorg", [Answer(Outcome.INVOLVED_DOMAIN_ONLY, domain="zorg")]),
        rules.Reply("politie-test", [HIT]),
    ]
    [person] = rules.combine(network, "zvh-triage", "zvh-test", replies, 1)
    assert [(r.organisation_id, r.answer.outcome.value) for r in person.answers] == [
        ("politie-test", "involved"),
        ("", "involved-domain-only"),
        ("", "not-involved"),
    ]


@pytest.mark.parametrize(
    ("seconds", "fresh"), [(0, True), (119, True), (-119, True), (121, False), (-121, False)]
)
def test_a_question_is_fresh_within_the_window_either_way(seconds: int, fresh: bool) -> None:
    now = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
    assert rules.is_fresh(now + dt.timedelta(seconds=seconds), now, 120) is fresh


def test_a_record_differs_from_its_question_field_by_field(network: Network) -> None:
    from betrokken.crypto.note import NoteKey

    key = NoteKey.generate(q.question_key_name(network.name, "zvh-test"))
    question = q.Question(
        network=network.name,
        answer_id="00000000-0000-4000-8000-000000000001",
        requester="zvh-test",
        on_behalf_of="politie-test",
        purpose="zvh-triage",
        role="regisseur",
        kind=q.Kind.PERSON,
        at=dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
        nonce="00" * 16,
        persons=1,
        envelopes=("ab" * 32,),
        watch_days=0,
        tags=("cd" * 32,),
    )
    note = q.sign_question(question, key)
    purpose = network.purpose("zvh-triage")
    assert purpose is not None
    entry = rules.search_entry_for(question, note, purpose, question.at, "peer")
    assert entry.event is Event.SEARCH and entry.user == "" and not entry.subjects
    assert rules.record_problems(entry, question, note, network) == []
    # The search record names the aanmelder and the kind, and not the nodes asked (every node
    # that answers receives it).
    assert entry.details["on_behalf_of"] == "politie-test" and entry.details["kind"] == "person"
    assert "asked" not in entry.details
    from dataclasses import replace

    cases = {
        "organisation": replace(entry, organisation="politie-test"),
        "role": replace(entry, role="beheerder"),
        "purpose": replace(entry, purpose="zsm-context"),
        "answer id": replace(entry, answer_id="other"),
        "legal basis": replace(entry, legal_basis="none"),
        "persons": replace(entry, details={**entry.details, "persons": "2"}),
        "on behalf of": replace(entry, details={**entry.details, "on_behalf_of": "zvh-test"}),
        "kind": replace(entry, details={**entry.details, "kind": "gezin"}),
        "signed question": replace(entry, details={**entry.details, "question": "x"}),
        "event": replace(entry, event=Event.OUTCOME),
    }
    for field, changed in cases.items():
        assert rules.record_problems(changed, question, note, network) == [field]
    # A record that tells the nodes more than the question (which nodes were asked) is refused.
    leaky = replace(entry, details={**entry.details, "asked": "politie-test,ggz-test"})
    assert rules.record_problems(leaky, question, note, network) == ["nothing else"]


@pytest.mark.parametrize(
    ("received", "deadline"),
    [
        (dt.date(2026, 11, 2), dt.date(2026, 12, 2)),
        (dt.date(2026, 12, 15), dt.date(2027, 1, 15)),
        (dt.date(2026, 1, 31), dt.date(2026, 2, 28)),
        (dt.date(2028, 1, 31), dt.date(2028, 2, 29)),
        (dt.date(2026, 3, 31), dt.date(2026, 4, 30)),
        (dt.date(2026, 2, 28), dt.date(2026, 3, 28)),
    ],
)
def test_an_access_request_is_answered_within_one_month_of_receipt(
    received: dt.date, deadline: dt.date
) -> None:
    assert rules.access_request_deadline(received) == deadline
