"""The per-organisation question rate limit."""

from __future__ import annotations

import pytest

from betrokken.coordinator.ratelimit import RateLimiter
from betrokken.errors import RateLimited


def test_the_limit_holds_per_organisation_and_window() -> None:
    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("zvh")
    with pytest.raises(RateLimited) as info:
        limiter.check("zvh")
    assert info.value.exit_code == 4 and "3" in info.value.message
    limiter.check("politie")  # another organisation has its own budget
    now[0] = 61.0
    limiter.check("zvh")  # the window moved on
