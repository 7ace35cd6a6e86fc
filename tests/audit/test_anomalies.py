"""The rules that find fishing in a trail, as tables: each row a pattern an insider would use (or
an innocent one that must stay quiet) and what the DPO's report makes of it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from betrokken.audit.anomalies import (
    Hours,
    IndexedEntry,
    ReportSettings,
    find_anomalies,
    hit_rates,
    questions,
)
from betrokken.audit.record import AuditEntry, Event, Subject

AMS = ZoneInfo("Europe/Amsterdam")


def _at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A moment in December 2026, Amsterdam time (the 7th is a Monday)."""
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=AMS).astimezone(dt.UTC)


def _person(n: int, case: str) -> Subject:
    return Subject(f"{n:0128x}", "k1", f"ps-{n:012x}", case)


def _ask(
    persons: list[tuple[int, str]],
    *,
    user: str = "r.jansen",
    org: str = "zvh",
    purpose: str = "zvh-triage",
    at: dt.datetime | None = None,
    kind: str = "",
    hits: frozenset[int] = frozenset(),
) -> AuditEntry:
    subjects = tuple(_person(n, case) for n, case in persons)
    outcomes = {
        s.fingerprint: {"politie": "involved" if n in hits else "not-involved"}
        for s, (n, _) in zip(subjects, persons, strict=True)
    }
    details = {"persons": str(len(persons))} | ({"kind": kind} if kind else {})
    return AuditEntry(
        event=Event.OWN_QUERY,
        at=at or _at(8, 10),
        organisation=org,
        user=user,
        role="regisseur",
        purpose=purpose,
        subjects=subjects,
        outcomes=outcomes,
        details=details,
    )


def _indexed(entries: list[AuditEntry]) -> list[IndexedEntry]:
    return [IndexedEntry(i, e) for i, e in enumerate(entries)]


def _kinds(entries: list[AuditEntry], settings: ReportSettings | None = None) -> list[str]:
    return [a.kind for a in find_anomalies(_indexed(entries), settings or ReportSettings())]


ONE_PERSON_THREE_CASES = [_ask([(1, c)], at=_at(8, 10, i)) for i, c in enumerate("ABC")]
NOSY = [_ask([(1, f"NOSY-{c}")], at=_at(8, 10, i)) for i, c in enumerate("ABC")]


@pytest.mark.parametrize(
    ("story", "entries", "expected"),
    [
        ("three look-ups under NOSY-A/B/C are flagged", NOSY, ["person-many-cases"]),
        (
            "two case references for one person are not (a case that was renamed)",
            NOSY[:2],
            [],
        ),
        (
            "three colleagues each under their own case are still one organisation asking",
            [
                _ask([(1, f"K-{i}")], user=u, at=_at(8, 11, i))
                for i, u in enumerate(("a", "b", "c"))
            ],
            ["person-many-cases"],
        ),
        (
            "three organisations each asking once under their own case are not",
            [
                _ask([(1, f"K-{i}")], org=o, at=_at(8, 11, i))
                for i, o in enumerate(("zvh", "politie", "gemeente"))
            ],
            [],
        ),
        (
            "one case reference ALGEMEEN for eight persons asked one by one is flagged",
            [_ask([(10 + i, "ALGEMEEN")], at=_at(8, 9, i)) for i in range(8)],
            ["case-many-persons"],
        ),
        (
            "ALGEMEEN for eight persons in one list is flagged too",
            [_ask([(10 + i, "ALGEMEEN") for i in range(8)])],
            ["case-many-persons"],
        ),
        (
            "a household of five asked together as a gezin question is not",
            [_ask([(10 + i, "GEZIN-7") for i in range(5)], kind="gezin")],
            [],
        ),
        (
            "four persons under one case are not (below the threshold)",
            [_ask([(10 + i, "K-1")], at=_at(8, 9, i)) for i in range(4)],
            [],
        ),
        (
            "the same person for the same case three times is a repeat",
            [_ask([(1, "K-1")], at=_at(8, 9, i)) for i in range(3)],
            ["repeat-subject"],
        ),
    ],
)
def test_fishing_patterns_in_an_organisations_own_questions(
    story: str, entries: list[AuditEntry], expected: list[str]
) -> None:
    assert _kinds(entries) == expected, story


