"""Per-organisation daily quotas, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from betrokken.errors import QuotaExceeded
from betrokken.keyservice.store import QuotaStore

DAY = dt.date(2026, 11, 23)


@pytest.mark.postgres
def test_quota_counts_and_refuses(database_url: str) -> None:
    store = QuotaStore(database_url)
    assert store.consume("zvh", 6, 10, DAY) == 4
    assert store.consume("zvh", 4, 10, DAY) == 0
    with pytest.raises(QuotaExceeded) as info:
        store.consume("zvh", 1, 10, DAY)
    assert "zvh" in info.value.message and "10" in info.value.message
    assert info.value.status == "RESOURCE_EXHAUSTED"
    # a refused batch counts nothing; another day and another organisation are separate
    assert store.usage(DAY) == {"zvh": 10}
    assert store.consume("zvh", 10, 10, DAY + dt.timedelta(days=1)) == 0
    assert store.consume("politie", 3, 10, DAY) == 7
    with pytest.raises(QuotaExceeded):
        store.consume("ggz", 11, 10, DAY)


@pytest.mark.postgres
def test_quota_holds_under_concurrency(database_url: str) -> None:
    store = QuotaStore(database_url)

    def one(_: int) -> bool:
        try:
            store.consume("zvh", 1, 25, DAY)
            return True
        except QuotaExceeded:
            return False

    with ThreadPoolExecutor(8) as pool:
        granted = sum(pool.map(one, range(60)))
    assert granted == 25
    assert store.usage(DAY) == {"zvh": 25}
