"""BSN parsing: the elfproef, padding, masking; never echoing the number."""

from __future__ import annotations

import dataclasses
import itertools
import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from betrokken.crypto.bsn import Bsn, generate_bsn, is_valid_bsn, mask, parse_bsn
from betrokken.errors import InvalidBsn

WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def elfproef(digits: str) -> bool:
    """The reference check, written independently of the module under test."""
    assert len(digits) == 9 and digits.isdigit()
    return sum(w * int(d) for w, d in zip(WEIGHTS, digits, strict=True)) % 11 == 0


def digit_runs(value: str, length: int = 4) -> set[str]:
    """Every run of ``length`` consecutive digits in ``value`` once separators are dropped."""
    digits = re.sub(r"[\s.\-]", "", value)
    return {
        digits[i : i + length]
        for i in range(len(digits) - length + 1)
        if digits[i : i + length].isdigit()
    }


KNOWN_VALID = ["999993653", "111222333", "123456782", "999990019", "999991772", "010000008"]


@pytest.mark.parametrize("digits", KNOWN_VALID)
def test_known_valid_numbers(digits: str) -> None:
    assert elfproef(digits)  # the fixture itself is right
    bsn = parse_bsn(digits)
    assert bsn.digits == digits
    assert bsn.encode() == digits.encode("ascii") and len(bsn.encode()) == 9
    assert is_valid_bsn(digits)


@pytest.mark.parametrize(
    ("value", "digits"),
    [
        ("1234.56.782", "123456782"),
        (" 999 99 3653 ", "999993653"),
        ("999-99-3653", "999993653"),
        ("\t111.222.333\n", "111222333"),
        ("999\u00a099\u00a03653", "999993653"),  # no-break spaces, as office software writes
        ("1-2.3 4-5.6 7-8.2", "123456782"),
    ],
)
def test_separators_and_surrounding_whitespace_are_ignored(value: str, digits: str) -> None:
    assert parse_bsn(value) == parse_bsn(digits)


@pytest.mark.parametrize("eight", ["10000008", "12345672", "1000.00.08", " 12345672 "])
def test_eight_digits_get_their_leading_zero_back(eight: str) -> None:
    bsn = parse_bsn(eight)
    assert bsn.digits.startswith("0") and elfproef(bsn.digits)
    assert bsn.digits[1:] == eight.replace(".", "").strip()


def test_eight_digits_that_fail_after_padding_fail_the_elfproef() -> None:
    assert not elfproef("012345678")
    with pytest.raises(InvalidBsn) as info:
        parse_bsn("12345678")
    assert "elfproef" in info.value.message


@pytest.mark.parametrize("value", ["000000000", "00000000", "000.00.0000", " 0000-0000 "])
def test_all_zeros_is_rejected_although_it_passes_the_sum(value: str) -> None:
    assert elfproef("000000000")
    with pytest.raises(InvalidBsn) as info:
        parse_bsn(value)
    assert "all zeros" in info.value.message and "not a BSN" in info.value.message
    assert not is_valid_bsn(value)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("123456789", "fails the elfproef (11-check)"),
        ("999993654", "fails the elfproef (11-check)"),
        ("1", "has 1 digits; a BSN has 9 (or 8 when a leading zero was dropped)"),
        ("1234567", "has 7 digits; a BSN has 9 (or 8 when a leading zero was dropped)"),
        ("1234567890", "has 10 digits"),
        ("99999365300", "has 11 digits"),
        ("12345678X", "contains characters other than digits"),
        ("BSN 999993653", "contains characters other than digits"),
        ("999993653;", "contains characters other than digits"),
        ("+31999993653", "contains characters other than digits"),
        ("٩٩٩٩٩٣٦٥٣", "contains characters other than digits"),  # Arabic-Indic digits
        ("９９９９９３６５３", "contains characters other than digits"),  # full-width digits
        ("", "no BSN given"),
        ("   ", "no BSN given"),
        (" . - ", "no BSN given"),
    ],
)
def test_invalid_numbers_have_clear_reasons(value: str, words: str) -> None:
    with pytest.raises(InvalidBsn) as info:
        parse_bsn(value)
    error = info.value
    assert words in error.message
    assert error.hint and "source system" in error.hint
    assert error.exit_code == 2
    for run in digit_runs(value):
        assert run not in error.diagnostics()
    assert not is_valid_bsn(value)


def test_messages_show_the_masked_input_only() -> None:
    with pytest.raises(InvalidBsn) as info:
        parse_bsn("123456789")
    assert info.value.message == "the value ***.**.*789 fails the elfproef (11-check)"
    with pytest.raises(InvalidBsn) as info:
        parse_bsn("1234567")
    assert "(7 characters)" in info.value.message and "1234" not in info.value.message


def test_a_non_text_value_is_rejected_clearly() -> None:
    with pytest.raises(InvalidBsn) as info:
        parse_bsn(999993653)  # type: ignore[arg-type]
    assert "text" in info.value.message and "999993653" not in info.value.diagnostics()
    assert not is_valid_bsn(None)  # type: ignore[arg-type]


def test_repr_and_str_are_masked() -> None:
    bsn = parse_bsn("999993653")
    assert bsn.masked() == "***.**.*653"
    assert repr(bsn) == "Bsn(***.**.*653)"
    assert str(bsn) == f"{bsn}" == "***.**.*653"
    assert "999993653" not in repr([bsn]) + repr({"person": bsn}) + "%r %s" % (bsn, bsn)  # noqa: UP031
    assert "99999" not in repr(bsn) + str(bsn)


