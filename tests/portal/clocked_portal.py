"""``betrokken portal serve`` with a clock the tests move on instead of waiting for real time.

``python tests/portal/clocked_portal.py PORTAL_TOML CLOCK_FILE`` serves the portal through the
command's own code (:func:`betrokken.portal.cli.run_portal`: the same app, logging, signals and
exit code as ``betrokken portal serve``); only its clock differs: real time plus the seconds
written in ``CLOCK_FILE`` (tests/portal/conftest.py, :class:`PortalClock`), read at every look.
So a test that needs the next TOTP step moves the portal's clock on to it.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from betrokken.clock import utcnow
from betrokken.config.load import load_portal
from betrokken.portal.cli import run_portal


class FileClock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> dt.datetime:
        try:
            offset = float(self.path.read_text() or 0)
        except FileNotFoundError:
            offset = 0.0
        return utcnow() + dt.timedelta(seconds=offset)


def main() -> None:
    config, clock = sys.argv[1:3]
    run_portal(load_portal(config), FileClock(Path(clock)))


if __name__ == "__main__":
    main()
