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
from betrokken.errors import (
    AanmelderNotAllowed,
    MalformedMessage,
    PurposeNotAllowed,
    UnknownPurpose,
)

# The test network (tests/conftest.py): zvh-test asks zvh-triage, politie-test asks zsm-context,
# gemeente-test asks wijkteam-coordination; every purpose admits the role "regisseur" only;
# zvh-triage may be asked on behalf of politie-test or gemeente-test. ggz-test (beroepsgeheim)
# defers for zsm-context and, with veilig-thuis-test, discloses only the domain zorg elsewhere.

ZORG, VT = "ggz-test", "veilig-thuis-test"


@pytest.mark.parametrize(
    ("requester", "purpose", "role", "behalf", "refusal"),
    [
        ("zvh-test", "zvh-triage", "regisseur", "zvh-test", None),
        ("zvh-test", "zvh-triage", "regisseur", "politie-test", None),  # for the aanmelder
        ("zvh-test", "zvh-triage", "regisseur", "gemeente-test", None),
        ("politie-test", "zsm-context", "regisseur", "politie-test", None),
        # Closed roles: only what the purpose lists, whatever the requester signs.
        ("politie-test", "zsm-context", "", "politie-test", PurposeNotAllowed),
        ("zvh-test", "zvh-triage", "dpo", "zvh-test", PurposeNotAllowed),
        ("zvh-test", "zvh-triage", "fg", "zvh-test", PurposeNotAllowed),  # a role, not allowed
        ("zvh-test", "zvh-triage", "<b>anyone</b>", "zvh-test", PurposeNotAllowed),
        # An aanmelder the purpose does not list, though the network knows it: its own error.
        ("zvh-test", "zvh-triage", "regisseur", "ggz-test", AanmelderNotAllowed),
        ("politie-test", "zsm-context", "regisseur", "zvh-test", AanmelderNotAllowed),
        ("zvh-test", "zvh-triage", "regisseur", "stranger", AanmelderNotAllowed),
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
        ("zvh-test", "zvh-triage", ["zvh-test", "politie-test", "gemeente-test", ZORG, VT]),
        ("politie-test", "zsm-context", ["politie-test", "zvh-test", "gemeente-test", ZORG, VT]),
    ],
)
def test_the_keys_a_question_is_evaluated_under(
    network: Network, requester: str, purpose: str, keys: list[str]
) -> None:
    assert sorted(rules.question_keys(network, purpose, requester)) == sorted(keys)
    assert rules.question_keys(network, purpose, requester)[0] == requester


