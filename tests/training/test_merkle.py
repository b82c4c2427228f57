"""Merkle tree: RFC 6962 test vectors and inclusion proofs that bind leaf, index and size."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pot_impl.training.merkle import MerkleTree, verify_inclusion

# RFC 6962 reference leaves and roots of their prefixes (as used by Certificate Transparency's tests).
RFC6962_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
RFC6962_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_roots_match_rfc6962_vectors() -> None:
    for size, expected in enumerate(RFC6962_ROOTS, start=1):
        assert MerkleTree(RFC6962_LEAVES[:size]).root.hex() == expected


leaf_lists = st.lists(st.binary(max_size=40), min_size=1, max_size=70)


@settings(max_examples=150, deadline=None)
@given(leaves=leaf_lists, data=st.data())
def test_every_leaf_has_a_verifying_path(leaves: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    assert verify_inclusion(tree.root, len(leaves), index, leaves[index], tree.inclusion_path(index))


@settings(max_examples=150, deadline=None)
@given(leaves=leaf_lists, data=st.data())
def test_paths_do_not_verify_anything_else(leaves: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = tree.inclusion_path(index)
    other_leaf = data.draw(st.binary(max_size=40).filter(lambda b: b != leaves[index]))
    assert not verify_inclusion(tree.root, len(leaves), index, other_leaf, path)
    other_index = data.draw(st.integers(0, len(leaves)))
    if other_index != index and (other_index >= len(leaves) or leaves[other_index] != leaves[index]):
        assert not verify_inclusion(tree.root, len(leaves), other_index, leaves[index], path)
    if path:
        position = data.draw(st.integers(0, len(path) - 1))
        flipped = bytes([path[position][0] ^ 1]) + path[position][1:]
        tampered = [*path[:position], flipped, *path[position + 1 :]]
        assert not verify_inclusion(tree.root, len(leaves), index, leaves[index], tampered)
        assert not verify_inclusion(tree.root, len(leaves), index, leaves[index], path[:-1])


@settings(max_examples=100, deadline=None)
@given(leaves=leaf_lists, extra=st.lists(st.binary(max_size=40), min_size=1, max_size=5))
def test_different_leaf_lists_have_different_roots(leaves: list[bytes], extra: list[bytes]) -> None:
    # The duplicated-last-leaf ambiguity of naive trees must not exist: appending changes the root.
    assert MerkleTree(leaves).root != MerkleTree(leaves + extra).root
    assert MerkleTree(leaves).root != MerkleTree(leaves + leaves[-1:]).root
