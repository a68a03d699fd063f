"""``DisputeResolver.Segment`` calldata from a result's checkpoint hashes, for every role.

A segment ``j`` is shown by leaves ``(j, h_j)`` and ``(j + 1, h_{j+1})`` with their Merkle
proofs (:mod:`veritrain.merkle`, leaves ``keccak256(abi.encode(i, h_i))``). For an even ``j``
the two leaves are siblings, so the proof of leaf ``j`` starts with leaf ``j + 1`` and already
shows both: ``proofNext`` is sent empty (half the calldata; the contract accepts it). A
verifier holding the leaves sends this with ``challengeWithProof``; an accused worker sends it
with ``answer``.
"""

from __future__ import annotations

from collections.abc import Sequence

from veritrain import merkle

#: (j, h_j, proof_j, h_{j+1}, proof_{j+1}) in ABI order.
Segment = tuple[int, bytes, list[bytes], bytes, list[bytes]]


def segment(hashes: Sequence[bytes], j: int, tree: merkle.MerkleTree | None = None) -> Segment:
    """The Segment struct of segment ``j`` of the result with checkpoint hashes ``hashes``."""
    if not 0 <= j < len(hashes) - 1:
        raise ValueError(f"segment {j} does not exist: the result has segments 0..{len(hashes) - 2}")
    tree = tree or merkle.MerkleTree(list(hashes))
    h, h_next = bytes(hashes[j]), bytes(hashes[j + 1])
    proof = [bytes(p) for p in tree.proof(j)]
    if j % 2 == 0 and proof and proof[0] == merkle.leaf(j + 1, h_next):
        return (j, h, proof, h_next, [])
    return (j, h, proof, h_next, [bytes(p) for p in tree.proof(j + 1)])


def verify(root: bytes, seg: Segment) -> bool:
    """Whether ``seg`` proves both of its leaves against ``root`` (as the contract checks)."""
    j, h, proof, h_next, proof_next = seg
    if not merkle.verify(root, j, h, proof):
        return False
    if not proof_next and j % 2 == 0 and proof and bytes(proof[0]) == merkle.leaf(j + 1, h_next):
        return True
    return merkle.verify(root, j + 1, h_next, proof_next)
