"""Settings, one pydantic-settings class per service, read from ``VERITRAIN_*`` variables.

Settings are loaded in CLI entry points (or by tests), never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The checkout this package was installed from (editable install): where node_modules lives.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


#: Chain ids of local development chains (Anvil, Hardhat, Ape's local network): no reorgs,
#: and `veritrain dev fund` may mint on them.
LOCAL_CHAIN_IDS = frozenset({31337, 1337})


def default_home() -> Path:
    """The one per-user place for Veritrain's state: ``$VERITRAIN_HOME``, else ``~/.veritrain``.

    Job records, worker and verifier journals and keystores, the dev stack's state and logs
    all live under it, so every command finds the same state from any working directory.
    """
    env = os.environ.get("VERITRAIN_HOME")
    return Path(env).expanduser() if env else Path.home() / ".veritrain"


class StackSettings(BaseSettings):
    """The local development stack: ``veritrain dev up|status|down``.

    ``VERITRAIN_HOME`` (default ``~/.veritrain``, :func:`default_home`) holds the state file,
    logs, the chain's state and the IPFS repo. Ports are configurable so several stacks can
    coexist. ``block_time`` makes the chain keep time: Anvil mines a block every
    ``block_time`` seconds *and* each transaction at once (mixed mining), so deadlines pass
    on a quiet chain as on a real one; 0 mines only on transactions (automine).
    """

    model_config = SettingsConfigDict(env_prefix="VERITRAIN_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    anvil_port: int = Field(default=8545, ge=1, le=65535)
    ipfs_api_port: int = Field(default=5001, ge=1, le=65535)
    node_modules: Path = Field(default=PROJECT_ROOT / "node_modules")
    startup_timeout: float = Field(default=90.0, gt=0)
    #: Anvil seconds between state dumps; 1 keeps the chain across a SIGKILL of anvil.
    anvil_state_interval: int = Field(default=1, ge=0)
    #: Seconds between blocks when nobody transacts (env VERITRAIN_BLOCK_TIME); 0 = automine only.
    block_time: float = Field(default=1.0, ge=0)
    #: More Anvil flags, after the stack's own (a bench's ``--hardfork``/``--prune-history``).
    anvil_extra_args: tuple[str, ...] = ()


class ChainSettings(BaseSettings):
    """Where a role finds the chain and the deployed contracts."""

    model_config = SettingsConfigDict(env_prefix="VERITRAIN_", extra="ignore")

    rpc_url: str = "http://127.0.0.1:8545"
    #: JSON written by ``ape run deploy``; None = found by network (veritrain.deployments.locate).
    deployment: Path | None = None
    confirmations: int = Field(default=0, ge=0)
    poll_interval: float = Field(default=0.2, gt=0)


class StorageSettings(BaseSettings):
    """Where a role finds IPFS (the Kubo-compatible RPC API)."""

    model_config = SettingsConfigDict(env_prefix="VERITRAIN_", extra="ignore")

    ipfs_api: str = "/ip4/127.0.0.1/tcp/5001/http"
