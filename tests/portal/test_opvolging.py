"""The asker's "Opvolging" in a real browser, in Dutch, with axe: each hit of the regisseur's own
questions gets a follow-up state, recorded in the organisation's own trail; a state without what
it needs is refused with a sentence; a hit of another user's question cannot be followed up by
naming it in the form."""

from __future__ import annotations

import secrets
from typing import Any

from selenium.webdriver.common.by import By

from betrokken.app.demo import POLITIE
from betrokken.audit.record import Event
from tests.portal.conftest import (
    PortalRun,
    assert_accessible,
    log_in,
    page_text,
    submit,
    trail_entries,
)
from tests.portal.test_meldingen import screenshot
from tests.portal.test_regisseur import ask


def _card(browser: Any, case: str) -> Any:
    return next(
        li for li in browser.find_elements(By.CSS_SELECTOR, "li.follow-up") if case in li.text
    )


def _record(browser: Any, case: str, state: str, **selects: str) -> str:
    card = _card(browser, case)
    number = card.get_attribute("id").removeprefix("treffer-")
    card.find_element(By.ID, f"stand-{number}-{state}").click()
    for name, value in selects.items():
        card.find_element(By.CSS_SELECTOR, f"#{name}-{number} option[value='{value}']").click()
    browser.execute_script("window.__betrokkenOldPage = true;")
    card.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 120).until(
        lambda d: d.execute_script(
            "return window.__betrokkenOldPage === undefined && document.readyState === 'complete'"
        )
    )
    return page_text(browser)


def _known_at_politie(portal: PortalRun) -> str:
    truth = portal.running.truth
    return next(b for b in truth.registrations[POLITIE] if truth.where(b) == {POLITIE}).digits


def test_a_regisseur_records_the_follow_up_of_a_hit_in_the_organisations_own_trail(
    portal: PortalRun, browser: Any
) -> None:
    case = f"ZVH-2026-OPV-{secrets.randbelow(9000) + 1000}"
    log_in(browser, portal, portal.user("regisseur"))
    ask(browser, portal, _known_at_politie(portal), case)
    browser.get(portal.url + "/opvolging")
    text = page_text(browser)
    assert "Opvolging" in text and "Volg een treffer op binnen 10 werkdagen" in text
    card = _card(browser, case).text
    assert "Politie Noord-Holland · zaak " + case in card
    assert "Stand van de opvolging\nnog niets vastgelegd" in card
    assert "Opvolgen uiterlijk" in card
    assert_accessible(browser)
    screenshot(browser, "opvolging")

    # 'Geen actie nodig' without a reason: refused, nothing recorded.
    text = _record(browser, case, "geen-actie-nodig")
    assert "Kies waarom geen actie nodig is; er is niets vastgelegd." in text
    assert "nog niets vastgelegd" in _card(browser, case).text
    assert_accessible(browser)

    text = _record(browser, case, "regie-overgenomen", regie=POLITIE)
    assert "De opvolging is vastgelegd in het logboek van uw organisatie." in text
    card = _card(browser, case).text
    assert "Stand van de opvolging\nregie overgenomen door Politie Noord-Holland" in card
    assert "r.jansen" in card
    assert_accessible(browser)
    screenshot(browser, "opvolging-vastgelegd")

    records = [
        e
        for e in trail_entries(portal.config)
        if e.event is Event.FOLLOW_UP and e.subjects and e.subjects[0].case == case
    ]
    assert len(records) == 1
    [record] = records
    assert record.reason == "regie-overgenomen" and record.details["regie"] == POLITIE
    assert record.details["found"] == POLITIE and record.user == "r.jansen"
    assert record.subjects[0].fingerprint  # the asker's own pseudonym of the person, no BSN
    # Nothing central: the coordinator's database and every other node's hold no trace of it.
    net = portal.running.net
    elsewhere = [net.directory / "coordinator" / "coordinator.db"] + [
        config.parent / "node.db"
        for org, config in net.node_configs.items()
        if org != portal.organisation
    ]
    for database in elsewhere:
        wal = database.with_name(database.name + "-wal")
        stored = database.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        assert b"regie-overgenomen" not in stored and b"follow-up" not in stored, database
        assert record.subjects[0].fingerprint.encode() not in stored, database


def test_a_hit_of_another_users_question_cannot_be_followed_up_through_the_form(
    portal: PortalRun, browser: Any
) -> None:
    other = portal.users.get("m.visser") or portal.add_user("m.visser", "regisseur")
    case = f"ZVH-2026-ANDER-{secrets.randbelow(9000) + 1000}"
    log_in(browser, portal, other)
    ask(browser, portal, _known_at_politie(portal), case)
    browser.get(portal.url + "/opvolging")
    token = _card(browser, case).find_element(By.NAME, "treffer").get_attribute("value")
    submit(browser, "/uitloggen")

    log_in(browser, portal, portal.user("regisseur"))
    browser.get(portal.url + "/opvolging")
    assert case not in page_text(browser)  # not among r.jansen's hits
    forms = browser.find_elements(By.CSS_SELECTOR, "li.follow-up")
    assert forms, "r.jansen has hits of earlier tests to take a form from"
    browser.execute_script(
        "arguments[0].querySelector('input[name=treffer]').value = arguments[1];", forms[0], token
    )
    number = forms[0].get_attribute("id").removeprefix("treffer-")
    forms[0].find_element(By.ID, f"stand-{number}-contact-gelegd").click()
    browser.execute_script("window.__betrokkenOldPage = true;")
    forms[0].find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 120).until(
        lambda d: d.execute_script(
            "return window.__betrokkenOldPage === undefined && document.readyState === 'complete'"
        )
    )
    assert "Die treffer hoort niet bij uw vragen; er is niets vastgelegd." in page_text(browser)
    assert not [
        e
        for e in trail_entries(portal.config)
        if e.event is Event.FOLLOW_UP and e.subjects and e.subjects[0].case == case
    ]
