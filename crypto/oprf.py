"""RFC 9497 OPRF and VOPRF, suite ristretto255-SHA512, on libsodium (through ``rbcl``).

Only the RFC's own glue is written here: expand_message_xmd (RFC 9380, SHA-512), the context
strings, DeriveKeyPair, Blind / BlindEvaluate / Finalize and the batched DLEQ proof. All group
and scalar arithmetic is libsodium's (constant time, prime-order group). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

import rbcl

from betrokken.errors import MalformedMessage, VerificationError

SUITE = "ristretto255-SHA512"
MODE_OPRF = 0x00
MODE_VOPRF = 0x01
ELEMENT_SIZE = 32
SCALAR_SIZE = 32
OUTPUT_SIZE = 64
PROOF_SIZE = 2 * SCALAR_SIZE
_HASH_BLOCK = 128  # SHA-512 block size (s_in_bytes)
_HASH_SIZE = 64
_IDENTITY = bytes(ELEMENT_SIZE)


@dataclass(frozen=True)
class KeyPair:
    secret: bytes = field(repr=False)
    public: bytes


def _i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def _lp(data: bytes) -> bytes:
    """Length-prefixed (2 bytes, big-endian) as the RFC's transcripts use."""
    return _i2osp(len(data), 2) + data


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 section 5.3.1 with SHA-512."""
    ell = -(-len_in_bytes // _HASH_SIZE)
    if ell > 255 or len_in_bytes > 65535 or len(dst) > 255:
        raise ValueError("expand_message_xmd: requested length or DST too long")
    dst_prime = dst + _i2osp(len(dst), 1)
    msg_prime = bytes(_HASH_BLOCK) + msg + _i2osp(len_in_bytes, 2) + b"\x00" + dst_prime
    b0 = hashlib.sha512(msg_prime).digest()
    blocks = [hashlib.sha512(b0 + b"\x01" + dst_prime).digest()]
    for i in range(2, ell + 1):
        mixed = bytes(x ^ y for x, y in zip(b0, blocks[-1], strict=True))
        blocks.append(hashlib.sha512(mixed + _i2osp(i, 1) + dst_prime).digest())
    return b"".join(blocks)[:len_in_bytes]


def context_string(mode: int) -> bytes:
    if mode not in (MODE_OPRF, MODE_VOPRF):
        raise ValueError(f"unsupported mode {mode}")
    return b"OPRFV1-" + _i2osp(mode, 1) + b"-" + SUITE.encode()


def _hash_to_group(data: bytes, mode: int) -> bytes:
    uniform = expand_message_xmd(data, b"HashToGroup-" + context_string(mode), 64)
    return bytes(rbcl.crypto_core_ristretto255_from_hash(uniform))


def _hash_to_scalar(data: bytes, mode: int, dst: bytes | None = None) -> bytes:
    dst = dst if dst is not None else b"HashToScalar-" + context_string(mode)
    return bytes(rbcl.crypto_core_ristretto255_scalar_reduce(expand_message_xmd(data, dst, 64)))


def _mult(scalar: bytes, element: bytes, what: str = "element") -> bytes:
    try:
        return bytes(rbcl.crypto_scalarmult_ristretto255(scalar, element))
    except Exception:  # libsodium refuses an identity result
        raise MalformedMessage(f"{what}: scalar multiplication gave the identity") from None


def _base_mult(scalar: bytes) -> bytes:
    return bytes(rbcl.crypto_scalarmult_ristretto255_base(scalar))


def _add(a: bytes, b: bytes) -> bytes:
    return bytes(rbcl.crypto_core_ristretto255_add(a, b))


def _is_zero(scalar: bytes) -> bool:
    return not any(scalar)


def validate_element(data: bytes, what: str = "element") -> bytes:
    """Check a received element: right size, a valid ristretto255 encoding, not the identity."""
    if len(data) != ELEMENT_SIZE:
        raise MalformedMessage(f"{what} has {len(data)} bytes; the size is {ELEMENT_SIZE}")
    if data == _IDENTITY:
        raise MalformedMessage(f"{what} is the identity element")
    if not rbcl.crypto_core_ristretto255_is_valid_point(data):
        raise MalformedMessage(f"{what} is not a valid ristretto255 encoding")
    return data


def derive_key_pair(seed: bytes, info: bytes, mode: int = MODE_VOPRF) -> KeyPair:
    derive_input = seed + _lp(info)
    dst = b"DeriveKeyPair" + context_string(mode)
    for counter in range(256):
        secret = _hash_to_scalar(derive_input + _i2osp(counter, 1), mode, dst)
        if not _is_zero(secret):
            return KeyPair(secret=secret, public=_base_mult(secret))
    raise ValueError("DeriveKeyPairError")  # pragma: no cover (probability 2^-2000)


def generate_key_pair(mode: int = MODE_VOPRF) -> KeyPair:
    return derive_key_pair(secrets.token_bytes(32), b"betrokken", mode)


def _random_scalar() -> bytes:
    while True:
        scalar = bytes(rbcl.crypto_core_ristretto255_scalar_random())
        if not _is_zero(scalar):
            return scalar


def blind(
    input: bytes, mode: int = MODE_VOPRF, blind_scalar: bytes | None = None
) -> tuple[bytes, bytes]:
    """(blind, blinded element) for ``input``; the blind is random unless given."""
    scalar = blind_scalar if blind_scalar is not None else _random_scalar()
    element = _hash_to_group(input, mode)
    if element == _IDENTITY:  # pragma: no cover (negligible)
        raise MalformedMessage("input hashes to the identity element")
    return scalar, _mult(scalar, element, "blinded element")


def _composites(
    mode: int, public: bytes, c: Sequence[bytes], d: Sequence[bytes], secret: bytes | None
) -> tuple[bytes, bytes]:
    seed_dst = b"Seed-" + context_string(mode)
    seed = hashlib.sha512(_lp(public) + _lp(seed_dst)).digest()
    m: bytes | None = None
    z: bytes | None = None
    for i, (ci, di) in enumerate(zip(c, d, strict=True)):
        transcript = _lp(seed) + _i2osp(i, 2) + _lp(ci) + _lp(di) + b"Composite"
        weight = _hash_to_scalar(transcript, mode)
        term = _mult(weight, ci, f"composite {i}")
        m = term if m is None else _add(m, term)
        if secret is None:
            zterm = _mult(weight, di, f"composite {i}")
            z = zterm if z is None else _add(z, zterm)
    assert m is not None
    if secret is not None:
        z = _mult(secret, m, "composite")
    assert z is not None
    return m, z


def _challenge(mode: int, public: bytes, m: bytes, z: bytes, t2: bytes, t3: bytes) -> bytes:
    transcript = _lp(public) + _lp(m) + _lp(z) + _lp(t2) + _lp(t3) + b"Challenge"
    return _hash_to_scalar(transcript, mode)


def _generate_proof(
    secret: bytes,
    public: bytes,
    c: Sequence[bytes],
    d: Sequence[bytes],
    mode: int,
    r: bytes | None,
) -> bytes:
    m, z = _composites(mode, public, c, d, secret)
    r = r if r is not None else _random_scalar()
    t2 = _base_mult(r)
    t3 = _mult(r, m, "proof")
    challenge = _challenge(mode, public, m, z, t2, t3)
    s = rbcl.crypto_core_ristretto255_scalar_sub(
        r, rbcl.crypto_core_ristretto255_scalar_mul(challenge, secret)
    )
    return challenge + bytes(s)


def _verify_proof(
    public: bytes, c: Sequence[bytes], d: Sequence[bytes], proof: bytes, mode: int
) -> bool:
    if len(proof) != PROOF_SIZE:
        return False
    challenge, s = proof[:SCALAR_SIZE], proof[SCALAR_SIZE:]
    m, z = _composites(mode, public, c, d, None)
    try:
        t2 = _add(
            bytes(rbcl.crypto_scalarmult_ristretto255_base_allow_scalar_zero(s)),
            bytes(rbcl.crypto_scalarmult_ristretto255_allow_scalar_zero(challenge, public)),
        )
        t3 = _add(
            bytes(rbcl.crypto_scalarmult_ristretto255_allow_scalar_zero(s, m)),
            bytes(rbcl.crypto_scalarmult_ristretto255_allow_scalar_zero(challenge, z)),
        )
    except Exception:
        return False
    return secrets.compare_digest(_challenge(mode, public, m, z, t2, t3), challenge)


def blind_evaluate(
    secret: bytes,
    blinded_elements: Sequence[bytes],
    mode: int = MODE_VOPRF,
    *,
    public: bytes | None = None,
    proof_scalar: bytes | None = None,
) -> tuple[list[bytes], bytes]:
    """Evaluate a batch; in VOPRF mode also the batched DLEQ proof (else b"")."""
    if not blinded_elements:
        raise MalformedMessage("no blinded elements to evaluate")
    for index, element in enumerate(blinded_elements):
        validate_element(element, f"blinded element {index}")
    evaluated = [_mult(secret, e, f"evaluated element {i}") for i, e in enumerate(blinded_elements)]
    if mode == MODE_OPRF:
        return evaluated, b""
    public = public if public is not None else _base_mult(secret)
    proof = _generate_proof(secret, public, blinded_elements, evaluated, mode, proof_scalar)
    return evaluated, proof


def _finalize_one(input: bytes, blind_scalar: bytes, evaluated: bytes) -> bytes:
    inverse = bytes(rbcl.crypto_core_ristretto255_scalar_invert(blind_scalar))
    unblinded = _mult(inverse, evaluated, "evaluated element")
    return hashlib.sha512(_lp(input) + _lp(unblinded) + b"Finalize").digest()


def finalize(
    inputs: Sequence[bytes],
    blinds: Sequence[bytes],
    blinded_elements: Sequence[bytes],
    evaluated_elements: Sequence[bytes],
    *,
    mode: int = MODE_VOPRF,
    public: bytes | None = None,
    proof: bytes = b"",
) -> list[bytes]:
    """Unblind and hash; in VOPRF mode first verify the proof against ``public``."""
    count = len(inputs)
    if not (len(blinds) == len(blinded_elements) == len(evaluated_elements) == count):
        raise MalformedMessage(
            f"batch lengths differ: {count} inputs, {len(blinds)} blinds, "
            f"{len(blinded_elements)} blinded, {len(evaluated_elements)} evaluated elements"
        )
    for index, element in enumerate(evaluated_elements):
        validate_element(element, f"evaluated element {index}")
    if mode == MODE_VOPRF:
        if public is None:
            raise ValueError("VOPRF finalize needs the server's public key")
        if len(proof) != PROOF_SIZE:
            raise MalformedMessage(f"proof has {len(proof)} bytes; the size is {PROOF_SIZE}")
        if not _verify_proof(public, blinded_elements, evaluated_elements, proof, mode):
            raise VerificationError(
                "the key service's proof does not verify against the pinned public key",
                hint="the key service uses another key than the network file pins, or the "
                "answer was altered; tell the network's administrators",
            )
    return [
        _finalize_one(i, b, e) for i, b, e in zip(inputs, blinds, evaluated_elements, strict=True)
    ]


def evaluate(secret: bytes, input: bytes, mode: int = MODE_VOPRF) -> bytes:
    """The PRF itself, without blinding (the RFC's Evaluate); for tests and tooling."""
    element = _hash_to_group(input, mode)
    issued = _mult(secret, element, "element")
    return hashlib.sha512(_lp(input) + _lp(issued) + b"Finalize").digest()
