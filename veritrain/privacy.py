"""The privacy budget of a DP-SGD job: the (epsilon, delta) its noise multiplier buys.

The accountant (``accountant: "rdp"``, docs/spec/dp.md section 3) is the Rényi DP of the
**sampled Gaussian mechanism** (Mironov, Talwar and Zhang 2019, section 3.3; the analysis
Opacus and TF Privacy use), composed over every step of every round. Each DP step samples its
batch by Poisson sampling with rate ``q = min(1, batch_size / n)`` from a generator keyed by the
shard key (:mod:`veritrain.training.dp`), so nobody without that key knows which steps used a
record, which is what amplification by subsampling requires. Each example sits in exactly one
shard, so it takes part in ``steps_per_task * rounds`` sampled steps of its shard's tasks (the
aggregation of shards is post-processing); the job's ``q`` is the largest over its shards.

RDP is computed at integer orders only, where the bound is exact: ``log A_alpha =
logsumexp_i [log C(alpha, i) + i log q + (alpha - i) log(1 - q) + (i^2 - i) / (2 sigma^2)]``,
``RDP(alpha) = steps * log A_alpha / (alpha - 1)``; it is converted to (epsilon, delta) as in
Balle et al. 2020 (Opacus's ``get_privacy_spent``). tests/unit/test_privacy.py checks it against
Opacus.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from veritrain.errors import SpecError
from veritrain.spec import JobSpec

#: Rényi orders searched for the tightest conversion (integers: the RDP bound is exact there).
ORDERS = list(range(2, 65)) + [80, 96, 128, 256]
#: The largest noise multiplier post_job will search up to for a target epsilon.
MAX_NOISE = 1e4


@dataclass(frozen=True)
class Budget:
    """What a DP-SGD job spends: ``epsilon`` at ``delta`` for noise ``noise_multiplier``, over
    ``steps`` sampled steps of rate ``sampling_rate``."""

    epsilon: float
    delta: float
    noise_multiplier: float
    accountant: str
    sampling_rate: float
    steps: int

    def as_dict(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "delta": self.delta, "noise_multiplier": self.noise_multiplier,
                "accountant": self.accountant, "sampling_rate": self.sampling_rate, "steps": self.steps}

    def line(self) -> str:
        return (f"epsilon {self.epsilon:.3g} at delta {self.delta:g} (noise multiplier "
                f"{self.noise_multiplier:.4g}, accountant {self.accountant})")


def sampling(spec: JobSpec, shard_sizes: Sequence[int]) -> tuple[float, int]:
    """``(q, steps)``: the largest sampling rate over the shards, and how many sampled steps
    every example takes part in (``steps_per_task * rounds``)."""
    from veritrain.training.dp import sampling_rate

    if not shard_sizes or min(shard_sizes) < 1:
        raise SpecError(["privacy.dp_sgd: every shard needs at least one example"])
    q = max(sampling_rate(spec.batch_size, n) for n in shard_sizes)
    return q, spec.steps_per_task * spec.rounds


def _log_a(q: float, sigma: float, alpha: int) -> float:
    """``log A_alpha`` of the sampled Gaussian mechanism at integer ``alpha`` (0 < q < 1)."""
    i = np.arange(alpha + 1, dtype=np.float64)
    log_binom = math.lgamma(alpha + 1) - np.array([math.lgamma(k + 1) + math.lgamma(alpha - k + 1)
                                                   for k in range(alpha + 1)])
    terms = log_binom + i * math.log(q) + (alpha - i) * math.log1p(-q) + (i * i - i) / (2 * sigma**2)
    top = float(terms.max())
    return top + math.log(float(np.exp(terms - top).sum()))


def rdp(q: float, sigma: float, steps: int) -> np.ndarray:
    """RDP at every order of :data:`ORDERS` of ``steps`` sampled Gaussian mechanisms."""
    if q >= 1.0:
        return np.array([steps * a / (2 * sigma**2) for a in ORDERS])
    return np.array([steps * _log_a(q, sigma, a) / (a - 1) for a in ORDERS])


def epsilon_for(noise_multiplier: float, q: float, steps: int, delta: float) -> float:
    """epsilon at ``delta`` of ``steps`` sampled Gaussian mechanisms (rate ``q``, noise
    ``noise_multiplier``, unit sensitivity)."""
    orders = np.array(ORDERS, dtype=np.float64)
    eps = (rdp(q, noise_multiplier, steps) - (math.log(delta) + np.log(orders)) / (orders - 1)
           + np.log((orders - 1) / orders))
    return float(max(0.0, np.min(eps)))


def noise_for(epsilon: float, q: float, steps: int, delta: float) -> float:
    """The smallest noise multiplier (to 0.1%) whose epsilon is at most ``epsilon``;
    :class:`SpecError` with the numbers when even :data:`MAX_NOISE` does not reach it."""
    hi = 1.0
    while epsilon_for(hi, q, steps, delta) > epsilon:
        hi *= 2
        if hi > MAX_NOISE:
            floor = epsilon_for(MAX_NOISE, q, steps, delta)
            raise SpecError([f"privacy.dp_sgd: epsilon {epsilon:g} at delta {delta:g} is out of "
                             f"reach: {steps} steps sampling each example with probability "
                             f"{q:.4g}, and even noise multiplier {MAX_NOISE:g} spends epsilon "
                             f"{floor:.3g}; raise epsilon or delta, or train fewer steps or rounds"])
    lo = hi / 2 if hi > 1.0 else 0.0
    while hi - lo > 1e-3 * hi:
        mid = (lo + hi) / 2
        if mid > 0 and epsilon_for(mid, q, steps, delta) <= epsilon:
            hi = mid
        else:
            lo = mid
    return hi


def budget(spec: JobSpec, shard_sizes: Sequence[int]) -> Budget:
    """The budget of a settled spec (one with a noise multiplier)."""
    dp = spec.privacy.dp_sgd
    if dp is None or dp.noise_multiplier is None:
        raise SpecError(["privacy.dp_sgd: no noise multiplier to account for"])
    q, steps = sampling(spec, shard_sizes)
    return Budget(epsilon_for(dp.noise_multiplier, q, steps, dp.delta), dp.delta, dp.noise_multiplier,
                  dp.accountant, q, steps)


def settle(spec: JobSpec, shard_sizes: Sequence[int]) -> tuple[JobSpec, Budget]:
    """``spec`` with both ``epsilon`` and ``noise_multiplier`` filled in, and its budget.

    Only a target epsilon: the noise multiplier that meets it. Only a noise multiplier: the
    epsilon it spends. Both: refused when the noise spends more than the target."""
    dp = spec.privacy.dp_sgd
    if dp is None:
        raise ValueError("not a DP-SGD job")
    q, steps = sampling(spec, shard_sizes)
    sigma = dp.noise_multiplier
    if sigma is None:
        assert dp.epsilon is not None  # the spec model requires one of them
        sigma = noise_for(dp.epsilon, q, steps, dp.delta)
    spent = epsilon_for(sigma, q, steps, dp.delta)
    if dp.epsilon is not None and spent > dp.epsilon * (1 + 1e-9):
        raise SpecError([f"privacy.dp_sgd: noise multiplier {sigma:g} spends epsilon {spent:.3g} "
                         f"at delta {dp.delta:g}, more than the target {dp.epsilon:g}; raise it to "
                         f"{noise_for(dp.epsilon, q, steps, dp.delta):.4g} or drop the target"])
    target = dp.epsilon if dp.epsilon is not None else spent
    settled = dp.model_copy(update={"noise_multiplier": sigma, "epsilon": target})
    new = spec.model_copy(update={"privacy": spec.privacy.model_copy(update={"dp_sgd": settled})})
    return new, Budget(spent, dp.delta, sigma, dp.accountant, q, steps)


def spent(doc: Any) -> Budget | None:
    """The budget of a posted job document (its spec and its shards' published sizes); None
    for a job without DP-SGD."""
    if doc.spec.privacy.dp_sgd is None:
        return None
    return budget(doc.spec, [s.examples for s in sorted(doc.shards, key=lambda s: s.index)])
