"""What a peer controls in the OPRF: elements, proofs, sizes, batches. Clear errors, never a crash.

A client controls the blinded elements the key service evaluates; the key service (or whoever sits
in between) controls the evaluated elements and the proof the client finalizes. Every bad value
must raise MalformedMessage or VerificationError with a message naming the problem, never a bare
libsodium, ValueError or TypeError exception, and never a silently wrong pseudonym.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from betrokken.crypto import oprf
from betrokken.errors import BetrokkenError, MalformedMessage, VerificationError

ORDER = 2**252 + 27742317777372353535851937790883648493  # of the ristretto255 group
FIELD = 2**255 - 19

KEY = oprf.derive_key_pair(b"\x03" * 32, b"adversarial")
OTHER = oprf.derive_key_pair(b"\x04" * 32, b"adversarial")
INPUTS = [b"999993653", b"111222333"]
BLINDS = [(7).to_bytes(32, "little"), (11).to_bytes(32, "little")]
PROOF_R = (1234567).to_bytes(32, "little")

Batch = tuple[list[bytes], list[bytes], list[bytes], list[bytes], bytes]


def _batch(key: oprf.KeyPair = KEY) -> Batch:
    """A deterministic honest batch of 2: inputs, blinds, blinded, evaluated, proof."""
    blinded = [oprf.blind(i, blind_scalar=b)[1] for i, b in zip(INPUTS, BLINDS, strict=True)]
    evaluated, proof = oprf.blind_evaluate(key.secret, blinded, proof_scalar=PROOF_R)
    return list(INPUTS), list(BLINDS), blinded, evaluated, proof


def _finalize(batch: Batch, public: bytes = KEY.public) -> list[bytes]:
    inputs, blinds, blinded, evaluated, proof = batch
    return oprf.finalize(inputs, blinds, blinded, evaluated, public=public, proof=proof)


def _le(value: int) -> bytes:
    return value.to_bytes(32, "little")


GOOD = _batch()
G = bytes.fromhex(  # the generator
    "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76"
)

BAD_ELEMENTS = [
    pytest.param(b"", "wrong size: 0 bytes", id="empty"),
    pytest.param(b"\x01" * 31, "wrong size: 31 bytes", id="31-bytes"),
    pytest.param(b"\x01" * 33, "wrong size: 33 bytes", id="33-bytes"),
    pytest.param(GOOD[2][0] + b"\x00", "wrong size: 33 bytes", id="valid-plus-a-byte"),
    pytest.param(bytes(32), "identity element", id="identity"),
    pytest.param(b"\xff" * 32, "not a valid ristretto255 encoding", id="all-ff"),
    pytest.param(_le(FIELD), "not a valid ristretto255 encoding", id="field-prime"),
    pytest.param(_le(FIELD + 4), "not a valid ristretto255 encoding", id="above-field-prime"),
    pytest.param(_le(1), "not a valid ristretto255 encoding", id="negative-field-element"),
    pytest.param(_le(2), "not a valid ristretto255 encoding", id="not-a-group-element"),
    pytest.param(
        _le(int.from_bytes(G, "little") | 1 << 255),
        "not a valid ristretto255 encoding",
        id="generator-with-top-bit",  # libsodium 1.0.18 alone would accept this
    ),
]


def test_the_fixtures_are_what_they_claim() -> None:
    assert oprf.validate_element(G) == G
    assert oprf.derive_key_pair(b"\x03" * 32, b"adversarial") == KEY
    assert _finalize(GOOD) == [oprf.evaluate(KEY.secret, i) for i in INPUTS]


@pytest.mark.parametrize(("element", "words"), BAD_ELEMENTS)
def test_validate_element_names_what_and_why(element: bytes, words: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        oprf.validate_element(element, "the thing")
    assert info.value.message.startswith("the thing ") and words in info.value.message


def test_validate_element_rejects_a_value_that_is_not_bytes() -> None:
    with pytest.raises(MalformedMessage, match="not a byte string"):
        oprf.validate_element("e2f2ae0a" * 8)  # type: ignore[arg-type]
    assert oprf.validate_element(bytearray(G)) == G


# --- the key service's side: blinded elements from a client -----------------------------------


@pytest.mark.parametrize(("element", "words"), BAD_ELEMENTS)
@pytest.mark.parametrize("mode", [oprf.MODE_OPRF, oprf.MODE_VOPRF], ids=["oprf", "voprf"])
def test_key_service_rejects_bad_blinded_elements(element: bytes, words: str, mode: int) -> None:
    with pytest.raises(MalformedMessage) as info:
        oprf.blind_evaluate(KEY.secret, [GOOD[2][0], element], mode)
    assert info.value.message.startswith("blinded element 1 ") and words in info.value.message


def test_key_service_rejects_an_empty_batch() -> None:
    with pytest.raises(MalformedMessage, match="no blinded elements"):
        oprf.blind_evaluate(KEY.secret, [])


def test_key_service_rejects_a_batch_too_large_to_prove() -> None:
    with pytest.raises(MalformedMessage, match="at most 65536"):
        oprf.blind_evaluate(KEY.secret, [GOOD[2][0]] * 65537)


# --- the client's side: evaluated elements and proof from the key service ---------------------


@pytest.mark.parametrize(("element", "words"), BAD_ELEMENTS)
@pytest.mark.parametrize("index", [0, 1])
def test_client_rejects_bad_evaluated_elements(element: bytes, words: str, index: int) -> None:
    inputs, blinds, blinded, evaluated, proof = GOOD
    evaluated = list(evaluated)
    evaluated[index] = element
    with pytest.raises(MalformedMessage) as info:
        _finalize((inputs, blinds, blinded, evaluated, proof))
    assert info.value.message.startswith(f"evaluated element {index} ")
    assert words in info.value.message


@pytest.mark.parametrize(("element", "words"), BAD_ELEMENTS)
def test_client_rejects_bad_evaluated_elements_in_oprf_mode(element: bytes, words: str) -> None:
    blind, blinded = oprf.blind(b"999993653", oprf.MODE_OPRF)
    with pytest.raises(MalformedMessage) as info:
        oprf.finalize([b"999993653"], [blind], [blinded], [element], mode=oprf.MODE_OPRF)
    assert "evaluated element 0" in info.value.message and words in info.value.message


def test_client_rejects_a_proof_by_another_key() -> None:
    with pytest.raises(VerificationError) as info:
        _finalize(_batch(OTHER))
    assert "proof does not verify against the pinned public key" in info.value.message
    assert info.value.hint and info.value.exit_code == 8


def test_client_rejects_an_honest_answer_against_another_pinned_key() -> None:
    with pytest.raises(VerificationError, match="pinned public key"):
        _finalize(GOOD, public=OTHER.public)


def test_client_rejects_evaluations_by_another_key_with_the_honest_proof() -> None:
    inputs, blinds, blinded, evaluated, proof = GOOD
    forged = _batch(OTHER)[3]
    for mixed in ([forged[0], evaluated[1]], [evaluated[0], forged[1]], forged):
        with pytest.raises(VerificationError):
            _finalize((inputs, blinds, blinded, mixed, proof))


def test_client_rejects_echoed_blinded_elements() -> None:
    """A key service that returns the client's own elements (key 1) cannot prove it."""
    inputs, blinds, blinded, _, proof = GOOD
    with pytest.raises(VerificationError):
        _finalize((inputs, blinds, blinded, list(blinded), proof))


