"""Issue 7, rounds: a 2-round job on the real stack (Anvil + js-ipfs). The SDK posts round 0;
a real `veritrain worker run` process trains every task; the requester's key-service thread
verifies round 0, uploads its aggregate (encrypted, one copy per shard) and posts round 1; the
worker fetches, checks and trains from it; `job.result()` returns round 1's aggregate with every
checkpoint checked against its on-chain root and round 1's h_0 checked against round 0's
aggregate. The roles meet only through the chain, IPFS and the core's formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from test_requester_support import REWARD, STAKE, digits, digits_spec, run_worker_process

from requester.fetch import verify_round
from requester.sdk import Requester
from veritrain import manifest
from veritrain.chain.states import JobStatus
from veritrain.deployments import save
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_local
from veritrain.jobdoc import encode_initial_model
from veritrain.spec import TaskKey
from veritrain.storage import IpfsStorage
from veritrain.tasks import split_task_id

REQUESTER, WORKER = dev_account(1), dev_account(6)


def test_two_rounds_trained_by_a_real_worker_chain_from_aggregate_to_aggregate(  # type: ignore[no-untyped-def]
        fresh_chain, anvil, ipfs, tmp_path: Path) -> None:
    from veritrain.training.engine import start_hash
    from veritrain.training.runner import model_state_of

    deployment = deploy_local(fresh_chain, dev_account(0), mint_to=[REQUESTER.address, WORKER.address])
    dep_path = save(deployment, tmp_path / "deployment.json")
    storage = IpfsStorage(ipfs.url)
    req = Requester(anvil.url, REQUESTER, storage, deployment, home=tmp_path / "home")
    deadlines = {"key_window": 600, "submission_window": 3600, "reveal_window": 600, "challenge_window": 3}
    spec = digits_spec(num_shards=2, rounds=2, deadlines=deadlines)
    balance = int(req.market.token.balanceOf(REQUESTER.address))
    job = req.post_job(spec, digits(), reward_per_task=REWARD, stake_per_task=STAKE)
    assert [rj.job_id for rj in job.rounds] == [job.id]  # round 0 only, so far
    assert int(req.market.token.allowance(REQUESTER.address, req.market.address)) == 2 * REWARD  # round 1's

    code, output, errors = run_worker_process(job, fresh_chain, WORKER, tmp_path, rpc_url=anvil.url,
                                              deployment=dep_path, ipfs_url=ipfs.url,
                                              args=["--max-tasks", "4"], timeout=240)
    assert code == 0, output[-3000:]
    assert not errors, errors
    rounds = job.rounds
    assert [rj.round for rj in rounds] == [0, 1] and rounds[0].job_id == job.id
    assert rounds[1].job_id is not None and rounds[1].job_id != job.id
    for task_id in job.task_ids:
        assert f"task {task_id}: finalized" in output, output[-3000:]
    onchain1 = req.market.get_job(rounds[1].job_id)
    assert onchain1.task_count == spec.num_shards and onchain1.spec_cid == rounds[1].doc_cid
    # both rounds' escrow left the requester; nothing more was posted
    assert balance - int(req.market.token.balanceOf(REQUESTER.address)) == 2 * 2 * REWARD

    st = job.wait(timeout=30, poll=0.2)
    assert st.done and st.rounds_posted == 2 and len(st.tasks) == 4
    for rj in rounds:  # the driver closed each ended round job: no escrow left behind
        closed = req.market.get_job(rj.job_id)
        assert closed.status == JobStatus.CLOSED and closed.escrow == 0
    res = job.result()
    prov = res.provenance
    assert prov.job_id == job.id and [r["job_id"] for r in prov.rounds] == [job.id, rounds[1].job_id]
    assert sorted((t.round, t.shard) for t in prov.tasks) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for t in prov.tasks:  # every result is the one its worker committed on-chain
        assert t.worker == WORKER.address
        assert t.root == "0x" + req.market.get_claim(t.task_id, WORKER.address).root.hex()
        assert split_task_id(t.task_id)[0] == rounds[t.round].job_id

    # round 1 started from round 0's aggregate: recompute it independently and compare h_0
    agg0 = verify_round(job, rounds[0]).aggregate
    doc1 = job.round_doc(1)
    plain = encode_initial_model(spec, doc1.binding, 1, agg0.tensors)
    assert doc1.initial_model is not None
    import hashlib

    assert hashlib.sha256(plain).hexdigest() == doc1.initial_model.digest
    for t in (t for t in prov.tasks if t.round == 1):
        m = manifest.load(storage.get_bytes(t.manifest_cid))
        want = start_hash(spec, TaskKey(round=1, shard=t.shard), model_state_of(plain))
        assert m.hash_bytes(0) == want and t.start_hash == "0x" + want.hex()
    # the result is round 1's aggregate, not round 0's
    agg1 = verify_round(job, rounds[1]).aggregate
    assert all(np.array_equal(res.state.tensors[k], agg1.tensors[k]) for k in agg1.tensors)
    assert any(not np.array_equal(agg0.tensors[k], agg1.tensors[k]) for k in agg1.tensors)
    assert res.metrics["rounds"] == 2 and res.metrics["holdout_accuracy"] > 0.5

    # a verifier (its replayer, with the shard key a referee of each task would get) replays
    # round 1's real checkpoints as round 1: every segment matches
    from verifier.replay import SegmentReplayer, load_job_document, load_manifest
    from veritrain import crypto

    replayer = SegmentReplayer(storage)
    for t in (t for t in prov.tasks if t.round == 1):
        doc = load_job_document(storage, onchain1.spec_cid)
        root = req.market.get_claim(t.task_id, WORKER.address).root
        m = load_manifest(storage, t.manifest_cid, root=root, task_id=t.task_id, worker=WORKER.address)
        key = crypto.shard_key(job.data_key, doc.binding, t.shard)
        ctx = replayer.context(doc, m, key, t.task_id, WORKER.address)
        assert ctx.task == TaskKey(round=1, shard=t.shard)
        assert [replayer.check(ctx, j).outcome for j in range(ctx.n_segments)] == ["match"] * ctx.n_segments
