"""Dutch public holidays, computed (pure: no I/O, no dependency).

The days a purpose that does not work weekends does not work either: its office hours do not
hold on them (:class:`betrokken.audit.anomalies.Hours`). The list is the *algemeen erkende
feestdagen* of the Algemene termijnenwet (artikel 3), the law every Dutch term and office follows:

* Nieuwjaarsdag (1 January);
* Eerste and Tweede Paasdag (Easter Sunday and Monday);
* Koningsdag (27 April; 26 April when the 27th is a Sunday — the rule since 2014);
* Bevrijdingsdag (5 May) **every year**: the Algemene termijnenwet names it without a lustrum
  condition. Many collective agreements give the day off only every fifth year (2025, 2030 ...),
  but a question asked on 5 May in any year is asked on a day the law calls a public holiday, and
  the FG's report only asks the FG to look (docs/adr/0041);
* Hemelvaartsdag (39 days after Easter);
* Eerste and Tweede Pinksterdag (49 and 50 days after Easter);
* Eerste and Tweede Kerstdag (25 and 26 December).

Goede Vrijdag is **not** one: the Algemene termijnenwet does not name it, and most care and
safety partners work that day. Easter is computed with the anonymous Gregorian algorithm
(Meeus/Jones/Butcher), valid for every year of the Gregorian calendar.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

NEW_YEAR = "Nieuwjaarsdag"
EASTER = "Eerste Paasdag"
EASTER_MONDAY = "Tweede Paasdag"
KINGS_DAY = "Koningsdag"
LIBERATION_DAY = "Bevrijdingsdag"
ASCENSION = "Hemelvaartsdag"
WHIT_SUNDAY = "Eerste Pinksterdag"
WHIT_MONDAY = "Tweede Pinksterdag"
CHRISTMAS = "Eerste Kerstdag"
BOXING_DAY = "Tweede Kerstdag"


def easter(year: int) -> dt.date:
    """Easter Sunday of ``year`` (Gregorian calendar; anonymous Gregorian algorithm)."""
    if year < 1583:
        raise ValueError("Easter is computed for Gregorian years (1583 and later)")
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def kings_day(year: int) -> dt.date:
    """Koningsdag: 27 April, or the 26th when the 27th is a Sunday."""
    day = dt.date(year, 4, 27)
    return day - dt.timedelta(days=1) if day.weekday() == 6 else day


@lru_cache(maxsize=64)
def public_holidays(year: int) -> dict[dt.date, str]:
    """Every Dutch public holiday of ``year``, date -> its Dutch name (two on one day, as
    Hemelvaartsdag and Bevrijdingsdag can be, are named together)."""
    sunday = easter(year)
    days: dict[dt.date, str] = {}
    for when, name in (
        (dt.date(year, 1, 1), NEW_YEAR),
        (sunday, EASTER),
        (sunday + dt.timedelta(days=1), EASTER_MONDAY),
        (kings_day(year), KINGS_DAY),
        (dt.date(year, 5, 5), LIBERATION_DAY),
        (sunday + dt.timedelta(days=39), ASCENSION),
        (sunday + dt.timedelta(days=49), WHIT_SUNDAY),
        (sunday + dt.timedelta(days=50), WHIT_MONDAY),
        (dt.date(year, 12, 25), CHRISTMAS),
        (dt.date(year, 12, 26), BOXING_DAY),
    ):
        days[when] = f"{days[when]} en {name}" if when in days else name
    return days


def holiday(day: dt.date) -> str:
    """The Dutch name of the public holiday ``day`` is ("" when it is none)."""
    return public_holidays(day.year).get(day, "")
