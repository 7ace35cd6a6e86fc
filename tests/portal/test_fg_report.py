"""The FG's report in a real Chromium against a running network: fishing in the organisation's
own trail is flagged in Dutch, each anomaly links to its records, axe finds nothing serious, and
the page reflows at 320 px."""

from __future__ import annotations

import base64
import os
import random
from pathlib import Path
from typing import Any

from betrokken.app.demo import ZVH
from betrokken.crypto.bsn import generate_bsn
from tests.portal.conftest import (
    PortalRun,
    assert_accessible,
    log_in,
    log_out,
    page_text,
    submit,
)


def _by(kind: str) -> Any:
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def _shot(driver: Any, name: str, width: int) -> None:
    """With BETROKKEN_SCREENSHOTS=<folder>: the whole page at ``width`` CSS pixels."""
    folder = os.environ.get("BETROKKEN_SCREENSHOTS")
    if not folder:
        return
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    height = driver.execute_script("return document.documentElement.scrollHeight")
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    Path(folder, f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def _anomalies(driver: Any) -> list[tuple[str, str, list[str]]]:
    script = (
        "return [...document.querySelectorAll('li.anomaly')].map(a => [a.dataset.kind, "
        "a.innerText, [...a.querySelectorAll('a')].map(l => l.getAttribute('href'))]);"
    )
    return [(k, t, list(links)) for k, t, links in driver.execute_script(script)]


def test_the_fg_report_flags_one_person_under_three_case_references_in_dutch(
    portal: PortalRun, browser: Any
) -> None:
    running = portal.running
    nosy = generate_bsn(random.Random(7101))
    for case in ("NOSY-A", "NOSY-B", "NOSY-C"):
        done = running.query(ZVH, nosy.digits, "zvh-triage", case)
        assert done.code == 0, done.stderr
    hit = running.query(ZVH, running.named["several"].digits, "zvh-triage", "ZVH-HIT-1")
    assert hit.code == 0, hit.stderr
    dpo = portal.user("dpo")
    log_in(browser, portal, dpo)
    browser.get(portal.url + "/dpo/rapport")
    text = page_text(browser)
    assert "Rapport" in text and "Afwijkingen" in text
    found = _anomalies(browser)
    nosy_cases = [a for a in found if a[0] == "person-many-cases" and "NOSY-A" in a[1]]
    assert len(nosy_cases) == 1, found
    _kind, words, links = nosy_cases[0]
    assert "Eén persoon onder verschillende zaaknummers" in words, words
    assert "3 verschillende zaaknummers: NOSY-A, NOSY-B, NOSY-C" in words, words
    assert len(links) == 3
    for link in links:  # each record the anomaly names is on the page, and links back
        row = browser.find_element(_by("CSS_SELECTOR"), link)
        assert "NOSY-" in row.text and "afwijking" in row.text, row.text
    # The CLI's user name "tester" is no account of the portal.
    unknown = [a for a in found if a[0] == "unknown-user" and "“tester”" in a[1]]
    assert unknown and "Gebruikersnaam zonder account in het portaal" in unknown[0][1]
    # The hours per purpose and the hit rate per user are shown.
    assert "Kantooruren per doel" in text and "Gevonden betrokkenheid per gebruiker" in text
    # The follow-up of the ZVH's own hits: none followed up yet, all still within their term.
    assert "Opvolging van treffers" in text and "werkdagen" in text
    assert browser.find_elements(_by("CSS_SELECTOR"), "table.follow-up-rates tr[data-hits]")
    assert browser.find_elements(_by("CSS_SELECTOR"), "table.hit-rates tr[data-user=tester]")
    # Nothing in English where a Dutch FG reads.
    for english in ("Anomalies", "asked about", "Questions per", "office hours"):
        assert english not in text, english
    assert_accessible(browser)
    _shot(browser, "dpo-rapport", 1280)
    _shot(browser, "dpo-rapport-telefoon", 320)
    # A period without those questions shows none of them; a date that is no date is refused.
    browser.get(portal.url + "/dpo/rapport?van=01-01-2020&tot=31-12-2020")
    assert not [a for a in _anomalies(browser) if "NOSY-A" in a[1]]
    browser.get(portal.url + "/dpo/rapport?van=gisteren")
    alert = str(browser.find_element(_by("CSS_SELECTOR"), "[role=alert]").text)
    assert "'Vanaf' is geen datum" in alert, alert
    assert_accessible(browser)
    # The old address of the English page leads here.
    browser.get(portal.url + "/dpo/rapport/volledig")
    assert browser.current_url.endswith("/dpo/rapport")
    log_out(browser)


def test_the_report_reflows_at_320_pixels_without_sideways_scrolling_of_the_page(
    portal: PortalRun, browser: Any
) -> None:
    log_in(browser, portal, portal.user("dpo"))
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 320, "height": 800, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        browser.get(portal.url + "/dpo/rapport")
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, overflow
        assert_accessible(browser)
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    log_out(browser)


def test_the_access_request_form_register_and_letter_reflow_at_320_pixels(
    portal: PortalRun, browser: Any
) -> None:
    from selenium.webdriver.support.ui import Select

    person = generate_bsn(random.Random(7102))
    portal.running.typed.add(person.digits)
    log_in(browser, portal, portal.user("dpo"))
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 320, "height": 800, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        browser.get(portal.url + "/dpo/inzage")
        browser.find_element(_by("ID"), "bsn").send_keys(person.digits)
        Select(browser.find_element(_by("ID"), "salutation")).select_by_value("heer")
        browser.find_element(_by("ID"), "surname").send_keys("Jansen")
        browser.find_element(_by("ID"), "name").send_keys("de heer B. Jansen")
        browser.find_element(_by("ID"), "reference").send_keys("FG-320")
        submit(browser, "/dpo/inzage")
        letter = str(browser.find_element(_by("CSS_SELECTOR"), "article.letter").text)
        assert "Geachte heer Jansen," in letter
        # Nobody asked: the letter says what the trail can and cannot show, never "nobody asked".
        assert "Ons logboek bevat geen vraag over u van onze eigen medewerkers" in letter
        assert "laat bij ons bewust geen spoor na" in letter
        assert "Op dit moment heeft onze organisatie in het systeem geen registratie over u." in (
            letter
        )
        for page in ("/dpo/inzage/brief", "/dpo/inzage"):
            if page != "/dpo/inzage/brief":
                browser.get(portal.url + page)
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (page, overflow)
            assert_accessible(browser)
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.get(portal.url + "/dpo/inzage")
    _shot(browser, "dpo-inzage-telefoon", 320)
    log_out(browser)
