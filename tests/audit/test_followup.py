"""Regie and follow-up: which follow-ups may be recorded (rules.check_follow_up, as a table), and
how the asker's own trail turns into each hit's state and the rates per partner and purpose."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from betrokken import rules
from betrokken.audit.followup import (
    Hit,
    add_working_days,
    follow_up_entry,
    hits_in,
    overall,
    rates,
)
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.config.schema import Network
from betrokken.errors import BadInput

MONDAY = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("state", "reason", "regie", "allowed"),
    [
        ("contact-gelegd", "", "", True),
        ("casusoverleg-gepland", "", "", True),
        ("geen-actie-nodig", "al-afgestemd", "", True),
        ("geen-actie-nodig", "", "", False),  # no action without a reason
        ("geen-actie-nodig", "mevrouw is verhuisd naar Zwolle", "", False),  # free text
        ("contact-gelegd", "al-afgestemd", "", False),  # a reason only with no action
        ("regie-overgenomen", "", "politie-test", True),
        ("regie-overgenomen", "", "", False),  # regie taken by nobody
        ("regie-overgenomen", "", "stranger", False),  # not of the network
        ("casusoverleg-gepland", "", "politie-test", False),
        ("gebeld", "", "", False),
    ],
)
def test_a_follow_up_is_a_known_state_with_exactly_the_detail_it_needs(
    network: Network, state: str, reason: str, regie: str, allowed: bool
) -> None:
    if allowed:
        rules.check_follow_up(network, state, reason, regie)
    else:
        with pytest.raises(BadInput):
            rules.check_follow_up(network, state, reason, regie)


@pytest.mark.parametrize(
    ("day", "count", "expected"),
    [
        (dt.date(2026, 11, 23), 10, dt.date(2026, 12, 7)),  # Monday: two weeks on
        (dt.date(2026, 11, 27), 1, dt.date(2026, 11, 30)),  # Friday: the next Monday
        (dt.date(2026, 11, 28), 1, dt.date(2026, 11, 30)),  # Saturday: Monday
        (dt.date(2026, 11, 23), 0, dt.date(2026, 11, 23)),
    ],
)
def test_working_days_skip_the_weekend(day: dt.date, count: int, expected: dt.date) -> None:
    assert add_working_days(day, count) == expected


def _subject(n: int) -> Subject:
    return Subject(f"{n:02x}" * 64, "k1-zvh", f"fp{n}", f"C-{n}")


def _question(answer_id: str, at: dt.datetime, purpose: str, outcomes: dict) -> AuditEntry:
    subjects = tuple(_subject(int(fp[2:])) for fp in outcomes)
    return AuditEntry(
        event=Event.OWN_QUERY,
        at=at,
        answer_id=answer_id,
        organisation="zvh",
        user="r.jansen",
        role="regisseur",
        purpose=purpose,
        subjects=subjects,
        outcomes=outcomes,
        reason="answered",
    )


def test_each_hit_gets_its_latest_state_and_the_rates_count_in_time_per_partner_and_purpose() -> (
    None
):
    entries = [
        _question(
            "a-1",
            MONDAY,
            "zvh-triage",
            {
                "fp1": {"politie": "involved", "domain:zorg": "involved-domain-only"},
                "fp2": {"politie": "not-involved", "domain:zorg": "not-involved"},
            },
        ),
        _question("a-2", MONDAY, "zsm-context", {"fp3": {"politie": "involved"}}),
        _question("a-3", MONDAY, "zvh-triage", {"fp4": {"politie": "involved"}}),
    ]
    found = {(h.key.answer_id, h.key.found): h for h in hits_in(entries)}
    assert set(found) == {
        ("a-1", "politie"),
        ("a-1", "domain:zorg"),
        ("a-2", "politie"),
        ("a-3", "politie"),
    }  # a 'not involved' is no hit

    def follow(hit: Hit, state: str, days: int, **kw: str) -> AuditEntry:
        return follow_up_entry(
            "zvh", hit, "r.jansen", "regisseur", state, at=MONDAY + dt.timedelta(days=days), **kw
        )

    entries += [
        follow(found[("a-1", "politie")], "contact-gelegd", 1),
        follow(found[("a-1", "politie")], "regie-overgenomen", 3, regie="politie"),
        follow(found[("a-1", "domain:zorg")], "casusoverleg-gepland", 15),  # due on day 14
        follow(found[("a-2", "politie")], "geen-actie-nodig", 2, reason="al-afgestemd"),
    ]
    again = {(h.key.answer_id, h.key.found): h for h in hits_in(entries)}
    first = again[("a-1", "politie")]
    assert [f.state for f in first.follow_ups] == ["contact-gelegd", "regie-overgenomen"]
    assert first.latest is not None and first.latest.regie == "politie"
    assert again[("a-2", "politie")].latest.reason == "al-afgestemd"  # type: ignore[union-attr]
    assert again[("a-3", "politie")].latest is None

    # Two weeks after: a-3 was never followed up and its term has passed.
    later = rates(list(again.values()), 10, dt.date(2026, 12, 9))
    by = {(r.partner, r.purpose): r for r in later}
    assert (by[("politie", "zvh-triage")].hits, by[("politie", "zvh-triage")].in_time) == (2, 1)
    assert by[("domain:zorg", "zvh-triage")].followed == 1
    assert by[("domain:zorg", "zvh-triage")].in_time == 0  # late
    assert by[("politie", "zsm-context")].share_in_time == 1.0
    total = overall(later)
    assert (total.hits, total.followed, total.in_time, total.waiting) == (4, 3, 2, 0)
    assert total.share_in_time == 0.5
    # On the day itself, the hit not followed up is still within its term: not counted yet.
    soon = overall(rates(list(again.values()), 10, dt.date(2026, 11, 24)))
    assert soon.waiting == 1 and soon.share_in_time == 2 / 3


def test_a_follow_up_of_another_hit_or_person_changes_nothing() -> None:
    question = _question("a-1", MONDAY, "zvh-triage", {"fp1": {"politie": "involved"}})
    [hit] = hits_in([question])
    other = follow_up_entry("zvh", hit, "r.jansen", "regisseur", "contact-gelegd")
    stray = AuditEntry(**{**other.__dict__, "answer_id": "a-9"})
    assert hits_in([question, stray])[0].latest is None


def test_the_dpos_report_shows_the_share_followed_up_in_time_per_partner_and_purpose() -> None:
    from betrokken.audit.report import IndexedEntry, ReportSettings, render_report

    entries = [
        _question("a-1", MONDAY, "zvh-triage", {"fp1": {"politie": "involved"}}),
        _question("a-2", MONDAY, "zvh-triage", {"fp2": {"politie": "involved"}}),
    ]
    [first, _second] = sorted(hits_in(entries), key=lambda h: h.key.answer_id)
    entries.append(
        follow_up_entry(
            "zvh", first, "r.jansen", "regisseur", "contact-gelegd", at=MONDAY + dt.timedelta(1)
        )
    )
    page = render_report(
        [IndexedEntry(i, e) for i, e in enumerate(entries)],
        title="t",
        generated_at=MONDAY + dt.timedelta(days=30),
        settings=ReportSettings(follow_up_working_days=10, follow_up_goal_percent=90),
    )
    assert 'data-follow-up-share="50.0%"' in page
    assert "50.0% of hits followed up within 10 working days" in page
    assert "goal 90% (not met)" in page
    assert (
        '<tr data-partner="politie" data-purpose="zvh-triage"><td>politie</td><td>zvh-triage</td>'
        '<td class="num">2</td><td class="num">1</td><td class="num">1</td><td class="num">0</td>'
    ) in page
    # Counts only: the follow-up section names no person and no case.
    section = page.split('id="follow-up"')[1].split("</section>")[0]
    assert "fp1" not in section and "C-1" not in section


def test_the_demos_simulated_month_prints_the_figure_the_report_would_compute(
    network: Network,
) -> None:
    import random

    from betrokken.app.demo_after import simulated_month

    lines: list[str] = []
    share = simulated_month(lines.append, network, "zvh-test", random.Random(1), hits=200)
    assert share is not None and 0.8 < share <= 1.0
    [figure] = [line for line in lines if "FIGURE:" in line]
    assert f"{share * 100:.1f}% of hits followed up within 10 working days (goal 90%" in figure
    shown = "\n".join(lines)
    assert "zvh-test " not in shown  # the asker never finds itself
    assert "domain:" in shown  # the GGZ discloses only its field for triage


def test_the_follow_up_command_counts_one_organisation_and_combines_the_networks(
    devnet: Any, tmp_path: Path
) -> None:
    """``betrokken audit follow-up``: the organisation's counts (text, JSON to share) and, with
    other organisations' counts, the network's rates per organisation and purpose; numbers only."""
    import json
    import shutil

    from betrokken.audit.trail import open_trail
    from betrokken.config.load import load_node
    from tests.cli import invoke

    copy = tmp_path / "net"
    shutil.copytree(devnet.directory, copy)
    config = copy / devnet.node_configs["zvh-test"].relative_to(devnet.directory)
    trail, _ = open_trail(load_node(config))
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    question = _question("a-1", now, "zvh-triage", {"fp1": {"politie-test": "involved"}})
    question2 = _question("a-2", now, "zvh-triage", {"fp2": {"politie-test": "involved"}})
    [hit] = [h for h in hits_in([question]) if h.key.answer_id == "a-1"]
    followed = follow_up_entry(
        "zvh-test", hit, "r.jansen", "regisseur", "contact-gelegd", at=now + dt.timedelta(days=1)
    )
    with trail.engine.begin() as conn:
        trail.append([question, question2, followed], conn)
    trail.engine.dispose()

    shown = invoke("audit", "follow-up", "--config", str(config), "--user", "fg")
    assert shown.code == 0, shown.output
    assert "50.0% of hits followed up within 10 working days (goal 90%: not met)" in shown.stdout
    assert "politie-test" in shown.stdout and "fp1" not in shown.stdout

    counted = invoke("audit", "follow-up", "--config", str(config), "--json", "--user", "fg")
    assert counted.code == 0, counted.output
    assert counted.json["organisation"] == "zvh-test"
    assert counted.json["rates"] == [
        {
            "partner": "politie-test",
            "purpose": "zvh-triage",
            "hits": 2,
            "followed": 1,
            "in_time": 1,
            "waiting": 0,
        }
    ]
    other = tmp_path / "politie.json"
    other.write_text(
        json.dumps(
            {
                **counted.json,
                "organisation": "politie-test",
                "rates": [{**counted.json["rates"][0], "hits": 8, "followed": 8, "in_time": 8}],
            }
        )
    )
    network = invoke(
        "audit", "follow-up", "--config", str(config), "--combine", str(other), "--user", "fg"
    )
    assert network.code == 0, network.output
    assert "90.0% of hits followed up within 10 working days (goal 90%: met)" in network.stdout
    assert "zvh-test" in network.stdout and "politie-test" in network.stdout

    # Another kind of file: refused with what to do, no traceback.
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"rates": []}')
    refused = invoke("audit", "follow-up", "--config", str(config), "--combine", str(wrong))
    assert refused.code == 2 and "betrokken audit follow-up --json" in refused.output
    assert "Traceback" not in refused.output
