"""The commitment tree: leaves, sorted-pair hashing, promoted odd nodes, proofs."""

from __future__ import annotations

import hashlib

import pytest
from eth_abi import encode
from eth_utils import keccak

from veritrain import merkle


def hs(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]


def test_leaf_is_keccak_of_abi_encoded_index_and_hash() -> None:
    h = hs(1)[0]
    assert merkle.leaf(5, h) == keccak(encode(["uint256", "bytes32"], [5, h]))
    assert merkle.leaf(5, "0x" + h.hex()) == merkle.leaf(5, h)


def test_three_leaf_root_by_hand() -> None:
    a, b, c = (merkle.leaf(i, h) for i, h in enumerate(hs(3)))
    ab = keccak(min(a, b) + max(a, b))
    expected = keccak(min(ab, c) + max(ab, c))  # c is promoted to level 1
    assert merkle.root(hs(3)) == expected
    assert merkle.MerkleTree(hs(3)).proof(2) == [ab]


def test_single_leaf_root_is_leaf_with_empty_proof() -> None:
    t = merkle.MerkleTree(hs(1))
    assert t.root == merkle.leaf(0, hs(1)[0]) and t.proof(0) == []
    assert merkle.verify(t.root, 0, hs(1)[0], [])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33])
def test_every_proof_verifies_and_wrong_index_or_hash_fails(n: int) -> None:
    h = hs(n)
    t = merkle.MerkleTree(h)
    proofs = t.proofs()
    assert proofs == [t.proof(i) for i in range(n)]
    for i in range(n):
        assert merkle.verify(t.root, i, h[i], proofs[i])
        assert not merkle.verify(t.root, i, hashlib.sha256(b"x").digest(), proofs[i])
        if n > 1:
            assert not merkle.verify(t.root, (i + 1) % n, h[i], proofs[i])


def test_changing_any_hash_changes_root() -> None:
    h = hs(10)
    base = merkle.root(h)
    for i in range(10):
        g = list(h)
        g[i] = bytes(32)
        assert merkle.root(g) != base


def test_bad_input_is_rejected_with_clear_message() -> None:
    with pytest.raises(ValueError, match="at least one"):
        merkle.MerkleTree([])
    with pytest.raises(ValueError, match="h_1 must be 32 bytes"):
        merkle.MerkleTree([bytes(32), b"short"])
    with pytest.raises(IndexError, match="out of range 0..2"):
        merkle.MerkleTree(hs(3)).proof(3)


def test_100k_leaves_and_all_proofs() -> None:
    """Size only: the speed is a benchmark (merkle_100k_seconds), never a timed test."""
    h = hs(100_001)
    t = merkle.MerkleTree(h)
    proofs = t.proofs()
    assert len(proofs) == 100_001 and len(proofs[12345]) == 17
    assert merkle.verify(t.root, 12345, h[12345], proofs[12345])
    assert not merkle.verify(t.root, 12346, h[12345], proofs[12345])
