"""The key service's only state: how many persons each organisation had evaluated per day and use.

No blinded element, pseudonym or BSN is ever stored here.
"""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import Date, Integer, MetaData, String, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from betrokken.db import make_engine
from betrokken.errors import QuotaExceeded


class Base(DeclarativeBase):
    metadata = MetaData()


class QuotaUsage(Base):
    __tablename__ = "quota_usage"
    organisation: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    use: Mapped[str] = mapped_column(String(16), primary_key=True, default="question")
    used: Mapped[int] = mapped_column(Integer, default=0)


# A process reserves quota durably in blocks of up to this many persons, and at most this share
# of an organisation's daily limit at once (docs/adr/0022).
QUOTA_BLOCK = 1000
QUOTA_BLOCK_SHARE = 20  # a block is at most 1/20 of the daily limit: a crash loses at most 5%

Key = tuple[str, dt.date, str]


class QuotaStore:
    """Counts each organisation's persons per day and use against its quota.

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
        self, organisation: str, count: int, limit: int, day: dt.date, use: str = "question"
    ) -> int:
        """Count ``count`` persons against today's quota for ``use``; return what is left.

        Raises :class:`QuotaExceeded` (and counts nothing) when the batch does not fit.
        """
        key = (organisation, day, use)
        with self._lock:
            left = self._left.get(key, 0)
            if count > left:
                block = min(QUOTA_BLOCK, max(1, limit // QUOTA_BLOCK_SHARE))
                grant, self._total[key] = self._reserve(
                    key, count - left, max(count - left, block), limit, left
                )
                left += grant
            self._left[key] = left - count
            return limit - (self._total[key] - self._left[key])

    def _reserved(self, key: Key) -> int:
        organisation, day, use = key
        with self.engine.connect() as conn:
            used = conn.execute(
                select(QuotaUsage.used).where(
                    QuotaUsage.organisation == organisation,
                    QuotaUsage.day == day,
                    QuotaUsage.use == use,
                )
            ).scalar_one_or_none()
        return int(used or 0)

    def _reserve(self, key: Key, need: int, want: int, limit: int, left: int) -> tuple[int, int]:
        """Durably reserve between ``need`` and ``want`` more persons; returns how many, and the
        reserved total after it."""
        organisation, day, use = key
        where = (
            QuotaUsage.organisation == organisation,
            QuotaUsage.day == day,
            QuotaUsage.use == use,
        )
        for _attempt in range(5):
            reserved = self._reserved(key)
            grant = min(want, limit - reserved)
            if grant < need:
                table = "bulk_quotas" if use == "import" else "quotas"
                raise QuotaExceeded(
                    f"organisation '{organisation}' has used {reserved - left} of its daily "
                    f"{use} quota of {limit} persons on {day.isoformat()}; this batch needs "
                    f"{need + left}",
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
                                organisation=organisation, day=day, use=use, used=grant
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
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(QuotaUsage.organisation, QuotaUsage.used).where(
                    QuotaUsage.day == day, QuotaUsage.use == use
                )
            )
            found = {org: int(used) for org, used in rows}
        with self._lock:  # what this process reserved but has not used is not used
            for (org, on, kind), left in self._left.items():
                if on == day and kind == use and org in found:
                    found[org] -= left
        return found
