"""Build a challenge's calldata from a worker's manifest: pure, checked locally first.

``DisputeResolver.challenge(taskId, worker, Segment seg, bytes32 claimedNext)`` wants the
worker's ``(j, h_j)`` and ``(j+1, h_{j+1})`` with Merkle proofs against the worker's revealed
root (leaves ``keccak256(abi.encode(i, h_i))``, :mod:`veritrain.merkle`) and the hash this
verifier's replay produced. The proofs are verified here before any gas is spent.
"""

from __future__ import annotations

from dataclasses import dataclass

from veritrain import merkle
from veritrain.manifest import Manifest


class ChallengeError(ValueError):
    """The challenge would be refused on-chain (wrong segment, no disagreement, bad proof)."""


@dataclass(frozen=True)
class Challenge:
    task_id: int
    worker: str
    j: int
    h: bytes
    proof: tuple[bytes, ...]
    h_next: bytes
    proof_next: tuple[bytes, ...]
    claimed_next: bytes

    def segment(self) -> tuple[int, bytes, list[bytes], bytes, list[bytes]]:
        """The ``Segment`` struct in ABI order."""
        return (self.j, self.h, list(self.proof), self.h_next, list(self.proof_next))

    def args(self) -> tuple[int, str, tuple[int, bytes, list[bytes], bytes, list[bytes]], bytes]:
        return (self.task_id, self.worker, self.segment(), self.claimed_next)

    def as_dict(self) -> dict[str, object]:
        return {"task_id": self.task_id, "worker": self.worker, "segment": self.j,
                "h": "0x" + self.h.hex(), "h_next": "0x" + self.h_next.hex(),
                "claimed_next": "0x" + self.claimed_next.hex(),
                "proof": ["0x" + p.hex() for p in self.proof],
                "proof_next": ["0x" + p.hex() for p in self.proof_next]}


def build_challenge(manifest: Manifest, task_id: int, j: int, claimed_next: bytes,
                    *, root: bytes | None = None) -> Challenge:
    """The challenge of segment ``j`` of ``manifest``'s result; ``root`` defaults to the manifest's."""
    n = manifest.n_checkpoints
    if not 0 <= j < n - 1:
        raise ChallengeError(f"segment {j} does not exist: the result has segments 0..{n - 2}")
    if len(claimed_next) != 32:
        raise ChallengeError(f"claimed h_{{j+1}} must be 32 bytes, got {len(claimed_next)}")
    tree = merkle.MerkleTree(manifest.hashes)
    root = manifest.root_bytes() if root is None else root
    h, h_next = manifest.hash_bytes(j), manifest.hash_bytes(j + 1)
    if claimed_next == h_next:
        raise ChallengeError(f"no disagreement: the replay of segment {j} gives the worker's h_{j + 1}")
    proof, proof_next = tree.proof(j), tree.proof(j + 1)
    if not (merkle.verify(root, j, h, proof) and merkle.verify(root, j + 1, h_next, proof_next)):
        raise ChallengeError(f"the manifest's hashes do not prove against root 0x{root.hex()}")
    return Challenge(task_id, manifest.worker, j, h, tuple(proof), h_next, tuple(proof_next), claimed_next)
