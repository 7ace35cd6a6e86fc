"""The regisseur's pages in a real browser: what a person sees after asking."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from betrokken.app.demo import RECLASSERING
from tests.portal.conftest import (
    Chromium,
    PortalRun,
    assert_accessible,
    follow,
    log_in,
    page_text,
    submit,
    trail_entries,
)


@pytest.fixture(scope="module")
def regisseur(portal: PortalRun, chromium: Chromium) -> Iterator[Any]:
    """One regisseur, logged in once, asks everything in this module (as in a working day)."""
    driver = chromium.fresh()
    log_in(driver, portal, portal.user("regisseur"))
    yield driver
    chromium.fresh()  # the session ends with the module


def ask(
    browser: Any,
    portal: PortalRun,
    bsn: str,
    case: str,
    purpose: str = "zvh-triage",
    namens: str = "",
) -> str:
    portal.running.typed.add(bsn)
    browser.get(portal.url + "/vraag")
    browser.find_element(By.ID, "bsn").send_keys(bsn)
    Select(browser.find_element(By.ID, "doel")).select_by_value(purpose)
    if namens:  # the aanmelder the question is asked for
        Select(browser.find_element(By.ID, "namens")).select_by_value(namens)
    browser.find_element(By.ID, "zaak").send_keys(case)
    submit(browser, "/vraag")
    assert bsn not in browser.current_url
    return page_text(browser)


def test_a_person_known_at_several_organisations_shows_who_is_involved_and_whom_to_call(
    portal: PortalRun, regisseur: Any
) -> None:
    several = portal.running.named["several"]
    text = ask(regisseur, portal, several.digits, "ZVH-2026-0142")
    assert "Persoon met BSN " + several.masked() in text
    assert several.digits not in regisseur.page_source  # masked everywhere after typing
    assert "Volledig antwoord: alle 5 organisaties hebben geantwoord." in text
    involved = next(line for line in text.splitlines() if line.startswith("Betrokken:"))
    for name in ("Politie Noord-Holland", "Reclassering", "Gemeente Haarlem"):
        assert name in involved
    # The GGZ discloses only its field for triage (professional secrecy), explained in a sentence.
    assert "Een organisatie uit het domein zorg" in text
    assert "Betrokken (organisatie niet genoemd)" in text
    assert "om haar beroepsgeheim te beschermen wordt niet gezegd welke" in text
    links = [a.get_attribute("href") for a in regisseur.find_elements(By.CSS_SELECTOR, "td a")]
    assert "mailto:politie-nh@example.nl" in links
    assert "tel:+31230000000" in links  # the ZVH desk, for the domain-only answer
    assert "Antwoordnummer" in text and "Grondslag" in text
    assert "UTC" not in text and "DEFERRED" not in text and "pseudonym" not in text
    assert_accessible(regisseur)


def test_a_person_known_nowhere_reads_as_known_nowhere_with_a_complete_answer(
    portal: PortalRun, regisseur: Any
) -> None:
    text = ask(regisseur, portal, portal.running.named["nowhere"].digits, "ZVH-2026-0143")
    assert "Geen enkele organisatie meldt betrokkenheid bij deze persoon." in text
    assert "Volledig antwoord" in text
    assert "onvolledig" not in text.lower()
    assert "Betrokken:" not in text


def test_a_typing_error_in_the_bsn_asks_nothing_and_does_not_echo_the_number(
    portal: PortalRun, regisseur: Any
) -> None:
    before = len(trail_entries(portal.config))
    text = ask(regisseur, portal, "123456789", "ZVH-2026-0145")
    assert "Dit is geen geldig BSN" in text
    assert "123456789" not in regisseur.page_source
    assert regisseur.find_element(By.ID, "bsn").get_attribute("value") == ""
    assert regisseur.find_element(By.ID, "zaak").get_attribute("value") == "ZVH-2026-0145"
    assert len(trail_entries(portal.config)) == before
    assert_accessible(regisseur)


def test_a_purpose_the_user_may_not_ask_is_refused_and_recorded(
    portal: PortalRun, regisseur: Any
) -> None:
    """The form lists only the allowed purposes; a forged option is refused by the server."""
    regisseur.get(portal.url + "/vraag")
    purposes = regisseur.find_elements(By.CSS_SELECTOR, "#doel option")
    assert [o.get_attribute("value") for o in purposes] == ["zvh-triage"]
    regisseur.execute_script(
        "const o = document.createElement('option'); o.value = 'zsm-context';"
        "o.text = 'ZSM'; document.getElementById('doel').appendChild(o);"
    )
    one = portal.running.named["one"]
    portal.running.typed.add(one.digits)
    regisseur.find_element(By.ID, "bsn").send_keys(one.digits)
    Select(regisseur.find_element(By.ID, "doel")).select_by_value("zsm-context")
    regisseur.find_element(By.ID, "zaak").send_keys("ZVH-2026-0144")
    submit(regisseur, "/vraag")
    text = page_text(regisseur)
    assert "Vraag geweigerd" in text
    assert "U mag geen vragen stellen met het doel 'zsm-context'" in text
    assert "Betrokken:" not in text
    refusals = [e for e in trail_entries(portal.config) if e.event.value == "refusal" and e.user]
    assert ("r.jansen", "regisseur", "zsm-context") in [
        (e.user, e.role, e.purpose) for e in refusals
    ]
    assert_accessible(regisseur)


def test_a_list_with_an_unreachable_node_is_marked_incomplete_with_hits_first(
    portal: PortalRun, regisseur: Any, tmp_path: Path
) -> None:
    named = portal.running.named
    rows = [(named["nowhere"], "ZVH-2026-0151"), (named["several"], "ZVH-2026-0150")]
    export = tmp_path / "ochtendlijst.csv"  # as a case system exports it: semicolons, Dutch dates
    export.write_text(
        "Zaaknummer;BSN;Geboortedatum\n"
        + "".join(f"{case};{bsn.digits};01-02-1990\n" for bsn, case in rows),
        encoding="utf-8-sig",
    )
    portal.running.cluster.stop_node(RECLASSERING)
    try:
        regisseur.get(portal.url + "/lijst")
        assert_accessible(regisseur)
        regisseur.find_element(By.ID, "bestand").send_keys(str(export))
        submit(regisseur, "/lijst")
    finally:
        export.unlink()
        portal.running.start_node(RECLASSERING)
    text = page_text(regisseur)
    assert "Antwoord op uw lijst" in text
    assert "2 personen: 1 met een betrokken organisatie." in text
    assert "ONVOLLEDIG ANTWOORD" in text  # as shown: capitals, in a coloured box
    assert "Voor 2 van de 2 personen heeft niet elke organisatie geantwoord" in text
    table = regisseur.find_element(By.CSS_SELECTOR, "table.overview tbody")
    first, second = table.find_elements(By.TAG_NAME, "tr")
    assert named["several"].masked() in first.text  # the hit first, though second in the file
    assert "ONVOLLEDIG: geen antwoord van Reclassering" in first.text
    assert named["nowhere"].masked() in second.text and "geen" in second.text
    for bsn, _ in rows:
        assert bsn.digits not in regisseur.page_source
    assert "Niet bereikbaar — geen antwoord" in text
    assert_accessible(regisseur)


def test_a_list_with_bad_lines_asks_nothing_and_says_which_lines(
    portal: PortalRun, regisseur: Any, tmp_path: Path
) -> None:
    export = tmp_path / "lijst.csv"
    good = portal.running.named["one"].digits
    export.write_text(f"bsn,zaaknummer\n{good},Z-1\n123456789,Z-2\n12345678,Z-3\n{good},\n")
    before = len(trail_entries(portal.config))
    try:
        regisseur.get(portal.url + "/lijst")
        regisseur.find_element(By.ID, "bestand").send_keys(str(export))
        submit(regisseur, "/lijst")
    finally:
        export.unlink()
    text = page_text(regisseur)
    assert "er is niets gevraagd" in text
    assert "2 regels: geen geldig BSN (9 cijfers, elfproef) — bijvoorbeeld regel 3, 4" in text
    assert "regel 5: geen zaaknummer" in text
    assert "123456789" not in regisseur.page_source
    assert len(trail_entries(portal.config)) == before
    assert_accessible(regisseur)


def test_a_list_with_an_unrecognised_case_column_says_which_columns_were_not_read(
    portal: PortalRun, regisseur: Any, tmp_path: Path
) -> None:
    """A header the page does not know ("Zaaknummer (oud)") is named once, with what to do,
    instead of "geen zaaknummer" on every line; nothing is asked. "Zaaknr." is recognised."""
    export = tmp_path / "lijst.csv"
    good = portal.running.named["one"].digits
    export.write_text(f"BSN;Zaaknummer (oud)\n{good};Z-1\n{good};Z-2\n")
    before = len(trail_entries(portal.config))
    try:
        regisseur.get(portal.url + "/lijst")
        regisseur.find_element(By.ID, "bestand").send_keys(str(export))
        submit(regisseur, "/lijst")
    finally:
        export.unlink()
    text = page_text(regisseur)
    assert "er is niets gevraagd" in text
    assert "Er is geen kolom met het zaaknummer gevonden" in text
    assert "\u201cZaaknummer (oud)\u201d" in text
    assert "geen zaaknummer: geen kolom van het bestand is als zaaknummer gelezen" in text
    assert len(trail_entries(portal.config)) == before
    assert_accessible(regisseur)


def test_a_list_header_zaaknr_is_read_as_the_case_number() -> None:
    from betrokken.portal.regisseur import _read_list

    persons, problems, _ = _read_list(b"BSN;Zaaknr.\n111222333;Z-7\n", "")
    assert problems == [] and [(p.bsn.digits, p.case) for p in persons] == [("111222333", "Z-7")]


def test_my_questions_shows_this_users_questions_by_case(portal: PortalRun, regisseur: Any) -> None:
    several = portal.running.named["several"]
    ask(regisseur, portal, several.digits, "ZVH-2026-0200")
    follow(regisseur, "Mijn vragen")
    text = page_text(regisseur)
    assert "Zaak ZVH-2026-0200" in text
    section = regisseur.find_element(By.XPATH, "//section[h2[contains(., 'ZVH-2026-0200')]]")
    assert "Politie Noord-Holland" in section.text and "volledig" in section.text.lower()
    assert several.digits not in regisseur.page_source
    assert_accessible(regisseur)
