"""The FG's register of access requests: each letter is a request with its one-month deadline,
made again under the same reference it stays one request, and sending closes it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine

from betrokken.portal.register import Register, RegisterBase


@pytest.fixture
def engine() -> Iterator[Engine]:
    made = create_engine("sqlite://")
    RegisterBase.metadata.create_all(made)
    yield made
    made.dispose()


def test_a_letter_made_twice_under_one_reference_is_one_request(engine: Engine) -> None:
    register = Register(engine)
    first = register.letter_made("FG-1", "ps-aaaa", dt.date(2026, 11, 2), "d.devries")
    again = register.letter_made("FG-1", "ps-aaaa", dt.date(2026, 11, 2), "e.fg")
    assert again.id == first.id and again.made_by == "e.fg"
    assert first.deadline == dt.date(2026, 12, 2)
    other = register.letter_made("", "ps-bbbb", dt.date(2026, 11, 20), "d.devries")
    assert [r.id for r in register.requests()] == [first.id, other.id]  # nearest deadline first


def test_an_unsent_request_past_its_deadline_is_overdue_and_sending_closes_it(
    engine: Engine,
) -> None:
    register = Register(engine)
    made = register.letter_made("FG-2", "ps-cccc", dt.date(2026, 1, 31), "d.devries")
    assert made.deadline == dt.date(2026, 2, 28)
    assert not made.overdue(dt.date(2026, 2, 28)) and made.overdue(dt.date(2026, 3, 1))
    sent = register.sent(made.id, dt.date(2026, 3, 2), "d.devries")
    assert sent is not None and sent.sent_on == dt.date(2026, 3, 2)
    assert not sent.overdue(dt.date(2026, 4, 1))
    # A letter made again after sending is a new request (a new question by the person).
    newer = register.letter_made("FG-2", "ps-cccc", dt.date(2026, 6, 1), "d.devries")
    assert newer.id != made.id
    assert register.sent(9999, dt.date(2026, 3, 2), "x") is None


def test_a_request_remembers_its_question_to_the_partners_once(engine: Engine) -> None:
    """The restriction step (docs/adr/0039): a letter made again for an open request reads the
    answers to the question asked then, so the register keeps its answer id and time."""
    register = Register(engine)
    made = register.letter_made("FG-3", "ps-dddd", dt.date(2026, 11, 2), "d.devries")
    assert (made.answer_id, made.asked_at) == ("", None)
    at = dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.UTC)
    register.asked(made.id, "7f1c2a4e-9b3d-4c5e-8f6a-0123456789ab", at)
    again = register.letter_made("FG-3", "ps-dddd", dt.date(2026, 11, 2), "e.fg")
    assert again.id == made.id
    assert (again.answer_id, again.asked_at) == ("7f1c2a4e-9b3d-4c5e-8f6a-0123456789ab", at)
