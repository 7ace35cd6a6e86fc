"""RFC 9497 OPRF and VOPRF, suite ristretto255-SHA512, on libsodium (through ``rbcl``).

Only the RFC's own glue is written here: expand_message_xmd (RFC 9380, SHA-512), the context
strings, DeriveKeyPair, Blind / BlindEvaluate / Finalize and the batched DLEQ proof (RFC 9497
section 2.2). All group and scalar arithmetic is libsodium's (constant time, prime-order group).
Everything suite-specific sits behind the small :class:`_Group` interface, implemented once by
:class:`_Ristretto255`; a second suite (P256-SHA256) would be a second implementation.

Errors: bad data from a peer raises :class:`MalformedMessage` (wrong sizes, invalid encodings,
mismatched batches) or :class:`VerificationError` (a proof that does not verify); a caller's own
mistake (an unknown mode, a blind that is not a scalar) raises ``ValueError``. Pure: no I/O.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import rbcl

from betrokken.errors import MalformedMessage, VerificationError

# rbcl unpacks its bundled libsodium into a new temporary file at every import and never removes
# it: 2.7 MB left in the temporary folder by every process that asks, answers or imports. Once
# loaded the file is not needed (the loaded library stays mapped), so it is removed here; where a
# loaded library cannot be removed the removal fails and the file stays, as it did before.
with contextlib.suppress(AttributeError, OSError, TypeError):
    os.unlink(getattr(sys.modules.get("rbcl._sodium"), "lib_path"))  # noqa: B009

SUITE = "ristretto255-SHA512"
MODE_OPRF = 0x00
MODE_VOPRF = 0x01
ELEMENT_SIZE = 32
SCALAR_SIZE = 32
OUTPUT_SIZE = 64
PROOF_SIZE = 2 * SCALAR_SIZE

_MAX_LENGTH = 0xFFFF  # the longest value I2OSP(len(x), 2) can prefix
_MAX_BATCH = 0x10000  # composite transcripts number the elements with I2OSP(i, 2)


@dataclass(frozen=True)
class KeyPair:
    """An OPRF key: the secret scalar (never shown in ``repr``) and the public element."""

    secret: bytes = field(repr=False)
    public: bytes


# --- RFC 9380 expand_message_xmd -------------------------------------------------------------


class _HashObject(Protocol):
    def digest(self) -> bytes: ...


def _i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def _lp(data: bytes) -> bytes:
    """``I2OSP(len(data), 2) || data``, as the RFC's transcripts use."""
    return _i2osp(len(data), 2) + data


