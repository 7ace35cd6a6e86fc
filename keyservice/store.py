"""The key service's only state: how many persons each organisation had evaluated per day, per use
and per key (the organisation whose key it was evaluated under).

No blinded element, pseudonym or BSN is ever stored here.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping

from sqlalchemy import Date, Integer, MetaData, String, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from betrokken.db import make_engine
from betrokken.errors import QuotaExceeded


class Base(DeclarativeBase):
    metadata = MetaData()


class QuotaUsage(Base):
    __tablename__ = "quota_usage"
    organisation: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    use: Mapped[str] = mapped_column(String(16), primary_key=True, default="question")
    # The organisation under whose key the persons were evaluated: a quota holds per key, so
    # asking under five keys costs five times what asking under one does (docs/adr/0024).
    under_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)


# A process reserves quota durably in blocks of up to this many persons, and at most this share
# of an organisation's daily limit at once (docs/adr/0022).
QUOTA_BLOCK = 1000
QUOTA_BLOCK_SHARE = 20  # a block is at most 1/20 of the daily limit: a crash loses at most 5%

Key = tuple[str, dt.date, str, str]  # organisation, day, use, under whose key
TABLES = {"question": "quotas", "import": "bulk_quotas", "access-request": "access_quotas"}


class QuotaStore:
    """Counts each organisation's persons per day, use and key against its quota.

    The count lives in memory; the database holds what this process (and any other) *reserved*,
    in blocks written durably before any of it is used (measured: one durable write per request
    cost four times the VOPRF). A reservation is only granted while the reserved total stays
    within the limit, so the limit holds across processes and across a crash, which at most
    forfeits the unused rest of one block (a crash never lets anyone ask more).
    """

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, Base.metadata, component="keyservice")
        self._lock = threading.Lock()
        self._left: dict[Key, int] = {}  # reserved by this process and not yet used
        self._total: dict[Key, int] = {}  # the reserved total as of this process's last reservation

    def consume(
        self,
        organisation: str,
        count: int,
        limit: int,
        day: dt.date,
        use: str = "question",
        key: str | None = None,
    ) -> int:
        """Count ``count`` persons against today's quota for ``use`` under one key (default: the
        organisation's own); return what is left.

        Raises :class:`QuotaExceeded` (and counts nothing) when the batch does not fit.
        """
        return self.consume_keys(organisation, count, {key or organisation: limit}, day, use)

    def consume_keys(
        self,
        organisation: str,
        count: int,
        limits: Mapping[str, int],
        day: dt.date,
        use: str = "question",
    ) -> int:
        """Count ``count`` persons under every key in ``limits`` (key owner -> daily limit), all
        or nothing; return the least that is left under any of them."""
        taken: list[Key] = []
        remaining: list[int] = []
        with self._lock:
            try:
                for owner, limit in limits.items():
                    key = (organisation, day, use, owner)
                    remaining.append(self._take(key, count, limit))
                    taken.append(key)
            except QuotaExceeded:
                for key in taken:  # what was counted under the other keys is given back
                    self._left[key] += count
                raise
        return min(remaining, default=0)

    def _take(self, key: Key, count: int, limit: int) -> int:
        left = self._left.get(key, 0)
        if count > left:
            block = min(QUOTA_BLOCK, max(1, limit // QUOTA_BLOCK_SHARE))
            grant, self._total[key] = self._reserve(
                key, count - left, max(count - left, block), limit, left
            )
            left += grant
        self._left[key] = left - count
        return limit - (self._total[key] - self._left[key])

    @staticmethod
    def _where(key: Key) -> tuple[ColumnElement[bool], ...]:
        organisation, day, use, owner = key
        return (
            QuotaUsage.organisation == organisation,
            QuotaUsage.day == day,
            QuotaUsage.use == use,
            QuotaUsage.under_key == owner,
        )

    def _reserved(self, key: Key) -> int:
        with self.engine.connect() as conn:
            used = conn.execute(
                select(QuotaUsage.used).where(*self._where(key))
            ).scalar_one_or_none()
        return int(used or 0)

    def _reserve(self, key: Key, need: int, want: int, limit: int, left: int) -> tuple[int, int]:
        """Durably reserve between ``need`` and ``want`` more persons; returns how many, and the
        reserved total after it."""
        organisation, day, use, owner = key
        where = self._where(key)
        for _attempt in range(5):
            reserved = self._reserved(key)
            grant = min(want, limit - reserved)
            if grant < need:
                table = TABLES.get(use, "quotas")
                under = "its own key" if owner == organisation else f"the key of {owner}"
                raise QuotaExceeded(
                    f"organisation '{organisation}' has used {reserved - left} of its daily "
                    f"{use} quota of {limit} persons under {under} on {day.isoformat()}; this "
                    f"batch needs {need + left}",
                    hint="wait until tomorrow (UTC) or ask the network administrator to raise "
                    f"keyservice.{table} for this organisation",
                )
            try:
                with self.engine.begin() as conn:
                    if (
                        reserved == 0
                        and conn.execute(select(QuotaUsage.used).where(*where)).first() is None
                    ):
                        conn.execute(
                            insert(QuotaUsage).values(
                                organisation=organisation,
                                day=day,
                                use=use,
                                under_key=owner,
                                used=grant,
                            )
                        )
                        return grant, grant
                    row = conn.execute(
                        update(QuotaUsage)
                        .where(*where, QuotaUsage.used == reserved)
                        .values(used=QuotaUsage.used + grant)
                        .returning(QuotaUsage.used)
                    ).first()
                if row is not None:
                    return grant, int(row[0])
            except IntegrityError:
                pass  # another process created today's row first, or reserved meanwhile
        raise QuotaExceeded(f"could not count the quota of '{organisation}'; try again")

    def usage(self, day: dt.date, use: str = "question") -> dict[str, int]:
        """Persons each organisation had evaluated under its own key (every question and import
        is evaluated under it, so this is how many persons it asked about)."""
        return {
            org: used for (org, owner), used in self.usage_by_key(day, use).items() if org == owner
        }

    def usage_by_key(self, day: dt.date, use: str = "question") -> dict[tuple[str, str], int]:
        """(organisation, key owner) -> persons evaluated that day for ``use``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(QuotaUsage.organisation, QuotaUsage.under_key, QuotaUsage.used).where(
                    QuotaUsage.day == day, QuotaUsage.use == use
                )
            )
            found = {(org, owner): int(used) for org, owner, used in rows}
        with self._lock:  # what this process reserved but has not used is not used
            for (org, on, kind, owner), left in self._left.items():
                if on == day and kind == use and (org, owner) in found:
                    found[(org, owner)] -= left
        return found
