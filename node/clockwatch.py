"""The coordinator's clock as this node measures it (docs/adr/0042).

Every witness interval the node asks the coordinator for its checkpoint; the answer carries the
coordinator's time, and the node takes the offset from the middle of the call (NTP's way, uncertain
by half the round trip: :func:`betrokken.rules.clock_offset`). The latest measurement is kept in
memory and in a small file beside the node's state file (``node.clock``), so ``node status`` and
``doctor`` — other processes — show it. An offset surely beyond the threshold is one alarm in the
node's trail per episode (the file says whether an episode is on, so a restart does not alarm
again); the episode ends when a measurement is within the threshold again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from betrokken import rules
from betrokken.clock import utcnow

log = logging.getLogger("betrokken.witness")


class Alarms(Protocol):
    def alarm(self, kind: str, message: str, **details: str) -> None: ...


@dataclass(frozen=True)
class Measured:
    offset: float  # seconds the coordinator's clock is ahead of this node's (negative: behind)
    uncertainty: float  # half the call's round trip
    at: dt.datetime
    off: bool  # beyond the threshold: an episode is on (its alarm was raised)
    threshold: float = rules.CLOCK_OFF_SECONDS

    def describe(self) -> str:
        return (
            f"{rules.clock_verdict(self.offset, self.uncertainty, self.threshold)}; "
            f"gemeten/measured {self.at:%Y-%m-%d %H:%M:%S} UTC"
        )


def clock_file(state_file: Path) -> Path:
    """Where the measurement is kept: beside the node's state file (``node.state`` ->
    ``node.clock``)."""
    return state_file.with_suffix(".clock")


def read_measured(path: Path) -> Measured | None:
    """The latest measurement kept in ``path`` (None when there is none, or it is unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Measured(
            float(data["offset"]),
            float(data["uncertainty"]),
            dt.datetime.fromisoformat(str(data["at"])),
            bool(data["off"]),
            float(data.get("threshold", rules.CLOCK_OFF_SECONDS)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


class ClockWatch:
    """The node's view of the coordinator's clock: the latest offset, and its alarm."""

    def __init__(
        self, path: Path, alarms: Alarms, threshold: float = rules.CLOCK_OFF_SECONDS
    ) -> None:
        self.path = path
        self.alarms = alarms
        self.threshold = threshold
        self.latest = read_measured(path)

    def measured(self, offset: float, uncertainty: float) -> Measured:
        """Keep a measurement; the first one beyond the threshold in an episode is an alarm."""
        was_off = self.latest.off if self.latest is not None else False
        off = rules.clock_is_off(offset, uncertainty, self.threshold)
        current = Measured(offset, uncertainty, utcnow(), off, self.threshold)
        if off and not was_off:
            way = "voor op" if offset > 0 else "achter op"
            en_way = "ahead of" if offset > 0 else "behind"
            self.alarms.alarm(
                "clock",
                f"de klok van de coördinator loopt {abs(offset):.0f} s {way} die van dit "
                f"knooppunt (grens {self.threshold:.0f} s): vragen worden als verouderd "
                f"geweigerd; zet de klok die afwijkt gelijk (NTP) / the coordinator's clock is "
                f"{abs(offset):.0f} s {en_way} this node's clock (threshold "
                f"{self.threshold:.0f} s): questions are refused as stale; correct the clock "
                "that is off (NTP)",
                offset=f"{offset:.1f}",
            )
        elif was_off and not off:
            log.info("the coordinator's clock and this node's agree again (%.1f s)", offset)
        self.latest = current
        self._write(current)
        return current

    def _write(self, measured: Measured) -> None:
        data = {
            "offset": round(measured.offset, 3),
            "uncertainty": round(measured.uncertainty, 3),
            "at": measured.at.isoformat(),
            "off": measured.off,
            "threshold": measured.threshold,
        }
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            temporary.write_text(json.dumps(data) + "\n", encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as exc:  # the measurement stays in memory; status shows the old one
            log.warning("could not keep the coordinator's clock offset in %s (%s)", self.path, exc)
