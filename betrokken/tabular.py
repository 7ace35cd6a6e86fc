"""Reading tables as partners' systems export them: CSV and XLSX, as they come.

Case systems are Excel-bound: exports use semicolons or commas, UTF-8 with or without a byte
order mark or Windows-1252, Dutch dates (``dd-mm-jjjj``), header names in any case, and columns
nobody asked for. This module reads all of that into rows of named fields, without knowing what
the fields mean: the node's import, the regisseur's list query and the portal's upload each say
which fields they want and which are required.

* :func:`open_table` / :func:`read_table` give a :class:`Table`: the header as found, which
  column feeds which field, the columns ignored, and the rows (:class:`Row`) with their line
  numbers as the operator sees them (the physical line in a CSV file, the row number in a sheet).
* :func:`parse_date` reads ISO and Dutch dates and XLSX date cells; :func:`cell_text` renders a
  cell (an XLSX number ``99993653.0`` becomes ``"99993653"``).
* :class:`Problems` collects per-line problems and collapses repeats into one line with examples,
  so a summary fits on one screen whatever the file holds.

Values are never echoed in an error: a cell may hold a BSN. Errors name lines and columns only.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from betrokken.errors import BadInput

Cell = str | int | float | bool | dt.datetime | dt.date | dt.time | None

DELIMITERS = (";", ",", "\t")
_DELIMITER_NAMES = {";": "semicolon", ",": "comma", "\t": "tab"}
_XLSX_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # old .xls, or an encrypted .xlsx
# A valid multi-byte UTF-8 sequence. Windows-1252 text almost never contains one by chance, so
# a file that has one *and* bytes that are not UTF-8 mixes encodings: refused, never guessed.
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_DUTCH_DATE = re.compile(r"(\d{1,2})([-/])(\d{1,2})\2(\d{4})(?: \d{1,2}:\d{2}(?::\d{2})?)?")
DATE_FORMS = "YYYY-MM-DD or dd-mm-jjjj"
_SAVE_HINT = "save the export again as CSV UTF-8 (or as an Excel workbook, .xlsx)"


@dataclass(frozen=True)
class Headers:
    """What a header may say besides a field's own name: ``aliases`` per field (the words case
    systems use, e.g. Startdatum for since), and the ``dates`` fields: when one of them is not
    read while a column whose header looks like a date is left unread, the file is refused
    (a forgotten end date would leave a closed case open)."""

    aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    dates: Sequence[str] = ()


_DATE_HEADER = re.compile(r"datum|date|\bdd?-?mm|jjjj|yyyy", re.IGNORECASE)


def looks_like_a_date(header: str) -> bool:
    return bool(_DATE_HEADER.search(header))


# Files that are not tables, by their first bytes (never by their name).
_NOT_TABLES = (
    (b"%PDF", "pdf"),
    (b"\x89PNG", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"{\\rtf", "rtf"),
)


def _zip_kind(data: bytes, source: str) -> None:
    """Refuse a ZIP file that is not an Excel workbook (a Word or PowerPoint file, an archive)."""
    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # the workbook reader names the problem
    if "xl/workbook.xml" in names:
        return
    if "word/document.xml" in names:
        what = "docx"
    elif "ppt/presentation.xml" in names:
        what = "pptx"
    elif "content.xml" in names:
        what = "opendocument"
    else:
        what = "zip"
    raise _not_a_table(source, what)


class ReadRefused(BadInput):
    """A file the reader cannot use. ``kind`` (one of :data:`READ_REFUSALS`) and ``values`` say
    what, so a page in another language can say it in its own words; the message stays the
    English one the command line prints."""

    def __init__(
        self, kind: str, message: str, *, hint: str | None = None, **values: str | int
    ) -> None:
        super().__init__(message, hint=hint)
        assert kind in READ_REFUSALS, kind
        self.kind = kind
        self.values = values


# What is wrong with one line (Row.problem): the same words for every such line, so they group.
ROW_TOO_LONG = "more cells than the header has columns: a delimiter inside a value without quotes?"
ROW_NOT_CSV = "cannot be read as CSV"
ROW_PROBLEMS = (ROW_TOO_LONG, ROW_NOT_CSV)

# Every way the reader refuses a file (ReadRefused.kind), with the values its message holds.
READ_REFUSALS = {
    "not-a-table": ("what",),  # what: a key of NOT_TABLE_KINDS
    "old-excel": (),
    "not-utf16": ("byte",),
    "mixed-encoding": ("line",),
    "unknown-encoding": ("line",),
    "nul-bytes": ("line",),
    "unknown-mapped-field": ("fields",),
    "mapped-column-missing": ("column", "field", "found"),
    "column-twice": ("column", "field", "count"),
    "column-mapped-twice": ("column", "other", "field"),
    "unreadable-workbook": (),
    "no-sheets": (),
    "empty-sheet": ("sheet",),
    "empty": (),
    "unreadable-header": (),
}
# What a file that is not a table is, by its first bytes or its ZIP contents.
NOT_TABLE_KINDS = {
    "pdf": "a PDF document",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "rtf": "an RTF document",
    "docx": "a Word document (.docx)",
    "pptx": "a PowerPoint presentation (.pptx)",
    "opendocument": "an OpenDocument file (.odt/.ods)",
    "zip": "a ZIP archive",
}
_TABLE_HINT = "export the cases from the case system as CSV UTF-8 or as an Excel workbook (.xlsx)"


def _not_a_table(source: str, what: str) -> ReadRefused:
    return ReadRefused(
        "not-a-table",
        f"{source}: this is {NOT_TABLE_KINDS[what]}, not a table",
        hint=_TABLE_HINT,
        what=what,
    )


class ColumnProblem(BadInput):
    """The file is readable but its columns do not say where a field is (a required field not
    found, or a date column left unread): a person can choose the columns and try again.
    ``missing``: the fields without a column; ``dated``: the unread column that looks like a
    date (empty when the problem is only a missing required field)."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        missing: Sequence[str] = (),
        dated: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.missing = tuple(missing)
        self.dated = dated


