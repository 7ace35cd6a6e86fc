"""An audit record's time is read as strptime read it: the canonical form on a fast path (a node
reads one per question, docs/adr/0046), anything else through strptime as before."""

from __future__ import annotations

import datetime as dt

import pytest

from betrokken.audit.record import format_time, parse_time

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-07T19:44:15.123456Z",
        "2026-01-01T00:00:00.000000Z",
        "1999-12-31T23:59:59.999999Z",
        "2028-02-29T12:00:00.000001Z",
        "2026-1-7T9:4:5.12Z",  # not canonical: strptime's reading, as before
        "\u0662\u0660\u0662\u0666-12-07T19:44:15.123456Z",  # other digits: strptime's too
    ],
)
def test_a_time_reads_as_strptime_reads_it(text: str) -> None:
    expected = dt.datetime.strptime(text, FORMAT).replace(tzinfo=dt.UTC)
    assert parse_time(text) == expected and parse_time(text).tzinfo is dt.UTC


def test_what_format_time_writes_reads_back_to_the_same_moment() -> None:
    moment = dt.datetime(2026, 12, 7, 19, 44, 15, 123456, tzinfo=dt.UTC)
    assert parse_time(format_time(moment)) == moment


@pytest.mark.parametrize(
    "text",
    [
        "2026-13-07T19:44:15.123456Z",  # no such month
        "2027-02-29T12:00:00.000000Z",  # no such day
        "2026-12-07 19:44:15.123456Z",
        "2026-12-07T19:44:15.123456",
        "",
    ],
)
def test_a_time_that_strptime_refuses_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        dt.datetime.strptime(text, FORMAT)
    with pytest.raises(ValueError):
        parse_time(text)