def test_the_person_many_cases_anomaly_names_the_cases_and_links_every_record() -> None:
    (anomaly,) = find_anomalies(_indexed(NOSY), ReportSettings())
    assert anomaly.indices == (0, 1, 2)
    assert anomaly.facts["cases"] == "NOSY-A, NOSY-B, NOSY-C"
    assert anomaly.facts["person"] == "ps-000000000001"
    assert "3 different case references" in anomaly.title


@pytest.mark.parametrize(
    ("story", "accounts", "users", "flagged"),
    [
        ("a name typed at the command line is flagged", {"r.jansen"}, ["r.jansen", "x"], ["x"]),
        ("every name an account: nothing", {"r.jansen", "x"}, ["r.jansen", "x"], []),
        ("accounts not known (the coordinator's log): nothing", None, ["nobody"], []),
        ("an empty user name is flagged", {"r.jansen"}, [""], [""]),
    ],
)
def test_user_names_without_a_portal_account(
    story: str, accounts: set[str] | None, users: list[str], flagged: list[str]
) -> None:
    entries = [_ask([(i, f"K-{i}")], user=u, at=_at(8, 9, i)) for i, u in enumerate(users)]
    settings = ReportSettings(accounts=frozenset(accounts) if accounts is not None else None)
    found = [a for a in find_anomalies(_indexed(entries), settings) if a.kind == "unknown-user"]
    assert [a.facts["user"] for a in found] == flagged, story


def test_a_user_who_finds_far_fewer_involvements_than_colleagues_is_flagged() -> None:
    fisher = [_ask([(100 + i, f"F-{i}")], user="visser", at=_at(8, 9, i)) for i in range(12)]
    colleague = [
        _ask([(200 + i, f"G-{i}")], user="collega", at=_at(8, 10, i), hits=frozenset({200 + i}))
        for i in range(12)
    ]
    half = [
        _ask([(300 + i, f"H-{i}")], user="helft", at=_at(8, 11, i), hits=frozenset({300}))
        for i in range(12)
    ]
    entries = fisher + colleague + half
    found = [
        a for a in find_anomalies(_indexed(entries), ReportSettings()) if a.kind == "low-hit-rate"
    ]
    assert [a.facts["user"] for a in found] == ["helft", "visser"]
    assert found[1].facts["hits"] == 0 and found[1].facts["persons"] == 12
    rates = {r.user: (r.hits, r.persons) for r in hit_rates(questions(_indexed(entries)))}
    assert rates == {"visser": (0, 12), "collega": (12, 12), "helft": (1, 12)}


def test_too_few_questions_are_not_judged_on_their_hit_rate() -> None:
    fisher = [_ask([(100 + i, f"F-{i}")], user="visser", at=_at(8, 9, i)) for i in range(9)]
    colleague = [
        _ask([(200 + i, f"G-{i}")], user="collega", at=_at(8, 10, i), hits=frozenset({200 + i}))
        for i in range(12)
    ]
    assert "low-hit-rate" not in _kinds(fisher + colleague)


ZSM_NIGHTS = ReportSettings(purpose_hours={"zsm-context": Hours(0, 24, weekend=True)})


