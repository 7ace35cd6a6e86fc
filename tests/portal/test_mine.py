""" "Mijn vragen" in the browser: found again by case number or by the short answer code read
from the answer page, the filter sent by POST (nothing in the address)."""

from __future__ import annotations

import re
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.portal.conftest import (
    Chromium,
    PortalRun,
    assert_accessible,
    follow,
    log_in,
    page_text,
    shot,
    submit,
)


def _ask(driver: Any, portal: PortalRun, bsn: str, case: str) -> str:
    portal.running.typed.add(bsn)
    driver.get(portal.url + "/vraag")
    driver.find_element(By.ID, "bsn").send_keys(bsn)
    Select(driver.find_element(By.ID, "doel")).select_by_value("zvh-triage")
    driver.find_element(By.ID, "zaak").send_keys(case)
    submit(driver, "/vraag")
    return str(driver.find_element(By.CSS_SELECTOR, "strong.answer-code").text)


def _search(driver: Any, field: str, value: str) -> str:
    box = driver.find_element(By.ID, field)
    box.clear()
    box.send_keys(value)
    submit(driver, "/mijn-vragen")
    assert "?" not in driver.current_url  # the search is not in the address
    return page_text(driver)


def test_my_questions_are_found_again_by_case_number_and_by_the_answer_code(
    portal: PortalRun, chromium: Chromium
) -> None:
    user = portal.add_user("m.zoeker", "regisseur")
    driver = chromium.fresh()
    log_in(driver, portal, user)
    several = portal.running.named["several"]
    first = _ask(driver, portal, several.digits, "ZVH-ZOEK-0001")
    assert len(first) == 9 and first[4] == "-"
    assert "Antwoordcode" in page_text(driver)
    second = _ask(driver, portal, several.digits, "ZVH-ZOEK-0002")
    assert first != second
    follow(driver, "Mijn vragen")
    header = driver.find_element(By.TAG_NAME, "header").text
    assert re.search(r"Sessie eindigt om \d\d:\d\d zonder activiteit", header), header
    text = page_text(driver)
    assert "Zaak ZVH-ZOEK-0001" in text and "Zaak ZVH-ZOEK-0002" in text
    assert "2 zaken; pagina 1 van 1." in text
    text = _search(driver, "zaak", "zoek-0002")
    assert "Zaak ZVH-ZOEK-0002" in text and "ZVH-ZOEK-0001" not in text
    assert second in text
    assert_accessible(driver)
    shot(driver, "regisseur-mijn-vragen-zoeken")
    driver.find_element(By.ID, "zaak").clear()
    text = _search(driver, "code", first.lower().replace("-", " "))
    assert "Zaak ZVH-ZOEK-0001" in text and "ZVH-ZOEK-0002" not in text
    text = _search(driver, "code", "ZZZZ-ZZZZ")
    assert "Geen vraag gevonden" in text
    assert several.digits not in driver.page_source
    assert_accessible(driver)