def test_a_signal_is_left_only_as_long_as_the_purpose_allows(network: Network) -> None:
    purpose = network.purpose("zvh-triage")
    assert purpose is not None and purpose.watch_days == 90  # the development network's triage
    rules.check_watch_days(purpose, 0)
    rules.check_watch_days(purpose, 90)
    with pytest.raises(PurposeNotAllowed):
        rules.check_watch_days(purpose, 91)
    with pytest.raises(PurposeNotAllowed):
        rules.check_watch_days(purpose.model_copy(update={"watch_days": 0}), 1)


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
        # Every other node that looks something up gets an envelope, a defer node too (its
        # professionals decide on a hit); a none node gets nothing.
        ("zvh-test", "zvh-triage", {"politie-test", "gemeente-test", ZORG, VT}, set()),
        ("politie-test", "zsm-context", {"zvh-test", "gemeente-test", ZORG, VT}, set()),
        ("gemeente-test", "wijkteam-coordination", {"zvh-test", "politie-test", ZORG, VT}, set()),
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
        (DisclosureLevel.DEFER, True),
    ],
)
def test_every_level_but_none_looks_the_person_up(level: DisclosureLevel, looks_up: bool) -> None:
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
    assert rules.reply_label(network, ggz, "wijkteam-coordination") == "domain:zorg"
    groups = rules.reply_groups(network, "zvh-triage", "zvh-test")
    assert groups == {
        "politie-test": ["politie-test"],
        "gemeente-test": ["gemeente-test"],
        "domain:zorg": [ZORG, VT],  # two members: the label names neither
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
        # A refusal for the case reference: labelled as the node's other answers, no contact.
        ("politie-test", Answer(Outcome.CASE_REFUSED, organisation_id="politie-test"), True),
        ("politie-test", Answer(Outcome.CASE_REFUSED, organisation_id="gemeente-test"), False),
        (
            "politie-test",
            Answer(Outcome.CASE_REFUSED, organisation_id="politie-test", contact="0900"),
            False,
        ),
        ("domain:zorg", Answer(Outcome.CASE_REFUSED, domain="zorg"), True),
        ("domain:zorg", Answer(Outcome.CASE_REFUSED, domain="zorg", organisation_id="ggz"), False),
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
WAIT = rules.Reply("ggz-test", [Answer(Outcome.PENDING, organisation_id="ggz-test")])


@pytest.mark.parametrize(
    ("replies", "outcomes", "complete"),
    [
        # Everyone answered.
        (
            [rules.Reply("politie-test", [HIT]), rules.Reply("gemeente-test", [NOT]), WAIT],
            ["involved", "not-involved", "pending"],
            True,
        ),
        # No reply from a node is never a "no" (P5).
        (
            [rules.Reply("politie-test", None), rules.Reply("gemeente-test", [NOT]), WAIT],
            ["unreachable", "not-involved", "pending"],
            False,
        ),
        (
            [
                rules.Reply("politie-test", None, Outcome.ERROR),
                rules.Reply("gemeente-test", [NOT]),
                WAIT,
            ],
            ["error", "not-involved", "pending"],
            False,
        ),
    ],
)
def test_answers_combine_into_completeness(
    network: Network, replies: list[rules.Reply], outcomes: list[str], complete: bool
) -> None:
    # zsm-context: ggz-test defers, so it answers "pending" (answered, never a "no"), in
    # network order with the other named replies.
    [person] = rules.combine(network, "zsm-context", "zvh-test", replies, 1)
    assert [r.answer.outcome.value for r in person.answers] == outcomes
    assert person.complete is complete


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


_T = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("asked", "recorded", "now", "names"),
    [
        (0, 1, 181, "this node's clock is off: 180 s ahead"),  # the node's clock +3 min
        (0, 1, -179, "this node's clock is off: 180 s behind"),
        (-180, 0, 1, "the asking side's clock is off: 180 s behind"),
        (0, 180, 2, "the coordinator's clock is off: 178 s ahead"),
        (0, 200, 500, "no two clocks agree"),
        (0, None, 200, "which of the two is off is not known"),
    ],
)
def test_a_stale_question_names_whose_clock_is_off_and_by_how_much(
    asked: int, recorded: int | None, now: int, names: str
) -> None:
    verdict = rules.whose_clock(
        _at(asked), None if recorded is None else _at(recorded), _at(now), 120
    )
    assert names in verdict


def _at(seconds: int) -> dt.datetime:
    return _T + dt.timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("asked", "recorded", "now", "witnessed", "names"),
    [
        (0, 1, 181, 1, "this node's clock is off: 180 s ahead of the other witnesses'"),
        # The coordinator replays an old question under a fresh checkpoint: the node's clock
        # agrees with the witnesses', so it is not the node's.
        (-600, -600, 0, 0, "the coordinator's clock is off"),
        (-600, 0, 0, 1, "the asking side's clock is off: the question is 600 s behind"),
    ],
)
def test_the_other_witnesses_cosigning_times_outvote_a_clock_that_is_off(
    asked: int, recorded: int, now: int, witnessed: int, names: str
) -> None:
    verdict = rules.whose_clock(_at(asked), _at(recorded), _at(now), 120, _at(witnessed))
    assert names in verdict


@pytest.mark.parametrize(
    ("sent", "received", "theirs", "offset", "uncertainty"),
    [
        (100.0, 100.2, 100.1, 0.0, 0.1),  # the same clocks: read in the middle of the call
        (100.0, 100.2, 40.1, -60.0, 0.1),  # the coordinator a minute behind
        (100.0, 101.0, 130.5, 30.0, 0.5),
        (100.0, 99.0, 100.0, 0.0, 0.0),  # a clock stepped back during the call: no negative trip
    ],
)
def test_the_coordinators_clock_is_measured_from_the_middle_of_the_call(
    sent: float, received: float, theirs: float, offset: float, uncertainty: float
) -> None:
    measured = rules.clock_offset(sent, received, theirs)
    assert measured == pytest.approx((offset, uncertainty))


