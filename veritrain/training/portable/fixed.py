"""Exact reductions and matrix products by fixed-point integers (order-free, so portable).

A float32 tensor is turned into integers with a power-of-two scale taken from the operand
itself: along the reduced dimension, ``e`` is the binary exponent of the largest magnitude
(``max|x| = f * 2**e``, f in [0.5, 1)) and ``v = round(x * 2**(q - e))`` is an integer with
``|v| <= 2**q``. The scaling and rounding are exact float64 operations (round half to even).
Integer addition is associative, so sums and products of these integers are the same in any
order, blocking, thread count or device; they are formed

- for a reduction, as an int64 sum with ``q = 62 - bitlen(n)`` (no overflow for n terms);
- for a matrix product, as one float64 GEMM on ``q/2``-bit slices of the operands (every partial
  sum is an integer below 2**53, so the GEMM is exact whatever its order, FMA included), the
  slice products combined exactly in int64, with ``q = min(24, (62 - bitlen(k)) // 2)``.

The exact integer result ``C`` becomes a float once: ``C = hi * 2**32 + lo`` (both halves
exact in float64, one rounded addition), an exact power-of-two rescaling, one rounding to
float32, and subnormals flushed. Elements much smaller than the largest of their row/column
keep ``q`` bits relative to that largest one (fixed point), the error a docs/spec/portable.md
bound states.
"""

from __future__ import annotations

import torch

from veritrain.training.portable.arith import flush, pow2_f64

#: Bits kept per matrix operand (relative to the largest magnitude of its row or column).
MM_BITS = 24


def quantize(x: torch.Tensor, dim: int, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(``v``, ``s``): float64 integers ``v = round(x * 2**s)``, ``|v| <= 2**bits``; ``s`` keeps ``dim``."""
    x64 = x.to(torch.float64)
    _, e = torch.frexp(x64.abs().amax(dim=dim, keepdim=True))  # 0 -> e = 0
    s = bits - e.to(torch.int64)
    return torch.round(x64 * pow2_f64(s)), s


def int_to_f64(c: torch.Tensor) -> torch.Tensor:
    """float64 of int64 ``c``: ``hi * 2**32 + lo`` (both halves exact), one rounding."""
    hi = torch.bitwise_right_shift(c, 32).to(torch.float64) * 4294967296.0
    lo = torch.bitwise_and(c, 0xFFFFFFFF).to(torch.float64)
    return hi + lo


def to_float32(c64: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """float32 of ``c64 * 2**-shift`` (exact scaling, one rounding), subnormals flushed."""
    return flush((c64 * pow2_f64(-shift)).to(torch.float32))


def int_to_float(c: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """float32 of ``c * 2**-shift`` for int64 ``c``."""
    return to_float32(int_to_f64(c), shift)


def sum_bits(n: int) -> int:
    return 62 - n.bit_length()


def psum_exact(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(int64 sum along ``dim``, its shift) with ``dim`` kept (size 1)."""
    v, s = quantize(x, dim, sum_bits(x.shape[dim]))
    return v.to(torch.int64).sum(dim=dim, keepdim=True), s


def psum(x: torch.Tensor, dim: int, keepdim: bool = False) -> torch.Tensor:
    """Sum of float32 ``x`` along ``dim``, the same bits on every device and thread count."""
    c, s = psum_exact(x, dim)
    out = int_to_float(c, s)
    return out if keepdim else out.squeeze(dim)


def pmean(x: torch.Tensor, dim: int, keepdim: bool = False) -> torch.Tensor:
    """Mean along ``dim``: the exact sum times the float64 reciprocal of n, rounded once to float32."""
    c, s = psum_exact(x, dim)
    out = to_float32(int_to_f64(c) * (1.0 / x.shape[dim]), s)
    return out if keepdim else out.squeeze(dim)


def mm_bits(k: int) -> int:
    return min(MM_BITS, (62 - k.bit_length()) // 2)


def _split(v: torch.Tensor, h: int, dim: int) -> torch.Tensor:
    """(hi, lo) concatenated along ``dim``, v = hi * 2**h + lo, 0 <= lo < 2**h (exact float64)."""
    hi = torch.floor(v * 2.0**-h)
    return torch.cat((hi, v - hi * 2.0**h), dim=dim)


def integer_matmul(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(int64 ``A_int @ B_int``, row shifts of ``a``, column shifts of ``b``) for ``a @ b``.

    One float64 GEMM of ``[hi_a; lo_a]`` (2m x k) by ``[hi_b, lo_b]`` (k x 2n) gives the four
    slice products as its quadrants, each an exact integer below 2**53.
    """
    k = a.shape[-1]
    if b.shape[-2] != k:
        raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not chain")
    m, n = a.shape[-2], b.shape[-1]
    q = mm_bits(k)
    h = (q + 1) // 2
    va, sa = quantize(a, -1, q)
    vb, sb = quantize(b, -2, q)
    p = torch.matmul(_split(va, h, -2), _split(vb, h, -1)).to(torch.int64)  # (..., 2m, 2n), exact
    hh, hl, lh, ll = p[..., :m, :n], p[..., :m, n:], p[..., m:, :n], p[..., m:, n:]
    c = torch.bitwise_left_shift(hh, 2 * h) + torch.bitwise_left_shift(hl + lh, h) + ll
    return c, sa, sb


def pmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for float32 (..., m, k) x (..., k, n) with equal batch dimensions, portably."""
    if a.shape[:-2] != b.shape[:-2]:
        raise ValueError(f"matmul: batch dimensions differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    c, sa, sb = integer_matmul(a, b)
    return int_to_float(c, sa + sb)


def reference_integer_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The same integer product as :func:`integer_matmul` by int64 matmul (tests: exactness)."""
    q = mm_bits(a.shape[-1])
    return torch.matmul(quantize(a, -1, q)[0].to(torch.int64), quantize(b, -2, q)[0].to(torch.int64))
