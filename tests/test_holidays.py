"""Dutch public holidays (betrokken/holidays.py), as tables over several years."""

from __future__ import annotations

import datetime as dt

import pytest

from betrokken import holidays


@pytest.mark.parametrize(
    ("year", "sunday"),
    [
        (2000, dt.date(2000, 4, 23)),
        (2008, dt.date(2008, 3, 23)),  # early: Hemelvaart on 1 May
        (2011, dt.date(2011, 4, 24)),  # late
        (2019, dt.date(2019, 4, 21)),
        (2024, dt.date(2024, 3, 31)),
        (2025, dt.date(2025, 4, 20)),
        (2026, dt.date(2026, 4, 5)),
        (2027, dt.date(2027, 3, 28)),
        (2030, dt.date(2030, 4, 21)),
        (2038, dt.date(2038, 4, 25)),  # the latest possible date
        (2285, dt.date(2285, 3, 22)),  # the earliest possible date
    ],
)
def test_easter_is_the_gregorian_computus(year: int, sunday: dt.date) -> None:
    assert holidays.easter(year) == sunday
    assert sunday.weekday() == 6


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (dt.date(2026, 1, 1), "Nieuwjaarsdag"),
        (dt.date(2026, 4, 5), "Eerste Paasdag"),
        (dt.date(2026, 4, 6), "Tweede Paasdag"),
        (dt.date(2026, 4, 27), "Koningsdag"),
        (dt.date(2025, 4, 26), "Koningsdag"),  # the 27th was a Sunday
        (dt.date(2031, 4, 26), "Koningsdag"),  # and will be again
        (dt.date(2026, 5, 5), "Bevrijdingsdag"),  # every year, not only in lustrum years
        (dt.date(2025, 5, 5), "Bevrijdingsdag"),
        (dt.date(2026, 5, 14), "Hemelvaartsdag"),
        (dt.date(2027, 5, 6), "Hemelvaartsdag"),
        (dt.date(2026, 5, 24), "Eerste Pinksterdag"),
        (dt.date(2026, 5, 25), "Tweede Pinksterdag"),
        (dt.date(2024, 5, 20), "Tweede Pinksterdag"),
        (dt.date(2026, 12, 25), "Eerste Kerstdag"),
        (dt.date(2026, 12, 26), "Tweede Kerstdag"),
        # Not public holidays.
        (dt.date(2026, 4, 3), ""),  # Goede Vrijdag: not in the Algemene termijnenwet
        (dt.date(2025, 4, 27), ""),  # the Sunday Koningsdag moved from
        (dt.date(2026, 4, 26), ""),  # the 27th is a Monday: the 26th is an ordinary day
        (dt.date(2026, 12, 7), ""),
        (dt.date(2026, 12, 31), ""),  # Oudejaarsdag
    ],
)
def test_the_dutch_public_holidays(day: dt.date, name: str) -> None:
    assert holidays.holiday(day) == name


@pytest.mark.parametrize("year", [2024, 2025, 2026, 2027, 2030])
def test_every_year_has_ten_holidays_two_on_sundays(year: int) -> None:
    days = holidays.public_holidays(year)
    assert len(days) == 10
    assert holidays.easter(year) in days and days[holidays.easter(year)] == "Eerste Paasdag"


def test_two_feasts_on_one_day_are_named_together() -> None:
    # Easter on 27 March puts Hemelvaartsdag on 5 May (the first such year from 2026 is 2157).
    year = next(y for y in range(2026, 2400) if holidays.easter(y) == dt.date(y, 3, 27))
    assert holidays.holiday(dt.date(year, 5, 5)) == "Bevrijdingsdag en Hemelvaartsdag"
