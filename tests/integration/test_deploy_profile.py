"""`ape run deploy --profile NAME` (issue 18): a deployment by Veritrain network profile. A profile
whose chain id is not the chain Ape is connected to is refused before anything is sent (a record
written for the wrong chain would point every role at contracts that are not there); the right one
deploys with the profile's parameter file and writes deployments/<profile>.json."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from veritrain import deployments
from veritrain.dev.accounts import dev_account

ROOT = Path(__file__).resolve().parents[2]


def _deploy(anvil_url: str, home: Path, profile: str, out: Path) -> subprocess.CompletedProcess[str]:
    ape = Path(sys.executable).parent / "ape"
    env = {**os.environ, "APE_FOUNDRY_HOST": anvil_url, "VERITRAIN_HOME": str(home)}
    return subprocess.run([str(ape), "run", "deploy", "--network", "ethereum:local:foundry", "--account",
                           "TEST::0", "--profile", profile, "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_deploy_by_profile_checks_the_chain_id_first(anvil, fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "networks.toml").write_text(
        f'[networks.other]\nchain_id = 5\nrpc_urls = ["{anvil.url}"]\nparams = "local"\n'
        f'[networks.mine]\nchain_id = 31337\nrpc_urls = ["{anvil.url}"]\nparams = "local"\n'
        'confirmations = 1\n')
    nonce = fresh_chain.eth.get_transaction_count(dev_account(0).address)
    refused = _deploy(anvil.url, tmp_path, "other", tmp_path / "other.json")
    assert refused.returncode != 0
    assert "network other is chain 5, but Ape is connected to chain 31337" in refused.stdout + refused.stderr
    assert fresh_chain.eth.get_transaction_count(dev_account(0).address) == nonce  # nothing sent
    assert not (tmp_path / "other.json").exists()

    import threading

    stop = threading.Event()

    def mine() -> None:  # the test chain mines only on transactions: confirmations need blocks
        while not stop.wait(0.5):
            fresh_chain.provider.make_request("evm_mine", [])

    miner = threading.Thread(target=mine, daemon=True)
    miner.start()
    try:
        done = _deploy(anvil.url, tmp_path, "mine", tmp_path / "mine.json")
    finally:
        stop.set()
        miner.join(5)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    record = deployments.load(tmp_path / "mine.json")
    assert record.network == "mine" and record.chain_id == 31337
    assert "1 confirmation(s) after block" in done.stdout
    assert fresh_chain.eth.get_code(record.address("JobMarket")) not in (b"", None)
