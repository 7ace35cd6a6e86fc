"""The DPO's and the beheerder's pages in a real Chromium against a running network: what a person
sees (the letter, the log, the import's summary), axe-core on every page, and each DPO page view
recorded in the organisation's own trail."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import random
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from babel.dates import format_date

from betrokken.app.demo import GEMEENTE, GGZ, POLITIE, RECLASSERING, ZVH
from betrokken.crypto.bsn import generate_bsn
from betrokken.portal.i18n import AMSTERDAM
from tests.portal.conftest import (
    PortalAccount,
    PortalRun,
    _to_next_page,
    assert_accessible,
    log_in,
    log_out,
    page_text,
    submit,
)

DPO_PAGES = ("/dpo/status", "/dpo/logboek", "/dpo/rapport", "/dpo/inzage")


def _by(kind: str) -> Any:
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def _trail_rows(portal: PortalRun, since: int = 0) -> list[dict[str, Any]]:
    db = portal.running.net.node_configs[portal.organisation].parent / "node.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            'select "index", content from log_records where "index" >= ? and content is not null',
            (since,),
        ).fetchall()
    return [{"index": index, **json.loads(content)} for index, content in rows]


def _trail_size(portal: PortalRun) -> int:
    db = portal.running.net.node_configs[portal.organisation].parent / "node.db"
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from log_records").fetchone()[0])


def _name(portal: PortalRun, org: str) -> str:
    organisation = portal.running.network.organisation(org)
    assert organisation is not None
    return organisation.name


def _shot(driver: Any, name: str) -> None:
    """With BETROKKEN_SCREENSHOTS=<folder>: the whole page as a PNG 1280 px wide."""
    if os.environ.get("BETROKKEN_SCREENSHOTS"):
        _shot_width(driver, name, 1280)


def _print_shot(driver: Any, name: str) -> None:
    """With BETROKKEN_SCREENSHOTS: the page printed on A4 by Chromium (print to PDF, the print
    style sheet and its page margins), and the PDF's first page as a PNG (with pdftoppm)."""
    folder = os.environ.get("BETROKKEN_SCREENSHOTS")
    if not folder:
        return
    pdf = driver.execute_cdp_cmd("Page.printToPDF", {"preferCSSPageSize": True})
    target = Path(folder, f"{name}.pdf")
    target.write_bytes(base64.b64decode(pdf["data"]))
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm:
        subprocess.run(
            [
                pdftoppm,
                "-png",
                "-r",
                "96",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                str(target),
                str(target.with_suffix("")),
            ],
            check=True,
        )


