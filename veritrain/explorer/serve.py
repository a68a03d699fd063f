"""Start the explorer: find the chain and its deployment from the settings (or a network
profile), build the index and serve the app with uvicorn."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from veritrain.errors import ConfigError

#: The explorer's default port (the dev stack's Anvil is 8545, IPFS 5001).
DEFAULT_PORT = 8600


@dataclass(frozen=True)
class Reader:
    """The account a read-only client calls from: it signs nothing."""

    address: str = "0x0000000000000000000000000000000000000000"

    def sign_transaction(self, tx: Any) -> Any:
        raise ConfigError("the explorer is read-only: it sends no transaction")


def build_index(*, retry_seconds: float = 2.0) -> Any:
    """The :class:`~veritrain.explorer.index.ChainIndex` of the selected network: its RPC URLs,
    its deployment (found by chain id unless one is named) and its IPFS node, read from the
    ``VERITRAIN_*`` settings (which ``--network`` fills from the profile)."""
    from veritrain import deployments, netprofile
    from veritrain.chain import ChainClient
    from veritrain.explorer.index import ChainIndex
    from veritrain.settings import ChainSettings, StorageSettings
    from veritrain.storage.ipfs import IpfsStorage

    chain = ChainSettings()
    profile = netprofile.selected()
    deployment = deployments.load(chain.deployment, chain.rpc_url)
    client = ChainClient(chain.rpc_url, Reader(), deployment, network=profile, retry_seconds=retry_seconds,
                         request_timeout=10.0)
    storage = IpfsStorage(StorageSettings().ipfs_api, retry_seconds=retry_seconds, fetch_timeout=30.0)
    return ChainIndex(client, deployment, storage, confirmations=chain.confirmations)


def check_port(host: str, port: int) -> None:
    """One clear line when the port is taken (rather than uvicorn's traceback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}): pass another "
                              "--port") from None


def serve(host: str, port: int, *, network: str = "local", poll_ms: int = 1500,
          say: Any = print) -> None:
    """Build the index, print the URL, serve until interrupted."""
    import uvicorn

    from veritrain.explorer.app import create_app

    check_port(host, port)
    index = build_index()
    app = create_app(index, network=network, poll_ms=poll_ms)
    say(f"explorer: http://{host}:{port}/  (chain {index.deployment.chain_id}, "
        f"JobMarket {index.deployment.address('JobMarket')}; Ctrl-C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
