"""Verifier cost: the compute a sampling verifier spends per result ÷ the worker's compute.

``verifier_cost_ratio`` = (time the verifier spends on one revealed result at its default
``p``) ÷ (time the worker spent producing it), measured side by side in one process:

- worker: train the task with the deterministic engine (the demo's digits job: MLP
  [128, 64], 200 steps, k = 20, one thread) and encrypt every checkpoint for upload, as the
  worker does;
- verifier: for each of ``draws`` independent sampling secrets, choose the segments with
  the verifier's rule (``u_j = HMAC(HMAC(secret, chain|task|worker|root), j) < p``, see
  docs/verifier.md), and for each chosen segment decrypt checkpoint ``j``, replay it, decrypt
  checkpoint ``j+1`` and compare its hash. The ratio is total verifier time ÷ (draws × worker
  time), so it converges to ``p × replay cost`` without being one number multiplied by another.

The default ``p`` is read from the verifier's documented settings table (docs/verifier.md,
row ``P``); veritrain never imports the verifier package.
IPFS fetches and chain calls are left out of both sides (they are the storage and gas
benchmarks' business); this is the compute ratio.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from veritrain.spec import TaskKey

ROOT = Path(__file__).resolve().parents[1]
VERIFIER_DOC = ROOT / "docs" / "verifier.md"
#: Used only when docs/verifier.md cannot be read (an installed wheel without docs).
FALLBACK_P = 0.1
_LABEL = b"veritrain/sample/v1"


def default_p(doc: Path = VERIFIER_DOC) -> tuple[float, str]:
    """The verifier's default ``p`` as documented (settings table row ``| `P` | 0.1 |``)."""
    try:
        text = doc.read_text()
    except OSError:
        return FALLBACK_P, "fallback constant (docs/verifier.md unreadable)"
    m = re.search(r"^\|\s*`P`\s*\|\s*([0-9.]+)\s*\|", text, re.MULTILINE)
    if m is None:
        return FALLBACK_P, "fallback constant (no `P` row in docs/verifier.md)"
    return float(m.group(1)), "docs/verifier.md settings table"


def sampled_segments(
    secret: bytes, chain_id: int, task_id: int, worker: str, root: bytes, n_segments: int, p: float
) -> list[int]:
    """The verifier's sampling rule (docs/verifier.md, 'What it does with a revealed result')."""
    msg = b"|".join((_LABEL, str(chain_id).encode(), str(task_id).encode(), worker.lower().encode(), root))
    seed = hmac.new(secret, msg, hashlib.sha256).digest()
    out = []
    for j in range(n_segments):
        digest = hmac.new(seed, j.to_bytes(8, "big"), hashlib.sha256).digest()
        if (int.from_bytes(digest[:8], "big") >> 11) / float(1 << 53) < p:
            out.append(j)
    return out


def bench_spec(quick: bool) -> Any:
    """The demo's job (examples/digits-mlp.yaml) at one thread; quick: 40 steps, k = 10."""
    import yaml

    from veritrain.spec import load_spec
    from veritrain.training.profile import current_profile

    raw = yaml.safe_load((ROOT / "examples" / "digits-mlp.yaml").read_text())
    if quick:
        raw.update(steps_per_task=40, checkpoint_interval=10)
    raw["replay"] = current_profile(threads=1).model_dump()
    return load_spec(raw)


def run(quick: bool) -> dict[str, Any]:
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    from veritrain import crypto, merkle
    from veritrain.training import engine
    from veritrain.training.sinks import DirectorySink

    p, p_source = default_p()
    spec = bench_spec(quick)
    torch.set_num_threads(spec.replay.threads)
    task = TaskKey(round=0, shard=0)
    xs, ys = load_digits(return_X_y=True)
    n_shards = 4  # the demo's shape: the whole set over four tasks
    x, y = (xs / 16.0).astype(np.float32)[0::n_shards], ys.astype(np.int64)[0::n_shards]
    segments = spec.steps_per_task // spec.checkpoint_interval
    rounds, draws = (1, 20) if quick else (3, 40)
    key = crypto.generate_data_key()
    worker_t: list[float] = []
    verifier_t: list[float] = []
    replays = 0
    mismatches = 0
    with tempfile.TemporaryDirectory(prefix="vt-bench-vcost-") as tmp:
        # warm-up: torch's first steps and one replay, untimed (both sides would pay it once)
        warm = DirectorySink(Path(tmp) / "warm")
        engine.train_task(spec, task, x, y, warm)
        engine.replay_segment(spec, task, 0, warm.read(0), x, y)
        for r in range(rounds):
            sink = DirectorySink(Path(tmp) / f"run{r}")
            t0 = time.perf_counter()
            hashes = engine.train_task(spec, task, x, y, sink)
            sealed = [
                crypto.encrypt_bytes(sink.read(i), key, job_id=1, shard_index=i) for i in range(len(hashes))
            ]
            worker_t.append(time.perf_counter() - t0)
            root = bytes(merkle.root(hashes))  # what the worker commits; seeds the draw
            t0 = time.perf_counter()
            for _ in range(draws):
                chosen = sampled_segments(os.urandom(32), 31337, 1 << 32, "0x" + "11" * 20, root, segments, p)
                for j in chosen:
                    ckpt = crypto.decrypt_bytes(sealed[j], key, job_id=1, shard_index=j)
                    h_next = engine.replay_segment(spec, task, j, ckpt, x, y)
                    crypto.decrypt_bytes(sealed[j + 1], key, job_id=1, shard_index=j + 1)
                    replays += 1
                    mismatches += h_next != hashes[j + 1]
            verifier_t.append(time.perf_counter() - t0)
    ratio = sum(verifier_t) / (draws * sum(worker_t))
    return {
        "verifier_cost_ratio": round(ratio, 4),
        "verifier_cost": {
            "p": p,
            "p_source": p_source,
            "segments_per_result": segments,
            "results_checked": rounds * draws,
            "segments_replayed": replays,
            "replay_mismatches": int(mismatches),
            "expected_replays_per_result": p * segments,
            "worker_seconds": [round(t, 3) for t in worker_t],
            "verifier_seconds_per_round": [round(t, 3) for t in verifier_t],
            "model": "mlp [128, 64] (examples/digits-mlp.yaml)",
            "steps": spec.steps_per_task,
            "k": spec.checkpoint_interval,
            "threads": spec.replay.threads,
        },
    }
