"""The found partner's "Meldingen" in a real browser, in Dutch, with axe: the ZVH's regisseur asks
about a person the police know; the police's professional sees a new notice with who asked, why,
for which case and how to reach them, opens it and acknowledges it (a record in the police's own
trail). Screenshots at desktop and phone width go to ``$BETROKKEN_SCREENSHOTS`` when it is set
(docs/screenshots/ for the documentation)."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from betrokken import rules
from betrokken.app.demo import GEMEENTE, POLITIE, ZVH
from betrokken.audit.record import Event
from betrokken.config.load import load_portal
from tests.portal.conftest import (
    CLOCKED_PORTAL,
    PortalClock,
    PortalRun,
    assert_accessible,
    follow,
    log_in,
    page_text,
    submit,
    trail_entries,
)
from tests.portal.test_regisseur import ask

PHONE = 320


def screenshot(driver: Any, name: str) -> None:
    """The page at desktop width and at 320 CSS px (WCAG 1.4.10 reflow: nothing scrolls sideways),
    saved when ``BETROKKEN_SCREENSHOTS`` names a folder."""
    folder = os.environ.get("BETROKKEN_SCREENSHOTS")
    for width, suffix in ((1280, ""), (PHONE, "-telefoon")):
        # Not as a mobile device: a phone's browser zooms out to fit a page that is too wide,
        # which would hide the overflow this checks.
        metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways at {width} px ({overflow} px)"
        if folder:
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride", {**metrics, "height": max(700, int(height))}
            )
            driver.save_screenshot(str(Path(folder) / f"{name}{suffix}.png"))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.fixture(scope="module")
def politie_portal(portal: PortalRun) -> Iterator[PortalRun]:
    """The police's own portal beside the ZVH's, with one professional."""
    running = portal.running
    config = running.net.portal_configs[POLITIE]
    clock = PortalClock(running.net.directory / "portal-clock-politie")
    run = PortalRun(running, POLITIE, "", config, clock)
    run.add_user("k.smit", "regisseur")
    listen = load_portal(config).portal.listen
    name = f"portal-{POLITIE}"
    command = [sys.executable, str(CLOCKED_PORTAL), str(config), str(clock.file)]
    running.cluster.start_process(name, command, listen)
    run.url = f"http://{listen}"
    try:
        yield run
    finally:
        running.cluster.stop_process(name)


def test_the_found_partner_reads_and_acknowledges_a_notice_of_a_hit(
    portal: PortalRun, politie_portal: PortalRun, browser: Any
) -> None:
    running = portal.running
    known = next(
        b for b in running.truth.registrations[POLITIE] if running.truth.where(b) == {POLITIE}
    )
    case = f"ZVH-2026-{secrets.randbelow(9000) + 1000}"
    log_in(browser, portal, portal.user("regisseur"))
    # Asked for the gemeente (the aanmelder): the police's notice names it with its basis.
    assert "Politie Noord-Holland" in ask(browser, portal, known.digits, case, namens=GEMEENTE)

    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    log_in(browser, politie_portal, politie_portal.user("regisseur"))
    browser.get(politie_portal.url + "/meldingen")
    menu = browser.find_element(By.CSS_SELECTOR, "nav.main-nav a[href='/meldingen']").text
    unread = int(menu.removeprefix("Meldingen (").removesuffix(" nieuw)"))
    assert unread >= 1
    text = page_text(browser)
    assert "Meldingen" in text
    title = f"Zorg- en Veiligheidshuis Kennemerland vroeg naar zaak {case}"
    assert title in text
    item = next(
        li.text for li in browser.find_elements(By.CSS_SELECTOR, "li.notice-item")
        if case in li.text
    )  # fmt: skip
    assert "Nieuw" in item and "nog niet bevestigd" in item
    assert known.digits not in browser.page_source
    assert_accessible(browser)
    screenshot(browser, "meldingen-lijst")

    follow(browser, title)
    # Opened, so no longer new: the menu counts one less.
    menu = browser.find_element(By.CSS_SELECTOR, "nav.main-nav a[href='/meldingen']").text
    assert menu == ("Meldingen" if unread == 1 else f"Meldingen ({unread - 1} nieuw)")
    text = page_text(browser)
    assert "Gevraagd door\nZorg- en Veiligheidshuis Kennemerland, rol regisseur" in text
    gemeente = running.network.organisation(GEMEENTE)
    basis = rules.aanmelder_basis(running.network, "zvh-triage", GEMEENTE)
    assert gemeente is not None and basis
    assert f"Namens\n{gemeente.name}" in text
    assert f"Grondslag van de aanmelder\n{basis}" in text
    assert f"Hun zaak\n{case}" in text
    zvh = running.network.organisation(ZVH)
    assert zvh is not None and f"Hun contactpunt\n{zvh.contact}" in text
    assert "Zij kregen te horen\nonze organisatie met naam, met ons contactpunt" in text
    assert "Gelezen\n" in text and "door k.smit" in text
    assert "Bevestigd\nnog niet" in text
    assert_accessible(browser)
    screenshot(browser, "meldingen-melding")

    submit(browser, browser.current_url.removeprefix(politie_portal.url) + "/bevestigen")
    text = page_text(browser)
    assert "Bevestigd\n" in text and "Bevestigd\nnog niet" not in text
    assert not browser.find_elements(By.CSS_SELECTOR, "form[action$='/bevestigen']")
    assert_accessible(browser)

    acknowledged = [
        e for e in trail_entries(politie_portal.config)
        if e.event is Event.NOTICE and e.user == "k.smit"
    ]  # fmt: skip
    assert len(acknowledged) == 1 and acknowledged[0].details["asked_by"] == ZVH
    browser.get(politie_portal.url + "/meldingen")
    assert "bevestigd door k.smit" in page_text(browser)
