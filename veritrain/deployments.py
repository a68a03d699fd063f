"""Deployment records: which contracts live at which addresses on which chain.

``ape run deploy`` (scripts/deploy.py) and ``veritrain.dev.deploy`` write
``deployments/<network>.json``; every role reads it through :func:`load`.

A role given no file (``VERITRAIN_DEPLOYMENT`` unset) finds its deployment *by network*
(:func:`locate`): it asks the RPC node for its chain id and takes the first record, among
``$VERITRAIN_HOME/deployments/``, ``./deployments/`` and the checkout's ``deployments/``,
that names this chain id and whose ``JobMarket`` has code on it (a record of an earlier,
discarded dev chain is skipped). So no command depends on the current directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from veritrain.errors import ConfigError


class Deployment(BaseModel):
    model_config = ConfigDict(frozen=True)

    network: str
    chain_id: int = Field(gt=0)
    deploy_block: int = Field(ge=0)
    contracts: dict[str, str]

    def address(self, name: str) -> str:
        try:
            return self.contracts[name]
        except KeyError:
            raise ConfigError(
                f"deployment for {self.network} has no {name} contract "
                f"(has: {', '.join(sorted(self.contracts))}); redeploy with `ape run deploy`"
            ) from None


def save(deployment: Deployment, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(deployment.model_dump_json(indent=2) + "\n")
    os.replace(tmp, path)
    return path


def search_dirs() -> list[Path]:
    """Where :func:`locate` looks, in order (duplicates removed)."""
    from veritrain.settings import PROJECT_ROOT, default_home

    dirs = [default_home() / "deployments", Path.cwd() / "deployments", PROJECT_ROOT / "deployments"]
    out: list[Path] = []
    for d in dirs:
        r = d.resolve()
        if r not in out:
            out.append(r)
    return out


def _rpc(urls: str, method: str, params: list[Any]) -> Any:
    """Ask the first of the comma-separated ``urls`` that answers."""
    from veritrain.netprofile import split_urls

    *fallbacks, last = split_urls(urls)
    for url in fallbacks:
        try:
            return _rpc_one(url, method, params)
        except ConfigError as exc:
            if "does not answer" not in str(exc):
                raise
    return _rpc_one(last, method, params)


def _rpc_one(url: str, method: str, params: list[Any]) -> Any:
    import urllib.error
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            reply = json.loads(resp.read())
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise ConfigError(f"the RPC node at {url} does not answer ({exc}): start it "
                          "(`veritrain dev up`) or set VERITRAIN_RPC_URL") from None
    if not isinstance(reply, dict) or "result" not in reply:
        raise ConfigError(f"the RPC node at {url} answered {method} with {reply!r}")
    return reply["result"]


def locate(rpc_url: str, dirs: list[Path] | None = None) -> Deployment:
    """The deployment of the network at ``rpc_url`` (see the module doc)."""
    chain_id = int(_rpc(rpc_url, "eth_chainId", []), 16)
    looked: list[str] = []
    for d in dirs if dirs is not None else search_dirs():
        for path in sorted(d.glob("*.json")) if d.is_dir() else []:
            looked.append(str(path))
            try:
                dep = Deployment.model_validate(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
            market = dep.contracts.get("JobMarket")
            if dep.chain_id != chain_id or market is None:
                continue
            if _rpc(rpc_url, "eth_getCode", [market, "latest"]) not in ("0x", "0x0", None):
                return dep
    where = ", ".join(str(d) for d in (dirs if dirs is not None else search_dirs()))
    raise ConfigError(f"no deployment of chain {chain_id} at {rpc_url} found in {where}: deploy with "
                      "`ape run deploy --network ethereum:local:foundry --account TEST::0` "
                      "(see docs/quickstart.md) or point VERITRAIN_DEPLOYMENT at its record")


def load(path: Path | None, rpc_url: str | None = None) -> Deployment:
    """The record at ``path``; with no path, the deployment of the network at ``rpc_url``."""
    if path is None:
        if rpc_url is None:
            raise ConfigError("no deployment given: set VERITRAIN_DEPLOYMENT or VERITRAIN_RPC_URL")
        return locate(rpc_url)
    path = Path(path).expanduser()
    try:
        return Deployment.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ConfigError(
            f"no deployment file at {path}: deploy with `ape run deploy` "
            "or point VERITRAIN_DEPLOYMENT at one"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"deployment file {path} is malformed: {exc}") from exc


def code_problem(name: str, code: str | bytes) -> str | None:
    """Why the runtime ``code`` found on chain is not the shipped artifact ``name``'s, or None.

    solc emits immutables as 32-byte zero words that the constructor fills, and the shipped
    artifacts carry no immutable offsets, so: the code (metadata aside) must be as long as the
    artifact's and differ only inside runs of at least 32 zero bytes of the artifact (where an
    immutable sits). Any other byte that differs is other code."""
    from veritrain.artifacts import artifact, without_metadata

    want, got = without_metadata(artifact(name)["deployedBytecode"]), without_metadata(code)
    if not got:
        return f"{name}: no code at the address"
    if len(got) != len(want):
        return f"{name}: {len(got)} bytes of code, the shipped artifact has {len(want)}"
    zero_run = [False] * len(want)
    i = 0
    while i < len(want):
        j = i
        while j < len(want) and want[j] == 0:
            j += 1
        if j - i >= 32:
            zero_run[i:j] = [True] * (j - i)
        i = max(j, i + 1)
    bad = [k for k in range(len(want)) if got[k] != want[k] and not zero_run[k]]
    if bad:
        return f"{name}: the code differs from the shipped artifact at byte {bad[0]} ({len(bad)} bytes)"
    return None
