"""Logging in to the portal in a real browser: local account with password and TOTP code."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By

from tests.portal.conftest import PortalRun, assert_accessible, log_in, log_out, page_text


def test_a_regisseur_logs_in_with_password_and_code_and_sees_the_question_form(
    portal: PortalRun, browser: Any
) -> None:
    browser.get(portal.url + "/")
    assert "/inloggen" in browser.current_url
    assert "Inloggen" in page_text(browser)
    assert_accessible(browser)
    log_in(browser, portal, portal.user("regisseur"))
    assert browser.current_url.endswith("/vraag")
    assert "Vraag over een persoon" in page_text(browser)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "nl"
    log_out(browser)
    assert "U bent uitgelogd." in page_text(browser)