def preview(data: bytes, source: str, lines: int = 3) -> tuple[tuple[str, ...], list[list[str]]]:
    """The header and the first ``lines`` lines of a table, as text (for a mapping step)."""
    header = read_table(data, source, []).header
    names = list(dict.fromkeys(h.casefold() for h in header if h))
    table = read_table(data, source, names, mapping={n: n for n in names})
    shown: list[list[str]] = []
    for row in table.rows():
        if len(shown) >= lines:
            break
        shown.append([row.text(h.casefold()) if h else "" for h in header])
    return header, shown


class CellError(ValueError):
    """A cell that cannot be read as the field asks. ``kind`` names the problem, not the value."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


# --- reading cells ----------------------------------------------------------------------------
def cell_text(value: Cell) -> str:
    """The text of a cell, stripped; a whole number stays a whole number (no ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    return value.strip()


def parse_date(value: Cell) -> dt.date | None:
    """A date from an XLSX date cell or text in ISO (``2026-03-01``) or Dutch form
    (``01-03-2026``, ``1-3-2026``, ``01/03/2026``: day first). Empty is ``None``.

    Raises :class:`CellError` for anything else (a two-digit year, a number, an impossible date).
    """
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise CellError(f"not a date (use {DATE_FORMS}, or a date cell)")
    text = value.strip()
    if not text:
        return None
    try:
        if match := _ISO_DATE.fullmatch(text):
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        if match := _DUTCH_DATE.fullmatch(text):
            return dt.date(int(match[4]), int(match[3]), int(match[1]))
    except ValueError:
        raise CellError(f"not a date that exists (use {DATE_FORMS})") from None
    raise CellError(f"not a date (use {DATE_FORMS})")


# --- collapsing problems ---------------------------------------------------------------------
@dataclass
class _Group:
    kind: str
    detail: str
    count: int = 0
    lines: list[int] = field(default_factory=list)


class Problems:
    """Per-line problems, collapsed by kind: ``5,021 lines: ... — e.g. line 2, 3, 4``.

    Memory is bounded: a group keeps its count and its first few line numbers only.
    """

    def __init__(self, examples: int = 3) -> None:
        self.examples = examples
        self._groups: dict[str, _Group] = {}
        self.count = 0

    def add(self, line: int, kind: str, detail: str = "") -> None:
        group = self._groups.get(kind)
        if group is None:
            group = self._groups[kind] = _Group(kind, detail)
        group.count += 1
        self.count += 1
        if len(group.lines) < self.examples:
            group.lines.append(line)

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def kinds(self) -> dict[str, int]:
        return {g.kind: g.count for g in self._groups.values()}

    def groups(self, max_groups: int = 8) -> list[tuple[str, int, list[int]]]:
        """(kind, count, example line numbers), most frequent first: for callers that word
        the summary themselves (the portal, in the user's language)."""
        groups = sorted(self._groups.values(), key=lambda g: (-g.count, g.lines[0]))
        return [(g.kind, g.count, list(g.lines)) for g in groups[:max_groups]]

    def lines(self, max_groups: int = 8) -> list[str]:
        """At most ``max_groups + 1`` lines describing every problem, most frequent first."""
        groups = sorted(self._groups.values(), key=lambda g: (-g.count, g.lines[0]))
        out = []
        for group in groups[:max_groups]:
            if group.count == 1:
                detail = f" ({group.detail})" if group.detail else ""
                out.append(f"line {group.lines[0]}: {group.kind}{detail}")
            else:
                examples = ", ".join(str(n) for n in group.lines)
                out.append(f"{group.count:,} lines: {group.kind} — e.g. line {examples}")
        rest = groups[max_groups:]
        if rest:
            lines = sum(g.count for g in rest)
            out.append(f"... and {lines:,} more line(s) with {len(rest)} other kind(s) of problem")
        return out


# --- tables ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One row: its line number as the operator sees it and the cells of the fields asked for.

    ``problem`` is set (and ``values`` may be incomplete) when the row itself is malformed,
    e.g. more cells than the header has columns.
    """

    line: int
    values: Mapping[str, Cell]
    problem: str | None = None

    def text(self, name: str) -> str:
        return cell_text(self.values.get(name))

    def given(self, name: str) -> str | None:
        """The text of a field, or ``None`` when it is empty."""
        return self.text(name) or None

    def date(self, name: str) -> dt.date | None:
        """A date field (``None`` when empty); raises :class:`CellError` with the field named."""
        try:
            return parse_date(self.values.get(name))
        except CellError as exc:
            raise CellError(f"{name}: {exc.kind}") from None


@dataclass(frozen=True)
class Table:
    """A table opened for reading: what was found and how it maps onto the fields asked for."""

    source: str
    description: str  # e.g. "CSV, semicolon-separated, UTF-8 with BOM"
    header: tuple[str, ...]
    columns: Mapping[str, str]  # field -> the header name it is read from
    ignored: tuple[str, ...]  # header names not read
    size: int  # number of data rows (at most; blank rows are skipped)
    _rows: Callable[[], Iterator[Row]]

    def rows(self) -> Iterator[Row]:
        return self._rows()


def parse_mapping(text: str) -> dict[str, str]:
    """``"bsn=BSN,since=Startdatum,contact="`` -> a field -> column mapping (empty: not read)."""
    mapping: dict[str, str] = {}
    for part in (p for p in text.split(",") if p.strip()):
        name, sep, column = part.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise BadInput(
                f"column mapping '{part.strip()}' is not of the form field=Column",
                hint="e.g. --columns bsn=BSN,since=Startdatum (field=column header in the file; "
                "field= with nothing after it leaves that field unread)",
            )
        if name in mapping:
            raise BadInput(f"column mapping names the field '{name}' twice")
        mapping[name] = column.strip()
    return mapping


def open_table(
    path: Path,
    fields: Sequence[str],
    *,
    required: Iterable[str] = (),
    mapping: Mapping[str, str] | None = None,
    headers: Headers | None = None,
) -> Table:
    """Open a CSV or XLSX file (recognised by its content, not its name)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: file not found") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a folder, not a file") from None
    except PermissionError:
        raise BadInput(f"{path}: not readable (permission denied)") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot be read ({exc.strerror})") from None
    return read_table(data, str(path), fields, required=required, mapping=mapping, headers=headers)