@pytest.mark.parametrize(
    ("offset", "uncertainty", "off", "shown"),
    [
        (0.4, 0.1, False, "loopt 0.4 s (± 0.1 s) voor op die van dit knooppunt: goed (grens 30 s)"),
        (-31.0, 0.5, True, "loopt 31.0 s (± 0.5 s) achter op die van dit knooppunt: TE VER AF"),
        (
            30.5,
            1.0,
            False,
            "the coordinator's clock is 30.5 s (± 1.0 s) ahead of this node's: fine",
        ),
        (-120.0, 0.0, True, "120.0 s (± 0.0 s) behind this node's: TOO FAR OFF (threshold 30 s)"),
    ],
)
def test_a_clock_offset_is_too_far_off_only_when_it_surely_is_beyond_the_threshold(
    offset: float, uncertainty: float, off: bool, shown: str
) -> None:
    assert rules.clock_is_off(offset, uncertainty) is off
    verdict = rules.clock_verdict(offset, uncertainty)
    assert shown in verdict
    assert verdict.index("de klok") < verdict.index("the coordinator's clock")  # Dutch first


# --- a lawful network file (closed unless configured) ----------------------------------------
def _purpose(network: Network, purpose_id: str, **changes: object) -> Network:
    purposes = [p.model_copy(update=changes) if p.id == purpose_id else p for p in network.purposes]
    return network.model_copy(update={"purposes": purposes})


def _policy(network: Network, org: str, purpose: str, **changes: object) -> Network:
    policies = [
        p.model_copy(update=changes) if (p.organisation, p.purpose) == (org, purpose) else p
        for p in network.policies
    ]
    return network.model_copy(update={"policies": policies})


def _org(network: Network, org_id: str, **changes: object) -> Network:
    orgs = [o.model_copy(update=changes) if o.id == org_id else o for o in network.organisations]
    return network.model_copy(update={"organisations": orgs})


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        # Closed roles: a purpose without roles, or with a role outside the closed list.
        (lambda n: _purpose(n, "zsm-context", allowed_roles=[]), "noemt geen rollen"),
        (lambda n: _purpose(n, "zsm-context", allowed_roles=["dpo"]), "gesloten lijst"),
        # k-anonymous domains: the second zorg member names itself, so the GGZ is alone.
        (
            lambda n: _policy(n, VT, "zvh-triage", level=DisclosureLevel.ORGANISATION),
            "minstens twee leden",
        ),
        # Professional secrecy: the GGZ naming itself, even with a providing basis.
        (
            lambda n: _policy(n, ZORG, "zsm-context", level=DisclosureLevel.ORGANISATION),
            "beroepsgeheim",
        ),
        # A providing basis for every level but none; the default is none.
        (lambda n: _policy(n, "politie-test", "zvh-triage", providing_basis=""), "grondslag"),
        (
            lambda n: _org(
                n.model_copy(
                    update={"policies": [p for p in n.policies if p.organisation != "politie-test"]}
                ),
                "politie-test",
                default_disclosure=DisclosureLevel.ORGANISATION,
            ),
            "verstrekkingsgrondslag",
        ),
        # The ZVH has no basis of its own: a purpose it asks must list aanmelders.
        (
            lambda n: _purpose(
                _org(n, "zvh-test", acts_for_others=True), "zvh-triage", on_behalf_of=[]
            ),
            "namens een aanmelder",
        ),
    ],
)
def test_a_network_file_that_breaks_a_rule_is_refused_naming_the_rule(
    network: Network, change: object, rule: str
) -> None:
    from betrokken.errors import UnlawfulConfiguration

    assert rules.network_problems(network) == []  # the development network is lawful
    broken = change(network)  # type: ignore[operator]
    problems = rules.network_problems(broken)
    assert any(rule in problem for problem in problems), problems
    assert all(problem.startswith("Regel: ") and "/ Rule: " in problem for problem in problems)
    with pytest.raises(UnlawfulConfiguration) as info:
        rules.check_lawful(broken)
    assert info.value.exit_code == 9


