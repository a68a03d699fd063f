"""The rule anyone recomputes for the next global model of a scored job.

After window ``w`` settles, its start model plus the mean of the decompressed updates of the
``top`` submissions with the highest positive settled scores (ties: lower index; copies and
unpaid submissions excluded) is window ``w + 1``'s start model. Its hash is the sha256 of the
canonical checkpoint encoding of the state with ``meta = {"kind": "veritrain-scored-model"}``;
validators attest it in their votes of window ``w + 1`` (ScoredRounds keeps the majority's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from veritrain.checkpoint import CheckpointState, checkpoint_hash, decode, encode
from veritrain.scored.compress import CompressedUpdate, decompress
from veritrain.scored.score import apply

if TYPE_CHECKING:  # pragma: no cover
    import torch

MODEL_KIND = "veritrain-scored-model"


def select(scores: Sequence[int], copies: Sequence[bool], top: int) -> list[int]:
    """Indices of the ``top`` highest positive scores that are not copies, in index order."""
    paid = [i for i, s in enumerate(scores) if s > 0 and not copies[i]]
    ranked = sorted(paid, key=lambda i: (-scores[i], i))
    return sorted(ranked[:top])


def next_global(start: Mapping[str, torch.Tensor], updates: Sequence[CompressedUpdate]
                ) -> dict[str, torch.Tensor]:
    """``start`` plus the mean of ``updates`` (``start`` itself when there are none)."""
    if not updates:
        return {k: v.clone() for k, v in start.items()}
    import torch

    dense = [decompress(u) for u in updates]
    mean = {k: torch.stack([d[k] for d in dense]).mean(0) for k in dense[0]}
    return apply(start, mean)


def model_bytes(state: Mapping[str, torch.Tensor]) -> bytes:
    tensors = {k: v.detach().to("cpu").contiguous().numpy() for k, v in state.items()}
    return encode(CheckpointState(meta={"kind": MODEL_KIND}, tensors=tensors))


def model_hash(state: Mapping[str, torch.Tensor]) -> bytes:
    return checkpoint_hash(model_bytes(state))


def model_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    import torch

    state = decode(data)
    if state.meta.get("kind") != MODEL_KIND:
        raise ValueError("not a scored global model")
    return {k: torch.from_numpy(v.copy()) for k, v in state.tensors.items()}
