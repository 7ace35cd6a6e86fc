"""Reflow (WCAG 1.4.10): every page the portal has reads at a phone's width and zoomed in without
scrolling sideways, and axe-core finds nothing serious there.

The pages are the app's own routes (:func:`portal_pages`), so a page added later is checked
without anyone remembering to list it; a page whose address holds a parameter needs a way to
reach it in :data:`REACHED_BY`, and the test fails for one that has none.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route

from betrokken.portal.app import all_routes, role_modules
from tests.portal.conftest import (
    OVERFLOW,
    Chromium,
    PortalAccount,
    PortalRun,
    assert_accessible,
    log_in,
    shot,
    submit,
)

# Widths in CSS px: a phone (390), a 1280 px screen at 200 % zoom (640) and at 400 % (320, the
# width WCAG 1.4.10 names).
SCREENS = {"telefoon-390": (390, True), "zoom-200": (640, False), "zoom-400": (320, False)}

# Routes that are not pages: they only redirect or act.
NOT_PAGES = {
    "/",
    "/uitloggen",
    "/taal/{language}",
    "/inloggen/oidc",
    "/inloggen/oidc/terug",
    "/mijn-vragen/{code}/{kind}",  # a download (CSV or XLSX), not a page
}
# Pages only a particular state reaches, checked for reflow where that state is made.
ELSEWHERE = {
    "/inloggen/instellen": "tests/portal/test_accounts.py (the first login)",
    "/meldingen/{id}": "tests/portal/test_meldingen.py (a partner's question makes one; 320 px)",
}


def portal_pages() -> list[str]:
    """Every GET route of the app (:func:`~betrokken.portal.app.all_routes`) but the static
    files and the routes that are not pages."""
    paths = [
        route.path
        for route in all_routes(role_modules())
        if isinstance(route, Route) and "GET" in (route.methods or ())
    ]
    return list(dict.fromkeys(p for p in paths if p not in NOT_PAGES and p not in ELSEWHERE))


def _asked(driver: Any, portal: PortalRun) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    several = portal.running.named["several"]
    portal.running.typed.add(several.digits)
    driver.get(portal.url + "/vraag")
    driver.find_element(By.ID, "bsn").send_keys(several.digits)
    Select(driver.find_element(By.ID, "doel")).select_by_value("zvh-triage")
    driver.find_element(By.ID, "zaak").send_keys("ZVH-2026-REFLOW")
    submit(driver, "/vraag")
    return str(driver.current_url)


def _reopened(driver: Any, portal: PortalRun) -> str:
    """An answer found again under "Mijn vragen" by its code (asked first)."""
    from selenium.webdriver.common.by import By

    _asked(driver, portal)
    code = driver.find_element(By.CSS_SELECTOR, ".answer-code").text
    return f"{portal.url}/mijn-vragen/{code}"


def _imported(driver: Any, portal: PortalRun, tmp_path: Path) -> str:
    from selenium.webdriver.common.by import By

    bad = "123456780"  # fails the elfproef: the import runs and reports the line
    portal.running.typed.add(bad)
    export = tmp_path / "export.csv"
    export.write_text(f"BSN;since\n{bad};01-09-2026\n", encoding="utf-8")
    driver.get(portal.url + "/beheer/import")
    driver.find_element(By.ID, "bestand").send_keys(str(export))
    submit(driver, "/beheer/import")
    return str(driver.current_url)


# How to reach a page whose address holds a parameter: returns its address, as a person gets there.
REACHED_BY: dict[str, Callable[[Any, PortalRun, Path], str]] = {
    "/antwoord/{key}": lambda d, p, t: _asked(d, p),
    "/mijn-vragen/{code}": lambda d, p, t: _reopened(d, p),
    "/beheer/import/{token}": _imported,
}


@pytest.fixture(scope="module")
def everyone(portal: PortalRun) -> PortalAccount:
    """One account with every role, so that one session opens every page."""
    return portal.add_user("a.allround", "regisseur", "dpo", "beheerder")


def test_every_page_has_a_way_to_be_reached_in_this_test() -> None:
    pages = portal_pages()
    assert "/vraag" in pages and "/beheer/status" in pages and "/dpo/logboek" in pages
    assert "/beheer/accounts" in pages and "/account/wachtwoord" in pages
    missing = [p for p in pages if "{" in p and p not in REACHED_BY]
    assert not missing, f"pages with a parameter and no way to reach them here: {missing}"


def test_every_page_reflows_at_phone_width_and_zoomed_in_without_scrolling_sideways(
    portal: PortalRun, chromium: Chromium, everyone: PortalAccount, tmp_path: Path
) -> None:
    driver = chromium.fresh()
    addresses = {"/inloggen": portal.url + "/inloggen"}
    log_in(driver, portal, everyone)
    for page in portal_pages():
        if page == "/inloggen":
            continue
        if "{" in page:
            addresses[page] = REACHED_BY[page](driver, portal, tmp_path)
        else:
            addresses[page] = portal.url + page
    addresses["404"] = portal.url + "/bestaat-niet"
    failures = []
    try:
        for name, (width, mobile) in SCREENS.items():
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": mobile},
            )
            for page, address in addresses.items():
                if page == "/inloggen":
                    continue  # shown logged out below
                driver.get(address)
                found = driver.execute_script(OVERFLOW)
                if found["scrollWidth"] > found["clientWidth"] or found["wide"]:
                    failures.append(f"{name} {page}: {found}")
                if width == 390:
                    if driver.current_url == address:  # not a redirect to another page
                        shot(driver, "telefoon-" + re.sub(r"[/{}]+", "-", page).strip("-"))
                    try:
                        assert_accessible(driver)
                    except AssertionError as exc:
                        failures.append(f"{name} {page}: axe-core: {exc}")
        driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
        for name, (width, mobile) in SCREENS.items():
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": mobile},
            )
            driver.get(addresses["/inloggen"])
            found = driver.execute_script(OVERFLOW)
            if found["scrollWidth"] > found["clientWidth"] or found["wide"]:
                failures.append(f"{name} /inloggen: {found}")
            if width == 390:
                try:
                    assert_accessible(driver)
                except AssertionError as exc:
                    failures.append(f"{name} /inloggen: axe-core: {exc}")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert not failures, "\n".join(failures)
    assert re.search(r"/antwoord/", addresses["/antwoord/{key}"])
