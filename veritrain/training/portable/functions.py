"""Portable operators with autograd: each forward AND backward is built from portable pieces.

torch's own backward formulas are not used where they reduce (a broadcast's gradient is a
``sum``, a matmul's is a GEMM): every such operator is a :class:`torch.autograd.Function`
whose backward uses :func:`~veritrain.training.portable.fixed.pmm` and
:func:`~veritrain.training.portable.fixed.psum`. Operators whose torch backward is purely
elementwise or data movement (ReLU, residual ``+`` of equal shapes, views, ``split``,
``masked_fill``, multiplication by a constant) are used as they are. Every tensor an operator
hands on (outputs, gradients) is flushed of subnormals; intermediates inside an operator follow
IEEE gradual underflow (docs/spec/portable.md).
"""

from __future__ import annotations

from typing import Any

import torch

from veritrain.training.portable.arith import f32, flush, perf, pexp, plog, psqrt, ptanh, recip
from veritrain.training.portable.fixed import int_to_float, pmean, pmm, psum, quantize, sum_bits


class Matmul(torch.autograd.Function):
    """``a @ b`` with equal batch dimensions; dA = g @ bᵀ, dB = aᵀ @ g."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        return pmm(a, b)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = ctx.saved_tensors
        return pmm(g, b.transpose(-2, -1)), pmm(a.transpose(-2, -1), g)


class Linear(torch.autograd.Function):
    """``x @ wᵀ + bias`` for 2-D ``x``; dW = gᵀ x, dbias = Σ_rows g, dx = g w."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        ctx.has_bias = bias is not None
        y = pmm(x, w.t())
        return flush(y + bias) if bias is not None else y

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        x, w = ctx.saved_tensors
        db = psum(g, 0) if ctx.has_bias else None
        dx = pmm(g, w) if ctx.needs_input_grad[0] else None  # not for the model's input
        return dx, pmm(g.t(), x), db


class LayerNorm(torch.autograd.Function):
    """Layer norm over the last dimension with weight and bias (biased variance, like torch)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
        xc = x - pmean(x, -1, keepdim=True)
        var = pmean(xc * xc, -1, keepdim=True)
        rstd = recip(psqrt(var + f32(eps)))
        xhat = flush(xc * rstd)
        ctx.save_for_backward(xhat, rstd, w)
        return flush(xhat * w + b)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        xhat, rstd, w = ctx.saved_tensors
        d = w.shape[0]
        rows = g.reshape(-1, d)
        dw = psum(rows * xhat.reshape(-1, d), 0)
        db = psum(rows, 0)
        gw = g * w
        a = pmean(gw, -1, keepdim=True)
        c = pmean(gw * xhat, -1, keepdim=True)
        dx = (gw - a) - xhat * c
        return flush(dx * rstd), dw, db, None


def _softmax_parts(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z = x - max, exp(z), Σ exp(z)) along the last dimension (``-inf`` entries give 0)."""
    z = x - x.amax(dim=-1, keepdim=True)  # amax is exact in any order
    e = pexp(z)
    return z, e, psum(e, -1, keepdim=True)


class Softmax(torch.autograd.Function):
    """Softmax over the last dimension; dx = y (g - Σ g y)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        _, e, s = _softmax_parts(x)
        y = flush(e / s)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        t = psum(g * y, -1, keepdim=True)
        return flush(y * (g - t))


class CrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of logits (N, C) against class indices (N,); dx = (softmax - onehot) g / N."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        z, e, s = _softmax_parts(x)
        picked = z.gather(1, target.unsqueeze(1))
        losses = plog(s) - picked
        ctx.save_for_backward(e, s, target)
        return pmean(losses.squeeze(1), 0)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        e, s, target = ctx.saved_tensors
        p = e / s
        onehot = torch.zeros_like(p).scatter_(1, target.unsqueeze(1), 1.0)
        scale = g * f32(1.0 / p.shape[0])
        return flush((p - onehot) * scale), None


_INV_SQRT2 = f32(0.7071067811865476)
_INV_SQRT_2PI = f32(0.3989422804014327)


class Gelu(torch.autograd.Function):
    """GELU(x) = x Φ(x), Φ(x) = (1 + erf(x/√2)) / 2; dx = g (Φ(x) + x φ(x))."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        cdf = (perf(x * _INV_SQRT2) + 1.0) * 0.5
        ctx.save_for_backward(x, cdf)
        return flush(x * cdf)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        x, cdf = ctx.saved_tensors
        pdf = pexp((x * x) * -0.5) * _INV_SQRT_2PI
        return flush(g * (cdf + x * pdf))


class Tanh(torch.autograd.Function):
    """tanh; dx = g (1 - y²)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = ptanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return flush(g * (1.0 - y * y))


class Embedding(torch.autograd.Function):
    """Rows of ``w`` picked by ``idx``; dW by exact integer scatter-add (order-free)."""

    @staticmethod
    def forward(ctx: Any, idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(idx)
        ctx.rows = w.shape[0]
        return w[idx]

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[None, torch.Tensor]:
        (idx,) = ctx.saved_tensors
        flat = g.reshape(-1, g.shape[-1])
        v, s = quantize(flat, 0, sum_bits(flat.shape[0]))  # one scale per column, over all rows
        acc = torch.zeros((ctx.rows, flat.shape[1]), dtype=torch.int64, device=g.device)
        acc.index_add_(0, idx.reshape(-1), v.to(torch.int64))  # integer adds: any order is exact
        return None, int_to_float(acc, s)


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return Matmul.apply(a, b)  # type: ignore[no-any-return]


def linear(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    lead = x.shape[:-1]
    y = Linear.apply(x.reshape(-1, x.shape[-1]), w, bias)
    return y.reshape(*lead, w.shape[0])  # type: ignore[no-any-return]


def layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    return LayerNorm.apply(x, w, b, eps)  # type: ignore[no-any-return]


def softmax(x: torch.Tensor) -> torch.Tensor:
    return Softmax.apply(x)  # type: ignore[no-any-return]


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return CrossEntropy.apply(logits, target)  # type: ignore[no-any-return]


def gelu(x: torch.Tensor) -> torch.Tensor:
    return Gelu.apply(x)  # type: ignore[no-any-return]


def tanh(x: torch.Tensor) -> torch.Tensor:
    return Tanh.apply(x)  # type: ignore[no-any-return]


def embedding(idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return Embedding.apply(idx, w)  # type: ignore[no-any-return]


__all__ = ["cross_entropy", "embedding", "gelu", "layer_norm", "linear", "matmul", "softmax", "tanh",
           "psum", "pmean"]
