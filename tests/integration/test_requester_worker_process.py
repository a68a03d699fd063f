"""The done-when of issue 7 with the real worker role: the SDK posts a job, a separate
`veritrain worker run --once` process trains it, and `job.result()` checks every checkpoint
against its on-chain root and reports held-out accuracy. The requester and the worker meet
only through the chain, IPFS and the core's formats (no role imports another)."""

from __future__ import annotations

from pathlib import Path

from test_requester_support import REWARD, STAKE, digits, digits_spec, run_worker_process

from requester.sdk import Requester
from veritrain.deployments import save
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_local
from veritrain.storage import IpfsStorage

REQUESTER, WORKER = dev_account(1), dev_account(5)


def test_a_real_worker_process_trains_the_posted_job(fresh_chain, anvil, ipfs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    deployment = deploy_local(fresh_chain, dev_account(0), mint_to=[REQUESTER.address, WORKER.address])
    dep_path = save(deployment, tmp_path / "deployment.json")
    req = Requester(anvil.url, REQUESTER, IpfsStorage(ipfs.url), deployment, home=tmp_path / "home")
    deadlines = {"key_window": 600, "submission_window": 3600, "reveal_window": 600, "challenge_window": 3}
    spec = digits_spec(num_shards=1, deadlines=deadlines)
    job = req.post_job(spec, digits(), reward_per_task=REWARD, stake_per_task=STAKE)

    code, output, errors = run_worker_process(job, fresh_chain, WORKER, tmp_path, rpc_url=anvil.url,
                                              deployment=dep_path, ipfs_url=ipfs.url, args=["--once"],
                                              timeout=180)
    assert code == 0 and f"task {job.task_ids[0]}: finalized" in output, output[-3000:]
    assert not errors
    st = job.wait(timeout=30, poll=0.2)
    assert st.done and st.tasks[0].claims[0].worker == WORKER.address
    res = job.result()
    task = res.provenance.tasks[0]
    claim = req.market.get_claim(task.task_id, WORKER.address)
    assert task.root == "0x" + claim.root.hex()
    assert res.metrics["holdout_accuracy"] > 0.5
