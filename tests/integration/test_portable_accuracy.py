"""A portable run trains as well as the standard float32 run (held-out metric within noise).

Noise is measured, not assumed: two standard runs that differ only in their seed set the spread;
the portable run (the first seed) must land within twice that spread (or a small floor) of the
standard run with the same seed, on digits (accuracy) and on the character LM (loss).
"""

from __future__ import annotations

import pytest
import torch

from veritrain.training.portable.workloads import train_and_evaluate


@pytest.mark.parametrize(("name", "steps", "metric", "floor"), [
    ("mlp", 300, "accuracy", 0.02),
    ("char_lm", 120, "loss", 0.03),
])
def test_portable_training_matches_standard_within_seed_noise(name: str, steps: int, metric: str,
                                                              floor: float) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        standard, _ = train_and_evaluate(name, "standard", steps, seed=7)
        other_seed, _ = train_and_evaluate(name, "standard", steps, seed=8)
        portable, _ = train_and_evaluate(name, "portable", steps, seed=7)
        untrained, _ = train_and_evaluate(name, "portable", 1, seed=7)
    finally:
        torch.set_num_threads(before)
    std, other, port, start = (getattr(r, metric) for r in (standard, other_seed, portable, untrained))
    noise, gap = abs(std - other), abs(port - std)
    if metric == "loss":  # relative, as the LM's loss scale is ~log(vocabulary)
        noise, gap = noise / std, gap / std
        assert port < 0.8 * start  # it learned
    else:
        assert port > start + 0.3
    assert gap <= max(2 * noise, floor), (std, other, port)
