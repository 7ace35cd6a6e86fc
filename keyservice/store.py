"""The key service's only state: how many persons each organisation had evaluated per day and use.

No blinded element, pseudonym or BSN is ever stored here.
"""

from __future__ import annotations

import datetime as dt

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


class QuotaStore:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, Base.metadata, component="keyservice")

    def consume(
        self, organisation: str, count: int, limit: int, day: dt.date, use: str = "question"
    ) -> int:
        """Count ``count`` persons against today's quota for ``use``; return what is left.

        Raises :class:`QuotaExceeded` (and counts nothing) when the batch does not fit.
        """
        for _attempt in range(3):
            with self.engine.begin() as conn:
                result = conn.execute(
                    update(QuotaUsage)
                    .where(
                        QuotaUsage.organisation == organisation,
                        QuotaUsage.day == day,
                        QuotaUsage.use == use,
                        QuotaUsage.used + count <= limit,
                    )
                    .values(used=QuotaUsage.used + count)
                    .returning(QuotaUsage.used)
                )
                row = result.first()
                if row is not None:
                    return limit - int(row[0])
                used = conn.execute(
                    select(QuotaUsage.used).where(
                        QuotaUsage.organisation == organisation,
                        QuotaUsage.day == day,
                        QuotaUsage.use == use,
                    )
                ).scalar_one_or_none()
                if used is not None or count > limit:
                    table = "bulk_quotas" if use == "import" else "quotas"
                    raise QuotaExceeded(
                        f"organisation '{organisation}' has used {used or 0} of its daily {use} "
                        f"quota of {limit} persons on {day.isoformat()}; this batch needs {count}",
                        hint="wait until tomorrow (UTC) or ask the network administrator to raise "
                        f"keyservice.{table} for this organisation",
                    )
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(QuotaUsage).values(
                            organisation=organisation, day=day, use=use, used=count
                        )
                    )
                return limit - count
            except IntegrityError:
                continue  # another request created today's row first; try the update again
        raise QuotaExceeded(f"could not count the quota of '{organisation}'; try again")

    def usage(self, day: dt.date, use: str = "question") -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(QuotaUsage.organisation, QuotaUsage.used).where(
                    QuotaUsage.day == day, QuotaUsage.use == use
                )
            )
            return {org: int(used) for org, used in rows}
