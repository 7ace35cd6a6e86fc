"""Accounts in the browser, in Dutch, checked by axe-core: the beheerder adds, unblocks, resets
and disables accounts; a new account enrols at its first login with a QR code the portal draws
itself; everyone changes their own password; a code used twice is named as such and does not
count as a guess."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import segno

from betrokken.portal.users import UserStore
from tests.portal.conftest import (
    PASSWORD,
    Chromium,
    PortalAccount,
    PortalRun,
    assert_accessible,
    follow,
    log_in,
    log_out,
    page_text,
    phone,
    shot,
    sideways,
    submit,
    trail_entries,
)

NEW_PASSWORD = "een nieuw en lang wachtwoord"  # test accounts only


def _by(kind: str) -> Any:
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def _store(portal: PortalRun) -> UserStore:
    from betrokken.audit.trail import open_trail
    from betrokken.config.load import load_node

    trail, _ = open_trail(load_node(portal.config.parent / "node.toml"))
    return UserStore(trail.engine, "test")


def _type_login(driver: Any, portal: PortalRun, name: str, password: str, code: str) -> str:
    driver.get(portal.url + "/inloggen")
    driver.find_element(_by("ID"), "gebruikersnaam").send_keys(name)
    driver.find_element(_by("ID"), "wachtwoord").send_keys(password)
    if code:
        driver.find_element(_by("ID"), "code").send_keys(code)
    submit(driver, "/inloggen")
    return page_text(driver)


def _account_action(driver: Any, name: str, label: str) -> None:
    """Press the button ``label`` in the row of account ``name``."""
    from tests.portal.conftest import _to_next_page

    row = next(
        r
        for r in driver.find_elements(_by("CSS_SELECTOR"), "table.accounts tbody tr")
        if r.find_element(_by("TAG_NAME"), "th").text == name
    )
    button = next(b for b in row.find_elements(_by("TAG_NAME"), "button") if label in b.text)
    _to_next_page(driver, button)


def _handover(driver: Any) -> str:
    return str(driver.find_element(_by("CSS_SELECTOR"), ".handover code").text)


def _enrol(driver: Any, portal: PortalRun, name: str, temporary: str) -> str:
    """The first login with the temporary password: scan (read) the QR code, confirm with a code,
    choose a password. Returns the TOTP secret the user's app now holds."""
    text = _type_login(driver, portal, name, temporary, "")
    assert driver.current_url.endswith("/inloggen/instellen"), text
    assert driver.title.startswith("Uw inlog instellen")
    assert "U logt voor het eerst in: stel de code-app in" in text
    secret = driver.find_element(_by("CSS_SELECTOR"), "code.secret").text.replace(" ", "")
    # The QR code on the page is the otpauth URI of exactly that secret, drawn by the portal.
    svg = driver.find_element(_by("CSS_SELECTOR"), "figure.qr svg")
    assert svg.get_attribute("role") == "img"
    shown = svg.find_element(_by("CSS_SELECTOR"), "path.qrline").get_attribute("d")
    org_uri = _org_uri(portal, name, secret)
    drawn = segno.make(org_uri, error="m").svg_inline(scale=4, border=4)
    assert f'd="{shown}"' in drawn, "the QR code is not the enrolment URI of the shown secret"
    shot(driver, "inloggen-instellen")
    assert "googleapis" not in driver.page_source and "http" not in (svg.get_attribute("outerHTML"))
    assert_accessible(driver)
    code = pyotp.TOTP(secret).at(portal.clock())
    driver.find_element(_by("ID"), "code").send_keys(code)
    driver.find_element(_by("ID"), "nieuw").send_keys(NEW_PASSWORD)
    driver.find_element(_by("ID"), "nogmaals").send_keys(NEW_PASSWORD)
    submit(driver, "/inloggen/instellen")
    assert "Uitloggen" in driver.find_element(_by("TAG_NAME"), "body").text
    return secret


def _org_uri(portal: PortalRun, name: str, secret: str) -> str:
    from betrokken.config.load import load_portal

    loaded = load_portal(portal.config)
    organisation = loaded.node.network.organisation(loaded.node.component.organisation)
    assert organisation is not None
    return pyotp.TOTP(secret).provisioning_uri(
        name=name, issuer_name=f"betrokken {organisation.name}"
    )