def read_table(
    data: bytes,
    source: str,
    fields: Sequence[str],
    *,
    required: Iterable[str] = (),
    mapping: Mapping[str, str] | None = None,
    headers: Headers | None = None,
) -> Table:
    """Read a table from bytes (an upload, or a file's contents); ``source`` names it in errors."""
    fields = [f.lower() for f in fields]
    mapping = {k.lower(): v for k, v in (mapping or {}).items()}
    unknown = [name for name in mapping if name not in fields]
    if unknown:
        raise ReadRefused(
            "unknown-mapped-field",
            f"the column mapping names unknown field(s) {', '.join(unknown)}",
            hint="fields: " + ", ".join(fields),
            fields=", ".join(unknown),
        )
    headers = headers or Headers()
    for magic, what in _NOT_TABLES:
        if data.startswith(magic):
            raise _not_a_table(source, what)
    if data.startswith(_XLSX_MAGIC):
        _zip_kind(data, source)
        return _xlsx(data, source, fields, set(required), mapping, headers)
    if data.startswith(_OLE_MAGIC):
        raise ReadRefused(
            "old-excel",
            f"{source}: an old Excel file (.xls) or a password-protected workbook",
            hint="save it as an Excel workbook (.xlsx) without a password, or as CSV UTF-8",
        )
    return _csv(data, source, fields, set(required), mapping, headers)


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode(data: bytes, source: str) -> tuple[str, str]:
    """The text of a CSV file and the name of its encoding; never a garbled guess.

    UTF-8 with or without BOM, UTF-16 with BOM (Excel's "Unicode text"), or Windows-1252.
    Anything else is an error naming the first line that is neither.
    """
    if data.startswith(codecs.BOM_UTF8):
        encoding, label, body = "utf-8", "UTF-8 with BOM", data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ReadRefused(
                "not-utf16",
                f"{source}: the file says it is UTF-16 but is not (near byte {exc.start})",
                hint=_SAVE_HINT,
                byte=exc.start,
            ) from None
        return _no_nul(text, source), "UTF-16"
    else:
        encoding, label, body = "utf-8", "UTF-8", data
    try:
        return _no_nul(body.decode(encoding), source), label
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    offset = len(data) - len(body)
    if _UTF8_MULTIBYTE.search(body):
        raise ReadRefused(
            "mixed-encoding",
            f"{source}: line {_line_of(body, first_bad)} has bytes that are not UTF-8, while "
            "other lines are UTF-8: the file mixes encodings",
            hint=_SAVE_HINT,
            line=_line_of(body, first_bad),
        )
    try:
        text = body.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise ReadRefused(
            "unknown-encoding",
            f"{source}: line {_line_of(data, offset + exc.start)} holds bytes that are neither "
            "UTF-8 nor Windows-1252 text",
            hint=_SAVE_HINT,
            line=_line_of(data, offset + exc.start),
        ) from None
    return _no_nul(text, source), "Windows-1252"


