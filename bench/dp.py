"""DP-SGD (issue 19): accuracy and membership inference at epsilon 1, 4, 8 and without DP, from
jobs that ran on the real stack with verification; accuracy over several seeds in-process; the
DP step's cost.

**Real stack** (``real_stack``): one fresh Anvil + js-ipfs stack, contracts deployed, every role
its own process through its CLI: the requester posts every job with ``veritrain job submit
--holdout 0.5`` (post_job settles the noise multiplier for the target epsilon) and serves keys
with ``veritrain job serve``; two ``veritrain worker run`` processes train the tasks; a sampling
verifier (``veritrain verifier run``) replays **every** segment (``full_verification``) with the
shard key, bitwise; the bench advances chain time past the challenge window once the verifier
has checked every revealed result. Then ``veritrain job fetch`` (held-out accuracy, the epsilon
spent) and ``veritrain audit membership`` on the fetched model: members = the job's training
split, non-members = the requester's held-out half. The attacks are the loss threshold and LiRA
(online, ``shadows`` shadow models trained with the job's recipe, DP under a random key).

Settings (:data:`SETTINGS`; one shard each, delta 1e-5, C = 1):

- ``digits``: all 1,797 images (898 members), pixels / 16, MLP [64], SGD lr 1.0, Poisson batches
  of expected size 128, 200 steps (~28 epochs). The utility setting: the accuracy target.
- ``breast_cancer``: 569 rows (284 members), standardized on the training split, MLP [64],
  SGD lr 1.0, batch 32, 200 steps.
- ``digits_small``: 400 images (200 members), MLP [256], SGD lr 0.5, batch 32, 1,500 steps
  (240 epochs). Digits generalises so well that at the utility setting even the non-DP model
  leaks little (loss-threshold AUC ~0.55, near the noise floor), which makes a DP/non-DP ratio
  meaningless; this setting overfits without DP, so the ratio measures what DP removes. The
  membership-advantage target is read here.

The attack's advantage of a model is the larger of the two attacks' ``max(TPR - FPR)``.
``dp_step_ratio``: seconds per DP-SGD step ÷ seconds per plain step, same model and data.
``--quick`` (the test suite's): in-process only (one seed, a 40-step digits task, loss
threshold); the real stack costs minutes (stack start, 12 jobs, a CLI process per submit,
fetch and audit) and runs in the full bench only.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

THREADS = 1
EPSILONS = (1.0, 4.0, 8.0)
DELTA = 1e-5
SEEDS = (1, 2, 3)
SHADOWS = 4
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Setting:
    data: str  # "digits" or "breast_cancer"
    examples: int | None  # a seeded subset of this many (members + non-members); None: all
    hidden: tuple[int, ...]
    lr: float
    batch: int
    steps: int
    k: int


SETTINGS: dict[str, Setting] = {
    "digits": Setting("digits", None, (64,), 1.0, 128, 200, 20),
    "breast_cancer": Setting("breast_cancer", None, (64,), 1.0, 32, 200, 20),
    "digits_small": Setting("digits", 400, (256,), 0.5, 32, 1500, 150),
}
QUICK = Setting("digits", None, (64,), 1.0, 128, 40, 10)


def spec_raw(s: Setting, eps: float | None, *, seed: int = 1234) -> dict[str, Any]:
    """The JobSpec of ``s`` (a target ``eps``, or no DP)."""
    from veritrain.training.profile import current_profile

    raw = yaml.safe_load((ROOT / "examples" / "digits-mlp.yaml").read_text())
    raw.update(num_shards=1, steps_per_task=s.steps, checkpoint_interval=s.k, batch_size=s.batch, seed=seed)
    raw["optimizer"] = {"name": "sgd", "lr": s.lr, "momentum": 0.0}
    raw["model"] = {"name": "mlp", "args": {"hidden": list(s.hidden)}}
    raw["replay"] = current_profile(threads=THREADS).model_dump(mode="json")
    raw["verification"] = {"verifiers": "open", "full_verification": True}
    if s.data == "breast_cancer":
        raw["schema_version"] = 2
        raw["data"] = {"input_shape": [30], "num_classes": 2, "format": "npz", "input_dtype": "float32",
                       "targets": "class", "preprocessing": "standardize"}
    if eps is not None:
        raw["privacy"] = {"dp_sgd": {"delta": DELTA, "max_grad_norm": 1.0, "epsilon": eps}}
    return raw


def raw_data(s: Setting) -> tuple[Any, Any]:
    """(features, labels) as the requester hands them to ``job submit``: digits pixels / 16
    (their public range), breast-cancer raw (the job standardizes on its training split)."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer, load_digits

    x, y = (load_digits if s.data == "digits" else load_breast_cancer)(return_X_y=True)
    x = (x / 16.0 if s.data == "digits" else x).astype(np.float32)
    if s.examples is not None:
        keep = np.sort(np.random.default_rng(19).permutation(len(x))[: s.examples])
        x, y = x[keep], y[keep]
    return x, y.astype(np.int64)