def test_a_beheerder_adds_an_account_and_its_user_enrols_with_a_qr_code_at_the_first_login(
    portal: PortalRun, chromium: Chromium
) -> None:
    driver = chromium.fresh()
    log_in(driver, portal, portal.user("beheerder"))
    follow(driver, "Accounts")
    assert driver.find_element(_by("TAG_NAME"), "h1").text == "Accounts"
    assert_accessible(driver)
    driver.find_element(_by("ID"), "nieuw-gebruikersnaam").send_keys("n.nieuw")
    driver.find_element(_by("ID"), "nieuw-naam").send_keys("N. Nieuw")
    submit(driver, "/beheer/accounts")  # no role chosen: refused, what was typed kept
    assert driver.title.startswith("Fout: Accounts")
    assert "Kies ten minste één rol" in page_text(driver)
    assert driver.find_element(_by("ID"), "nieuw-naam").get_attribute("value") == "N. Nieuw"
    assert_accessible(driver)
    driver.find_element(_by("ID"), "rol-regisseur").click()
    submit(driver, "/beheer/accounts")
    text = page_text(driver)
    assert "Account n.nieuw is toegevoegd." in text
    temporary = _handover(driver)
    assert re.fullmatch(r"([a-z2-9]{4}-){3}[a-z2-9]{4}", temporary)
    assert "wacht op de eerste keer inloggen" in page_text(driver)
    assert_accessible(driver)
    shot(driver, "beheerder-accounts")
    added = [e for e in trail_entries(portal.config) if e.reason == "account added"]
    assert added[-1].user == "b.bakker" and added[-1].details["account"] == "n.nieuw"
    log_out(driver)

    # The first login: no code yet; the QR code, a code from the app and an own password.
    driver = chromium.fresh()
    phone(driver)
    text = _type_login(driver, portal, "n.nieuw", temporary, "")
    assert not sideways(driver), sideways(driver)
    driver = chromium.fresh()
    secret = _enrol(driver, portal, "n.nieuw", temporary)
    assert "/vraag" in driver.current_url
    log_out(driver)
    # The temporary password is gone; the own password with a fresh code works.
    user = PortalAccount("n.nieuw", "regisseur", NEW_PASSWORD, secret, 0)
    user.last_step = int(portal.clock().timestamp()) // 30
    refused = _type_login(driver, portal, "n.nieuw", temporary, user.code(portal.clock))
    assert "klopt niet" in refused
    log_in(driver, portal, user)


def test_the_enrolment_page_reflows_on_a_phone(portal: PortalRun, chromium: Chromium) -> None:
    enrolment = _store(portal).add(
        "t.telefoon", "tijdelijk-wachtwoord", ("regisseur",), enrol_at_login=True
    )
    assert enrolment.password is None
    driver = chromium.fresh()
    phone(driver)
    _type_login(driver, portal, "t.telefoon", "tijdelijk-wachtwoord", "")
    assert driver.current_url.endswith("/inloggen/instellen")
    assert not sideways(driver), sideways(driver)
    assert_accessible(driver)
    shot(driver, "telefoon-inloggen-instellen")


def test_a_beheerder_unblocks_resets_and_disables_accounts_and_each_change_is_recorded(
    portal: PortalRun, chromium: Chromium
) -> None:
    target = portal.add_user("u.gebruiker", "regisseur")
    driver = chromium.fresh()
    for _ in range(2):  # two wrong passwords: below the free failures, so nothing waits
        assert "klopt niet" in _type_login(driver, portal, target.name, "fout wachtwoord", "")
    driver = chromium.fresh()
    log_in(driver, portal, portal.user("beheerder"))
    driver.get(portal.url + "/beheer/accounts")
    row = page_text(driver)
    assert "actief; 2 mislukte pogingen sinds de laatste keer inloggen" in row
    _account_action(driver, target.name, "Deblokkeren")
    assert "Account u.gebruiker is gedeblokkeerd" in page_text(driver)
    assert _store(portal).get(target.name).failed_logins == 0  # type: ignore[union-attr]
    _account_action(driver, target.name, "Wachtwoord en code opnieuw instellen")
    assert "het oude wachtwoord en de oude code werken niet meer" in page_text(driver)
    temporary = _handover(driver)
    assert_accessible(driver)
    _account_action(driver, target.name, "Uitschakelen")
    assert "Account u.gebruiker is uitgeschakeld" in page_text(driver)
    assert "uitgeschakeld" in page_text(driver)
    assert_accessible(driver)
    log_out(driver)
    # Disabled: neither the temporary password nor the old one opens anything.
    driver = chromium.fresh()
    assert "klopt niet" in _type_login(driver, portal, target.name, temporary, "")
    assert "klopt niet" in _type_login(
        driver, portal, target.name, PASSWORD, target.code(portal.clock)
    )
    reasons = [
        (e.reason, e.user)
        for e in trail_entries(portal.config)
        if e.event.value == "role-change" and e.details.get("account") == target.name
    ]
    assert reasons[-3:] == [
        ("account unblocked", "b.bakker"),
        ("account reset", "b.bakker"),
        ("account disabled", "b.bakker"),
    ]