def test_a_bsn_is_frozen_hashable_and_cannot_hold_an_invalid_number() -> None:
    bsn = parse_bsn("999993653")
    with pytest.raises(dataclasses.FrozenInstanceError):
        bsn.digits = "111222333"  # type: ignore[misc]
    assert {bsn, parse_bsn("999-99-3653")} == {bsn}
    for bad in ["123456789", "000000000", "99999365", "99999365X", "٩٩٩٩٩٣٦٥٣"]:
        with pytest.raises(InvalidBsn) as info:
            Bsn(bad)
        assert bad[:4] not in info.value.diagnostics()


def test_mask_examples() -> None:
    assert mask("999993653") == "***.**.*653"
    assert mask("9999.93.653") == "***.**.*653"
    assert mask("99993653") == "***.**.*653"  # 8 characters: the last 3 are shown
    assert mask("1234") == "(4 characters)"
    assert mask("1234567") == "(7 characters)"
    assert mask("12.34.567") == "(7 characters)"  # separators do not count
    assert mask("") == "(0 characters)"
    assert mask("12345678\x1b[0") == "***.**.*?[0"  # control characters are not echoed


def test_every_single_digit_error_changes_the_sum_modulo_11() -> None:
    """Why the elfproef catches every single-digit error: 11 is prime, and no weight nor any
    digit change (-9..9, not 0) is a multiple of 11, so their product never is either."""
    for weight in WEIGHTS:
        for change in range(-9, 10):
            if change:
                assert (weight * change) % 11 != 0


def test_every_adjacent_transposition_is_caught_too() -> None:
    """Adjacent weights differ by 1 (and by 3 for the last pair): never a multiple of 11."""
    for left, right in itertools.pairwise(WEIGHTS):
        for change in range(-9, 10):
            if change:
                assert ((left - right) * change) % 11 != 0


@pytest.mark.parametrize("digits", KNOWN_VALID)
def test_every_single_digit_change_of_a_known_number_is_invalid(digits: str) -> None:
    for position in range(9):
        for digit in "0123456789":
            if digit != digits[position]:
                changed = digits[:position] + digit + digits[position + 1 :]
                assert not elfproef(changed)
                assert not is_valid_bsn(changed)
        if position < 8 and digits[position] != digits[position + 1]:
            swapped = (
                digits[:position] + digits[position + 1] + digits[position] + digits[position + 2 :]
            )
            assert not is_valid_bsn(swapped)


seeds = st.integers(min_value=0, max_value=2**64)


@given(seeds)
def test_generated_numbers_are_valid_and_round_trip(seed: int) -> None:
    bsn = generate_bsn(random.Random(seed))
    assert len(bsn.digits) == 9 and bsn.digits.isascii() and bsn.digits.isdigit()
    assert elfproef(bsn.digits) and bsn.digits != "000000000"
    assert parse_bsn(bsn.digits) == bsn and is_valid_bsn(bsn.digits)
    formatted = f" {bsn.digits[:4]}.{bsn.digits[4:6]}-{bsn.digits[6:]} "
    assert parse_bsn(formatted) == bsn


@given(seeds, st.integers(0, 8), st.integers(1, 9))
def test_changing_any_single_digit_makes_a_generated_number_invalid(
    seed: int, position: int, delta: int
) -> None:
    digits = list(generate_bsn(random.Random(seed)).digits)
    digits[position] = str((int(digits[position]) + delta) % 10)
    assert not is_valid_bsn("".join(digits))


def test_generation_uses_only_the_given_rng_and_is_reproducible() -> None:
    state = random.getstate()
    first = [generate_bsn(random.Random(7)) for _ in range(3)]
    assert random.getstate() == state
    assert len(set(first)) == 1
    rng = random.Random(7)
    assert len({generate_bsn(rng) for _ in range(200)}) > 190


def test_generation_is_roughly_uniform() -> None:
    """Every digit position is close to uniform over 0-9 (a fixed seed, so deterministic)."""
    rng = random.Random(2024)
    samples = [generate_bsn(rng).digits for _ in range(20_000)]
    for position in range(9):
        counts = [0] * 10
        for digits in samples:
            counts[int(digits[position])] += 1
        assert all(1_700 < count < 2_300 for count in counts), (position, counts)
    assert any(digits.startswith("0") for digits in samples)


@given(st.text(max_size=24))
def test_mask_never_shows_more_than_the_last_three_characters(value: str) -> None:
    masked = mask(value)
    cleaned = re.sub(r"[ \t\u00a0\u202f.\-]", "", value.strip())
    if len(cleaned) < 8:
        assert masked == f"({len(cleaned)} characters)"
    else:
        assert masked.startswith("***.**.*") and len(masked) == len("***.**.*") + 3
        shown = masked[len("***.**.*") :]
        assert all(s in ("?", c) for s, c in zip(shown, cleaned[-3:], strict=True))


@given(
    st.one_of(
        st.text(alphabet="0123456789 .-", max_size=16),
        st.text(alphabet="0123456789X ", min_size=7, max_size=12),
        st.text(max_size=16),
    )
)
def test_rejections_never_echo_the_input(value: str) -> None:
    try:
        bsn = parse_bsn(value)
    except InvalidBsn as exc:
        text = exc.diagnostics()
        if mask(value) != "(0 characters)":
            assert mask(value) in exc.message
        for run in digit_runs(value):
            assert run not in text
    else:
        assert elfproef(bsn.digits)
