"""P1 for the portal: after the browser and security tests above (this module runs last), no BSN
typed or uploaded is in any file the network, the portal or the browser wrote — databases,
service logs (the portal's access log included), the browser's cache, history and profile."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import require_or_skip
from tests.harness import bsns_written
from tests.portal.conftest import Chromium, PortalRun, browser_problem, files_under


def test_no_bsn_is_left_in_any_file_of_the_network_the_portal_or_the_browser(
    portal: PortalRun, chromium: Chromium, browser_profile: Path
) -> None:
    require_or_skip(browser_problem())  # without a browser there is no profile to scan
    chromium.quit()  # the browser writes what it keeps (cache, history) to its profile
    running = portal.running
    assert running.typed, "the tests before this one typed BSNs into the portal"
    bsns = running.all_bsns()
    files = files_under(running.net.directory, browser_profile)
    assert portal.log in files and portal.log.stat().st_size > 0
    assert any(p.name == "History" for p in files), "the browser kept its history on disk"
    offenders = [
        f"{path} holds {bsn[-3:]} ({encoding})"
        for path in files
        for _, bsn, encoding in bsns_written(path.read_bytes(), bsns)
    ]
    assert not offenders, "\n".join(offenders)
