"""Counting repeated events per minute instead of recording each one (docs/adr/0017).

Used by the coordinator for refusals and by nodes for alarms: a hostile or broken peer that is
refused thousands of times a minute adds a bounded number of records to a log, not thousands.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Tally:
    """How many events of one kind one caller had in one minute, beyond those recorded."""

    caller: str
    kind: str
    minute: dt.datetime  # the start of the minute (UTC)
    count: int
    methods: tuple[str, ...]


class MinuteTally:
    """Per caller and minute: the first ``individual_per_minute`` events are to be recorded one
    by one; the rest — and every event of a kind in ``always_counted`` — are counted per kind, and
    :meth:`due` hands out the counts of minutes that are over (one record each)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        individual_per_minute: int = 10,
        always_counted: frozenset[str] = frozenset(),
    ) -> None:
        self.clock = clock
        self.individual_per_minute = individual_per_minute
        self.always_counted = always_counted
        self._recorded: dict[tuple[str, int], int] = {}
        self._counted: dict[tuple[str, str, int], tuple[int, set[str]]] = {}
        self._lock = threading.Lock()

    def admit(self, caller: str, kind: str, method: str = "") -> bool:
        """True when this event is to be recorded on its own; False when it was counted."""
        minute = int(self.clock() // 60)
        with self._lock:
            if kind not in self.always_counted:
                done = self._recorded.get((caller, minute), 0)
                if done < self.individual_per_minute:
                    self._recorded[(caller, minute)] = done + 1
                    return True
            count, methods = self._counted.get((caller, kind, minute), (0, set()))
            if method:
                methods.add(method)
            self._counted[(caller, kind, minute)] = (count + 1, methods)
            return False

    def first_counted(self, caller: str, kind: str) -> bool:
        """Whether the event just counted was the first of its kind for ``caller`` this minute
        (to log it once, not every time)."""
        minute = int(self.clock() // 60)
        with self._lock:
            return self._counted.get((caller, kind, minute), (0, set()))[0] == 1

    def pending(self) -> list[Tally]:
        """The counts of minutes not over yet, left in place (kept durably so that a process
        that is killed before its minute ends still has them recorded at its next start)."""
        minute = int(self.clock() // 60)
        with self._lock:
            return [
                Tally(
                    caller,
                    kind,
                    dt.datetime.fromtimestamp(start * 60, dt.UTC),
                    count,
                    tuple(sorted(methods)),
                )
                for (caller, kind, start), (count, methods) in sorted(self._counted.items())
                if start >= minute
            ]

    def due(self, final: bool = False) -> list[Tally]:
        """The counts of minutes that are over (all of them with ``final``), taken out."""
        minute = int(self.clock() // 60)
        with self._lock:
            keys = [k for k in self._counted if final or k[2] < minute]
            tallies = [
                Tally(
                    caller,
                    kind,
                    dt.datetime.fromtimestamp(start * 60, dt.UTC),
                    self._counted[(caller, kind, start)][0],
                    tuple(sorted(self._counted[(caller, kind, start)][1])),
                )
                for caller, kind, start in sorted(keys)
            ]
            for key in keys:
                del self._counted[key]
            for old in [k for k in self._recorded if k[1] < minute]:
                del self._recorded[old]
        return tallies
