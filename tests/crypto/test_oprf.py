"""RFC 9497 (ristretto255-SHA512, modes OPRF and VOPRF) and RFC 9380 vectors, byte for byte."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from betrokken.crypto import oprf

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
OPRF_FILE = VECTORS / "rfc9497-oprf-ristretto255-SHA512.json"
XMD_FILE = VECTORS / "rfc9380-expand_message_xmd_SHA512_38.json"
MODES = (oprf.MODE_OPRF, oprf.MODE_VOPRF)


def _load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _require(data: Any, path: Path) -> Any:
    """The loaded vectors; skip when they are missing, but fail in CI, where they must exist."""
    if data is None:
        problem = f"test vectors not found: {path} (the shared folder beside the repository)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem}; CI=true, so the vectors must be present")
        pytest.skip(problem)
    return data


OPRF_DATA: list[dict[str, Any]] | None = _load(OPRF_FILE)
XMD_DATA: dict[str, Any] | None = _load(XMD_FILE)
MISSING = [pytest.param(None, id="vectors-missing")]


def _split(value: str) -> list[bytes]:
    """A vector field: hex, comma-separated for batch sizes above 1."""
    return [bytes.fromhex(part) for part in value.split(",")]


SUITES = [
    pytest.param(suite, id=f"mode{suite['mode']}")
    for suite in OPRF_DATA or []
    if suite["mode"] in MODES
] or MISSING

VECTOR_CASES = [
    pytest.param(
        (suite, vector), id=f"mode{suite['mode']}-vector{index + 1}-batch{vector['Batch']}"
    )
    for suite in OPRF_DATA or []
    if suite["mode"] in MODES
    for index, vector in enumerate(suite["vectors"])
] or MISSING

XMD_CASES = [
    pytest.param(test, id=f"len{int(test['len_in_bytes'], 16)}-msg{len(test['msg'])}")
    for test in (XMD_DATA or {}).get("tests", [])
] or MISSING


def _key(suite: dict[str, Any]) -> oprf.KeyPair:
    return oprf.derive_key_pair(
        bytes.fromhex(suite["seed"]), bytes.fromhex(suite["keyInfo"]), suite["mode"]
    )


# --- the vector files themselves ---------------------------------------------------------------


def test_the_vector_files_cover_what_the_tests_claim() -> None:
    suites = _require(OPRF_DATA, OPRF_FILE)
    xmd = _require(XMD_DATA, XMD_FILE)
    by_mode = {suite["mode"]: suite for suite in suites}
    assert set(MODES) <= set(by_mode)
    for mode in MODES:
        suite = by_mode[mode]
        assert suite["identifier"] == oprf.SUITE and suite["hash"] == "SHA512"
        assert bytes.fromhex(suite["groupDST"]) == b"HashToGroup-" + oprf.context_string(mode)
    # as in RFC 9497 appendix A: OPRF mode has batch size 1 only, VOPRF mode 1 and 2
    assert [v["Batch"] for v in by_mode[oprf.MODE_OPRF]["vectors"]] == [1, 1]
    assert [v["Batch"] for v in by_mode[oprf.MODE_VOPRF]["vectors"]] == [1, 1, 2]
    assert "pkSm" in by_mode[oprf.MODE_VOPRF]
    assert xmd["name"] == "expand_message_xmd" and xmd["hash"] == "SHA512"
    assert {int(t["len_in_bytes"], 16) for t in xmd["tests"]} == {32, 128}


def test_missing_vectors_skip_locally_and_fail_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = VECTORS / "no-such-file.json"
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="not found"):
        _require(None, missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        _require(None, missing)
    assert _require({"present": 1}, missing) == {"present": 1}


# --- RFC 9380 expand_message_xmd ---------------------------------------------------------------


@pytest.mark.parametrize("test", XMD_CASES)
def test_expand_message_xmd(test: dict[str, str] | None) -> None:
    xmd = _require(XMD_DATA, XMD_FILE)
    assert test is not None
    dst = xmd["DST"].encode()
    assert bytes.fromhex(test["DST_prime"]) == dst + bytes([len(dst)])
    out = oprf.expand_message_xmd(test["msg"].encode(), dst, int(test["len_in_bytes"], 16))
    assert out.hex() == test["uniform_bytes"]


def test_expand_message_xmd_refuses_impossible_requests() -> None:
    with pytest.raises(ValueError):
        oprf.expand_message_xmd(b"", b"DST", 255 * 64 + 1)
    with pytest.raises(ValueError):
        oprf.expand_message_xmd(b"", b"D" * 256, 32)
    assert len(oprf.expand_message_xmd(b"x", b"D" * 255, 255 * 64)) == 255 * 64


# --- RFC 9497 -----------------------------------------------------------------------------------


def test_context_strings() -> None:
    assert oprf.context_string(oprf.MODE_OPRF) == b"OPRFV1-\x00-ristretto255-SHA512"
    assert oprf.context_string(oprf.MODE_VOPRF) == b"OPRFV1-\x01-ristretto255-SHA512"
    with pytest.raises(ValueError, match="unsupported OPRF mode"):
        oprf.context_string(0x02)  # POPRF is not implemented
    with pytest.raises(ValueError, match="unsupported OPRF mode"):
        oprf.blind(b"x", mode=7)


@pytest.mark.parametrize("suite", SUITES)
def test_derive_key_pair(suite: dict[str, Any] | None) -> None:
    _require(OPRF_DATA, OPRF_FILE)
    assert suite is not None
    key = _key(suite)
    assert key.secret.hex() == suite["skSm"]
    if "pkSm" in suite:
        assert key.public.hex() == suite["pkSm"]
    assert len(key.public) == oprf.ELEMENT_SIZE and oprf.validate_element(key.public)
    assert "secret" not in repr(key) and repr(key.secret) not in repr(key)


@pytest.mark.parametrize("case", VECTOR_CASES)
def test_blind(case: tuple[dict[str, Any], dict[str, Any]] | None) -> None:
    _require(OPRF_DATA, OPRF_FILE)
    assert case is not None
    suite, vector = case
    inputs, blinds = _split(vector["Input"]), _split(vector["Blind"])
    assert len(inputs) == len(blinds) == vector["Batch"]
    for data, blind, expected in zip(inputs, blinds, _split(vector["BlindedElement"]), strict=True):
        assert oprf.blind(data, suite["mode"], blind) == (blind, expected)


@pytest.mark.parametrize("case", VECTOR_CASES)
def test_blind_evaluate_and_proof(case: tuple[dict[str, Any], dict[str, Any]] | None) -> None:
    _require(OPRF_DATA, OPRF_FILE)
    assert case is not None
    suite, vector = case
    mode = suite["mode"]
    r = bytes.fromhex(vector["Proof"]["r"]) if mode == oprf.MODE_VOPRF else None
    evaluated, proof = oprf.blind_evaluate(
        _key(suite).secret, _split(vector["BlindedElement"]), mode, proof_scalar=r
    )
    assert evaluated == _split(vector["EvaluationElement"])
    if mode == oprf.MODE_VOPRF:
        assert proof.hex() == vector["Proof"]["proof"] and len(proof) == oprf.PROOF_SIZE
        # the public key given explicitly gives the same proof as the derived default
        explicit = oprf.blind_evaluate(
            _key(suite).secret,
            _split(vector["BlindedElement"]),
            mode,
            public=bytes.fromhex(suite["pkSm"]),
            proof_scalar=r,
        )
        assert explicit == (evaluated, proof)
    else:
        assert "Proof" not in vector and proof == b""


@pytest.mark.parametrize("case", VECTOR_CASES)
def test_finalize(case: tuple[dict[str, Any], dict[str, Any]] | None) -> None:
    """Finalize with the vector's own elements and proof, verified against the vector's pkSm."""
    _require(OPRF_DATA, OPRF_FILE)
    assert case is not None
    suite, vector = case
    mode = suite["mode"]
    outputs = oprf.finalize(
        _split(vector["Input"]),
        _split(vector["Blind"]),
        _split(vector["BlindedElement"]),
        _split(vector["EvaluationElement"]),
        mode=mode,
        public=bytes.fromhex(suite["pkSm"]) if mode == oprf.MODE_VOPRF else None,
        proof=bytes.fromhex(vector["Proof"]["proof"]) if mode == oprf.MODE_VOPRF else b"",
    )
    assert outputs == _split(vector["Output"])
    assert all(len(output) == oprf.OUTPUT_SIZE for output in outputs)


@pytest.mark.parametrize("case", VECTOR_CASES)
def test_evaluate(case: tuple[dict[str, Any], dict[str, Any]] | None) -> None:
    _require(OPRF_DATA, OPRF_FILE)
    assert case is not None
    suite, vector = case
    secret = _key(suite).secret
    outputs = [oprf.evaluate(secret, data, suite["mode"]) for data in _split(vector["Input"])]
    assert outputs == _split(vector["Output"])


# --- round trips and properties -----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES, ids=["oprf", "voprf"])
def test_round_trip_batch_of_five(mode: int) -> None:
    key = oprf.generate_key_pair(mode)
    inputs = [secrets.token_bytes(9) for _ in range(5)]
    blinds, blinded = zip(*(oprf.blind(data, mode) for data in inputs), strict=True)
    evaluated, proof = oprf.blind_evaluate(key.secret, blinded, mode)
    assert len(proof) == (oprf.PROOF_SIZE if mode == oprf.MODE_VOPRF else 0)
    outputs = oprf.finalize(
        inputs, blinds, blinded, evaluated, mode=mode, public=key.public, proof=proof
    )
    assert outputs == [oprf.evaluate(key.secret, data, mode) for data in inputs]
    assert len(set(outputs)) == 5 and all(len(o) == oprf.OUTPUT_SIZE for o in outputs)


def test_keys_and_blinds_are_fresh_and_well_formed() -> None:
    one, two = oprf.generate_key_pair(), oprf.generate_key_pair()
    assert one.secret != two.secret and one.public != two.public
    assert len(one.secret) == oprf.SCALAR_SIZE and repr(one.secret) not in repr(one)
    (b1, e1), (b2, e2) = oprf.blind(b"999993653"), oprf.blind(b"999993653")
    assert b1 != b2 and e1 != e2  # blinding hides equal inputs from the key service
    assert oprf.validate_element(e1) == e1


def test_modes_give_different_pseudonyms() -> None:
    key = oprf.derive_key_pair(b"\x05" * 32, b"modes")
    assert oprf.evaluate(key.secret, b"999993653", oprf.MODE_OPRF) != oprf.evaluate(
        key.secret, b"999993653", oprf.MODE_VOPRF
    )


def test_derive_key_pair_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="32-byte seed"):
        oprf.derive_key_pair(b"\x01" * 31, b"info")
    with pytest.raises(ValueError, match="info"):
        oprf.derive_key_pair(b"\x01" * 32, b"i" * 0x10000)
    assert oprf.derive_key_pair(b"\x01" * 32, b"a") != oprf.derive_key_pair(b"\x01" * 32, b"b")


def test_own_scalars_must_be_canonical_and_nonzero() -> None:
    key = oprf.derive_key_pair(b"\x06" * 32, b"own")
    _, element = oprf.blind(b"999993653")
    for bad in (bytes(32), b"\xff" * 32, b"\x01" * 31):
        with pytest.raises(ValueError, match="scalar"):
            oprf.blind(b"999993653", blind_scalar=bad)
        with pytest.raises(ValueError, match="scalar"):
            oprf.blind_evaluate(bad, [element])
        with pytest.raises(ValueError, match="scalar"):
            oprf.blind_evaluate(key.secret, [element], proof_scalar=bad)
        with pytest.raises(ValueError, match="scalar"):
            oprf.evaluate(bad, b"999993653")
    with pytest.raises(ValueError, match="public key"):
        oprf.finalize([b"x"], [b"\x01" + bytes(31)], [element], [element])


@settings(max_examples=30, deadline=None)
@given(
    st.binary(min_size=1, max_size=40),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
)
def test_outputs_are_deterministic_per_key_and_input_and_differ_between_keys(
    data: bytes, seed_one: bytes, seed_two: bytes
) -> None:
    one = oprf.derive_key_pair(seed_one, b"one")
    two = oprf.derive_key_pair(seed_two, b"two")
    outputs = []
    for _ in range(2):  # two fresh blinds: the output must not depend on them
        blind, element = oprf.blind(data)
        evaluated, proof = oprf.blind_evaluate(one.secret, [element])
        [out] = oprf.finalize([data], [blind], [element], evaluated, public=one.public, proof=proof)
        outputs.append(out)
    assert outputs[0] == outputs[1] == oprf.evaluate(one.secret, data)
    assert oprf.evaluate(two.secret, data) != outputs[0]
    assert oprf.evaluate(one.secret, data + b"\x00") != outputs[0]


def test_the_libsodium_rbcl_unpacks_into_a_temporary_file_is_removed_once_loaded() -> None:
    import sys
    from pathlib import Path

    import betrokken.crypto.oprf  # noqa: F401  (the module that removes it)

    unpacked = Path(sys.modules["rbcl._sodium"].lib_path)
    assert unpacked.suffix in (".so", ".pyd")
    assert not unpacked.exists()