def test_without_a_policy_an_organisation_discloses_nothing(network: Network) -> None:
    bare = network.model_copy(update={"policies": []})
    assert all(rules.level(bare, o.id, "zvh-triage") is DisclosureLevel.NONE for o in bare.nodes())
    assert rules.nodes_to_ask(bare, "zvh-triage", "zvh-test") == []
    assert rules.network_problems(bare) == []  # closed is lawful


def test_an_organisation_that_acts_for_others_must_name_its_aanmelder(network: Network) -> None:
    zvh_for_others = _org(network, "zvh-test", acts_for_others=True)
    with pytest.raises(PurposeNotAllowed) as info:
        rules.check_may_ask(zvh_for_others, "zvh-test", "zvh-triage", "regisseur", "zvh-test")
    assert "politie-test" in (info.value.hint or "")
    rules.check_may_ask(zvh_for_others, "zvh-test", "zvh-triage", "regisseur", "politie-test")
    assert rules.aanmelder_basis(network, "zvh-triage", "politie-test").startswith("artikel 20")
    assert rules.aanmelder_basis(network, "zvh-triage", "ggz-test") == ""
    with pytest.raises(AanmelderNotAllowed):  # its own error, under the purpose refusals
        rules.check_may_ask(zvh_for_others, "zvh-test", "zvh-triage", "regisseur", "zvh-test")


@pytest.mark.parametrize(
    ("requester", "behalf", "recorded"),
    [
        # Asked on its own basis: the record names no aanmelder of its own.
        ("zvh-test", "zvh-test", {}),
        ("zvh-test", "", {}),
        # For a listed aanmelder: its basis as the network file states it.
        ("zvh-test", "politie-test", {"on_behalf_of": "politie-test", "aanmelder_basis": "*"}),
        # An aanmelder the file does not (or no longer) list: said so, never an empty basis.
        (
            "zvh-test",
            "ggz-test",
            {"on_behalf_of": "ggz-test", "aanmelder_basis": "(not in the network file)"},
        ),
    ],
)
def test_a_record_names_the_aanmelder_with_its_basis_from_the_network_file(
    network: Network, requester: str, behalf: str, recorded: dict[str, str]
) -> None:
    found = rules.recorded_aanmelder(network, "zvh-triage", requester, behalf)
    if recorded.get("aanmelder_basis") == "*":
        recorded = {
            **recorded,
            "aanmelder_basis": rules.aanmelder_basis(network, "zvh-triage", behalf),
        }
        assert recorded["aanmelder_basis"].startswith("artikel 20")
    assert found == recorded


@pytest.mark.parametrize(
    ("pattern", "case", "matches"),
    [
        ("", "C-1", True),  # no pattern: any reference
        ("", "", False),  # but never none
        (r"ZVH-\d{4}-\d{3,6}", "ZVH-2026-0042", True),
        (r"ZVH-\d{4}-\d{3,6}", "ZVH-2026-0042-X", False),  # the whole reference
        (r"ZVH-\d{4}-\d{3,6}", "X ZVH-2026-0042", False),
        (r"ZVH-\d{4}-\d{3,6}", "ALGEMEEN", False),  # the attacker's "general" case
        (r"ZVH-\d{4}-\d{3,6}", "", False),
        (r"(ZVH|ZSM)-\d+", "ZSM-7", True),
    ],
)
def test_a_case_reference_means_a_case_of_the_asking_organisation(
    pattern: str, case: str, matches: bool
) -> None:
    assert rules.case_matches(pattern, case) is matches


