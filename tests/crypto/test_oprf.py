"""RFC 9497 (ristretto255-SHA512) and RFC 9380 (expand_message_xmd SHA-512) vectors, exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from betrokken.crypto import oprf
from tests.conftest import SHARED, require_or_skip

VECTORS = SHARED / "vectors"


def _load(name: str) -> Any:
    path = VECTORS / name
    if not path.is_file():
        return None
    return json.loads(path.read_text())


OPRF = _load("rfc9497-oprf-ristretto255-SHA512.json") or []
XMD = _load("rfc9380-expand_message_xmd_SHA512_38.json") or {"tests": [], "DST": ""}


@pytest.fixture(autouse=True)
def _vectors_present() -> None:
    require_or_skip(None if OPRF else f"test vectors not found in {VECTORS}")


def _split(value: str) -> list[bytes]:
    return [bytes.fromhex(part) for part in value.split(",")]


CASES = [
    pytest.param(suite, vector, id=f"mode{suite['mode']}-batch{vector['Batch']}-{index}")
    for suite in OPRF
    if suite["mode"] in (oprf.MODE_OPRF, oprf.MODE_VOPRF)
    for index, vector in enumerate(suite["vectors"])
]


def test_both_modes_are_covered() -> None:
    assert {c.values[0]["mode"] for c in CASES} == {0, 1}  # type: ignore[index]
    assert any(c.values[1]["Batch"] == 2 for c in CASES)  # type: ignore[index]


@pytest.mark.parametrize(
    "test", XMD["tests"], ids=lambda t: f"len{t['len_in_bytes']}-{t['msg'][:8]}"
)
def test_expand_message_xmd(test: dict[str, str]) -> None:
    out = oprf.expand_message_xmd(
        test["msg"].encode(), XMD["DST"].encode(), int(test["len_in_bytes"], 16)
    )
    assert out.hex() == test["uniform_bytes"]


@pytest.mark.parametrize(
    "suite", [s for s in OPRF if s["mode"] in (0, 1)], ids=lambda s: f"mode{s['mode']}"
)
def test_derive_key_pair(suite: dict[str, Any]) -> None:
    assert suite["identifier"] == oprf.SUITE
    key = oprf.derive_key_pair(
        bytes.fromhex(suite["seed"]), bytes.fromhex(suite["keyInfo"]), suite["mode"]
    )
    assert key.secret.hex() == suite["skSm"]
    if "pkSm" in suite:
        assert key.public.hex() == suite["pkSm"]
    assert key.secret.hex() not in repr(key)


@pytest.mark.parametrize(("suite", "vector"), CASES)
def test_vector(suite: dict[str, Any], vector: dict[str, Any]) -> None:
    mode = suite["mode"]
    key = oprf.derive_key_pair(bytes.fromhex(suite["seed"]), bytes.fromhex(suite["keyInfo"]), mode)
    inputs, blinds = _split(vector["Input"]), _split(vector["Blind"])
    blinded = [oprf.blind(i, mode, b)[1] for i, b in zip(inputs, blinds, strict=True)]
    assert [b.hex() for b in blinded] == vector["BlindedElement"].split(",")
    r = bytes.fromhex(vector["Proof"]["r"]) if "Proof" in vector else None
    evaluated, proof = oprf.blind_evaluate(key.secret, blinded, mode, proof_scalar=r)
    assert [e.hex() for e in evaluated] == vector["EvaluationElement"].split(",")
    if mode == oprf.MODE_VOPRF:
        assert proof.hex() == vector["Proof"]["proof"]
    else:
        assert proof == b""
    outputs = oprf.finalize(
        inputs, blinds, blinded, evaluated, mode=mode, public=key.public, proof=proof
    )
    assert [o.hex() for o in outputs] == vector["Output"].split(",")
    assert [oprf.evaluate(key.secret, i, mode).hex() for i in inputs] == vector["Output"].split(",")


def test_round_trip_batch_of_five() -> None:
    key = oprf.generate_key_pair()
    inputs = [f"99999{i:04d}".encode() for i in range(5)]
    blinds, blinded = zip(*(oprf.blind(i) for i in inputs), strict=True)
    evaluated, proof = oprf.blind_evaluate(key.secret, list(blinded))
    outputs = oprf.finalize(inputs, blinds, blinded, evaluated, public=key.public, proof=proof)
    assert outputs == [oprf.evaluate(key.secret, i) for i in inputs]
    assert len(set(outputs)) == 5 and all(len(o) == oprf.OUTPUT_SIZE for o in outputs)


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=1, max_size=40))
def test_outputs_are_deterministic_per_key_and_differ_between_keys(data: bytes) -> None:
    one = oprf.derive_key_pair(b"\x01" * 32, b"one")
    two = oprf.derive_key_pair(b"\x02" * 32, b"two")
    blind, element = oprf.blind(data)
    evaluated, proof = oprf.blind_evaluate(one.secret, [element])
    [out] = oprf.finalize([data], [blind], [element], evaluated, public=one.public, proof=proof)
    assert out == oprf.evaluate(one.secret, data)
    assert out != oprf.evaluate(two.secret, data)
