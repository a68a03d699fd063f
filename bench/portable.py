"""Portable mode's cost and accuracy (issue 20): portable step time ÷ standard step time.

For each reference workload (:mod:`veritrain.training.portable.workloads`: the digits MLP and
the GPT-style character LM), one thread, standard and portable runs of the same steps
alternate for a few rounds, so load on the machine hits both; ``portable_step_ratio`` is the
median ratio of their seconds per step. Each round's runs also give the held-out metric
(digits accuracy, LM loss) of both modes, reported beside it.
"""

from __future__ import annotations

from typing import Any

THREADS = 1


def run(quick: bool) -> dict[str, object]:
    import numpy as np
    import torch

    from veritrain.training.portable.workloads import NAMES, train_and_evaluate

    torch.set_num_threads(THREADS)
    steps = {"mlp": 20, "char_lm": 5} if quick else {"mlp": 400, "char_lm": 200}
    rounds = 1 if quick else 3
    ratios: dict[str, float] = {}
    detail: dict[str, Any] = {"threads": THREADS, "rounds": rounds, "steps": steps}
    for name in NAMES:
        per_round = []
        metrics: dict[str, list[float]] = {"standard": [], "portable": []}
        seconds: dict[str, list[float]] = {"standard": [], "portable": []}
        for r in range(rounds):
            for mode in ("standard", "portable"):
                evaluation, per_step = train_and_evaluate(name, mode, steps[name], seed=7 + r)
                metrics[mode].append(evaluation.accuracy if name == "mlp" else evaluation.loss)
                seconds[mode].append(per_step)
            per_round.append(seconds["portable"][-1] / seconds["standard"][-1])
        ratios[name] = round(float(np.median(per_round)), 2)
        detail[name] = {
            "metric": "held-out accuracy" if name == "mlp" else "held-out loss",
            "standard": [round(m, 4) for m in metrics["standard"]],
            "portable": [round(m, 4) for m in metrics["portable"]],
            "standard_ms_per_step": [round(s * 1e3, 2) for s in seconds["standard"]],
            "portable_ms_per_step": [round(s * 1e3, 2) for s in seconds["portable"]],
        }
    return {"portable_step_ratio": ratios, "portable": detail}
