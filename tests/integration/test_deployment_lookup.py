"""Deployments found by network, and `veritrain dev fund`, against the real Anvil (issue 24:
outside the checkout every command needed VERITRAIN_DEPLOYMENT; no way to fund a worker)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from veritrain import deployments
from veritrain.artifacts import artifact
from veritrain.deployments import Deployment, save
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_local
from veritrain.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_locate_takes_the_record_of_this_chain_whose_market_has_code(  # type: ignore[no-untyped-def]
        fresh_chain, anvil, tmp_path: Path) -> None:
    live = deploy_local(fresh_chain, dev_account(0), mint_to=[])
    a, b = tmp_path / "a", tmp_path / "b"
    # a record of an earlier, discarded dev chain (same chain id, no code) and one of another chain
    gone = {**live.contracts, "JobMarket": "0x" + "11" * 20}
    save(live.model_copy(update={"contracts": gone}), a / "local.json")
    save(live.model_copy(update={"chain_id": 11155111}), a / "sepolia.json")
    save(live, b / "local.json")
    assert deployments.locate(anvil.url, [a, b]) == live
    with pytest.raises(ConfigError, match=r"no deployment of chain 31337 .* found in .*: deploy with"):
        deployments.locate(anvil.url, [a])
    with pytest.raises(ConfigError, match="does not answer"):
        deployments.locate("http://127.0.0.1:9", [b])


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "veritrain.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=env["VERITRAIN_HOME"])


def test_dev_fund_gives_gas_and_tokens_found_by_network(fresh_chain, anvil, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dep = deploy_local(fresh_chain, dev_account(0), mint_to=[])
    home = tmp_path / "home"
    save(dep, home / "deployments" / "local.json")  # found there: no VERITRAIN_DEPLOYMENT
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERITRAIN_")}
    env.update(PYTHONPATH=str(ROOT), VERITRAIN_HOME=str(home), VERITRAIN_RPC_URL=anvil.url)
    who = "0x" + "7e" * 20
    out = _cli(env, "dev", "fund", who, "--eth", "1.5", "--tokens", "12.25")
    assert out.returncode == 0, out.stderr
    token = fresh_chain.eth.contract(address=dep.address("DevToken"), abi=artifact("DevToken")["abi"])
    checksum = fresh_chain.to_checksum_address(who)
    assert fresh_chain.eth.get_balance(checksum) == 15 * 10**17
    assert token.functions.balanceOf(checksum).call() == 1225 * 10**16
    assert out.stdout.strip() == f"{checksum} now holds 1.5 ETH and 12.25 VTD"
    bad = _cli(env, "dev", "fund", who, "--tokens", "-3")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: --tokens '-3' must be a non-negative amount with at most 18 decimals"


def test_dev_fund_refuses_a_network_that_is_not_local(tmp_path: Path, anvil, fresh_chain) -> None:  # type: ignore[no-untyped-def]
    from veritrain.dev.fund import fund

    dep = deploy_local(fresh_chain, dev_account(0), mint_to=[])
    path = save(Deployment(**{**dep.model_dump(), "chain_id": 1}), tmp_path / "mainnet.json")
    with pytest.raises(ConfigError, match="local networks only"):
        fund(anvil.url, "0x" + "7e" * 20, deployment_path=path)
