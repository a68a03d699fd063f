"""`ape run deploy` (scripts/deploy.py), the documented way to deploy, against a real Anvil:
it compiles with the project's solc look-alike, deploys and wires every contract with the same
parameters as veritrain.dev.deploy, and writes a record the Python roles load. A stale Ape
build cache is noticed and recompiled rather than deployed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from veritrain import deployments
from veritrain.artifacts import artifact, without_metadata
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import DEV_MINT, REGISTRY_MIN_STAKE, resolver_params_tuple

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("DevToken", "JobMarket", "VerifierRegistry", "DisputeResolver", "ScoredRounds")


def _deploy(anvil_url: str, out: Path) -> str:
    ape = Path(sys.executable).parent / "ape"
    env = {**os.environ, "APE_FOUNDRY_HOST": anvil_url}  # ape-config.yaml's foundry.host, overridden
    proc = subprocess.run([str(ape), "run", "deploy", "--network", "ethereum:local:foundry", "--account",
                           "TEST::0", "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _check_deployment(w3: Any, out: Path) -> None:
    dep = deployments.load(out)
    assert dep.chain_id == w3.eth.chain_id == 31337 and dep.deploy_block <= w3.eth.block_number
    c = {name: w3.eth.contract(address=dep.address(name), abi=artifact(name)["abi"]) for name in NAMES}
    for name, contract in c.items():  # the shipped code: equal but for the metadata hash (Ape's
        # source paths differ) and the immutables, which the artifact holds as zero placeholders
        deployed = without_metadata(bytes(w3.eth.get_code(contract.address)))
        shipped = without_metadata(artifact(name)["deployedBytecode"])
        assert len(deployed) == len(shipped), name
        assert all(a == b or b == 0 for a, b in zip(deployed, shipped, strict=True)), name
    market, registry, resolver = c["JobMarket"], c["VerifierRegistry"], c["DisputeResolver"]
    assert market.functions.modules().call() == [registry.address, resolver.address]
    assert market.functions.token().call() == c["DevToken"].address
    assert registry.functions.minStake().call() == REGISTRY_MIN_STAKE
    assert tuple(resolver.functions.params().call()) == tuple(resolver_params_tuple())
    assert c["DevToken"].functions.balanceOf(dev_account(3).address).call() == DEV_MINT
    assert market.functions.liabilities().call() == 0
    scored = c["ScoredRounds"]  # scored mode over the same token and registry
    assert (scored.functions.token().call(), scored.functions.registry().call()) == (
        c["DevToken"].address, registry.address)


def test_ape_run_deploy_writes_a_wired_deployment(anvil, fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _deploy(anvil.url, tmp_path / "first.json")
    _check_deployment(fresh_chain, tmp_path / "first.json")

    # a stale cache (as after editing contracts/ in another checkout): Ape's build no longer
    # matches veritrain/artifacts; the script recompiles instead of deploying it
    cache = ROOT / ".build" / "__local__.json"
    manifest = json.loads(cache.read_text())
    types = manifest["contractTypes"]
    types["DisputeResolver"]["runtimeBytecode"] = types["DevToken"]["runtimeBytecode"]
    cache.write_text(json.dumps(manifest))
    said = _deploy(anvil.url, tmp_path / "second.json")
    assert "DisputeResolver is not veritrain/artifacts'" in said and "recompiling" in said
    _check_deployment(fresh_chain, tmp_path / "second.json")
