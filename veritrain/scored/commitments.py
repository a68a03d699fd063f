"""The encodings ScoredRounds checks (contracts/ScoredRounds.sol)."""

from __future__ import annotations

from collections.abc import Sequence

from sha3 import keccak_256

from veritrain.chain.receipts import commitment

__all__ = ["score_commitment", "update_commitment"]


def update_commitment(update_hash: bytes, worker: str, salt: bytes) -> bytes:
    """``keccak256(abi.encode(bytes32 updateHash, address worker, bytes32 salt))``."""
    return commitment(update_hash, worker, salt)


def score_commitment(job_id: int, window: int, scores: Sequence[int], copiers: int, model: bytes,
                     validator: str, salt: bytes) -> bytes:
    """``keccak256(abi.encode(jobId, window, int64[] scores, copiers, globalModel, validator, salt))``."""
    from eth_abi import encode

    return keccak_256(encode(
        ["uint256", "uint256", "int64[]", "uint256", "bytes32", "address", "bytes32"],
        [job_id, window, list(scores), copiers, bytes(model), validator, bytes(salt)],
    )).digest()
