"""One blinded batch under several keys, and the hot path's own expansion: each the same bytes
as the RFC's one-key operations, every proof still checked."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from betrokken.crypto import oprf
from betrokken.errors import MalformedMessage, VerificationError

KEYS = [oprf.derive_organisation_key(bytes(range(32)), f"org-{n}") for n in range(4)]
INPUTS = [b"999993653", b"123456782", b"111222333"]


@given(msg=st.binary(max_size=300), mode=st.sampled_from([oprf.MODE_OPRF, oprf.MODE_VOPRF]))
def test_the_hot_path_expansion_is_expand_message_xmd_of_64_bytes(msg: bytes, mode: int) -> None:
    ctx = oprf._context(mode)
    for dst in (ctx.hash_to_group, ctx.hash_to_scalar, ctx.derive_key_pair, b"D" * 255):
        assert oprf._expand_64(msg, dst) == oprf.expand_message_xmd(msg, dst, 64)
    with pytest.raises(ValueError):
        oprf._expand_64(msg, b"D" * 256)


def test_blind_evaluate_many_gives_each_key_what_blind_evaluate_gives_it() -> None:
    blinded = [oprf.blind(data)[1] for data in INPUTS]
    scalars = [oprf._G.random_scalar() for _ in KEYS]
    many = oprf.blind_evaluate_many(
        [(k.secret, k.public) for k in KEYS], blinded, proof_scalars=scalars
    )
    one = [
        oprf.blind_evaluate(k.secret, blinded, public=k.public, proof_scalar=r)
        for k, r in zip(KEYS, scalars, strict=True)
    ]
    assert many == one
    # without the public key it is computed, with the same result
    assert (
        oprf.blind_evaluate_many([(KEYS[0].secret, None)], blinded, proof_scalars=scalars[:1])
        == one[:1]
    )


def test_blind_evaluate_many_refuses_a_bad_element_and_a_bad_key() -> None:
    blinded = [oprf.blind(data)[1] for data in INPUTS]
    with pytest.raises(MalformedMessage, match="blinded element 1"):
        oprf.blind_evaluate_many([(k.secret, k.public) for k in KEYS], [blinded[0], bytes(32)])
    with pytest.raises(ValueError, match="secret key"):
        oprf.blind_evaluate_many([(KEYS[0].secret, None), (bytes(32), None)], blinded)
    with pytest.raises(ValueError, match="proof scalars"):
        oprf.blind_evaluate_many([(KEYS[0].secret, None)], blinded, proof_scalars=[])


def test_a_forged_proof_under_any_one_key_of_a_batch_is_refused() -> None:
    """Each key's proof is verified: one forged proof, one proof of another key, or one
    evaluation by another key, among honest ones, is refused."""
    blinds, blinded = zip(*(oprf.blind(data) for data in INPUTS), strict=True)
    honest = [
        (evaluated, k.public, proof)
        for k, (evaluated, proof) in zip(
            KEYS,
            oprf.blind_evaluate_many([(k.secret, k.public) for k in KEYS], list(blinded)),
            strict=True,
        )
    ]
    outputs = oprf.finalize_many(INPUTS, list(blinds), list(blinded), honest)
    assert outputs == [[oprf.evaluate(k.secret, data) for data in INPUTS] for k in KEYS]
    for position in range(len(KEYS)):
        evaluated, public, proof = honest[position]
        other = honest[(position + 1) % len(KEYS)]
        flipped = bytearray(proof)
        flipped[secrets.randbelow(31)] ^= 1 << secrets.randbelow(8)
        for forged in (
            (evaluated, public, bytes(flipped)),
            (evaluated, public, other[2]),
            (other[0], public, proof),
            (evaluated, other[1], proof),
        ):
            batch = list(honest)
            batch[position] = forged
            with pytest.raises((VerificationError, MalformedMessage)):
                oprf.finalize_many(INPUTS, list(blinds), list(blinded), batch)
