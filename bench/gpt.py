"""The byte-level GPT on the CPU (issue 17): engine overhead, replay cost, tolerance margins.

Workload: the zoo's ``gpt`` (d_model 256, 4 layers, 4 heads, ~3.2M parameters; context 64,
batch 16, AdamW) on the Python standard library's sources (examples/stdlib_corpus.py), one
thread. Figures, all under ``gpt`` in results.json:

- ``worker_overhead_ratio``: engine wall time (checkpoint every k steps, snapshotted on the
  training thread and written by the background writer) ÷ a plain PyTorch loop, median of rounds;
- ``replay_segment_ratio``: one segment replayed from its checkpoint ÷ (training time ÷ segments);
- ``tolerance``: the bound ``veritrain job calibrate`` proposes (honest chain at 1 thread,
  replays in fresh processes at 2 threads and at the lowest ATen kernel level), then on a
  held-out seed the honest distances at 2 threads and each cheat's distance (skipped step,
  weight +1e-3, other data) against that bound.

``--quick`` shrinks the model (d_model 32, 2 layers, context 32) and the steps: a smoke run.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
THREADS = 1


def _spec(quick: bool, steps: int, k: int, seed: int, bound: float | None = None) -> Any:
    from veritrain.spec import load_spec
    from veritrain.training.profile import current_profile

    replay = current_profile(threads=THREADS).model_dump(mode="json")
    if bound is not None:
        replay["tolerance"] = {"mode": "tolerance", "bound": bound}
    args = {"d_model": 32, "n_heads": 2, "n_layers": 2} if quick else {"d_model": 256, "n_heads": 4,
                                                                      "n_layers": 4}
    return load_spec({
        "schema_version": 2, "model": {"name": "gpt", "args": args},
        "optimizer": {"name": "adamw", "lr": 0.001, "weight_decay": 0.01},
        "batch_size": 16, "seed": seed, "steps_per_task": steps, "checkpoint_interval": k,
        "num_shards": 1, "replay": replay,
        "data": {"input_shape": [32 if quick else 64], "num_classes": 256, "input_dtype": "int64",
                 "targets": "sequence"},
        "deadlines": {"key_window": 1, "submission_window": 1, "reveal_window": 1, "challenge_window": 1},
    })


def _plain(spec: Any, x: Any, y: Any) -> float:
    import torch

    from veritrain.training.state import build_model

    torch.manual_seed(1)
    model = build_model(spec)
    o = spec.optimizer
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    t0 = time.perf_counter()
    for _ in range(spec.steps_per_task):
        idx = torch.randint(0, len(x), (spec.batch_size,))
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x[idx]).reshape(-1, 256), y[idx].reshape(-1))
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def run(quick: bool) -> dict[str, object]:
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "examples"))
    import stdlib_corpus

    from veritrain.spec import TaskKey
    from veritrain.training import engine
    from veritrain.training.sinks import DirectorySink

    torch.set_num_threads(THREADS)
    steps, k, rounds = (10, 5, 1) if quick else (100, 20, 3)
    spec = _spec(quick, steps, k, seed=1)
    context = spec.data.input_shape[0]
    train, held = stdlib_corpus.corpus(max_bytes=200_000 if quick else 1_000_000)
    xs, ys = stdlib_corpus.windows(train, context)
    x, y = engine.as_tensors(spec, xs, ys)
    task = TaskKey(round=0, shard=0)
    plain_t, engine_t, replay_t = [], [], []
    segments = steps // k
    with tempfile.TemporaryDirectory(prefix="veritrain-bench-gpt-") as tmp:
        for r in range(rounds):
            plain_t.append(_plain(spec, x, y))
            sink = DirectorySink(Path(tmp) / f"run{r}")
            t0 = time.perf_counter()
            engine.train_task(spec, task, x, y, sink)
            engine_t.append(time.perf_counter() - t0)
            j = r % segments
            t0 = time.perf_counter()
            engine.replay_segment(spec, task, j, sink.read(j), x, y)
            replay_t.append(time.perf_counter() - t0)
        size = len(sink.read(segments))
    overhead = [e / p for e, p in zip(engine_t, plain_t, strict=True)]
    replay = [rt / (e / segments) for rt, e in zip(replay_t, engine_t, strict=True)]
    params = sum(p.numel() for p in engine.state.build_model(spec).parameters())
    return {"gpt": {
        "worker_overhead_ratio": round(float(np.median(overhead)), 4),
        "replay_segment_ratio": round(float(np.median(replay)), 4),
        "params": params, "steps": steps, "k": k, "threads": THREADS, "context": context,
        "batch_size": spec.batch_size, "checkpoint_bytes": size,
        "plain_seconds": [round(t, 3) for t in plain_t],
        "engine_seconds": [round(t, 3) for t in engine_t],
        "replay_segment_seconds": [round(t, 4) for t in replay_t],
        "tolerance": tolerance(quick, xs, ys),
    }}


def tolerance(quick: bool, xs: Any, ys: Any) -> dict[str, Any]:
    """Calibrated bound vs honest and cheating distances (docstring above)."""
    import torch

    from adversary import cheats
    from veritrain.spec import TaskKey
    from veritrain.training import calibrate, engine, judges
    from veritrain.training.sinks import MemorySink

    steps, k = (10, 5) if quick else (60, 20)
    task = TaskKey(round=0, shard=0)
    cal = calibrate.calibrate_job(_spec(quick, steps, k, seed=0, bound=1.0), xs, ys,
                                  segments=steps // k, reference=calibrate.Setting(THREADS))
    spec = _spec(quick, steps, k, seed=11, bound=cal.bound)
    honest = MemorySink()
    engine.train_task(spec, task, xs, ys, honest)
    half = len(xs) // 2
    planted = {"skip_step": cheats.SkipStep(1, offset=k // 2), "perturb_1e-3": cheats.PerturbWeight(1, 1e-3),
               "other_data": cheats.OtherData(1, xs[half:][::-1].copy(), ys[half:][::-1].copy())}
    bad = {}
    for name, cheat in planted.items():
        bad[name] = MemorySink()
        cheats.dishonest_train(spec, task, xs, ys, cheat, bad[name])
    torch.set_num_threads(THREADS + 1)  # the verifier: another thread count
    try:
        honest_d = [judges.verify_segment(spec, task, j, honest.data(j), honest.data(j + 1), xs, ys)
                    for j in range(steps // k)]
        cheat_d = {n: judges.verify_segment(spec, task, 1, s.data(1), s.data(2), xs, ys)
                   for n, s in bad.items()}
    finally:
        torch.set_num_threads(THREADS)
    return {"calibration": cal.as_dict(), "bound": cal.bound,
            "honest_distances": [v.distance.value for v in honest_d],
            "honest_rejected": sum(not v.accepted for v in honest_d),
            "cheat_distances": {n: v.distance.value for n, v in cheat_d.items()},
            "cheats_accepted": sum(v.accepted for v in cheat_d.values())}
