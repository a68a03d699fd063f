"""``veritrain explorer``: the market explorer in the browser (docs/explorer.md)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from veritrain.explorer.serve import DEFAULT_PORT


def explorer(
    network: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional here
        typer.Option("--network", help="Network profile (`local` or one of $VERITRAIN_HOME/networks.toml); "
                     "default: the root --network, else VERITRAIN_RPC_URL and VERITRAIN_DEPLOYMENT."),
    ] = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve on.")] = DEFAULT_PORT,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")]
    = "127.0.0.1",
    poll: Annotated[float, typer.Option("--poll", min=0.2, help="Seconds between a page's checks for "
                                        "new blocks.")] = 1.5,
) -> None:
    """Serve the read-only market explorer: jobs, tasks, disputes, accounts, money, charts; live."""
    import os

    from veritrain import netprofile
    from veritrain.explorer.serve import serve

    if network is not None:
        netprofile.activate(network)  # checks the chain id; sets VERITRAIN_RPC_URL etc.
    name = os.environ.get("VERITRAIN_NETWORK", "local")
    serve(host, port, network=name, poll_ms=int(poll * 1000), say=lambda s: typer.echo(s, err=False))
