"""The privacy accountant: participation replayed from the public batch order, RDP of the
Gaussian mechanism without subsampling amplification, and post_job's settling of the budget."""

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


def test_participation_counts_every_use_of_the_worst_example() -> None:
    # one whole epoch a round: every example once per round; 3 rounds compose to 3
    one_epoch = spec_with({"noise_multiplier": 1.0}, batch_size=10, steps_per_task=10,
                          checkpoint_interval=5, rounds=3, num_shards=1)
    assert privacy.participation(one_epoch, [100]) == 3
    # 2.5 epochs: some examples are used 3 times; a straddling batch may take one twice (4 + ...)
    partial = spec_with({"noise_multiplier": 1.0}, batch_size=7, steps_per_task=36,
                        checkpoint_interval=6, num_shards=1)
    s = privacy.participation(partial, [100])
    assert 3 <= s <= 3 + 3  # ceil(252/100) uses, at most one of them doubled (2**2 = 1 + 3)


def test_epsilon_is_the_rdp_gaussian_bound_and_agrees_with_opacus() -> None:
    eps = privacy.epsilon_for(2.0, 11, 1e-5)
    rho = 11 / (2 * 2.0**2)  # zCDP of 11 Gaussian compositions: the RDP bound is tighter
    assert eps < rho + 2 * math.sqrt(rho * math.log(1e5))
    assert privacy.epsilon_for(4.0, 11, 1e-5) < eps < privacy.epsilon_for(1.0, 11, 1e-5)
    rdp = pytest.importorskip("opacus.accountants.analysis.rdp")
    ref, _ = rdp.get_privacy_spent(orders=privacy.ORDERS, delta=1e-5,
                                   rdp=rdp.compute_rdp(q=1.0, noise_multiplier=2.0, steps=11,
                                                       orders=privacy.ORDERS))
    assert eps == pytest.approx(ref, rel=1e-9)


def test_settle_finds_the_noise_for_a_target_and_the_epsilon_of_a_noise() -> None:
    spec = spec_with({"epsilon": 4.0})
    settled, b = privacy.settle(spec, [700, 700])
    dp = settled.privacy.dp_sgd
    assert dp is not None and dp.noise_multiplier == b.noise_multiplier and dp.epsilon == 4.0
    assert b.epsilon <= 4.0 < privacy.epsilon_for(b.noise_multiplier * 0.99, b.participation, 1e-5)
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
