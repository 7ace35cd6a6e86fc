"""RFC 9162 Merkle tree: reference roots, proofs for every size up to 300, tampering rejected."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from betrokken.crypto import merkle
from betrokken.errors import MalformedMessage

# The RFC 6962 test leaves used by Certificate Transparency implementations.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]


def naive_root(data: list[bytes]) -> bytes:
    """MTH straight from the RFC's recursive definition."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < len(data):
        k *= 2
    return hashlib.sha256(b"\x01" + naive_root(data[:k]) + naive_root(data[k:])).digest()


def test_reference_roots() -> None:
    hashes = [merkle.leaf_hash(d) for d in CT_LEAVES]
    assert merkle.root(hashes[:1]).hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert merkle.root(hashes).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )
    for n in range(9):
        assert merkle.root(hashes[:n]) == naive_root(CT_LEAVES[:n])
    assert merkle.root([]) == merkle.EMPTY_ROOT


def _tree(n: int) -> list[bytes]:
    return ALL_LEAVES[:n]


ALL_LEAVES = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(300)]


def _prefix_roots() -> list[bytes]:
    frontier = merkle.Frontier()
    roots = [frontier.root()]
    for leaf in ALL_LEAVES:
        frontier.append(leaf)
        roots.append(frontier.root())
    return roots


PREFIX_ROOTS = _prefix_roots()


# --- proofs from perfect-subtree hashes (what a store of subtree hashes answers with) ------------
def _subtree_store(leaves: list[bytes]) -> dict[merkle.Subtree, bytes]:
    """Every perfect subtree's hash, recorded as a Frontier completes them."""
    store: dict[merkle.Subtree, bytes] = {}
    frontier = merkle.Frontier()
    for index, leaf in enumerate(leaves):
        store[(0, index)] = leaf
        for level, i, value in frontier.append(leaf):
            store[(level, i)] = value
    return store


STORE = _subtree_store(ALL_LEAVES)


def _lookup(n: int, asked: list[merkle.Subtree]) -> merkle.SubtreeHash:
    def subtree(level: int, index: int) -> bytes:
        assert (index + 1) << level <= n, f"({level}, {index}) is not complete at size {n}"
        asked.append((level, index))
        return STORE[(level, index)]

    return subtree


@pytest.mark.parametrize("n", range(1, 301))
def test_every_proof_verifies_for_every_size_up_to_300(n: int) -> None:
    """All n <= 300: every index's inclusion proof and every m <= n consistency proof.

    The same proofs made from perfect-subtree hashes are equal, and ask for exactly the
    subtrees ``inclusion_subtrees`` / ``consistency_subtrees`` name (at most 2 log2 n).
    """
    leaves = _tree(n)
    root = merkle.root(leaves)
    assert PREFIX_ROOTS[n] == root  # the frontier agrees with the full computation
    asked: list[merkle.Subtree] = []
    assert merkle.root_from(n, _lookup(n, asked)) == root
    assert set(asked) == set(merkle.range_subtrees(0, n))
    for i in range(n):
        proof = merkle.inclusion_proof(leaves, i)
        assert merkle.verify_inclusion(leaves[i], i, n, proof, root)
        asked.clear()
        assert merkle.inclusion_proof_from(i, n, _lookup(n, asked)) == proof
        needed = merkle.inclusion_subtrees(i, n)
        assert set(asked) == set(needed) and len(needed) == len(set(needed))
        assert len(needed) <= 2 * n.bit_length()
    for m in range(n + 1):
        proof = merkle.consistency_proof(leaves, m)
        assert merkle.verify_consistency(m, n, PREFIX_ROOTS[m], root, proof)
        asked.clear()
        assert merkle.consistency_proof_from(m, n, _lookup(n, asked)) == proof
        needed = merkle.consistency_subtrees(m, n)
        assert set(asked) == set(needed) and len(needed) <= 2 * n.bit_length()
    frontier = merkle.Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert merkle.Frontier.from_json(frontier.to_json()).root() == root


def _flip(hashes: list[bytes], which: int, bit: int) -> list[bytes]:
    changed = list(hashes)
    value = bytearray(changed[which])
    value[bit // 8] ^= 1 << (bit % 8)
    changed[which] = bytes(value)
    return changed


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 300), st.data())
def test_altered_inclusion_proofs_are_rejected(n: int, data: st.DataObject) -> None:
    leaves = _tree(n)
    root = merkle.root(leaves)
    i = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(leaves, i)
    assert merkle.verify_inclusion(leaves[i], i, n, proof, root)
    which = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    assert not merkle.verify_inclusion(leaves[i], i, n, _flip(proof, which, bit), root)
    assert not merkle.verify_inclusion(leaves[i], i, n, proof[:-1], root)
    assert not merkle.verify_inclusion(leaves[i], i, n, [*proof, root], root)
    assert not merkle.verify_inclusion(leaves[i], i, n, proof, _flip([root], 0, bit)[0])
    other = data.draw(st.integers(0, n - 1).filter(lambda j: j != i))
    assert not merkle.verify_inclusion(leaves[i], other, n, proof, root)
    assert not merkle.verify_inclusion(leaves[i], i, i, proof, root)  # index >= size


