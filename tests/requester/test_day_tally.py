"""The asking side's day tally: a question's own record is counted from memory when it is the
next record the tally would read, and the tally is always what reading the trail gives."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from betrokken.audit.log import AuditLog, LogBase
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.clock import utcnow
from betrokken.crypto.note import NoteKey
from betrokken.db import make_engine
from betrokken.requester.client import Requester

ORG = "zvh-test"
KEY = NoteKey.generate(f"betrokken/test/{ORG}")


class _Org:
    id = ORG


def _requester(trail: AuditLog) -> Requester:
    """Only what the tally reads: the trail and the organisation (no network, no services)."""
    requester = Requester.__new__(Requester)
    requester.trail = trail
    requester.org = _Org()  # type: ignore[assignment]
    return requester


def _question(user: str, case: str, pseudonym: str, at: dt.datetime | None = None) -> AuditEntry:
    return AuditEntry(
        event=Event.OWN_QUERY,
        at=at or utcnow(),
        organisation=ORG,
        user=user,
        subjects=(Subject(pseudonym, "key", pseudonym[:8], case),),
        details={"persons": "1"},
    )


@pytest.fixture
def trail(tmp_path: Path) -> AuditLog:
    return AuditLog(
        make_engine(f"sqlite:///{tmp_path / 'trail.db'}", LogBase.metadata), KEY, KEY.name
    )


def _reading(trail: AuditLog) -> tuple[Requester, list[int]]:
    """A requester whose trail notes every record index it reads."""
    read: list[int] = []
    requester = _requester(trail)
    records = trail.records

    def noted(**kwargs: Any) -> Iterator[Any]:
        for record in records(**kwargs):
            read.append(record.index)
            yield record

    requester.trail = type("Noting", (), {"records": staticmethod(noted), "engine": trail.engine})()  # type: ignore[assignment]
    return requester, read


def test_the_own_record_is_counted_without_reading_it_back(trail: AuditLog) -> None:
    requester, read = _reading(trail)
    assert requester._asked_today("r.jansen") == (0, {})
    first = trail.append([_question("r.jansen", "C-1", "aa" * 32)])[0]
    requester._counted(_question("r.jansen", "C-1", "aa" * 32), first)
    second = trail.append([_question("r.jansen", "C-1", "bb" * 32)])[0]
    requester._counted(_question("r.jansen", "C-1", "bb" * 32), second)
    assert requester._asked_today("r.jansen") == (2, {"C-1": 2})
    assert read == []  # neither record was read back
    assert _requester(trail)._asked_today("r.jansen") == (2, {"C-1": 2})  # what a reading gives


def test_a_record_written_by_another_process_in_between_is_read_and_counted(
    trail: AuditLog,
) -> None:
    requester, read = _reading(trail)
    assert requester._asked_today("r.jansen") == (0, {})
    other = trail.append([_question("r.jansen", "C-1", "cc" * 32)])[0]  # another process
    own = trail.append([_question("r.jansen", "C-1", "dd" * 32)])[0]
    requester._counted(_question("r.jansen", "C-1", "dd" * 32), own)  # not the next: not counted
    assert requester._asked_today("r.jansen") == (2, {"C-1": 2})
    assert read == [other, own]
    # counted once, whichever way it came in
    requester._counted(_question("r.jansen", "C-1", "dd" * 32), own)
    assert requester._asked_today("r.jansen") == (2, {"C-1": 2})


def test_what_a_reading_would_not_count_is_not_counted_from_memory(trail: AuditLog) -> None:
    requester, _ = _reading(trail)
    assert requester._asked_today("r.jansen") == (0, {})
    yesterday = utcnow() - dt.timedelta(days=2)
    index = trail.append([_question("r.jansen", "C-1", "ee" * 32, at=yesterday)])[0]
    requester._counted(_question("r.jansen", "C-1", "ee" * 32, at=yesterday), index)
    refused = _question("r.jansen", "C-1", "ff" * 32)
    refused = AuditEntry(**{**refused.__dict__, "details": {"persons": "1", "message": "refused"}})
    index = trail.append([refused])[0]
    requester._counted(refused, index)
    assert requester._asked_today("r.jansen") == (0, {})
    assert _requester(trail)._asked_today("r.jansen") == (0, {})
