"""Our proofs against OpenZeppelin's MerkleProof on the real chain, both ways."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from veritrain import merkle
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_contract

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def harness(w3):  # type: ignore[no-untyped-def]
    return deploy_contract(w3, dev_account(0), "MerkleHarness", folder=ARTIFACTS)


def hs(n: int) -> list[bytes]:
    return [hashlib.sha256(b"ckpt" + i.to_bytes(4, "big")).digest() for i in range(n)]


def test_leaf_matches_contract(harness) -> None:  # type: ignore[no-untyped-def]
    h = hs(1)[0]
    assert harness.functions.leaf(2**255 + 3, h).call() == merkle.leaf(2**255 + 3, h)


@pytest.mark.parametrize("n", [1, 2, 5, 13])
def test_contract_accepts_our_proofs_and_refuses_wrong_ones(harness, n: int) -> None:  # type: ignore[no-untyped-def]
    h = hs(n)
    t = merkle.MerkleTree(h)
    for i in range(n):
        proof = t.proof(i)
        assert harness.functions.verify(proof, t.root, i, h[i]).call() is True
        assert harness.functions.verify(proof, t.root, i, bytes(32)).call() is False
        if n > 1:
            assert harness.functions.verify(proof, t.root, (i + 1) % n, h[i]).call() is False


def test_contract_root_equals_ours_and_our_verify_refuses_its_tampering(harness) -> None:  # type: ignore[no-untyped-def]
    h = hs(9)
    t = merkle.MerkleTree(h)
    for i in (0, 4, 8):
        assert harness.functions.processProof(t.proof(i), merkle.leaf(i, h[i])).call() == t.root
    tampered = list(t.proof(3))
    tampered[0] = bytes(32)
    root_of_tampered = harness.functions.processProof(tampered, merkle.leaf(3, h[3])).call()
    assert root_of_tampered != t.root
    assert merkle.process_proof(merkle.leaf(3, h[3]), tampered) == root_of_tampered
    assert not merkle.verify(t.root, 3, h[3], tampered)
