"""The worker's key: an encrypted Ethereum keystore JSON (eth-account, scrypt).

The password comes from ``VERITRAIN_WORKER_PASSWORD`` or an interactive prompt, never from
a command-line flag (flags end up in shell history and ``ps``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veritrain.errors import ConfigError, VeritrainError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount


class KeystoreError(VeritrainError, ValueError):
    """The keystore is missing, malformed, or the password does not open it."""


def _normalize_key(private_key: str | bytes) -> bytes:
    if isinstance(private_key, bytes):
        raw = private_key
    else:
        text = private_key.strip().removeprefix("0x").removeprefix("0X")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise KeystoreError("the private key must be 64 hex digits (optionally 0x-prefixed)") from None
    if len(raw) != 32:
        raise KeystoreError(f"the private key must be 32 bytes, got {len(raw)}")
    return raw


def create_keystore(path: Path, password: str, private_key: str | bytes | None = None, *,
                    overwrite: bool = False, iterations: int | None = None) -> str:
    """Write a keystore for ``private_key`` (a fresh random key if None); returns the address.

    ``iterations`` (scrypt N, a power of two) exists for tests; the default is eth-account's.
    """
    from eth_account import Account

    path = Path(path)
    if path.exists() and not overwrite:
        raise KeystoreError(f"{path} already exists; pass --force to replace it (the old key is lost)")
    if not password:
        raise KeystoreError("an empty password is not allowed")
    key = _normalize_key(private_key) if private_key is not None else os.urandom(32)
    acct = Account.from_key(key)
    blob = Account.encrypt(key, password, iterations=iterations)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(blob, fh)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return str(acct.address)


def keystore_address(path: Path) -> str:
    """The address recorded in a keystore (no password needed)."""
    from eth_utils import to_checksum_address

    data = _read(path)
    if "address" not in data:
        raise KeystoreError(f"{path} records no address")
    return str(to_checksum_address("0x" + str(data["address"]).removeprefix("0x")))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"no keystore at {path}: create one with `veritrain worker init`") from None
    except ValueError:
        raise KeystoreError(f"{path} is not a keystore JSON file") from None
    if not isinstance(data, dict) or "crypto" not in data and "Crypto" not in data:
        raise KeystoreError(f"{path} is not an Ethereum keystore (no crypto section)")
    return data


def load_account(path: Path, password: str) -> LocalAccount:
    """The account in the keystore; a wrong password raises one clear KeystoreError."""
    from eth_account import Account

    data = _read(path)
    try:
        key = Account.decrypt(data, password)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise KeystoreError(f"wrong password for keystore {path}") from None
        raise KeystoreError(f"cannot open keystore {path}: {exc}") from None
    return Account.from_key(key)
