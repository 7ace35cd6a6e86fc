"""BSN parsing: the elfproef, padding, masking; never echoing the number."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from betrokken.crypto.bsn import Bsn, generate_bsn, is_valid_bsn, mask, parse_bsn
from betrokken.errors import InvalidBsn


def _elfproef(digits: str) -> bool:
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return sum(w * int(d) for w, d in zip(weights, digits, strict=True)) % 11 == 0


@pytest.mark.parametrize(
    "value", ["999993653", "111222333", "123456782", "1234.56.782", " 999 99 3653 ", "999-99-3653"]
)
def test_known_valid_numbers(value: str) -> None:
    bsn = parse_bsn(value)
    assert _elfproef(bsn.digits)
    assert bsn.encode() == bsn.digits.encode()


def test_eight_digits_get_their_leading_zero_back() -> None:
    # 010000009? find an 8-digit value whose zero-padded form is valid
    rng = random.Random(1)
    while True:
        bsn = generate_bsn(rng)
        if bsn.digits.startswith("0"):
            break
    assert parse_bsn(bsn.digits[1:]) == bsn


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("123456789", "elfproef"),
        ("000000000", "all zeros"),
        ("00000000", "all zeros"),
        ("1234567", "7 digits"),
        ("1234567890", "10 digits"),
        ("12345678X", "other than digits"),
        ("", "no BSN"),
        ("٩٩٩٩٩٣٦٥٣", "other than digits"),  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_invalid_numbers_have_clear_reasons(value: str, words: str) -> None:
    with pytest.raises(InvalidBsn) as info:
        parse_bsn(value)
    assert words in info.value.message
    assert info.value.hint
    assert info.value.exit_code == 2
    if len(value) >= 4:
        assert value not in info.value.message and value not in info.value.diagnostics()


def test_masked_display() -> None:
    bsn = parse_bsn("999993653")
    assert bsn.masked() == "***.**.*653"
    assert repr(bsn) == "Bsn(***.**.*653)" and str(bsn) == "***.**.*653"
    assert f"{bsn}" == "***.**.*653"
    assert mask("12") == "(2 characters)"


seeds = st.integers(min_value=0, max_value=2**64)


@given(seeds)
def test_generated_numbers_are_valid(seed: int) -> None:
    bsn = generate_bsn(random.Random(seed))
    assert len(bsn.digits) == 9 and bsn.digits.isdigit() and _elfproef(bsn.digits)
    assert bsn.digits != "000000000"
    assert parse_bsn(bsn.digits) == bsn and is_valid_bsn(bsn.digits)


@given(seeds, st.integers(0, 8), st.integers(1, 9))
def test_every_single_digit_error_is_caught(seed: int, position: int, delta: int) -> None:
    digits = list(generate_bsn(random.Random(seed)).digits)
    digits[position] = str((int(digits[position]) + delta) % 10)
    assert not is_valid_bsn("".join(digits))


@given(st.text(max_size=20))
def test_mask_never_shows_more_than_three_characters(value: str) -> None:
    masked = mask(value)
    cleaned = value.strip().replace(" ", "").replace(".", "").replace("-", "").replace("\t", "")
    if len(cleaned) >= 8:
        assert masked == "***.**.*" + cleaned[-3:]
    else:
        assert masked == f"({len(cleaned)} characters)"


@given(st.text(alphabet="0123456789 .-", min_size=4, max_size=14))
def test_rejections_never_echo_the_input(value: str) -> None:
    try:
        bsn = parse_bsn(value)
    except InvalidBsn as exc:
        digits = "".join(c for c in value if c.isdigit())
        if len(digits) >= 4:
            assert digits not in exc.diagnostics()
    else:
        assert isinstance(bsn, Bsn)
