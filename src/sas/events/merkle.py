"""RFC 6962 / RFC 9162 Merkle tree hashing with SHA-256: leaf ``H(0x00 || d)``, node ``H(0x01 || l || r)``.

Written here rather than taken from a library: the published Python implementations are either services
(Trillian, Tessera clients) or unmaintained, the algorithms are a page long, and the writer needs only an
append-only *frontier* (the roots of the perfect subtrees left of the next leaf, at most log2(n) hashes), which
costs one node hash per leaf amortised and no memory that grows with the log. The reader side builds trees in
bulk, level by level, which equals the recursive RFC definition (the odd node of a level moves up unchanged).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import sha256
else:

    def sha256(data: bytes = b""):
        """hashlib's ``sha256``, imported by the first call, which rebinds this name to it.

        The ledger writer loads this module at cold start but hashes only at its first batch or checkpoint;
        importing hashlib (OpenSSL's ``_hashlib``) would add ~2 ms to every cold start for nothing. A function
        that bound this one to a local before the first call goes through it (an import lookup, ~0.6 µs a
        hash) until it returns; every later call finds hashlib's.
        """
        global sha256  # noqa: PLW0603 - rebinding itself to the real one is the point
        from hashlib import sha256

        return sha256(data)


HASH_SIZE = 32
EMPTY_ROOT = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")  # SHA-256 of b""


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def leaf_hashes(leaves: Iterable[bytes]) -> list[bytes]:
    """Hash many leaves; a comprehension over a bound function is the fastest pure-Python form."""
    h = sha256
    return [h(b"\x00" + d).digest() for d in leaves]


def leaf_hashes_packed(data: bytes, ends: Sequence[int]) -> list[bytes]:
    """Leaf hashes of entries packed as ``0x00 || entry`` back to back, ``ends[i]`` closing entry ``i``.

    The writer packs its buffer this way so that each leaf's input is one slice: no per-entry concatenation.
    """
    h = sha256
    return [h(data[a:b]).digest() for a, b in zip((0, *ends[:-1]), ends, strict=True)]


def _parent_level(level: Sequence[bytes]) -> list[bytes]:
    h = sha256
    up = [h(b"\x01" + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=False)]
    if len(level) % 2:
        up.append(level[-1])
    return up


def root(hashes: Sequence[bytes]) -> bytes:
    """The tree head over leaf hashes (RFC 6962 MTH)."""
    if not hashes:
        return EMPTY_ROOT
    level: Sequence[bytes] = hashes
    while len(level) > 1:
        level = _parent_level(level)
    return level[0]


class Frontier:
    """The right edge of an append-only tree: enough to append and to compute the root at any size."""

    __slots__ = ("nodes", "size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != bin(size).count("1"):
            raise ValueError("frontier does not match its size")
        self.size = size
        # nodes[i] is a perfect subtree; sizes are the set bits of ``size``, largest first
        self.nodes: list[bytes] = list(nodes)

    def copy(self) -> Frontier:
        return Frontier(self.size, self.nodes)

    def append(self, h: bytes) -> None:
        size = self.size
        nodes = self.nodes
        while size & 1:
            h = sha256(b"\x01" + nodes.pop() + h).digest()
            size >>= 1
        nodes.append(h)
        self.size += 1

    def extend(self, hashes: Sequence[bytes]) -> None:
        """Append many leaf hashes, one level at a time (comprehensions instead of a loop per leaf)."""
        if not hashes:
            return
        nodes = self.nodes
        start = self.size  # index of level[0] at the current height
        level: list[bytes] = list(hashes)
        dangling: list[bytes] = []  # new frontier nodes, smallest height first
        h = sha256
        while level:
            if start & 1:  # the frontier's smallest node is level[0]'s left sibling
                level.insert(0, nodes.pop())
                start -= 1
            if len(level) & 1:
                dangling.append(level.pop())
            level = [h(b"\x01" + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=True)]
            start >>= 1
        nodes.extend(reversed(dangling))
        self.size += len(hashes)

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        r = self.nodes[-1]
        for left in reversed(self.nodes[:-1]):
            r = sha256(b"\x01" + left + r).digest()
        return r


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(hashes: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """RFC 6962 PATH(index, D[0:size]): sibling hashes from the leaf up to the root's child."""
    n = len(hashes) if size is None else size
    if not 0 <= index < n <= len(hashes):
        raise ValueError("index out of range")
    proof: list[bytes] = []
    lo, hi, m = 0, n, index
    # collect top-down, then reverse: the wire order is bottom-up
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            proof.append(root(hashes[lo + k : hi]))
            hi = lo + k
        else:
            proof.append(root(hashes[lo : lo + k]))
            lo, m = lo + k, m - k
    proof.reverse()
    return proof


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root that ``proof`` implies for leaf hash ``leaf``, or ``None`` if malformed."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes) -> bool:
    return root_from_inclusion(leaf, index, size, proof) == expected_root


def consistency_proof(hashes: Sequence[bytes], old_size: int, new_size: int | None = None) -> list[bytes]:
    """RFC 6962 PROOF(m, D[0:n])."""
    n = len(hashes) if new_size is None else new_size
    if not 0 < old_size <= n <= len(hashes):
        raise ValueError("sizes out of range")
    proof: list[bytes] = []

    def sub(m: int, lo: int, hi: int, complete: bool) -> None:
        if m == hi - lo:
            if not complete:
                proof.append(root(hashes[lo:hi]))
            return
        k = _split(hi - lo)
        if m <= k:
            sub(m, lo, lo + k, complete)
            proof.append(root(hashes[lo + k : hi]))
        else:
            sub(m - k, lo + k, hi, False)
            proof.append(root(hashes[lo : lo + k]))

    sub(old_size, 0, n, True)
    return proof


def verify_consistency(old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> bool:
    """RFC 9162 §2.1.4.2."""
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof or not 0 < old_size < new_size or any(len(p) != HASH_SIZE for p in proof):
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is itself the first node
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
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
