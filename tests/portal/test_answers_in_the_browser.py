"""A working day's answers in the browser: an incomplete list answer asked again for only the
incomplete persons (a retry, not a repeat), found again under "Mijn vragen", printed without the
page's furniture; and the warning before the session ends, with "Verleng sessie" by keyboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from betrokken.app.demo import RECLASSERING
from tests.portal.conftest import (
    Chromium,
    PortalRun,
    assert_accessible,
    log_in,
    page_text,
    press,
    shot,
    submit,
    trail_entries,
)


def _by(kind: str) -> Any:
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def test_the_incomplete_persons_are_asked_again_as_a_retry_and_the_answer_is_found_again(
    portal: PortalRun, chromium: Chromium, tmp_path: Path
) -> None:
    driver = chromium.fresh()
    log_in(driver, portal, portal.user("regisseur"))
    named = portal.running.named
    rows = [(named["nowhere"], "ZVH-OPNIEUW-1"), (named["several"], "ZVH-OPNIEUW-2")]
    export = tmp_path / "lijst.csv"
    export.write_text(
        "Zaaknummer;BSN\n" + "".join(f"{case};{bsn.digits}\n" for bsn, case in rows),
        encoding="utf-8",
    )
    portal.running.cluster.stop_node(RECLASSERING)
    try:
        driver.get(portal.url + "/lijst")
        driver.find_element(_by("ID"), "bestand").send_keys(str(export))
        submit(driver, "/lijst")
    finally:
        export.unlink()
        portal.running.start_node(RECLASSERING)
    first = driver.current_url
    overview = driver.find_element(_by("CSS_SELECTOR"), "table.overview tbody").text.lower()
    assert "onvolledig — niet bekend" in overview  # never "geen" for who did not answer
    code = driver.find_element(_by("CSS_SELECTOR"), ".answer-code").text
    submit(driver, first.removeprefix(portal.url) + "/opnieuw")
    text = page_text(driver)
    assert "Deze vraag stelde opnieuw de vraag over de personen" in text and code in text
    assert "ONVOLLEDIG ANTWOORD" not in text
    own = [e for e in trail_entries(portal.config) if e.event.value == "own-query"]
    retried = [e for e in own if e.details.get("retry_of")]
    original = next(e for e in own if any(s.case == "ZVH-OPNIEUW-1" for s in e.subjects))
    assert retried and retried[-1].details["retry_of"] == original.answer_id
    assert {s.case for s in retried[-1].subjects} == {"ZVH-OPNIEUW-1", "ZVH-OPNIEUW-2"}
    for bsn, _ in rows:
        assert bsn.digits not in driver.page_source
    # Found again under "Mijn vragen", from the trail: at a desk and on a phone.
    driver.get(portal.url + "/mijn-vragen")
    press(driver, driver.find_element(_by("CSS_SELECTOR"), f"a[href='/mijn-vragen/{code}']"))
    assert driver.find_element(_by("TAG_NAME"), "h1").text == f"Antwoord {code}"
    assert "Niet bereikbaar" in page_text(driver)
    assert driver.find_element(_by("CSS_SELECTOR"), "[data-print]").is_displayed()
    assert_accessible(driver)
    shot(driver, "antwoord-teruggevonden")
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 800, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        driver.refresh()
        assert_accessible(driver)
        shot(driver, "telefoon-antwoord-teruggevonden")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    # On paper: the answer, not the menu, the buttons or the forms.
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        hidden = driver.execute_script(
            "return ['.site-header', '.actions', '.site-footer'].map("
            "s => getComputedStyle(document.querySelector(s)).display)"
        )
        assert hidden == ["none", "none", "none"]
        assert driver.find_element(_by("CSS_SELECTOR"), "section.person").is_displayed()
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


def test_before_the_session_ends_a_dialog_warns_and_extends_it_by_keyboard(
    portal: PortalRun, chromium: Chromium
) -> None:
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium.fresh()
    log_in(driver, portal, portal.user("regisseur"))
    driver.get(portal.url + "/vraag")
    dialog = driver.find_element(_by("ID"), "sessie-waarschuwing")
    left = int(dialog.get_attribute("data-seconds-left"))
    warn = int(dialog.get_attribute("data-warn-seconds"))
    assert left > warn >= 20 and not dialog.is_displayed()
    # The dialog as it shows, checked by axe-core and looked at.
    driver.execute_script("arguments[0].showModal()", dialog)
    assert "Uw sessie loopt bijna af" in dialog.text and "Verleng sessie" in dialog.text
    assert_accessible(driver)
    shot(driver, "sessie-waarschuwing")
    # In a tab of its own (virtual time stays with a tab, and must not reach the next test):
    driver.switch_to.new_window("tab")
    driver.get(portal.url + "/vraag")
    dialog = driver.find_element(_by("ID"), "sessie-waarschuwing")
    # The page's own time runs on to just inside the warning (the browser's virtual time: the
    # test moves the clock rather than waiting half an hour); then the page's timers stop.
    driver.execute_cdp_cmd(
        "Emulation.setVirtualTimePolicy",
        {"policy": "advance", "budget": (left - warn + 5) * 1000},
    )
    WebDriverWait(driver, 30).until(lambda d: dialog.is_displayed())
    assert driver.switch_to.active_element.get_attribute("id") == "sessie-verleng"
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(driver, 30).until(lambda d: not dialog.is_displayed())
    assert "Uitloggen" in driver.find_element(_by("TAG_NAME"), "body").text
    driver.close()
    driver.switch_to.window(driver.window_handles[0])


def test_a_question_with_mistakes_gets_the_one_error_summary_with_focus_and_links(
    portal: PortalRun, chromium: Chromium
) -> None:
    driver = chromium.fresh()
    log_in(driver, portal, portal.user("regisseur"))
    typed = "123456789"  # fails the elfproef
    portal.running.typed.add(typed)
    driver.get(portal.url + "/vraag")
    driver.find_element(_by("ID"), "bsn").send_keys(typed)
    driver.find_element(_by("ID"), "zaak").send_keys("Z" * 70)  # longer than a case number
    submit(driver, "/vraag")
    assert driver.title.startswith("Fout: Vraag over een persoon")
    assert driver.switch_to.active_element.get_attribute("id") == "fout"
    links = driver.find_elements(_by("CSS_SELECTOR"), "#fout a")
    assert [a.get_attribute("href").rsplit("#", 1)[1] for a in links] == ["bsn", "zaak"]
    assert "Dit is geen geldig BSN" in links[0].text and "zaaknummer" in links[1].text
    bsn = driver.find_element(_by("ID"), "bsn")
    assert bsn.get_attribute("aria-invalid") == "true"
    assert driver.find_element(_by("ID"), "bsn-fout").is_displayed()
    assert typed not in driver.page_source
    assert_accessible(driver)
    shot(driver, "regisseur-tikfout")
    links[1].click()  # the link takes the keyboard to the field
    assert driver.switch_to.active_element.get_attribute("id") == "zaak"
