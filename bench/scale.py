"""Cost per task as jobs grow and the chain ages (issue 25), on the real stack.

One fresh stack (Anvil + js-ipfs); every role is its own process through its CLI, and every
role's JSON-RPC goes through the bench's counting proxy (:mod:`bench.rpcproxy`) under its own
name (``worker-<i>``, ``requester``, ``verifier``), so requests are counted per role without
touching the roles. The bench's own reads go straight to Anvil and are not counted.

- **idle poll**: an in-process worker whose policy declines every offer calls ``pick()`` (one
  discovery pass) with no open task, then with a job of :data:`IDLE_OPEN` open tasks;
  ``idle_poll_requests`` is the requests of one pass (the mean of three, after the first), each
  pass after exactly one new block (so both read the same number of log pages: a pass that
  found no new block would read none, and the dev clock's blocks would make the figures noise).
- **jobs**: for each (N tasks, W workers) a job of N tiny tasks (10 SGD steps, 3 checkpoints) is
  submitted with ``veritrain job submit``, served by ``veritrain job serve``, sampled by one
  ``veritrain verifier run`` and done by W ``veritrain worker run`` processes until every task
  is finalized. Per run: RPC requests per completed task per role, tasks/min, lost races (claims
  a worker recorded ``not_claimed``) and reverted claims (mined with status 0) per task, key
  latency p95 (block time of ``KeyDelivered`` − block time of ``TaskClaimed``), gas per task
  (every transaction of the run's blocks to the protocol's contracts), and peak RSS per role
  (``VmHWM`` read before the role is stopped).
- **history**: ``anvil_mine`` adds :data:`HISTORY_BLOCKS` empty blocks; the idle poll and the
  first job configuration run again.

``make bench`` runs the small configuration (N = 32, W = 4; see :data:`QUICK`);
``make bench-scale`` (``python -m bench.scale --full``) runs N = 32, 256, 1,024 with 4 and 8
workers (:data:`FULL`), which takes long on a 2-core machine.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from bench.realstack import REQUESTER, VERIFIERS, WORKER_POOL, BenchStack, Proc, stop
from bench.results import DEFAULT_PATH
from bench.rpcproxy import CountingProxy
from veritrain.dev.solc import EVM_VERSION

#: Open tasks of the idle-poll measurement.
IDLE_OPEN = 1000
#: Empty blocks added for the "after history" runs: the issue's 100,000 in the full run; fewer in
#: ``make bench``. What history costs a role is log pages: blocks ÷ the log range.
HISTORY_BLOCKS = {"quick": 5_000, "full": 100_000}
#: The bench's chain is a pruned full node on the contracts' EVM version, as a hosted provider's
#: is: Anvil keeps the last 500 states (``--prune-history``; a geth full node keeps 128) and runs
#: Cancun (what :data:`veritrain.dev.solc.EVM_VERSION` compiles for). Both keep a block's cost
#: flat as the chain ages. Measured here (Anvil 1.7.1, 20,000 empty blocks by ``anvil_mine``):
#: 241 s on the default (Prague, every state kept), where each block writes EIP-2935's history
#: contract and the kept states grow; 5 s with these flags. Session 7's 100,000 blocks took 85 min.
CHAIN_ARGS = ("--hardfork", EVM_VERSION, "--prune-history", "500")
#: (tasks, workers) per run.
QUICK: tuple[tuple[int, int], ...] = ((32, 4),)
FULL: tuple[tuple[int, int], ...] = ((32, 4), (32, 8), (256, 4), (256, 8), (1024, 4), (1024, 8))
EXAMPLES_PER_SHARD = 16
CHALLENGE_WINDOW = 20  # seconds of chain time: results finalize on their own, no warping
SAMPLER = VERIFIERS[0]


def _spec(work: Path, tasks: int) -> Path:
    import yaml

    from veritrain.training.profile import current_profile

    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "digits-mlp.yaml").read_text())
    raw.update(num_shards=tasks, steps_per_task=10, checkpoint_interval=5, batch_size=8)
    raw["model"]["args"]["hidden"] = [16]
    raw["replay"] = current_profile(threads=1).model_dump()
    raw["verification"] = {"verifiers": "open", "full_verification": False}
    raw["deadlines"] = {"key_window": 600, "submission_window": 3600, "reveal_window": 600,
                        "challenge_window": CHALLENGE_WINDOW}
    path = work / f"scale-{tasks}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _data(work: Path, tasks: int) -> Path:
    import numpy as np

    rng = np.random.default_rng(tasks)
    n = int(tasks * EXAMPLES_PER_SHARD / 0.8) + 10  # 20 % is held out
    path = work / f"scale-{tasks}.npz"
    np.savez(path, x=rng.random((n, 64), dtype=np.float32), y=rng.integers(0, 10, n).astype(np.int64))
    return path


class Scale:
    def __init__(self, bs: BenchStack, proxy: CountingProxy) -> None:
        self.bs = bs
        self.proxy = proxy
        self.notes: list[str] = []
        self._serial = 0

    # ------------------------------------------------------------------ helpers
    def env(self, role: str, **extra: str) -> dict[str, str]:
        return self.bs.env(VERITRAIN_RPC_URL=self.proxy.url(role), **extra)

    def submit(self, tasks: int) -> tuple[int, int]:
        from_block = self.bs.w3.eth.block_number
        spec, data = _spec(self.bs.work, tasks), _data(self.bs.work, tasks)
        out = self.bs.cli(["job", "submit", str(spec), "--data", str(data), "--reward", "1", "--stake", "5",
                           "--holdout", "0.2", "--json", "--dev-account", str(REQUESTER)], timeout=1800,
                          VERITRAIN_RPC_URL=self.proxy.url("submit"))
        return int(json.loads(out)["job_id"]), from_block

    def cancel(self, job_id: int) -> None:
        self.bs.cli(["job", "cancel", str(job_id), "--dev-account", str(REQUESTER)], timeout=300)

    # ------------------------------------------------------------------ idle poll
    def idle_poll(self, open_tasks: int) -> float:
        """Requests of one discovery pass by a worker that declines everything."""
        from veritrain.dev.accounts import dev_account
        from worker.chain import WorkerChain
        from worker.loop import Worker
        from worker.settings import WorkerSettings

        self._serial += 1
        role, home = f"idle-{self._serial}", self.bs.work / f"idle-{self._serial}"
        job_id = self.submit(open_tasks)[0] if open_tasks else None
        account = dev_account(WORKER_POOL[-1])
        chain = WorkerChain(self.proxy.url(role), self.bs.deployment, account, home / "nonces")
        settings = WorkerSettings(home=home, ipfs_api=self.bs.ipfs, allowed_models=["no-such-model"])
        worker = Worker(settings, account, chain=chain)
        try:
            worker.pick()  # the first pass catches up on history (read once, then kept)
            if job_id is not None:
                assert len(worker.offers()) == open_tasks, "the idle worker does not see every open task"
            polls = 0.0
            for _ in range(3):  # one new block before each pass: every pass reads one page of logs
                self.bs.mine()
                before = self.proxy.total(role)
                assert worker.pick() is None
                polls += self.proxy.total(role) - before
            return round(polls / 3, 1)
        finally:
            worker.close()
            if job_id is not None:
                self.cancel(job_id)

    # ------------------------------------------------------------------ a job
    def job(self, tasks: int, workers: int, label: str) -> dict[str, Any]:
        job_id, from_block = self.submit(tasks)
        t0 = time.perf_counter()
        argv = [sys.executable, "-m", "veritrain.cli", "job", "serve", "--job", str(job_id),
                "--interval", "0.5", "--dev-account", str(REQUESTER)]
        serve = self.bs.spawn(f"serve-{label}", argv, self.env(f"{label}.requester"))
        verifier = self._verifier(label)
        procs = []
        for i in WORKER_POOL[:workers]:
            home = self.bs.work / f"workers-{label}"
            argv = [sys.executable, "-m", "veritrain.cli", "worker", "run"]
            env = {**self.bs.worker_env(i, home), "VERITRAIN_RPC_URL": self.proxy.url(f"{label}.worker-{i}")}
            procs.append(self.bs.spawn(f"worker-{label}-{i}", argv, env))
        error = None
        try:
            done = self._until_finalized(job_id, from_block, tasks, procs, timeout=max(600, 12 * tasks))
        except (TimeoutError, RuntimeError) as exc:
            error, done = str(exc)[-500:], self._finalized(job_id, from_block)
        seconds = time.perf_counter() - t0
        memory = {p.name: _peak_rss_mb(p) for p in [serve, verifier, *procs]}
        for p in [*procs, serve, verifier]:
            stop(p)
        to_block = self.bs.w3.eth.block_number
        return {"tasks": tasks, "workers": workers, "completed": done, "seconds": round(seconds, 1),
                "tasks_per_minute": round(60 * done / seconds, 2), "error": error,
                **self._requests(label, done), **self._races(job_id, from_block, to_block, label, done),
                "key_latency_p95_s": self._key_latency(job_id, from_block),
                "gas_per_task": self._gas(from_block, to_block, done),
                "peak_rss_mb": {"worker_max": max(memory[p.name] for p in procs),
                                "requester": memory[serve.name], "verifier": memory[verifier.name]}}

    def _verifier(self, label: str) -> Proc:
        from veritrain.dev import procs

        env = self.env(f"{label}.verifier", VERITRAIN_VERIFIER_DEV_ACCOUNT=str(SAMPLER),
                       VERITRAIN_VERIFIER_HOME=str(self.bs.work / f"verifier-{label}"),
                       VERITRAIN_VERIFIER_API_PORT=str(procs.free_port()),
                       VERITRAIN_VERIFIER_POLL_INTERVAL="0.5")
        argv = [sys.executable, "-m", "veritrain.cli", "verifier", "run"]
        return self.bs.spawn(f"verifier-{label}", argv, env)

    def _finalized(self, job_id: int, from_block: int) -> int:
        return len(self._job_events("ClaimFinalized", job_id, from_block))

    def _job_events(self, name: str, job_id: int, from_block: int) -> list[Any]:
        from veritrain.tasks import split_task_id

        return [e for e in self.bs.events("JobMarket", name, from_block)
                if split_task_id(int(e["args"]["taskId"]))[0] == job_id]

    def _until_finalized(self, job_id: int, from_block: int, tasks: int, procs: list[Proc],
                         timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            self.bs.mine()  # chain time follows the clock (automine makes blocks only for transactions)
            done = self._finalized(job_id, from_block)
            if done >= tasks:
                return done
            if not any(p.alive() for p in procs):
                raise RuntimeError("every worker exited: " + "; ".join(p.tail(3) for p in procs))
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id}: {done}/{tasks} finalized after {timeout:.0f} s")
            time.sleep(1.0)

    def _requests(self, label: str, done: int) -> dict[str, Any]:
        per = max(done, 1)
        by_role = {role: self.proxy.total(f"{label}.{role}") for role in ("worker", "requester", "verifier")}
        methods: dict[str, dict[str, int]] = {"worker": {}, "requester": {}, "verifier": {}}
        for role, c in self.proxy.counts().items():
            if not role.startswith(f"{label}."):
                continue
            kind = role[len(label) + 1:].split("-")[0]
            for m, n in c.items():
                methods[kind][m] = methods[kind].get(m, 0) + n
        return {"rpc_per_task": {k: round(v / per, 1) for k, v in by_role.items()},
                "methods_per_task": {kind: {m: round(n / per, 1) for m, n in sorted(ms.items())}
                                     for kind, ms in methods.items()}}

    def _races(self, job_id: int, from_block: int, to_block: int, label: str, done: int) -> dict[str, Any]:
        lost = 0
        for journal in (self.bs.work / f"workers-{label}").rglob("journal.sqlite"):
            with sqlite3.connect(journal) as db:
                lost += db.execute("SELECT COUNT(*) FROM items WHERE phase='not_claimed' AND "
                                   "(key LIKE 'task:%' OR key LIKE 'attempt:%')").fetchone()[0]
        selector = self._claim_selector()
        reverted = [f for f in self.bs.failed_transactions(from_block + 1)
                    if bytes(self.bs.w3.eth.get_transaction(f["tx"])["input"])[:4] == selector]
        claims = len(self._job_events("TaskClaimed", job_id, from_block)) + len(reverted)
        return {"lost_races_per_task": round(lost / max(done, 1), 3),
                "reverted_claims": len(reverted),
                "reverted_claims_share": round(len(reverted) / max(claims, 1), 4)}

    def _claim_selector(self) -> bytes:
        from web3 import Web3

        abi = next(f for f in self.bs.c["JobMarket"].abi if f.get("name") == "claim")
        return bytes(Web3.keccak(text=f"claim({','.join(i['type'] for i in abi['inputs'])})")[:4])

    def _key_latency(self, job_id: int, from_block: int) -> float | None:
        stamps: dict[int, int] = {}

        def ts(n: int) -> int:
            if n not in stamps:
                stamps[n] = int(self.bs.w3.eth.get_block(n)["timestamp"])
            return stamps[n]

        claimed = {(int(e["args"]["taskId"]), e["args"]["worker"]): ts(e["blockNumber"])
                   for e in self._job_events("TaskClaimed", job_id, from_block)}
        lat = [ts(e["blockNumber"]) - claimed[(int(e["args"]["taskId"]), e["args"]["worker"])]
               for e in self._job_events("KeyDelivered", job_id, from_block)
               if (int(e["args"]["taskId"]), e["args"]["worker"]) in claimed]
        if not lat:
            return None
        return float(sorted(lat)[max(0, int(0.95 * len(lat)) - 1)]) if len(lat) > 1 else float(lat[0])

    def _gas(self, from_block: int, to_block: int, done: int) -> int:
        ours = {a.lower() for a in (c.address for c in self.bs.c.values())}
        gas = 0
        for n in range(from_block + 1, to_block + 1):
            res = self.bs.w3.provider.make_request("eth_getBlockReceipts", [hex(n)])  # type: ignore[arg-type]
            gas += sum(int(r["gasUsed"], 16) for r in res.get("result") or []
                       if (r.get("to") or "").lower() in ours)
        return gas // max(done, 1)

    def history(self, blocks: int, chunk: int = 100) -> float:
        """Add ``blocks`` empty blocks (in chunks: each ``anvil_mine`` call must answer in time)."""
        t0 = time.perf_counter()
        left = blocks
        while left > 0:
            self.bs.w3.provider.make_request("anvil_mine", [hex(min(chunk, left))])  # type: ignore[arg-type]
            left -= chunk
        return round(time.perf_counter() - t0, 1)


def _peak_rss_mb(proc: Proc) -> float | None:
    try:
        for line in Path(f"/proc/{proc.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def measure(configs: tuple[tuple[int, int], ...], work: Path, history: int) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": [], "after_history": {}}
    with BenchStack(work, CHAIN_ARGS) as bs, CountingProxy(bs.rpc) as proxy:
        sc = Scale(bs, proxy)
        out["idle_poll_requests"] = {"open_0": sc.idle_poll(0), f"open_{IDLE_OPEN}": sc.idle_poll(IDLE_OPEN)}
        for tasks, workers in configs:
            out["runs"].append(sc.job(tasks, workers, f"n{tasks}w{workers}"))
        if history <= 0:
            out["notes"] = sc.notes
            return out
        try:  # the history phase must not cost the figures already measured
            out["after_history"]["mine_seconds"] = sc.history(history)
            out["after_history"]["blocks"] = history
            out["after_history"]["idle_poll_requests"] = {"open_0": sc.idle_poll(0)}
            tasks, workers = configs[0]
            out["after_history"]["run"] = sc.job(tasks, workers, f"n{tasks}w{workers}h")
        except Exception as exc:  # noqa: BLE001 - recorded in the notes and the table
            sc.notes.append(f"history phase failed: {exc!r}"[:400])
        out["notes"] = sc.notes
    return out


def summarize(m: dict[str, Any]) -> dict[str, Any]:
    """The headline figures and whether the issue's targets hold."""
    runs = [r for r in m["runs"] if r["completed"] == r["tasks"]]
    idle = m["idle_poll_requests"]
    roles = ("worker", "requester", "verifier")
    spread = {}
    for role in roles:
        vals = [r["rpc_per_task"][role] for r in runs if r["workers"] == runs[0]["workers"]] if runs else []
        spread[role] = round(max(vals) / min(vals), 3) if vals and min(vals) > 0 else None
    before = m["runs"][0]["rpc_per_task"] if m["runs"] else {}
    after = m["after_history"].get("run", {}).get("rpc_per_task", {})
    history = {role: _ratio(after[role], before[role]) if role in after and before.get(role) else None
               for role in roles}
    # every run counts, the one after the history too: a claim mined as a revert costs gas there as well
    shares = [r["reverted_claims_share"] for r in [*m["runs"], m["after_history"].get("run")] if r]
    marginal = {role: marginal_ratio(runs, role) for role in roles}
    return {
        "scale_marginal_rpc_per_task_ratio": marginal,
        "scale_idle_poll_requests": idle,
        "scale_idle_poll_ratio": _ratio(idle[f"open_{IDLE_OPEN}"], idle["open_0"]),
        "scale_rpc_per_task_spread": spread,
        "scale_rpc_per_task_history_ratio": history,
        "scale_reverted_claims_share_max": max(shares) if shares else None,
        "scale_largest_job_completed": max((r["tasks"] for r in runs), default=0),
        "scale": m,
    }


