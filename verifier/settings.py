"""Verifier settings: ``VERITRAIN_VERIFIER_*`` variables, falling back to ``VERITRAIN_*``.

Loaded by the CLI entry point (or by tests), never at import time. The shared ones
(``rpc_url``, ``deployment``, ``ipfs_api``, ``confirmations``) read
``VERITRAIN_VERIFIER_<NAME>`` first and then ``VERITRAIN_<NAME>``, so one environment can
hold a whole stack's settings and a verifier can still point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from veritrain.errors import ConfigError
from veritrain.settings import default_home


def _both(name: str) -> Any:
    return AliasChoices(f"veritrain_verifier_{name}", f"veritrain_{name}")


class VerifierSettings(BaseSettings):
    """Everything ``veritrain verifier run`` needs."""

    model_config = SettingsConfigDict(env_prefix="VERITRAIN_VERIFIER_", extra="ignore",
                                      populate_by_name=True)

    rpc_url: str = Field(default="http://127.0.0.1:8545", validation_alias=_both("rpc_url"))
    #: None: found by network (veritrain.deployments.locate).
    deployment: Path | None = Field(default=None, validation_alias=_both("deployment"))
    ipfs_api: str = Field(default="/ip4/127.0.0.1/tcp/5001/http", validation_alias=_both("ipfs_api"))
    #: Blocks an event must be buried under before the verifier acts on it.
    confirmations: int = Field(default=1, ge=0, validation_alias=_both("confirmations"))
    poll_interval: float = Field(default=1.0, gt=0)

    #: Signing key: an eth-account keystore JSON and the variable holding its password, or
    #: (local stacks only) the index of a dev account of the test mnemonic.
    keystore: Path | None = None
    password_env: str = "VERITRAIN_VERIFIER_PASSWORD"
    dev_account: int | None = Field(default=None, ge=0, lt=20)

    #: Probability of replaying each segment of a revealed result (published with its figures).
    p: float = Field(default=0.1, ge=0.0, le=1.0)
    #: Job ids whose results are replayed in full (besides jobs whose spec asks for it).
    full_verification_jobs: Annotated[list[int], NoDecode] = Field(default_factory=list)
    #: Stake to register with when not registered (wei of the market token); None = registry minimum.
    stake: int | None = Field(default=None, gt=0)
    #: Validate scored jobs (incentive: scored) beside the replay checks (verifier/scored_jobs.py).
    scored: bool = True
    #: Largest validator stake to put into one scored job (wei); None = any. Seats in jobs that
    #: ask more are left to others (said once per job).
    scored_max_stake: int | None = Field(default=None, ge=0)
    #: First block to scan on a fresh journal; None = the deployment block.
    start_block: int | None = Field(default=None, ge=0)
    #: Give up on fetching a checkpoint (and vote "unavailable") after this many seconds.
    fetch_timeout: float = Field(default=120.0, gt=0)

    home: Path = Field(default_factory=lambda: default_home() / "verifier")
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8731, ge=0, le=65535)

    @field_validator("full_verification_jobs", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [int(x) for x in v.replace(",", " ").split()] if v.strip() else []
        if isinstance(v, int):
            return [v]
        return v

    @model_validator(mode="after")
    def _one_key(self) -> VerifierSettings:
        if self.keystore is not None and self.dev_account is not None:
            raise ValueError("set either keystore or dev_account, not both")
        return self

    @property
    def journal_path(self) -> Path:
        return self.home / "journal.sqlite"

    @property
    def secret_path(self) -> Path:
        return self.home / "sampling.secret"

    @property
    def keys_dir(self) -> Path:
        """Job key envelopes for sampling (``job-<id>.envelope``) delivered off-chain."""
        return self.home / "keys"

    def load_account(self) -> Any:
        """The signing account; ConfigError saying what to set when none is configured."""
        if self.dev_account is not None:
            from veritrain.dev.accounts import dev_account

            return dev_account(self.dev_account)
        if self.keystore is None:
            raise ConfigError("no verifier key: set VERITRAIN_VERIFIER_KEYSTORE (and the password in "
                              f"{self.password_env}), or VERITRAIN_VERIFIER_DEV_ACCOUNT on a local stack")
        password = os.environ.get(self.password_env)
        if password is None:
            raise ConfigError(f"keystore {self.keystore} needs its password in ${self.password_env}")
        from eth_account import Account

        try:
            blob = self.keystore.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read keystore {self.keystore}: {exc.strerror or exc}") from None
        try:
            return Account.from_key(Account.decrypt(blob, password))
        except ValueError as exc:
            if "MAC mismatch" in str(exc):  # the same words as the worker's and the requester's
                raise ConfigError(f"wrong password for keystore {self.keystore}") from None
            raise ConfigError(f"cannot open keystore {self.keystore}: {exc}") from None


def load_secret(path: Path) -> bytes:
    """The verifier's sampling secret, created (0600) on first use. Keep it private: whoever
    knows it can predict which segments this verifier replays."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32))
        data = path.read_bytes()
    if len(data) < 16:
        raise ConfigError(f"sampling secret {path} is {len(data)} bytes; delete it to make a new one")
    return data
