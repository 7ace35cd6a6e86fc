"""Input reaches logs and terminals only escaped and cut, and CSV cells never run as formulas
(no log or formula injection)."""

from __future__ import annotations

import csv
import io
import logging

from hypothesis import given
from hypothesis import strategies as st

from betrokken.audit.cli import _delimiter, neutralise
from betrokken.errors import ECHO_LIMIT, escape_text, shown
from betrokken.service import MAX_MESSAGE_CHARS, EscapingFormatter


def _format(message: str, *args: object, exc: bool = False) -> str:
    formatter = EscapingFormatter("%(levelname)s %(name)s %(message)s")
    record = logging.LogRecord("betrokken.test", logging.WARNING, __file__, 1, message, args, None)
    if exc:
        try:
            raise ValueError("bad\n2026-01-01 WARNING forged")
        except ValueError:
            import sys

            record.exc_info = sys.exc_info()
    return formatter.format(record)


def test_a_newline_in_a_purpose_cannot_forge_a_log_line() -> None:
    line = _format("refused purpose=%s", "zvh\n2026-11-23T10:00:00+0000 WARNING betrokken forged")
    assert line.count("\n") == 0
    assert "zvh\\n2026-11-23" in line


def test_control_characters_and_terminal_escapes_are_shown_not_obeyed() -> None:
    line = _format("case=%s", "C\x00-\x1b[31mred\u202eevil\x7f")
    assert "\x00" not in line and "\x1b" not in line and "\u202e" not in line
    assert "\\x00" in line and "\\x1b[31m" in line and "\\u202e" in line


def test_a_traceback_is_marked_line_by_line() -> None:
    text = _format("failed", exc=True)
    first, *rest = text.split("\n")
    assert first == "WARNING betrokken.test failed"
    assert rest and all(line.startswith("  | ") for line in rest)


def test_a_huge_message_is_cut() -> None:
    line = _format("key id %s", "k" * 1_000_000)
    assert len(line) < MAX_MESSAGE_CHARS + 200 and "cut;" in line


@given(st.text())
def test_escaped_text_is_one_printable_line(value: str) -> None:
    escaped = escape_text(value)
    assert escaped.isprintable()
    assert "\n" not in escaped and "\r" not in escaped


@given(st.text(min_size=0, max_size=5000))
def test_an_echoed_value_is_never_echoed_whole_when_long(value: str) -> None:
    echoed = shown(value)
    assert echoed.isprintable()
    if len(value) > ECHO_LIMIT:
        assert len(echoed) < 6 * ECHO_LIMIT + 40 and f"{len(value):,} characters" in echoed


def test_bytes_that_were_not_utf8_are_shown_as_their_values() -> None:
    assert shown("u\udcff\udcfe") == "u\\xff\\xfe"


def test_csv_cells_that_would_be_formulas_are_neutralised() -> None:
    for dangerous in ('=HYPERLINK("http://x")', "+31 6", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise(dangerous) == "'" + dangerous
    assert neutralise("CASE-1") == "CASE-1" and neutralise(12) == 12


def test_csv_uses_a_semicolon_for_dutch_excel_unless_told_otherwise() -> None:
    assert _delimiter(";") == ";" and _delimiter("tab") == "\t" and _delimiter(",") == ","
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=_delimiter(";")).writerow(["a", neutralise("=1+1")])
    assert buffer.getvalue().strip() == "a;'=1+1"
