"""Defer decided by a professional, in a real browser, in Dutch, with axe (docs/adr/0037).

The police's regisseur asks zsm-context about a person the GGZ knows: "Professional beslist". The
GGZ's professional opens "Beslissen over delen", sees who asked, why, for which case and until
when (never the BSN), and decides to share on the ground of consent (a record in the GGZ's own
trail). The police's "Meldingen" shows the question in progress, and, once the term has ended
(the test ends it), the GGZ with its contact point. Screenshots at desktop and phone width go to
``$BETROKKEN_SCREENSHOTS`` when it is set."""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from betrokken.app.demo import GGZ, POLITIE, ZVH
from betrokken.audit.record import Event
from betrokken.config.load import load_node, load_portal
from betrokken.node import deferrals
from betrokken.node.server import open_store
from tests.portal.conftest import (
    CLOCKED_PORTAL,
    PortalClock,
    PortalRun,
    assert_accessible,
    log_in,
    page_text,
    press,
    submit,
    trail_entries,
)
from tests.portal.test_meldingen import screenshot
from tests.portal.test_regisseur import ask


def _answer_id(running: Any, case: str) -> str:
    """The question's id, as the GGZ's node kept its request for the person known there."""
    store = open_store(load_node(running.net.node_configs[GGZ]))
    try:
        [request] = [r for r in deferrals.list_requests(store.engine) if r.case == case]
        return request.answer_id
    finally:
        store.engine.dispose()


@pytest.fixture(scope="module")
def police_portal(portal: PortalRun) -> Iterator[PortalRun]:
    """The police's portal, with a ZSM officer of its own (test_meldingen has another)."""
    running = portal.running
    config = running.net.portal_configs[POLITIE]
    clock = PortalClock(running.net.directory / "portal-clock-politie-zsm")
    run = PortalRun(running, POLITIE, "", config, clock)
    run.add_user("z.officier", "regisseur")
    run.add_user("fg.politie", "dpo")  # the police's FG: decides on access requests
    listen = load_portal(config).portal.listen
    name = f"portal-{POLITIE}"
    command = [sys.executable, str(CLOCKED_PORTAL), str(config), str(clock.file)]
    running.cluster.start_process(name, command, listen)
    run.url = f"http://{listen}"
    try:
        yield run
    finally:
        running.cluster.stop_process(name)


@pytest.fixture(scope="module")
def ggz_portal(portal: PortalRun) -> Iterator[PortalRun]:
    """The GGZ's own portal, with one professional who decides."""
    running = portal.running
    config = running.net.portal_configs[GGZ]
    clock = PortalClock(running.net.directory / "portal-clock-ggz")
    run = PortalRun(running, GGZ, "", config, clock)
    run.add_user("g.arts", "regisseur")
    listen = load_portal(config).portal.listen
    name = f"portal-{GGZ}"
    command = [sys.executable, str(CLOCKED_PORTAL), str(config), str(clock.file)]
    running.cluster.start_process(name, command, listen)
    run.url = f"http://{listen}"
    try:
        yield run
    finally:
        running.cluster.stop_process(name)


def test_a_ggz_professional_decides_and_the_police_see_the_decision_after_the_term(
    portal: PortalRun,
    police_portal: PortalRun,
    ggz_portal: PortalRun,
    browser: Any,
) -> None:
    running = portal.running
    known = next(b for b in running.truth.registrations[GGZ] if running.truth.where(b) == {GGZ})
    case = f"ZSM-2026-{secrets.randbelow(9000) + 1000}"
    log_in(browser, police_portal, police_portal.user("regisseur"))
    answer = ask(browser, police_portal, known.digits, case, "zsm-context")
    assert "Professional beslist" in answer

    # The GGZ's professional: one request, with who asked, why, the case and the term.
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    log_in(browser, ggz_portal, ggz_portal.user("regisseur"))
    browser.get(ggz_portal.url + "/beslissen")
    text = page_text(browser)
    assert "Beslissen over delen" in text
    item = next(
        li for li in browser.find_elements(By.CSS_SELECTOR, "li.follow-up") if case in li.text
    )
    assert "Politie Noord-Holland" in item.text and "Beslissen vóór" in item.text
    assert "nog niet besloten" in item.text
    assert known.digits not in browser.page_source
    assert_accessible(browser)
    where = item.get_attribute("id")
    screenshot(browser, "beslissen-lijst")
    item = browser.find_element(By.ID, where)  # found again after the screenshot's resizing
    item.find_element(By.CSS_SELECTOR, "input[value='delen:toestemming']").click()
    press(browser, item.find_element(By.CSS_SELECTOR, "button[type='submit']"))
    text = page_text(browser)
    assert "Het besluit is vastgelegd" in text
    decided = next(
        li.text for li in browser.find_elements(By.CSS_SELECTOR, "li.follow-up") if case in li.text
    )
    assert "Delen: Toestemming van de cliënt" in decided and "g.arts" in decided
    assert_accessible(browser)
    records = [
        e for e in trail_entries(ggz_portal.config)
        if e.event is Event.DECISION and e.user == "g.arts"
    ]  # fmt: skip
    assert records and records[-1].reason == "delen: toestemming"

    # The police: in progress, then (once the test ends the term) the GGZ with its contact point.
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    log_in(browser, police_portal, police_portal.user("regisseur"))
    browser.get(police_portal.url + "/meldingen")
    assert "GGZ Kennemerland heeft beslist" not in page_text(browser)
    running.end_the_term(GGZ, _answer_id(running, case))
    browser.get(police_portal.url + "/meldingen")
    deadline = time.monotonic() + 180
    while "GGZ Kennemerland heeft beslist" not in page_text(browser):
        assert time.monotonic() < deadline, page_text(browser)
        time.sleep(2)
        browser.get(police_portal.url + "/meldingen")
    text = page_text(browser)
    assert f"Zaak {case}" in text and "Betrokken —" in text and "Contact:" in text
    assert "In behandeling bij GGZ Kennemerland" not in text  # collected: no longer awaited
    assert_accessible(browser)
    screenshot(browser, "meldingen-later-antwoord")


