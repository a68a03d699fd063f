"""`veritrain worker ...` commands (plugged into the veritrain CLI by entry point).

Module-level imports stay light (typer only): web3, torch and eth-account load inside the
commands. User errors raise :class:`~veritrain.errors.VeritrainError` subclasses, which the
``veritrain`` entry point prints as one ``error: ...`` line (exit code 1).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from worker.settings import WorkerSettings

app = typer.Typer(help="Run a worker: stake, claim tasks, train, commit, get paid.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _settings() -> WorkerSettings:
    from pydantic import ValidationError

    from veritrain.errors import ConfigError
    from worker.settings import WorkerSettings

    try:
        return WorkerSettings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid worker settings (VERITRAIN_WORKER_*): {problems}") from None


def _password(settings: WorkerSettings, *, confirm: bool = False) -> str:
    if settings.password is not None:
        return settings.password.get_secret_value()
    if not sys.stdin.isatty():
        from veritrain.errors import ConfigError

        raise ConfigError("no password: set VERITRAIN_WORKER_PASSWORD or run in a terminal to be asked")
    return str(typer.prompt("Keystore password", hide_input=True, confirmation_prompt=confirm, err=True))


def _account(settings: WorkerSettings) -> Any:
    from worker.keystore import load_account

    return load_account(settings.keystore_path, _password(settings))


@app.command("init")
def init(
    import_key: Annotated[bool, typer.Option("--import", help="Import an existing private key "
                                             "(asked for, hidden) instead of creating one.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing keystore.")] = False,
) -> None:
    """Create (or import) the worker's key into an encrypted keystore."""
    from worker.keystore import create_keystore

    settings = _settings()
    path = settings.keystore_path
    if path.exists() and not force:
        from worker.keystore import KeystoreError

        raise KeystoreError(f"{path} already exists; pass --force to replace it (the old key is lost)")
    key = None
    if import_key:
        if sys.stdin.isatty():
            key = str(typer.prompt("Private key (hex)", hide_input=True, err=True))
        else:  # from a pipe: read it plainly (a hidden prompt cannot hide a pipe, it only warns)
            key = sys.stdin.readline().strip()
            if not key:
                from worker.keystore import KeystoreError

                raise KeystoreError("--import: no private key on standard input")
    address = create_keystore(path, _password(settings, confirm=True), key, overwrite=force)
    typer.echo(f"worker {address}: keystore written to {path}")
    typer.echo("fund it with gas and the market's token: on the local stack "
               f"`veritrain dev fund {address}`; then: veritrain worker run", err=True)


@app.command("run")
def run(
    once: Annotated[bool, typer.Option("--once", help="Finish the journal's tasks and take at most "
                                       "--max-tasks (default 1) open offers, then exit.")] = False,
    max_tasks: Annotated[Optional[int], typer.Option("--max-tasks", min=1,  # noqa: UP045
                                                     help="Exit after this many tasks.")] = None,
) -> None:
    """Claim matching tasks, train them, commit and reveal, answer disputes, get paid."""
    from worker.loop import run_worker
    from worker.report import Reporter, install_stop_handlers

    settings = _settings()
    account = _account(settings)
    stop = install_stop_handlers()
    with Reporter(sys.stderr) as rep:
        rep.say(f"worker {account.address} on {settings.rpc_url}, home {settings.home}")
        summary = run_worker(settings, account, once=once, max_tasks=max_tasks, say=rep.say,
                             progress=rep.progress, stop=stop)
    for task_id, phase in sorted(summary.phases.items()):
        typer.echo(f"task {task_id}: {phase}")
    if summary.stopped:
        typer.echo("stopped; `veritrain worker run` resumes where it left off", err=True)


@app.command("scored")
def scored(
    job_id: Annotated[int, typer.Argument(help="The scored job's id in ScoredRounds.")],
    address: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--contract", help="ScoredRounds' address (default: the network's deployment record).")] = None,
) -> None:
    """Take part in a scored job (incentive: scored, docs/scored.md): join with the job's stake,
    wait for the requester to deliver the data key on-chain, then in every window still open
    train the assigned batches, submit, reveal; leave and withdraw at the end."""
    from veritrain import deployments
    from veritrain.errors import ConfigError
    from veritrain.scored.chain import scored_chain
    from veritrain.storage.ipfs import IpfsStorage
    from worker.scored import run as run_scored

    settings = _settings()
    account = _account(settings)
    try:  # the nonce files `worker run` of this account uses, so both may run at once
        dep: Any = deployments.load(settings.deployment, settings.rpc_url)
        nonces = settings.account_dir(dep.chain_id, account.address) / "nonces"
    except ConfigError:
        if address is None:
            raise
        dep, nonces = settings.deployment, settings.home / "nonces"  # the contract is named
    chain = scored_chain(settings.rpc_url, account, dep, address, nonce_dir=nonces,
                         retry_seconds=settings.rpc_retry_seconds)
    report = run_scored(chain, IpfsStorage(settings.ipfs_api), job_id)
    typer.echo(json.dumps(report, default=str))


@app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """Stake, tasks and their phases, earnings."""
    from worker.keystore import keystore_address
    from worker.status import devices_report, status_report

    settings = _settings()
    report = status_report(settings, keystore_address(settings.keystore_path))
    report["devices"] = devices_report(settings.bitwise_gpus)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    from veritrain.units import TokenFormat

    fmt = TokenFormat(report["token"]["decimals"], report["token"]["symbol"])  # JSON keeps base units
    typer.echo(f"worker {report['address']}  balance {fmt(report['balance'])}  owed {fmt(report['owed'])}  "
               f"staked {fmt(report['staked'])}  earned {fmt(report['earned'])}  "
               f"withdrawn {fmt(report['withdrawn'])}")
    for t in report["tasks"]:
        extra = f"  ({t['reason']})" if t.get("reason") else ""
        typer.echo(f"  task {t['task_id']} (job {t['job_id']}): {t['phase']}{extra}")
    if not report["tasks"]:
        typer.echo("  no tasks yet")
    for job in report["scored_jobs"]:
        typer.echo(f"  scored job {job}: taking part (`worker run` resumes it)")
    for d in report["devices"]:
        typer.echo(f"  device {d['label']}: trains {d['trains']}")


@app.command("withdraw")
def withdraw() -> None:
    """Move everything the market owes this worker to its address."""
    from worker.loop import Worker

    settings = _settings()
    w = Worker(settings, _account(settings), lock=False)
    try:
        amount = w.withdraw()
        text = f"withdrew {w.tokens()(amount)}" if amount else "nothing owed"
    finally:
        w.close()
    typer.echo(text)