def test_client_rejects_swapped_evaluated_elements() -> None:
    inputs, blinds, blinded, evaluated, proof = GOOD
    with pytest.raises(VerificationError):
        _finalize((inputs, blinds, blinded, evaluated[::-1], proof))


def test_client_rejects_a_proof_for_another_batch() -> None:
    inputs, blinds, blinded, evaluated, _ = GOOD
    other_blinded = [oprf.blind(i)[1] for i in INPUTS]
    _, replayed = oprf.blind_evaluate(KEY.secret, other_blinded)
    with pytest.raises(VerificationError):
        _finalize((inputs, blinds, blinded, evaluated, replayed))


@pytest.mark.parametrize("size", [0, 1, 32, 63, 65, 128])
def test_client_rejects_a_proof_of_the_wrong_size(size: int) -> None:
    inputs, blinds, blinded, evaluated, _ = GOOD
    with pytest.raises(MalformedMessage) as info:
        _finalize((inputs, blinds, blinded, evaluated, b"\x01" * size))
    assert info.value.message == f"proof has the wrong size: {size} bytes, a proof has 64"


def test_client_rejects_a_missing_proof_in_voprf_mode() -> None:
    inputs, blinds, blinded, evaluated, _ = GOOD
    with pytest.raises(MalformedMessage, match="proof has the wrong size: 0 bytes"):
        oprf.finalize(inputs, blinds, blinded, evaluated, public=KEY.public)


@pytest.mark.parametrize("position", range(oprf.PROOF_SIZE))
def test_client_rejects_every_tampered_proof_byte(position: int) -> None:
    inputs, blinds, blinded, evaluated, proof = GOOD
    tampered = bytearray(proof)
    tampered[position] ^= 0x01
    half = bytes(tampered[32:] if position >= 32 else tampered[:32])
    expected: type[BetrokkenError] = VerificationError
    if int.from_bytes(half, "little") >= ORDER:  # the flip left the scalar range
        expected = MalformedMessage
    with pytest.raises(expected) as info:
        _finalize((inputs, blinds, blinded, evaluated, bytes(tampered)))
    assert "proof" in info.value.message


