"""Build a challenge's calldata: pure, checked locally first.

Two ways to open a dispute (docs/verifier.md, "Challenges"):

- ``DisputeResolver.challengeWithProof(taskId, worker, Segment seg, bytes32 claimedNext)``
  when this verifier holds the worker's leaves (it replayed from the worker's manifest): the
  worker's ``(j, h_j)`` and ``(j+1, h_{j+1})`` with Merkle proofs against its revealed root
  (:mod:`veritrain.chain.segments`; for an even ``j`` one proof shows both leaves). The
  proofs are verified here before any gas is spent. No answer from the worker is needed.
- ``DisputeResolver.challenge(taskId, worker, j, claimedNext)`` when it does not (the
  manifest cannot be fetched, or does not match the revealed root): nothing is proven, and
  data availability is the worker's burden: it must answer on-chain with its leaves and
  proofs within the response window, or lose.
"""

from __future__ import annotations

from dataclasses import dataclass

from veritrain.chain import segments
from veritrain.manifest import Manifest


class ChallengeError(ValueError):
    """The challenge would be refused on-chain (wrong segment, no disagreement, bad proof)."""


@dataclass(frozen=True)
class Challenge:
    task_id: int
    worker: str
    j: int
    claimed_next: bytes
    #: The worker's leaves and proofs, when this verifier holds them; None for a challenge
    #: the worker must answer.
    seg: segments.Segment | None = None

    @property
    def proven(self) -> bool:
        return self.seg is not None

    @property
    def function(self) -> str:
        """The resolver function that opens it."""
        return "challengeWithProof" if self.proven else "challenge"

    def segment(self) -> segments.Segment:
        """The ``Segment`` struct in ABI order (a proven challenge only)."""
        if self.seg is None:
            raise ChallengeError("an unproven challenge carries no segment proofs")
        return self.seg

    def args(self) -> tuple[object, ...]:
        if self.seg is None:
            return (self.task_id, self.worker, self.j, self.claimed_next)
        return (self.task_id, self.worker, self.seg, self.claimed_next)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"task_id": self.task_id, "worker": self.worker, "segment": self.j,
                                  "claimed_next": "0x" + self.claimed_next.hex(), "proven": self.proven}
        if self.seg is not None:
            _, h, proof, h_next, proof_next = self.seg
            out.update(h="0x" + h.hex(), h_next="0x" + h_next.hex(),
                       proof=["0x" + p.hex() for p in proof], proof_next=["0x" + p.hex() for p in proof_next])
        return out


def _check_claim(claimed_next: bytes) -> None:
    if len(claimed_next) != 32:
        raise ChallengeError(f"claimed h_{{j+1}} must be 32 bytes, got {len(claimed_next)}")


def build_challenge(manifest: Manifest, task_id: int, j: int, claimed_next: bytes,
                    *, root: bytes | None = None) -> Challenge:
    """The proven challenge of segment ``j`` of ``manifest``'s result; ``root`` defaults to
    the manifest's."""
    n = manifest.n_checkpoints
    if not 0 <= j < n - 1:
        raise ChallengeError(f"segment {j} does not exist: the result has segments 0..{n - 2}")
    _check_claim(claimed_next)
    root = manifest.root_bytes() if root is None else root
    hashes = [manifest.hash_bytes(i) for i in range(n)]
    if claimed_next == hashes[j + 1]:
        raise ChallengeError(f"no disagreement: the replay of segment {j} gives the worker's h_{j + 1}")
    seg = segments.segment(hashes, j)
    if not segments.verify(root, seg):
        raise ChallengeError(f"the manifest's hashes do not prove against root 0x{root.hex()}")
    return Challenge(task_id, manifest.worker, j, claimed_next, seg)


def unproven_challenge(task_id: int, worker: str, j: int, claimed_next: bytes, *,
                       checkpoint_count: int) -> Challenge:
    """A challenge of segment ``j`` that proves nothing: the worker must answer it."""
    if not 0 <= j < checkpoint_count - 1:
        raise ChallengeError(f"segment {j} does not exist: the result has segments 0..{checkpoint_count - 2}")
    _check_claim(claimed_next)
    return Challenge(task_id, worker, j, claimed_next)
