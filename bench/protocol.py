"""The real-stack benchmarks: e2e time, detection, false challenges, concurrent workers.

One fresh stack (Anvil + js-ipfs on free ports), contracts deployed with ``deploy_local``, and
every role as its own process through its CLI: the requester (``veritrain job submit|serve|fetch``),
honest workers (``veritrain worker run``), cheating workers (``python -m adversary worker`` for
skipped steps and perturbed weights; ``python -m adversary standalone`` for wrong data and a
copied root, which `adversary worker` lacks) and four verifiers (``veritrain verifier run``).
Outcomes are read from the contracts' events only.

Phases, in order, on the same chain:

1. **e2e** — the demo's scenario (issue 9): the digits job (examples/digits-mlp.yaml, 4 shards),
   3 honest workers + 1 skipping one segment, verifiers; until every task is finalized (the
   cheater's task redone) and ``veritrain job fetch`` returns the checked model.
   ``e2e_seconds`` runs from starting the stack to the fetched model.
   ``e2e_protocol_overhead`` = that ÷ the same 4 tasks (model, data, steps, shards) trained
   *sequentially* by a plain PyTorch loop in this process (torch already imported).
2. **detection** — one job, honest workers and cheating worker processes that each take several
   tasks; ``detection_rate`` = cheating results that end ``ClaimSlashed`` ÷ cheating results
   revealed; ``false_challenge_rate`` = honest results with a ``DisputeOpened`` ÷ honest results.
3. **concurrency** — for W = 2, 4, 8 (quick: 2): a job of W tasks and W worker processes at once;
   ``concurrent_workers`` = the largest W whose W tasks were all finalized with no reverted
   transaction (receipts with status 0) and no worker exiting non-zero. Stops at the first W
   that fails or when throughput stops growing (the machine is saturated).

Jobs ask for full verification (``verification.full_verification: true``): the sampling
verifier replays every segment, so the detection figure measures the challenge → committee →
settlement pipeline, not the sampling luck; at the default p a single falsified segment is
caught with probability p (docs/verifier.md). The job's challenge window is 1800 s of chain
time; once every result is revealed, the sampling verifier has checked all of them and no
dispute is open, the bench advances chain time past it (``evm_increaseTime``), as a wall-clock
wait would only add idle time. Blocks are mined every half second so chain time follows the clock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.realstack import VERIFIERS, WORKER_POOL, BenchStack, Proc, stop, verifier_stats
from veritrain import lifeline

ROOT = Path(__file__).resolve().parents[1]
SAMPLER = VERIFIERS[0]  # holds the jobs' sampling envelopes; the others referee only
CHALLENGE_WINDOW = 1800


def _spec_file(work: Path, name: str, shards: int, quick: bool) -> Path:
    import yaml

    from veritrain.training.profile import current_profile

    raw = yaml.safe_load((ROOT / "examples" / "digits-mlp.yaml").read_text())
    raw["num_shards"] = shards
    if quick:
        raw.update(steps_per_task=40, checkpoint_interval=10)
    raw["replay"] = current_profile(threads=1).model_dump()
    raw["verification"] = {"verifiers": "open", "full_verification": True}
    raw["deadlines"]["challenge_window"] = CHALLENGE_WINDOW
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _digits(work: Path) -> Path:
    import numpy as np
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    path = work / "digits.npz"
    np.savez(path, x=(x / 16.0).astype(np.float32), y=y.astype(np.int64))
    return path


class Run:
    """One real-stack session shared by the phases."""

    def __init__(self, bs: BenchStack, quick: bool) -> None:
        self.bs = bs
        self.quick = quick
        self.data = _digits(bs.work)
        self.verifiers: dict[int, Proc] = {}
        self.notes: list[str] = []

    # ------------------------------------------------------------------ jobs
    def post(self, name: str, shards: int) -> tuple[int, int, Proc]:
        """Submit through the requester CLI, grant the sampling verifier, start the key service."""
        from_block = self.bs.w3.eth.block_number
        out = self.bs.cli(
            [
                "job",
                "submit",
                str(_spec_file(self.bs.work, name, shards, self.quick)),
                "--data",
                str(self.data),
                "--reward",
                "1",
                "--stake",
                "5",
                "--holdout",
                "0.2",
                "--json",
                "--dev-account",
                "1",
            ]
        )
        job_id = int(json.loads(out)["job_id"])
        # The sampling verifier asks for the job key on-chain; `job serve` below answers it.
        serve = self.bs.spawn(
            f"serve-{name}",
            [
                sys.executable,
                "-m",
                "veritrain.cli",
                "job",
                "serve",
                "--job",
                str(job_id),
                "--interval",
                "0.5",
                "--dev-account",
                "1",
            ],
            self.bs.env(),
        )
        return job_id, from_block, serve

    def _is_claim(self, tx_hash: str, selector: bytes | None) -> bool:
        if selector is None:
            from web3 import Web3

            abi = next(f for f in self.bs.c["JobMarket"].abi if f.get("name") == "claim")
            sig = f"claim({','.join(i['type'] for i in abi['inputs'])})"
            selector = bytes(Web3.keccak(text=sig)[:4])
        from eth_typing import HexStr

        tx = self.bs.w3.eth.get_transaction(HexStr(tx_hash))
        return bytes(tx["input"])[:4] == selector

    def cancel(self, job_id: int) -> None:
        """``veritrain job cancel``: a job the bench is done with takes no more claims. Workers
        take any open task of any job, so a reopened (slashed) task of an earlier phase's job
        would otherwise draw the next phase's workers to a job whose key service has stopped."""
        from veritrain.chain.states import JobStatus
        from veritrain.chain.views import Job

        if Job.of(self.bs.c["JobMarket"].functions.getJob(job_id).call()).status != JobStatus.OPEN:
            return  # already ended or closed: it takes no claims (cancelling would revert by name)
        try:
            self.bs.cli(["job", "cancel", str(job_id), "--dev-account", "1"], timeout=120)
        except Exception as exc:  # noqa: BLE001 - e.g. ended meanwhile; the phase's numbers stand
            self.notes.append(f"job {job_id}: cancel failed: {str(exc)[-300:]}")

    def job_events(self, job_id: int, from_block: int) -> dict[str, list[Any]]:
        from veritrain.tasks import split_task_id

        out: dict[str, list[Any]] = {}
        for contract, names in (
            ("JobMarket", ("ResultRevealed", "ClaimSlashed", "ClaimFinalized")),
            ("DisputeResolver", ("DisputeOpened", "DisputeSettled")),
        ):
            for n in names:
                evs = self.bs.events(contract, n, from_block)
                if n != "DisputeSettled":
                    evs = [e for e in evs if split_task_id(int(e["args"]["taskId"]))[0] == job_id]
                out[n] = evs
        opened = {int(e["args"]["disputeId"]) for e in out["DisputeOpened"]}
        out["DisputeSettled"] = [e for e in out["DisputeSettled"] if int(e["args"]["disputeId"]) in opened]
        return out

    def sampler_caught_up(self, revealed: int) -> bool:
        s = verifier_stats(self.verifiers[SAMPLER])
        if s is None:
            return False
        res = s.get("results", {})
        return int(res.get("total", 0)) >= revealed and int(res.get("seen", 0)) == 0

    def drive(
        self,
        job_id: int,
        from_block: int,
        done: Callable[[dict[str, list[Any]]], bool],
        timeout: float,
        *,
        finalize: bool,
        procs: list[Proc] | None = None,
    ) -> dict[str, list[Any]]:
        """Mine blocks until ``done(events)``; with ``finalize``, warp past the challenge window
        whenever every revealed result is checked and no dispute is open."""
        deadline = time.monotonic() + timeout
        last_warp = 0.0
        while True:
            self.bs.mine()
            ev = self.job_events(job_id, from_block)
            if done(ev):
                return ev
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {job_id}: not done after {timeout:.0f} s; "
                    f"{len(ev['ResultRevealed'])} revealed, {len(ev['ClaimSlashed'])} slashed, "
                    f"{len(ev['ClaimFinalized'])} finalized, {len(ev['DisputeOpened'])} disputes "
                    f"({len(ev['DisputeSettled'])} settled)"
                )
            if procs is not None and not any(p.alive() for p in procs):
                raise RuntimeError(
                    f"job {job_id}: every worker exited before the job was done: "
                    + "; ".join(f"{p.name}: {p.tail(3)}" for p in procs)
                )
            open_disputes = len(ev["DisputeOpened"]) - len(ev["DisputeSettled"])
            pending = len(ev["ResultRevealed"]) - len(ev["ClaimSlashed"]) - len(ev["ClaimFinalized"])
            if (
                finalize
                and pending > 0
                and open_disputes == 0
                and time.monotonic() - last_warp > 5
                and self.sampler_caught_up(len(ev["ResultRevealed"]))
            ):
                self.bs.warp(CHALLENGE_WINDOW + 1)
                last_warp = time.monotonic()
            time.sleep(0.5)

    def start_verifiers(self) -> None:
        for i in VERIFIERS:
            self.verifiers[i] = self.bs.start_verifier(i)

    # ------------------------------------------------------------------ phase 2: detection
    def detection(self) -> dict[str, Any]:
        per = 1 if self.quick else 0
        plan = [  # (kind, account, tasks)
            ("skip-step", WORKER_POOL[4], per or 6),
            ("perturb-weight", WORKER_POOL[5], per or 6),
            ("other-data", WORKER_POOL[6], per or 5),
            ("copy-root", WORKER_POOL[7], per or 5),
        ]
        honest_plan = [(WORKER_POOL[8], 2 if self.quick else 5)] + (
            [] if self.quick else [(WORKER_POOL[9], 5)]
        )
        tasks = sum(n for _, _, n in plan) + sum(n for _, n in honest_plan)
        job_id, from_block, serve = self.post("detection", tasks)
        home = self.bs.work / "workers-detection"
        procs: list[Proc] = []
        for idx, n in honest_plan:
            procs.append(self.bs.start_worker(f"det-honest-{idx}", idx, home, ["--max-tasks", str(n)]))
        # quick jobs have 4 segments (0..3): a segment past the last is never falsified
        segments = {"skip-step": "3", "perturb-weight": "2" if self.quick else "5"}
        for kind, idx, n in plan:
            if kind in segments:
                procs.append(
                    self.bs.start_worker(
                        f"det-{kind}",
                        idx,
                        home,
                        ["--behaviour", kind, "--segment", segments[kind], "--max-tasks", str(n)],
                        module=["adversary", "worker"],
                    )
                )
            else:
                procs.append(
                    self.bs.spawn(
                        f"det-{kind}",
                        [
                            sys.executable,
                            "-m",
                            "adversary",
                            "standalone",
                            "--kind",
                            kind,
                            "--job",
                            str(job_id),
                            "--dev-account",
                            str(idx),
                            "--max-tasks",
                            str(n),
                        ],
                        self.bs.env(),
                    )
                )
        cheaters = {cheater_address(idx): kind for kind, idx, _ in plan}
        planted = sum(n for _, _, n in plan)

        def settled(ev: dict[str, list[Any]]) -> bool:
            bad = [e for e in ev["ResultRevealed"] if str(e["args"]["worker"]) in cheaters]
            honest = [e for e in ev["ResultRevealed"] if str(e["args"]["worker"]) not in cheaters]
            return (
                len(bad) >= planted
                and len(honest) >= sum(n for _, n in honest_plan)
                and len(ev["DisputeOpened"]) == len(ev["DisputeSettled"])
                and self.sampler_caught_up(len(ev["ResultRevealed"]))
            )

        try:
            ev = self.drive(job_id, from_block, settled, 240 if self.quick else 540, finalize=False)
        finally:
            for p in [*procs, serve]:
                stop(p)
            self.cancel(job_id)
            ev = self.job_events(job_id, from_block)
        slashed = {(int(e["args"]["taskId"]), str(e["args"]["worker"])) for e in ev["ClaimSlashed"]}
        accused = {(int(e["args"]["taskId"]), str(e["args"]["accused"])) for e in ev["DisputeOpened"]}
        results = [(int(e["args"]["taskId"]), str(e["args"]["worker"])) for e in ev["ResultRevealed"]]
        cheats = [
            {
                "kind": cheaters[w],
                "task": t & 0xFFFFFFFF,
                "worker": w,
                "outcome": "slashed"
                if (t, w) in slashed
                else ("challenged" if (t, w) in accused else "not challenged"),
            }
            for t, w in results
            if w in cheaters
        ]
        honest = [(t, w) for t, w in results if w not in cheaters]
        caught = sum(c["outcome"] == "slashed" for c in cheats)
        challenged_honest = sum((t, w) in accused for t, w in honest)
        kinds: dict[str, list[int]] = {}  # kind -> [slashed, planted]
        for c in cheats:
            tally = kinds.setdefault(str(c["kind"]), [0, 0])
            tally[0] += c["outcome"] == "slashed"
            tally[1] += 1
        return {
            "detection_rate": round(caught / len(cheats), 4) if cheats else None,
            "false_challenge_rate": round(challenged_honest / len(honest), 4) if honest else None,
            "detection": {
                "job_id": job_id,
                "planted": len(cheats),
                "slashed": caught,
                "by_kind": {k: f"{a}/{b}" for k, (a, b) in kinds.items()},
                "honest_results": len(honest),
                "honest_challenged": challenged_honest,
                "disputes": len(ev["DisputeOpened"]),
                "cheats": cheats,
            },
        }

    # ------------------------------------------------------------------ phase 3: concurrency
    def concurrency(self) -> dict[str, Any]:
        levels = (2,) if self.quick else (2, 4, 8)
        curve: list[dict[str, Any]] = []
        best = 0
        for w in levels:
            job_id, from_block, serve = self.post(f"conc-{w}", w)
            home = self.bs.work / f"workers-conc-{w}"
            t0 = time.perf_counter()
            procs = [
                self.bs.start_worker(f"conc{w}-{i}", i, home, ["--max-tasks", "1"]) for i in WORKER_POOL[:w]
            ]

            def finished(ev: dict[str, list[Any]], n: int = w, ps: list[Proc] = procs) -> bool:
                return len(ev["ClaimFinalized"]) >= n or not any(p.alive() for p in ps)

            error = None
            try:
                ev = self.drive(job_id, from_block, finished, 420, finalize=True)
            except TimeoutError as exc:
                error = str(exc)
                ev = self.job_events(job_id, from_block)
            seconds = time.perf_counter() - t0
            codes = [stop(p) for p in procs]
            stop(serve)
            self.cancel(job_id)
            reverted = self.bs.failed_transactions(from_block + 1)
            # Workers pick the same first open task; the loser's claim reverts (a lost race, the
            # worker moves on). Counted apart: any *other* reverted transaction fails the level.
            races = [f for f in reverted if self._is_claim(f["tx"], None)]
            failed = [f for f in reverted if f not in races]
            completed = len(ev["ClaimFinalized"])
            point = {
                "workers": w,
                "completed": completed,
                "failed_tx": len(failed),
                "lost_claim_races": len(races),
                "exit_codes": codes,
                "seconds": round(seconds, 1),
                "tasks_per_minute": round(60 * completed / seconds, 2),
                "error": error,
                "failed": failed[:5],
            }
            curve.append(point)
            # -SIGTERM is our own stop of a worker still winding down after its task finalized.
            ok = completed == w and not failed and all(c in (0, -signal.SIGTERM) for c in codes)
            if not ok:
                break
            best = w
            if len(curve) > 1 and point["tasks_per_minute"] < 1.1 * curve[-2]["tasks_per_minute"]:
                self.notes.append(
                    f"throughput stopped growing at {w} workers "
                    f"({point['tasks_per_minute']} vs {curve[-2]['tasks_per_minute']} tasks/min): "
                    "the machine is saturated"
                )
                break
        return {"concurrent_workers": best, "concurrency_curve": curve}


