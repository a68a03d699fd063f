"""The torch side of scored mode: the job's model, its loss on chosen batches, and a worker's
local training from the window's start model to a compressed pseudo-gradient."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from veritrain.canon import derive_seed
from veritrain.scored.compress import CompressedUpdate, compress
from veritrain.scored.score import probe_positions, probe_values
from veritrain.spec import JobSpec

if TYPE_CHECKING:  # pragma: no cover
    import torch

State = dict[str, "torch.Tensor"]


class ScoredModel:
    """The job's zoo model over one dataset (features ``x``, labels ``y`` as the spec's tensors)."""

    def __init__(self, spec: JobSpec, x: torch.Tensor, y: torch.Tensor) -> None:
        from veritrain.training import registry, state

        self.spec, self.x, self.y = spec, x, y
        self.module = state.build_model(spec)
        self.loss_fn = registry.get(spec.model.name).loss

    def initial_state(self) -> State:
        """The job's seeded initial model (the start of window 0)."""
        import torch

        from veritrain.training import state

        torch.manual_seed(derive_seed(self.spec.seed, "init", 0))
        return {k: v.detach().clone() for k, v in state.build_model(self.spec).state_dict().items()}

    def loss(self, params: Mapping[str, torch.Tensor], batches: Sequence[Sequence[int]]) -> float:
        """Mean loss of ``params`` over ``batches`` (example indices)."""
        import torch

        if not batches:
            return 0.0
        self.module.load_state_dict(dict(params))
        self.module.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for b in batches:
                idx = torch.as_tensor(list(b), dtype=torch.int64)
                logits = self.module(self.x[idx])
                total += float(self.loss_fn(logits, self.y[idx], reduction="sum"))
                count += int(self.y[idx].numel())
        return total / max(1, count)

    def losses(self, params: Mapping[str, torch.Tensor], indices: Sequence[int]) -> list[float]:
        """Per-example loss of ``params`` on examples ``indices``, in order."""
        import torch

        if not indices:
            return []
        self.module.load_state_dict(dict(params))
        self.module.eval()
        with torch.no_grad():
            idx = torch.as_tensor(list(indices), dtype=torch.int64)
            per = self.loss_fn(self.module(self.x[idx]), self.y[idx], reduction="none")
        return [float(v) for v in per.reshape(len(idx), -1).mean(dim=1)]

    def train(self, start: Mapping[str, torch.Tensor], batches: Sequence[Sequence[int]]) -> State:
        """One optimizer step per batch from ``start`` (the job's optimizer); the trained state."""
        import torch

        from veritrain.training import state

        self.module.load_state_dict(dict(start))
        self.module.train()
        opt = state.build_optimizer(self.spec, self.module)
        for b in batches:
            idx = torch.as_tensor(list(b), dtype=torch.int64)
            opt.zero_grad()
            self.loss_fn(self.module(self.x[idx]), self.y[idx]).backward()
            opt.step()
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}


def make_update(model: ScoredModel, start: Mapping[str, torch.Tensor], start_hash: str,
                batches: Sequence[Sequence[int]], *, window: int, worker: str, chunk: int, k: int,
                trained: Mapping[str, torch.Tensor] | None = None) -> CompressedUpdate:
    """Train on ``batches`` from ``start`` (or take ``trained``) and compress ``trained - start``,
    naming the start model and carrying its probe values (the sync check)."""
    after = model.train(start, batches) if trained is None else trained
    delta = {n: after[n] - start[n] for n in start}
    shapes = {n: tuple(v.shape) for n, v in start.items()}
    meta: dict[str, Any] = {
        "base": start_hash, "window": window, "worker": worker.lower(),
        "probes": probe_values(start, probe_positions(model.spec.seed, window, worker, shapes)),
    }
    return compress(delta, chunk=chunk, k=k, meta=meta)
