"""The ``veritrain`` command: one Typer app with a sub-app per role.

Imports stay lazy (web3 alone costs ~2 s): each command imports what it needs. User errors
(:class:`~veritrain.errors.VeritrainError`) end in one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from veritrain import __version__, lifeline
from veritrain.errors import VeritrainError

app = typer.Typer(
    name="veritrain",
    help="Verifiable ML training marketplace: workers, requesters, verifiers, local stack.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
dev_app = typer.Typer(help="The local stack: Anvil chain + IPFS node.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")

#: Role packages plug their sub-apps in through this entry-point group (pyproject.toml), so
#: veritrain never imports worker/, requester/ or verifier/ (house-style.md).
ROLE_ENTRY_POINTS = "veritrain.cli"


def _add_role_apps() -> None:
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=ROLE_ENTRY_POINTS), key=lambda e: e.name):
        try:
            sub = ep.load()
        except ImportError as exc:  # a role that cannot import must not break the others
            typer.echo(f"warning: `veritrain {ep.name}` unavailable: {exc}", err=True)
            continue
        app.add_typer(sub, name=ep.name)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"veritrain {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        Optional[bool],  # noqa: UP045 - typer needs Optional here
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
    network: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--network", envvar="VERITRAIN_NETWORK", help="Network profile for every "
                     "command: `local` or one of $VERITRAIN_HOME/networks.toml (docs/networks.md)."),
    ] = None,
) -> None:
    """Veritrain: buy ML training from strangers and trust the result."""
    if network is not None:
        from veritrain import netprofile

        netprofile.activate(network)  # checks the chain id; sets VERITRAIN_RPC_URL etc.


network_app = typer.Typer(help="Network profiles (docs/networks.md).", no_args_is_help=True)
app.add_typer(network_app, name="network")


@network_app.command("list")
def network_list(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
                 ) -> None:
    """The known networks: `local` and those of $VERITRAIN_HOME/networks.toml."""
    from veritrain import netprofile

    profiles = netprofile.load_profiles()
    if as_json:
        typer.echo(json.dumps({n: p.model_dump(mode="json") for n, p in sorted(profiles.items())}, indent=2))
        return
    for name, p in sorted(profiles.items()):
        typer.echo(f"{name}: chain {p.chain_id}, {len(p.rpc_urls)} RPC URL(s), {p.confirmations} "
                   f"confirmation(s), logs <= {p.log_range} blocks, fees {p.fees.mode} "
                   f"<= {p.fees.max_fee_gwei} gwei")


def _stack(home: Path | None, anvil_port: int | None, ipfs_port: int | None,  # type: ignore[no-untyped-def]
           block_time: float | None = None):
    from veritrain.dev.stack import Stack
    from veritrain.settings import StackSettings

    overrides: dict[str, object] = {}
    if block_time is not None:
        overrides["block_time"] = block_time
    if home is not None:
        overrides["home"] = home
    if anvil_port is not None:
        overrides["anvil_port"] = anvil_port
    if ipfs_port is not None:
        overrides["ipfs_api_port"] = ipfs_port
    return Stack(StackSettings(**overrides))  # type: ignore[arg-type]


HomeOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("--home", help="Stack folder (env VERITRAIN_HOME, default ~/.veritrain)."),
]
AnvilPortOpt = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option("--anvil-port", help="Anvil port (env VERITRAIN_ANVIL_PORT, default 8545)."),
]
IpfsPortOpt = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option("--ipfs-port", help="IPFS API port (env VERITRAIN_IPFS_API_PORT, default 5001)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@dev_app.command("up")
def dev_up(
    home: HomeOpt = None,
    anvil_port: AnvilPortOpt = None,
    ipfs_port: IpfsPortOpt = None,
    block_time: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option("--block-time", min=0, help="Seconds between blocks on a quiet chain "
                     "(env VERITRAIN_BLOCK_TIME, default 1; 0: a block only per transaction)."),
    ] = None,
    only: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--only", help="Start just this service (anvil or ipfs), e.g. to restart the "
                     "IPFS node of a running stack."),
    ] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start from an empty chain.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start Anvil and the IPFS daemon (offline); wait until both answer; print the exports."""
    from veritrain.dev.stack import SERVICES
    from veritrain.errors import ConfigError

    if only is not None and only not in SERVICES:
        raise ConfigError(f"--only {only!r}: choose one of {', '.join(SERVICES)}")
    stack = _stack(home, anvil_port, ipfs_port, block_time)
    state = stack.up(services=(only,) if only else SERVICES, fresh=fresh)
    exports = stack.exports(state)
    if as_json:
        typer.echo(json.dumps({**stack.status(), "exports": exports}, indent=2))
        return
    for svc in state.services.values():
        typer.echo(f"{svc.name:6} pid {svc.pid:<8} {svc.url}  log {svc.log}")
    if stack.compaction is not None:
        typer.echo(stack.compaction.line())
    if "anvil" in state.services and stack.settings.block_time > 0:
        typer.echo(f"the chain mines every transaction at once, and a block after "
                   f"{stack.settings.block_time:g} s without one, so deadlines pass as on a real chain")
    typer.echo(f"state: {stack.state_file}   stop with: veritrain dev down")
    typer.echo("use this stack from any shell (every role and `ape run deploy` read these):")
    for k, v in exports.items():
        typer.echo(f"export {k}={v}")


