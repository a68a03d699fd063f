"""`veritrain job ...` commands (plugged into the veritrain CLI by entry point).

Imports stay light at module level (typer only): web3, torch and the SDK load inside the
commands. User errors raise VeritrainError subclasses; ``veritrain.cli.main`` prints them as
one ``error: ...`` line and exits 1.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

app = typer.Typer(help="Post training jobs, deliver keys, watch them, fetch checked models.",
                  no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
DevOpt = Annotated[
    Optional[int],  # noqa: UP045 - typer needs Optional
    typer.Option("--dev-account", help="Use dev account N of the local stack (never on a real network)."),
]
HomeOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("--home", help="Where job records live (env VERITRAIN_HOME, default ~/.veritrain)."),
]
JobArg = Annotated[int, typer.Argument(help="The on-chain job id.", min=1)]


def _requester(dev_account: int | None, home: Path | None) -> Any:
    from requester.sdk import Requester
    from requester.settings import RequesterSettings, load_account
    from veritrain.settings import ChainSettings, StorageSettings, default_home
    from veritrain.storage import IpfsStorage

    chain, storage = ChainSettings(), StorageSettings()
    account = load_account(RequesterSettings(), dev_account,
                           prompt=lambda: typer.prompt("Keystore password", hide_input=True, err=True))
    return Requester(chain.rpc_url, account, IpfsStorage(storage.ipfs_api), chain.deployment,
                     home=home or default_home())


def _tokens(req: Any) -> Any:
    from veritrain.units import TokenFormat

    return TokenFormat(int(req.market.token.decimals()), str(req.market.token.symbol()))


def _echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


@app.command("submit")
def submit(
    spec: Annotated[Path, typer.Argument(help="The job spec (YAML or JSON).")],
    data: Annotated[Path, typer.Option("--data", help="Dataset: .npz, .pt, .csv or an image folder.")],
    reward: Annotated[str, typer.Option("--reward", help="Reward per task, in tokens.")] = "1",
    stake: Annotated[str, typer.Option("--stake", help="Worker stake per task, in tokens.")] = "1",
    holdout: Annotated[float, typer.Option("--holdout", help="Fraction kept back for evaluation.")] = 0.2,
    dev_account: DevOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check, shard, encrypt, upload and post a job; print its id. Then run `veritrain job serve`."""
    import warnings

    from veritrain.spec import load_spec

    job_spec = load_spec(spec)  # a bad spec fails before any connection is made
    req = _requester(dev_account, home)
    fmt = _tokens(req)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job = req.post_job(job_spec, data, reward_per_task=fmt.parse(reward, "--reward"),
                           stake_per_task=fmt.parse(stake, "--stake"), holdout=holdout)
    from requester.errors import DataWarning, StakeWarning

    for w in caught:
        if issubclass(w.category, (DataWarning, StakeWarning)):
            typer.echo(f"warning: {w.message}", err=True)
    if as_json:
        r = job.record
        _echo_json({"job_id": job.id, "spec_cid": r.doc_cid, "shards_root": r.shards_root,
                    "post_tx": r.post_tx, "approve_tx": r.approve_tx, "record": str(req.store.path(job.id))})
    else:
        typer.echo(job.id)