@pytest.mark.parametrize(
    ("story", "purpose", "at", "settings", "flagged"),
    [
        ("a wijkteam question at 03:00 on a Tuesday", "wijkteam", _at(8, 3), ZSM_NIGHTS, True),
        ("a ZSM question at 03:00 on a Tuesday", "zsm-context", _at(8, 3), ZSM_NIGHTS, False),
        ("a ZSM question on Saturday night", "zsm-context", _at(12, 23), ZSM_NIGHTS, False),
        ("a wijkteam question on Saturday noon", "wijkteam", _at(12, 12), ZSM_NIGHTS, True),
        (
            "a ZSM question at 03:00 without its own hours (network default)",
            "zsm-context",
            _at(8, 3),
            ReportSettings(),
            True,
        ),
        (
            "the network's hours moved to 06:00: a question at 06:30",
            "wijkteam",
            _at(8, 6, 30),
            ReportSettings(office_hours=Hours(6, 18)),
            False,
        ),
        (
            "a night desk 22:00-06:00 at 05:00",
            "nacht",
            _at(8, 5),
            ReportSettings(purpose_hours={"nacht": Hours(22, 6)}),
            False,
        ),
        (
            "a night desk 22:00-06:00 at noon",
            "nacht",
            _at(8, 12),
            ReportSettings(purpose_hours={"nacht": Hours(22, 6)}),
            True,
        ),
        # Public holidays count as outside office hours for a purpose that does not work
        # weekends, in Amsterdam time; a purpose that works weekends works them.
        (
            "a wijkteam question at 10:00 on Christmas Day",
            "wijkteam",
            _at(25, 10),
            ZSM_NIGHTS,
            True,
        ),
        ("a wijkteam question at 10:00 on Boxing Day", "wijkteam", _at(26, 10), ZSM_NIGHTS, True),
        ("a ZSM question at 10:00 on Christmas Day", "zsm-context", _at(25, 10), ZSM_NIGHTS, False),
        ("a wijkteam question at 10:00 on 24 December", "wijkteam", _at(24, 10), ZSM_NIGHTS, False),
        (
            "a wijkteam question at 00:30 on Christmas Day, Amsterdam time (23:30 UTC the day "
            "before)",
            "wijkteam",
            _at(25, 0, 30),
            ReportSettings(office_hours=Hours(0, 24)),
            True,
        ),
        (
            "a wijkteam question at 23:30 on 24 December, Amsterdam time",
            "wijkteam",
            _at(24, 23, 30),
            ReportSettings(office_hours=Hours(0, 24)),
            False,
        ),
    ],
)
def test_office_hours_are_the_purposes_own(
    story: str, purpose: str, at: dt.datetime, settings: ReportSettings, flagged: bool
) -> None:
    entries = [_ask([(1, "K-1")], purpose=purpose, at=at)]
    assert ("off-hours" in _kinds(entries, settings)) is flagged, story


def test_a_question_on_a_public_holiday_names_the_holiday() -> None:
    at = dt.datetime(2027, 4, 27, 10, tzinfo=AMS).astimezone(dt.UTC)  # Koningsdag, a Tuesday
    entries = [_ask([(1, "K-1")], purpose="wijkteam", at=at)]
    [found] = [
        a for a in find_anomalies(_indexed(entries), ReportSettings()) if a.kind == "off-hours"
    ]
    assert found.facts["holiday"] == "Koningsdag" and found.facts["weekend"] == 0
    assert "on a public holiday (Koningsdag)" in found.title


def _login_failed(minute: int, user: str = "d.devries", count: int = 0) -> AuditEntry:
    return AuditEntry(
        event=Event.LOGIN_FAILED,
        at=_at(8, 9, minute),
        user=user,
        reason="wrong-password",
        details={"count": str(count)} if count else {},
    )


@pytest.mark.parametrize(
    ("story", "entries", "expected"),
    [
        ("two failed logins in a day are ordinary", [_login_failed(i) for i in range(2)], []),
        ("three are flagged", [_login_failed(i) for i in range(3)], [3]),
        ("a counted record weighs its count", [_login_failed(0, count=12)], [12]),
        (
            "failures of names that are no account are grouped together",
            [_login_failed(i, user="") for i in range(4)],
            [4],
        ),
    ],
)
def test_failed_logins_per_account_per_day(
    story: str, entries: list[AuditEntry], expected: list[int]
) -> None:
    found = [a for a in find_anomalies(_indexed(entries), ReportSettings())]
    assert [a.facts["count"] for a in found if a.kind == "failed-logins"] == expected, story