def marginal_ratio(runs: list[dict[str, Any]], role: str) -> float | None:
    """Whether a task costs ``role`` more requests in a larger job: over the completed runs with
    the first run's worker count, sorted by N, the requests each added task cost between the
    two largest jobs ÷ between the two smallest (a whole job's requests differenced, so a
    job's fixed part cancels out). ~1 when the per-task work is independent of N; an O(N) scan
    per task (the O(N²) job issue 25 was filed for) makes it grow with N. None with fewer than
    three sizes."""
    same = [r for r in runs if r["workers"] == runs[0]["workers"]] if runs else []
    sizes = {r["tasks"]: r["rpc_per_task"][role] * r["tasks"] for r in same}
    if len(sizes) < 3:
        return None
    ns = sorted(sizes)

    def slope(a: int, b: int) -> float:
        return (sizes[b] - sizes[a]) / (b - a)

    low, high = slope(ns[0], ns[1]), slope(ns[-2], ns[-1])
    return round(high / low, 3) if low > 0 else None


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def run(quick: bool, *, full: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vt-scale-") as tmp:
        try:
            m = measure(FULL if full else QUICK, Path(tmp), HISTORY_BLOCKS["full" if full else "quick"])
        except BaseException:
            _dump_logs(Path(tmp))
            raise
    return summarize(m)


def _dump_logs(work: Path) -> None:
    for log in sorted((work / "logs").glob("*.log")) if (work / "logs").exists() else []:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-8:])
        print(f"--- {log.name}\n{tail}", file=sys.stderr)


