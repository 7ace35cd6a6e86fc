"""The short answer code and the filter and pages of "Mijn vragen", as tables (no browser)."""

from __future__ import annotations

import datetime as dt
import uuid

from betrokken.portal.answers import (
    AskedQuestion,
    CaseFilter,
    CaseHistory,
    answer_code,
    filter_cases,
    normal_code,
    page_of,
)


def test_an_answer_code_is_8_unambiguous_characters_and_stable() -> None:
    ids = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(2000)]
    codes = [answer_code(i) for i in ids]
    assert all(len(c) == 9 and c[4] == "-" for c in codes)
    assert not set("".join(codes)) & set("ILOU")
    assert len(set(codes)) == len(codes)  # no two of 2,000 answers share a code
    assert answer_code(ids[0]) == answer_code(ids[0]) and answer_code("") == ""


def test_a_code_typed_as_heard_finds_the_answer() -> None:
    code = answer_code("3f1c2a9e-0000-4000-8000-000000000001")
    typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert normal_code(typed) == code


def _question(case: str, day: dt.date, answer_id: str) -> AskedQuestion:
    at = dt.datetime.combine(day, dt.time(10), tzinfo=dt.UTC)
    return AskedQuestion(at, case, "triage", answer_id, "", [])


def test_the_filter_keeps_case_number_part_days_and_answer_code() -> None:
    cases = [
        CaseHistory("ZVH-2026-0142", [_question("ZVH-2026-0142", dt.date(2026, 12, 1), "a")]),
        CaseHistory("ZVH-2026-0200", [_question("ZVH-2026-0200", dt.date(2026, 11, 2), "b")]),
    ]
    assert [c.case for c in filter_cases(cases, CaseFilter(case="0142"))] == ["ZVH-2026-0142"]
    since = CaseFilter(first=dt.date(2026, 11, 15))
    assert [c.case for c in filter_cases(cases, since)] == ["ZVH-2026-0142"]
    until = CaseFilter(last=dt.date(2026, 11, 2))
    assert [c.case for c in filter_cases(cases, until)] == ["ZVH-2026-0200"]
    by_code = CaseFilter(code=answer_code("b").lower())
    assert [c.case for c in filter_cases(cases, by_code)] == ["ZVH-2026-0200"]
    assert filter_cases(cases, CaseFilter()) == cases


def test_pages_hold_at_most_their_size_and_a_page_out_of_range_shows_the_nearest() -> None:
    items = list(range(23))
    assert page_of(items, 1, 10) == (list(range(10)), 1, 3)
    assert page_of(items, 3, 10) == ([20, 21, 22], 3, 3)
    assert page_of(items, 9, 10)[1] == 3 and page_of(items, -1, 10)[1] == 1
    assert page_of([], 1, 10) == ([], 1, 1)