@pytest.mark.parametrize("half", ["c", "s"])
@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda v: v + ORDER, id="plus-order"),
        pytest.param(lambda v: v | 1 << 255, id="top-bit"),
        pytest.param(lambda v: 2**256 - 1, id="all-ff"),
    ],
)
def test_client_rejects_non_canonical_proof_scalars(
    half: str, change: Callable[[int], int]
) -> None:
    """``s + order`` (or ``s`` with the top bit set) means the same number to libsodium, which
    reduces or drops the bit, so without the range check such a proof would still verify."""
    inputs, blinds, blinded, evaluated, proof = GOOD
    c, s = proof[:32], proof[32:]
    if half == "c":
        c = _le(change(int.from_bytes(c, "little")))
    else:
        s = _le(change(int.from_bytes(s, "little")))
    with pytest.raises(MalformedMessage) as info:
        _finalize((inputs, blinds, blinded, evaluated, c + s))
    assert f"proof scalar {half} is not a canonical scalar" in info.value.message


@pytest.mark.parametrize(
    "proof",
    [bytes(64), _le(1) + bytes(32), bytes(32) + _le(1), _le(ORDER - 1) * 2],
    ids=["zeros", "c-one", "s-one", "order-minus-one"],
)
def test_client_rejects_degenerate_proofs(proof: bytes) -> None:
    inputs, blinds, blinded, evaluated, _ = GOOD
    with pytest.raises(VerificationError):
        _finalize((inputs, blinds, blinded, evaluated, proof))


@pytest.mark.parametrize(
    "cut",
    ["inputs", "blinds", "blinded", "evaluated"],
)
def test_client_rejects_mismatched_lengths(cut: str) -> None:
    inputs, blinds, blinded, evaluated, proof = GOOD
    lists = {"inputs": inputs, "blinds": blinds, "blinded": blinded, "evaluated": evaluated}
    lists[cut] = lists[cut][:1]
    with pytest.raises(MalformedMessage) as info:
        oprf.finalize(
            lists["inputs"],
            lists["blinds"],
            lists["blinded"],
            lists["evaluated"],
            public=KEY.public,
            proof=proof,
        )
    assert info.value.message.startswith("batch lengths differ")


def test_client_rejects_an_extra_evaluated_element() -> None:
    inputs, blinds, blinded, evaluated, proof = GOOD
    with pytest.raises(MalformedMessage, match="batch lengths differ"):
        _finalize((inputs, blinds, blinded, [*evaluated, evaluated[0]], proof))


def test_client_rejects_an_empty_answer() -> None:
    with pytest.raises(MalformedMessage, match="no evaluated elements"):
        oprf.finalize([], [], [], [], public=KEY.public, proof=GOOD[4])


def test_client_rejects_a_bad_pinned_public_key() -> None:
    for public in (bytes(32), b"\xff" * 32, KEY.public[:31]):
        with pytest.raises(MalformedMessage, match="the pinned public key"):
            _finalize(GOOD, public=public)


# --- fuzzing: whatever the peer sends, only betrokken errors come out -------------------------

elements = st.one_of(
    st.binary(max_size=40),
    st.binary(min_size=32, max_size=32),
    st.sampled_from([*GOOD[2], *GOOD[3], G, bytes(32)]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(elements, min_size=0, max_size=3))
def test_key_service_only_raises_malformed_message(blinded: list[bytes]) -> None:
    try:
        evaluated, proof = oprf.blind_evaluate(KEY.secret, blinded)
    except MalformedMessage as exc:
        assert "element" in exc.message
    else:
        assert len(evaluated) == len(blinded) and len(proof) == oprf.PROOF_SIZE


@settings(max_examples=150, deadline=None)
@given(
    st.lists(elements, min_size=2, max_size=2),
    st.one_of(st.binary(max_size=70), st.binary(min_size=64, max_size=64), st.just(GOOD[4])),
)
def test_client_only_raises_betrokken_errors(evaluated: list[bytes], proof: bytes) -> None:
    inputs, blinds, blinded, honest, honest_proof = GOOD
    try:
        outputs = _finalize((inputs, blinds, blinded, evaluated, proof))
    except (MalformedMessage, VerificationError) as exc:
        assert exc.message
    else:  # only the honest answer may pass
        assert evaluated == honest and proof == honest_proof
        assert outputs == _finalize(GOOD)