def _shot_width(driver: Any, name: str, width: int) -> None:
    folder = os.environ["BETROKKEN_SCREENSHOTS"]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    Path(folder, f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def _log_in(driver: Any, portal: PortalRun, role: str) -> PortalAccount:
    """Log the role's account in through the login form (:func:`tests.portal.conftest.log_in`)."""
    user = portal.user(role)
    log_in(driver, portal, user)
    return user


def _heading(driver: Any) -> str:
    """The page's h1, read in one script call (no element that a reload could make stale)."""
    script = "const h = document.querySelector('h1'); return h ? h.innerText.trim() : '';"
    return str(driver.execute_script(script))


def test_a_dpo_answers_an_access_request_with_a_letter_of_each_look_up(
    portal: PortalRun, browser: Any
) -> None:
    running = portal.running
    # Someone registered at the police and at least one other partner, asked about by the ZVH.
    person = next(
        b
        for b in running.truth.registrations[POLITIE]
        if len(running.truth.where(b)) >= 2 and ZVH not in running.truth.where(b)
    )
    before = format_date(dt.datetime.now(AMSTERDAM).date(), "d MMMM y", locale="nl")
    asked = running.query(ZVH, person.digits, "zvh-triage", "CASE-INZAGE-1")
    assert asked.code == 0, asked.stderr
    after = format_date(dt.datetime.now(AMSTERDAM).date(), "d MMMM y", locale="nl")
    _log_in(browser, portal, "dpo")
    browser.get(portal.url + "/dpo/inzage")
    assert_accessible(browser)
    _shot(browser, "dpo-inzage")
    running.typed.add(person.digits)
    browser.find_element(_by("ID"), "bsn").send_keys(person.digits)
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(_by("ID"), "salutation")).select_by_value("mevrouw")
    browser.find_element(_by("ID"), "surname").send_keys("Pietersen")
    browser.find_element(_by("ID"), "name").send_keys("Mw. J. Pietersen")
    browser.find_element(_by("ID"), "own_text").send_keys(
        "Wij hebben uw verzoek op tijd behandeld."
    )
    browser.find_element(_by("ID"), "signer").send_keys("J. de Boer, directeur")
    browser.find_element(_by("ID"), "address").send_keys("Kerkstraat 1\n2011 AA Haarlem")
    browser.find_element(_by("ID"), "requested_on").send_keys("2-11-2026")
    browser.find_element(_by("ID"), "reference").send_keys("FG-2026-017")
    submit(browser, "/dpo/inzage")
    assert _heading(browser) == "Brief: antwoord op een inzageverzoek"
    letter = str(browser.find_element(_by("CSS_SELECTOR"), "article.letter").text)
    assert "Geachte mevrouw Pietersen," in letter and "Geachte Mw." not in letter
    assert "Wij hebben uw verzoek op tijd behandeld." in letter
    assert "artikel 15, eerste lid, AVG" in letter
    for element in ("Doeleinden", "Categorieën", "Ontvangers", "Bewaartermijn", "Uw rechten"):
        assert element in letter, element
    for element in ("Klacht (onder f)", "Bron (onder g)", "artikel 16 AVG", "artikel 21 AVG"):
        assert element in letter, element
    assert "laat bij ons bewust geen spoor na" in letter  # what the trail cannot show
    # The restriction step: every partner's FG is asked whether its involvement may be told, and
    # none has answered yet. The letter names nobody as involved, says until when each partner
    # decides (Amsterdam time), and the page says not to send it yet.
    partners = {
        li.find_element(_by("TAG_NAME"), "strong").text: li.text
        for li in browser.find_elements(_by("CSS_SELECTOR"), "article.letter ul.partners li")
    }
    for org in (POLITIE, RECLASSERING, GEMEENTE, GGZ):
        shown = partners[_name(portal, org)]
        assert "heeft nog niet geantwoord" in shown and " om " in shown, partners
        assert "nu bij u betrokken" not in shown, partners
    waiting = str(browser.find_element(_by("ID"), "letter-waiting").text)
    assert "Verstuur deze brief nog niet." in waiting and "UTC" not in waiting
    assert "niemand heeft onze organisatie naar u gevraagd" not in letter
    assert f"J. de Boer, directeur\nnamens {_name(portal, ZVH)} (verwerkingsverantwoordelijke)" in (
        letter
    )
    assert "Op 2 november 2026 vroeg u ons" in letter
    assert "Kerkstraat 1\n2011 AA Haarlem" in letter
    assert "Onderwerp: uw verzoek om inzage (artikel 15 AVG)" in letter
    assert "Autoriteit Persoonsgegevens" in letter
    assert person.masked() in letter and person.digits not in browser.page_source
    # The look-ups grouped by purpose: the purpose and its legal basis head its own table; a row
    # has the Dutch date and time, the ZVH as asker, the role, the answers.
    purpose = running.network.purpose("zvh-triage")
    assert purpose is not None
    groups = browser.execute_script(
        "return [...document.querySelectorAll('article.letter h4.purpose')].map(h => [h.innerText,"
        " h.nextElementSibling.innerText, [...h.nextElementSibling.nextElementSibling"
        ".querySelectorAll('tbody tr')].map(r => r.innerText)]);"
    )
    mine = [g for g in groups if g[0] == purpose.description]
    assert len(mine) == 1, groups
    assert mine[0][1] == f"Grondslag: {purpose.legal_basis}"
    row = mine[0][2][-1]
    assert (before in row or after in row) and " om " in row and "UTC" not in row, row
    assert _name(portal, ZVH) in row and "als procesregisseur" in row, row
    # What the partners answered is not quoted before they agreed (artikel 41 UAVG).
    for org in (POLITIE, RECLASSERING, GEMEENTE):
        assert f"{_name(portal, org)}: nog niet vermeld" in row, (org, row)
        assert f"{_name(portal, org)}: betrokken" not in row, (org, row)
    assert "(naam niet gedeeld): betrokken" not in row
    # Every partner's own trail, with its contact point.
    for org in (POLITIE, GGZ):
        assert _name(portal, org) in letter
    # The staff account is on screen for the DPO, not in the letter.
    assert "tester" not in letter
    staff = str(browser.find_element(_by("CSS_SELECTOR"), "section.staff").text)
    assert "tester" in staff
    assert_accessible(browser)
    _shot(browser, "dpo-brief")
    _print_shot(browser, "dpo-brief-a4")
    # Printed, only the letter remains (the print style sheet hides the rest).
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    shown = browser.execute_script(
        "return ['.site-header', '.site-footer', '.staff', '.letter-tools', 'article.letter']"
        ".map(s => getComputedStyle(document.querySelector(s)).display);"
    )
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    assert shown[:4] == ["none"] * 4 and shown[4] != "none", shown
    # The request is in the register with its deadline, one month after receipt, until sent.
    browser.get(portal.url + "/dpo/inzage")
    row = browser.find_element(
        _by("CSS_SELECTOR"), "table.register tr[data-reference='FG-2026-017']"
    )
    assert "02-11-2026" in row.text and "02-12-2026" in row.text, row.text
    # The deadline accounts for the partners' term (three days): ask them by 28 November.
    assert "Partners vragen vóór 28-11-2026" in row.text, row.text
    assert "Nog niet geantwoord:" in row.text and _name(portal, POLITIE) in row.text, row.text
    assert person.digits not in browser.page_source
    assert_accessible(browser)
    _shot(browser, "dpo-inzage-register")
    _to_next_page(browser, row.find_element(_by("CSS_SELECTOR"), "button"))
    row = browser.find_element(
        _by("CSS_SELECTOR"), "table.register tr[data-reference='FG-2026-017']"
    )
    assert dt.datetime.now(AMSTERDAM).strftime(
        "%d-%m-%Y"
    ) in row.text and "Verzonden melden" not in (row.text)
    log_out(browser)