def e2e(work: Path, quick: bool) -> dict[str, Any]:
    """Run the demo (``python -m demo``, issue 9) as it is, and time it."""
    from demo.run import FULL, QUICK

    sc = QUICK if quick else FULL
    home = work / "demo"
    argv = [
        sys.executable,
        "-m",
        "demo",
        "--home",
        str(home),
        "--json",
        *(["--quick"] if quick else []),
    ]
    t0 = time.perf_counter()
    code, stderr = _run_demo(argv, home, work, sc.timeout + 120)
    wall = time.perf_counter() - t0
    try:
        summary = json.loads((home / "summary.json").read_text())
    except (OSError, ValueError):
        summary = {}
    if code != 0 or not summary.get("ok"):
        raise RuntimeError(f"the demo failed (exit {code}): {stderr[-1500:]}")
    plain = plain_loop_seconds(work, sc.shards, sc.steps, sc.checkpoint_interval)
    seconds = float(summary.get("seconds", wall))
    return {
        "e2e_seconds": round(seconds, 1),
        "e2e_protocol_overhead": round(seconds / plain, 1),
        "e2e": {
            "scenario": sc.name,
            "tasks": sc.shards,
            "steps": sc.steps,
            "honest_workers": sc.honest,
            "cheaters": 1,
            "demo_process_wall_seconds": round(wall, 1),
            "plain_loop_seconds": round(plain, 3),
            "plain_loop": "the demo's tasks (model, optimizer, batch, steps, shards) trained sequentially "
            "by a plain PyTorch loop in one process, torch already loaded",
            "demo_challenge_window": sc.challenge_window,
            "model_accuracy": summary.get("model_accuracy"),
            "disputes": len(summary.get("disputes", [])),
            "gas_total": summary.get("gas_total"),
        },
    }


