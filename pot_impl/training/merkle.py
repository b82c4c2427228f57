"""Merkle tree over segment leaves, as in RFC 6962 / RFC 9162 (Certificate Transparency).

Leaves and interior nodes are hashed with distinct prefixes (0x00, 0x01), and
an odd subtree is never padded by duplicating a leaf, so no two different
leaf lists share a root (the duplicated-last-leaf ambiguity of Bitcoin's tree
cannot arise). Inclusion proofs are verified with RFC 9162's algorithm, which
also binds the leaf index and the tree size.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(size: int) -> int:
    """Largest power of two strictly below ``size`` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


class MerkleTree:
    """The tree over a fixed list of leaves; builds each subtree hash once."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        self._hashes = [leaf_hash(leaf) for leaf in leaves]
        self._subtree = functools.lru_cache(maxsize=None)(self._compute)

    @property
    def size(self) -> int:
        return len(self._hashes)

    @property
    def root(self) -> bytes:
        return self._subtree(0, self.size)

    def _compute(self, start: int, end: int) -> bytes:
        if end - start == 1:
            return self._hashes[start]
        middle = start + _split(end - start)
        return node_hash(self._subtree(start, middle), self._subtree(middle, end))

    def inclusion_path(self, index: int) -> list[bytes]:
        """Sibling hashes from the leaf up to the root (RFC 9162 order)."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} outside a tree of {self.size}")
        path: list[bytes] = []
        start, end = 0, self.size
        while end - start > 1:
            middle = start + _split(end - start)
            if index < middle:
                path.append(self._subtree(middle, end))
                end = middle
            else:
                path.append(self._subtree(start, middle))
                start = middle
        path.reverse()
        return path


def verify_inclusion(root: bytes, size: int, index: int, leaf: bytes, path: Sequence[bytes]) -> bool:
    """True iff ``leaf`` is leaf ``index`` of the ``size``-leaf tree with ``root`` (RFC 9162, 2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    running = leaf_hash(leaf)
    for sibling in path:
        if sn == 0 or len(sibling) != 32:
            return False
        if fn & 1 or fn == sn:
            running = node_hash(sibling, running)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            running = node_hash(running, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and running == root
