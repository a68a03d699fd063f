"""The requester's settings (``VERITRAIN_*`` variables), loaded in the CLI entry points only.

Where the chain, the deployment, IPFS and the job records are come from the shared settings
(``VERITRAIN_RPC_URL``, ``VERITRAIN_DEPLOYMENT``, ``VERITRAIN_IPFS_API``, ``VERITRAIN_HOME``).
The requester's account, in order of precedence: ``--dev-account N`` (the dev stack's
well-known keys, local networks only), ``VERITRAIN_REQUESTER_KEY`` (a hex private key), or an
Ethereum keystore JSON at ``VERITRAIN_REQUESTER_KEYSTORE`` opened with
``VERITRAIN_REQUESTER_PASSWORD`` (or a prompt).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from veritrain.errors import ConfigError


class RequesterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VERITRAIN_REQUESTER_", extra="ignore")

    key: SecretStr | None = None
    keystore: Path | None = None
    password: SecretStr | None = None
    poll_interval: float = 1.0


def load_account(settings: RequesterSettings, dev_account: int | None = None,
                 prompt: Any = None) -> Any:
    from eth_account import Account

    if dev_account is not None:
        from veritrain.dev.accounts import dev_account as dev

        return dev(dev_account)
    if settings.key is not None:
        try:
            return Account.from_key(settings.key.get_secret_value())
        except (ValueError, TypeError):
            raise ConfigError("VERITRAIN_REQUESTER_KEY is not a 32-byte hex private key") from None
    if settings.keystore is not None:
        try:
            blob = settings.keystore.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the keystore {settings.keystore}: {exc.strerror}") from None
        password = settings.password.get_secret_value() if settings.password else None
        if password is None:
            if prompt is None:
                raise ConfigError("no keystore password: set VERITRAIN_REQUESTER_PASSWORD")
            password = prompt()
        try:
            return Account.from_key(Account.decrypt(blob, password))
        except ValueError as exc:
            if "MAC mismatch" in str(exc):  # the same words as the worker's and the verifier's
                raise ConfigError(f"wrong password for keystore {settings.keystore}") from None
            raise ConfigError(f"cannot open keystore {settings.keystore}: {exc}") from None
    raise ConfigError("no requester account: pass --dev-account N (local dev stack), or set "
                      "VERITRAIN_REQUESTER_KEY, or VERITRAIN_REQUESTER_KEYSTORE (+ _PASSWORD)")