@dev_app.command("fund")
def dev_fund(
    address: Annotated[str, typer.Argument(help="The address to fund (e.g. the one `worker init` printed).")],
    eth: Annotated[str, typer.Option("--eth", help="Ether for gas to add.")] = "10",
    tokens: Annotated[str, typer.Option("--tokens", help="Dev tokens to mint to it.")] = "1000",
    as_json: JsonOpt = False,
) -> None:
    """Give ADDRESS gas and the market's dev token (local networks only)."""
    from veritrain.dev.fund import fund
    from veritrain.settings import ChainSettings
    from veritrain.units import format_tokens

    chain = ChainSettings()
    f = fund(chain.rpc_url, address, eth=eth, tokens=tokens, deployment_path=chain.deployment)
    if as_json:
        typer.echo(json.dumps({"address": f.address, "eth_wei": str(f.eth_balance),
                               "tokens": str(f.token_balance), "symbol": f.token.symbol}))
        return
    eth = format_tokens(f.eth_balance, 18, "ETH")
    typer.echo(f"{f.address} now holds {eth} and {f.token(f.token_balance)}")


@dev_app.command("status")
def dev_status(
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the recorded stack: PIDs, ports, logs, and whether each service answers."""
    stack = _stack(home, None, None)
    status = stack.status()
    if as_json:
        typer.echo(json.dumps(status, indent=2))
        return
    services: dict[str, dict[str, object]] = status["services"]  # type: ignore[assignment]
    if not services:
        typer.echo(f"no stack recorded in {stack.home} (start one with `veritrain dev up`)")
        return
    for name, svc in services.items():
        state = "answering" if svc["answers"] else ("running" if svc["alive"] else "GONE")
        typer.echo(f"{name:6} pid {svc['pid']:<8} {svc['url']}  {state}")
    if not status["running"]:
        typer.echo("some recorded processes are gone: run `veritrain dev down`, then `dev up`")


@dev_app.command("down")
def dev_down(home: HomeOpt = None) -> None:
    """Stop exactly the processes `dev up` started, and forget them."""
    stack = _stack(home, None, None)
    if stack.read_state() is None:
        typer.echo(f"no stack recorded in {stack.home}: nothing to stop")
        return
    stopped = stack.down()
    if stopped:
        typer.echo("stopped " + ", ".join(f"{s.name} (pid {s.pid})" for s in stopped))
    else:
        typer.echo("recorded processes were already gone; stale state file removed")


spec_app = typer.Typer(help="Job specs: validate files, rewrite the shipped JSON Schema.",
                       no_args_is_help=True)
app.add_typer(spec_app, name="spec")

from veritrain.audit_cli import audit_app  # noqa: E402 (typer only: importing it costs nothing)

app.add_typer(audit_app, name="audit")

from veritrain.explorer.cli import explorer  # noqa: E402 (typer only: importing it costs nothing)

app.command("explorer")(explorer)


@spec_app.command("check")
def spec_check(
    files: Annotated[list[Path], typer.Argument(help="Spec files (YAML or JSON) to validate.")],
) -> None:
    """Validate spec files: each prints its digest, or every problem with its path."""
    from veritrain.spec import load_spec

    failed = 0
    for f in files:
        try:
            spec = load_spec(f)
        except VeritrainError as exc:
            typer.echo(str(exc), err=True)
            failed += 1
            continue
        typer.echo(f"{f}: ok, digest {spec.digest().hex()}")
    if failed:
        raise typer.Exit(1)


@spec_app.command("schema")
def spec_schema() -> None:
    """Rewrite veritrain/schemas/jobspec.schema.json from the JobSpec model."""
    from veritrain.spec import SCHEMA_PATH, schema_json

    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(schema_json())
    typer.echo(f"wrote {SCHEMA_PATH}")


def main() -> None:
    """Console entry point: user errors become one line and exit code 1."""
    lifeline.from_env()  # started by an orchestrator (demo, bench): die with it
    try:
        _add_role_apps()
        app()
    except VeritrainError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
