"""Tolerance-mode verification (Proof-of-Learning style) for profiles that cannot be bitwise.

A verifier replays segment ``j`` from checkpoint ``j`` on its own hardware and compares the
result with the worker's claimed checkpoint ``j+1``:

- exactly: the metadata (job, task, step), the tensor names, shapes and dtypes, the RNG state
  and the optimizer step counters — none of these depend on floating-point arithmetic;
- by distance: ``d_params = ||θ_claimed − θ_replayed|| / ||θ_replayed − θ_j||`` (the gap
  relative to the segment's own update, so it is scale-free across models and learning rates)
  and ``d_optim = ||s_claimed − s_replayed|| / ||s_replayed||`` over the optimizer's float state.

The segment is accepted when both are ≤ the job's bound
(:class:`veritrain.training.judges.ToleranceJudge`). :func:`calibrate` measures honest
distances across thread counts and proposes a bound; docs/engine.md records the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from veritrain.checkpoint import CheckpointState, decode
from veritrain.spec import JobSpec, TaskKey

_TINY = 1e-30


@dataclass(frozen=True)
class Distance:
    params: float
    optimizer: float
    mismatches: tuple[str, ...] = ()

    @property
    def value(self) -> float:
        return float("inf") if self.mismatches else max(self.params, self.optimizer)


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    distance: Distance
    bound: float | None  # None: exact mode
    replayed_hash: bytes


def _state(x: bytes | CheckpointState) -> CheckpointState:
    return x if isinstance(x, CheckpointState) else decode(x)


def _norm(parts: list[np.ndarray]) -> float:
    return float(np.sqrt(sum(float(np.dot(p, p)) for p in parts))) if parts else 0.0


def _is_float_state(name: str) -> bool:
    return name.startswith("optim/") and not name.endswith("/step")


def distance(start: bytes | CheckpointState, claimed: bytes | CheckpointState,
             replayed: bytes | CheckpointState) -> Distance:
    s, c, r = _state(start), _state(claimed), _state(replayed)
    mismatches = [f"meta.{k}" for k in sorted(set(c.meta) | set(r.meta)) if c.meta.get(k) != r.meta.get(k)]
    layout_c = {n: (a.dtype.str, a.shape) for n, a in c.tensors.items()}
    layout_r = {n: (a.dtype.str, a.shape) for n, a in r.tensors.items()}
    if layout_c != layout_r:
        return Distance(float("inf"), float("inf"), (*mismatches, "tensor layout"))
    for name, arr in r.tensors.items():
        exact = not (name.startswith("model/") or _is_float_state(name)) or arr.dtype.kind != "f"
        if exact and arr.tobytes() != c.tensors[name].tobytes():
            mismatches.append(name)
    f64 = {n: a.astype(np.float64).ravel() for n, a in r.tensors.items() if a.dtype.kind == "f"}
    params = [n for n in f64 if n.startswith("model/")]
    optim = [n for n in f64 if _is_float_state(n)]
    gap = _norm([c.tensors[n].astype(np.float64).ravel() - f64[n] for n in params])
    update = _norm([f64[n] - s.tensors[n].astype(np.float64).ravel() for n in params])
    ogap = _norm([c.tensors[n].astype(np.float64).ravel() - f64[n] for n in optim])
    oscale = _norm([f64[n] for n in optim])
    d_params = gap / max(update, _TINY) if gap else 0.0
    d_optim = ogap / max(oscale, _TINY) if ogap else 0.0
    if not np.isfinite(d_params) or not np.isfinite(d_optim):
        mismatches.append("non-finite values")
    return Distance(d_params, d_optim, tuple(mismatches))


@dataclass
class Calibration:
    """Honest segment distances per thread count, and the bound proposed from them."""

    distances: dict[int, list[float]] = field(default_factory=dict)
    bound: float = 0.0

    @property
    def largest(self) -> float:
        return max((d for ds in self.distances.values() for d in ds), default=0.0)


def calibrate(spec: JobSpec, task: TaskKey, features: Any, labels: Any, chain: Sequence[bytes],
              thread_counts: Sequence[int], *, safety: float = 10.0, floor: float = 1e-6) -> Calibration:
    """Replay every segment of an honest ``chain`` (checkpoint bytes h_0..h_n) at each of
    ``thread_counts`` in this process; bound = max(safety × largest distance, floor)."""
    import torch

    from veritrain.training.engine import replay_segment_bytes

    before = torch.get_num_threads()
    cal = Calibration()
    try:
        for t in thread_counts:
            torch.set_num_threads(t)
            cal.distances[t] = [
                distance(chain[j], chain[j + 1],
                         replay_segment_bytes(spec, task, j, chain[j], features, labels,
                                              strict_profile=False)[0]).value
                for j in range(len(chain) - 1)
            ]
    finally:
        torch.set_num_threads(before)
    cal.bound = max(safety * cal.largest, floor)
    return cal
