"""Elementwise portable arithmetic: constants, subnormal flushing, powers of two, exp/log/erf/tanh.

Every function here is a fixed sequence of separate IEEE-754 float32 operations (``+ - * /``,
each one torch kernel, so no fused multiply-add can form; ``sqrt`` is :func:`psqrt`, since
torch's CPU sqrt is not correctly rounded), comparisons, selects and integer bit operations.
Each of those is correctly rounded or exact on every conforming device, so the results are the
same bits on any CPU kernel level, thread count or GPU.

Rules followed throughout (docs/spec/portable.md):

- constants are float32 values (:func:`f32`), so no device rounds a double constant its own way;
- no division by a Python scalar (CUDA turns ``x / c`` into ``x * (1/c)``): tensors divide
  tensors, and a scalar divisor becomes a multiplication by a float32 reciprocal, everywhere;
- results that would be subnormal are flushed to +0 (:func:`flush`), so a device that flushes
  subnormals (FTZ/DAZ) reads the same inputs as one that does not.
"""

from __future__ import annotations

import numpy as np
import torch

#: The smallest positive normal float32, 2**-126.
TINY = 2.0**-126


def f32(c: float) -> float:
    """``c`` rounded to the nearest float32 (as a Python float, exactly representable in float32)."""
    return float(np.float32(c))


def flush(x: torch.Tensor) -> torch.Tensor:
    """``x`` with every subnormal (and -0) replaced by +0."""
    return torch.where(x.abs() < TINY, torch.zeros((), dtype=x.dtype, device=x.device), x)


def pow2_f32(n: torch.Tensor) -> torch.Tensor:
    """``2.0**n`` as float32 for integer ``n`` in [-126, 127], built from its bits (exact)."""
    bits = torch.bitwise_left_shift(n.to(torch.int32) + 127, 23)
    return bits.view(torch.float32)


def pow2_f64(n: torch.Tensor) -> torch.Tensor:
    """``2.0**n`` as float64 for integer ``n`` in [-1022, 1023], built from its bits (exact)."""
    bits = torch.bitwise_left_shift(n.to(torch.int64) + 1023, 52)
    return bits.view(torch.float64)


def psqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt(x) for float32 ``x >= 0``, correctly rounded on every device.

    torch's CPU ``sqrt`` is MKL VML's (high-accuracy mode: within one ulp, not correctly
    rounded), and its bits depend on the code path MKL picks for the CPU and on where threads
    split the tensor. Here any approximation within one ulp is corrected: the neighbours
    ``r ± 1 ulp`` (adjacent bit patterns) and the midpoints between them and ``r`` are formed
    in float64, where a midpoint (at most 26 significant bits) squares exactly, and compared
    with ``x`` exactly. No midpoint's square equals a float32, so no tie arises.
    """
    x64 = x.to(torch.float64)
    r = torch.sqrt(x64).to(torch.float32)  # within one float32 ulp
    b = r.view(torch.int32)
    up = (b + 1).view(torch.float32)
    down = torch.where(b > 0, b - 1, b).view(torch.float32)  # sqrt(0) = 0 has no lower neighbour
    r64 = r.to(torch.float64)
    mid_up = (r64 + up.to(torch.float64)) * 0.5
    mid_down = (r64 + down.to(torch.float64)) * 0.5
    return torch.where(mid_up * mid_up < x64, up, torch.where(mid_down * mid_down > x64, down, r))


def recip(x: torch.Tensor) -> torch.Tensor:
    """``1 / x``, a tensor-by-tensor IEEE division (never an approximate reciprocal)."""
    return torch.ones_like(x) / x


# exp: x = n*ln2 + r, |r| <= ln2/2, exp(r) by its Taylor polynomial of degree 7 (Horner).
_LOG2E = f32(1.4426950408889634)
_LN2_HI = 0.693145751953125  # 0x3f317200: n * _LN2_HI is exact for |n| < 2**8
_LN2_LO = f32(0.6931471805599453 - 0.693145751953125)
_EXP_C = [f32(1.0 / c) for c in (5040.0, 720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0)]
EXP_MIN, EXP_MAX = -104.0, 88.0


def pexp(x: torch.Tensor) -> torch.Tensor:
    """exp(x) for float32 ``x`` (clamped to [-104, 88]; results below 2**-126 are 0).

    Relative error within 2**-21 of the true value (see the unit tests for the measured bound).
    """
    x = x.clamp(EXP_MIN, EXP_MAX)
    n = torch.round(x * _LOG2E)
    r = x - n * _LN2_HI
    r = r - n * _LN2_LO
    p = torch.full_like(r, _EXP_C[0])
    for c in _EXP_C[1:]:
        p = p * r
        p = p + c
    ni = n.to(torch.int32)
    y = p * pow2_f32(ni.clamp(-126, 127))
    return flush(torch.where(ni < -126, torch.zeros_like(y), y))


_SQRT_HALF = f32(0.7071067811865476)
# log(m) = 2 atanh(u), u = (m-1)/(m+1), |u| <= 0.1716: 2(u + u^3/3 + ... + u^13/13)
_LOG_C = [f32(2.0 / k) for k in (13, 11, 9, 7, 5, 3, 1)]


def plog(x: torch.Tensor) -> torch.Tensor:
    """log(x) for positive normal float32 ``x`` (absolute error within 2**-22 of the true value)."""
    m, e = torch.frexp(x)  # x = m * 2**e, m in [0.5, 1): exact
    small = m < _SQRT_HALF
    m = torch.where(small, m * 2.0, m)
    e = e - small.to(e.dtype)
    u = (m - 1.0) / (m + 1.0)  # m - 1 is exact (Sterbenz)
    u2 = u * u
    p = torch.full_like(u, _LOG_C[0])
    for c in _LOG_C[1:]:
        p = p * u2
        p = p + c
    logm = u * p
    ef = e.to(torch.float32)
    lo = ef * _LN2_LO
    lo = lo + logm
    hi = ef * _LN2_HI  # exact: e has at most 8 bits
    return flush(hi + lo)


# erf: Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7 (plus float32 rounding).
_ERF_P = f32(0.3275911)
_ERF_A = [f32(c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)]


def perf(x: torch.Tensor) -> torch.Tensor:
    """erf(x) for float32 ``x`` (absolute error within 6e-7)."""
    ax = x.abs()
    t = recip(ax * _ERF_P + 1.0)
    p = torch.full_like(t, _ERF_A[0])
    for c in _ERF_A[1:]:
        p = p * t
        p = p + c
    p = p * t
    sq = ax * ax
    g = pexp(-sq)
    y = 1.0 - p * g
    return flush(torch.where(x < 0, -y, y))


def ptanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|) (absolute error within 2.5e-7)."""
    ax = x.abs()
    e = pexp(ax * -2.0)
    y = (1.0 - e) / (1.0 + e)
    return flush(torch.where(x < 0, -y, y))
