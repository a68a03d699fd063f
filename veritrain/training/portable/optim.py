"""Portable SGD, Adam and AdamW: each update a fixed sequence of separate elementwise ops.

No ``alpha=`` arguments, ``addcmul``, ``lerp``, foreach or fused kernels (those may contract
into fused multiply-adds on one kernel level and not on another). Hyperparameters and bias
corrections are computed in Python (IEEE double, ``beta**t`` by repeated squaring, never
``pow``) and rounded to float32 once, so every device multiplies by the same constants.
Weights and state are flushed of subnormals after each update (docs/spec/portable.md). The
state has torch's names (``momentum_buffer``; ``step``, ``exp_avg``, ``exp_avg_sq``) so a
checkpoint stores it like a standard optimizer's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from veritrain.training.portable.arith import f32, flush, psqrt


def int_pow(base: float, n: int) -> float:
    """``base ** n`` for integer n >= 0 by repeated squaring (IEEE double; no libm ``pow``)."""
    result, b = 1.0, base
    while n:
        if n & 1:
            result *= b
        b *= b
        n >>= 1
    return result


class PortableSGD(torch.optim.Optimizer):
    """buf = momentum·buf + g (buf = g at the first step); step = g, buf or g + momentum·buf."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            lr, mom, wd = f32(group["lr"]), f32(group["momentum"]), f32(group["weight_decay"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if wd:
                    g = g + p * wd
                if mom:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    buf = g.clone() if buf is None else buf * mom + g
                    state["momentum_buffer"] = buf = flush(buf)
                    g = g + buf * mom if group["nesterov"] else buf
                p.copy_(flush(p - g * lr))


class PortableAdam(torch.optim.Optimizer):
    """Adam (``decoupled=False``, L2 added to the gradient) or AdamW (``decoupled=True``).

    m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;  p -= lr · (m / (1-β1ᵗ)) / (sqrt(v / (1-β2ᵗ)) + eps),
    the divisions by the bias corrections as multiplications by their float32 reciprocals;
    AdamW first scales p by (1 - lr·wd).
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled=decoupled))

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, wd = group["lr"], group["weight_decay"]
            pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (p, m·bc1, v·bc2)
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                t = int(state["step"].item()) + 1
                state["step"] = torch.tensor(float(t), dtype=torch.float32)
                inv_bc1 = f32(1.0 / (1.0 - int_pow(b1, t)))
                inv_bc2 = f32(1.0 / (1.0 - int_pow(b2, t)))
                if wd and group["decoupled"]:
                    p.copy_(flush(p * f32(1.0 - lr * wd)))
                elif wd:
                    g = g + p * f32(wd)
                m = flush(state["exp_avg"] * f32(b1) + g * f32(1.0 - b1))
                v = flush(state["exp_avg_sq"] * f32(b2) + (g * g) * f32(1.0 - b2))
                state["exp_avg"], state["exp_avg_sq"] = m, v
                pending.append((p, m * inv_bc1, v * inv_bc2))
            if not pending:
                continue
            # one elementwise root over every parameter at once (psqrt is many small kernels)
            roots = psqrt(torch.cat([v.reshape(-1) for _, _, v in pending]))
            for (p, m, _), root in zip(pending, roots.split([p.numel() for p, _, _ in pending]), strict=True):
                den = root.view_as(p) + f32(group["eps"])
                p.copy_(flush(p - (m / den) * f32(lr)))


def build(spec_optimizer: Any, params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
    """The portable optimizer for a JobSpec's ``optimizer`` section."""
    o = spec_optimizer
    if o.name == "sgd":
        return PortableSGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                           weight_decay=o.weight_decay)
    return PortableAdam(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay,
                        decoupled=o.name == "adamw")