@app.command("quote")
def quote(
    spec: Annotated[Path, typer.Argument(help="The job spec (YAML or JSON).")],
    reward: Annotated[str, typer.Option("--reward", help="Reward per task, in tokens.")] = "1",
    stake: Annotated[str, typer.Option("--stake", help="Worker stake per task, in tokens.")] = "1",
    verifiers: Annotated[int, typer.Option("--verifiers", min=0, help="Verifiers checking the job.")] = 3,
    p: Annotated[float, typer.Option("--p", min=0.0, max=1.0, help="Share of segments each replays.")] = 0.1,
    cost_share: Annotated[float, typer.Option(
        "--cost-share", min=0.0, max=1.0, help="A worker's training cost as a share of the reward.")] = 1.0,
    forced_error_rate: Annotated[float, typer.Option(
        "--forced-error-rate", min=0.0, max=1.0, help="Forced errors per result, for the jackpot.")] = 0.01,
    as_json: JsonOpt = False,
) -> None:
    """Before posting: detection per cheat size, the least stake that makes cheating unprofitable,
    and the jackpot that keeps checking worth it (docs/economics.md). Needs no chain."""
    from veritrain.economics import Terms
    from veritrain.economics import quote as make_quote
    from veritrain.errors import ConfigError
    from veritrain.params import network_params
    from veritrain.spec import load_spec
    from veritrain.units import TokenFormat

    job_spec = load_spec(spec)
    decimals = network_params("local").token_decimals
    fmt = TokenFormat(decimals, "tokens")
    try:
        terms = Terms(reward=fmt.parse(reward, "--reward"),
                      stake=fmt.parse(stake, "--stake", allow_zero=True),
                      segments=job_spec.num_checkpoints - 1, verifiers=verifiers, p=p,
                      cost_share=cost_share, forced_error_rate=forced_error_rate)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    q = make_quote(terms, granularity=10 ** max(0, decimals - 6))  # bounds to a millionth of a token
    if as_json:
        _echo_json(q.to_dict())
        return
    typer.echo(f"{terms.segments} segments per task, {verifiers} verifier(s) sampling at p = {p}")
    typer.echo("cheat size (segments)  detected with")
    for f, pd in q.detection:
        typer.echo(f"  {f:>20}  {pd:.4f}")
    if q.min_stake is None:
        typer.echo("minimum stake: none works (nobody checks)")
    else:
        verdict = "ok" if q.stake_ok else "TOO LOW"
        typer.echo(f"minimum stake: {fmt(q.min_stake)} (set by a {q.worst_f}-segment cheat); "
                   f"--stake {fmt(terms.stake)}: {verdict}")
    typer.echo(f"a verifier's replay cost per result: {fmt(q.check_cost)}")
    if q.jackpot is not None:
        typer.echo(f"jackpot that keeps checking rational at {forced_error_rate} forced errors per result: "
                   f"{fmt(q.jackpot)} (a fee of {fmt(q.jackpot_fee or 0)} per task funds it)")


@app.command("status")
def status(job_id: JobArg, dev_account: DevOpt = None, home: HomeOpt = None,
           as_json: JsonOpt = False) -> None:
    """The job's state and every task's claims and phases."""
    st = _requester(dev_account, home).job(job_id).status()
    if as_json:
        _echo_json(st.to_dict())
        return
    typer.echo(st.summary())
    for r in st.rounds if st.rounds_total > 1 else []:
        where = f"on-chain job {r.job_id}" if r.job_id is not None else "not posted yet"
        typer.echo(f"  round {r.round}: {where}, {r.state}, {r.tasks_final}/{r.tasks} tasks final")
    for t in st.tasks:
        workers = ", ".join(f"{c.worker[:10]}… {c.phase}" for c in t.claims) or "-"
        typer.echo(f"  task {t.label}  {st.task_phase(t):<13} {t.examples:>7} examples  {workers}")


def _table(st: Any) -> Any:
    from rich.table import Table

    table = Table(title=st.summary())
    for col in ("task", "phase", "examples", "workers"):
        table.add_column(col)
    for t in st.tasks:
        workers = "\n".join(f"{c.worker} {c.phase}" for c in t.claims) or "-"
        table.add_row(t.label, st.task_phase(t), str(t.examples), workers)
    return table


@app.command("watch")
def watch(
    job_id: JobArg,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between refreshes.")] = 2.0,
    timeout: Annotated[float, typer.Option("--timeout", help="Give up after this many seconds.")] = 0,
    dev_account: DevOpt = None,
    home: HomeOpt = None,
) -> None:
    """A live table of the tasks and their phases until the job is done (plain lines off a TTY)."""
    job = _requester(dev_account, home).job(job_id)
    end = time.monotonic() + timeout if timeout > 0 else None
    tty = sys.stdout.isatty()
    last = None
    live = None
    if tty:
        from rich.live import Live

        live = Live(auto_refresh=False)
        live.start()
    try:
        while True:
            st = job.status()
            if live is not None:
                live.update(_table(st), refresh=True)
            else:
                phases = " ".join(f"task {t.task_id}:{st.task_phase(t)}" for t in st.tasks)
                line = f"{st.summary()} | {phases}"
                if line != last:
                    typer.echo(line)
                    last = line
            if st.done or st.state != "open" or (end is not None and time.monotonic() > end):
                return
            time.sleep(interval)
    finally:
        if live is not None:
            live.stop()


