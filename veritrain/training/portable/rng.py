"""A counter-based random generator from 32-bit integer hashing (same bits on every device).

``bits(key, counter, n)`` gives n 32-bit values, element i = H(i + H(key ^ H(counter))),
where H is a fixed integer mixer (xor-shift and multiplication by an odd constant below 2**27,
masked to 32 bits: every intermediate stays below 2**59, so int64 arithmetic never wraps).
No state lives outside the caller's ``counter``, which a checkpoint stores.
"""

from __future__ import annotations

import math

import torch

_MASK = 0xFFFFFFFF
_MUL = 0x045D9F3B  # an odd constant < 2**27 (from the well-known 32-bit integer hash)


def mix(x: torch.Tensor) -> torch.Tensor:
    """The 32-bit mixer H on int64 values in [0, 2**32)."""
    for _ in range(2):
        x = torch.bitwise_xor(x, torch.bitwise_right_shift(x, 16))
        x = torch.bitwise_and(x * _MUL, _MASK)
    return torch.bitwise_xor(x, torch.bitwise_right_shift(x, 16))


def bits(key: int, counter: int, n: int, device: torch.device | None = None) -> torch.Tensor:
    """``n`` pseudo-random 32-bit values (int64) for (key, counter)."""
    k = mix(torch.tensor(counter & _MASK, dtype=torch.int64, device=device))
    k = mix(torch.bitwise_xor(k, key & _MASK))
    i = torch.arange(n, dtype=torch.int64, device=device)
    return mix(torch.bitwise_and(i + k, _MASK))


def keep_mask(key: int, counter: int, shape: torch.Size, p: float,
              device: torch.device | None = None) -> torch.Tensor:
    """Bernoulli(1 - p) booleans of ``shape``: keep where the 32-bit value >= round(p * 2**32)."""
    threshold = round(p * 2**32)
    return (bits(key, counter, shape.numel(), device) >= threshold).reshape(shape)


def uniform(key: int, counter: int, shape: torch.Size | tuple[int, ...], low: float,
            high: float) -> torch.Tensor:
    """float32 values of ``shape`` spread uniformly over [low, high): u = bits * 2**-32 and
    low + u (high - low), in float64 (exact or correctly rounded), then rounded to float32."""
    n = int(torch.Size(shape).numel())
    u = bits(key, counter, n).to(torch.float64) * 2.0**-32
    return ((u * (high - low)) + low).to(torch.float32).reshape(shape)


def normal(key: int, counter: int, shape: torch.Size | tuple[int, ...], std: float) -> torch.Tensor:
    """float32 values of ``shape`` with mean 0 and standard deviation ``std`` (Irwin-Hall: the sum
    of four uniforms, centred and scaled to unit variance; no transcendental functions)."""
    n = int(torch.Size(shape).numel())
    total = torch.zeros(n, dtype=torch.float64)
    for j in range(4):
        total = total + bits(key, counter * 4 + j, n).to(torch.float64) * 2.0**-32
    return (((total - 2.0) * math.sqrt(3.0)) * std).to(torch.float32).reshape(shape)
