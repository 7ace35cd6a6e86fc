"""The rules of a deferred question, as tables: who decides, until when, on which grounds, and
what the asker is shown at once and at the end of the term (docs/adr/0037)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from betrokken import rules
from betrokken.answer import Answer, Outcome
from betrokken.config.schema import DisclosureLevel, Network
from betrokken.errors import BadInput, MalformedMessage, PurposeNotAllowed

ASKED = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Found:
    since: dt.date = dt.date(2026, 1, 5)
    contact: str = "GGZ, team Noord, 023-5550000"
    domain: str = "zorg"
    disclosure: DisclosureLevel | None = None
    advice: str | None = None


def test_a_defer_partner_answers_pending_for_a_hit_and_a_miss_alike(network: Network) -> None:
    ggz = network.organisation("ggz-test")
    assert ggz is not None
    hit = rules.answer_for(DisclosureLevel.DEFER, ggz, Found(), network.desk_contact)
    miss = rules.answer_for(DisclosureLevel.DEFER, ggz, None, network.desk_contact)
    assert hit == miss
    assert hit.outcome is Outcome.PENDING and hit.outcome.answered and not hit.outcome.involved
    assert not hit.contact and not hit.since  # nothing of the registration leaks
    rules.check_reply(hit, "ggz-test", network)


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        # pending names only its own organisation, never a contact point, never under a domain
        (Answer(Outcome.PENDING, organisation_id="politie-test"), "ggz-test"),
        (Answer(Outcome.PENDING, organisation_id="ggz-test", contact="x"), "ggz-test"),
        (Answer(Outcome.PENDING, domain="zorg"), "domain:zorg"),
    ],
)
def test_a_pending_answer_that_says_more_is_malformed(answer: Answer, label: str) -> None:
    with pytest.raises(MalformedMessage):
        rules.check_reply(answer, label)


def test_the_term_is_the_signed_time_plus_the_purposes_defer_hours(network: Network) -> None:
    purpose = network.purpose("zsm-context")
    assert purpose is not None
    assert rules.defer_deadline(ASKED, purpose) == ASKED + dt.timedelta(hours=purpose.defer_hours)


DEADLINE = ASKED + dt.timedelta(hours=72)
BEFORE = DEADLINE - dt.timedelta(minutes=1)
NOBODY = PurposeNotAllowed


@pytest.mark.parametrize(
    ("org", "purpose", "roles", "decision", "ground", "now", "error"),
    [
        ("ggz-test", "zsm-context", {"regisseur"}, "delen", "toestemming", BEFORE, None),
        ("ggz-test", "zsm-context", {"regisseur"}, "niet-delen", "beroepsgeheim", BEFORE, None),
        # a role the policy does not name, or an organisation that does not defer: nobody
        ("ggz-test", "zsm-context", {"beheerder"}, "delen", "toestemming", BEFORE, NOBODY),
        ("ggz-test", "zsm-context", set(), "delen", "toestemming", BEFORE, NOBODY),
        ("politie-test", "zsm-context", {"regisseur"}, "delen", "toestemming", BEFORE,
         NOBODY),
        # the term passed: too late
        ("ggz-test", "zsm-context", {"regisseur"}, "delen", "toestemming", DEADLINE, BadInput),
        # a ground of the other decision, an unknown decision, free text
        ("ggz-test", "zsm-context", {"regisseur"}, "delen", "beroepsgeheim", BEFORE, BadInput),
        ("ggz-test", "zsm-context", {"regisseur"}, "niet-delen", "meldrecht", BEFORE, BadInput),
        ("ggz-test", "zsm-context", {"regisseur"}, "misschien", "toestemming", BEFORE, BadInput),
        ("ggz-test", "zsm-context", {"regisseur"}, "delen", "mw. J. zei ja", BEFORE, BadInput),
    ],
)  # fmt: skip
def test_who_decides_until_when_and_on_which_ground(
    network: Network,
    org: str,
    purpose: str,
    roles: set[str],
    decision: str,
    ground: str,
    now: dt.datetime,
    error: type[Exception] | None,
) -> None:
    def decide() -> None:
        rules.check_decision(
            network, org, purpose, frozenset(roles), decision, ground, now, DEADLINE
        )

    if error is None:
        decide()
    else:
        with pytest.raises(error):
            decide()


def test_nobody_decides_unless_the_network_file_names_a_role(network: Network) -> None:
    closed = network.model_copy(
        update={
            "policies": [
                p.model_copy(update={"decided_by": []}) if p.level is DisclosureLevel.DEFER else p
                for p in network.policies
            ]
        }
    )
    assert rules.deciding_roles(closed, "ggz-test", "zsm-context") == frozenset()
    with pytest.raises(PurposeNotAllowed):
        rules.check_decision(
            closed, "ggz-test", "zsm-context", frozenset({"regisseur", "dpo"}), "delen",
            "toestemming", BEFORE, DEADLINE,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("found", "decision", "outcome"),
    [
        (True, "delen", Outcome.INVOLVED),
        # a refusal, a term that passed undecided and a miss read the same
        (True, "niet-delen", Outcome.NO_DISCLOSURE),
        (True, "", Outcome.NO_DISCLOSURE),
        (False, "", Outcome.NO_DISCLOSURE),
        # shared, but the registration ended before the term did: nothing to share
        (False, "delen", Outcome.NO_DISCLOSURE),
    ],
)
def test_the_late_answer_per_person(
    network: Network, found: bool, decision: str, outcome: Outcome
) -> None:
    ggz = network.organisation("ggz-test")
    assert ggz is not None
    answer = rules.late_answer(ggz, Found() if found else None, decision)
    assert answer.outcome is outcome
    assert answer.outcome is not Outcome.NOT_INVOLVED  # never a "no" (P5)
    assert bool(answer.contact) is (outcome is Outcome.INVOLVED)
    rules.check_late_answer(answer, "ggz-test")


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        (Answer(Outcome.NOT_INVOLVED, organisation_id="ggz-test"), "ggz-test"),
        (Answer(Outcome.PENDING, organisation_id="ggz-test"), "ggz-test"),
        (Answer(Outcome.INVOLVED, organisation_id="politie-test"), "ggz-test"),
        (Answer(Outcome.NO_DISCLOSURE, organisation_id="ggz-test", contact="06"), "ggz-test"),
        (Answer(Outcome.INVOLVED_DOMAIN_ONLY, domain="zorg"), "domain:zorg"),
    ],
)
def test_a_late_answer_that_says_something_else_is_malformed(answer: Answer, label: str) -> None:
    with pytest.raises(MalformedMessage):
        rules.check_late_answer(answer, label)


@pytest.mark.parametrize(
    ("level", "decided_by", "problem"),
    [
        (DisclosureLevel.DEFER, ["regisseur"], False),
        (DisclosureLevel.DEFER, [], False),  # closed: nobody decides, every term passes
        (DisclosureLevel.DEFER, ["beheerder"], True),
        (DisclosureLevel.DOMAIN, ["regisseur"], True),
    ],
)
def test_decided_by_goes_with_defer_and_names_a_deciding_portal_role(
    network: Network, level: DisclosureLevel, decided_by: list[str], problem: bool
) -> None:
    changed = network.model_copy(
        update={
            "policies": [
                p.model_copy(update={"level": level, "decided_by": decided_by})
                if (p.organisation, p.purpose) == ("ggz-test", "zsm-context")
                else p
                for p in network.policies
            ]
        }
    )
    found = [p for p in rules.network_problems(changed) if "decided_by" in p]
    assert bool(found) is problem


@pytest.mark.parametrize(
    ("level", "watches"),
    [
        (DisclosureLevel.ORGANISATION, True),
        # a signal names its sender: a domain-only partner would be named by it
        (DisclosureLevel.DOMAIN, False),
        (DisclosureLevel.DEFER, False),  # its professional decides instead
        (DisclosureLevel.NONE, False),
    ],
)
def test_only_a_partner_that_names_itself_keeps_a_watch(
    level: DisclosureLevel, watches: bool
) -> None:
    assert rules.may_watch(level) is watches


def test_a_watch_lasts_the_questions_watch_days_from_its_signed_time() -> None:
    assert rules.watch_until(ASKED, 30) == ASKED + dt.timedelta(days=30)
