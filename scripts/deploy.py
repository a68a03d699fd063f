"""Deploy Veritrain's contracts with Ape and record them in deployments/<network>.json.

    ape run deploy --network ethereum:local:foundry --account TEST::0

Deploys, in order: the ERC-20 (on a local network the DevToken, minted to the dev accounts;
elsewhere pass --token), JobMarket(token, owner), VerifierRegistry(market, minStake,
unbondingDelay), DisputeResolver(market, registry, params), then market.setModules(registry,
resolver), and ScoredRounds(token, registry) for scored jobs. Bonds, fees, windows and committee
size come from the network's parameter file, veritrain/networks/<network>.toml (local.toml: the
same as veritrain.dev.deploy.deploy_local), or --params FILE; it is validated before anything is
sent. With ``--profile NAME`` (a Veritrain network profile, docs/networks.md) the parameters are
the profile's (its ``params`` file), the chain Ape is connected to must be the profile's chain
id (checked before anything is sent), the record waits for the profile's confirmations and is
written as deployments/<profile>.json. Before any record is written, the code at every deployed
address is checked against the shipped artifacts (veritrain.deployments.code_problem: immutables
aside, byte for byte). Python roles find the written file by network
(veritrain.deployments.locate), or VERITRAIN_DEPLOYMENT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from ape import chain, project
from ape.cli import ConnectedProviderCommand, account_option

from veritrain.artifacts import same_runtime
from veritrain.deployments import Deployment, code_problem, save
from veritrain.dev.deploy import resolver_params_tuple
from veritrain.errors import ConfigError
from veritrain.params import NetworkParams, load_params, network_params

NAMES = ("DevToken", "JobMarket", "VerifierRegistry", "DisputeResolver", "ScoredRounds")


def _checked_containers() -> dict[str, Any]:
    """Ape's builds of the contracts, checked against veritrain/artifacts (the ABIs and code the
    Python roles speak to): a stale ``.build`` cache is recompiled; any other difference is
    refused, so a deployment can never hold contracts the roles cannot read."""

    def stale(built: dict[str, Any]) -> list[str]:
        return [n for n in NAMES if not same_runtime(built[n].contract_type.runtime_bytecode.bytecode, n)]

    built = {n: getattr(project, n) for n in NAMES}
    if stale(built):
        click.echo(f"ape's build of {', '.join(stale(built))} is not veritrain/artifacts' "
                   "(a stale .build cache?): recompiling")
        fresh = project.load_contracts(use_cache=False)
        built = {n: fresh[n] for n in NAMES}
        if stale(built):
            raise click.ClickException(
                f"{', '.join(stale(built))} compiled from contracts/ differ from veritrain/artifacts, "
                "which the Python roles use: run `make artifacts` after editing the contracts")
    return built


def _params(network_name: str, path: Path | None) -> NetworkParams:
    try:
        return load_params(path) if path is not None else network_params(network_name)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _profile(name: str | None, chain_id: int) -> Any:
    """The Veritrain network profile ``name`` (None: none), refused unless Ape's chain is its chain."""
    if name is None:
        return None
    from veritrain.netprofile import load_profile

    try:
        profile = load_profile(name)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if profile.chain_id != chain_id:
        raise click.ClickException(f"network {name} is chain {profile.chain_id}, but Ape is connected to "
                                   f"chain {chain_id}: nothing deployed")
    return profile


def _confirm(block: int, confirmations: int, timeout: float = 600.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while chain.blocks.head.number < block + confirmations:
        if time.monotonic() > deadline:
            raise click.ClickException(f"block {block} did not get {confirmations} confirmations "
                                       f"within {timeout:.0f} s")
        time.sleep(1.0)
    click.echo(f"{confirmations} confirmation(s) after block {block}")


def _check_code(contracts: dict[str, str]) -> None:
    """The code now at each address (after the confirmations) is the shipped artifact's, or no
    record is written: the roles would otherwise speak to contracts they cannot read."""
    problems = [p for name, address in contracts.items()
                if (p := code_problem(name, chain.provider.get_code(address))) is not None]
    if problems:
        raise click.ClickException("the code on chain is not veritrain/artifacts': " + "; ".join(problems)
                                   + " (no deployment record written)")
    click.echo(f"the code of {', '.join(contracts)} on chain is veritrain/artifacts'")


@click.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--token", default=None, help="Existing ERC-20 to use (default: deploy the DevToken).")
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=None,
              help="Protocol parameter file (default veritrain/networks/<network>.toml).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write the record (default deployments/<network>.json).")
@click.option("--profile", "profile_name", default=None,
              help="Veritrain network profile (docs/networks.md): parameters, chain id, confirmations.")
def cli(network, account, token, params_path, out, profile_name):  # type: ignore[no-untyped-def]
    """Deploy the contracts and write the deployment record."""
    profile = _profile(profile_name, chain.chain_id)
    record_name = profile.name if profile else network.name
    params = _params(profile.params_name if profile else network.name, params_path)
    start = chain.blocks.head.number
    built = _checked_containers()
    contracts: dict[str, str] = {}
    if token is None:
        dev = built["DevToken"].deploy(account.address, sender=account)
        token = dev.address
        contracts["DevToken"] = token
        click.echo(f"DevToken          {token}")
        if network.is_local and params.dev_token is not None:
            from ape import accounts

            funded, mint = params.dev_token.funded_accounts, params.wei(params.dev_token.mint_per_account)
            holders = list(accounts.test_accounts)[:funded]
            for holder in holders:
                dev.mint(holder.address, mint, sender=account)
            click.echo(f"minted {params.dev_token.mint_per_account:,} VTD to each of dev accounts "
                       f"0-{len(holders) - 1} (fund any other address with `veritrain dev fund ADDRESS`)")
    market = built["JobMarket"].deploy(token, account.address, sender=account)
    registry = built["VerifierRegistry"].deploy(
        market.address, params.min_stake, params.unbonding_delay, sender=account
    )
    resolver = built["DisputeResolver"].deploy(
        market.address, registry.address, resolver_params_tuple(network=params), sender=account
    )
    market.setModules(registry.address, resolver.address, sender=account)
    registry.bindResolver(sender=account)
    scored = built["ScoredRounds"].deploy(token, registry.address, sender=account)
    for name, c in (("JobMarket", market), ("VerifierRegistry", registry), ("DisputeResolver", resolver),
                    ("ScoredRounds", scored)):
        contracts[name] = c.address
        click.echo(f"{name:<17} {c.address}")
    if profile is not None and profile.confirmations:
        _confirm(chain.blocks.head.number, profile.confirmations)
    _check_code(contracts)
    record = Deployment(
        network=record_name,
        chain_id=chain.chain_id,
        deploy_block=start,
        contracts=contracts,
    )
    path = save(record, out or Path("deployments") / f"{record_name}.json")
    click.echo(f"wrote {path}")
