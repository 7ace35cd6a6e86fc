"""An export with Dutch headers is read without a mapping; a date column nobody reads is refused
rather than dropped; a file that is not a table is named by its content, never by its name."""

from __future__ import annotations

import io
import zipfile

import pytest
from openpyxl import Workbook

from betrokken.errors import BadInput
from betrokken.node.importer import FIELDS, HEADERS, REQUIRED
from betrokken.tabular import read_table


def _read(text: str, name: str = "export.csv", **kwargs: object) -> object:
    return read_table(
        text.encode(),
        name,
        FIELDS,
        required=REQUIRED,
        headers=HEADERS,
        **kwargs,  # type: ignore[arg-type]
    )


def test_dutch_headers_feed_start_end_and_reference_without_a_mapping() -> None:
    table = _read("BSN;Startdatum;Einddatum;Dossiernummer\n111222333;01-09-2026;31-12-2026;D-7\n")
    assert table.columns == {  # type: ignore[attr-defined]
        "bsn": "BSN",
        "since": "Startdatum",
        "until": "Einddatum",
        "reference": "Dossiernummer",
    }
    [row] = list(table.rows())  # type: ignore[attr-defined]
    assert str(row.date("until")) == "2026-12-31" and row.text("reference") == "D-7"


@pytest.mark.parametrize(
    ("header", "field"),
    [("Begindatum", "since"), ("Zaaknummer", "reference"), ("ZAAKNR.", "reference")],
)
def test_each_common_dutch_header_is_recognised(header: str, field: str) -> None:
    table = _read(f"BSN;{header}\n111222333;01-09-2026\n")
    assert table.columns[field] == header  # type: ignore[attr-defined]


def test_an_explicit_mapping_wins_over_a_recognised_header() -> None:
    table = _read(
        "BSN;Startdatum;Aanmelddatum;Einddatum\n111222333;01-09-2026;02-09-2026;\n",
        mapping={"since": "Aanmelddatum"},
    )
    assert table.columns["since"] == "Aanmelddatum"  # type: ignore[attr-defined]
    assert "Startdatum" in table.ignored  # type: ignore[attr-defined]


def test_a_date_column_left_unread_while_the_end_is_not_read_is_refused() -> None:
    """The harm it stops: an export whose end date is under an unknown name imported as if the
    case had no end, so a closed case stays open."""
    with pytest.raises(BadInput, match="'Datum afgesloten' looks like a date but is not read"):
        _read("BSN;Startdatum;Datum afgesloten\n111222333;01-09-2026;01-10-2026\n")
    # Read both dates, and another date column may stay unread.
    table = _read("BSN;Startdatum;Einddatum;Geboortedatum\n111222333;01-09-2026;;01-01-1990\n")
    assert table.ignored == ("Geboortedatum",)  # type: ignore[attr-defined]


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (_zip(["[Content_Types].xml", "word/document.xml"]), "a Word document (.docx)"),
        (_zip(["readme.txt"]), "a ZIP archive"),
        (b"%PDF-1.7\n...", "a PDF document"),
        (b"\x89PNG\r\n\x1a\n....", "a PNG image"),
    ],
)
def test_a_file_that_is_not_a_table_is_named_by_its_content_whatever_its_name(
    data: bytes, what: str
) -> None:
    with pytest.raises(BadInput, match=f"this is {what.replace('(', '.').replace(')', '.')}"):
        read_table(data, "export.csv", FIELDS, required=REQUIRED, headers=HEADERS)


def test_a_real_workbook_is_still_read() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["BSN", "Begindatum"])
    sheet.append(["111222333", "01-09-2026"])
    buffer = io.BytesIO()
    book.save(buffer)
    table = read_table(buffer.getvalue(), "export.csv", FIELDS, required=REQUIRED, headers=HEADERS)
    assert table.columns["since"] == "Begindatum"
