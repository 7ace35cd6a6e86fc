"""Reading exports as case systems produce them: delimiters, encodings, XLSX, dates, mapping."""

from __future__ import annotations

import codecs
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook

from betrokken.errors import BadInput
from betrokken.tabular import (
    CellError,
    Problems,
    Table,
    cell_text,
    decode,
    open_table,
    parse_date,
    parse_mapping,
    read_table,
)

FIELDS = ("bsn", "since", "until", "reference")
HEADER_AND_ROW = ("BSN{d}Startdatum{d}Naam\n999993653{d}03-09-2024{d}Müller\n",)


def _values(table: Table) -> list[tuple[int, dict[str, object]]]:
    return [(row.line, dict(row.values)) for row in table.rows()]


# --- delimiters and encodings -------------------------------------------------------------
@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolon"), (",", "comma"), ("\t", "tab")])
@pytest.mark.parametrize(
    ("prefix", "encoding", "label"),
    [
        (b"", "utf-8", "UTF-8"),
        (codecs.BOM_UTF8, "utf-8", "UTF-8 with BOM"),
        (b"", "cp1252", "Windows-1252"),
        (b"", "utf-16", "UTF-16"),  # Python writes the BOM itself
    ],
)
def test_a_csv_export_is_read_whatever_its_delimiter_and_encoding(
    delimiter: str, name: str, prefix: bytes, encoding: str, label: str
) -> None:
    text = HEADER_AND_ROW[0].format(d=delimiter)
    table = read_table(
        prefix + text.encode(encoding), "export.csv", FIELDS, mapping={"since": "startdatum"}
    )
    assert table.description == f"CSV, {name}-separated, {label}"
    assert table.header == ("BSN", "Startdatum", "Naam")
    assert table.columns == {"bsn": "BSN", "since": "Startdatum"}
    assert table.ignored == ("Naam",)
    assert _values(table) == [(2, {"bsn": "999993653", "since": "03-09-2024"})]


def test_windows_1252_text_is_decoded_exactly_never_garbled() -> None:
    text = "bsn;reference\n999993653;Café-ëï€ Ĳ\n".replace("Ĳ", "ÿ")
    decoded, label = decode(text.encode("cp1252"), "x.csv")
    assert (decoded, label) == (text, "Windows-1252")


@given(
    st.text(
        alphabet=st.sampled_from(list("abcdefXYZ 0123456789.,-'éëïöüèàçôâÉËÏÖÜÈ")),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]),
)
def test_dutch_text_survives_every_supported_encoding(text: str, encoding: str) -> None:
    decoded, _ = decode(text.encode(encoding), "x.csv")
    assert decoded == text


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"bsn\n999993653\n\x81\x8d\n", "line 3 holds bytes that are neither UTF-8 nor Windows"),
        ("bsn\nMüller\n".encode() + b"M\xfcller\n", "line 3 has bytes that are not UTF-8"),
        (b"b\x00s\x00n\x00\n\x00", "line 1 holds NUL bytes"),
        (codecs.BOM_UTF16_LE + b"\x00\xd8", "says it is UTF-16 but is not"),
    ],
)
def test_bytes_that_are_no_supported_text_are_a_clear_error_naming_the_line(
    data: bytes, words: str
) -> None:
    with pytest.raises(BadInput) as info:
        read_table(data, "export.csv", FIELDS)
    assert words in info.value.message
    assert "UTF-8" in (info.value.hint or "")


def test_an_old_xls_file_is_refused_with_what_to_do() -> None:
    with pytest.raises(BadInput) as info:
        read_table(b"\xd0\xcf\x11\xe0" + b"\x00" * 100, "export.xls", FIELDS)
    assert ".xlsx" in (info.value.hint or "")


def test_a_broken_workbook_is_bad_input_not_a_traceback() -> None:
    with pytest.raises(BadInput) as info:
        read_table(b"PK\x03\x04 not really a zip", "export.xlsx", FIELDS)
    assert "not a readable Excel workbook" in info.value.message


