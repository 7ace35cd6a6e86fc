"""The beheerder's import in the browser: an export with the headers a Dutch case system writes
is read whole (start, end and case number, not just the BSN), and a file that is not a table is
refused by its content whatever its name."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path
from typing import Any

from betrokken.crypto.bsn import Bsn, generate_bsn
from tests.portal.conftest import (
    PortalRun,
    assert_accessible,
    log_in,
    log_out,
    page_text,
    shot,
    submit,
)


def _by(kind: str) -> Any:
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def _upload(browser: Any, portal: PortalRun, path: Path) -> None:
    browser.get(portal.url + "/beheer/import")
    browser.find_element(_by("ID"), "bestand").send_keys(str(path))
    submit(browser, "/beheer/import")


def _two_unknown_persons(portal: PortalRun, seed: int) -> list[Bsn]:
    """Two valid BSNs registered nowhere yet, noted as typed (the P1 scan looks for them)."""
    rng = random.Random(seed)
    known = portal.running.all_bsns()
    fresh: list[Bsn] = []
    while len(fresh) < 2:
        candidate = generate_bsn(rng)
        if candidate.digits not in known and candidate not in fresh:
            fresh.append(candidate)
    portal.running.typed.update(b.digits for b in fresh)
    return fresh


def test_an_export_with_dutch_headers_imports_start_end_and_case_number(
    portal: PortalRun, browser: Any, tmp_path: Path
) -> None:
    fresh = _two_unknown_persons(portal, 1848)
    export = tmp_path / "export zaaksysteem.csv"
    export.write_text(
        "BSN;Startdatum;Einddatum;Dossiernummer\n"
        f"{fresh[0].digits};01-09-2026;31-12-2027;D-2026-001\n"
        f"{fresh[1].digits};02-09-2026;;D-2026-002\n",
        encoding="utf-8",
    )
    log_in(browser, portal, portal.user("beheerder"))
    _upload(browser, portal, export)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 180, poll_frequency=1).until(
        lambda d: d.find_element(_by("TAG_NAME"), "h1").text in ("Import klaar", "Import gestopt")
    )
    text = page_text(browser)
    assert "Import klaar" in browser.find_element(_by("TAG_NAME"), "h1").text
    assert "startdatum (since) ← “Startdatum”" in text
    assert "einddatum (until) ← “Einddatum”" in text
    assert "← “Dossiernummer”" in text
    assert "Niet gelezen" not in text
    assert_accessible(browser)
    log_out(browser)


def test_a_word_document_named_csv_is_refused_by_its_content(
    portal: PortalRun, browser: Any, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    document = tmp_path / "cliënten.csv"
    document.write_bytes(buffer.getvalue())
    log_in(browser, portal, portal.user("beheerder"))
    _upload(browser, portal, document)
    text = page_text(browser)
    # Named by what it is (not read as CSV), in Dutch, saying what to upload instead; through the
    # one form pattern: the summary has the focus and links to the file field, the title says so.
    assert "Dit bestand is een Word-document (.docx), geen tabel" in text
    assert "als CSV-bestand (UTF-8) of als Excel-werkmap (.xlsx)" in text
    assert "Word document" not in text and "not a table" not in text
    assert browser.title.startswith("Fout: ")
    assert browser.switch_to.active_element.get_attribute("id") == "fout"
    link = browser.find_element(_by("CSS_SELECTOR"), "#fout a")
    assert link.get_attribute("href").endswith("#bestand")
    described = browser.find_element(_by("ID"), "bestand").get_attribute("aria-describedby")
    assert "bestand-fout" in described.split()
    assert_accessible(browser)
    shot(browser, "beheerder-import-fout")
    log_out(browser)


def test_unrecognised_headers_lead_to_a_mapping_step_that_refuses_an_unread_date_column(
    portal: PortalRun, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.support.ui import Select, WebDriverWait

    fresh = _two_unknown_persons(portal, 2718)
    export = tmp_path / "export.csv"
    export.write_text(
        "Burger;Datum in zorg;Datum uit zorg;Zaak\n"
        f"{fresh[0].digits};01-09-2026;31-12-2027;Z-1\n"
        f"{fresh[1].digits};02-09-2026;;Z-2\n",
        encoding="utf-8",
    )
    log_in(browser, portal, portal.user("beheerder"))
    _upload(browser, portal, export)
    assert browser.title.startswith("Fout: Kolommen kiezen")
    text = page_text(browser)
    assert "Geen kolom van het bestand is herkend als BSN." in text
    assert "Er is niets opgeslagen" in text
    for bsn in fresh:
        assert bsn.digits not in browser.page_source  # the first lines show it masked
        assert bsn.masked() in text
    assert "lijkt een datum" in text
    assert_accessible(browser)
    shot(browser, "beheerder-import-kolommen")
    Select(browser.find_element(_by("ID"), "kolom-0")).select_by_value("bsn")
    Select(browser.find_element(_by("ID"), "kolom-1")).select_by_value("since")
    submit(browser, "/beheer/import/kolommen")  # "Datum uit zorg" left unread: refused
    text = page_text(browser)
    assert "De kolom “Datum uit zorg” lijkt een datum maar wordt niet ingelezen" in text
    assert Select(browser.find_element(_by("ID"), "kolom-1")).first_selected_option.text
    Select(browser.find_element(_by("ID"), "kolom-2")).select_by_value("until")
    Select(browser.find_element(_by("ID"), "kolom-3")).select_by_value("reference")
    submit(browser, "/beheer/import/kolommen")
    WebDriverWait(browser, 180, poll_frequency=1).until(
        lambda d: d.find_element(_by("TAG_NAME"), "h1").text in ("Import klaar", "Import gestopt")
    )
    text = page_text(browser)
    assert "einddatum (until) ← “Datum uit zorg”" in text
    assert "BSN ← “Burger”" in text
    log_out(browser)
