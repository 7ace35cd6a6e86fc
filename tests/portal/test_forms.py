"""The one forms layer (docs/adr/0038): a form parses into its value or per-field errors in the
reader's language, in the order of the page, never echoing a typed BSN; and every message the
file reader can give has its Dutch words."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest

from betrokken.crypto.bsn import parse_bsn
from betrokken.errors import BadInput
from betrokken.portal import i18n
from betrokken.portal.forms import AskForm, FormErrors, MineFilter, Period, parse
from betrokken.portal.reading import NOT_TABLES, REFUSALS, ROWS, refusal_text
from betrokken.tabular import NOT_TABLE_KINDS, READ_REFUSALS, ROW_PROBLEMS, ReadRefused, read_table

VALID = "111222333"  # passes the elfproef


@pytest.fixture(autouse=True)
def dutch() -> None:
    i18n.set_language("nl")


def test_a_complete_question_form_parses_into_its_typed_value() -> None:
    parsed = parse(AskForm, {"bsn": f" {VALID} ", "doel": "zvh-triage", "zaak": " Z  1 "})
    assert isinstance(parsed, AskForm)
    assert parsed.bsn == parse_bsn(VALID) and parsed.zaak == "Z 1" and parsed.namens == ""


def test_every_wrong_field_gets_its_own_dutch_message_in_the_order_of_the_page() -> None:
    typed = "123456789"  # fails the elfproef
    parsed = parse(AskForm, {"bsn": typed, "doel": "", "zaak": "x" * 65, "csrf": "t"})
    assert isinstance(parsed, FormErrors)
    assert [e.field for e in parsed] == ["bsn", "doel", "zaak"]
    assert parsed.get("bsn").startswith("Dit is geen geldig BSN")
    assert parsed.get("doel") == "Kies een doel uit de lijst."
    assert "64" in parsed.get("zaak")
    assert typed not in str(list(parsed))


def test_a_field_that_is_not_sent_at_all_is_named_not_crashed_on() -> None:
    parsed = parse(AskForm, {})
    assert isinstance(parsed, FormErrors) and {e.field for e in parsed} == {"bsn", "doel", "zaak"}


def test_dates_are_read_as_a_person_types_them_or_named_as_not_a_date() -> None:
    parsed = parse(MineFilter, {"van": "01-12-2026", "tot": "2026-12-07", "pagina": "x"})
    assert isinstance(parsed, MineFilter)
    assert (parsed.van, parsed.tot, parsed.pagina) == (
        dt.date(2026, 12, 1),
        dt.date(2026, 12, 7),
        1,
    )
    wrong = parse(Period, {"van": "31-02-2026", "tot": ""})
    assert isinstance(wrong, FormErrors) and [e.field for e in wrong] == ["van"]
    assert wrong.get("van").startswith("'Vanaf' is geen datum")


def test_every_refusal_of_the_file_reader_has_a_dutch_message_that_says_what_to_upload() -> None:
    assert set(REFUSALS) == set(READ_REFUSALS)
    assert set(NOT_TABLES) == set(NOT_TABLE_KINDS)
    assert set(ROWS) == set(ROW_PROBLEMS)
    dutch = i18n.catalogue("nl")
    for message in [*REFUSALS.values(), *NOT_TABLES.values(), *ROWS.values()]:
        assert (None, message) in dutch, message
    for kind, names in READ_REFUSALS.items():
        refused = ReadRefused(kind, "English", **{name: "docx" for name in names})
        text = refusal_text(refused)
        assert "%(" not in text and "English" not in text, kind


def test_a_word_document_is_refused_in_dutch_by_its_content_whatever_its_name() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(BadInput) as refused:
        read_table(buffer.getvalue(), "lijst.csv", ["bsn"], required=["bsn"])
    assert isinstance(refused.value, ReadRefused) and refused.value.kind == "not-a-table"
    assert "Word document" in refused.value.message  # the command line's English stays
    text = refusal_text(refused.value)
    assert text.startswith("Dit bestand is een Word-document (.docx), geen tabel.")
    assert "CSV-bestand (UTF-8) of als Excel-werkmap (.xlsx)" in text


def test_a_file_reader_problem_without_a_kind_is_still_said_in_dutch() -> None:
    text = refusal_text(BadInput("something English"))
    assert "English" not in text and text.startswith("Het bestand kan niet worden gelezen")
