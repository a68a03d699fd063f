"""The privacy accountant: the sampled Gaussian mechanism's RDP (Poisson sampling with the rate
of the smallest shard, composed over steps and rounds), agreeing with Opacus, and post_job's
settling of the budget."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from requester.errors import UnsupportedError
from requester.sdk import settle_privacy
from veritrain import privacy
from veritrain.data import Dataset
from veritrain.errors import SpecError
from veritrain.spec import JobSpec, load_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits-mlp.yaml"


def spec_with(dp: dict[str, Any], **over: Any) -> JobSpec:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw.update(over)
    raw["privacy"] = {"dp_sgd": {"delta": 1e-5, "max_grad_norm": 1.0, **dp}}
    return load_spec(raw)


def test_sampling_rate_is_the_smallest_shards_and_every_round_composes() -> None:
    spec = spec_with({"noise_multiplier": 1.0}, batch_size=10, steps_per_task=10,
                     checkpoint_interval=5, rounds=3, num_shards=2)
    assert privacy.sampling(spec, [100, 40]) == (0.25, 30)  # q = B / n of the 40-example shard
    assert privacy.sampling(spec, [5, 400]) == (1.0, 30)  # a batch covering a shard: q = 1
    with pytest.raises(SpecError, match="at least one example"):
        privacy.sampling(spec, [100, 0])


@pytest.mark.parametrize(("q", "sigma", "steps"), [(0.07, 1.0, 300), (0.01, 0.8, 1000),
                                                   (0.5, 2.0, 50), (1.0, 2.0, 11)])
def test_epsilon_is_the_sampled_gaussian_rdp_bound_and_agrees_with_opacus(q: float, sigma: float,
                                                                          steps: int) -> None:
    eps = privacy.epsilon_for(sigma, q, steps, 1e-5)
    rdp = pytest.importorskip("opacus.accountants.analysis.rdp")
    ref, _ = rdp.get_privacy_spent(orders=privacy.ORDERS, delta=1e-5,
                                   rdp=rdp.compute_rdp(q=q, noise_multiplier=sigma, steps=steps,
                                                       orders=privacy.ORDERS))
    assert eps == pytest.approx(ref, rel=1e-9)


def test_subsampling_amplifies_and_more_noise_or_fewer_steps_spend_less() -> None:
    full = privacy.epsilon_for(2.0, 1.0, 11, 1e-5)
    rho = 11 / (2 * 2.0**2)  # zCDP of 11 Gaussian compositions: the RDP bound is tighter
    assert full < rho + 2 * math.sqrt(rho * math.log(1e5))
    assert privacy.epsilon_for(2.0, 0.05, 11, 1e-5) < full / 5
    assert privacy.epsilon_for(4.0, 0.05, 200, 1e-5) < privacy.epsilon_for(2.0, 0.05, 200, 1e-5)
    assert privacy.epsilon_for(2.0, 0.05, 100, 1e-5) < privacy.epsilon_for(2.0, 0.05, 200, 1e-5)


def test_settle_finds_the_noise_for_a_target_and_the_epsilon_of_a_noise() -> None:
    spec = spec_with({"epsilon": 4.0})
    settled, b = privacy.settle(spec, [700, 700])
    dp = settled.privacy.dp_sgd
    assert dp is not None and dp.noise_multiplier == b.noise_multiplier and dp.epsilon == 4.0
    assert (b.sampling_rate, b.steps) == (spec.batch_size / 700, spec.steps_per_task * spec.rounds)
    assert b.epsilon <= 4.0 < privacy.epsilon_for(b.noise_multiplier * 0.99, b.sampling_rate, b.steps, 1e-5)
    assert settled.digest() != spec.digest()
    sigma_only, b2 = privacy.settle(spec_with({"noise_multiplier": 2.0}), [700, 700])
    assert sigma_only.privacy.dp_sgd.epsilon == pytest.approx(b2.epsilon)  # type: ignore[union-attr]
    assert privacy.budget(sigma_only, [700, 700]) == b2


def test_an_impossible_or_contradictory_target_is_refused_with_the_numbers() -> None:
    with pytest.raises(SpecError, match=r"epsilon 1e-06 at delta 1e-05 is out of reach: .* 10000"):
        privacy.settle(spec_with({"epsilon": 1e-6}), [700, 700])
    with pytest.raises(SpecError, match=r"noise multiplier 0.5 spends epsilon .* more than the "
                                        r"target 1; raise it to"):
        privacy.settle(spec_with({"epsilon": 1.0, "noise_multiplier": 0.5}), [700, 700])


def test_post_job_settles_the_budget_on_its_shards_before_posting() -> None:
    x = np.zeros((1400, 64), np.float32)
    data = Dataset(x, np.arange(1400) % 10, "digits")
    settled = settle_privacy(spec_with({"epsilon": 8.0}), data)
    assert settled.privacy.dp_sgd is not None and settled.privacy.dp_sgd.noise_multiplier is not None
    with pytest.raises(UnsupportedError, match="cannot post this job: privacy.dp_sgd: epsilon 1e-06"):
        settle_privacy(spec_with({"epsilon": 1e-6}), data)
    plain = load_spec(yaml.safe_load(EXAMPLE.read_text()))
    assert settle_privacy(plain, data) is plain