def _no_nul(text: str, source: str) -> str:
    index = text.find("\x00")
    if index >= 0:
        raise ReadRefused(
            "nul-bytes",
            f"{source}: line {text.count(chr(10), 0, index) + 1} holds NUL bytes: "
            "not a text file (or a UTF-16 file without its byte order mark)",
            hint=_SAVE_HINT,
            line=text.count(chr(10), 0, index) + 1,
        )
    return text


def _sniff_delimiter(first_line: str) -> str:
    """The delimiter that splits the header into the most columns (ties: comma)."""
    best, best_count = ",", 1
    for delimiter in DELIMITERS:
        count = len(next(csv.reader([first_line], delimiter=delimiter), []))
        if count > best_count:
            best, best_count = delimiter, count
    return best


def _clean_header(value: Cell) -> str:
    return " ".join(cell_text(value).split())


def _resolve(
    header: Sequence[str],
    source: str,
    fields: Sequence[str],
    required: set[str],
    mapping: Mapping[str, str],
    headers: Headers | None = None,
) -> tuple[dict[str, int], tuple[str, ...]]:
    """Which header position feeds each field; the header names nobody reads."""
    positions: dict[str, list[int]] = {}
    for index, name in enumerate(header):
        if name:
            positions.setdefault(name.casefold(), []).append(index)
    found = ", ".join(f"'{h}'" for h in header if h) or "none"
    chosen: dict[str, int] = {}
    for name in fields:
        column = mapping.get(name, name)
        if not column:  # field= : deliberately not read
            continue
        hits = positions.get(" ".join(column.split()).casefold(), [])
        if not hits and name not in mapping and headers is not None:
            taken = set(chosen.values())
            for alias in headers.aliases.get(name, ()):
                hits = [i for i in positions.get(alias.casefold(), []) if i not in taken]
                if hits:
                    break
        if not hits:
            if name in mapping:
                raise ReadRefused(
                    "mapped-column-missing",
                    f"{source}: column '{column}' (mapped to {name}) is not in the file; "
                    f"columns found: {found}",
                    hint="correct the column mapping (--columns or [import] columns in node.toml)",
                    column=column,
                    field=name,
                    found=found,
                )
            continue
        if len(hits) > 1:
            raise ReadRefused(
                "column-twice",
                f"{source}: the column '{column}' (for {name}) appears {len(hits)} times "
                "in the header",
                hint="rename or remove the duplicates, or map the field to another column",
                column=column,
                field=name,
                count=len(hits),
            )
        if hits[0] in chosen.values():
            other = next(f for f, i in chosen.items() if i == hits[0])
            raise ReadRefused(
                "column-mapped-twice",
                f"{source}: column '{column}' is mapped to both {other} and {name}",
                column=column,
                other=other,
                field=name,
            )
        chosen[name] = hits[0]
    missing = [name for name in fields if name in required and name not in chosen]
    if missing:
        raise ColumnProblem(
            f"{source}: no column for {', '.join(missing)}; columns found: {found}",
            hint="the first row must be the header; name the column in the mapping, e.g. "
            f"--columns {missing[0]}=<column header>",
            missing=missing,
        )
    used = set(chosen.values())
    ignored = tuple(h for i, h in enumerate(header) if h and i not in used)
    unread_dates = [f for f in (headers.dates if headers else ()) if f not in chosen]
    dated = [h for h in ignored if looks_like_a_date(h)]
    if unread_dates and dated:
        raise ColumnProblem(
            f"{source}: the column '{dated[0]}' looks like a date but is not read, and no "
            f"column is read for {' or '.join(unread_dates)}",
            hint=f"map it (e.g. --columns {unread_dates[0]}={dated[0]}, or [import] columns in "
            "node.toml), or leave the column out of the export",
            missing=unread_dates,
            dated=dated[0],
        )
    return chosen, ignored


