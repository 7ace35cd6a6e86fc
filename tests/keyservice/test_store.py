"""Per-organisation daily quotas, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from betrokken.errors import QuotaExceeded
from betrokken.keyservice.store import QuotaStore, QuotaUsage

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


def test_the_quota_is_reserved_in_durable_blocks_and_a_crash_never_lets_more_through(
    tmp_path: Path,
) -> None:
    """The count lives in memory; the database holds blocks reserved before use, so a
    new process (after a crash) starts from the reservation and the limit still holds."""
    url = f"sqlite:///{tmp_path / 'ks.db'}"
    limit = 1000  # a block is 1/20 of it: 50 persons
    first = QuotaStore(url)
    for _ in range(7):
        first.consume("zvh", 1, limit, DAY)
    with first.engine.connect() as conn:
        reserved = conn.execute(select(QuotaUsage.used)).scalar_one()
    assert reserved == 50  # one durable write for seven requests
    assert first.usage(DAY) == {"zvh": 7}
    # The process dies without giving anything back: a new one counts the whole block as used.
    second = QuotaStore(url)
    assert second.consume("zvh", 1, limit, DAY) == limit - 51
    granted = 1
    while True:
        try:
            second.consume("zvh", 7, limit, DAY)
        except QuotaExceeded:
            break
        granted += 7
    assert 50 + granted <= limit  # never more than the limit, the lost rest of a block at most
    assert limit - (50 + granted) < 50 + 7
    # and two processes at once never hand out more than the limit together
    third, fourth = QuotaStore(url), QuotaStore(url)
    total = 0
    for store in (third, fourth) * 200:
        try:
            store.consume("ggz", 3, 100, DAY)
            total += 3
        except QuotaExceeded:
            pass
    assert total <= 100


@pytest.mark.postgres
def test_the_quota_counts_persons_per_key_all_or_nothing(database_url: str) -> None:
    """Asking about 4 persons under three keys costs 4 under each; a batch that does not fit
    under one key counts nothing under the others."""
    store = QuotaStore(database_url)
    assert store.consume_keys("zvh", 4, {"zvh": 10, "politie": 10, "ggz": 10}, DAY) == 6
    assert store.consume_keys("zvh", 5, {"zvh": 10, "politie": 10}, DAY) == 1
    with pytest.raises(QuotaExceeded) as info:
        store.consume_keys("zvh", 2, {"ggz": 10, "politie": 10, "zvh": 10}, DAY)
    assert "key of politie" in info.value.message
    assert store.usage_by_key(DAY) == {("zvh", "zvh"): 9, ("zvh", "politie"): 9, ("zvh", "ggz"): 4}
    assert store.usage(DAY) == {"zvh": 9}  # persons it asked about (its own key)
    assert store.consume_keys("zvh", 6, {"ggz": 10}, DAY) == 0