def _run_demo(argv: list[str], home: Path, work: Path, timeout: float) -> tuple[int, str]:
    """Run the demo to completion; on a timeout, an error or Ctrl-C, stop it *through its own
    clean-up* (SIGINT, then wait for it to stop its stack and children) and only then kill
    what it recorded, so no process it started outlives the bench."""
    import signal

    from demo.children import stop_recorded

    out_path, err_path = work / "demo.stdout", work / "demo.stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env={**os.environ, **lifeline.env_for_child()})
    try:
        code = proc.wait(timeout)
    except BaseException:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # the demo stops its children and stack on SIGINT
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        left = stop_recorded(home / "logs")
        if left:
            print(f"[protocol] killed demo children left running: {', '.join(left)}", file=sys.stderr)
        _stack_down(home / "stack")
        raise
    return code, err_path.read_text(errors="replace")


def _stack_down(stack_home: Path) -> None:
    from veritrain.dev.stack import Stack
    from veritrain.settings import StackSettings

    if stack_home.exists():
        try:
            Stack(StackSettings(home=stack_home)).down()
        except Exception as exc:  # noqa: BLE001 - best effort on the way out
            print(f"[protocol] could not stop the demo's stack: {exc!r}", file=sys.stderr)


def cheater_address(index: int) -> str:
    from veritrain.dev.accounts import dev_account

    return str(dev_account(index).address)