def test_everyone_changes_their_own_password_and_a_wrong_current_one_changes_nothing(
    portal: PortalRun, chromium: Chromium
) -> None:
    user = portal.add_user("w.wissel", "dpo")
    driver = chromium.fresh()
    log_in(driver, portal, user)
    follow(driver, "Wachtwoord wijzigen")
    assert_accessible(driver)
    shot(driver, "account-wachtwoord")
    driver.find_element(_by("ID"), "huidig").send_keys("niet het wachtwoord")
    driver.find_element(_by("ID"), "nieuw").send_keys(NEW_PASSWORD)
    driver.find_element(_by("ID"), "nogmaals").send_keys(NEW_PASSWORD)
    submit(driver, "/account/wachtwoord")
    assert driver.title.startswith("Fout: Wachtwoord wijzigen")
    assert "Uw huidige wachtwoord klopt niet" in page_text(driver)
    # One form pattern: the error summary names the field as a link, and has the focus.
    summary = driver.find_element(_by("CSS_SELECTOR"), ".error-summary")
    assert summary.find_element(_by("TAG_NAME"), "h2").text == "Er is een probleem"
    link = summary.find_element(_by("TAG_NAME"), "a")
    assert link.get_attribute("href").endswith("#huidig")
    assert driver.execute_script("return document.activeElement.id") == "fout"
    assert driver.find_element(_by("ID"), "huidig").get_attribute("aria-invalid") == "true"
    assert_accessible(driver)
    driver.find_element(_by("ID"), "huidig").send_keys(PASSWORD)
    driver.find_element(_by("ID"), "nieuw").send_keys(NEW_PASSWORD)
    driver.find_element(_by("ID"), "nogmaals").send_keys(NEW_PASSWORD)
    submit(driver, "/account/wachtwoord")
    assert "Uw wachtwoord is gewijzigd" in page_text(driver)
    log_out(driver)
    assert "klopt niet" in _type_login(driver, portal, user.name, PASSWORD, user.code(portal.clock))
    user.password = NEW_PASSWORD
    log_in(driver, portal, user)


def test_a_code_used_twice_is_named_and_does_not_count_towards_the_lock_out(
    portal: PortalRun, chromium: Chromium
) -> None:
    """The attacker's move it must not help: nothing. The user's own move it must not punish:
    typing the code that just worked once more (a double click, a back button) is said as such,
    and more times than the free failures still leaves the next login unslowed."""
    user = portal.add_user("c.tweemaal", "regisseur")
    driver = chromium.fresh()
    code = user.code(portal.clock)
    assert "Uitloggen" in _type_login(driver, portal, user.name, user.password, code) + (
        driver.find_element(_by("TAG_NAME"), "body").text
    )
    log_out(driver)
    free = 5
    for _ in range(free + 1):
        text = _type_login(driver, portal, user.name, user.password, code)
        assert "Deze code is al gebruikt. Wacht op de volgende code in uw app" in text
        assert "Te veel mislukte pogingen" not in text
    assert_accessible(driver)
    assert _store(portal).get(user.name).failed_logins == 0  # type: ignore[union-attr]
    log_in(driver, portal, user)  # not slowed
    used = [
        e for e in trail_entries(portal.config) if e.user == user.name and e.reason == "code-used"
    ]
    assert len(used) == free + 1