# --- XLSX -------------------------------------------------------------------------------------
def test_an_xlsx_export_with_date_cells_numbers_and_blank_rows(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Casussen"
    sheet.append(["Dossier", "bsn ", "STARTDATUM", "Einddatum", "Opmerking"])
    sheet.append(["D-1", 999993653, dt.datetime(2024, 9, 3), None, "x"])
    sheet.append([None, None, None, None, None])
    sheet.append(["D-2", 99993653.0, "03-09-2024", dt.date(2027, 1, 31), None])
    sheet.append(["D-3", "123456782", "2024-09-03", "", None])
    book.create_sheet("Toelichting")
    path = tmp_path / "export.xlsx"
    book.save(path)

    table = open_table(
        path,
        FIELDS,
        required=["bsn"],
        mapping={"since": "Startdatum", "until": "einddatum", "reference": "Dossier"},
    )
    assert table.description == "Excel workbook, first sheet 'Casussen' of 2"
    assert table.ignored == ("Opmerking",)
    rows = list(table.rows())
    assert [row.line for row in rows] == [2, 4, 5]  # the blank row 3 is skipped
    assert [row.text("bsn") for row in rows] == ["999993653", "99993653", "123456782"]
    assert [row.date("since") for row in rows] == [dt.date(2024, 9, 3)] * 3
    assert [row.date("until") for row in rows] == [None, dt.date(2027, 1, 31), None]
    assert [row.given("reference") for row in rows] == ["D-1", "D-2", "D-3"]


# --- dates ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-09-03", dt.date(2024, 9, 3)),
        ("03-09-2024", dt.date(2024, 9, 3)),
        ("3-9-2024", dt.date(2024, 9, 3)),
        ("03/09/2024", dt.date(2024, 9, 3)),
        ("3/9/2024", dt.date(2024, 9, 3)),
        (" 2024-9-3 ", dt.date(2024, 9, 3)),
        ("03-09-2024 00:00", dt.date(2024, 9, 3)),
        ("2024-09-03T00:00:00", dt.date(2024, 9, 3)),
        (dt.datetime(2024, 9, 3, 12, 30), dt.date(2024, 9, 3)),
        (dt.date(2024, 9, 3), dt.date(2024, 9, 3)),
        ("", None),
        (None, None),
    ],
)
def test_dates_in_iso_and_dutch_forms_and_date_cells(
    value: str | dt.date | None, expected: dt.date | None
) -> None:
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("2024-13-01", "not a date that exists"),
        ("31-02-2024", "not a date that exists"),
        ("03-09-24", "not a date (use YYYY-MM-DD or dd-mm-jjjj"),
        ("3-9/2024", "not a date (use"),
        ("09.03.2024", "not a date (use"),
        (45538, "not a date (use"),
    ],
)
def test_anything_else_is_not_a_date_and_the_error_holds_no_value(value: object, kind: str) -> None:
    with pytest.raises(CellError) as info:
        parse_date(value)  # type: ignore[arg-type]
    assert kind in info.value.kind
    assert str(value) not in info.value.kind


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2199, 12, 31)))
def test_every_date_reads_back_in_every_form(day: dt.date) -> None:
    for text in (
        day.isoformat(),
        f"{day.day:02d}-{day.month:02d}-{day.year}",
        f"{day.day}-{day.month}-{day.year}",
        f"{day.day:02d}/{day.month:02d}/{day.year}",
    ):
        assert parse_date(text) == day


def test_cells_render_as_the_operator_typed_them() -> None:
    assert cell_text(99993653.0) == "99993653"
    assert cell_text(999993653) == "999993653"
    assert cell_text("  R-1 ") == "R-1"
    assert cell_text(None) == ""
    assert cell_text(dt.date(2024, 9, 3)) == "2024-09-03"


# --- columns ----------------------------------------------------------------------------------
def test_header_names_match_in_any_case_and_extra_columns_are_ignored() -> None:
    table = read_table(
        b"Naam,BSN,Adres,SINCE\nJansen,999993653,Dorpsstraat 1,2024-09-03\n",
        "x.csv",
        FIELDS,
        required=["bsn"],
    )
    assert table.columns == {"bsn": "BSN", "since": "SINCE"}
    assert table.ignored == ("Naam", "Adres")
    assert _values(table) == [(2, {"bsn": "999993653", "since": "2024-09-03"})]


def test_a_mapping_can_leave_a_field_unread() -> None:
    table = read_table(
        b"bsn;reference\n999993653;intern-1\n", "x.csv", FIELDS, mapping=parse_mapping("reference=")
    )
    assert table.columns == {"bsn": "bsn"}
    assert table.ignored == ("reference",)


