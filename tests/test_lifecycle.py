"""The registration lifecycle (betrokken/lifecycle.py), as tables: what an import or a
registration does to what a node holds of one person. tests/node/test_store.py checks that the
store does what these rules say, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from betrokken.lifecycle import (
    FACTS,
    KEEPABLE,
    Change,
    Decision,
    Held,
    Marker,
    decide,
    sync_ends_too_many,
    trail_details,
)

TODAY = dt.date(2026, 11, 23)
TERM_END = TODAY + dt.timedelta(days=730)  # today plus the retention term


def _day(days: int) -> dt.date:
    return TODAY + dt.timedelta(days=days)


def _facts(**changes: object) -> dict[str, object]:
    facts: dict[str, object] = {
        "domain": "veiligheid",
        "contact": "desk",
        "since": _day(-30),
        "given_until": None,
        "reference": "R-1",
        "disclosure": None,
        "advice": None,
    }
    facts.update(changes)
    return facts


SAME = Held(_facts(), until=_day(100))
ENDED = Held(_facts(), until=_day(-1))  # held, but past its last day (not yet removed)


@pytest.mark.parametrize(
    ("case", "given", "held", "withdrawn", "reactivate", "change", "until", "marker"),
    [
        # nothing held: stored; an open case runs to the term's end, a given end comes first
        ("new, open case", _facts(), None, False, False, Change.ADDED, TERM_END, Marker.NONE),
        ("new, ends soon", _facts(given_until=_day(9)), None, False, False, Change.ADDED,
         _day(9), Marker.NONE),
        ("new, ends after the term", _facts(given_until=_day(999)), None, False, False,
         Change.ADDED, TERM_END, Marker.NONE),
        ("new, ends today", _facts(given_until=TODAY), None, False, False, Change.ADDED, TODAY,
         Marker.NONE),
        ("new, started long ago", _facts(since=_day(-800)), None, False, False, Change.ADDED,
         TERM_END, Marker.NONE),
        # refused: the case system's end is in the past
        ("new, ended yesterday", _facts(given_until=_day(-1)), None, False, False,
         Change.ALREADY_ENDED, None, Marker.NONE),
        ("held, now ended", _facts(given_until=_day(-1)), SAME, False, False,
         Change.ALREADY_ENDED, None, Marker.NONE),
        # confirm: the same facts again, the term starts anew
        ("held, confirmed", _facts(), SAME, False, False, Change.UNCHANGED, TERM_END,
         Marker.NONE),
        # extend or end: other facts
        ("held, another contact", _facts(contact="other desk"), SAME, False, False,
         Change.UPDATED, TERM_END, Marker.NONE),
        ("held, an end given", _facts(given_until=_day(40)), SAME, False, False, Change.UPDATED,
         _day(40), Marker.NONE),
        ("held, ended, confirmed again", _facts(), ENDED, False, False, Change.UPDATED,
         TERM_END, Marker.NONE),
        # withdrawn by hand: a re-import does not bring the person back, register does
        ("withdrawn, imported again", _facts(), None, True, False, Change.KEPT_WITHDRAWN, None,
         Marker.EXTEND),
        ("withdrawn, imported ended", _facts(given_until=_day(-1)), None, True, False,
         Change.KEPT_WITHDRAWN, None, Marker.EXTEND),
        ("withdrawn, registered by hand", _facts(), None, True, True, Change.ADDED, TERM_END,
         Marker.FORGET),
        ("withdrawn, registered ended", _facts(given_until=_day(-1)), None, True, True,
         Change.ALREADY_ENDED, None, Marker.NONE),
        ("withdrawn yet held, confirmed", _facts(), SAME, True, False, Change.UNCHANGED,
         TERM_END, Marker.NONE),
    ],
)  # fmt: skip
def test_what_a_registration_given_does_to_what_is_held(
    case: str,
    given: dict[str, object],
    held: Held | None,
    withdrawn: bool,
    reactivate: bool,
    change: Change,
    until: dt.date | None,
    marker: Marker,
) -> None:
    decision = decide(
        given, held, withdrawn=withdrawn, reactivate=reactivate, today=TODAY, term_end=TERM_END
    )
    assert (decision.change, decision.until, decision.marker) == (change, until, marker), case
    assert decision.stores == (until is not None), case
    assert decision.recorded == (change in (Change.ADDED, Change.UPDATED)), case
    if decision.stores:
        assert set(decision.facts) == set(FACTS)
    else:
        assert not decision.facts  # nothing stored, so nothing to write


@pytest.mark.parametrize(
    ("keep", "given", "stored"),
    [
        # a field not given keeps the value held; one given replaces it
        (frozenset({"contact"}), _facts(contact=""), {"contact": "desk"}),
        (frozenset({"since"}), _facts(since=TODAY), {"since": _day(-30)}),
        (frozenset(), _facts(since=TODAY), {"since": TODAY}),
        (frozenset({"until"}), _facts(), {"given_until": _day(40)}),
        (frozenset({"reference", "domain"}), _facts(reference=None, domain="zorg"),
         {"reference": "R-1", "domain": "veiligheid"}),
    ],
)  # fmt: skip
def test_fields_not_given_keep_what_is_held(
    keep: frozenset[str], given: dict[str, object], stored: dict[str, object]
) -> None:
    assert keep <= KEEPABLE
    held = Held(_facts(given_until=_day(40)), until=_day(40))
    decision = decide(given, held, keep=keep, today=TODAY, term_end=TERM_END)
    assert {k: decision.facts[k] for k in stored} == stored


def test_fields_not_given_are_the_callers_defaults_for_a_new_registration() -> None:
    decision = decide(_facts(contact=""), None, keep=frozenset({"contact"}), today=TODAY,
                      term_end=TERM_END)  # fmt: skip
    assert decision.change is Change.ADDED and decision.facts["contact"] == ""


def test_a_kept_end_that_has_passed_refuses_the_confirmation() -> None:
    """An end held from before (not given now) still counts: the case ended, nothing is stored."""
    held = Held(_facts(given_until=_day(-2)), until=_day(-2))
    decision = decide(_facts(), held, keep=frozenset({"until"}), today=TODAY, term_end=TERM_END)
    assert decision.change is Change.ALREADY_ENDED and decision.given_until == _day(-2)


@pytest.mark.parametrize(
    ("decision", "withdrawn_on", "details"),
    [
        (Decision(Change.ADDED, _facts(), TERM_END, None, _day(-30)), None,
         {"reference": "R-1", "since": _day(-30).isoformat(), "until": "open"}),
        (Decision(Change.UPDATED, _facts(reference=None), _day(9), _day(9), _day(-30)), None,
         {"reference": "", "since": _day(-30).isoformat(), "until": _day(9).isoformat()}),
        (Decision(Change.ADDED, _facts(), TERM_END, None, _day(-30), Marker.FORGET, True),
         _day(-5), {"reference": "R-1", "since": _day(-30).isoformat(), "until": "open",
                    "reactivated": f"withdrawn by hand on {_day(-5)}"}),
        # an advice code the registration carries is part of what changed
        (Decision(Change.UPDATED, _facts(advice="eerst-contact"), TERM_END, None, _day(-30)),
         None, {"reference": "R-1", "since": _day(-30).isoformat(), "until": "open",
                "advice": "eerst-contact"}),
    ],
)  # fmt: skip
def test_what_the_trail_record_of_a_change_says(
    decision: Decision, withdrawn_on: dt.date | None, details: dict[str, str]
) -> None:
    assert trail_details(decision, withdrawn_on) == details


@pytest.mark.parametrize(
    ("active", "ending", "share", "stops"),
    [
        (207_001, 206_001, 0.10, True),  # a 1,000-line file read as the whole caseload
        (100, 10, 0.10, False),  # exactly the share: allowed
        (100, 11, 0.10, True),
        (0, 0, 0.10, False),  # nothing active: nothing to lose
        (5, 5, 1.0, False),  # a share of 1 turns the guard off
        (5, 1, 0.0, True),  # a share of 0 stops every ending
        (5, 0, 0.0, False),
    ],
)
def test_a_sync_stops_when_it_would_end_more_than_the_share(
    active: int, ending: int, share: float, stops: bool
) -> None:
    assert sync_ends_too_many(active, ending, share) is stops
