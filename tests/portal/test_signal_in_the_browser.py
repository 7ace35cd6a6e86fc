"""A signal left through the portal, in a real browser, in Dutch, with axe.

The ZVH's regisseur asks about a person nobody knows yet and ticks "Signaal achterlaten" (off by
default; offered because the network file's zvh-triage allows 90 days). The question is kept in
the ZVH's trail with its watch, as the command line's ``--watch-days`` keeps it. The politie
registers the person later; the ZVH's portal collects the signal in the background when its
clock passes ``collect_seconds`` (the test moves that clock on), so the menu counts it under
Meldingen before anyone opens the page; Meldingen then shows "nu ook betrokken". The FG's report
counts the question that left a signal, per purpose and per user. Screenshots at desktop and
phone width go to ``$BETROKKEN_SCREENSHOTS`` when it is set.
"""

from __future__ import annotations

import random
import re
import secrets
import time
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from betrokken.app.demo import POLITIE
from betrokken.audit.record import Event
from betrokken.crypto.bsn import generate_bsn
from tests.portal.conftest import (
    PortalRun,
    assert_accessible,
    log_in,
    log_out,
    page_text,
    submit,
    trail_entries,
)
from tests.portal.test_meldingen import screenshot


def _menu_count(browser: Any) -> int:
    """The number the menu shows beside Meldingen ("(2 nieuw)"), 0 without one."""
    label = browser.find_element(By.CSS_SELECTOR, "nav a[href='/meldingen']").text
    found = re.search(r"\((\d+) nieuw\)", label)
    return int(found.group(1)) if found else 0


def test_a_signal_left_in_the_portal_is_counted_in_the_menu_before_meldingen_is_opened(
    portal: PortalRun, browser: Any
) -> None:
    running = portal.running
    rng = random.Random(secrets.randbits(32))
    known = running.all_bsns()
    person = next(b for b in iter(lambda: generate_bsn(rng), None) if b.digits not in known)
    running.typed.add(person.digits)
    case = f"ZVH-SIGNAAL-{secrets.randbelow(9000) + 1000}"
    regisseur = portal.user("regisseur")

    log_in(browser, portal, regisseur)
    browser.get(portal.url + "/vraag")
    text = page_text(browser)
    assert "Signaal achterlaten: laat het mij weten als een partner deze persoon later" in text
    assert "(90 dagen)" in text and "Staat uit tenzij u het aanvinkt" in text
    box = browser.find_element(By.ID, "signaal")
    assert not box.is_selected()  # off by default
    assert_accessible(browser)
    screenshot(browser, "vraag-signaal")

    browser.get(portal.url + "/vraag")  # fresh after the screenshot's resizing
    browser.find_element(By.ID, "bsn").send_keys(person.digits)
    Select(browser.find_element(By.ID, "doel")).select_by_value("zvh-triage")
    browser.find_element(By.ID, "zaak").send_keys(case)
    browser.find_element(By.ID, "signaal").click()
    submit(browser, "/vraag")
    text = page_text(browser)
    assert "Volledig antwoord" in text
    assert "Er is een signaal achtergelaten tot " in text  # said on the answer, in Dutch time
    assert_accessible(browser)
    screenshot(browser, "antwoord-signaal")
    asked = [
        e
        for e in trail_entries(portal.config)
        if e.event is Event.OWN_QUERY and any(s.case == case for s in e.subjects)
    ]
    assert len(asked) == 1 and asked[0].details.get("watch_days") == "90"
    assert asked[0].user == regisseur.name

    browser.get(portal.url + "/vraag")
    before = _menu_count(browser)
    done = running.run(
        "node",
        "register",
        "--config",
        str(running.net.node_configs[POLITIE]),
        "--bsn",
        "-",
        "--reference",
        "PNH-SIGNAAL",
        stdin=person.digits + "\n",
    )
    assert done.code == 0, done.output

    # The politie's node sends the signal within seconds of the registration (an event, not a
    # term); the ZVH's portal collects when its clock passes collect_seconds: move it on.
    deadline = time.monotonic() + 180
    while True:
        portal.clock.advance(61)
        time.sleep(2)
        browser.get(portal.url + "/vraag")
        if _menu_count(browser) > before:
            break
        assert time.monotonic() < deadline, "the menu never counted the signal"
    assert_accessible(browser)
    screenshot(browser, "menu-meldingen-nieuw")

    browser.get(portal.url + "/meldingen")
    text = page_text(browser)
    assert "Politie Noord-Holland" in text and case in text
    assert person.digits not in browser.page_source
    assert _menu_count(browser) < before + 1  # shown: no longer new
    log_out(browser)

    # The FG's report counts the question that left a signal, per purpose and per user.
    log_in(browser, portal, portal.user("dpo"))
    browser.get(portal.url + "/dpo/rapport")
    for ident, label in (
        ("watches-per-purpose", "zvh-triage"),
        ("watches-per-user", regisseur.name),
    ):
        figure = browser.find_element(By.ID, ident)
        assert "signaal" in figure.text
        values = {
            row.get_attribute("data-label"): int(row.get_attribute("data-value"))
            for row in figure.find_elements(By.CSS_SELECTOR, "tr.bar")
        }
        assert values.get(label, 0) >= 1, values
    assert_accessible(browser)
    browser.get(portal.url + "/dpo/rapport#watches-per-purpose")
    screenshot(browser, "dpo-rapport-signalen")
