"""A per-organisation limit on calls per minute, and refusals counted rather than flooded.

:class:`RateLimiter` is the network's ``rate_limit_per_minute`` for one kind of call (questions;
the log-proof calls have their own), per coordinator process.

:class:`RefusalCounter` keeps the coordinator's audit log from being filled by a client that is
refused again and again (a flood drill wrote 3,200 signed records in 10 s). Per caller and
minute, the first :data:`INDIVIDUAL_PER_MINUTE` refusals are recorded one by one (with the
question, so a DPO can still find a refused attempt about a person); every further refusal, and
*every* call refused by the rate limit, is only counted, and each count becomes one record when
its minute is over.
So the log grows by at most ``INDIVIDUAL_PER_MINUTE`` + one record per kind of refusal per caller
per minute, however hard a client tries (docs/adr/0017).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable
from zoneinfo import ZoneInfo

from betrokken.errors import QuotaExceeded, RateLimited
from betrokken.tally import MinuteTally, Tally

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
INDIVIDUAL_PER_MINUTE = 10
RATE_LIMITED = "RateLimited"
__all__ = ["RATE_LIMITED", "DailyPersons", "RateLimiter", "RefusalCounter", "Tally"]


class DailyPersons:
    """Persons asked about per organisation per day, counted per question as it names them.

    The key service counts the pseudonyms it evaluates; an organisation that keeps pseudonyms it
    obtained once can ask again about them without the key service. The coordinator sees every
    question, so it counts the persons of each one against the same daily quota
    (``keyservice.quotas`` / ``default_daily_quota``): re-used pseudonyms are counted too. Held
    in memory per coordinator process and day (Europe/Amsterdam)."""

    def __init__(self, clock: Callable[[], dt.date] | None = None) -> None:
        self.clock = clock or (lambda: dt.datetime.now(AMSTERDAM).date())
        self._counts: dict[str, tuple[dt.date, int]] = {}
        self._lock = threading.Lock()

    def count(self, organisation: str, persons: int, limit: int) -> None:
        today = self.clock()
        with self._lock:
            day, used = self._counts.get(organisation, (today, 0))
            if day != today:
                used = 0
            if used + persons > limit:
                raise QuotaExceeded(
                    f"organisation '{organisation}' asked about {used} persons today; this "
                    f"question about {persons} more would pass the network's daily quota of "
                    f"{limit} (counted per question, also for pseudonyms obtained before)",
                    hint="ask again tomorrow, or ask the network's administrators for a higher "
                    "quota under the covenant",
                )
            self._counts[organisation] = (today, used + persons)


class RateLimiter:
    def __init__(
        self, per_minute: int, clock: Callable[[], float] = time.monotonic, what: str = "questions"
    ) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.what = what
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, organisation: str) -> None:
        now = self.clock()
        with self._lock:
            window = self._seen.setdefault(organisation, deque())
            while window and now - window[0] >= 60.0:
                window.popleft()
            if len(window) >= self.per_minute:
                raise RateLimited(
                    f"organisation '{organisation}' made {len(window)} {self.what} calls in the "
                    f"last minute; the network allows {self.per_minute}",
                    hint="wait a minute; for large lists use --file batches",
                )
            window.append(now)


class RefusalCounter(MinuteTally):
    """Per caller: the first refusals of a minute one by one, the rest (and every rate-limited
    call) counted per kind."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        individual_per_minute: int = INDIVIDUAL_PER_MINUTE,
    ) -> None:
        super().__init__(clock, individual_per_minute, always_counted=frozenset({RATE_LIMITED}))
