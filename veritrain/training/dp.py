"""DP-SGD as a :class:`~veritrain.training.steps.TrainingStep`: a wrapper around the plain step's loss.

Each step draws its batch by **Poisson sampling** (every example of the shard independently with
probability ``q = min(1, batch_size / n)``), computes one gradient per sampled example
(``torch.func``: ``vmap`` of ``grad``), clips each to ``max_grad_norm`` (the L2 norm over all
parameters together), sums them, adds Gaussian noise of standard deviation
``noise_multiplier * max_grad_norm`` to every coordinate, divides by the expected batch size
``q * n`` and hands that gradient to the job's optimizer.

Both the sample and the noise come from one private ``torch.Generator`` seeded per step by
:func:`veritrain.crypto.dp_noise_seed` from the task's shard key (docs/spec/dp.md): the worker,
a sampling verifier and a referee (all given that key) draw the same batch and the same noise
and replay a DP segment bitwise; a reader of the public job document and the model cannot, so
can neither subtract the noise nor tell which steps used a given record. That secrecy is what
lets the accountant (:mod:`veritrain.privacy`) claim amplification by subsampling. The public
batch order (:class:`~veritrain.training.data_order.BatchOrder`) is not used by a DP step
beyond its shard size and batch size; the global torch generator (checkpointed as
``rng/torch``) is not touched by the sample or the noise.

Measured (bench/dp.py, the zoo's MLP on CPU): ``torch.func`` per-example gradients cost a few
times a plain step, Opacus's GradSampleModule about 10x (notes/toolchain.md), and Opacus wraps
the module and the optimizer, which the checkpoint format would then have to know about; so
the gradients are computed here, and the accountant is Opacus's analysis re-implemented
(:mod:`veritrain.privacy`, cross-checked against Opacus in tests/unit/test_privacy.py).
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


def sampling_rate(batch_size: int, n: int) -> float:
    """``q``: the probability that a DP step samples a given example of a shard of ``n``."""
    return min(1.0, batch_size / n)


@dataclass(frozen=True)
class DpSgdStep:
    """One DP-SGD step of ``task``: a key-derived Poisson sample, per-example clipped gradients
    and key-derived Gaussian noise."""

    loss: Loss
    max_grad_norm: float
    noise_multiplier: float
    key: bytes
    task: TaskKey

    def generator(self, step: int) -> torch.Generator:
        """The private generator of ``step``: its sample first, then its noise."""
        g = torch.Generator(device="cpu")
        g.manual_seed(dp_noise_seed(self.key, self.task.round, self.task.shard, step))
        return g

    def sample(self, gen: torch.Generator, n: int, batch_size: int) -> torch.Tensor:
        """The indices (ascending) of the examples this step uses: ``u_i < q`` for
        ``u = torch.rand(n, generator=gen)`` (float32)."""
        u = torch.rand(n, generator=gen)
        return torch.nonzero(u < sampling_rate(batch_size, n)).flatten()

    def __call__(self, live: Any, order: BatchOrder, x: Any, y: Any) -> Any:
        n = len(x)
        gen = self.generator(live.step)
        idx = self.sample(gen, n, order.batch_size)
        expected = sampling_rate(order.batch_size, n) * n
        model = live.model
        model.train()
        params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
        names = list(params)
        if len(idx):
            per_example, losses = self._per_example(model, params, x[idx], y[idx])
            flat = torch.stack([per_example[k].reshape(len(idx), -1).norm(2, dim=1) for k in names], dim=1)
            scale = (self.max_grad_norm / (flat.norm(2, dim=1) + 1e-6)).clamp(max=1.0)
            summed = {k: torch.einsum("b,b...->...", scale, per_example[k]) for k in names}
            loss = losses.mean()
        else:  # an empty sample: the update is noise alone
            summed = {k: torch.zeros_like(v) for k, v in params.items()}
            loss = torch.zeros((), dtype=torch.float32)
        std = self.noise_multiplier * self.max_grad_norm
        live.optimizer.zero_grad(set_to_none=True)
        named = dict(model.named_parameters())
        for k in names:
            noise = torch.normal(0.0, std, size=summed[k].shape, generator=gen, dtype=summed[k].dtype)
            named[k].grad = (summed[k] + noise) / expected
        live.optimizer.step()
        live.step += 1
        return loss

    def _per_example(self, model: Any, params: dict[str, torch.Tensor], xb: Any,
                     yb: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        buffers = {k: v.detach() for k, v in model.named_buffers()}

        def one(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> Any:
            out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
            loss = self.loss(out, yi.unsqueeze(0))
            return loss, loss.detach()

        result: tuple[dict[str, torch.Tensor], torch.Tensor] = vmap(
            grad(one, has_aux=True), in_dims=(None, 0, 0), randomness="different")(params, xb, yb)
        return result
