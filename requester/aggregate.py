"""FedAvg: the round's model is the average of the tasks' final models, weighted by shard size.

Pure numpy over canonical checkpoints (:mod:`veritrain.checkpoint`): only the ``model/``
tensors are averaged (optimizer state and RNG belong to a task's run, not to the model).
Floating tensors are averaged in float64 and cast back; integer tensors (counters such as
BatchNorm's ``num_batches_tracked``) take the weighted average rounded to the nearest integer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from veritrain.checkpoint import CheckpointState
from veritrain.errors import CheckpointFormatError

MODEL_PREFIX = "model/"


def model_tensors(state: CheckpointState) -> dict[str, np.ndarray]:
    return {k: v for k, v in state.tensors.items() if k.startswith(MODEL_PREFIX)}


def fedavg(states: Sequence[CheckpointState], weights: Sequence[float]) -> dict[str, np.ndarray]:
    """``sum_i w_i * model_i / sum_i w_i`` for every model tensor; names and shapes must agree."""
    if not states:
        raise ValueError("nothing to aggregate: no task results")
    if len(states) != len(weights):
        raise ValueError(f"{len(states)} models but {len(weights)} weights")
    w = np.asarray(weights, dtype=np.float64)
    if np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {list(weights)}")
    w = w / w.sum()
    models = [model_tensors(s) for s in states]
    names = sorted(models[0])
    if not names:
        raise CheckpointFormatError("the checkpoint has no model/ tensors")
    for i, m in enumerate(models[1:], start=1):
        if sorted(m) != names:
            raise CheckpointFormatError(f"task result {i} has different model tensors than result 0")
        for n in names:
            if m[n].shape != models[0][n].shape or m[n].dtype != models[0][n].dtype:
                raise CheckpointFormatError(f"task result {i}: tensor {n} is {m[n].dtype}{m[n].shape}, "
                                            f"result 0 has {models[0][n].dtype}{models[0][n].shape}")
    out: dict[str, np.ndarray] = {}
    for n in names:
        acc = sum(wi * m[n].astype(np.float64) for wi, m in zip(w, models, strict=True))
        dtype = models[0][n].dtype
        if np.issubdtype(dtype, np.floating):
            out[n] = np.asarray(acc).astype(dtype)
        else:
            out[n] = np.rint(acc).astype(dtype)
    return out


def aggregate_state(states: Sequence[CheckpointState], weights: Sequence[float],
                    meta: dict[str, object] | None = None) -> CheckpointState:
    """The FedAvg model as a checkpoint state (model tensors only), e.g. for ``engine.evaluate``."""
    return CheckpointState(meta=dict(meta or {}), tensors=fedavg(states, weights))
