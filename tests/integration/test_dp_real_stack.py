"""A DP-SGD job on the real stack (Anvil + js-ipfs).

1. Posted with a target epsilon through the SDK (post_job settles the noise multiplier), trained
   by a real ``veritrain worker run`` process, every segment replayed bitwise by a verifier's
   replayer holding the shard key; the result, the saved model's metadata and ``job status``
   report the epsilon spent; ``veritrain audit membership`` runs on the fetched model.
2. A worker that skips a step in one segment of a DP job is challenged by a sampling verifier
   (p = 1) and slashed by the referees, who replay the DP segment with the noise derived from
   the shard key they are given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_requester_support import REWARD, STAKE, digits, digits_spec, run_worker_process
from test_verifier_disputes import VERIFIERS, World, _register, _run_dispute, _sample, _settled
from verifier_helpers import Requester as ChainRequester
from verifier_helpers import Worker, contracts, small_spec

from adversary.cheats import SkipStep
from requester.sdk import Requester
from verifier.replay import SegmentReplayer, load_job_document, load_manifest
from veritrain import crypto
from veritrain.deployments import save
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_local
from veritrain.storage import IpfsStorage

pytestmark = pytest.mark.timeout(600)
REQUESTER, WORKER = dev_account(1), dev_account(5)


def test_a_dp_job_trains_in_a_worker_process_replays_bitwise_and_reports_epsilon(  # type: ignore[no-untyped-def]
        fresh_chain, anvil, ipfs, tmp_path: Path) -> None:
    deployment = deploy_local(fresh_chain, dev_account(0), mint_to=[REQUESTER.address, WORKER.address])
    dep_path = save(deployment, tmp_path / "deployment.json")
    storage = IpfsStorage(ipfs.url)
    req = Requester(anvil.url, REQUESTER, storage, deployment, home=tmp_path / "home")
    deadlines = {"key_window": 600, "submission_window": 3600, "reveal_window": 600, "challenge_window": 3}
    spec = digits_spec(num_shards=1, deadlines=deadlines,
                       privacy={"dp_sgd": {"epsilon": 8.0, "delta": 1e-5, "max_grad_norm": 1.0}})
    job = req.post_job(spec, digits(), reward_per_task=REWARD, stake_per_task=STAKE)
    dp = job.spec.privacy.dp_sgd
    assert dp is not None and dp.noise_multiplier is not None and dp.epsilon == 8.0  # settled

    code, output, errors = run_worker_process(job, fresh_chain, WORKER, tmp_path, rpc_url=anvil.url,
                                              deployment=dep_path, ipfs_url=ipfs.url, args=["--once"],
                                              timeout=300)
    assert code == 0 and f"task {job.task_ids[0]}: finalized" in output, output[-3000:]
    assert not errors
    st = job.wait(timeout=30, poll=0.2)
    assert st.done and st.privacy is not None and 0 < st.privacy["epsilon"] <= 8.0
    assert "DP-SGD: epsilon" in st.summary()

    # a verifier holding the shard key replays every DP segment bitwise
    res = job.result()
    task = res.provenance.tasks[0]
    onchain = req.market.get_job(job.id)
    doc = load_job_document(storage, onchain.spec_cid)
    root = req.market.get_claim(task.task_id, WORKER.address).root
    m = load_manifest(storage, task.manifest_cid, root=root, task_id=task.task_id, worker=WORKER.address)
    replayer = SegmentReplayer(storage)
    ctx = replayer.context(doc, m, crypto.shard_key(job.data_key, doc.binding, task.shard), task.task_id,
                           WORKER.address)
    assert [replayer.check(ctx, j).outcome for j in range(ctx.n_segments)] == ["match"] * ctx.n_segments

    spent = res.metrics["privacy"]
    assert spent == res.provenance.privacy == st.privacy
    assert spent["delta"] == 1e-5 and spent["accountant"] == "rdp"
    assert spent["noise_multiplier"] == dp.noise_multiplier
    path = res.save(tmp_path / "model.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        meta: dict[str, Any] = f.metadata()
    assert json.loads(meta["veritrain.metrics"])["privacy"]["epsilon"] == spent["epsilon"]
    assert json.loads(meta["veritrain.provenance"])["privacy"] == spent

    # the audit runs on the fetched model: members = the training split, non-members = held out
    import numpy as np
    from typer.testing import CliRunner

    from requester.data import load_dataset, split_holdout
    from veritrain.cli import app

    train, _ = split_holdout(job.spec, load_dataset(digits(), job.spec), 0.2)
    members = tmp_path / "members.npz"
    np.savez(members, features=train.features, labels=train.labels)
    assert job.record.holdout is not None
    plot = tmp_path / "roc.svg"
    out = CliRunner().invoke(app, ["audit", "membership", str(path), "--members", str(members),
                                   "--non-members", job.record.holdout, "--shadows", "2",
                                   "--plot", str(plot), "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["privacy"] == spent and report["members"] == len(train)
    assert set(report["attacks"]) == {"loss_threshold", "lira"} and plot.read_text().startswith("<svg")


@pytest.fixture
def dp_world(fresh_chain, ipfs, tmp_path) -> World:  # type: ignore[no-untyped-def]
    w3 = fresh_chain
    dep = deploy_local(w3, dev_account(0))
    storage = IpfsStorage(ipfs.url)
    requester = ChainRequester(w3, dep, storage)
    spec = small_spec(num_shards=2, privacy={"dp_sgd": {"noise_multiplier": 1.0, "delta": 1e-5,
                                                        "max_grad_norm": 1.0}})
    job = requester.post_job(spec)
    honest, cheater = Worker(w3, dep, storage, dev_account(2)), Worker(w3, dep, storage, dev_account(3))
    for worker, index in ((honest, 0), (cheater, 1)):
        worker.claim(job.task_id(index))
        requester.deliver_key(job, job.task_id(index), worker.acct)
    return World(w3, dep, storage, requester, honest, cheater, job, tmp_path, {})


def test_a_cheat_on_a_dp_job_is_challenged_and_slashed(dp_world: World) -> None:
    world = dp_world
    challenger = world.service(VERIFIERS[0], p=1.0)
    referees = [world.service(i, p=0.0) for i in VERIFIERS[1:]]
    for svc in (challenger, *referees):
        _register(world, svc, sampling_key=svc is challenger)
    world.honest.train_and_submit(world.job, 0)
    world.cheater.train_and_submit(world.job, 1, cheat=SkipStep(segment=2, offset=3))
    _sample(world, challenger)
    honest_key = f"result:{world.job.task_id(0)}:{world.honest.acct.address.lower()}"
    cheat_key = f"result:{world.job.task_id(1)}:{world.cheater.acct.address.lower()}"
    honest = challenger.journal.get(honest_key)
    assert honest.phase == "verified"  # every honest DP segment replayed bitwise
    assert [c["outcome"] for c in honest.data["checks"]] == ["match"] * 4
    cheat = challenger.journal.get(cheat_key)
    assert cheat.phase == "challenged"
    assert [c["outcome"] for c in cheat.data["checks"]] == ["match", "match", "mismatch"]
    dispute_id = cheat.data["dispute_id"]
    _run_dispute(world, dispute_id)
    assert _settled(world, dispute_id)["outcome"] == 1  # AccusedLost: slashed
    market = contracts(world.w3, world.dep)["JobMarket"]
    claim = market.functions.getClaim(world.job.task_id(1), world.cheater.acct.address).call()
    assert claim[0] == 7  # Ended (slashed)
