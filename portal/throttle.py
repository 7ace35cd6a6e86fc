"""Slowing down password guessing without a lock an outsider can hold.

A lock after five failures let anyone keep any account locked by trying five wrong passwords
every fifteen minutes. Instead, failures are counted per **source** (the client's address) and per
**account name as typed** (existing or not, so the answer never tells which accounts exist).
After ``free`` failures, each further attempt must wait a delay that doubles with every failure:
1, 2, 4, ... seconds, up to ``source_cap`` for a source and ``account_cap`` for an account name.
An attempt during a delay is not checked at all (the password is never tried), and gets the
same page for every account name.

The account's cap is short (30 s by default): an outsider guessing from many addresses makes
every guess for that account wait, but the account's owner, from an address of their own, waits
at most that long. The guessing source itself slows to ``source_cap``. A success clears both
counts; a count is forgotten a day after its last failure. Held in the portal's memory (one
process serves one organisation): a restart forgets the counts, which only ever unblocks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

FORGET_AFTER = 24 * 3600.0
MAX_KEYS = 100_000  # counts kept at most; the oldest go first (an attacker inventing names)


@dataclass
class _Count:
    failures: int = 0
    not_before: float = 0.0
    last: float = 0.0


class LoginThrottle:
    def __init__(self, free: int = 5, source_cap: float = 900.0, account_cap: float = 30.0) -> None:
        self.free = free
        self.caps = {"source": source_cap, "account": account_cap}
        self._counts: dict[tuple[str, str], _Count] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(source: str, account: str) -> list[tuple[str, str]]:
        return [("source", source), ("account", account.strip().casefold())]

    def delay(self, failures: int, kind: str) -> float:
        """The wait after ``failures`` failures: none up to ``free``, then doubling, capped."""
        if failures < self.free:
            return 0.0
        return float(min(self.caps[kind], 2.0 ** (failures - self.free)))

    def wait(self, source: str, account: str, now: float) -> float:
        """Seconds until an attempt for ``account`` from ``source`` is checked again (0: now)."""
        with self._lock:
            waits = [
                count.not_before - now
                for key in self._keys(source, account)
                if (count := self._counts.get(key)) is not None
            ]
        return max([0.0, *waits])

    def failed(self, source: str, account: str, now: float) -> None:
        with self._lock:
            self._forget(now)
            for key in self._keys(source, account):
                count = self._counts.pop(key, None) or _Count()
                if now - count.last > FORGET_AFTER:
                    count = _Count()
                count.failures += 1
                count.last = now
                count.not_before = now + self.delay(count.failures, key[0])
                self._counts[key] = count  # newest last: the oldest are forgotten first

    def succeeded(self, source: str, account: str) -> None:
        with self._lock:
            for key in self._keys(source, account):
                self._counts.pop(key, None)

    def release(self, account: str) -> None:
        """A beheerder unblocks the account: its failures are forgotten (not the source's)."""
        with self._lock:
            self._counts.pop(self._keys("", account)[1], None)

    def _forget(self, now: float) -> None:
        while self._counts:
            key, count = next(iter(self._counts.items()))
            if len(self._counts) < MAX_KEYS and now - count.last <= FORGET_AFTER:
                return
            del self._counts[key]
