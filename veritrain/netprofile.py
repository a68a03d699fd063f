"""Network profiles: which chain a role talks to, through which RPC URLs, and how carefully.

A profile names a network: its chain id, one or more RPC URLs (tried in order, with a health
check: a URL that does not answer ``eth_chainId`` is skipped), the deployment record, the
confirmations to wait, the fee policy, the provider's ``eth_getLogs`` block-range limit, the
polling interval and the IPFS API. ``local`` is built in (the dev stack); others are tables of
``$VERITRAIN_HOME/networks.toml`` (:func:`veritrain.settings.default_home`)::

    [networks.sepolia]
    chain_id = 11155111
    rpc_urls = ["https://rpc-a.example", "https://rpc-b.example"]
    confirmations = 3
    log_range = 1000
    params = "sepolia"            # protocol parameters: veritrain/networks/sepolia.toml
    [networks.sepolia.fees]
    max_fee_gwei = 50

The protocol parameters (bonds, windows) are not repeated here: ``params`` names the file of
:mod:`veritrain.params`. The deployment is found by chain id (:func:`veritrain.deployments.locate`)
unless ``deployment`` names a file. A node whose chain id differs from the profile's is refused
with one line (:func:`NetworkProfile.connect`).
"""

from __future__ import annotations

import json
import os
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from veritrain.errors import ConfigError

#: The file of user-defined profiles, under the per-user home.
PROFILES_FILE = "networks.toml"
LOCAL = "local"


class FeePolicy(BaseModel):
    """How transactions are priced.

    ``eip1559``: ``maxPriorityFeePerGas`` is the ``reward_percentile`` of the last
    ``history_blocks`` blocks' tips (``eth_feeHistory``), at least ``min_priority_fee_gwei``;
    ``maxFeePerGas`` is twice the next block's base fee plus that tip. ``legacy``: the node's
    ``eth_gasPrice``. ``auto``: EIP-1559 where the chain has a base fee, else legacy. Every price
    is capped at ``max_fee_gwei``; a transaction the cap cannot price is refused, not sent.
    A transaction not mined after ``replace_after`` seconds is replaced by one with the same
    nonce and a fee ``bump_percent`` higher (and never above the cap).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["auto", "eip1559", "legacy"] = "auto"
    max_fee_gwei: Decimal = Field(default=Decimal(500), gt=0)
    min_priority_fee_gwei: Decimal = Field(default=Decimal(1), ge=0)
    history_blocks: int = Field(default=10, ge=1, le=1024)
    reward_percentile: float = Field(default=50.0, ge=0, le=100)
    #: Seconds before an unmined transaction is replaced (same nonce, bumped fee); None = never.
    replace_after: float | None = Field(default=None, gt=0)
    #: How much a replacement outbids the transaction it replaces (nodes require >= 10 %).
    bump_percent: int = Field(default=25, ge=10, le=1000)

    @property
    def max_fee_wei(self) -> int:
        return int(self.max_fee_gwei * 10**9)

    @property
    def min_priority_fee_wei(self) -> int:
        return int(self.min_priority_fee_gwei * 10**9)


class NetworkProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    chain_id: int = Field(gt=0)
    rpc_urls: list[str] = Field(min_length=1)
    #: A deployment record; None = found by chain id (veritrain.deployments.locate).
    deployment: Path | None = None
    #: Protocol parameter file name under veritrain/networks/ (default: the profile's name).
    params: str | None = None
    confirmations: int = Field(default=0, ge=0)
    fees: FeePolicy = Field(default_factory=FeePolicy)
    #: Largest ``eth_getLogs`` block range the provider serves.
    log_range: int = Field(default=2000, ge=1)
    poll_interval: float = Field(default=1.0, gt=0)
    ipfs_api: str = "/ip4/127.0.0.1/tcp/5001/http"
    #: Seconds a health check waits for ``eth_chainId``.
    health_timeout: float = Field(default=5.0, gt=0)

    @field_validator("rpc_urls")
    @classmethod
    def _http(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return urls

    @property
    def params_name(self) -> str:
        return self.params or self.name

    def protocol_params(self) -> Any:
        """This network's protocol parameters (:func:`veritrain.params.network_params`)."""
        from veritrain.params import network_params

        return network_params(self.params_name)

    def healthy_urls(self, rounds: int = 3) -> list[str]:
        """The RPC URLs that answer ``eth_chainId`` now, in the profile's order.

        A hosted provider drops a connection now and then and rate-limits bursts, so one
        failed probe is not an outage: when no URL answers, all are probed again, ``rounds``
        times in all (0.5 s, then 1 s apart) before the answer is "none".
        A URL answering with another chain id is refused at once (:class:`ConfigError`):
        that is a misconfiguration, not an outage."""
        out: list[str] = []
        for attempt in range(rounds):
            for url in self.rpc_urls:
                chain_id = _chain_id(url, self.health_timeout)
                if chain_id is None:
                    continue
                if chain_id != self.chain_id:
                    raise ConfigError(f"network {self.name}: the node at {url} is chain {chain_id}, "
                                      f"not {self.chain_id}; fix rpc_urls or chain_id in the profile")
                out.append(url)
            if out or attempt == rounds - 1:
                break
            time.sleep(0.5 * 2**attempt)
        return out

    def connect(self) -> list[str]:
        """The RPC URLs to use, healthy first (the others stay as later fallbacks); one line if
        none answers or a node is another chain."""
        healthy = self.healthy_urls()
        if not healthy:
            raise ConfigError(f"network {self.name}: no RPC URL answers ({', '.join(self.rpc_urls)})")
        return healthy + [u for u in self.rpc_urls if u not in healthy]

    def env(self) -> dict[str, str]:
        """The ``VERITRAIN_*`` settings this profile stands for (what every role's settings read)."""
        out = {"VERITRAIN_NETWORK": self.name,
               "VERITRAIN_RPC_URL": ",".join(self.rpc_urls),  # the failover list, in order
               "VERITRAIN_CONFIRMATIONS": str(self.confirmations),
               "VERITRAIN_IPFS_API": self.ipfs_api, "VERITRAIN_LOG_RANGE": str(self.log_range),
               "VERITRAIN_POLL_INTERVAL": str(self.poll_interval)}
        if self.deployment is not None:
            out["VERITRAIN_DEPLOYMENT"] = str(self.deployment)
        return out


