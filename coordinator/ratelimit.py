"""A per-organisation limit on questions per minute (per coordinator process)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from betrokken.errors import RateLimited


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
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
                    f"organisation '{organisation}' asked {len(window)} questions in the last "
                    f"minute; the network allows {self.per_minute}",
                    hint="wait a minute; for large lists use --file batches",
                )
            window.append(now)
