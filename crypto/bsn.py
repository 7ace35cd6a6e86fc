"""The BSN (burgerservicenummer): parsing, the elfproef, masking. Pure functions."""

from __future__ import annotations

import random
from dataclasses import dataclass

from betrokken.errors import InvalidBsn

WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
_SEPARATORS = str.maketrans("", "", " .-\t")
_HINT = "check the number against the source system; a BSN has 9 digits and passes the elfproef"


def _checksum_ok(digits: str) -> bool:
    return sum(w * int(d) for w, d in zip(WEIGHTS, digits, strict=True)) % 11 == 0


def mask(value: str) -> str:
    """A masked form of any input: at most the last 3 characters, none for short inputs."""
    cleaned = value.strip().translate(_SEPARATORS)
    if len(cleaned) < 8:
        return f"({len(cleaned)} characters)"
    return "***.**.*" + cleaned[-3:]


@dataclass(frozen=True, slots=True)
class Bsn:
    digits: str

    def encode(self) -> bytes:
        return self.digits.encode("ascii")

    def masked(self) -> str:
        return mask(self.digits)

    def __repr__(self) -> str:
        return f"Bsn({self.masked()})"

    def __str__(self) -> str:
        return self.masked()


def parse_bsn(value: str) -> Bsn:
    cleaned = value.strip().translate(_SEPARATORS)
    shown = mask(value)
    if not cleaned:
        raise InvalidBsn("no BSN given", hint=_HINT)
    if not (cleaned.isascii() and cleaned.isdigit()):
        raise InvalidBsn(f"{shown} contains characters other than digits", hint=_HINT)
    if len(cleaned) == 8:
        cleaned = "0" + cleaned
    if len(cleaned) != 9:
        raise InvalidBsn(
            f"{shown} has {len(cleaned)} digits; a BSN has 9 (or 8 when a leading zero was "
            "dropped)",
            hint=_HINT,
        )
    if cleaned == "000000000":
        raise InvalidBsn("a number of all zeros is not a BSN", hint=_HINT)
    if not _checksum_ok(cleaned):
        raise InvalidBsn(f"{shown} fails the elfproef (11-check)", hint=_HINT)
    return Bsn(cleaned)


def is_valid_bsn(value: str) -> bool:
    try:
        parse_bsn(value)
    except InvalidBsn:
        return False
    return True


def generate_bsn(rng: random.Random) -> Bsn:
    """A uniformly random valid BSN, drawn with ``rng`` only."""
    while True:
        head = [rng.randrange(10) for _ in range(8)]
        total = sum(w * d for w, d in zip(WEIGHTS[:8], head, strict=True))
        last = total % 11  # 9th digit d9 with total - d9 ≡ 0 (mod 11)
        if last == 10:
            continue
        digits = "".join(map(str, head)) + str(last)
        if digits != "000000000":
            return Bsn(digits)
