"""Issue 24, point 6: with the IPFS node unreachable, `veritrain worker run --once` said
`skip: job document unusable ... the job pins torch ?` and `no open task matches this
worker's policy`, then exited 0. It must say the node is unreachable and exit non-zero."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_requester_support import REWARD, STAKE, digits, digits_spec, worker_env

from requester.sdk import Requester
from veritrain.deployments import save
from veritrain.dev import procs
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_local
from veritrain.storage import IpfsStorage

REQUESTER, WORKER = dev_account(1), dev_account(6)


def test_worker_once_with_ipfs_down_names_the_node_and_exits_1(  # type: ignore[no-untyped-def]
        fresh_chain, anvil, ipfs, tmp_path: Path) -> None:
    deployment = deploy_local(fresh_chain, dev_account(0), mint_to=[REQUESTER.address, WORKER.address])
    dep_path = save(deployment, tmp_path / "deployment.json")
    req = Requester(anvil.url, REQUESTER, IpfsStorage(ipfs.url), deployment, home=tmp_path / "home")
    req.post_job(digits_spec(num_shards=1), digits(), reward_per_task=REWARD, stake_per_task=STAKE)

    dead = f"/ip4/127.0.0.1/tcp/{procs.free_port()}/http"  # nothing listens there: the node is down
    env = worker_env(WORKER, tmp_path, rpc_url=anvil.url, deployment=dep_path, ipfs_url=dead)
    env["VERITRAIN_WORKER_IPFS_RETRY_SECONDS"] = "1"
    proc = subprocess.run([sys.executable, "-m", "veritrain.cli", "worker", "run", "--once"], env=env,
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert f"the IPFS node at {dead} is unreachable" in proc.stderr
    assert "no open task matches" not in out and "job document unusable" not in out
    assert "FutureWarning" not in out
