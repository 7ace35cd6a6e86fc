"""RFC 9162 (as RFC 6962) Merkle tree hashing with SHA-256: roots, proofs, verification.

Pure functions, no I/O. Two ways to make proofs:

* from all leaf hashes (``inclusion_proof``, ``consistency_proof``): the RFC's definition, O(n);
* from the hashes of perfect subtrees (``inclusion_proof_from``, ``consistency_proof_from``): a
  store that keeps the hash of every full subtree of 2**level leaves (as the C2SP tlog-tiles
  layout does) answers in O(log n) look-ups. ``inclusion_subtrees`` / ``consistency_subtrees``
  say beforehand which subtrees a proof needs, so a store can fetch them in one query.

A perfect subtree is named ``(level, index)``: the 2**level leaves from ``index * 2**level`` on;
level 0 is a leaf. ``stored_position`` numbers subtrees in the order an append completes them
(post-order, the tlog "stored hash index"), so stored hashes can be kept and read in that order.

``Frontier`` keeps only the right edge of the tree (one hash per set bit of the size), enough to
append, to compute the root and to name the subtrees each append completes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import lru_cache

from betrokken.errors import MalformedMessage

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
# The ranges a proof is made of depend only on the sizes (and index) asked for, so a service that
# makes the same few proofs for many parties works each list out once: the lists are kept (as
# tuples, so no caller can change them) for the most recent few thousand sizes asked.
RANGES_KEPT = 4096


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    # Bottom-up: pair neighbours; an odd last node is carried up unchanged (same as RFC's MTH).
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 section 2.1.3.1."""
    if not 0 <= index < len(leaves):
        raise MalformedMessage(f"no leaf {index} in a tree of {len(leaves)}")
    return _path(index, leaves)