def plain_loop_seconds(work: Path, shards: int, steps: int, k: int) -> float:
    """The e2e job's tasks as a plain PyTorch loop: same model, optimizer, batch size, steps and
    shards (the digits set less a 20 % hold-out, split in ``shards``), one after the other."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    import yaml

    from veritrain.spec import load_spec
    from veritrain.training.state import build_model

    raw = yaml.safe_load(_spec_file(work, "plain", shards, False).read_text())
    raw.update(steps_per_task=steps, checkpoint_interval=k)
    spec = load_spec(raw)
    torch.set_num_threads(spec.replay.threads)
    d = np.load(_digits(work))
    n = int(len(d["y"]) * 0.8)
    x, y = torch.from_numpy(d["x"][:n]), torch.from_numpy(d["y"][:n])
    t0 = time.perf_counter()
    for s in range(shards):
        xs, ys = x[s::shards], y[s::shards]
        torch.manual_seed(spec.seed + s)
        model = build_model(spec)
        opt = torch.optim.SGD(model.parameters(), lr=spec.optimizer.lr, momentum=spec.optimizer.momentum)
        for _ in range(spec.steps_per_task):
            idx = torch.randint(0, len(xs), (spec.batch_size,))
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xs[idx]), ys[idx]).backward()
            opt.step()
    return time.perf_counter() - t0


def run(quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vt-bench-protocol-") as tmp:
        work = Path(tmp)
        bs = BenchStack(work)
        errors: dict[str, str] = {}
        t0 = time.perf_counter()
        try:
            out.update(e2e(work, quick))
        except Exception as exc:  # noqa: BLE001 - the other phases still measure
            errors["e2e"] = f"{type(exc).__name__}: {exc}"
            print(f"[protocol] e2e failed: {errors['e2e']}", file=sys.stderr, flush=True)
        out["protocol_phase_seconds"] = {"e2e": round(time.perf_counter() - t0, 1)}
        try:
            bs.up()
            r = Run(bs, quick)
            r.start_verifiers()
            for name, phase in (
                ("detection", r.detection),
                ("concurrency", r.concurrency),
            ):
                t0 = time.perf_counter()
                try:
                    out.update(phase())
                except Exception as exc:  # noqa: BLE001 - the other phases still measure
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    print(f"[protocol] {name} failed: {errors[name]}", file=sys.stderr, flush=True)
                    _dump_logs(work)
                out.setdefault("protocol_phase_seconds", {})[name] = round(time.perf_counter() - t0, 1)
            r.notes.insert(
                0,
                "jobs ask for full verification (the sampling verifier replays every segment); "
                "chain time is advanced past the 1800 s challenge window once everything is checked",
            )
            r.notes.insert(
                1,
                "copy-root: with per-shard keys a worker opens only its own shard, so the copier reveals "
                "another task's root through a manifest of its own that lists that result's hashes and "
                "checkpoint CIDs (which it cannot decrypt). The sampling verifier cannot open checkpoint "
                "j either and challenges it as withheld evidence; the committee votes `unavailable`, "
                "which counts against the worker (verifier/watcher.py)",
            )
            out["protocol"] = {
                "notes": r.notes,
                "cheats": out.get("detection", {}).get("cheats", []),
                "concurrency_curve": out.get("concurrency_curve", []),
                "errors": errors,
                "verifier_stats": {i: verifier_stats(p) for i, p in r.verifiers.items()},
            }
        finally:
            bs.close()
    return out  # a failed phase leaves its keys out: the report lists them as missing


def _dump_logs(work: Path) -> None:
    for log in sorted((work / "logs").glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-8:]
        print(f"--- {log.name}\n" + "\n".join(lines), file=sys.stderr, flush=True)
