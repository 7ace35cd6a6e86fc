"""Retention of audit records: after the term, content goes, leaf hashes stay."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from betrokken.audit.log import AuditLog
from betrokken.audit.record import AuditEntry, Event


@dataclass(frozen=True)
class Pruned:
    count: int
    first: int | None
    last: int | None
    cutoff: dt.datetime

    def describe(self) -> str:
        if not self.count:
            return f"nothing to prune: no record older than {self.cutoff:%Y-%m-%d}"
        return (
            f"pruned {self.count} record(s) older than {self.cutoff:%Y-%m-%d} "
            f"(indices {self.first}..{self.last}); their leaf hashes are kept, so the log still "
            "verifies"
        )


def cutoff_for(years: int, now: dt.datetime) -> dt.datetime:
    try:
        return now.replace(year=now.year - years)
    except ValueError:  # 29 February
        return now.replace(year=now.year - years, day=28)


def prune_expired(log: AuditLog, years: int, now: dt.datetime, user: str) -> Pruned:
    cutoff = cutoff_for(years, now)
    count, first, last = log.prune(cutoff)
    if count:
        log.append(
            [
                AuditEntry(
                    event=Event.PRUNE,
                    at=now,
                    user=user,
                    reason=f"retention term of {years} years",
                    details={
                        "count": str(count),
                        "first": str(first),
                        "last": str(last),
                        "before": cutoff.isoformat(),
                    },
                )
            ]
        )
    return Pruned(count, first, last, cutoff)
