"""RFC 6962 hashing against the RFC's recursive definitions, and the RFC 9162 proof verifiers."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from sas.events.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, written as the RFC states it."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


LEAVES = [f"entry {i}".encode() for i in range(70)]
HASHES = [leaf_hash(x) for x in LEAVES]


def test_prefixes_follow_rfc_6962() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert root([]) == EMPTY_ROOT == Frontier().root()


def test_root_and_frontier_equal_the_recursive_definition_at_every_size() -> None:
    frontier = Frontier()
    for n in range(len(LEAVES) + 1):
        assert root(HASHES[:n]) == mth(LEAVES[:n])
        assert frontier.root() == mth(LEAVES[:n])
        if n < len(LEAVES):
            frontier.append(HASHES[n])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12), st.integers(0, 3000))
def test_bulk_extend_equals_one_by_one(chunks: list[int], start: int) -> None:
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(start + sum(chunks))]
    bulk, single = Frontier(), Frontier()
    bulk.extend(hashes[:start])
    for h in hashes[:start]:
        single.append(h)
    pos = start
    for c in chunks:
        bulk.extend(hashes[pos : pos + c])
        for h in hashes[pos : pos + c]:
            single.append(h)
        pos += c
        assert bulk.size == single.size and bulk.nodes == single.nodes
    assert bulk.root() == root(hashes)


def test_frontier_can_be_restored_from_its_nodes() -> None:
    f = Frontier()
    f.extend(HASHES[:37])
    restored = Frontier(37, f.nodes)
    restored.extend(HASHES[37:])
    assert restored.root() == root(HASHES)


def test_inclusion_proofs_verify_for_every_leaf_and_size() -> None:
    for n in range(1, 40):
        r = root(HASHES[:n])
        for i in range(n):
            proof = inclusion_proof(HASHES, i, n)
            assert verify_inclusion(HASHES[i], i, n, proof, r)
            assert not verify_inclusion(leaf_hash(b"forged"), i, n, proof, r)
            if n > 1:
                assert not verify_inclusion(HASHES[i], (i + 1) % n, n, proof, r)


def test_consistency_proofs_verify_and_reject_forks() -> None:
    forked = [*HASHES[:20], leaf_hash(b"fork"), *HASHES[21:]]
    for m in range(1, 45):
        for n in range(m, 45):
            proof = consistency_proof(HASHES, m, n)
            assert verify_consistency(m, n, proof, root(HASHES[:m]), root(HASHES[:n]))
            if m > 20:
                assert not verify_consistency(m, n, proof, root(forked[:m]), root(HASHES[:n]))
            if n > 20 >= m and m != n:
                assert not verify_consistency(m, n, proof, root(HASHES[:m]), root(forked[:n]))


def test_rfc_6962_empty_and_single_leaf_known_answers() -> None:
    # values from the Certificate Transparency test vectors (merkle_tree_test.cc)
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root([leaf_hash(b"")]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