def test_every_dpo_page_view_is_a_log_access_record_naming_the_account(
    portal: PortalRun, browser: Any
) -> None:
    dpo = _log_in(browser, portal, "dpo")
    start = _trail_size(portal)
    for page in DPO_PAGES:
        browser.get(portal.url + page)
        assert "Uitloggen" in str(browser.find_element(_by("TAG_NAME"), "body").text)
        assert_accessible(browser)
    access = [r for r in _trail_rows(portal, start) if r["event"] == "log-access"]
    seen = [(r["user"], r["role"], r["access_point"].split(" from ")[0]) for r in access]
    assert seen == [
        (dpo.name, "dpo", "betrokken portal /dpo/status"),
        (dpo.name, "dpo", "betrokken portal /dpo/logboek"),
        (dpo.name, "dpo", "betrokken portal /dpo/rapport"),
        (dpo.name, "dpo", "betrokken portal /dpo/inzage"),
    ]
    log_out(browser)


def test_the_dpo_sees_the_log_status_and_a_filtered_log_in_dutch(
    portal: PortalRun, browser: Any
) -> None:
    assert portal.running.query(ZVH, "999993653", "zvh-triage", "CASE-FILTER-9").code == 0
    _log_in(browser, portal, "dpo")
    browser.get(portal.url + "/dpo/status")
    text = page_text(browser)
    _shot(browser, "dpo-status")
    assert "Het logboek is in orde" in text
    assert "Laatste ondertekende controlepunt" in text and "UTC" not in text
    browser.get(portal.url + "/dpo/logboek?zaak=CASE-FILTER-9&soort=own-query")
    rows = browser.find_elements(_by("CSS_SELECTOR"), "table.data tbody tr")
    assert len(rows) == 1, [r.text for r in rows]
    browser.get(portal.url + "/dpo/logboek?soort=own-query")
    _shot(browser, "dpo-logboek")
    browser.get(portal.url + "/dpo/logboek?zaak=CASE-FILTER-9&soort=own-query")
    rows = browser.find_elements(_by("CSS_SELECTOR"), "table.data tbody tr")
    assert "vraag door onze organisatie" in rows[0].text and "CASE-FILTER-9" in rows[0].text
    assert "volledig" in rows[0].text or "onvolledig" in rows[0].text
    log_out(browser)