def _path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, leaves[:k]), root(leaves[k:])]
    return [*_path(m - k, leaves[k:]), root(leaves[:k])]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in proof):
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 section 2.1.4.1."""
    n = len(leaves)
    if not 0 <= old_size <= n:
        raise MalformedMessage(f"no consistency proof from {old_size} to {n}")
    if old_size in (0, n):
        return []
    return _subproof(old_size, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root(leaves[:k])]


# --- proofs from perfect subtrees --------------------------------------------------------------
Subtree = tuple[int, int]
"""A perfect subtree ``(level, index)``: the 2**level leaves from ``index * 2**level`` on."""

SubtreeHash = Callable[[int, int], bytes]
"""Returns the hash of the perfect subtree ``(level, index)`` (level 0: a leaf hash)."""


def subtree_range(level: int, index: int) -> tuple[int, int]:
    """The leaves ``[start, end)`` a perfect subtree covers."""
    return index << level, (index + 1) << level


def _leaf_position(m: int) -> int:
    # Leaf m comes after every hash completed before it: m leaves and m - popcount(m) parents.
    return 2 * m - m.bit_count()


def stored_position(level: int, index: int) -> int:
    """Where subtree ``(level, index)`` comes in the order appends complete subtrees.

    Appending leaf m writes the leaf and then each parent it completes, lowest first; this
    numbers those hashes 0, 1, 2, ... (as tlog's StoredHashIndex). Ordering by it gives every
    subtree after its children, and everything completed by leaves before ``m`` sorts before
    ``stored_position(0, m)``.
    """
    if level < 0 or index < 0:
        raise MalformedMessage(f"no subtree ({level}, {index})")
    last = ((index + 1) << level) - 1
    return _leaf_position(last) + level


def subtree_at(position: int) -> Subtree:
    """The inverse of ``stored_position``."""
    if position < 0:
        raise MalformedMessage(f"no subtree at position {position}")
    m = position // 2  # _leaf_position(m) <= 2m <= position
    while _leaf_position(m + 1) <= position:
        m += 1
    level = position - _leaf_position(m)
    return level, ((m + 1) >> level) - 1


def range_subtrees(start: int, end: int) -> list[Subtree]:
    """The perfect subtrees that make up MTH(D[start:end]), largest first.

    ``start`` must be a multiple of the largest power of two not above ``end - start``, which
    holds for every range an RFC 9162 proof names (and for every prefix ``[0, size)``).
    """
    return list(_range_subtrees(start, end))


@lru_cache(maxsize=RANGES_KEPT)
def _range_subtrees(start: int, end: int) -> tuple[Subtree, ...]:
    size = end - start
    if start < 0 or size <= 0 or start % (1 << (size.bit_length() - 1)):
        raise MalformedMessage(f"leaves {start}..{end - 1} are not a subtree range")
    nodes = []
    while start < end:
        level = (end - start).bit_length() - 1
        nodes.append((level, start >> level))
        start += 1 << level
    return tuple(nodes)


def range_hash(start: int, end: int, subtree: SubtreeHash) -> bytes:
    """MTH(D[start:end]) from the hashes of its perfect subtrees (see ``range_subtrees``)."""
    nodes = _range_subtrees(start, end)
    result = subtree(*nodes[-1])
    for level, index in reversed(nodes[:-1]):
        result = node_hash(subtree(level, index), result)
    return result


def root_from(size: int, subtree: SubtreeHash) -> bytes:
    """MTH(D[size]) from the perfect subtrees on its right edge."""
    if size < 0:
        raise MalformedMessage(f"no tree of size {size}")
    return range_hash(0, size, subtree) if size else EMPTY_ROOT


@lru_cache(maxsize=RANGES_KEPT)
def _inclusion_ranges(index: int, size: int) -> tuple[tuple[int, int], ...]:
    return tuple(_inclusion_walk(index, size))


def _inclusion_walk(index: int, size: int) -> list[tuple[int, int]]:
    if not 0 <= index < size:
        raise MalformedMessage(f"no leaf {index} in a tree of {size}")
    ranges = []  # PATH(m, D[n]) walked from the top: each step's sibling range
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    return ranges[::-1]  # the proof lists the deepest sibling first


@lru_cache(maxsize=RANGES_KEPT)
def _consistency_ranges(old_size: int, new_size: int) -> tuple[tuple[int, int], ...]:
    return tuple(_consistency_walk(old_size, new_size))


def _consistency_walk(old_size: int, new_size: int) -> list[tuple[int, int]]:
    if not 0 <= old_size <= new_size:
        raise MalformedMessage(f"no consistency proof from {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    ranges = []  # SUBPROOF(m, D[n], b) walked from the top
    lo, hi, m, complete = 0, new_size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        ranges.append((lo, hi))
    return ranges[::-1]


def _needed(ranges: Sequence[tuple[int, int]]) -> tuple[Subtree, ...]:
    return tuple(dict.fromkeys(n for start, end in ranges for n in _range_subtrees(start, end)))


@lru_cache(maxsize=RANGES_KEPT)
def _inclusion_needed(index: int, size: int) -> tuple[Subtree, ...]:
    return _needed(_inclusion_ranges(index, size))


@lru_cache(maxsize=RANGES_KEPT)
def _consistency_needed(old_size: int, new_size: int) -> tuple[Subtree, ...]:
    return _needed(_consistency_ranges(old_size, new_size))


def inclusion_subtrees(index: int, size: int) -> list[Subtree]:
    """The perfect subtrees whose hashes ``inclusion_proof_from`` asks for (at most 2 log2 n)."""
    return list(_inclusion_needed(index, size))


def consistency_subtrees(old_size: int, new_size: int) -> list[Subtree]:
    """The perfect subtrees whose hashes ``consistency_proof_from`` asks for."""
    return list(_consistency_needed(old_size, new_size))


def inclusion_proof_from(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 section 2.1.3.1, from perfect-subtree hashes."""
    return [range_hash(start, end, subtree) for start, end in _inclusion_ranges(index, size)]


def consistency_proof_from(old_size: int, new_size: int, subtree: SubtreeHash) -> list[bytes]:
    """PROOF(old_size, D[new_size]) of RFC 9162 section 2.1.4.1, from perfect-subtree hashes."""
    return [
        range_hash(start, end, subtree) for start, end in _consistency_ranges(old_size, new_size)
    ]


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if old_size < 0 or new_size < old_size or any(len(p) != HASH_SIZE for p in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class Frontier:
    """The perfect subtrees on the right edge of a tree, largest first."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != bin(size).count("1"):
            raise MalformedMessage(f"a frontier of size {size} has {bin(size).count('1')} hashes")
        if any(len(h) != HASH_SIZE for h in hashes):
            raise MalformedMessage("frontier hashes must be 32 bytes")
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf; returns the subtrees it completes as (level, index, hash), lowest first.

        (Level 0, the leaf itself, is not listed.)
        """
        node = leaf
        size = self.size
        completed = []
        level = 0
        while size & 1:  # merge with equal-sized subtrees, like carrying in binary addition
            node = node_hash(self.hashes.pop(), node)
            size >>= 1
            level += 1
            completed.append((level, ((self.size + 1) >> level) - 1, node))
        self.hashes.append(node)
        self.size += 1
        return completed

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        result = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            result = node_hash(left, result)
        return result

    def to_json(self) -> dict[str, object]:
        return {"size": self.size, "hashes": [h.hex() for h in self.hashes]}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Frontier:
        try:
            size = int(data["size"])  # type: ignore[call-overload]
            hashes = [bytes.fromhex(str(h)) for h in data["hashes"]]  # type: ignore[attr-defined]
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"not a frontier: {exc}") from None
        return cls(size, hashes)