@pytest.mark.parametrize(
    ("level", "outcome", "label_of"),
    [
        (DisclosureLevel.ORGANISATION, Outcome.CASE_REFUSED, "politie-test"),
        (DisclosureLevel.DOMAIN, Outcome.CASE_REFUSED, "domain:veiligheid"),
        # A defer node answers pending for everyone: a refusal would tell a hit from a miss.
        (DisclosureLevel.DEFER, Outcome.PENDING, "politie-test"),
    ],
)
def test_a_node_refuses_a_known_person_under_a_case_that_is_not_one_as_its_other_answers(
    network: Network, level: DisclosureLevel, outcome: Outcome, label_of: str
) -> None:
    politie = network.organisation("politie-test")
    assert politie is not None
    answer = rules.case_refused(level, politie)
    assert answer.outcome is outcome and not answer.outcome.involved
    assert answer.outcome.answered and answer.outcome is not Outcome.NOT_INVOLVED
    rules.check_reply(answer, label_of)


@pytest.mark.parametrize(
    ("pattern", "kind", "cases", "refusal"),
    [
        ("", q.Kind.PERSON, ["C-1"], None),
        ("", q.Kind.LIST, ["C-1", "C-2", "C-3"], None),
        # One case for several persons in a list: only as a household.
        ("", q.Kind.LIST, ["ALGEMEEN", "ALGEMEEN"], "PolicyRefusal"),
        ("", q.Kind.GEZIN, ["G-1"] * 8, None),
        ("", q.Kind.GEZIN, ["G-1"] * 9, "PolicyRefusal"),  # more than persons_per_case
        ("", q.Kind.GEZIN, ["G-1"] * 250 + ["G-2"], "BadInput"),  # a household is one case
        ("", q.Kind.GEZIN, ["G-1"] * 251, "PolicyRefusal"),  # the fishing list of the review
        # The organisation's own pattern for case references.
        (r"ZVH-\d{4}-\d{3,6}", q.Kind.PERSON, ["ZVH-2026-0042"], None),
        (r"ZVH-\d{4}-\d{3,6}", q.Kind.PERSON, ["X-0"], "BadInput"),
        (r"ZVH-\d{4}-\d{3,6}", q.Kind.LIST, ["ZVH-2026-001", "ALGEMEEN"], "BadInput"),
    ],
)
def test_case_references_mean_a_case(
    network: Network, pattern: str, kind: q.Kind, cases: list[str], refusal: str | None
) -> None:
    net = _org(network, "zvh-test", case_pattern=pattern)
    if refusal is None:
        rules.check_case_references(net, "zvh-test", kind, cases)
        return
    with pytest.raises(Exception) as info:
        rules.check_case_references(net, "zvh-test", kind, cases)
    assert refusal in [cls.__name__ for cls in type(info.value).__mro__]


@pytest.mark.parametrize(
    ("asked_today", "cases_today", "cases", "refusal"),
    [
        (0, {}, ["C-1"], None),
        (199, {}, ["C-1"], None),  # the development network: 5,000 a day (test: see below)
        (4_999, {}, ["C-1", "C-2"], "QuotaExceeded"),  # the user's daily persons
        (0, {"C-1": 7}, ["C-1"], None),
        (0, {"C-1": 8}, ["C-1"], "PolicyRefusal"),  # a ninth person under one case today
        (0, {"C-1": 8}, ["C-2"], None),
    ],
)
def test_bounds_per_user_and_per_case(
    network: Network,
    asked_today: int,
    cases_today: dict[str, int],
    cases: list[str],
    refusal: str | None,
) -> None:
    assert network.user_limits.daily_persons == 5_000
    if refusal is None:
        rules.check_user_limits(network, "r.jansen", asked_today, cases_today, cases)
        return
    with pytest.raises(Exception) as info:
        rules.check_user_limits(network, "r.jansen", asked_today, cases_today, cases)
    assert type(info.value).__name__ == refusal and info.value.exit_code == 4  # type: ignore[attr-defined]


def test_the_command_line_asks_only_as_a_service_account_of_the_network_file(
    network: Network,
) -> None:
    rules.check_service_account(network, "zvh-test", "tester", "regisseur")
    for organisation, user, role in [
        ("zvh-test", "r.jansen", "regisseur"),  # a person: asks through the portal
        ("zvh-test", "tester", "dpo"),  # the account, in another role
        ("ggz-test", "tester", "regisseur"),  # an organisation that asks no purpose
    ]:
        with pytest.raises(PurposeNotAllowed) as info:
            rules.check_service_account(network, organisation, user, role)
        assert "service account" in info.value.message


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
