"""Worker settings (pydantic-settings), loaded in the CLI entry point, never at import.

Worker-specific variables use the prefix ``VERITRAIN_WORKER_``; the chain and storage
locations every role shares also answer to their ``VERITRAIN_`` names (``VERITRAIN_RPC_URL``,
``VERITRAIN_DEPLOYMENT``, ``VERITRAIN_IPFS_API``), the worker-specific name winning.
The password is read from ``VERITRAIN_WORKER_PASSWORD`` or a prompt, never from a flag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from veritrain.settings import default_home


def _shared(name: str) -> AliasChoices:
    return AliasChoices(f"VERITRAIN_WORKER_{name}", f"VERITRAIN_{name}", name.lower())


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VERITRAIN_WORKER_", extra="ignore",
                                      populate_by_name=True)

    # -- where things are
    rpc_url: str = Field(default="http://127.0.0.1:8545", validation_alias=_shared("RPC_URL"))
    #: None: found by network (veritrain.deployments.locate).
    deployment: Path | None = Field(default=None, validation_alias=_shared("DEPLOYMENT"))
    ipfs_api: str = Field(default="/ip4/127.0.0.1/tcp/5001/http", validation_alias=_shared("IPFS_API"))
    #: Journal, checkpoints, shards and nonce files live under ``home/<chain id>-<address>/``,
    #: so several workers (different keys) can share one home without colliding.
    home: Path = Field(default_factory=lambda: default_home() / "worker")
    #: Encrypted Ethereum keystore JSON; default ``<home>/keystore.json``.
    keystore: Path | None = None
    password: SecretStr | None = None

    # -- policy: which open tasks to take
    min_reward_per_step: int = Field(default=0, ge=0, description="token wei per training step")
    allowed_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="zoo model names (comma-separated); empty = any")
    max_memory_mb: int = Field(default=4096, gt=0)
    max_stake: int | None = Field(default=None, ge=0, description="largest stake per task (wei)")
    #: Take tasks of multi-round jobs (each round starts from the previous round's aggregate).
    allow_multi_round: bool = True
    #: Take part in scored jobs (incentive: scored) beside replay tasks, within max_stake and
    #: allowed_models (worker/scored_jobs.py).
    scored: bool = True
    bitwise_gpus: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="GPU names (comma-separated) whose class this worker trains "
        "bitwise for exact-mode CUDA jobs; unset = every GPU it has; empty = none")

    # -- behaviour
    #: Withdraw automatically once this much is owed (wei); 0 = only `veritrain worker withdraw`.
    withdraw_threshold: int = Field(default=0, ge=0)
    poll_interval: float = Field(default=2.0, gt=0)
    rpc_retry_seconds: float = Field(default=30.0, ge=0)
    ipfs_retry_seconds: float = Field(default=20.0, ge=0)
    #: Seconds between checks that the task's checkpoints and manifest are still pinned.
    availability_interval: float = Field(default=60.0, gt=0)

    @field_validator("allowed_models", "bitwise_gpus", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @property
    def keystore_path(self) -> Path:
        return self.keystore if self.keystore is not None else self.home / "keystore.json"

    def account_dir(self, chain_id: int, address: str) -> Path:
        """This worker's private folder on this chain."""
        return self.home / f"{chain_id}-{address.lower()}"
