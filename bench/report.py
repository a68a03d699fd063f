"""docs/benchmarks.md, generated from .veritrain/bench/results.json (never edited by hand).

``python -m bench`` calls :func:`write` at the end of a run; ``python -m
bench.report [--results PATH] [--out PATH]`` regenerates the page alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.results import DEFAULT_PATH

DEFAULT_DOC = Path("docs/benchmarks.md")


@dataclass(frozen=True)
class Key:
    name: str
    path: tuple[str, ...]  # where the value lives in results.json
    target: str  # as the issues state it ("—" when they set none)
    source: str  # the issue / module
    meaning: str
    check: str | None = None  # "<=x" / ">=x" / "==x": whether the value meets the target


#: Every key issue 10 asks for, in the order of the table.
KEYS: tuple[Key, ...] = (
    Key(
        "gas.task_happy_path",
        ("gas", "task_happy_path"),
        "≤ 400,000 gas",
        "issue 3 · bench/gas.py",
        "gas of one task on the happy path (postJob share, claim, key, commit, reveal, finalize, withdraw)",
        "<=400000",
    ),
    Key(
        "gas.dispute_total",
        ("gas", "dispute_total"),
        "≤ 700,000 gas",
        "issue 3 · bench/gas.py",
        "gas of a whole dispute (challenge, draw, votes, settle)",
        "<=700000",
    ),
    Key(
        "gas.wrong_start_slash",
        ("gas", "wrong_start_slash"),
        "— (reported)",
        "issue 22 · bench/gas.py",
        "gas of slashing a wrong start by proof alone (slashWrongStart: leaf 0 under a 1,025-leaf root, "
        "the bound start under an 8-task startsRoot)",
    ),
    Key(
        "gas.forced_round_total",
        ("gas", "forced_round_total"),
        "— (reported)",
        "issue 22 · bench/gas.py",
        "gas of a forced error caught: the challenge and the worker's answerForced (no committee; "
        "docs/spec/forced.md)",
    ),
    Key(
        "gas.forced_per_task_overhead",
        ("gas", "forced_per_task_overhead"),
        "— (reported)",
        "issue 22 · bench/gas.py",
        "what forced errors add to every redundancy-1 task's claim and key delivery (the seed, the seal)",
    ),
    Key(
        "gas.scored_window_total",
        ("gas", "scored_window_total"),
        "— (reported)",
        "issue 21 · bench/gas.py",
        "gas of one scored window, 3 workers and 2 validators: post, joins, key deliveries, commits, "
        "reveals, score commits and reveals, settle, one leave and withdraw",
    ),
    Key(
        "incentives.planted_detection_within_band",
        ("incentives", "planted_detection_within_band"),
        "true: each rate within its band of 1 − (1 − p)^(f·V)",
        "issue 22 · bench/incentives.py",
        "planted cheats caught by the verifiers' own sampling at the default p (≥ 50 per f, V), "
        "each rate within a 99.9% binomial band of the prediction",
    ),
    Key(
        "incentives.forced_caught_over_forced",
        ("incentives", "forced_caught_over_forced"),
        "≈ p for one verifier (1 − (1 − p)^V for V)",
        "issue 22 · bench/incentives.py",
        "forced errors caught ÷ forced errors: drawn by the protocol's selection, caught when a "
        "verifier's own sampling at the default p picks j* (one verifier; every V in forced_detection)",
    ),
    Key(
        "incentives.cheat_rate_without_forced_errors",
        ("incentives", "cheat_rate_without_forced_errors"),
        "— (reported)",
        "issue 22 · bench/incentives.py",
        "agent-based simulation: share of tasks cheated on, second half of the run, no forced errors",
    ),
    Key(
        "incentives.cheat_rate_with_forced_errors",
        ("incentives", "cheat_rate_with_forced_errors"),
        "— (reported)",
        "issue 22 · bench/incentives.py",
        "the same with forced errors and the jackpot of docs/economics.md (the model; on-chain since "
        "session 11, docs/spec/forced.md)",
    ),
    Key(
        "incentives.verifier_participation_without_forced_errors",
        ("incentives", "verifier_participation_without_forced_errors"),
        "— (reported)",
        "issue 22 · bench/incentives.py",
        "share of results each verifier checks, no forced errors",
    ),
    Key(
        "incentives.verifier_participation_with_forced_errors",
        ("incentives", "verifier_participation_with_forced_errors"),
        "— (reported)",
        "issue 22 · bench/incentives.py",
        "share of results each verifier checks, with forced errors",
    ),
    Key(
        "worker_overhead_ratio",
        ("worker_overhead_ratio",),
        "≤ 1.05",
        "issue 5 · bench/engine.py",
        "engine wall time (checkpoint every k = 50, ≥ 1M params) ÷ a plain PyTorch loop",
        "<=1.05",
    ),
    Key(
        "replay_segment_ratio",
        ("replay_segment_ratio",),
        "≤ 1.1",
        "issue 5 · bench/engine.py",
        "replaying one segment ÷ (training time ÷ segments)",
        "<=1.1",
    ),
    Key(
        "portable_step_ratio.mlp",
        ("portable_step_ratio", "mlp"),
        "—",
        "issue 20 · bench/portable.py",
        "portable step time ÷ standard step time, digits MLP [128, 64] + dropout, Adam, 1 thread",
    ),
    Key(
        "portable_step_ratio.char_lm",
        ("portable_step_ratio", "char_lm"),
        "—",
        "issue 20 · bench/portable.py",
        "portable step time ÷ standard step time, char LM (2 layers, d 32, context 32), AdamW, 1 thread",
    ),
    Key(
        "dp_step_ratio",
        ("dp_step_ratio",),
        "—",
        "issue 19 · bench/dp.py",
        "DP-SGD step time (torch.func per-example clipping + noise) ÷ plain step time, "
        "digits MLP [64], batch 128, 1 thread",
    ),
    Key(
        "dp_accuracy_drop_eps8_digits",
        ("dp_accuracy_drop_eps8_digits",),
        "≤ 5 points",
        "issue 19 · bench/dp.py",
        "held-out accuracy without DP minus at ε = 8 (δ 1e-5), digits, real-stack jobs, percentage points",
        "<=5",
    ),
    Key(
        "dp_mia_advantage_ratio_eps8_digits",
        ("dp_mia_advantage_ratio_eps8_digits",),
        "≤ 0.5",
        "issue 19 · bench/dp.py",
        "membership-inference advantage (max TPR − FPR, the stronger of loss threshold and LiRA) "
        "at ε = 8 ÷ without DP, digits_small (400 images, 240 epochs: a setting where the non-DP "
        "model leaks)",
        "<=0.5",
    ),
    Key(
        "storage_ratio",
        ("storage_ratio",),
        "≥ 0.8 (64 MiB)",
        "issue 4 · bench/storage.py",
        "encrypted shard upload+download throughput ÷ raw IPFS add+cat",
        ">=0.8",
    ),
    Key(
        "merkle_100k_seconds",
        ("merkle_100k_seconds",),
        "≤ 1.0 s",
        "issue 4 · bench/storage.py",
        "build a Merkle tree and every proof over 100,000 leaves",
        "<=1.0",
    ),
    Key(
        "verifier_cost_ratio",
        ("verifier_cost_ratio",),
        "≈ p (the design: a fraction p of training)",
        "issue 10 · bench/verifier_cost.py",
        "sampling verifier's compute per result at its default p ÷ the worker's compute",
    ),
    Key(
        "detection_rate",
        ("detection_rate",),
        "— (1.0 expected with full verification)",
        "issue 10 · bench/protocol.py",
        "planted cheats (skip step, perturb weight, other data, copied root) that end slashed on-chain",
    ),
    Key(
        "false_challenge_rate",
        ("false_challenge_rate",),
        "0",
        "issue 10 · bench/protocol.py",
        "honest results challenged ÷ honest results, same run",
        "==0",
    ),
    Key(
        "e2e_seconds",
        ("e2e_seconds",),
        "≤ 300 s (issue 9: demo within 5 minutes)",
        "issues 9, 10 · bench/protocol.py",
        "the demo scenario's wall time",
        "<=300",
    ),
    Key(
        "e2e_protocol_overhead",
        ("e2e_protocol_overhead",),
        "—",
        "issue 10 · bench/protocol.py",
        "demo wall time ÷ the same training as a plain local loop",
    ),
    Key(
        "concurrent_workers",
        ("concurrent_workers",),
        "—",
        "issue 10 · bench/protocol.py",
        "most workers completing tasks of one job at once with no failed transaction",
    ),
    Key("scale_idle_poll_ratio", ("scale_idle_poll_ratio",), "≤ 1.2 (independent of open tasks)",
        "issue 25 · bench/scale.py", "a worker's requests per idle discovery poll, 1,000 open tasks ÷ none",
        "<=1.2"),
    *(Key(f"scale_rpc_per_task_spread.{r}", ("scale_rpc_per_task_spread", r), "≤ 1.2 (flat within 20 %)",
          "issue 25 · bench/scale.py", f"{r} RPC requests per completed task, largest ÷ smallest over N",
          "<=1.2")
      for r in ("worker", "requester", "verifier")),
    *(Key(f"scale_marginal_rpc_per_task_ratio.{r}", ("scale_marginal_rpc_per_task_ratio", r),
          "≤ 1.2 (a task costs the same in any job)", "issue 25 · bench/scale.py",
          f"{r} requests each added task cost between the two largest jobs ÷ between the two "
          "smallest (whole-job requests differenced: the fixed part cancels)", "<=1.2")
      for r in ("worker", "requester", "verifier")),
    *(Key(f"scale_rpc_per_task_history_ratio.{r}", ("scale_rpc_per_task_history_ratio", r),
          "≤ 1.2 (unchanged by history)", "issue 25 · bench/scale.py",
          f"{r} RPC requests per task after the history phase's empty blocks ÷ before (fresh processes)",
          "<=1.2")
      for r in ("worker", "requester", "verifier")),
    Key("scale_reverted_claims_share_max", ("scale_reverted_claims_share_max",), "< 1 % of claims",
        "issue 25 · bench/scale.py",
        "claims mined with status 0 ÷ claims, worst run (the one after the history included)", "<=0.0099"),
    Key("scale_largest_job_completed", ("scale_largest_job_completed",), "1,024 tasks (make bench-scale)",
        "issue 25 · bench/scale.py", "tasks of the largest job run to the end", ">=1024"),
    Key(
        "scored_honest_reward_share",
        ("scored_honest_reward_share",),
        "≥ 0.95",
        "issue 21 · bench/scored.py",
        "scored mode: share of the workers' rewards paid to honest workers (with 4 kinds of cheat planted)",
        ">=0.95",
    ),
    Key(
        "scored_reward_share_copier",
        ("scored_reward_share_copier",),
        "0",
        "issue 21 · bench/scored.py",
        "scored mode: share of the workers' rewards paid to the copier",
        "==0",
    ),
    Key(
        "scored_lying_validator_slashed",
        ("scored_lying_validator_slashed",),
        "true",
        "issue 21 · bench/scored.py",
        "scored mode: the validator that scored the other way round lost stake",
    ),
    Key(
        "scored_loss_vs_central",
        ("scored_loss_vs_central",),
        "≤ 1.05",
        "issue 21 · bench/scored.py",
        "scored mode: held-out loss of the final global model ÷ the same steps trained centrally",
        "<=1.05",
    ),
    Key(
        "scored_gas_per_window",
        ("scored_gas_per_window",),
        "—",
        "issue 21 · bench/scored.py",
        "scored mode: gas of every ScoredRounds transaction of the job ÷ windows",
    ),
    Key(
        "scored_validator_compute_ratio",
        ("scored_validator_compute_ratio",),
        "—",
        "issue 21 · bench/scored.py",
        "scored mode: validator CPU seconds scoring ÷ honest worker CPU seconds training",
    ),
)


def lookup(results: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = results
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def meets(value: Any, check: str | None) -> str:
    if check is None or not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    op, bound = check[:2], float(check[2:])
    ok = {"<=": value <= bound, ">=": value >= bound, "==": value == bound}[op]
    return "yes" if ok else "**no**"


def fmt(value: Any) -> str:
    if value is None:
        return "**missing**"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def missing(results: dict[str, Any]) -> list[str]:
    """Keys of :data:`KEYS` without a measured value in ``results``."""
    return [k.name for k in KEYS if lookup(results, k.path) is None]


def _details(results: dict[str, Any]) -> list[str]:
    out: list[str] = []
    v = results.get("verifier_cost")
    if isinstance(v, dict):
        out += [
            "",
            "### verifier_cost_ratio",
            f"p = {v.get('p')} ({v.get('p_source')}); {v.get('results_checked')} sampled results of a "
            f"{v.get('steps')}-step task (k = {v.get('k')}, {v.get('segments_per_result')} segments), "
            f"{v.get('segments_replayed')} segments replayed "
            f"(expected {v.get('expected_replays_per_result')} "
            f"per result), {v.get('replay_mismatches')} mismatches. Worker side: train + encrypt the "
            "checkpoints; verifier side: decrypt, replay, compare. IPFS and chain time are left out of both.",
        ]
    dp = results.get("dp")
    if isinstance(dp, dict):
        out += ["", "### DP-SGD (issue 19)",
                f"Source of the keys: {dp.get('source')}. δ {dp.get('delta')}, "
                f"C = {dp.get('max_grad_norm')}, "
                "Poisson sampling keyed by the shard key, sampled-Gaussian RDP accountant; settings in "
                "bench/dp.py. Real stack: each job posted with `job submit --holdout 0.5`, trained by "
                "worker processes, every segment replayed by a sampling verifier, fetched, then "
                f"`veritrain audit membership` with {dp.get('shadows', 0)} LiRA shadows (members = the "
                "training split, non-members = the held-out half); advantage = the larger of the two "
                "attacks' max(TPR − FPR).", ""]
        real = dp.get("real_stack")
        if isinstance(real, dict):
            out += ["| setting | ε | σ | accuracy | loss AUC | LiRA AUC | LiRA TPR@0.1%FPR | advantage | "
                    "segments replayed / matched |", "|---|---|---|---|---|---|---|---|---|"]
            for name, rows in real.items():
                if name.startswith("_") or not isinstance(rows, dict):
                    continue
                for eps, r in rows.items():
                    out.append(f"| {name} | {eps} | {r.get('noise_multiplier', '—')} | {r.get('accuracy')} | "
                               f"{r.get('loss_threshold_auc')} | {r.get('lira_auc', '—')} | "
                               f"{r.get('lira_tpr_at_0.1%_fpr', '—')} | {r.get('advantage')} | "
                               f"{r.get('segments_replayed')} / {r.get('segments_matched')} |")
        seeds = dp.get("seeds")
        if isinstance(seeds, dict):
            out += ["", f"In-process accuracy over seeds {seeds.get('seeds')} (job seed, split, DP key):", "",
                    "| dataset | ε | mean accuracy | per seed |", "|---|---|---|---|"]
            for name, rows in seeds.items():
                if isinstance(rows, dict):
                    for eps, r in rows.items():
                        out.append(f"| {name} | {eps} | {r.get('accuracy_mean')} | {r.get('accuracy')} |")
    port = results.get("portable")
    if isinstance(port, dict):
        out += ["", "### portable_step_ratio (issue 20)",
                f"{port.get('rounds')} rounds, {port.get('threads')} thread, steps {port.get('steps')}; "
                "per round standard then portable from the same seed (a new seed each round).", "",
                "| model | metric | standard | portable | standard ms/step | portable ms/step |",
                "|---|---|---|---|---|---|"]
        for name in ("mlp", "char_lm"):
            d = port.get(name)
            if isinstance(d, dict):
                out.append(f"| {name} | {d.get('metric')} | {d.get('standard')} | {d.get('portable')} | "
                           f"{d.get('standard_ms_per_step')} | {d.get('portable_ms_per_step')} |")
    proto = results.get("protocol")
    if isinstance(proto, dict):
        out += ["", "### Real-stack run (detection, false challenges, e2e, concurrency)"]
        for line in proto.get("notes", []):
            out.append(f"- {line}")
        cheats = proto.get("cheats")
        if isinstance(cheats, list) and cheats:
            out += ["", "| cheat | task | worker | outcome |", "|---|---:|---|---|"]
            for c in cheats:
                out.append(f"| {c.get('kind')} | {c.get('task')} | {c.get('worker')} | {c.get('outcome')} |")
        curve = proto.get("concurrency_curve")
        if isinstance(curve, list) and curve:
            out += [
                "",
                "| workers at once | tasks completed | failed transactions | lost claim races "
                "| wall s | tasks/min |",
                "|---:|---:|---:|---:|---:|---:|",
            ]
            for c in curve:
                out.append(
                    f"| {c.get('workers')} | {c.get('completed')} | {c.get('failed_tx')} | "
                    f"{c.get('lost_claim_races', '')} | "
                    f"{c.get('seconds')} | {c.get('tasks_per_minute')} |"
                )
    from bench.scale import details as scale_details

    out += scale_details(results)
    timings = results.get("bench_seconds")
    if isinstance(timings, dict):
        out += ["", "### Harness wall time per module (this run)", "", "| module | seconds |", "|---|---:|"]
        out += [f"| {k} | {v} |" for k, v in timings.items()]
    return out


def render(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    gaps = missing(results)
    lines = [
        "# Benchmarks",
        "",
        "Generated by `bench/report.py` from `.veritrain/bench/results.json` at the end of "
        "`make bench` (`python -m bench`). Do not edit by hand: rerun the benchmark.",
        "",
        f"- machine: {m.get('platform', '?')}, {m.get('cpus', '?')} CPUs, Python {m.get('python', '?')}",
        f"- date: {m.get('date', '?')}",
        f"- mode: {'quick (tiny configuration — not representative)' if results.get('quick') else 'full'}",
        "- The machine is shared (2 cores, other work running beside the benchmark): wall times are "
        "pessimistic; ratios are measured side by side in the same run, so load hits both sides.",
        *[f"- {note}" for note in results.get("notes", [])],
        "",
        "| key | value | target | meets | what | from |",
        "|---|---:|---|---|---|---|",
    ]
    for k in KEYS:
        value = lookup(results, k.path)
        lines.append(
            f"| `{k.name}` | {fmt(value)} | {k.target} | {meets(value, k.check)} | {k.meaning} | {k.source} |"
        )
    if gaps:
        lines += ["", f"Missing in this run: {', '.join(gaps)}."]
    lines += _details(results)
    return "\n".join(lines) + "\n"


def write(results_path: Path = DEFAULT_PATH, doc: Path = DEFAULT_DOC) -> Path:
    results = json.loads(results_path.read_text())
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render(results))
    return doc


app = typer.Typer(name="bench.report", add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    results: Annotated[Path, typer.Option("--results", help="The results file.")] = DEFAULT_PATH,
    out: Annotated[Path, typer.Option("--out", help="The page to write.")] = DEFAULT_DOC,
) -> None:
    """Regenerate the benchmark table page from a results file."""
    if not results.is_file():
        typer.echo(f"error: no results file at {results}: run `make bench` first", err=True)
        raise typer.Exit(1)
    typer.echo(f"wrote {write(results, out)}")


if __name__ == "__main__":
    app()