def test_a_missing_required_column_names_the_columns_found() -> None:
    with pytest.raises(BadInput) as info:
        read_table(
            b"Burgerservicenummer;Start\n999993653;1-1-2026\n", "x.csv", FIELDS, required=["bsn"]
        )
    message = info.value.message
    assert "no column for bsn" in message
    assert "'Burgerservicenummer', 'Start'" in message
    assert "--columns bsn=" in (info.value.hint or "")
    assert "999993653" not in message


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        ({"bsn": "Burgerservicenummer"}, "column 'Burgerservicenummer' (mapped to bsn) is not"),
        ({"naam": "Naam"}, "unknown field(s) naam"),
        ({"bsn": "BSN", "reference": "BSN"}, "mapped to both bsn and reference"),
    ],
)
def test_a_wrong_mapping_is_a_clear_error(mapping: dict[str, str], words: str) -> None:
    with pytest.raises(BadInput) as info:
        read_table(b"BSN;Naam\n999993653;x\n", "x.csv", FIELDS, required=["bsn"], mapping=mapping)
    assert words in info.value.message


def test_a_duplicated_column_that_is_read_is_refused() -> None:
    with pytest.raises(BadInput) as info:
        read_table(b"bsn;BSN\n1;2\n", "x.csv", FIELDS)
    assert "appears 2 times" in info.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bsn=BSN,since=Startdatum", {"bsn": "BSN", "since": "Startdatum"}),
        (" BSN = Burger servicenummer , until=", {"bsn": "Burger servicenummer", "until": ""}),
        ("", {}),
    ],
)
def test_column_mappings_from_the_command_line(text: str, expected: dict[str, str]) -> None:
    assert parse_mapping(text) == expected


@pytest.mark.parametrize("text", ["bsn", "=BSN", "bsn=A,bsn=B"])
def test_malformed_column_mappings(text: str) -> None:
    with pytest.raises(BadInput):
        parse_mapping(text)


def test_a_row_with_more_cells_than_the_header_is_a_row_problem() -> None:
    # "Wijkteam Noord, 023-1234567" without quotes: the phone number would shift columns.
    table = read_table(
        b"bsn,contact,reference\n999993653,Wijkteam Noord, 023-1234567,R-1\n999993653,a,R-2,,\n",
        "x.csv",
        (*FIELDS, "contact"),
    )
    rows = list(table.rows())
    assert rows[0].problem is not None and "more cells than the header" in rows[0].problem
    assert rows[1].problem is None  # trailing empty cells, as Excel writes them, are fine


def test_line_numbers_are_physical_lines_even_with_quoted_newlines() -> None:
    table = read_table(b'bsn,reference\n1,"two\nlines"\n\n3,x\n', "x.csv", FIELDS)
    assert [row.line for row in table.rows()] == [3, 5]


def test_an_empty_file_and_a_missing_file() -> None:
    with pytest.raises(BadInput, match="empty"):
        read_table(b"\n\n", "x.csv", FIELDS)
    with pytest.raises(BadInput, match="file not found"):
        open_table(Path("/nonexistent/export.csv"), FIELDS)


# --- collapsing problems ------------------------------------------------------------------------
def test_repeated_problems_collapse_into_one_line_with_examples() -> None:
    problems = Problems()
    for line in range(2, 5023):
        problems.add(line, "since: not a date (use YYYY-MM-DD or dd-mm-jjjj)")
    problems.add(7000, "BSN fails the elfproef (11-check)", "the value ***.**.*789 fails")
    assert problems.count == 5022
    assert problems.lines() == [
        "5,021 lines: since: not a date (use YYYY-MM-DD or dd-mm-jjjj) — e.g. line 2, 3, 4",
        "line 7000: BSN fails the elfproef (11-check) (the value ***.**.*789 fails)",
    ]


def test_many_kinds_of_problem_still_fit_on_a_screen() -> None:
    problems = Problems()
    for kind in range(40):
        for line in range(kind * 100, kind * 100 + kind + 1):
            problems.add(line, f"problem {kind}")
    lines = problems.lines(max_groups=8)
    assert len(lines) == 9
    assert lines[0].startswith("40 lines: problem 39")
    assert lines[-1] == "... and 528 more line(s) with 32 other kind(s) of problem"