def test_a_wrong_size_is_rejected_when_it_changes_the_path() -> None:
    # (A size is only meaningful together with its signed root; where two sizes give the same
    # path shape, the root decides.)
    leaves = _tree(5)
    root = merkle.root(leaves)
    proof = merkle.inclusion_proof(leaves, 4)
    assert merkle.verify_inclusion(leaves[4], 4, 5, proof, root)
    for size in (6, 7, 8, 9, 16):
        assert not merkle.verify_inclusion(leaves[4], 4, size, proof, root)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 300), st.data())
def test_altered_consistency_proofs_are_rejected(n: int, data: st.DataObject) -> None:
    leaves = _tree(n)
    m = data.draw(st.integers(1, n - 1))
    old, new = merkle.root(leaves[:m]), merkle.root(leaves)
    proof = merkle.consistency_proof(leaves, m)
    assert merkle.verify_consistency(m, n, old, new, proof)
    which = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    assert not merkle.verify_consistency(m, n, old, new, _flip(proof, which, bit))
    assert not merkle.verify_consistency(m, n, old, new, proof[:-1])
    assert not merkle.verify_consistency(m, n, old, new, [*proof, new])
    assert not merkle.verify_consistency(m, n, _flip([old], 0, bit)[0], new, proof)
    assert not merkle.verify_consistency(m, n, old, _flip([new], 0, bit)[0], proof)
    assert not merkle.verify_consistency(n, m, new, old, proof)  # sizes the wrong way round
    assert not merkle.verify_consistency(m, m - 1, old, new, proof)


def test_a_wrong_size_is_rejected_when_it_changes_the_proof_shape() -> None:
    leaves = _tree(7)
    old, new = merkle.root(leaves[:3]), merkle.root(leaves)
    proof = merkle.consistency_proof(leaves, 3)
    assert merkle.verify_consistency(3, 7, old, new, proof)
    for m, n in ((2, 7), (4, 7), (5, 7), (3, 9), (3, 16)):
        assert not merkle.verify_consistency(m, n, old, new, proof)


def test_bad_inputs_never_raise() -> None:
    leaves = _tree(5)
    root = merkle.root(leaves)
    assert not merkle.verify_inclusion(leaves[0], -1, 5, [], root)
    assert not merkle.verify_inclusion(leaves[0], 0, 5, [b"short"], root)
    assert not merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, root, [root])
    assert merkle.verify_consistency(5, 5, root, root, [])
    assert not merkle.verify_consistency(5, 5, root, root, [root])
    with pytest.raises(Exception):
        merkle.Frontier(3, [root])


def test_the_frontier_names_the_subtrees_each_append_completes() -> None:
    frontier = merkle.Frontier()
    order: list[merkle.Subtree] = []
    for index, leaf in enumerate(ALL_LEAVES):
        order.append((0, index))
        for level, i, value in frontier.append(leaf):
            start, end = merkle.subtree_range(level, i)
            assert end == index + 1 and value == merkle.root(ALL_LEAVES[start:end])
            order.append((level, i))
    # Stored positions number the hashes in exactly this order, and invert.
    assert [merkle.stored_position(level, i) for level, i in order] == list(range(len(order)))
    assert [merkle.subtree_at(p) for p in range(len(order))] == order


@given(st.integers(0, 40), st.integers(0, 2**40))
def test_stored_positions_invert_at_any_scale(level: int, index: int) -> None:
    position = merkle.stored_position(level, index)
    assert merkle.subtree_at(position) == (level, index)
    # Everything completed before leaf m (so by a tree of size m) sorts before leaf m.
    end = merkle.subtree_range(level, index)[1]
    assert position < merkle.stored_position(0, end)
    assert position >= merkle.stored_position(0, end - 1)


def test_ranges_that_are_not_rfc_subtree_ranges_are_refused() -> None:
    assert merkle.range_subtrees(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert merkle.range_subtrees(8, 13) == [(2, 2), (0, 12)]
    for start, end in ((1, 3), (2, 6), (4, 4), (5, 4), (-1, 0), (4, 12)):
        with pytest.raises(MalformedMessage):
            merkle.range_subtrees(start, end)
    with pytest.raises(MalformedMessage):
        merkle.inclusion_subtrees(5, 5)
    with pytest.raises(MalformedMessage):
        merkle.consistency_subtrees(6, 5)
    with pytest.raises(MalformedMessage):
        merkle.stored_position(-1, 0)
