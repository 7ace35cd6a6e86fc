"""What a peer controls in the OPRF: elements, proofs, sizes. Clear errors, never a crash."""

from __future__ import annotations

import pytest

from betrokken.crypto import oprf
from betrokken.errors import MalformedMessage, VerificationError

KEY = oprf.derive_key_pair(b"\x03" * 32, b"adversarial")
OTHER = oprf.derive_key_pair(b"\x04" * 32, b"adversarial")
INPUTS = [b"999993653", b"111222333"]


def _batch() -> tuple[list[bytes], list[bytes], list[bytes], list[bytes], bytes]:
    blinds, blinded = map(list, zip(*(oprf.blind(i) for i in INPUTS), strict=True))
    evaluated, proof = oprf.blind_evaluate(KEY.secret, blinded)
    return list(INPUTS), blinds, blinded, evaluated, proof


BAD_ELEMENTS = [
    (b"", "size"),
    (b"\x01" * 31, "size"),
    (b"\x01" * 33, "size"),
    (bytes(32), "identity"),
    (b"\xff" * 32, "not a valid"),
]


@pytest.mark.parametrize(("element", "words"), BAD_ELEMENTS)
def test_key_service_rejects_bad_blinded_elements(element: bytes, words: str) -> None:
    good = oprf.blind(b"999993653")[1]
    with pytest.raises(MalformedMessage) as info:
        oprf.blind_evaluate(KEY.secret, [good, element])
    assert "blinded element 1" in info.value.message and words in info.value.message


def test_key_service_rejects_an_empty_batch() -> None:
    with pytest.raises(MalformedMessage):
        oprf.blind_evaluate(KEY.secret, [])


@pytest.mark.parametrize(("element", "words"), BAD_ELEMENTS)
def test_client_rejects_bad_evaluated_elements(element: bytes, words: str) -> None:
    inputs, blinds, blinded, evaluated, proof = _batch()
    evaluated[0] = element
    with pytest.raises(MalformedMessage) as info:
        oprf.finalize(inputs, blinds, blinded, evaluated, public=KEY.public, proof=proof)
    assert "evaluated element 0" in info.value.message and words in info.value.message


def test_client_rejects_a_proof_by_another_key() -> None:
    inputs, blinds, blinded, _, _ = _batch()
    evaluated, proof = oprf.blind_evaluate(OTHER.secret, blinded)
    with pytest.raises(VerificationError) as info:
        oprf.finalize(inputs, blinds, blinded, evaluated, public=KEY.public, proof=proof)
    assert "pinned public key" in info.value.message


@pytest.mark.parametrize("position", [0, 31, 32, 63])
def test_client_rejects_a_tampered_proof(position: int) -> None:
    inputs, blinds, blinded, evaluated, proof = _batch()
    tampered = bytearray(proof)
    tampered[position] ^= 0x01
    with pytest.raises(VerificationError):
        oprf.finalize(inputs, blinds, blinded, evaluated, public=KEY.public, proof=bytes(tampered))


@pytest.mark.parametrize("size", [0, 63, 65])
def test_client_rejects_a_proof_of_the_wrong_size(size: int) -> None:
    inputs, blinds, blinded, evaluated, _ = _batch()
    with pytest.raises(MalformedMessage) as info:
        oprf.finalize(inputs, blinds, blinded, evaluated, public=KEY.public, proof=b"\x01" * size)
    assert "proof" in info.value.message


def test_client_rejects_swapped_evaluations() -> None:
    inputs, blinds, blinded, evaluated, proof = _batch()
    with pytest.raises(VerificationError):
        oprf.finalize(inputs, blinds, blinded, evaluated[::-1], public=KEY.public, proof=proof)


def test_client_rejects_an_evaluation_under_another_key_with_a_valid_shape() -> None:
    inputs, blinds, blinded, evaluated, proof = _batch()
    forged = oprf.blind_evaluate(OTHER.secret, blinded[:1])[0][0]
    with pytest.raises(VerificationError):
        oprf.finalize(
            inputs, blinds, blinded, [forged, evaluated[1]], public=KEY.public, proof=proof
        )


def test_client_rejects_mismatched_lengths() -> None:
    inputs, blinds, blinded, evaluated, proof = _batch()
    with pytest.raises(MalformedMessage) as info:
        oprf.finalize(inputs, blinds, blinded, evaluated[:1], public=KEY.public, proof=proof)
    assert "lengths differ" in info.value.message
