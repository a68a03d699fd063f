"""Engine overhead: the deterministic engine vs a plain PyTorch loop, side by side in one run.

- ``worker_overhead_ratio`` = engine wall time (training + a checkpoint every k = 50 steps,
  encoded, hashed and written to a directory) ÷ a plain loop's wall time for the same model
  (an MLP of ≥ 1M parameters), data (load_digits), steps, batch size and threads. Target ≤ 1.05.
- ``replay_segment_ratio`` = mean time to replay a segment from its checkpoint bytes
  ÷ (engine training time ÷ segments). Target ≤ 1.1. Each round replays every segment of the
  run it just trained, so numerator and denominator cover the same steps (one replayed segment
  of ~0.5 s per round was too noisy on a loaded machine: 1.17 in one run, 1.05 in the next).

Each round runs plain, engine and the replays back to back, so other load on the machine hits
them alike; the ratios are the medians over rounds.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from veritrain.spec import TaskKey

THREADS = 1
K = 50


def _spec(steps: int) -> Any:
    from veritrain.spec import load_spec
    from veritrain.training.profile import current_profile

    return load_spec({
        "model": {"name": "mlp", "args": {"hidden": [1024, 1024]}},
        "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
        "batch_size": 64, "seed": 1, "steps_per_task": steps, "checkpoint_interval": K,
        "num_shards": 1, "replay": current_profile(threads=THREADS).model_dump(),
        "data": {"input_shape": [64], "num_classes": 10},
        "deadlines": {"key_window": 1, "submission_window": 1, "reveal_window": 1, "challenge_window": 1},
    })


def _plain(spec: Any, x: Any, y: Any) -> float:
    """The loop a practitioner would write: same model, optimizer, batch size and steps."""
    import torch
    import torch.nn.functional as F

    from veritrain.training.state import build_model

    torch.manual_seed(1)
    model = build_model(spec)
    opt = torch.optim.SGD(model.parameters(), lr=spec.optimizer.lr, momentum=spec.optimizer.momentum)
    t0 = time.perf_counter()
    for _ in range(spec.steps_per_task):
        idx = torch.randint(0, len(x), (spec.batch_size,))
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def run(quick: bool) -> dict[str, object]:
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    from veritrain.training import engine, state
    from veritrain.training.sinks import DirectorySink

    torch.set_num_threads(THREADS)
    steps, rounds = (100, 2) if quick else (500, 5)
    spec = _spec(steps)
    task = TaskKey(round=0, shard=0)
    xs, ys = load_digits(return_X_y=True)
    x, y = engine.as_tensors(spec, (xs / 16.0).astype(np.float32), ys)
    plain_t, engine_t, replay_t = [], [], []
    segments = steps // K
    with tempfile.TemporaryDirectory(prefix="veritrain-bench-") as tmp:
        for r in range(rounds):  # plain, engine, replays: adjacent, so load hits all three
            plain_t.append(_plain(spec, x, y))
            sink = DirectorySink(Path(tmp) / f"run{r}")
            t0 = time.perf_counter()
            engine.train_task(spec, task, x, y, sink)
            engine_t.append(time.perf_counter() - t0)
            ckpts = [sink.read(j) for j in range(segments)]
            t0 = time.perf_counter()
            for j, ckpt in enumerate(ckpts):
                engine.replay_segment(spec, task, j, ckpt, x, y)
            replay_t.append((time.perf_counter() - t0) / segments)
        size = len(sink.read(segments))
    overhead = [e / p for e, p in zip(engine_t, plain_t, strict=True)]
    replay = [rt / (e / segments) for rt, e in zip(replay_t, engine_t, strict=True)]
    params = sum(p.numel() for p in state.build_model(spec).parameters())
    extra = {} if quick else tolerance_study()
    return {
        **extra,
        "worker_overhead_ratio": round(float(np.median(overhead)), 4),
        "replay_segment_ratio": round(float(np.median(replay)), 4),
        "engine": {"params": params, "steps": steps, "k": K, "threads": THREADS, "batch_size": 64,
                   "plain_seconds": [round(t, 3) for t in plain_t],
                   "engine_seconds": [round(t, 3) for t in engine_t],
                   "replay_segment_seconds": [round(t, 4) for t in replay_t],  # mean per segment, per round
                   "checkpoint_bytes": size},
    }


def tolerance_study(
    seeds: tuple[int, ...] = (11, 12, 13), threads: tuple[int, int] = (1, 2)
) -> dict[str, Any]:
    """False-reject / false-accept rates of tolerance mode (docs/engine.md).

    Digits MLP [256, 256], Adam lr 1e-3, 200 steps, k = 20. The bound is calibrated on seed 0
    (honest run at ``threads[0]``, replays at ``threads[1]``, ×10 safety); then, for held-out
    seeds, every honest segment is verified at ``threads[1]`` (false rejects) and each cheat at
    segments 2, 5, 8 (false accepts).
    """
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    from adversary import cheats as adversary
    from veritrain.spec import load_spec
    from veritrain.training import engine, judges, tolerance
    from veritrain.training.profile import current_profile
    from veritrain.training.sinks import MemorySink

    xs, ys = load_digits(return_X_y=True)
    x, y = (xs[:900] / 16.0).astype(np.float32), ys[:900]
    ox, oy = (xs[900:1800] / 16.0).astype(np.float32), ys[900:1800]

    def spec(seed: int, bound: float | None) -> Any:
        replay = current_profile(threads=threads[0]).model_dump()
        if bound is not None:
            replay["tolerance"] = {"mode": "tolerance", "bound": bound}
        return load_spec({
            "model": {"name": "mlp", "args": {"hidden": [256, 256]}},
            "optimizer": {"name": "adam", "lr": 1e-3}, "batch_size": 32, "seed": seed,
            "steps_per_task": 200, "checkpoint_interval": 20, "num_shards": 1, "replay": replay,
            "data": {"input_shape": [64], "num_classes": 10},
            "deadlines": {"key_window": 1, "submission_window": 1, "reveal_window": 1, "challenge_window": 1},
        })

    task = TaskKey(round=0, shard=0)

    def chain_of(s: Any, cheat: Any = None) -> list[bytes]:
        sink = MemorySink()
        if cheat is None:
            engine.train_task(s, task, x, y, sink)
        else:
            adversary.dishonest_train(s, task, x, y, cheat, sink)
        return [sink.data(i) for i in range(s.num_checkpoints)]

    cal_spec = spec(0, None)
    cal = tolerance.calibrate(cal_spec, task, x, y, chain_of(cal_spec), [threads[1]])
    honest_d: list[float] = []
    cheat_d: dict[str, list[float]] = {}
    rejects = accepts = cheats = 0
    for seed in seeds:
        s = spec(seed, cal.bound)
        honest = chain_of(s)
        torch.set_num_threads(threads[1])
        for j in range(s.num_checkpoints - 1):
            v = judges.verify_segment(s, task, j, honest[j], honest[j + 1], x, y)
            honest_d.append(v.distance.value)
            rejects += not v.accepted
        torch.set_num_threads(threads[0])
        for seg in (2, 5, 8):
            for name, cheat in (("skip_step", adversary.SkipStep(seg, 7)),
                                ("perturb_1e-3", adversary.PerturbWeight(seg, 1e-3)),
                                ("perturb_1e-4", adversary.PerturbWeight(seg, 1e-4)),
                                ("other_data", adversary.OtherData(seg, ox, oy))):
                bad = chain_of(s, cheat)
                torch.set_num_threads(threads[1])
                v = judges.verify_segment(s, task, seg, bad[seg], bad[seg + 1], x, y)
                torch.set_num_threads(threads[0])
                cheat_d.setdefault(name, []).append(v.distance.value)
                accepts += v.accepted
                cheats += 1
    return {
        "tolerance_bound": cal.bound,
        "tolerance_false_reject_rate": rejects / len(honest_d),
        "tolerance_false_accept_rate": accepts / cheats,
        "tolerance": {"calibration_max": cal.largest, "honest_segments": len(honest_d),
                      "honest_max": max(honest_d), "honest_median": float(np.median(honest_d)),
                      "cheats": cheats, "cheat_min": {k: min(v) for k, v in cheat_d.items()},
                      "threads": list(threads)},
    }