def details(results: dict[str, Any]) -> list[str]:
    """The scale runs as a table for docs/benchmarks.md (bench/report.py)."""
    m = results.get("scale")
    if not isinstance(m, dict):
        return []
    idle, hist = m.get("idle_poll_requests", {}), m.get("after_history", {})
    out = ["", "### Cost per task as jobs grow (issue 25)",
           f"Requests per idle discovery poll: {idle}; after {hist.get('blocks')} empty blocks: "
           f"{hist.get('idle_poll_requests')}. Requests go through the bench's counting proxy "
           "(bench/rpcproxy.py), per role; 1 sampling verifier, `job serve`, W `worker run` processes.", "",
           "| N | W | done | tasks/min | RPC/task worker | requester | verifier | lost races/task "
           "| reverted claims | key p95 s | gas/task | peak RSS MB w/r/v |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    runs = [(r, "") for r in m.get("runs", [])]
    if "run" in hist:
        runs.append((hist["run"], " (after history)"))
    for r, when in runs:
        rpc, rss = r["rpc_per_task"], r["peak_rss_mb"]
        out.append(f"| {r['tasks']}{when} | {r['workers']} | {r['completed']} | {r['tasks_per_minute']} | "
                   f"{rpc['worker']} | {rpc['requester']} | {rpc['verifier']} | {r['lost_races_per_task']} | "
                   f"{r['reverted_claims']} | {r['key_latency_p95_s']} | {r['gas_per_task']:,} | "
                   f"{rss['worker_max']}/{rss['requester']}/{rss['verifier']} |")
    out += [f"- {n}" for n in m.get("notes", [])]
    out += fixed_and_marginal(m.get("runs", []))
    return out


def fixed_and_marginal(runs: list[dict[str, Any]]) -> list[str]:
    """Why requests per task move with N, as lines for the page: for each worker count W with
    runs at two or more N, each role's requests of a whole job fitted as ``fixed + marginal × N``
    (least squares over the completed runs). A positive fixed part spread over more tasks makes
    the per-task figure fall as N grows; a per-task cost that grew with N would show as a
    marginal rising between runs instead."""
    out = []
    for w in sorted({r["workers"] for r in runs}):
        same = sorted((r for r in runs if r["workers"] == w and r["completed"] == r["tasks"]),
                      key=lambda r: r["tasks"])
        if len({r["tasks"] for r in same}) < 2:
            continue
        parts = []
        for role in ("worker", "requester", "verifier"):
            xs = [float(r["tasks"]) for r in same]
            ys = [r["rpc_per_task"][role] * r["tasks"] for r in same]
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
            slope /= sum((x - mx) ** 2 for x in xs)
            trend = "falls" if same[-1]["rpc_per_task"][role] < same[0]["rpc_per_task"][role] else "rises"
            parts.append(f"{role} {my - slope * mx:,.0f} + {slope:.1f} × N (per task it {trend} from "
                         f"{same[0]['rpc_per_task'][role]} to {same[-1]['rpc_per_task'][role]})")
        out.append(f"- Requests of a whole job with W = {w}, fitted as fixed + marginal × N over N = "
                   f"{', '.join(str(r['tasks']) for r in same)}: {'; '.join(parts)}.")
    return out


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    full: Annotated[bool, typer.Option("--full", help="N = 32, 256, 1,024; 4 and 8 workers.")] = False,
    config: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045 - typer needs Optional here
        "--config", help="Only these runs, TASKSxWORKERS (repeatable), e.g. 1024x4.")] = None,
    history: Annotated[int, typer.Option(
        "--history", help="With --config: empty blocks to add, then the first run again (0: none).")] = 0,
    out: Annotated[Path, typer.Option("--out", help="The results file.")] = DEFAULT_PATH,
) -> None:
    """Run the scale benchmark and merge its keys into the results file (and, for the default
    file, the table page)."""
    from bench import report
    from bench.results import record

    if history and not config:
        typer.echo("error: --history goes with --config (the full and quick runs fix their own history)",
                   err=True)
        raise typer.Exit(2)
    if config:
        try:
            configs = tuple((int(c.split("x")[0]), int(c.split("x")[1])) for c in config)
        except (ValueError, IndexError):
            typer.echo(f"error: --config takes TASKSxWORKERS (e.g. 1024x4), not {config}", err=True)
            raise typer.Exit(2) from None
        with tempfile.TemporaryDirectory(prefix="vt-scale-") as tmp:
            try:
                extra = summarize(measure(configs, Path(tmp), history))
            except BaseException:
                _dump_logs(Path(tmp))
                raise
        record(extra, out)
        print(json.dumps(extra, indent=1))
        return
    results = run(quick=False, full=full)
    record(results, out)
    if out == DEFAULT_PATH:
        report.write(DEFAULT_PATH, report.DEFAULT_DOC)
    print(json.dumps({k: v for k, v in results.items() if k != "scale"}, indent=1))


if __name__ == "__main__":
    app()
