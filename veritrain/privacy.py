"""The privacy budget of a DP-SGD job: the (epsilon, delta) its noise multiplier buys.

The accountant (``accountant: "rdp"``, docs/spec/dp.md section 3) is Rényi DP of the Gaussian
mechanism, composed over every step an example takes part in, **without** amplification by
subsampling: the batch order is derived from the public job seed (docs/spec section 4), so an
observer who knows where a record sits in its shard knows which steps used it, and the
Poisson-subsampling analysis would overstate the privacy. Instead the order is replayed here:
for every example of every shard, over every round, ``S = sum over steps of m_t**2`` where
``m_t`` is how often the example appears in step ``t``'s batch (2 when a batch straddles an
epoch boundary and takes it twice: its clipped gradients add up to ``m_t * C``). A step is a
Gaussian mechanism of sensitivity ``m_t * C`` and noise ``sigma * C``, whose RDP of order
``alpha`` is ``alpha * m_t**2 / (2 sigma**2)``; composed, ``alpha * S / (2 sigma**2)`` for the
worst example; converted to (epsilon, delta) by the conversion of Balle et al. 2020 (Opacus's
``get_privacy_spent``; tests/unit/test_privacy.py checks the two agree). Each example
sits in exactly one shard, and the aggregation of shards is post-processing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from veritrain.errors import SpecError
from veritrain.spec import JobSpec

#: Rényi orders searched for the tightest conversion.
ORDERS = [1.0 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [80, 100, 128, 256, 512]
#: The largest noise multiplier post_job will search up to for a target epsilon.
MAX_NOISE = 1e4


@dataclass(frozen=True)
class Budget:
    """What a DP-SGD job spends: ``epsilon`` at ``delta`` for noise ``noise_multiplier``."""

    epsilon: float
    delta: float
    noise_multiplier: float
    accountant: str
    participation: int  # S: the worst example's sum of squared multiplicities

    def as_dict(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "delta": self.delta, "noise_multiplier": self.noise_multiplier,
                "accountant": self.accountant, "participation": self.participation}

    def line(self) -> str:
        return (f"epsilon {self.epsilon:.3g} at delta {self.delta:g} (noise multiplier "
                f"{self.noise_multiplier:.4g}, accountant {self.accountant})")


def participation(spec: JobSpec, shard_sizes: Sequence[int]) -> int:
    """``S``: the largest, over every example of every shard, of the sum over all rounds and
    steps of (times the example is in that step's batch) squared."""
    import torch

    from veritrain.spec import TaskKey
    from veritrain.training.engine import order_for

    worst = 0
    for shard, n in enumerate(shard_sizes):
        total = torch.zeros(n, dtype=torch.int64)
        for r in range(spec.rounds):
            order = order_for(spec, TaskKey(round=r, shard=shard), n)
            for step in range(spec.steps_per_task):
                counts = torch.bincount(order.indices(step), minlength=n)
                total += counts * counts
        worst = max(worst, int(total.max()))
    return worst


def epsilon_for(noise_multiplier: float, s: int, delta: float) -> float:
    """epsilon at ``delta`` of ``s`` unit-sensitivity Gaussian compositions at ``noise_multiplier``."""
    orders = np.array(ORDERS)
    rdp = orders * s / (2.0 * noise_multiplier**2)
    eps = rdp - (math.log(delta) + np.log(orders)) / (orders - 1) + np.log((orders - 1) / orders)
    return float(np.min(eps))


def noise_for(epsilon: float, s: int, delta: float) -> float:
    """The smallest noise multiplier (to 0.1%) whose epsilon is at most ``epsilon``;
    :class:`SpecError` with the numbers when even :data:`MAX_NOISE` does not reach it."""
    hi = 1.0
    while epsilon_for(hi, s, delta) > epsilon:
        hi *= 2
        if hi > MAX_NOISE:
            floor = epsilon_for(MAX_NOISE, s, delta)
            raise SpecError([f"privacy.dp_sgd: epsilon {epsilon:g} at delta {delta:g} is out of "
                             f"reach: the worst example is used {s} times (squared multiplicities) "
                             f"and even noise multiplier {MAX_NOISE:g} spends epsilon {floor:.3g}; "
                             "raise epsilon or delta, or train fewer steps or rounds"])
    lo = hi / 2 if hi > 1.0 else 0.0
    while hi - lo > 1e-3 * hi:
        mid = (lo + hi) / 2
        if mid > 0 and epsilon_for(mid, s, delta) <= epsilon:
            hi = mid
        else:
            lo = mid
    return hi


def budget(spec: JobSpec, shard_sizes: Sequence[int]) -> Budget:
    """The budget of a settled spec (one with a noise multiplier)."""
    dp = spec.privacy.dp_sgd
    if dp is None or dp.noise_multiplier is None:
        raise SpecError(["privacy.dp_sgd: no noise multiplier to account for"])
    s = participation(spec, shard_sizes)
    return Budget(epsilon_for(dp.noise_multiplier, s, dp.delta), dp.delta, dp.noise_multiplier,
                  dp.accountant, s)


def settle(spec: JobSpec, shard_sizes: Sequence[int]) -> tuple[JobSpec, Budget]:
    """``spec`` with both ``epsilon`` and ``noise_multiplier`` filled in, and its budget.

    Only a target epsilon: the noise multiplier that meets it. Only a noise multiplier: the
    epsilon it spends. Both: refused when the noise spends more than the target."""
    dp = spec.privacy.dp_sgd
    if dp is None:
        raise ValueError("not a DP-SGD job")
    s = participation(spec, shard_sizes)
    sigma = dp.noise_multiplier
    if sigma is None:
        assert dp.epsilon is not None  # the spec model requires one of them
        sigma = noise_for(dp.epsilon, s, dp.delta)
    spent = epsilon_for(sigma, s, dp.delta)
    if dp.epsilon is not None and spent > dp.epsilon * (1 + 1e-9):
        raise SpecError([f"privacy.dp_sgd: noise multiplier {sigma:g} spends epsilon {spent:.3g} "
                         f"at delta {dp.delta:g}, more than the target {dp.epsilon:g}; raise it to "
                         f"{noise_for(dp.epsilon, s, dp.delta):.4g} or drop the target"])
    target = dp.epsilon if dp.epsilon is not None else spent
    settled = dp.model_copy(update={"noise_multiplier": sigma, "epsilon": target})
    new = spec.model_copy(update={"privacy": spec.privacy.model_copy(update={"dp_sgd": settled})})
    return new, Budget(spent, dp.delta, sigma, dp.accountant, s)


def spent(doc: Any) -> Budget | None:
    """The budget of a posted job document (its spec and its shards' published sizes); None
    for a job without DP-SGD."""
    if doc.spec.privacy.dp_sgd is None:
        return None
    return budget(doc.spec, [s.examples for s in sorted(doc.shards, key=lambda s: s.index)])
