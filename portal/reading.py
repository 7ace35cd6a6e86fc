"""What the file reader (:mod:`betrokken.tabular`) and the node's import say, in the words of the
reader's language: the reader keys every refusal (``ReadRefused.kind`` and its values) and every
line's problem, and this module gives each its message in the catalogue (ADR 0020). A page never
shows the reader's English text; a kind without a message here fails the catalogue's test.
"""

from __future__ import annotations

from collections.abc import Mapping

from betrokken.errors import BadInput
from betrokken.portal.i18n import _
from betrokken.tabular import ROW_NOT_CSV, ROW_TOO_LONG, ReadRefused


def N_(message: str) -> str:
    return message


# ReadRefused.kind -> the message (with %(name)s for its values), what to do included.
REFUSALS = {
    "not-a-table": N_(
        "This file is %(what)s, not a table. Upload the export of the case system as a CSV file "
        "(UTF-8) or as an Excel workbook (.xlsx)."
    ),
    "old-excel": N_(
        "This is an old Excel file (.xls) or a workbook with a password. Open it in Excel, save "
        "it as an Excel workbook (.xlsx) without a password, and upload that."
    ),
    "not-utf16": N_(
        "The file says it is UTF-16 text but is not (near byte %(byte)s). Save the export again "
        "as CSV UTF-8 (or as an Excel workbook, .xlsx) and upload that."
    ),
    "mixed-encoding": N_(
        "Line %(line)s holds characters in another encoding than the other lines: the file mixes "
        "encodings. Save the export again as CSV UTF-8 (or as an Excel workbook, .xlsx)."
    ),
    "unknown-encoding": N_(
        "Line %(line)s holds characters that are neither UTF-8 nor Windows text. Save the export "
        "again as CSV UTF-8 (or as an Excel workbook, .xlsx)."
    ),
    "nul-bytes": N_(
        "Line %(line)s holds empty (NUL) characters: this is not a text file. Save the export "
        "again as CSV UTF-8 (or as an Excel workbook, .xlsx)."
    ),
    "unknown-mapped-field": N_(
        "The node's settings read columns for fields that do not exist (%(fields)s). Ask the "
        "technical administrator to correct the column settings of the import."
    ),
    "mapped-column-missing": N_(
        "The column “%(column)s” that the node's settings read as %(field)s is not in the file "
        "(columns found: %(found)s). Upload an export with that column, or ask the technical "
        "administrator to correct the column settings."
    ),
    "column-twice": N_(
        "The column “%(column)s” (for %(field)s) appears %(count)s times in the first line. "
        "Rename or remove the duplicates in the export and upload it again."
    ),
    "column-mapped-twice": N_(
        "The column “%(column)s” is read both as %(other)s and as %(field)s. Choose one column "
        "per field."
    ),
    "unreadable-workbook": N_(
        "This Excel workbook cannot be read. Open it in Excel and save it again as .xlsx, or "
        "export CSV UTF-8, and upload that."
    ),
    "no-sheets": N_("The workbook has no sheets. Upload the export with the cases in it."),
    "empty-sheet": N_(
        "The first sheet (“%(sheet)s”) of the workbook is empty. Put the cases on the first "
        "sheet, or export CSV UTF-8, and upload that."
    ),
    "empty": N_("The file is empty. The first line must name the columns, e.g. BSN."),
    "unreadable-header": N_(
        "The first line (the column names) cannot be read. Save the export again as CSV UTF-8 "
        "(or as an Excel workbook, .xlsx)."
    ),
}
NOT_TABLES = {
    "pdf": N_("a PDF document"),
    "png": N_("a PNG image"),
    "jpeg": N_("a JPEG image"),
    "rtf": N_("an RTF document"),
    "docx": N_("a Word document (.docx)"),
    "pptx": N_("a PowerPoint presentation (.pptx)"),
    "opendocument": N_("an OpenDocument file (.odt/.ods)"),
    "zip": N_("a ZIP archive"),
}
ROWS = {
    ROW_TOO_LONG: N_(
        "more cells than the first line has columns: a separator inside a value without quotes?"
    ),
    ROW_NOT_CSV: N_("cannot be read as CSV"),
}


def refusal_text(exc: BadInput, field_names: Mapping[str, str] | None = None) -> str:
    """Why the file cannot be read and what to upload instead, in the reader's language."""
    if not isinstance(exc, ReadRefused):
        return _(
            "The file cannot be read. Save the export again as CSV UTF-8 (or as an Excel "
            "workbook, .xlsx) and upload that."
        )
    values: dict[str, object] = dict(exc.values)
    for name in ("field", "other"):
        if name in values and field_names and str(values[name]) in field_names:
            values[name] = _(field_names[str(values[name])])
    if exc.kind == "not-a-table":
        values["what"] = _(NOT_TABLES[str(values["what"])])
    return _(REFUSALS[exc.kind]) % values


def row_text(kind: str) -> str:
    """A line's problem from the reader, in the reader's language (else the kind as it is)."""
    return _(ROWS[kind]) if kind in ROWS else _(kind)
