"""Deploy Veritrain's contracts with Ape and record them in deployments/<network>.json.

    ape run deploy --network ethereum:local:foundry --account TEST::0

On a local network the dev token is deployed too and minted to the first dev accounts.
Python roles read the written file (VERITRAIN_DEPLOYMENT, default deployments/local.json).
"""

from __future__ import annotations

from pathlib import Path

import click
from ape import chain, project
from ape.cli import ConnectedProviderCommand, account_option

from veritrain.deployments import Deployment, save

DEV_MINT = 1_000_000 * 10**18
DEV_FUNDED_ACCOUNTS = 20


@click.command(cls=ConnectedProviderCommand)
@account_option()
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write the record (default deployments/<network>.json).")
def cli(network, account, out):  # type: ignore[no-untyped-def]
    """Deploy the contracts and write the deployment record."""
    start = chain.blocks.head.number
    token = project.DevToken.deploy(account.address, sender=account)
    click.echo(f"DevToken  {token.address}")
    if network.is_local:
        from ape import accounts

        for dev in list(accounts.test_accounts)[:DEV_FUNDED_ACCOUNTS]:
            token.mint(dev.address, DEV_MINT, sender=account)
        click.echo(f"minted {DEV_MINT // 10**18:,} VTD to {DEV_FUNDED_ACCOUNTS} dev accounts")
    record = Deployment(
        network=network.name,
        chain_id=chain.chain_id,
        deploy_block=start,
        contracts={"DevToken": token.address},
    )
    path = save(record, out or Path("deployments") / f"{network.name}.json")
    click.echo(f"wrote {path}")
