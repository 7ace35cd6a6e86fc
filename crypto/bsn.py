"""The BSN (burgerservicenummer): parsing, the elfproef, masking. Pure functions.

A BSN never appears in a message, a ``repr`` or a ``str``: only its masked form does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from betrokken.errors import InvalidBsn

WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
_LENGTH = 9
_ZEROS = "0" * _LENGTH
_MIN_SHOWN = 8  # inputs shorter than this show no characters at all when masked
_SHOWN = 3  # at most this many trailing characters are shown
# Characters people and spreadsheets put inside a number: spaces (also tab and no-break spaces),
# dots and hyphens. They are dropped before checking.
_SEPARATORS = str.maketrans("", "", " \t\u00a0\u202f.-")
_HINT = (
    "check the number against the source system (a typing or copying error is the usual "
    "cause); a BSN has 9 digits and passes the elfproef"
)


def _clean(value: str) -> str:
    return value.strip().translate(_SEPARATORS)


def _elfproef(digits: str) -> bool:
    """The 11-check on 9 ASCII digits (all zeros passes it; callers reject that separately)."""
    return sum(w * (ord(d) - 48) for w, d in zip(WEIGHTS, digits, strict=True)) % 11 == 0


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def mask(value: str) -> str:
    """A display form of any input, valid or not: at most its last 3 characters.

    Separators are dropped first; an input of fewer than 8 remaining characters shows none,
    only its length, e.g. ``"(4 characters)"``.
    """
    if not isinstance(value, str):
        return f"(a value of type {type(value).__name__})"
    cleaned = _clean(value)
    if len(cleaned) < _MIN_SHOWN:
        return f"({len(cleaned)} characters)"
    tail = "".join(c if c.isprintable() else "?" for c in cleaned[-_SHOWN:])
    return "***.**.*" + tail


@dataclass(frozen=True, slots=True)
class Bsn:
    """A valid BSN. Its ``repr`` and ``str`` are masked, so it never leaks into logs."""

    digits: str

    def __post_init__(self) -> None:
        digits = self.digits
        if not (
            isinstance(digits, str)
            and len(digits) == _LENGTH
            and _is_digits(digits)
            and digits != _ZEROS
            and _elfproef(digits)
        ):
            raise InvalidBsn(
                f"a Bsn must hold 9 digits that pass the elfproef, not {mask(digits)}",
                hint="create a Bsn with parse_bsn()",
            )

    def encode(self) -> bytes:
        """The 9 ASCII digits: the OPRF input."""
        return self.digits.encode("ascii")

    def masked(self) -> str:
        """The display form, e.g. ``***.**.*653``: only the last 3 digits."""
        return mask(self.digits)

    def __repr__(self) -> str:
        return f"Bsn({self.masked()})"

    def __str__(self) -> str:
        return self.masked()


def parse_bsn(value: str) -> Bsn:
    """Parse user input into a :class:`Bsn`, or raise :class:`InvalidBsn` saying why.

    Surrounding whitespace and internal spaces, dots and hyphens are ignored; an 8-digit value
    gets back the leading zero a spreadsheet dropped. Messages carry only the masked input.
    """
    if not isinstance(value, str):
        raise InvalidBsn(
            f"a BSN must be given as text, not as a {type(value).__name__}", hint=_HINT
        )
    cleaned = _clean(value)
    shown = mask(value)
    if not cleaned:
        raise InvalidBsn("no BSN given: the value is empty", hint=_HINT)
    if not _is_digits(cleaned):
        raise InvalidBsn(f"the value {shown} contains characters other than digits", hint=_HINT)
    if len(cleaned) == _LENGTH - 1:
        cleaned = "0" + cleaned
    if len(cleaned) != _LENGTH:
        raise InvalidBsn(
            f"the value {shown} has {len(cleaned)} digits; a BSN has 9 "
            "(or 8 when a leading zero was dropped)",
            hint=_HINT,
        )
    if cleaned == _ZEROS:
        raise InvalidBsn(
            f"the value {shown} is all zeros, which is not a BSN",
            hint="an all-zero number is a placeholder, not a person's number; "
            "look up the real BSN in the source system",
        )
    if not _elfproef(cleaned):
        raise InvalidBsn(f"the value {shown} fails the elfproef (11-check)", hint=_HINT)
    return Bsn(cleaned)


def is_valid_bsn(value: str) -> bool:
    """Whether ``value`` parses as a BSN (see :func:`parse_bsn`)."""
    try:
        parse_bsn(value)
    except InvalidBsn:
        return False
    return True


def generate_bsn(rng: random.Random) -> Bsn:
    """A uniformly random valid BSN, drawn with ``rng`` only (for demos and tests).

    Each valid BSN has exactly one 8-digit prefix (the ninth digit follows from the elfproef),
    so drawing prefixes uniformly and rejecting the impossible ones is uniform.
    """
    while True:
        head = [rng.randrange(10) for _ in range(_LENGTH - 1)]
        last = sum(w * d for w, d in zip(WEIGHTS[:-1], head, strict=True)) % 11
        if last == 10:  # no ninth digit makes this prefix pass
            continue
        digits = "".join(map(str, head)) + str(last)
        if digits != _ZEROS:
            return Bsn(digits)