def test_a_filter_with_an_unknown_value_is_refused_with_a_message(
    portal: PortalRun, browser: Any
) -> None:
    _log_in(browser, portal, "dpo")
    for query, message in (
        ("soort=bestaat-niet", "'bestaat-niet' is geen bekende waarde voor 'Soort regel'"),
        ("organisatie=nergens", "'nergens' is geen bekende waarde voor 'Organisatie'"),
        ("doel=vissen", "'vissen' is geen bekende waarde voor 'Doel'"),
        ("uitkomst=misschien", "'misschien' is geen bekende waarde voor 'Uitkomst'"),
        ("van=gisteren", "'Vanaf' is geen datum"),
    ):
        browser.get(portal.url + "/dpo/logboek?" + query)
        # The one form pattern: the summary (focused, "Fout:" in the title) links to the field.
        alert = str(browser.find_element(_by("CSS_SELECTOR"), "[role=alert]").text)
        assert "Er is een probleem" in alert and message in alert, alert
        assert browser.title.startswith("Fout: ")
        field = query.split("=")[0]
        link = browser.find_element(_by("CSS_SELECTOR"), "#fout a")
        assert link.get_attribute("href").endswith("#" + field)
        assert not browser.find_elements(_by("CSS_SELECTOR"), "table.data")
        if query.startswith("soort="):
            _shot(browser, "dpo-logboek-fout")
    assert_accessible(browser)
    log_out(browser)


def test_a_regisseur_cannot_open_dpo_or_beheerder_pages(portal: PortalRun, browser: Any) -> None:
    _log_in(browser, portal, "regisseur")
    start = _trail_size(portal)
    for page in (*DPO_PAGES, "/dpo/rapport/volledig", "/beheer/status", "/beheer/import"):
        browser.get(portal.url + page)
        assert _heading(browser) == "Geen toegang tot deze pagina", page
        assert "Status logboek" not in page_text(browser)
    links = [
        a.get_attribute("href")
        for a in browser.find_elements(_by("CSS_SELECTOR"), "nav.main-nav a")
    ]
    assert not [link for link in links if "/dpo" in link or "/beheer" in link]
    # nothing of the log was read on the regisseur's behalf
    assert not [r for r in _trail_rows(portal, start) if r["event"] == "log-access"]
    log_out(browser)


def test_a_beheerder_sees_the_node_status(portal: PortalRun, browser: Any) -> None:
    _log_in(browser, portal, "beheerder")
    browser.get(portal.url + "/beheer/status")
    text = page_text(browser)
    assert _heading(browser) == "Status node"
    rows = browser.find_elements(_by("CSS_SELECTOR"), "table.data tbody tr")
    states = {r.find_elements(_by("TAG_NAME"), "td")[0].text: r.text for r in rows}
    assert set(states) == {
        "onze node",
        "centrale schakel (coördinator)",
        "sleuteldienst (versleutelt het BSN)",
    }
    assert all("werkt" in s for s in states.values()), states
    assert "geldig tot" in text and "Actief" in text
    assert_accessible(browser)
    _shot(browser, "beheerder-status")
    log_out(browser)