def test_a_partners_fg_restricts_its_answer_to_an_access_request_on_its_own_page(
    portal: PortalRun, police_portal: PortalRun, browser: Any
) -> None:
    """The restriction step (docs/adr/0039): the ZVH's FG makes a letter for a person the police
    know; the letter waits for the police. The police's FG finds the request on "Beslissen over
    delen" in its own part of the portal — with the grounds of artikel 41 UAVG, not a
    professional's — and restricts; the decision is a record in the police's own trail. The
    police's regisseur does not see the request."""
    running = portal.running
    known = next(
        b for b in running.truth.registrations[POLITIE] if ZVH not in running.truth.where(b)
    )
    reference = f"FG-2026-{secrets.randbelow(9000) + 1000}"
    log_in(browser, portal, portal.user("dpo"))
    browser.get(portal.url + "/dpo/inzage")
    running.typed.add(known.digits)
    browser.find_element(By.ID, "bsn").send_keys(known.digits)
    browser.find_element(By.ID, "name").send_keys("Dhr. K. Visser")
    browser.find_element(By.ID, "reference").send_keys(reference)
    submit(browser, "/dpo/inzage")
    police = running.network.organisation(POLITIE)
    assert police is not None
    partners = [
        li.text for li in browser.find_elements(By.CSS_SELECTOR, "article.letter ul.partners li")
    ]
    assert any(police.name in t and "heeft nog niet geantwoord" in t for t in partners), partners

    # The police's FG: one request, the ZVH's FG asked, with our reference and the term.
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    log_in(browser, police_portal, police_portal.user("dpo"))
    browser.get(police_portal.url + "/dpo/beslissen")
    text = page_text(browser)
    assert "Beslissen over delen" in text and "inzageverzoek" in text
    item = next(
        li for li in browser.find_elements(By.CSS_SELECTOR, "li.follow-up") if reference in li.text
    )
    assert "Zorg- en Veiligheidshuis" in item.text and "Beslissen vóór" in item.text
    choices = [i.get_attribute("value") for i in item.find_elements(By.CSS_SELECTOR, "input")]
    assert "delen:recht-op-inzage" in choices
    assert "niet-delen:voorkoming-en-opsporing-van-strafbare-feiten" in choices
    assert "niet-delen:beroepsgeheim" not in choices  # a professional's ground, not an FG's
    assert known.digits not in browser.page_source
    assert_accessible(browser)
    where = item.get_attribute("id")
    screenshot(browser, "beslissen-fg")
    item = browser.find_element(By.ID, where)
    choice = "niet-delen:voorkoming-en-opsporing-van-strafbare-feiten"
    item.find_element(By.CSS_SELECTOR, f"input[value='{choice}']").click()
    press(browser, item.find_element(By.CSS_SELECTOR, "button[type='submit']"))
    assert "Het besluit is vastgelegd" in page_text(browser)
    decided = browser.find_element(By.ID, where).text
    assert "Niet delen: Voorkoming, onderzoek, opsporing of vervolging" in decided, decided
    assert_accessible(browser)
    records = [
        e for e in trail_entries(police_portal.config)
        if e.event is Event.DECISION and e.user == "fg.politie"
    ]  # fmt: skip
    assert records[-1].reason == "niet-delen: voorkoming-en-opsporing-van-strafbare-feiten"
    assert records[-1].purpose == "inzageverzoek"

    # The police's regisseur decides a professional's questions only: not this one.
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    log_in(browser, police_portal, police_portal.user("regisseur"))
    browser.get(police_portal.url + "/beslissen")
    assert reference not in page_text(browser)
