"""Deploy Veritrain's contracts with Ape and record them in deployments/<network>.json.

    ape run deploy --network ethereum:local:foundry --account TEST::0

Deploys, in order: the ERC-20 (on a local network the DevToken, minted to the dev accounts;
elsewhere pass --token), JobMarket(token, owner), VerifierRegistry(market, minStake,
unbondingDelay), DisputeResolver(market, registry, params), then market.setModules(registry,
resolver). The same contracts and parameters as veritrain.dev.deploy.deploy_local. Python
roles find the written file by network (veritrain.deployments.locate), or VERITRAIN_DEPLOYMENT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from ape import chain, project
from ape.cli import ConnectedProviderCommand, account_option

from veritrain.artifacts import same_runtime
from veritrain.deployments import Deployment, save
from veritrain.dev.deploy import (
    DEV_FUNDED_ACCOUNTS,
    DEV_MINT,
    REGISTRY_MIN_STAKE,
    REGISTRY_UNBONDING_DELAY,
    resolver_params_tuple,
)

NAMES = ("DevToken", "JobMarket", "VerifierRegistry", "DisputeResolver")


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


@click.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--token", default=None, help="Existing ERC-20 to use (default: deploy the DevToken).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write the record (default deployments/<network>.json).")
def cli(network, account, token, out):  # type: ignore[no-untyped-def]
    """Deploy the contracts and write the deployment record."""
    start = chain.blocks.head.number
    built = _checked_containers()
    contracts: dict[str, str] = {}
    if token is None:
        dev = built["DevToken"].deploy(account.address, sender=account)
        token = dev.address
        contracts["DevToken"] = token
        click.echo(f"DevToken          {token}")
        if network.is_local:
            from ape import accounts

            holders = list(accounts.test_accounts)[:DEV_FUNDED_ACCOUNTS]
            for holder in holders:
                dev.mint(holder.address, DEV_MINT, sender=account)
            click.echo(f"minted {DEV_MINT // 10**18:,} VTD to each of dev accounts 0-{len(holders) - 1} "
                       "(fund any other address with `veritrain dev fund ADDRESS`)")
    market = built["JobMarket"].deploy(token, account.address, sender=account)
    registry = built["VerifierRegistry"].deploy(
        market.address, REGISTRY_MIN_STAKE, REGISTRY_UNBONDING_DELAY, sender=account
    )
    resolver = built["DisputeResolver"].deploy(
        market.address, registry.address, resolver_params_tuple(), sender=account
    )
    market.setModules(registry.address, resolver.address, sender=account)
    for name, c in (("JobMarket", market), ("VerifierRegistry", registry), ("DisputeResolver", resolver)):
        contracts[name] = c.address
        click.echo(f"{name:<17} {c.address}")
    record = Deployment(
        network=network.name,
        chain_id=chain.chain_id,
        deploy_block=start,
        contracts=contracts,
    )
    path = save(record, out or Path("deployments") / f"{network.name}.json")
    click.echo(f"wrote {path}")