def split_urls(rpc_url: str | Sequence[str]) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]`` (a comma-separated value lists failover URLs)."""
    urls = [u.strip() for u in rpc_url.split(",")] if isinstance(rpc_url, str) else [str(u) for u in rpc_url]
    urls = [u for u in urls if u]
    if not urls:
        raise ValueError("no RPC URL given")
    return urls


def _chain_id(url: str, timeout: float, busy_retries: int = 3) -> int | None:
    """``eth_chainId`` of ``url``; None if it does not answer. A rate limit (HTTP 429) means
    the node is up but busy: asked again after a short wait, ``busy_retries`` times."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    for attempt in range(busy_retries + 1):
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                reply = json.loads(resp.read())
            return int(reply["result"], 16)
        except urllib.error.HTTPError as exc:
            if exc.code != 429 or attempt == busy_retries:
                return None
            time.sleep(0.3 * (attempt + 1))
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return None


def builtin_local() -> NetworkProfile:
    """The dev stack (``veritrain dev up``): Anvil on ``VERITRAIN_ANVIL_PORT`` (8545), chain 31337."""
    port = os.environ.get("VERITRAIN_ANVIL_PORT", "8545")
    ipfs = os.environ.get("VERITRAIN_IPFS_API_PORT", "5001")
    return NetworkProfile(name=LOCAL, chain_id=31337, rpc_urls=[f"http://127.0.0.1:{port}"],
                          confirmations=0, poll_interval=0.5,
                          ipfs_api=f"/ip4/127.0.0.1/tcp/{ipfs}/http")


def profiles_path(home: Path | None = None) -> Path:
    from veritrain.settings import default_home

    return (home or default_home()) / PROFILES_FILE


def load_profiles(path: Path | None = None) -> dict[str, NetworkProfile]:
    """Every profile: ``local`` plus the user file's (a user ``local`` replaces the built-in)."""
    path = path or profiles_path()
    out = {LOCAL: builtin_local()}
    if not path.is_file():
        return out
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    tables = raw.get("networks", {})
    if not isinstance(tables, dict) or set(raw) - {"networks"}:
        raise ConfigError(f"{path}: expected only [networks.NAME] tables")
    problems: list[str] = []
    for name, table in tables.items():
        try:
            out[name] = NetworkProfile.model_validate({"name": name, **table})
        except (ValidationError, TypeError) as exc:
            errs = exc.errors() if isinstance(exc, ValidationError) else [{"loc": (), "msg": str(exc)}]
            problems += [f"networks.{name}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errs]
    if problems:
        raise ConfigError(f"invalid network profiles in {path}: " + "; ".join(problems))
    return out


def load_profile(name: str, path: Path | None = None) -> NetworkProfile:
    """The profile ``name``; one line naming the known ones if there is none."""
    profiles = load_profiles(path)
    try:
        return profiles[name]
    except KeyError:
        raise ConfigError(f"no network {name!r} (known: {', '.join(sorted(profiles))}); add "
                          f"[networks.{name}] to {path or profiles_path()} (see docs/networks.md)") from None


def activate(name: str, path: Path | None = None) -> NetworkProfile:
    """Select network ``name`` for this process: its settings become the ``VERITRAIN_*``
    environment every role's settings read (and child processes inherit). The chain is
    checked (:meth:`NetworkProfile.connect`) and the healthy URLs put first."""
    profile = load_profile(name, path)
    urls = profile.connect()
    profile = profile.model_copy(update={"rpc_urls": urls})
    os.environ.update(profile.env())
    return profile


def selected(path: Path | None = None) -> NetworkProfile | None:
    """The profile named by ``VERITRAIN_NETWORK``, if any (no health check)."""
    name = os.environ.get("VERITRAIN_NETWORK")
    return load_profile(name, path) if name else None