@app.command("fetch")
def fetch(
    job_id: JobArg,
    out: Annotated[Path, typer.Option("--out", help="Where to write the model (.safetensors).")],
    dev_account: DevOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download and check every task's final checkpoint, aggregate, evaluate, save the model."""
    res = _requester(dev_account, home).job(job_id).result()
    path = res.save(out)
    if as_json:
        _echo_json({"model": str(path), "metrics": res.metrics, "provenance": res.provenance.to_dict()})
        return
    typer.echo(f"model written to {path}")
    m = res.metrics
    if "holdout_accuracy" in m and "baseline_majority_accuracy" in m:
        typer.echo(f"  held-out accuracy {m['holdout_accuracy']:.4f} on {m['holdout_examples']} examples; "
                   f"baselines: majority class {m['baseline_majority_accuracy']:.4f}, "
                   f"untrained model {m['baseline_untrained_accuracy']:.4f}")
    if "privacy" in m:
        p = m["privacy"]
        typer.echo(f"  differential privacy (DP-SGD): epsilon {p['epsilon']:.3g} at delta {p['delta']:g}, "
                   f"noise multiplier {p['noise_multiplier']:.4g}, accountant {p['accountant']}")
    for k, v in m.items():
        typer.echo(f"  {k}: {v}")


def _delivery_text(d: Any) -> str:
    """What a delivered key is for, in words: only a referee's key has to do with a dispute."""
    if d.kind == "worker":
        return f"data key for worker {d.party} (task {d.target})"
    if d.kind == "referee":
        return f"shard key for referee {d.party} (dispute {d.target})"
    return f"job key for sampling verifier {d.party} (job {d.target})"


def _scored_keys(req: Any) -> Any:
    """(ScoredChain, ScoredStore) of the requester, sending through its client; None when the
    deployment has no ScoredRounds."""
    from requester.scored import scored_store
    from veritrain.scored.chain import ScoredChain

    if "ScoredRounds" not in req.deployment.contracts:
        return None
    chain = ScoredChain(req.client.w3, req.deployment.address("ScoredRounds"), req.account, client=req.client)
    return chain, scored_store(chain, req.home)


@app.command("serve")
def serve(
    jobs: Annotated[Optional[list[int]], typer.Option("--job", help="Serve only these jobs.")] = None,  # noqa: UP045
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between passes.")] = 1.0,
    dev_account: DevOpt = None,
    home: HomeOpt = None,
) -> None:
    """Deliver data keys to every claim (and drawn referee) on this requester's open jobs, post
    each next round of a multi-round job when the last one is final and verified, and close
    each job whose slots have all ended (its leftover escrow is withdrawn).

    Scored jobs posted from here (``post_scored_job(..., home=...)``) are served too: each
    worker and validator that joins gets the data key, wrapped to its own public key.

    Catches up on claims made (and rounds finished) while it was down; never delivers or
    posts twice. Stop with Ctrl-C.
    """
    from requester.rounds import RoundDriver

    req = _requester(dev_account, home)
    fmt = _tokens(req)
    services: dict[int, RoundDriver] = {}
    ended: set[int] = set()  # closed jobs: not loaded again on every pass
    scored = _scored_keys(req)
    while True:
        with req.client.one_head():  # the pass's reads of the latest block: one request
            _serve_pass(req, fmt, jobs, services, ended, scored)
            if once:
                return
            if jobs and all(d.finished() for d in services.values()):
                typer.echo("every job served has ended")
                return
        time.sleep(interval)


def _serve_pass(req: Any, fmt: Any, jobs: list[int] | None, services: dict[int, Any], ended: set[int],
                scored: Any) -> None:
    """One pass of ``job serve``: scored jobs' keys, then every job's deliveries and rounds."""
    from requester.rounds import RoundDriver
    from requester.scored import serve_keys_once
    from veritrain.errors import VeritrainError

    if scored is not None and not jobs:
        try:
            for job_id, accounts in serve_keys_once(*scored).items():
                for account in accounts:
                    typer.echo(f"scored job {job_id}: data key for {account}")
        except VeritrainError as exc:
            typer.echo(f"scored jobs: {exc}", err=True)
    for job_id in jobs or req.store.job_ids():
        if job_id in ended:
            continue
        try:
            if job_id not in services:
                driver = RoundDriver(req.job(job_id))
                if not jobs and driver.finished(closed_only=True):
                    ended.add(job_id)
                    continue  # nothing left to serve
                services[job_id] = driver
            before, closed_before = len(services[job_id].posted), len(services[job_id].closed)
            for d in services[job_id].step():
                typer.echo(f"job {job_id}: {_delivery_text(d)} tx {d.tx}")
            for posted in services[job_id].posted[before:]:
                typer.echo(f"job {job_id}: posted the next round as on-chain job {posted}")
            for closed, refund in services[job_id].closed[closed_before:]:
                typer.echo(f"job {job_id}: on-chain job {closed} ended and is closed; {fmt(refund)} "
                           f"of escrow returned, {fmt(req.withdraw())} withdrawn")
        except VeritrainError as exc:
            typer.echo(f"job {job_id}: {exc}", err=True)


@app.command("cancel")
def cancel(job_id: JobArg, dev_account: DevOpt = None, home: HomeOpt = None) -> None:
    """Stop new claims; withdraw the refund of unclaimed slots."""
    req = _requester(dev_account, home)
    fmt = _tokens(req)
    refund = req.job(job_id).cancel()
    withdrawn = req.withdraw()
    typer.echo(f"job {job_id} cancelled: {fmt(refund)} refunded, {fmt(withdrawn)} withdrawn")


@app.command("list")
def list_jobs(dev_account: DevOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """The jobs this requester posted from this machine."""
    req = _requester(dev_account, home)
    rows = [{"job_id": j.id, "spec_cid": j.record.doc_cid, "post_tx": j.record.post_tx} for j in req.jobs()]
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        typer.echo(f"{r['job_id']}  {r['spec_cid']}")


@app.command("calibrate")
def calibrate(
    spec: Annotated[Path, typer.Argument(help="The job spec (YAML or JSON).")],
    data: Annotated[Path, typer.Option("--data", help="Dataset: .npz, .pt, .csv or an image folder.")],
    segments: Annotated[int, typer.Option("--segments", min=1, help="Segments of shard 0 to measure.")] = 3,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Reference thread count.")] = 1,
    safety: Annotated[float, typer.Option("--safety", min=1.0,
                                          help="Bound = safety x largest honest distance.")] = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Measure honest divergence across thread counts, CPU kernel levels and this machine's GPU
    (for a CUDA job) on shard 0 of DATA, and propose replay.tolerance.bound for the spec."""
    from requester.data import load_dataset, split_shards
    from veritrain.spec import load_spec
    from veritrain.training.calibrate import Setting, calibrate_job

    job_spec = load_spec(spec)
    shard = split_shards(job_spec, load_dataset(data, job_spec))[0]
    cal = calibrate_job(job_spec, shard.features, shard.labels, segments=segments,
                        reference=Setting(threads=threads), safety=safety)
    if as_json:
        _echo_json(cal.as_dict())
        return
    typer.echo(f"honest chain: {cal.segments} segments ({cal.steps} steps) of shard 0 under {cal.reference}")
    for label, ds in cal.distances.items():
        typer.echo(f"  replayed on {label}: largest distance {max(ds):.3g}")
    typer.echo(f"proposed bound: {cal.bound:g} ({safety:g} x {cal.largest:.3g}, at least {cal.floor:g}); "
               "put it in the spec:")
    typer.echo(f"  replay:\n    tolerance: {{mode: tolerance, bound: {cal.bound:g}}}")
    cuda = job_spec.replay.cuda
    if cuda is not None and cuda.default_dtype == "float32":
        typer.echo("note: in float32 a verifier on another device cannot see a change smaller than "
                   "about bound x the segment's update (on an H200, one weight moved by 1e-3 went "
                   "unseen); cuda.default_dtype: float64 replays ~1e9 times closer (docs/gpu.md)")
