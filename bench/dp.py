"""DP-SGD (issue 19): the step's cost, and accuracy and membership inference at epsilon 1, 4, 8
and without DP, on digits and breast-cancer.

Each dataset is split in half with a fixed seed: the training half (the members) trains one
shard for the example job's steps through the engine in this process (``train_task`` with the
DP key: the path a worker runs; the real-stack run of a DP job is
tests/integration/test_dp_real_stack.py), the other half (the non-members) is held out. The
noise multiplier for each epsilon (delta 1e-5, C = 1) comes from the accountant
(:mod:`veritrain.privacy`) as post_job computes it. The audit (:mod:`veritrain.audit`) runs the
loss-threshold attack and LiRA with ``shadows`` shadow models.
``dp_step_ratio``: seconds per DP-SGD step ÷ seconds per plain step, same model and batches.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

THREADS = 1
EPSILONS = (1.0, 4.0, 8.0)
ROOT = Path(__file__).resolve().parents[1]


def _spec(name: str, steps: int, dp: dict[str, Any] | None) -> Any:
    from veritrain.spec import load_spec
    from veritrain.training.profile import current_profile

    raw = yaml.safe_load((ROOT / "examples" / "digits-mlp.yaml").read_text())
    raw.update(num_shards=1, steps_per_task=steps, checkpoint_interval=steps, batch_size=32)
    raw["optimizer"] = {"name": "sgd", "lr": 0.1, "momentum": 0.9}
    raw["model"] = {"name": "mlp", "args": {"hidden": [64]}}
    raw["replay"] = current_profile(threads=THREADS).model_dump(mode="json")
    if name == "breast_cancer":
        raw["data"] = {"input_shape": [30], "num_classes": 2}
    if dp is not None:
        raw["privacy"] = {"dp_sgd": {"delta": 1e-5, "max_grad_norm": 1.0, **dp}}
    return load_spec(raw)


def _data(name: str) -> tuple[Any, Any]:
    import numpy as np
    from sklearn.datasets import load_breast_cancer, load_digits

    from veritrain.data import Dataset

    x, y = (load_digits if name == "digits" else load_breast_cancer)(return_X_y=True)
    x = x.astype(np.float32)
    perm = np.random.default_rng(19).permutation(len(x))
    half = len(x) // 2
    tr, te = perm[:half], perm[half: 2 * half]
    mean, sd = x[tr].mean(0), x[tr].std(0) + 1e-6  # standardized on the training half only
    x = ((x - mean) / sd).astype(np.float32)
    return Dataset(x[tr], y[tr].astype(np.int64)), Dataset(x[te], y[te].astype(np.int64))


def _train(spec: Any, train: Any, key: bytes | None) -> tuple[Any, bytes, float]:
    """(model, its last checkpoint, seconds per step) of one task trained on ``train``."""
    from veritrain.spec import TaskKey
    from veritrain.training import engine, state
    from veritrain.training.sinks import MemorySink

    task = TaskKey(round=0, shard=0)
    sink = MemorySink()
    t0 = time.perf_counter()
    engine.train_task(spec, task, train.features, train.labels, sink, dp_key=key)
    per_step = (time.perf_counter() - t0) / spec.steps_per_task
    last = sink.data(spec.num_checkpoints - 1)
    return state.restore(spec, task, last, dp_key=key).model, last, per_step


def step_ratio(train: Any, steps: int) -> dict[str, float]:
    """Seconds per step of the plain and the DP-SGD (epsilon 8) step on the same batches, after
    a warm-up, the two alternating in blocks so that load on the machine hits both."""
    import os

    from veritrain import privacy
    from veritrain.spec import TaskKey
    from veritrain.training import engine, state

    task = TaskKey(round=0, shard=0)
    plain = _spec("digits", steps, None)
    dp, _ = privacy.settle(_spec("digits", steps, {"epsilon": 8.0}), [len(train)])
    key = os.urandom(32)
    x, y = engine.as_tensors(plain, train.features, train.labels)
    order = engine.order_for(plain, task, len(x))
    lives = {"plain": state.initial(plain, task), "dp": state.initial(dp, task, dp_key=key)}
    seconds = {"plain": 0.0, "dp": 0.0}
    block = max(1, steps // 5)
    for i in range(6):
        for name, live in lives.items():
            t0 = time.perf_counter()
            for _ in range(block):
                engine.train_step(live, order, x, y)
            if i:  # block 0 is the warm-up
                seconds[name] += time.perf_counter() - t0
    n = 5 * block
    return {"plain_ms_per_step": round(seconds["plain"] / n * 1000, 3),
            "dp_ms_per_step": round(seconds["dp"] / n * 1000, 3),
            "ratio": round(seconds["dp"] / seconds["plain"], 2)}


def run(quick: bool) -> dict[str, object]:
    import os

    import torch

    from veritrain import audit, privacy
    from veritrain.training import engine

    torch.set_num_threads(THREADS)
    steps = 30 if quick else 300
    shadows = 0 if quick else 4
    datasets = ("digits",) if quick else ("digits", "breast_cancer")
    epsilons = (8.0,) if quick else EPSILONS
    detail: dict[str, Any] = {"steps": steps, "shadows": shadows, "threads": THREADS, "delta": 1e-5}
    for name in datasets:
        train, test = _data(name)
        rows: dict[str, Any] = {}
        for eps in (None, *epsilons):
            spec = _spec(name, steps, None if eps is None else {"epsilon": eps})
            key = None
            if eps is not None:
                spec, b = privacy.settle(spec, [len(train)])
                key = os.urandom(32)
            model, last, per_step = _train(spec, train, key)
            ev = engine.evaluate(spec, last, test.features, test.labels)
            report = audit.membership(spec, model, train, test, shadows=shadows)
            attacks = report["attacks"]
            row = {"accuracy": round(ev.accuracy, 4),
                   "ms_per_step_with_checkpoints": round(per_step * 1000, 2),
                   **{f"{a}_auc": round(r["auc"], 4) for a, r in attacks.items()},
                   **{f"{a}_tpr_at_0.1%_fpr": round(r["tpr_at_0.1%_fpr"], 4) for a, r in attacks.items()},
                   **{f"{a}_advantage": round(r["advantage"], 4) for a, r in attacks.items()}}
            if eps is not None:
                row.update(noise_multiplier=round(b.noise_multiplier, 4), epsilon_spent=round(b.epsilon, 3))
            rows["none" if eps is None else f"eps{eps:g}"] = row
        detail[name] = rows
    timing = step_ratio(_data("digits")[0], steps)
    detail["step_time"] = timing
    digits = detail["digits"]
    attack = "lira" if shadows else "loss_threshold"
    out: dict[str, object] = {
        "dp_step_ratio": timing["ratio"],
        "dp_accuracy_drop_eps8_digits":
            round((digits["none"]["accuracy"] - digits["eps8"]["accuracy"]) * 100, 2),
        "dp_mia_advantage_ratio_eps8_digits": round(
            digits["eps8"][f"{attack}_advantage"] / max(digits["none"][f"{attack}_advantage"], 1e-9), 3),
        "dp": detail,
    }
    return out