def test_every_role_change_is_shown_with_who_made_it() -> None:
    change = AuditEntry(
        event=Event.ROLE_CHANGE,
        at=_at(8, 9),
        organisation="zvh",
        user="b.bakker",
        role="beheerder",
        reason="changed",
        details={"account": "r.jansen", "roles": "regisseur,dpo", "purposes": ""},
    )
    (anomaly,) = find_anomalies(_indexed([change]), ReportSettings())
    assert anomaly.kind == "role-change" and anomaly.indices == (0,)
    assert anomaly.facts["account"] == "r.jansen" and anomaly.facts["by"] == "b.bakker"


def test_counted_refusals_weigh_their_count() -> None:
    refusals = [
        AuditEntry(
            event=Event.REFUSAL,
            at=_at(8, 9, i),
            organisation="politie",
            reason="QuotaExceeded",
            details={"count": "40", "minute": "x"} if i else {},
        )
        for i in range(2)
    ]
    (anomaly,) = find_anomalies(_indexed(refusals), ReportSettings())
    assert anomaly.kind == "quota" and anomaly.facts["count"] == 41
    assert "41 refusals" in anomaly.title


def _answered(entry: AuditEntry, answer_id: str, outcome: str, retry_of: str = "") -> AuditEntry:
    """``entry`` as answered under ``answer_id``, every person's answer from the politie being
    ``outcome``; marked as a retry of ``retry_of`` when given."""
    details = dict(entry.details) | ({"retry_of": retry_of} if retry_of else {})
    outcomes = {s.fingerprint: {"politie": outcome} for s in entry.subjects}
    return dataclasses.replace(entry, answer_id=answer_id, outcomes=outcomes, details=details)


def test_asking_again_the_persons_whose_answer_was_incomplete_is_not_a_repeat() -> None:
    first = _answered(_ask([(1, "K-1")], at=_at(8, 9, 0)), "a-1", "unreachable")
    second = _answered(_ask([(1, "K-1")], at=_at(8, 9, 5)), "a-2", "unreachable", "a-1")
    third = _answered(_ask([(1, "K-1")], at=_at(8, 9, 10)), "a-3", "not-involved", "a-2")
    assert _kinds([first, second, third]) == []
    # The same three questions without the retry mark are a repeat.
    plain = [dataclasses.replace(e, details={"persons": "1"}) for e in (first, second, third)]
    assert _kinds(plain) == ["repeat-subject"]


@pytest.mark.parametrize(
    ("story", "retry_of", "earlier_outcome", "earlier_user", "earlier_case"),
    [
        ("a 'retry' of a complete answer", "a-1", "not-involved", "r.jansen", "K-1"),
        ("a 'retry' of an answer that does not exist", "a-404", "unreachable", "r.jansen", "K-1"),
        ("a 'retry' of another user's incomplete answer", "a-1", "unreachable", "b.ander", "K-1"),
        (
            "a 'retry' of an incomplete answer for another case",
            "a-1",
            "unreachable",
            "r.jansen",
            "K-9",
        ),
    ],
)
def test_a_question_marked_as_a_retry_still_counts_unless_it_retries_an_incomplete_answer(
    story: str, retry_of: str, earlier_outcome: str, earlier_user: str, earlier_case: str
) -> None:
    """The attacker's move: mark every look-up as a retry to stay under the repeat rule."""
    earlier = _answered(
        _ask([(1, earlier_case)], user=earlier_user, at=_at(8, 9, 0)), "a-1", earlier_outcome
    )
    asked = [
        _answered(_ask([(1, "K-1")], at=_at(8, 9, i)), f"b-{i}", "not-involved", retry_of)
        for i in range(1, 4)
    ]
    assert "repeat-subject" in _kinds([earlier, *asked]), story


def test_the_answers_the_repeat_rule_reads_as_incomplete_are_exactly_the_unanswered_ones() -> None:
    from betrokken.answer import Outcome
    from betrokken.audit.anomalies import UNANSWERED

    assert {o.value for o in Outcome if not o.answered} == UNANSWERED
