"""The two reference jobs that portable mode is measured on (tests, ``make bench``, GPU checks).

- ``mlp``: scikit-learn's digits (64 features, 10 classes), an MLP with dropout, Adam;
- ``char_lm``: a character language model (the zoo's GPT-style transformer, dropout, AdamW)
  on the text of scikit-learn's dataset descriptions, which ship inside its wheel.

Both return (spec, train x, train y, held-out x, held-out y). A portable spec is the same on
every machine (its replay profile records fixed values that portable replay ignores); a
standard spec pins the profile this process honours, as a worker's would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

NAMES = ("mlp", "char_lm")
CONTEXT = 32


def _profile(mode: str, threads: int | None) -> dict[str, Any]:
    from veritrain.training.profile import current_profile, torch_version

    if mode == "portable":
        return {"torch_version": torch_version(), "threads": 1, "mkl_cbwr": "AVX2,STRICT",
                "cpu_isa": "avx2", "mode": "portable"}
    return current_profile(threads=threads).model_dump()


def _spec(name: str, mode: str, steps: int, k: int, threads: int | None, seed: int) -> Any:
    from veritrain.spec import load_spec

    if name == "mlp":
        model = {"name": "mlp", "args": {"hidden": [128, 64], "activation": "relu", "dropout": 0.1}}
        optimizer = {"name": "adam", "lr": 2e-3}
        data = {"input_shape": [64], "num_classes": 10}
        batch = 32
    else:
        model = {"name": "char_lm", "args": {"d_model": 32, "n_heads": 2, "n_layers": 2, "d_ff": 64,
                                             "dropout": 0.1}}
        optimizer = {"name": "adamw", "lr": 3e-3, "weight_decay": 0.01}
        data = {"input_shape": [CONTEXT], "num_classes": len(vocabulary()), "input_dtype": "int64",
                "targets": "sequence"}
        batch = 16
    return load_spec({
        "model": model, "optimizer": optimizer, "batch_size": batch, "seed": seed,
        "steps_per_task": steps, "checkpoint_interval": k, "num_shards": 1,
        "replay": _profile(mode, threads), "data": data,
        "deadlines": {"key_window": 1, "submission_window": 1, "reveal_window": 1, "challenge_window": 1},
    })


def text() -> bytes:
    import sklearn.datasets

    descr = Path(sklearn.datasets.__file__).parent / "descr"
    return b"\n".join(p.read_bytes() for p in sorted(descr.glob("*.rst")))


def vocabulary() -> bytes:
    return bytes(sorted(set(text())))


def _windows() -> np.ndarray:
    raw = text()
    table = np.zeros(256, dtype=np.int64)
    table[np.frombuffer(vocabulary(), dtype=np.uint8)] = np.arange(len(vocabulary()))
    ids = table[np.frombuffer(raw, dtype=np.uint8)]
    starts = range(0, len(ids) - CONTEXT - 1, CONTEXT // 2)
    return np.stack([ids[s : s + CONTEXT + 1] for s in starts])


def workload(name: str, mode: str, *, steps: int = 40, k: int = 10, threads: int | None = None,
             seed: int = 7) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(spec, x, y, held-out x, held-out y) for ``name`` in ``mode`` ("standard" or "portable")."""
    if name not in NAMES:
        raise ValueError(f"unknown workload {name!r}; known: {', '.join(NAMES)}")
    spec = _spec(name, mode, steps, k, threads, seed)
    if name == "mlp":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x, y = (x / 16.0).astype(np.float32), y.astype(np.int64)
    else:
        w = _windows()
        x, y = w[:, :-1], w[:, 1:]
    cut = len(x) * 4 // 5  # the last fifth is held out (contiguous: no text shared with training)
    return spec, x[:cut], y[:cut], x[cut:], y[cut:]


def train_and_evaluate(name: str, mode: str, steps: int, *, seed: int = 7) -> tuple[Any, float]:
    """Train ``name`` in ``mode`` for ``steps`` (one checkpoint at the end) in this process;
    (the held-out :class:`~veritrain.training.engine.Evaluation`, seconds per step)."""
    import time

    import torch

    from veritrain.spec import TaskKey
    from veritrain.training import engine, profile, state

    spec, x, y, hx, hy = workload(name, mode, steps=steps, k=steps, threads=torch.get_num_threads(),
                                  seed=seed)
    task = TaskKey(round=0, shard=0)
    profile.enter(spec.replay)
    live = state.initial(spec, task)
    xs, ys = engine.as_tensors(spec, x, y)
    order = engine.order_for(spec, task, len(xs))
    t0 = time.perf_counter()
    while live.step < steps:
        engine.train_step(live, order, xs, ys)
    per_step = (time.perf_counter() - t0) / steps
    return engine.evaluate(spec, state.capture(spec, task, live), hx, hy), per_step