def test_a_beheerder_imports_a_file_with_bad_lines_and_sees_the_collapsed_summary(
    portal: PortalRun, browser: Any, tmp_path: Path
) -> None:
    running = portal.running
    rng = random.Random(4711)
    known = running.all_bsns()
    fresh = []
    while len(fresh) < 8:
        candidate = generate_bsn(rng)
        if candidate.digits not in known and candidate not in fresh:
            fresh.append(candidate)
    running.typed.update(b.digits for b in fresh)
    lines = ["BSN;since;contact;Medewerker"]  # an extra column, as case systems export
    lines += [f"{b.digits};01-09-2026;wijkteam;A" for b in fresh[:3]]  # lines 2-4: good
    lines += [f"{b.digits};gisteren;wijkteam;B" for b in fresh[3:8]]  # lines 5-9: bad date
    bad = [b.digits[:-1] + str((int(b.digits[-1]) + 1) % 10) for b in fresh[:2]]
    running.typed.update(bad)
    lines += [f"{digits};01-09-2026;wijkteam;C" for digits in bad]  # lines 10-11: elfproef
    export = tmp_path / "zaaksysteem export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _log_in(browser, portal, "beheerder")
    browser.get(portal.url + "/beheer/import")
    assert_accessible(browser)
    _shot(browser, "beheerder-import")
    browser.find_element(_by("ID"), "bestand").send_keys(str(export))
    submit(browser, "/beheer/import")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 180, poll_frequency=1).until(
        lambda d: _heading(d) in ("Import klaar", "Import gestopt")
    )
    export.unlink()  # the test's own copy; the portal kept none
    assert _heading(browser) == "Import klaar"
    text = page_text(browser)
    counts = browser.find_element(_by("CSS_SELECTOR"), "dl.counts").text.splitlines()
    assert counts[:8] == [
        "Toegevoegd",
        "3",
        "Gewijzigd",
        "0",
        "Ongewijzigd (bevestigd)",
        "0",
        "Afgewezen",
        "7",
    ]
    problems = [li.text for li in browser.find_elements(_by("CSS_SELECTOR"), "ul.problems li")]
    assert problems == [
        "5 regels: startdatum (since): geen datum (gebruik JJJJ-MM-DD of dd-mm-jjjj) — bijv. "
        "regel 5, 6, 7",
        "2 regels: BSN doorstaat de elfproef niet — bijv. regel 10, 11",
    ]
    assert "Geïmporteerd, met afgewezen regels" in text
    assert "Niet gelezen: Medewerker" in text
    for digits in [b.digits for b in fresh] + bad:
        assert digits not in browser.page_source
    assert_accessible(browser)
    _shot(browser, "beheerder-import-klaar")
    # The registrations are in the node's trail with the beheerder's account as the actor.
    added = [
        r
        for r in _trail_rows(portal)
        if r["event"] == "registration-change" and r["reason"] == "added"
    ]
    # An import keeps one record per batch and kind of change, listing each person by
    # fingerprint: the three added persons, all under the beheerder's account.
    mine = [r for r in added if r["user"] == portal.user("beheerder").name]
    assert sum(len(r["subjects"]) for r in mine) == 3
    assert all("import_lines" in r["details"] for r in mine)
    log_out(browser)


def test_an_upload_without_the_forms_token_or_over_the_size_limit_is_refused(
    portal: PortalRun, browser: Any
) -> None:
    """Sent from the beheerder's own session (fetch in the page): without the CSRF token the
    upload is refused before anything is read; above 20 MB it is refused from its length."""
    _log_in(browser, portal, "beheerder")
    browser.get(portal.url + "/beheer/import")
    send = (
        "const [withToken, size, done] = arguments;"
        "const form = new FormData();"
        "if (withToken) form.append('csrf', document.querySelector('input[name=csrf]').value);"
        "form.append('bestand', new Blob([new Uint8Array(size).fill(59)]), 'export.csv');"
        "fetch('/beheer/import', {method: 'POST', body: form, redirect: 'manual'})"
        ".then(r => r.text().then(t => done([r.status, t])))"
        ".catch(e => done([0, String(e)]));"
    )
    status, text = browser.execute_async_script(send, False, 100)
    assert status == 403 and "Het formulier is verlopen" in text, (status, text[:300])
    status, text = browser.execute_async_script(send, True, 21 * 1024 * 1024)
    assert status == 413, (status, text[:300])
    assert "Het bestand is groter dan 20 MB" in text
    status, text = browser.execute_async_script(send, True, 0)
    assert status == 400 and "Het bestand is leeg." in text, (status, text[:300])
    log_out(browser)
