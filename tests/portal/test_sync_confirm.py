"""A full import that would end too many registrations stops (the node's sync guard); the
beheerder can confirm it in the portal — with the session's CSRF token, a ticked check, and a
record of the confirmation in the trail — and only then are the missing registrations ended."""

from __future__ import annotations

import datetime as dt
import random
import re
import time

import pytest

from betrokken.app.demo import ZVH
from betrokken.crypto.bsn import Bsn, generate_bsn
from tests.portal.conftest import PortalAccount, PortalRun, trail_entries
from tests.portal.inprocess import InProcess, inprocess  # noqa: F401 - the shared fixture

FRESH = 12  # persons imported only to be left out: more than 10 % of the node's registrations


@pytest.fixture(scope="module")
def beheerder(portal: PortalRun) -> PortalAccount:
    return portal.add_user("b.bevestig", "beheerder")


def _fresh(portal: PortalRun) -> list[Bsn]:
    rng = random.Random(1717)
    known = portal.running.all_bsns()
    fresh: list[Bsn] = []
    while len(fresh) < FRESH:
        candidate = generate_bsn(rng)
        if candidate.digits not in known and candidate not in fresh:
            fresh.append(candidate)
    portal.running.typed.update(b.digits for b in fresh)
    return fresh


def _export(people: list[Bsn]) -> bytes:
    """The organisation's caseload as its case system exports it (as the network was started:
    the same start dates and references, so those lines are confirmed unchanged)."""
    rng = random.Random(len(people))
    today = dt.datetime.now(dt.UTC).date()
    lines = ["bsn,since,reference"]
    lines += [
        f"{bsn.digits},{today - dt.timedelta(days=rng.randrange(0, 540))},CASE-{index:05d}"
        for index, bsn in enumerate(people, start=1)
    ]
    return ("\n".join(lines) + "\n").encode()


def _upload(inprocess: InProcess, data: bytes, *, whole: bool) -> str:  # noqa: F811
    sent = inprocess.client.post(
        "/beheer/import",
        data={"csrf": inprocess.csrf("/beheer/import"), **({"volledig": "ja"} if whole else {})},
        files={"bestand": ("export.csv", data, "text/csv")},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    return str(sent.headers["location"])


def _finished(inprocess: InProcess, address: str) -> str:  # noqa: F811
    """The progress page once the import has finished (it runs in the portal's background)."""
    deadline = time.monotonic() + 180
    while True:
        page = inprocess.client.get(address + "?stil=1").text
        if "http-equiv" not in page and "Import bezig" not in page:
            return page
        assert time.monotonic() < deadline, page
        time.sleep(0.5)


def test_a_sync_that_would_end_too_many_is_stopped_and_goes_on_only_when_the_beheerder_confirms(
    inprocess: InProcess,  # noqa: F811
    beheerder: PortalAccount,
) -> None:
    caseload = list(inprocess.run.running.truth.registrations[ZVH])
    fresh = _fresh(inprocess.run)
    inprocess.log_in(beheerder)
    added = _finished(inprocess, _upload(inprocess, _export(fresh), whole=False))
    assert "Alle regels geïmporteerd" in added
    # The whole caseload without the fresh persons: the guard stops it before reading a line.
    stopped_at = _upload(inprocess, _export(caseload), whole=True)
    stopped = _finished(inprocess, stopped_at)
    assert "Gestopt vóór het beëindigen van registraties" in stopped
    assert re.search(r"zou minstens \d+ van de \d+ actieve registraties beëindigen", stopped)
    assert "sync_guard_share" not in stopped and "--force" not in stopped  # no CLI words here
    confirm = stopped_at + "/bevestig"
    # Without the session's token: refused, nothing ended.
    forged = inprocess.client.post(confirm, data={"zeker": "ja"}, follow_redirects=False)
    assert forged.status_code == 403
    # Without the tick: the one form pattern names the check box.
    unticked = inprocess.client.post(
        confirm, data={"csrf": inprocess.csrf(stopped_at + "?stil=1")}, follow_redirects=False
    )
    assert unticked.status_code == 400
    assert "<title>Fout: " in unticked.text and 'href="#zeker"' in unticked.text
    assert not [e for e in trail_entries(inprocess.run.config) if e.reason == "sync-confirmed"]
    # Confirmed: recorded with the beheerder's name, and the missing registrations end.
    confirmed = inprocess.client.post(
        confirm,
        data={"csrf": inprocess.csrf(stopped_at + "?stil=1"), "zeker": "ja"},
        follow_redirects=False,
    )
    assert confirmed.status_code == 303
    finished = _finished(inprocess, str(confirmed.headers["location"]))
    ended = re.search(r"Beëindigd \(niet in het bestand\)</dt><dd>([\d.]+)<", finished)
    assert ended and int(ended.group(1).replace(".", "")) >= FRESH, finished
    (record,) = [e for e in trail_entries(inprocess.run.config) if e.reason == "sync-confirmed"]
    assert record.user == "b.bevestig" and record.role == "beheerder"
    assert int(record.details["ending"]) >= FRESH
    # The refused import now points at the confirmed one, and cannot be confirmed twice.
    again = inprocess.client.get(stopped_at + "?stil=1").text
    assert confirmed.headers["location"] in again and "/bevestig" not in again