# ---------------------------------------------------------------------------------- in-process
def _halves(s: Setting, seed: int) -> tuple[Any, Any]:
    import numpy as np

    from veritrain.data import Dataset

    x, y = raw_data(s)
    perm = np.random.default_rng(seed).permutation(len(x))
    tr, te = perm[: len(x) // 2], perm[len(x) // 2:]
    if s.data == "breast_cancer":  # standardized on the training half, as the job does
        mean, sd = x[tr].mean(0), x[tr].std(0)
        x = ((x - mean) / np.where(sd > 0, sd, 1.0)).astype(np.float32)
    return Dataset(x[tr], y[tr]), Dataset(x[te], y[te])


def accuracy_in_process(s: Setting, eps: float | None, seed: int) -> float:
    """Held-out accuracy of one task trained through the engine (the worker's step) with job
    seed and data split ``seed``, and a random DP key."""
    import os

    from veritrain import privacy
    from veritrain.spec import TaskKey, load_spec
    from veritrain.training import engine, state

    train, test = _halves(s, seed)
    spec = load_spec(spec_raw(s, eps, seed=seed))
    key = None
    if eps is not None:
        spec, _ = privacy.settle(spec, [len(train)])
        key = os.urandom(32)
    task = TaskKey(round=0, shard=0)
    live = state.initial(spec, task, dp_key=key)
    x, y = engine.as_tensors(spec, train.features, train.labels)
    order = engine.order_for(spec, task, len(x))
    for _ in range(spec.steps_per_task):
        engine.train_step(live, order, x, y)
    xt, yt = engine.as_tensors(spec, test.features, test.labels)
    live.model.eval()
    import torch

    with torch.no_grad():
        return float((live.model(xt).argmax(1) == yt).float().mean())


def step_ratio(steps: int) -> dict[str, float]:
    """Seconds per step of the plain and the DP-SGD (epsilon 8) step of the digits setting, after
    a warm-up, the two alternating in blocks so that load on the machine hits both."""
    import os

    from veritrain import privacy
    from veritrain.spec import TaskKey, load_spec
    from veritrain.training import engine, state

    s = SETTINGS["digits"]
    train, _ = _halves(s, 1)
    task = TaskKey(round=0, shard=0)
    plain = load_spec(spec_raw(s, None))
    dp, _ = privacy.settle(load_spec(spec_raw(s, 8.0)), [len(train)])
    x, y = engine.as_tensors(plain, train.features, train.labels)
    order = engine.order_for(plain, task, len(x))
    lives = {"plain": state.initial(plain, task), "dp": state.initial(dp, task, dp_key=os.urandom(32))}
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


# ---------------------------------------------------------------------------------- real stack
def real_stack(work: Path, plan: list[tuple[str, Setting, float | None]], shadows: int,
               timeout: float) -> dict[str, dict[str, Any]]:
    """Every (setting name, setting, epsilon) of ``plan`` as a job on one fresh stack; the row of
    each: held-out accuracy and epsilon from ``job fetch``, the audit's AUC / TPR@0.1%FPR /
    advantage, and the sampling verifier's segment checks."""
    import numpy as np

    from bench.protocol import SAMPLER, Run
    from bench.realstack import WORKER_POOL, BenchStack, stop
    from requester.data import load_dataset, split_holdout
    from veritrain.spec import load_spec
    from veritrain.tasks import task_id_of

    rows: dict[str, dict[str, Any]] = {}
    with BenchStack(work) as bs:
        run = Run(bs, quick=True)
        run.verifiers[SAMPLER] = bs.start_verifier(SAMPLER)
        posted = []
        data_files: dict[str, Path] = {}
        for name, s, eps in plan:
            if name not in data_files:
                x, y = raw_data(s)
                data_files[name] = work / f"{name}.npz"
                np.savez(data_files[name], x=x, y=y)
            label = "none" if eps is None else f"eps{eps:g}"
            spec_path = work / f"{name}-{label}.yaml"
            spec_path.write_text(yaml.safe_dump(spec_raw(s, eps)))
            from_block = bs.w3.eth.block_number
            out = bs.cli(["job", "submit", str(spec_path), "--data", str(data_files[name]), "--reward", "1",
                          "--stake", "5", "--holdout", "0.5", "--json", "--dev-account", "1"])
            posted.append((name, label, spec_path, int(json.loads(out)["job_id"]), from_block))
        t0 = time.perf_counter()
        serve = bs.spawn("dp-serve", [sys.executable, "-m", "veritrain.cli", "job", "serve", "--interval",
                                      "0.5", "--dev-account", "1"], bs.env())
        per = -(-len(posted) // 2)
        workers = [bs.start_worker(f"dp-worker-{i}", WORKER_POOL[i], work / f"worker-{i}",
                                   ["--max-tasks", str(per)]) for i in range(2)]
        try:
            _drive(run, SAMPLER, [(job, block) for *_, job, block in posted], workers, timeout)
        finally:
            for p in [*workers, serve]:
                stop(p)
        jobs_seconds = time.perf_counter() - t0
        for name, label, spec_path, job_id, from_block in posted:
            ev = run.job_events(job_id, from_block)
            model = work / f"{name}-{label}.safetensors"
            fetched = json.loads(bs.cli(["job", "fetch", str(job_id), "--out", str(model), "--json",
                                         "--dev-account", "1"]))
            spec = load_spec(yaml.safe_load(spec_path.read_text()))
            train, held = split_holdout(spec, load_dataset(data_files[name], spec), 0.5)
            assert held is not None
            sets = []
            for part, d in (("members", train), ("non-members", held)):
                path = work / f"{name}-{label}-{part}.npz"
                np.savez(path, x=d.features, y=d.labels)
                sets.append(path)
            audit = json.loads(bs.cli(["audit", "membership", str(model), "--members", str(sets[0]),
                                       "--non-members", str(sets[1]), "--shadows", str(shadows), "--plot",
                                       str(work / f"{name}-{label}-roc.svg"), "--json"], timeout=1800))
            checks = _segment_checks(run, SAMPLER, task_id_of(job_id, 0))
            metrics = fetched["metrics"]
            attacks = audit["attacks"]
            row: dict[str, Any] = {
                "job_id": job_id,
                "accuracy": round(float(metrics["holdout_accuracy"]), 4),
                "holdout_examples": metrics.get("holdout_examples"),
                "members": audit["members"], "non_members": audit["non_members"],
                **{f"{a}_auc": round(r["auc"], 4) for a, r in attacks.items()},
                **{f"{a}_tpr_at_0.1%_fpr": round(r["tpr_at_0.1%_fpr"], 4) for a, r in attacks.items()},
                **{f"{a}_advantage": round(r["advantage"], 4) for a, r in attacks.items()},
                "advantage": round(max(r["advantage"] for r in attacks.values()), 4),
                "segments_replayed": checks["replayed"], "segments_matched": checks["match"],
                "disputes": len(ev["DisputeOpened"]), "finalized": len(ev["ClaimFinalized"]),
            }
            if "privacy" in metrics:
                p = metrics["privacy"]
                row.update(epsilon_spent=round(p["epsilon"], 3), dp_steps=p["steps"],
                           noise_multiplier=round(p["noise_multiplier"], 4),
                           sampling_rate=round(p["sampling_rate"], 4))
            rows.setdefault(name, {})[label] = row
        rows["_run"] = {"jobs": len(posted), "workers": 2, "jobs_wall_seconds": round(jobs_seconds, 1),
                        "stack_up_seconds": round(bs.t_up, 1)}
    return rows


def _task_view(run: Any, sampler: int, task_id: int) -> dict[str, Any] | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{run.verifiers[sampler].api}/tasks/{task_id}", timeout=10) as r:
            return dict(json.loads(r.read()))
    except (urllib.error.URLError, OSError, ValueError):
        return None  # 404 until the verifier has seen the result


def _segment_checks(run: Any, sampler: int, task_id: int) -> dict[str, int]:
    view = _task_view(run, sampler, task_id) or {"results": []}
    checks = [c for res in view["results"] for c in res["checks"]]
    return {"replayed": len(checks), "match": sum(c.get("outcome") == "match" for c in checks)}


def _drive(run: Any, sampler: int, jobs: list[tuple[int, int]], workers: list[Any], timeout: float) -> None:
    """Mine until every job's task is finalized; advance chain time past the challenge window
    only when every job's result is revealed, the sampling verifier has replayed every segment of
    each and no dispute is open (a warp must not finalize a result before it was checked)."""
    from bench.protocol import CHALLENGE_WINDOW
    from veritrain.tasks import task_id_of

    deadline, last_warp = time.monotonic() + timeout, 0.0
    while True:
        run.bs.mine()
        events = {job: run.job_events(job, block) for job, block in jobs}
        if all(len(ev["ClaimFinalized"]) >= 1 for ev in events.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"DP jobs not finalized after {timeout:.0f} s: " + ", ".join(
                f"job {j}: {len(ev['ResultRevealed'])} revealed, {len(ev['ClaimFinalized'])} finalized"
                for j, ev in events.items()))
        if not any(p.alive() for p in workers) and not all(ev["ResultRevealed"] for ev in events.values()):
            raise RuntimeError("every DP bench worker exited: "
                               + "; ".join(f"{p.name}: {p.tail(3)}" for p in workers))
        revealed = [j for j, ev in events.items() if ev["ResultRevealed"]]
        pending = [j for j in revealed if not events[j]["ClaimFinalized"]]
        disputes = sum(len(ev["DisputeOpened"]) - len(ev["DisputeSettled"]) for ev in events.values())

        def checked(job: int) -> bool:
            view = _task_view(run, sampler, task_id_of(job, 0))
            return view is not None and all(  # segments_total is None until the manifest is read
                r["segments_total"] is not None and len(r["checks"]) >= r["segments_total"]
                for r in view["results"])

        # one warp once every job is revealed and checked: an earlier one would run later jobs'
        # key and submission windows out (chain time jumps by the challenge window)
        quiet = len(revealed) == len(jobs) and pending and not disputes and time.monotonic() - last_warp > 5
        if quiet and all(checked(j) for j in revealed):
            run.bs.warp(CHALLENGE_WINDOW + 1)
            last_warp = time.monotonic()
        time.sleep(0.5)


def audit_in_process(s: Setting, eps: float | None) -> dict[str, Any]:
    """``--quick``: the loss-threshold audit of one task trained in-process (seed 1 split)."""
    import os

    from veritrain import audit, privacy
    from veritrain.spec import TaskKey, load_spec
    from veritrain.training import engine, state

    train, test = _halves(s, 1)
    spec = load_spec(spec_raw(s, eps))
    key = None
    if eps is not None:
        spec, _ = privacy.settle(spec, [len(train)])
        key = os.urandom(32)
    task = TaskKey(round=0, shard=0)
    live = state.initial(spec, task, dp_key=key)
    x, y = engine.as_tensors(spec, train.features, train.labels)
    order = engine.order_for(spec, task, len(x))
    for _ in range(spec.steps_per_task):
        engine.train_step(live, order, x, y)
    attacks = audit.membership(spec, live.model, train, test, shadows=0)["attacks"]
    return {**{f"{a}_auc": round(r["auc"], 4) for a, r in attacks.items()},
            "advantage": round(max(r["advantage"] for r in attacks.values()), 4)}


def run(quick: bool) -> dict[str, object]:
    import torch

    torch.set_num_threads(THREADS)
    settings = {"digits": QUICK} if quick else SETTINGS
    seeds, epsilons = (SEEDS[:1], (8.0,)) if quick else (SEEDS, EPSILONS)
    detail: dict[str, Any] = {
        "threads": THREADS, "delta": DELTA, "max_grad_norm": 1.0,
        "settings": {n: {**s.__dict__, "hidden": list(s.hidden)} for n, s in settings.items()},
    }
    # accuracy over several seeds (job seed, split and DP key), in-process
    seeds_rows: dict[str, Any] = {}
    for name in ("digits",) if quick else ("digits", "breast_cancer"):
        for eps in (None, *epsilons):
            accs = [accuracy_in_process(settings[name], eps, seed) for seed in seeds]
            seeds_rows.setdefault(name, {})["none" if eps is None else f"eps{eps:g}"] = {
                "accuracy_mean": round(sum(accs) / len(accs), 4), "accuracy": [round(a, 4) for a in accs]}
    detail["seeds"] = {"seeds": list(seeds), **seeds_rows}
    if quick:  # the real stack costs minutes: the full run only (the keys then come from it)
        detail["source"] = "in-process (quick: no real stack)"
        rows = {"none": audit_in_process(QUICK, None), "eps8": audit_in_process(QUICK, 8.0)}
        drop = seeds_rows["digits"]["none"]["accuracy_mean"] - seeds_rows["digits"]["eps8"]["accuracy_mean"]
        detail["mia_in_process"] = rows
    else:
        detail["source"] = "real stack"
        detail["shadows"] = SHADOWS
        plan = [(n, s, e) for n, s in SETTINGS.items() for e in (None, *EPSILONS)]
        with tempfile.TemporaryDirectory(prefix="vt-bench-dp-") as tmp:
            real = real_stack(Path(tmp), plan, SHADOWS, timeout=1800)
        detail["real_stack"] = real
        drop = real["digits"]["none"]["accuracy"] - real["digits"]["eps8"]["accuracy"]
        rows = real["digits_small"]
    timing = step_ratio(30 if quick else 300)
    detail["step_time"] = timing
    return {
        "dp_step_ratio": timing["ratio"],
        "dp_accuracy_drop_eps8_digits": round(drop * 100, 2),
        "dp_mia_advantage_ratio_eps8_digits":
            round(rows["eps8"]["advantage"] / max(rows["none"]["advantage"], 1e-9), 3),
        "dp": detail,
    }
