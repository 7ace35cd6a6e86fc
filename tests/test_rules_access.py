"""The restriction step of an access request, as tables (docs/adr/0039): at every partner the
access-request purpose is `defer`, decided by its FG, within a few days; the FG decides nothing
else and on the grounds of article 41 UAVG; the register's last day to ask the partners."""

from __future__ import annotations

import datetime as dt

import pytest

from betrokken import rules
from betrokken.config.schema import DisclosureLevel, DisclosurePolicy, Network
from betrokken.errors import BadInput, PurposeNotAllowed, UnlawfulConfiguration

ACCESS = "inzageverzoek"
ASKED = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
DEADLINE = ASKED + dt.timedelta(hours=72)
BEFORE = DEADLINE - dt.timedelta(minutes=1)


def _with(network: Network, org: str, purpose: str, **change: object) -> Network:
    policies = [
        p.model_copy(update=change) if (p.organisation, p.purpose) == (org, purpose) else p
        for p in network.policies
    ]
    return network.model_copy(update={"policies": policies})


def test_the_development_network_asks_every_partner_through_its_fg(network: Network) -> None:
    assert network.access_requests.purpose == ACCESS
    assert rules.network_problems(network) == []
    for org in network.nodes():
        assert rules.level(network, org.id, ACCESS) is DisclosureLevel.DEFER
        assert rules.deciding_roles(network, org.id, ACCESS) == frozenset({"dpo"})


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        # the attacker's move: the police would be shown ("Politie: betrokken") without being asked
        ({"level": DisclosureLevel.ORGANISATION, "decided_by": []}, True),
        ({"level": DisclosureLevel.DOMAIN, "decided_by": []}, True),
        # defer, but nobody decides, or the professionals instead of the FG
        ({"decided_by": []}, True),
        ({"decided_by": ["regisseur"]}, True),
        ({"decided_by": ["regisseur", "dpo"]}, True),
        # closed stays lawful: it tells nothing (the letter says it does not answer)
        ({"level": DisclosureLevel.NONE, "decided_by": []}, False),
        # as the network file writes it
        ({"decided_by": ["dpo"]}, False),
    ],
)  # fmt: skip
def test_network_check_refuses_a_partner_that_would_be_shown_without_being_asked(
    network: Network, change: dict[str, object], refused: bool
) -> None:
    changed = _with(network, "politie-test", ACCESS, **change)
    problems = rules.network_problems(changed)
    if not refused:
        assert problems == []
        return
    [problem] = [p for p in problems if "artikel 41 UAVG" in p]
    assert "artikel 23 AVG" in problem and "'politie-test'" in problem
    with pytest.raises(UnlawfulConfiguration):
        rules.check_lawful(changed)


def test_a_partner_without_a_policy_for_the_access_request_is_closed_and_lawful(
    network: Network,
) -> None:
    bare = network.model_copy(
        update={"policies": [p for p in network.policies if p.purpose != ACCESS]}
    )
    assert rules.access_request_problems(bare) == []


def test_the_fg_decides_about_access_requests_only(network: Network) -> None:
    changed = _with(network, "ggz-test", "zsm-context", decided_by=["dpo"])
    [problem] = rules.network_problems(changed)
    assert "de FG (portaalrol 'dpo') beslist alleen over een inzageverzoek" in problem
    policies = [
        *network.policies,
        DisclosurePolicy(
            organisation="ggz-test", purpose="wijkteam-coordination", level=DisclosureLevel.NONE
        ),
    ]
    assert network.purpose("wijkteam-coordination") is not None
    assert rules.network_problems(network.model_copy(update={"policies": policies})) == []


@pytest.mark.parametrize(
    ("hours", "refused"), [(8, False), (72, False), (120, False), (121, True), (720, True)]
)
def test_the_access_request_term_is_a_few_days_at_most(
    network: Network, hours: float, refused: bool
) -> None:
    purposes = [
        p.model_copy(update={"defer_hours": hours}) if p.id == ACCESS else p
        for p in network.purposes
    ]
    problems = rules.network_problems(network.model_copy(update={"purposes": purposes}))
    assert bool(problems) is refused
    if refused:
        assert "ten hoogste 120 uur" in problems[0]


@pytest.mark.parametrize(
    ("roles", "decision", "ground", "now", "error"),
    [
        ({"dpo"}, "delen", "recht-op-inzage", BEFORE, None),
        ({"dpo"}, "niet-delen", "voorkoming-en-opsporing-van-strafbare-feiten", BEFORE, None),
        ({"dpo"}, "niet-delen", "rechten-en-vrijheden-van-anderen", BEFORE, None),
        ({"dpo"}, "niet-delen", "bescherming-van-de-betrokkene", BEFORE, None),
        ({"dpo"}, "niet-delen", "toezicht-en-inspectie", BEFORE, None),
        # a professional's grounds are not an access request's
        ({"dpo"}, "niet-delen", "beroepsgeheim", BEFORE, BadInput),
        ({"dpo"}, "delen", "toestemming", BEFORE, BadInput),
        # the regisseur does not decide an access request; nobody after the term
        ({"regisseur"}, "delen", "recht-op-inzage", BEFORE, PurposeNotAllowed),
        ({"dpo"}, "delen", "recht-op-inzage", DEADLINE, BadInput),
    ],
)  # fmt: skip
def test_the_fg_decides_an_access_request_on_the_grounds_of_article_41_uavg(
    network: Network,
    roles: set[str],
    decision: str,
    ground: str,
    now: dt.datetime,
    error: type[Exception] | None,
) -> None:
    def decide() -> None:
        rules.check_decision(
            network, "politie-test", ACCESS, frozenset(roles), decision, ground, now, DEADLINE
        )

    if error is None:
        decide()
    else:
        with pytest.raises(error):
            decide()


def test_an_fg_does_not_decide_a_professionals_question(network: Network) -> None:
    with pytest.raises(PurposeNotAllowed):
        rules.check_decision(
            network, "ggz-test", "zsm-context", frozenset({"dpo"}), "delen", "toestemming",
            BEFORE, DEADLINE,
        )  # fmt: skip
    assert rules.decision_grounds(network, "zsm-context") == (
        rules.DISCLOSE_GROUNDS,
        rules.DECLINE_GROUNDS,
    )


@pytest.mark.parametrize(
    ("received", "hours", "deadline", "ask_by"),
    [
        # three days' term: ask at the latest four days before the month is over
        (dt.date(2026, 11, 2), 72, dt.date(2026, 12, 2), dt.date(2026, 11, 28)),
        # a term of part of a day still takes a day
        (dt.date(2026, 11, 2), 8, dt.date(2026, 12, 2), dt.date(2026, 11, 30)),
        (dt.date(2026, 1, 31), 120, dt.date(2026, 2, 28), dt.date(2026, 2, 22)),
    ],
)
def test_the_last_day_to_ask_the_partners_leaves_their_term_before_the_deadline(
    network: Network, received: dt.date, hours: float, deadline: dt.date, ask_by: dt.date
) -> None:
    purpose = network.purpose(ACCESS)
    assert purpose is not None
    purpose = purpose.model_copy(update={"defer_hours": hours})
    assert rules.access_request_deadline(received) == deadline
    assert rules.access_request_ask_by(received, purpose) == ask_by
    term_end = dt.datetime.combine(ask_by, dt.time(23, 59)) + dt.timedelta(hours=hours)
    assert term_end.date() < deadline
