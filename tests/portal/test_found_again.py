"""An answer found again (from the asker's own trail record, by nobody else), exported for the
case file without a BSN, and the one form pattern on the question form — on the real application
and network, without a browser (tests/portal/test_answers_in_the_browser.py shows them)."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.portal.conftest import PortalAccount, PortalRun, trail_entries
from tests.portal.inprocess import InProcess, inprocess  # noqa: F401 - the shared fixture

CODE = re.compile(r'class="answer-code">([0-9A-Z]{4}-[0-9A-Z]{4})<')


@pytest.fixture(scope="module")
def askers(portal: PortalRun) -> dict[str, PortalAccount]:
    return {
        "owner": portal.add_user("t.terugvinden", "regisseur"),
        "other": portal.add_user("a.anderezaak", "regisseur"),
    }


def _ask(inprocess: InProcess, digits: str, case: str) -> str:  # noqa: F811
    """Ask about one person; the answer code shown on the answer page."""
    asked = inprocess.client.post(
        "/vraag",
        data={"csrf": inprocess.csrf("/vraag"), "bsn": digits, "doel": "zvh-triage", "zaak": case},
        follow_redirects=True,
    )
    assert asked.status_code == 200 and "Antwoord" in asked.text, asked.text
    found = CODE.search(asked.text)
    assert found, asked.text
    return found.group(1)


def test_an_answer_is_found_again_by_the_asker_and_by_nobody_else(
    inprocess: InProcess,  # noqa: F811
    askers: dict[str, PortalAccount],
) -> None:
    several = inprocess.run.running.named["several"]
    inprocess.run.running.typed.add(several.digits)
    inprocess.log_in(askers["owner"])
    code = _ask(inprocess, several.digits, "ZVH-TERUG-1")
    page = inprocess.client.get(f"/mijn-vragen/{code}")
    assert page.status_code == 200
    assert f"Antwoord {code}" in page.text and "ZVH-TERUG-1" in page.text
    assert "Betrokken" in page.text  # the hit, by its Dutch label
    assert 'href="tel:' in page.text or 'href="mailto:' in page.text  # a contact point with it
    assert several.digits not in page.text
    mine = inprocess.client.get("/mijn-vragen")
    assert f'href="/mijn-vragen/{code}"' in mine.text
    # Another regisseur of the same organisation, with the same code: not found, nothing shown.
    inprocess.log_in(askers["other"])
    for address in (
        f"/mijn-vragen/{code}",
        f"/mijn-vragen/{code}/csv",
        f"/mijn-vragen/{code}/xlsx",
    ):
        refused = inprocess.client.get(address)
        assert refused.status_code == 404, address
        assert "ZVH-TERUG-1" not in refused.text
    reads = [
        e
        for e in trail_entries(inprocess.run.config)
        if e.event.value == "log-access" and e.reason == "portal: answer reopened"
    ]
    assert [e.user for e in reads][-1:] == ["t.terugvinden"]


def test_an_answer_and_my_questions_download_as_csv_and_xlsx_without_a_bsn(
    inprocess: InProcess,  # noqa: F811
    askers: dict[str, PortalAccount],
) -> None:
    from openpyxl import load_workbook

    several = inprocess.run.running.named["several"]
    inprocess.run.running.typed.add(several.digits)
    inprocess.log_in(askers["owner"])
    code = _ask(inprocess, several.digits, "ZVH-EXPORT-1")
    done = inprocess.client.get(f"/mijn-vragen/{code}/csv")
    assert done.status_code == 200 and done.headers["content-type"].startswith("text/csv")
    disposition = done.headers["content-disposition"]
    assert f'filename="antwoord-{code}.csv"' in disposition
    text = done.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0][:3] == ["Zaak", "Persoon in de vraag", "Gevraagd op"]
    assert any(r[0] == "ZVH-EXPORT-1" and r[6] == "Betrokken" for r in rows[1:])
    assert several.digits not in text and several.digits[-3:] not in disposition
    workbook = inprocess.client.get(f"/mijn-vragen/{code}/xlsx")
    assert f'filename="antwoord-{code}.xlsx"' in workbook.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(workbook.content), read_only=True).worksheets[0]
    cells = [[str(c or "") for c in row] for row in sheet.iter_rows(values_only=True)]
    assert cells[0] == rows[0] and several.digits not in str(cells)
    everything = inprocess.client.post(
        "/mijn-vragen/export",
        data={"csrf": inprocess.csrf("/mijn-vragen"), "zaak": "ZVH-EXPORT", "formaat": "csv"},
    )
    assert everything.status_code == 200
    assert re.search(
        r'filename="mijn-vragen-\d{4}-\d{2}-\d{2}\.csv"', everything.headers["content-disposition"]
    )
    lines = everything.content.decode("utf-8-sig").splitlines()
    assert len(lines) >= 2 and all("ZVH-EXPORT" in line for line in lines[1:])
    assert several.digits not in everything.text


def test_a_question_form_with_mistakes_shows_one_summary_linking_each_field_and_no_bsn(
    inprocess: InProcess,  # noqa: F811
    askers: dict[str, PortalAccount],
) -> None:
    inprocess.log_in(askers["owner"])
    typed = "123456789"  # fails the elfproef
    inprocess.run.running.typed.add(typed)
    before = len(trail_entries(inprocess.run.config))
    sent = inprocess.client.post(
        "/vraag",
        data={"csrf": inprocess.csrf("/vraag"), "bsn": typed, "doel": "zvh-triage", "zaak": " "},
        follow_redirects=False,
    )
    assert sent.status_code == 303 and sent.headers["location"] == "/vraag"
    page = inprocess.client.get("/vraag").text
    assert re.search(r"<title>Fout: Vraag over een persoon", page)
    summary = page[page.index('id="fout"') : page.index("</div>", page.index('id="fout"'))]
    assert re.findall(r'href="#(\w+)"', summary) == ["bsn", "zaak"]
    assert 'aria-describedby="bsn-hint bsn-fout" aria-invalid="true"' in page
    assert 'id="zaak-fout"' in page and "Vul het zaaknummer in." in page
    assert typed not in page
    assert len(trail_entries(inprocess.run.config)) == before  # nothing was asked


def test_a_letter_form_sent_after_the_session_ended_comes_back_filled_in_without_the_bsn(
    inprocess: InProcess,  # noqa: F811
    portal: PortalRun,
) -> None:
    fg = portal.add_user("f.formulier", "dpo")
    inprocess.log_in(fg)
    token = inprocess.csrf("/dpo/inzage")
    person = inprocess.run.running.named["several"].digits
    inprocess.run.running.typed.add(person)
    inprocess.clock.advance(inprocess.portal.sessions.idle_seconds + 60)
    sent = inprocess.client.post(
        "/dpo/inzage",
        data={
            "csrf": token,
            "bsn": person,
            "name": "de heer B. Bewaard",
            "address": "Kerkstraat 1\n2011 AA Haarlem",
            "reference": "INZ-BEWAARD-1",
        },
    )
    assert sent.url.path == "/inloggen"
    assert "wat u verstuurde is NIET uitgevoerd" in sent.text
    back = inprocess.log_in(fg, fresh=False)
    assert back.url.path == "/dpo/inzage"
    assert 'value="de heer B. Bewaard"' in back.text and "Kerkstraat 1" in back.text
    assert 'value="INZ-BEWAARD-1"' in back.text
    assert "<title>Fout: " in back.text and 'href="#bsn"' in back.text
    assert "de brief is NIET gemaakt" in back.text
    assert person not in back.text  # never the BSN
