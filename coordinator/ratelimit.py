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

import threading
import time
from collections import deque
from collections.abc import Callable

from betrokken.errors import RateLimited
from betrokken.tally import MinuteTally, Tally

INDIVIDUAL_PER_MINUTE = 10
RATE_LIMITED = "RateLimited"
__all__ = ["RATE_LIMITED", "RateLimiter", "RefusalCounter", "Tally"]


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
