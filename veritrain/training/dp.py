"""DP-SGD as a :class:`~veritrain.training.steps.TrainingStep`: a wrapper around the plain step's loss.

Each step computes one gradient per example (``torch.func``: ``vmap`` of ``grad`` over the
batch), clips each to ``max_grad_norm`` (the L2 norm over all parameters together), sums them,
adds Gaussian noise of standard deviation ``noise_multiplier * max_grad_norm`` to every
coordinate, divides by the batch size and hands that gradient to the job's optimizer.

The noise comes from a private ``torch.Generator`` seeded per step by
:func:`veritrain.crypto.dp_noise_seed` from the task's shard key (docs/spec/dp.md): the worker,
a sampling verifier and a referee (all given that key) draw the same noise and replay a DP
segment bitwise; a reader of the public job document and the model cannot, so cannot subtract
it. The global torch generator (checkpointed as ``rng/torch``) is not touched by the noise.

Measured (bench/dp.py, the zoo's MLP on CPU): ``torch.func`` per-example gradients cost a few
times a plain step, Opacus's GradSampleModule about 10x (notes/toolchain.md), and Opacus wraps
the module and the optimizer, which the checkpoint format would then have to know about; so
the gradients are computed here and only Opacus's accountant is used (:mod:`veritrain.privacy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.func import functional_call, grad, vmap

from veritrain.crypto import dp_noise_seed
from veritrain.spec import TaskKey
from veritrain.training.data_order import BatchOrder
from veritrain.training.model_entry import Loss


@dataclass(frozen=True)
class DpSgdStep:
    """One DP-SGD step of ``task``: per-example clipped gradients plus key-derived Gaussian noise."""

    loss: Loss
    max_grad_norm: float
    noise_multiplier: float
    key: bytes
    task: TaskKey

    def noise_generator(self, step: int) -> torch.Generator:
        g = torch.Generator(device="cpu")
        g.manual_seed(dp_noise_seed(self.key, self.task.round, self.task.shard, step))
        return g

    def __call__(self, live: Any, order: BatchOrder, x: Any, y: Any) -> Any:
        idx = order.indices(live.step)
        xb, yb = x[idx], y[idx]
        model = live.model
        model.train()
        params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
        buffers = {k: v.detach() for k, v in model.named_buffers()}

        def one(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> Any:
            out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
            loss = self.loss(out, yi.unsqueeze(0))
            return loss, loss.detach()

        per_example, losses = vmap(grad(one, has_aux=True), in_dims=(None, 0, 0),
                                   randomness="different")(params, xb, yb)
        names = list(params)
        flat = torch.stack([per_example[n].reshape(len(idx), -1).norm(2, dim=1) for n in names], dim=1)
        norms = flat.norm(2, dim=1)
        scale = (self.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        gen = self.noise_generator(live.step)
        std = self.noise_multiplier * self.max_grad_norm
        live.optimizer.zero_grad(set_to_none=True)
        named = dict(model.named_parameters())
        for n in names:
            g = per_example[n]
            summed = torch.einsum("b,b...->...", scale, g)
            noise = torch.normal(0.0, std, size=summed.shape, generator=gen, dtype=summed.dtype)
            named[n].grad = (summed + noise) / len(idx)
        live.optimizer.step()
        live.step += 1
        return losses.mean()