def _row(line: int, cells: Sequence[Cell], width: int, chosen: Mapping[str, int]) -> Row | None:
    """A row, ``None`` when it is blank."""
    if all(cell_text(c) == "" for c in cells):
        return None
    extra = [c for c in cells[width:] if cell_text(c)]
    values = {name: cells[i] if i < len(cells) else None for name, i in chosen.items()}
    if extra:
        return Row(
            line,
            values,
            problem=ROW_TOO_LONG,
        )
    return Row(line, values)


def _csv(
    data: bytes,
    source: str,
    fields: Sequence[str],
    required: set[str],
    mapping: Mapping[str, str],
    headers: Headers,
) -> Table:
    text, encoding = decode(data, source)
    if not text.strip():
        raise ReadRefused(
            "empty", f"{source}: the file is empty", hint="the first line must be a header"
        )
    first_line = text.lstrip("\r\n").splitlines()[0]
    delimiter = _sniff_delimiter(first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    header: list[str] = []
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                header = [_clean_header(c) for c in cells]
                break
    except csv.Error as exc:
        raise ReadRefused(
            "unreadable-header", f"{source}: the header line cannot be read ({exc})"
        ) from None
    header_line = reader.line_num
    chosen, ignored = _resolve(header, source, fields, required, mapping, headers)
    size = max(0, text.count("\n") + (0 if text.endswith("\n") else 1) - header_line)

    def rows() -> Iterator[Row]:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
        for _ in range(header_line):
            next(reader)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error:
                yield Row(reader.line_num, {}, problem=ROW_NOT_CSV)
                continue
            row = _row(reader.line_num, cells, len(header), chosen)
            if row is not None:
                yield row

    description = f"CSV, {_DELIMITER_NAMES[delimiter]}-separated, {encoding}"
    return Table(source, description, tuple(header), _names(chosen, header), ignored, size, rows)


def _names(chosen: Mapping[str, int], header: Sequence[str]) -> dict[str, str]:
    return {name: header[index] for name, index in chosen.items()}


def _xlsx_cells(cells: Iterable[object]) -> list[Cell]:
    """openpyxl's cell values as :data:`Cell` (rich text, decimals and the like as text)."""
    out: list[Cell] = []
    for value in cells:
        if value is None or isinstance(
            value, str | int | float | bool | dt.datetime | dt.date | dt.time
        ):
            out.append(value)
        else:
            out.append(str(value))
    return out


def _xlsx(
    data: bytes,
    source: str,
    fields: Sequence[str],
    required: set[str],
    mapping: Mapping[str, str],
    headers: Headers,
) -> Table:
    from openpyxl import Workbook, load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    def workbook() -> Workbook:
        try:
            return load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise ReadRefused(
                "unreadable-workbook",
                f"{source}: not a readable Excel workbook ({type(exc).__name__})",
                hint="open it in Excel and save it again as .xlsx, or export CSV UTF-8",
            ) from None

    book = workbook()
    try:
        if not book.worksheets:
            raise ReadRefused("no-sheets", f"{source}: the workbook has no sheets")
        sheet = book.worksheets[0]
        title, sheets = sheet.title, len(book.worksheets)
        header: list[str] = []
        header_line = 0
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = _xlsx_cells(values)
            if any(cell_text(c) for c in cells):
                header = [_clean_header(c) for c in cells]
                header_line = number
                break
        if not header:
            raise ReadRefused(
                "empty-sheet", f"{source}: the first sheet ('{title}') is empty", sheet=title
            )
        size = max(0, (sheet.max_row or header_line) - header_line)
    finally:
        book.close()
    while header and not header[-1]:
        header.pop()
    chosen, ignored = _resolve(header, source, fields, required, mapping, headers)

    def rows() -> Iterator[Row]:
        book = workbook()
        try:
            sheet = book.worksheets[0]
            for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
                if number <= header_line:
                    continue
                row = _row(number, _xlsx_cells(cells), len(header), chosen)
                if row is not None:
                    yield row
        finally:
            book.close()

    where = f"first sheet '{title}' of {sheets}" if sheets > 1 else f"sheet '{title}'"
    description = f"Excel workbook, {where}"
    return Table(source, description, tuple(header), _names(chosen, header), ignored, size, rows)
