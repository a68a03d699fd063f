"""`veritrain verifier ...` commands (plugged into the veritrain CLI by entry point).

Module-level imports stay light: web3, torch and FastAPI load inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="Run a verifier: sample and replay results, challenge, referee.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
HomeOpt = Annotated[
    Optional[Path],  # noqa: UP045 - typer needs Optional here
    typer.Option("--home", help="Verifier folder: journal, secret, keys (env VERITRAIN_VERIFIER_HOME)."),
]


def _settings(home: Path | None, **overrides: object):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from verifier.settings import VerifierSettings
    from veritrain.errors import ConfigError

    values = {k: v for k, v in overrides.items() if v is not None}
    if home is not None:
        values["home"] = home
    try:
        return VerifierSettings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid verifier settings: {problems}") from None


@app.command("figures")
def figures(
    p: Annotated[float, typer.Option("--p", help="Probability of replaying each segment.")] = 0.1,
    segments: Annotated[int, typer.Option("--segments", help="Segments per result (n).")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Publish detection figures: P(caught) = 1-(1-p)^f for f of n falsified segments."""
    from verifier import sampling
    from veritrain.errors import ConfigError

    try:
        figs = sampling.figures(p, segments)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    typer.echo(json.dumps(figs.as_dict(), indent=2) if as_json else sampling.format_table(figs))


@app.command("status")
def status(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """What this verifier has checked and sent, from its journal (no network needed)."""
    from verifier.api import stats
    from veritrain.errors import ConfigError
    from veritrain.journal import Journal

    settings = _settings(home)
    if not settings.journal_path.exists():
        raise ConfigError(f"no verifier journal at {settings.journal_path}: run `veritrain verifier run` "
                          "first (or pass --home)")
    s = stats(Journal(settings.journal_path))
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    r, seg, ch, ref = s["results"], s["segments"], s["challenges"], s["referee"]
    typer.echo(f"verifier {s['address']}  p={s['p']}  last block {s['last_block']}")
    typer.echo(f"results   {r['total']} seen: {r['verified']} verified, {r['challenged']} challenged, "
               f"{r['no_key']} without key, {r['unrunnable']} unrunnable, {r['missed']} missed")
    typer.echo(f"segments  {seg['replayed']} replayed: {seg['match']} match, {seg['mismatch']} mismatch")
    typer.echo(f"challenges {ch['sent']} sent: {ch['won']} won, {ch['lost']} lost, {ch['open']} open")
    typer.echo(f"referee   {ref['drawn']} drawn: {ref['revealed']} revealed, {ref['missed']} missed")
    if s["last_error"]:
        typer.echo(f"last error: {s['last_error']}")


@app.command("validate")
def validate(
    job_id: Annotated[int, typer.Argument(help="The scored job's id in ScoredRounds.")],
    address: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--contract", help="ScoredRounds' address (default: the network's deployment record).")] = None,
    home: HomeOpt = None,
) -> None:
    """Validate a scored job (incentive: scored, docs/scored.md): join (the account must be an
    active verifier), wait for the requester to deliver the data key on-chain, score every
    window's updates, commit and reveal the scores, settle; leave and withdraw at the end."""
    from verifier.validator import run as run_validator
    from veritrain.scored.chain import scored_chain
    from veritrain.storage.ipfs import IpfsStorage

    settings = _settings(home)
    chain = scored_chain(settings.rpc_url, settings.load_account(), settings.deployment, address,
                         nonce_dir=settings.home / "nonces")
    report = run_validator(chain, IpfsStorage(settings.ipfs_api), job_id)
    typer.echo(json.dumps(report, default=str))


@app.command("run")
def run(
    home: HomeOpt = None,
    p: Annotated[Optional[float], typer.Option("--p", help="Sampling probability (env VERITRAIN_VERIFIER_P).")] = None,  # noqa: UP045,E501
    api_port: Annotated[Optional[int], typer.Option("--api-port", help="HTTP API port (0: no API).")] = None,  # noqa: UP045
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (cron, tests).")] = False,
    dev_account: Annotated[Optional[int], typer.Option(  # noqa: UP045
        "--dev-account", help="Use dev account N of the local stack (env VERITRAIN_VERIFIER_DEV_ACCOUNT; "
        "never on a real network).")] = None,
) -> None:
    """Register with stake if needed, then watch, replay, challenge, referee and serve the API."""
    import logging
    import threading

    from verifier.chain import VerifierChain
    from verifier.keys import ChainKeySource, DirectoryKeySource
    from verifier.service import VerifierService
    from verifier.settings import load_secret
    from veritrain import deployments
    from veritrain.journal import Journal
    from veritrain.storage import IpfsStorage

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for chatty in ("httpx", "urllib3", "web3"):  # one line per HTTP request drowns what was replayed
        logging.getLogger(chatty).setLevel(logging.WARNING)
    settings = _settings(home, p=p, api_port=api_port, dev_account=dev_account)
    account = settings.load_account()
    deployment = deployments.load(settings.deployment, settings.rpc_url)
    chain = VerifierChain(settings.rpc_url, account, deployment, nonce_dir=settings.home / "nonces")
    storage = IpfsStorage(settings.ipfs_api, fetch_timeout=settings.fetch_timeout)
    journal = Journal(settings.journal_path)
    files = DirectoryKeySource(settings.keys_dir, chain.private_key(), chain.chain_id, chain.market.address,
                               chain.address)
    keys = ChainKeySource(chain, journal, files)
    secret = load_secret(settings.secret_path)
    service = VerifierService(chain, storage, journal, keys, p=settings.p, secret=secret,
                              full_jobs=frozenset(settings.full_verification_jobs),
                              confirmations=settings.confirmations, start_block=settings.start_block)
    from veritrain.units import TokenFormat

    fmt = TokenFormat(int(chain.token.decimals()), str(chain.token.symbol()))
    registered = service.ensure_registered(settings.stake)
    if registered != "already registered":  # the service counts base units; people read tokens
        registered = f"registered with stake {fmt(chain.stake())}"
    typer.echo(f"verifier {chain.address}: {registered}; p={settings.p}")
    if settings.scored and not once:  # a scored job lasts its windows: not in a --once
        from verifier.scored_jobs import scored_jobs

        service.scored = scored_jobs(settings, account, deployment, journal, lambda m: typer.echo(m))
    if once:
        typer.echo(json.dumps(service.tick()))
        return
    stop = threading.Event()
    if settings.api_port:
        _serve_api(journal, settings.api_host, settings.api_port)
        typer.echo(f"API on http://{settings.api_host}:{settings.api_port} (/health /stats /metrics)")
    try:
        service.run(stop, settings.poll_interval)
    except KeyboardInterrupt:
        stop.set()


def _serve_api(journal, host: str, port: int) -> None:  # type: ignore[no-untyped-def]
    import threading

    import uvicorn

    from verifier.api import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(journal), host=host, port=port, log_level="warning"))
    threading.Thread(target=server.run, name="verifier-api", daemon=True).start()