def _expand_message_xmd(
    hash_function: Callable[[bytes], _HashObject],
    b_in_bytes: int,
    s_in_bytes: int,
    msg: bytes,
    dst: bytes,
    len_in_bytes: int,
) -> bytes:
    """RFC 9380 section 5.3.1 for any Merkle-Damgård hash (output and block size given)."""
    ell = -(-len_in_bytes // b_in_bytes)
    if not 0 <= len_in_bytes <= 0xFFFF or ell > 255:
        raise ValueError(f"expand_message_xmd cannot produce {len_in_bytes} bytes")
    if len(dst) > 255:
        raise ValueError("expand_message_xmd: the DST is longer than 255 bytes")
    dst_prime = dst + _i2osp(len(dst), 1)
    z_pad = bytes(s_in_bytes)
    b_0 = hash_function(z_pad + msg + _i2osp(len_in_bytes, 2) + b"\x00" + dst_prime).digest()
    b_i = hash_function(b_0 + b"\x01" + dst_prime).digest()
    blocks = [b_i]
    b_0_int = int.from_bytes(b_0, "big")
    for i in range(2, ell + 1):
        mixed = _i2osp(b_0_int ^ int.from_bytes(b_i, "big"), b_in_bytes)
        b_i = hash_function(mixed + _i2osp(i, 1) + dst_prime).digest()
        blocks.append(b_i)
    return b"".join(blocks)[:len_in_bytes]


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 section 5.3.1 with SHA-512 (the suite's hash)."""
    return _expand_message_xmd(hashlib.sha512, 64, 128, msg, dst, len_in_bytes)


_DST_PRIMES: dict[bytes, bytes] = {}


def _expand_64(msg: bytes, dst: bytes) -> bytes:
    """``expand_message_xmd(msg, dst, 64)``, what HashToGroup and HashToScalar ask for, on the
    hot path: 64 bytes are one SHA-512 block (``ell = 1``), so the output is ``b_1``; the
    suffix ``DST_prime`` is made once per DST (the suite has a handful)."""
    dst_prime = _DST_PRIMES.get(dst)
    if dst_prime is None:
        if len(dst) > 255:
            raise ValueError("expand_message_xmd: the DST is longer than 255 bytes")
        dst_prime = _DST_PRIMES.setdefault(bytes(dst), dst + _i2osp(len(dst), 1))
    b_0 = hashlib.sha512(_Z_PAD + msg + b"\x00\x40\x00" + dst_prime).digest()
    return hashlib.sha512(b_0 + b"\x01" + dst_prime).digest()


_Z_PAD = bytes(128)  # SHA-512's block size in bytes


# --- the group: everything suite-specific ----------------------------------------------------


class _Group(Protocol):
    """What the protocol needs from a prime-order group and its hash (RFC 9497 section 2.1).

    Elements and scalars are their serialized byte strings. ``scalar_mult`` and
    ``scalar_mult_gen`` take canonical scalars and valid elements and return the identity's
    encoding when the product is the identity.
    """

    identifier: str
    element_size: int
    scalar_size: int
    identity: bytes

    def hash(self, data: bytes) -> bytes: ...
    def hash_to_group(self, msg: bytes, dst: bytes) -> bytes: ...
    def hash_to_scalar(self, msg: bytes, dst: bytes) -> bytes: ...
    def random_scalar(self) -> bytes: ...
    def is_scalar(self, data: bytes) -> bool: ...
    def element_problem(self, data: bytes) -> str | None: ...
    def scalar_mult(self, scalar: bytes, element: bytes) -> bytes: ...
    def scalar_mult_gen(self, scalar: bytes) -> bytes: ...
    def add(self, a: bytes, b: bytes) -> bytes: ...
    def scalar_mul(self, a: bytes, b: bytes) -> bytes: ...
    def scalar_sub(self, a: bytes, b: bytes) -> bytes: ...
    def scalar_inverse(self, a: bytes) -> bytes: ...


class _Ristretto255:
    """ristretto255 (RFC 9496) with SHA-512 on libsodium: the suite ristretto255-SHA512."""

    identifier = SUITE
    element_size = ELEMENT_SIZE
    scalar_size = SCALAR_SIZE
    identity = bytes(ELEMENT_SIZE)
    _order = 2**252 + 27742317777372353535851937790883648493
    _uniform_size = 64  # bytes of expand_message_xmd output for HashToGroup / HashToScalar

    def hash(self, data: bytes) -> bytes:
        return hashlib.sha512(data).digest()

    def hash_to_group(self, msg: bytes, dst: bytes) -> bytes:
        return bytes(rbcl.crypto_core_ristretto255_from_hash(_expand_64(msg, dst)))

    def hash_to_scalar(self, msg: bytes, dst: bytes) -> bytes:
        return bytes(rbcl.crypto_core_ristretto255_scalar_reduce(_expand_64(msg, dst)))

    def random_scalar(self) -> bytes:
        while True:  # libsodium never returns zero; the loop only states the requirement
            scalar = bytes(rbcl.crypto_core_ristretto255_scalar_random())
            if any(scalar):
                return scalar

    def is_scalar(self, data: bytes) -> bool:
        """A canonical encoding: 32 bytes, little-endian, below the group order."""
        return len(data) == self.scalar_size and int.from_bytes(data, "little") < self._order

    def element_problem(self, data: bytes) -> str | None:
        if len(data) != self.element_size:
            return (
                f"has the wrong size: {len(data)} bytes, "
                f"a ristretto255 element has {self.element_size}"
            )
        if data == self.identity:
            return "is the identity element"
        # libsodium 1.0.18 (bundled by rbcl) ignores the top bit when decoding, so it accepts a
        # second, non-canonical encoding of every element; RFC 9496 rejects it.
        if data[-1] & 0x80 or not rbcl.crypto_core_ristretto255_is_valid_point(data):
            return "is not a valid ristretto255 encoding (not canonical, or not a group element)"
        return None

    def scalar_mult(self, scalar: bytes, element: bytes) -> bytes:
        try:
            return bytes(rbcl.crypto_scalarmult_ristretto255(scalar, element))
        except RuntimeError:  # libsodium refuses an identity result (or an invalid point)
            if not rbcl.crypto_core_ristretto255_is_valid_point(element):
                raise ValueError("scalar_mult on an element that was not validated") from None
            return self.identity

    def scalar_mult_gen(self, scalar: bytes) -> bytes:
        try:
            return bytes(rbcl.crypto_scalarmult_ristretto255_base(scalar))
        except RuntimeError:  # the zero scalar
            return self.identity

    def add(self, a: bytes, b: bytes) -> bytes:
        return bytes(rbcl.crypto_core_ristretto255_add(a, b))

    def scalar_mul(self, a: bytes, b: bytes) -> bytes:
        return bytes(rbcl.crypto_core_ristretto255_scalar_mul(a, b))

    def scalar_sub(self, a: bytes, b: bytes) -> bytes:
        return bytes(rbcl.crypto_core_ristretto255_scalar_sub(a, b))

    def scalar_inverse(self, a: bytes) -> bytes:
        return bytes(rbcl.crypto_core_ristretto255_scalar_invert(a))


_G: _Group = _Ristretto255()


# --- contexts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    """The context string of one mode and the domain separation tags built from it."""

    context: bytes
    hash_to_group: bytes
    hash_to_scalar: bytes
    derive_key_pair: bytes
    seed: bytes

    @classmethod
    def for_mode(cls, mode: int) -> _Context:
        context = b"OPRFV1-" + _i2osp(mode, 1) + b"-" + _G.identifier.encode("ascii")
        return cls(
            context=context,
            hash_to_group=b"HashToGroup-" + context,
            hash_to_scalar=b"HashToScalar-" + context,
            derive_key_pair=b"DeriveKeyPair" + context,
            seed=b"Seed-" + context,
        )


_CONTEXTS = {mode: _Context.for_mode(mode) for mode in (MODE_OPRF, MODE_VOPRF)}


def _context(mode: int) -> _Context:
    try:
        return _CONTEXTS[mode]
    except (KeyError, TypeError):
        raise ValueError(
            f"unsupported OPRF mode {mode!r}: this module implements "
            f"{MODE_OPRF:#04x} (OPRF) and {MODE_VOPRF:#04x} (VOPRF)"
        ) from None


def context_string(mode: int) -> bytes:
    """``"OPRFV1-" || I2OSP(mode, 1) || "-" || "ristretto255-SHA512"``."""
    return _context(mode).context


# --- checks -----------------------------------------------------------------------------------


def validate_element(data: bytes, what: str = "element") -> bytes:
    """Check a received element: the right size, a valid encoding, not the identity.

    Returns it as ``bytes``; raises :class:`MalformedMessage` naming ``what`` and the problem.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedMessage(f"{what} is not a byte string but a {type(data).__name__}")
    data = bytes(data)
    problem = _G.element_problem(data)
    if problem is not None:
        raise MalformedMessage(f"{what} {problem}")
    return data


def _received_batch(elements: Sequence[bytes], what: str) -> list[bytes]:
    """Validate a peer's batch: not empty, not too long, every element valid (with its index)."""
    if not elements:
        raise MalformedMessage(f"the batch holds no {what}s")
    if len(elements) > _MAX_BATCH:
        raise MalformedMessage(
            f"the batch holds {len(elements)} {what}s; a batch holds at most {_MAX_BATCH}"
        )
    return [validate_element(element, f"{what} {index}") for index, element in enumerate(elements)]


def _own_scalar(data: bytes, what: str) -> bytes:
    """A scalar from our own side (a key, a blind): canonical and not zero, else ValueError."""
    if not isinstance(data, bytes | bytearray) or not _G.is_scalar(bytes(data)) or not any(data):
        raise ValueError(f"{what} is not a canonical nonzero {SCALAR_SIZE}-byte scalar")
    return bytes(data)


def _peer_scalar(data: bytes, what: str) -> bytes:
    if not _G.is_scalar(data):
        raise MalformedMessage(f"{what} is not a canonical scalar (not below the group order)")
    return data


def _check_input(data: bytes) -> None:
    if len(data) > _MAX_LENGTH:
        raise ValueError(f"an OPRF input has at most {_MAX_LENGTH} bytes, this one {len(data)}")


def _mult(scalar: bytes, element: bytes, what: str) -> bytes:
    """``scalar * element``; an identity result (libsodium refuses it) is a MalformedMessage."""
    product = _G.scalar_mult(scalar, element)
    if product == _G.identity:
        raise MalformedMessage(f"{what}: the scalar multiplication gives the identity element")
    return product


def _output(input: bytes, unblinded: bytes) -> bytes:
    """The Finalize hash: ``lp(input) || lp(unblinded) || "Finalize"``."""
    return _G.hash(_lp(input) + _lp(unblinded) + b"Finalize")


# --- keys -------------------------------------------------------------------------------------


def derive_key_pair(seed: bytes, info: bytes, mode: int = MODE_VOPRF) -> KeyPair:
    """RFC 9497 DeriveKeyPair: a deterministic key from a 32-byte seed and public ``info``."""
    ctx = _context(mode)
    if len(seed) != SCALAR_SIZE:
        raise ValueError(f"DeriveKeyPair needs a {SCALAR_SIZE}-byte seed, not {len(seed)} bytes")
    if len(info) > _MAX_LENGTH:
        raise ValueError(f"DeriveKeyPair info has at most {_MAX_LENGTH} bytes")
    derive_input = bytes(seed) + _lp(bytes(info))
    for counter in range(256):
        secret = _G.hash_to_scalar(derive_input + _i2osp(counter, 1), ctx.derive_key_pair)
        if any(secret):
            return KeyPair(secret=secret, public=_G.scalar_mult_gen(secret))
    raise ValueError("DeriveKeyPairError: no nonzero scalar in 256 tries")  # pragma: no cover


def derive_organisation_key(seed: bytes, organisation: str) -> KeyPair:
    """One organisation's key: DeriveKeyPair(seed, info = the organisation id, UTF-8), VOPRF mode.

    Every organisation gets its own key from the key service's one seed, so adding an
    organisation needs no key ceremony (docs/adr/0007, with a test vector in docs/).
    """
    return derive_key_pair(seed, organisation.encode("utf-8"), MODE_VOPRF)


def generate_key_pair(mode: int = MODE_VOPRF) -> KeyPair:
    """A fresh random key: DeriveKeyPair from a random seed with info ``b"betrokken"``."""
    return derive_key_pair(secrets.token_bytes(SCALAR_SIZE), b"betrokken", mode)


# --- the protocol -----------------------------------------------------------------------------


def blind(
    input: bytes, mode: int = MODE_VOPRF, blind_scalar: bytes | None = None
) -> tuple[bytes, bytes]:
    """RFC 9497 Blind: ``(blind, blinded_element)``; the blind is random unless given."""
    ctx = _context(mode)
    _check_input(input)
    scalar = _G.random_scalar() if blind_scalar is None else _own_scalar(blind_scalar, "blind")
    element = _G.hash_to_group(input, ctx.hash_to_group)
    if element == _G.identity:  # pragma: no cover (probability about 2^-252)
        raise ValueError("InvalidInputError: the input hashes to the identity element")
    return scalar, _mult(scalar, element, "blinded element")


def _composites(
    ctx: _Context,
    public: bytes,
    c: Sequence[bytes],
    d: Sequence[bytes],
    secret: bytes | None = None,
) -> tuple[bytes, bytes]:
    """RFC 9497 ComputeComposites, in one pass; ComputeCompositesFast when ``secret`` is given."""
    seed = _G.hash(_lp(public) + _lp(ctx.seed))
    prefix = _lp(seed)
    m = z = _G.identity
    for i, (c_i, d_i) in enumerate(zip(c, d, strict=True)):
        transcript = prefix + _i2osp(i, 2) + _lp(c_i) + _lp(d_i) + b"Composite"
        weight = _G.hash_to_scalar(transcript, ctx.hash_to_scalar)
        m = _sum(m, _G.scalar_mult(weight, c_i))
        if secret is None:
            z = _sum(z, _G.scalar_mult(weight, d_i))
    if secret is not None:
        z = _G.scalar_mult(secret, m)
    return m, z


def _sum(a: bytes, b: bytes) -> bytes:
    """``a + b``, without a call into the group when ``a`` is the identity: the sums start at
    the identity, and libsodium's addition decodes and encodes both points (as costly as a
    quarter of a multiplication), for a result that is ``b``'s own canonical encoding."""
    return b if a == _G.identity else _G.add(a, b)


def _challenge(ctx: _Context, public: bytes, m: bytes, z: bytes, t2: bytes, t3: bytes) -> bytes:
    transcript = _lp(public) + _lp(m) + _lp(z) + _lp(t2) + _lp(t3) + b"Challenge"
    return _G.hash_to_scalar(transcript, ctx.hash_to_scalar)


def _generate_proof(
    ctx: _Context,
    secret: bytes,
    public: bytes,
    c: Sequence[bytes],
    d: Sequence[bytes],
    r: bytes,
) -> bytes:
    """RFC 9497 GenerateProof: the batched DLEQ proof ``c || s`` that ``d[i] = secret * c[i]``."""
    m, z = _composites(ctx, public, c, d, secret)
    t2 = _G.scalar_mult_gen(r)
    t3 = _G.scalar_mult(r, m)
    challenge = _challenge(ctx, public, m, z, t2, t3)
    s = _G.scalar_sub(r, _G.scalar_mul(challenge, secret))
    return challenge + s


def _verify_proof(
    ctx: _Context, public: bytes, c: Sequence[bytes], d: Sequence[bytes], proof: bytes
) -> bool:
    """RFC 9497 VerifyProof; a non-canonical proof scalar is a MalformedMessage."""
    challenge = _peer_scalar(proof[:SCALAR_SIZE], "proof scalar c")
    s = _peer_scalar(proof[SCALAR_SIZE:], "proof scalar s")
    m, z = _composites(ctx, public, c, d)
    t2 = _G.add(_G.scalar_mult_gen(s), _G.scalar_mult(challenge, public))
    t3 = _G.add(_G.scalar_mult(s, m), _G.scalar_mult(challenge, z))
    return hmac.compare_digest(_challenge(ctx, public, m, z, t2, t3), challenge)


def blind_evaluate(
    secret: bytes,
    blinded_elements: Sequence[bytes],
    mode: int = MODE_VOPRF,
    *,
    public: bytes | None = None,
    proof_scalar: bytes | None = None,
) -> tuple[list[bytes], bytes]:
    """RFC 9497 BlindEvaluate over a batch: ``(evaluated_elements, proof)``.

    Every blinded element is validated first (a bad one is a MalformedMessage naming its
    index). In VOPRF mode ``proof`` is the 64-byte batched DLEQ proof over the whole batch
    (``public`` defaults to ``secret * G``, the proof scalar is random unless given); in OPRF
    mode it is ``b""``.
    """
    return blind_evaluate_many(
        [(secret, public)],
        blinded_elements,
        mode,
        proof_scalars=None if proof_scalar is None else [proof_scalar],
    )[0]


def blind_evaluate_many(
    keys: Sequence[tuple[bytes, bytes | None]],
    blinded_elements: Sequence[bytes],
    mode: int = MODE_VOPRF,
    *,
    proof_scalars: Sequence[bytes] | None = None,
) -> list[tuple[list[bytes], bytes]]:
    """:func:`blind_evaluate` of one blinded batch under several keys ``(secret, public)``: per
    key exactly what :func:`blind_evaluate` returns (its own evaluation and its own proof); the
    batch is validated once, not once per key."""
    ctx = _context(mode)
    elements = _received_batch(blinded_elements, "blinded element")
    if proof_scalars is not None and len(proof_scalars) != len(keys):
        raise ValueError(f"{len(proof_scalars)} proof scalars for {len(keys)} keys")
    results = []
    for number, (key, public) in enumerate(keys):
        secret = _own_scalar(key, "the OPRF secret key")
        evaluated = [
            _mult(secret, element, f"evaluated element {index}")
            for index, element in enumerate(elements)
        ]
        if mode == MODE_OPRF:
            results.append((evaluated, b""))
            continue
        public = _G.scalar_mult_gen(secret) if public is None else bytes(public)
        r = (
            _G.random_scalar()
            if proof_scalars is None
            else _own_scalar(proof_scalars[number], "proof scalar")
        )
        results.append((evaluated, _generate_proof(ctx, secret, public, elements, evaluated, r)))
    return results


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
    """RFC 9497 Finalize over a batch: the 64-byte outputs, in the order of ``inputs``.

    Checks that the four lists have the same length and validates every evaluated element
    (MalformedMessage); in VOPRF mode it first verifies the batched proof against the pinned
    ``public`` key and raises VerificationError when it does not verify.
    """
    return finalize_many(
        inputs, blinds, blinded_elements, [(evaluated_elements, public, proof)], mode=mode
    )[0]


def finalize_many(
    inputs: Sequence[bytes],
    blinds: Sequence[bytes],
    blinded_elements: Sequence[bytes],
    evaluations: Sequence[tuple[Sequence[bytes], bytes | None, bytes]],
    *,
    mode: int = MODE_VOPRF,
) -> list[list[bytes]]:
    """:func:`finalize` of one blinded batch evaluated under several keys: each evaluation is
    ``(evaluated_elements, public, proof)`` and is checked exactly as :func:`finalize` checks
    it; what the evaluations share (the inputs, the blinded elements, the blinds and their
    inverses) is checked and computed once."""
    ctx = _context(mode)
    count = len(inputs)
    if not len(blinds) == len(blinded_elements) == count:
        raise MalformedMessage(
            f"batch lengths differ: {count} inputs, {len(blinds)} blinds, "
            f"{len(blinded_elements)} blinded elements"
        )
    blinded = [validate_element(e, f"blinded element {i}") for i, e in enumerate(blinded_elements)]
    scalars = [_own_scalar(b, f"blind {index}") for index, b in enumerate(blinds)]
    for data in inputs:
        _check_input(data)
    inverses: list[bytes] | None = None
    outputs = []
    for evaluated_elements, public, proof in evaluations:
        if len(evaluated_elements) != count:
            raise MalformedMessage(
                f"batch lengths differ: {count} inputs, {len(blinds)} blinds, "
                f"{len(blinded_elements)} blinded elements, "
                f"{len(evaluated_elements)} evaluated elements"
            )
        evaluated = _received_batch(evaluated_elements, "evaluated element")
        if mode == MODE_VOPRF:
            if public is None:
                raise ValueError("finalize in VOPRF mode needs the key service's pinned public key")
            public = _pinned_key(bytes(public))
            if len(proof) != PROOF_SIZE:
                raise MalformedMessage(
                    f"proof has the wrong size: {len(proof)} bytes, a proof has {PROOF_SIZE}"
                )
            if not _verify_proof(ctx, public, blinded, evaluated, bytes(proof)):
                raise VerificationError(
                    "the key service's proof does not verify against the pinned public key "
                    f"{public.hex()[:16]}…: the answer was not made with that key, or was altered",
                    hint="check that the network file pins the key service's current public key; "
                    "if it does, tell the network's administrators",
                )
        if inverses is None:
            inverses = [_G.scalar_inverse(scalar) for scalar in scalars]
        outputs.append(
            [
                _output(data, _mult(inverse, element, f"evaluated element {index}"))
                for index, (data, inverse, element) in enumerate(
                    zip(inputs, inverses, evaluated, strict=True)
                )
            ]
        )
    return outputs


@lru_cache(maxsize=256)
def _pinned_key(public: bytes) -> bytes:
    """A pinned public key, validated once (a bad one raises, and is not remembered)."""
    return validate_element(public, "the pinned public key")


def evaluate(secret: bytes, input: bytes, mode: int = MODE_VOPRF) -> bytes:
    """RFC 9497 Evaluate: the PRF without blinding, on the key's side (for tests and tooling)."""
    ctx = _context(mode)
    secret = _own_scalar(secret, "the OPRF secret key")
    _check_input(input)
    element = _G.hash_to_group(input, ctx.hash_to_group)
    if element == _G.identity:  # pragma: no cover (probability about 2^-252)
        raise ValueError("InvalidInputError: the input hashes to the identity element")
    return _output(input, _mult(secret, element, "evaluated element"))
