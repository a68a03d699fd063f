"""The requester SDK on the real stack (Anvil + js-ipfs): post, serve keys, a real worker
trains, result() checks every checkpoint against its on-chain root, aggregates, evaluates."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_requester_support import REWARD, STAKE, TestWorker, digits, digits_spec, travel

from requester.aggregate import fedavg
from requester.errors import InsufficientFundsError, ResultIntegrityError, UnknownJobError
from requester.sdk import Requester
from veritrain import crypto, merkle
from veritrain.chain.states import ClaimStatus, VerifierKeyStatus
from veritrain.checkpoint import decode
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_local
from veritrain.errors import DataError, DecryptionError, SpecError
from veritrain.storage import IpfsStorage

REQUESTER, ALICE, BOB = dev_account(1), dev_account(2), dev_account(3)


@pytest.fixture
def stack(fresh_chain, anvil, ipfs, tmp_path: Path):  # type: ignore[no-untyped-def]
    deployment = deploy_local(fresh_chain, dev_account(0), mint_to=[REQUESTER.address, ALICE.address,
                                                                    BOB.address])
    storage = IpfsStorage(ipfs.url)
    req = Requester(anvil.url, REQUESTER, storage, deployment, home=tmp_path / "home")
    return req, deployment, storage


def worker(stack: Any, account: Any, anvil: Any, tmp_path: Path) -> TestWorker:
    _, deployment, storage = stack
    return TestWorker(anvil.url, account, deployment, storage, tmp_path / f"nonces-{account.address}")


def test_post_train_result_every_checkpoint_matches_its_onchain_root(stack, anvil, w3, tmp_path):  # type: ignore[no-untyped-def]
    req, _, storage = stack
    spec = digits_spec()
    x, y = digits()
    job = req.post_job(spec, (x, y), reward_per_task=REWARD, stake_per_task=STAKE, holdout=0.25)
    # the record survives the process: 0600, key sealed (not in clear), reloadable
    path = req.store.path(job.id)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert job.data_key.hex() not in path.read_text()
    assert req.job(job.id).data_key == job.data_key
    onchain = req.market.get_job(job.id)
    assert onchain.spec_cid == job.record.doc_cid
    assert "0x" + onchain.shards_root.hex() == job.record.shards_root
    assert onchain.escrow == 2 * REWARD
    doc = job.doc
    assert [r.examples for r in doc.shards] == [674, 674]

    workers = {0: worker(stack, ALICE, anvil, tmp_path), 1: worker(stack, BOB, anvil, tmp_path)}
    runs, keys_of = {}, {}
    with job.serve_keys(interval=0.1) as keys:
        for index, wk in workers.items():
            task_id = wk.claim(job.id, index)
            keys_of[index] = wk.wait_key(task_id)
            runs[index] = wk.train(task_id, keys_of[index])
            wk.submit(runs[index])
        assert not keys.errors
    # privacy: a worker's envelope holds its shard's key, which opens no other shard
    for index, key in keys_of.items():
        assert key != job.data_key
        other = doc.shard(1 - index)
        with pytest.raises(DecryptionError):
            crypto.decrypt_bytes(storage.get_bytes(other.cid), key, job_id=doc.binding,
                                 shard_index=other.index)
    st = job.status()
    assert [t.phase for t in st.tasks] == ["revealed", "revealed"] and not st.done
    travel(w3, spec.deadlines.challenge_window + 1)
    for index, wk in workers.items():
        wk.finalize(runs[index].task_id)
    assert job.wait(timeout=10, poll=0.1).done

    res = job.result()
    assert len(res.provenance.tasks) == 2
    for t in res.provenance.tasks:
        claim = req.market.get_claim(t.task_id, t.worker)
        assert claim.status == ClaimStatus.FINALIZED
        assert t.root == "0x" + claim.root.hex()
        run = runs[t.shard]
        assert t.checkpoint_hash == "0x" + run.hashes[-1].hex()
        assert merkle.verify(claim.root, len(run.hashes) - 1, run.hashes[-1],
                             merkle.MerkleTree(run.hashes).proof(len(run.hashes) - 1))
        assert t.reveal_tx and t.finalize_tx and t.key_tx
    # FedAvg weighted by shard size
    finals = [decode(runs[i].final_state) for i in (0, 1)]
    expected = fedavg(finals, [doc.shard(0).examples, doc.shard(1).examples])
    for name, value in expected.items():
        np.testing.assert_array_equal(res.state.tensors[name], value)
    assert res.metrics["holdout_examples"] == 449
    assert res.metrics["holdout_accuracy"] > 0.5  # 10 classes: chance is 0.1
    out = res.save(tmp_path / "model.safetensors")
    from safetensors.numpy import load_file

    assert set(load_file(str(out))) == {k.removeprefix("model/") for k in expected}


def test_result_refuses_a_checkpoint_whose_bytes_do_not_match_the_root(stack, anvil, w3, tmp_path):  # type: ignore[no-untyped-def]
    req, _, _ = stack
    spec = digits_spec(num_shards=1)
    job = req.post_job(spec, digits(), reward_per_task=REWARD, stake_per_task=STAKE)
    wk = worker(stack, ALICE, anvil, tmp_path)
    task_id = wk.claim(job.id, 0)
    # the key service run by hand, as after a restart: it catches up on the claim
    from requester.keyservice import KeyService

    service = KeyService(req.market, job.id, job.data_key, job.record.post_block or 0, job.doc)
    assert [d.target for d in service.step()] == [task_id]
    assert service.step() == []  # never twice
    assert KeyService(req.market, job.id, job.data_key, 0, job.doc).step() == []  # nor by a second instance
    wk.submit(wk.train(task_id, wk.wait_key(task_id), tamper=True))
    travel(w3, spec.deadlines.challenge_window + 1)
    wk.finalize(task_id)
    with pytest.raises(ResultIntegrityError, match="hashes to"):
        job.result()


def test_bad_input_is_refused_before_anything_is_posted(stack, anvil, tmp_path):  # type: ignore[no-untyped-def]
    req, deployment, storage = stack
    before = req.market.market.jobCount()
    x, y = digits()
    spec = digits_spec()
    with pytest.raises(DataError, match=r"shape \(63,\) per row, the model expects \(64,\)"):
        req.post_job(spec, (x[:, :63], y), reward_per_task=REWARD, stake_per_task=STAKE)
    with pytest.raises(DataError, match=r"labels outside \[0, 10\): example 9 has 10, "):
        req.post_job(spec, (x, np.where(y == 9, 10, y)), reward_per_task=REWARD, stake_per_task=STAKE)
    with pytest.raises(SpecError, match="optimizer.lr"):
        bad = spec.model_dump(mode="json")
        bad["optimizer"]["lr"] = -1
        req.post_job(bad, (x, y), reward_per_task=REWARD, stake_per_task=STAKE)
    with pytest.raises(InsufficientFundsError, match="escrows"):
        req.post_job(spec, (x, y), reward_per_task=10**24, stake_per_task=STAKE)
    with pytest.raises(InsufficientFundsError, match="approve"):
        req.post_job(spec, (x, y), reward_per_task=REWARD, stake_per_task=STAKE, approve=False)
    poor = Requester(anvil.url, dev_account(9), storage, deployment, home=tmp_path / "poor")
    with pytest.raises(InsufficientFundsError, match="holds 0"):
        poor.post_job(spec, (x, y), reward_per_task=REWARD, stake_per_task=STAKE)
    from veritrain.chain import ChainClient, bind
    from veritrain.errors import ContractRevert

    owner = bind(ChainClient(anvil.url, dev_account(0), deployment, nonce_dir=tmp_path / "n"), "JobMarket")
    owner.pause()
    with pytest.raises(ContractRevert, match="EnforcedPause"):
        req.post_job(spec, (x, y), reward_per_task=REWARD, stake_per_task=STAKE)
    assert req.market.market.jobCount() == before
    assert req.store.pending() == [] and req.store.job_ids() == []
    with pytest.raises(UnknownJobError, match="no job 99"):
        req.job(99)


def test_drawn_referees_get_the_key_once_each(fresh_chain, anvil, ipfs, w3, tmp_path):  # type: ignore[no-untyped-def]
    from test_requester_support import digits_spec as spec_of

    from requester.keyservice import KeyService
    from veritrain import envelope
    from veritrain.chain import ChainClient, bind
    from veritrain.jobdoc import referee_key_context

    verifiers = [dev_account(i) for i in (4, 5, 6, 7)]
    deployment = deploy_local(fresh_chain, dev_account(0),
                              mint_to=[REQUESTER.address, ALICE.address] + [v.address for v in verifiers])
    req = Requester(anvil.url, REQUESTER, IpfsStorage(ipfs.url), deployment, home=tmp_path / "home")
    spec = spec_of(num_shards=1)
    job = req.post_job(spec, digits(), reward_per_task=REWARD, stake_per_task=STAKE)
    wk = TestWorker(anvil.url, ALICE, deployment, req.storage, tmp_path / "n-alice")
    task_id = wk.claim(job.id, 0)
    service = KeyService(req.market, job.id, job.data_key, job.record.post_block or 0, job.doc)
    assert len(service.step()) == 1
    hashes = [bytes([i + 1]) * 32 for i in range(spec.num_checkpoints)]
    tree = merkle.MerkleTree(hashes)
    from test_requester_support import WorkerRun

    wk.submit(WorkerRun(task_id, ALICE.address, tree.root, "bafkqaaa", hashes, b""))
    bound = {}
    for v in verifiers:
        c = ChainClient(anvil.url, v, deployment, nonce_dir=tmp_path / "n-verifiers")
        market, registry = bind(c, "JobMarket"), bind(c, "VerifierRegistry")
        bind(c, "DevToken", market.token()).approve(market.address, 300 * 10**18)
        registry.register(envelope.public_key_from_private(bytes(v.key)), 100 * 10**18)
        bound[v.address] = bind(c, "DisputeResolver")
    accuser = bound[verifiers[0].address]
    segment = (0, hashes[0], tree.proof(0), hashes[1], tree.proof(1))
    accuser.challengeWithProof(task_id, ALICE.address, segment, b"\xee" * 32)
    w3.provider.make_request("evm_mine", [])
    accuser.drawCommittee(1)
    delivered = service.step()
    referees = {d.party for d in delivered}
    assert {d.kind for d in delivered} == {"referee"} and len(referees) == 3
    assert verifiers[0].address not in referees  # the accuser is never a referee
    assert service.step() == [] and KeyService(req.market, job.id, job.data_key, 0, job.doc).step() == []
    events = req.market.resolver_events(0, ["RefereeKeyDelivered"])
    assert len(events) == 3
    for ev in events:
        v = next(a for a in verifiers if a.address == ev.args["referee"])
        ctx = referee_key_context(req.market.chain_id, req.market.address, 1, v.address)
        # the disputed task's shard key (never the job key)
        assert envelope.unwrap(ev.args["envelope"], bytes(v.key), ctx) == service.shard_key(task_id)
        assert service.shard_key(task_id) != job.data_key


def test_cancel_refunds_unclaimed_slots(stack):  # type: ignore[no-untyped-def]
    req, _, _ = stack
    token = req.market.token
    before = token.balanceOf(REQUESTER.address)
    sent = req.client.w3.eth.get_transaction_count(REQUESTER.address)
    job = req.post_job(digits_spec(), digits(), reward_per_task=REWARD, stake_per_task=STAKE)
    assert token.balanceOf(REQUESTER.address) == before - 2 * REWARD
    # allowance short: approve + postJob, two transactions
    assert job.record.approve_tx and req.client.w3.eth.get_transaction_count(REQUESTER.address) == sent + 2
    token.approve(req.market.address, 10 * REWARD).send()
    sent = req.client.w3.eth.get_transaction_count(REQUESTER.address)
    second = req.post_job(digits_spec(seed=9), digits(), reward_per_task=REWARD, stake_per_task=STAKE)
    assert second.record.approve_tx is None  # allowance enough: postJob alone
    assert req.client.w3.eth.get_transaction_count(REQUESTER.address) == sent + 1
    before -= 2 * REWARD
    assert job.cancel() == 2 * REWARD
    assert job.status().state == "cancelled"
    assert req.withdraw() == 2 * REWARD
    assert token.balanceOf(REQUESTER.address) == before


def test_a_job_posted_by_a_process_that_died_before_saving_is_recovered(stack, anvil, monkeypatch):  # type: ignore[no-untyped-def]
    req, deployment, storage = stack

    def die(record):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt  # the process is killed right after postJob was mined

    monkeypatch.setattr(req.store, "save", die)
    with pytest.raises(KeyboardInterrupt):
        req.post_job(digits_spec(), digits(), reward_per_task=REWARD, stake_per_task=STAKE)
    assert req.market.market.jobCount() == 1 and len(req.store.pending()) == 1
    restarted = Requester(anvil.url, REQUESTER, storage, deployment, home=req.home)
    job = restarted.job(1)  # found through the pending record and the JobPosted event
    assert job.record.post_tx and restarted.store.pending() == []
    doc = job.doc
    shard = doc.shard(0)
    from veritrain import crypto

    ct = storage.get_bytes(shard.cid)
    plain = crypto.decrypt_bytes(ct, crypto.shard_key(job.data_key, doc.binding, 0), job_id=doc.binding,
                                 shard_index=0)
    assert len(plain) > shard.examples * 64 * 4  # the recovered key opens the shards


def test_a_record_from_a_reset_chain_is_not_taken_for_the_new_job(stack, fresh_chain):  # type: ignore[no-untyped-def]
    req, _, _ = stack
    snap = fresh_chain.provider.make_request("evm_snapshot", [])["result"]
    job = req.post_job(digits_spec(), digits(), reward_per_task=REWARD, stake_per_task=STAKE)
    assert req.job(job.id).record.doc_cid == job.record.doc_cid
    fresh_chain.provider.make_request("evm_revert", [snap])  # the chain forgets the job
    for f in (req.home / "requester" / "nonces").glob("*.nonce"):
        f.unlink()  # the nonce file outlives a reset chain (see the report to the chain client)
    with pytest.raises(UnknownJobError, match="was the chain reset"):
        req.job(job.id)
    other = req.post_job(digits_spec(seed=7), digits(), reward_per_task=REWARD, stake_per_task=STAKE)
    assert other.id == job.id and req.job(job.id).record.doc_cid == other.record.doc_cid


def test_sampling_verifiers_get_the_job_key_by_the_jobs_policy_once(fresh_chain, anvil, ipfs, tmp_path):  # type: ignore[no-untyped-def]
    from test_requester_support import digits_spec as spec_of

    from requester.keyservice import KeyService
    from veritrain import envelope
    from veritrain.chain import ChainClient, bind
    from veritrain.jobdoc import verifier_key_context

    listed, other = dev_account(4), dev_account(5)
    deployment = deploy_local(fresh_chain, dev_account(0),
                              mint_to=[REQUESTER.address, listed.address, other.address])
    req = Requester(anvil.url, REQUESTER, IpfsStorage(ipfs.url), deployment, home=tmp_path / "home")
    open_spec = spec_of(num_shards=1)
    listed_spec = open_spec.model_copy(update={"verification": open_spec.verification.model_copy(
        update={"verifiers": [listed.address]})})
    private = req.post_job(listed_spec, digits(), reward_per_task=REWARD, stake_per_task=STAKE)
    public = req.post_job(open_spec, digits(), reward_per_task=REWARD, stake_per_task=STAKE)
    markets = {}
    for v in (listed, other):
        c = ChainClient(anvil.url, v, deployment, nonce_dir=tmp_path / "n-verifiers")
        market, registry = bind(c, "JobMarket"), bind(c, "VerifierRegistry")
        bind(c, "DevToken", market.token()).approve(market.address, 100 * 10**18)
        registry.register(envelope.public_key_from_private(bytes(v.key)), 100 * 10**18)
        markets[v.address] = market
        for job in (private, public):  # asked while no key service runs: caught up later
            market.requestVerifierKey(job.id)

    service = KeyService(req.market, private.id, private.data_key, private.record.post_block or 0,
                         private.doc)
    [d] = service.step()
    assert (d.kind, d.target, d.party) == ("verifier", private.id, listed.address)
    assert service.refused == {other.address}  # not on the job's list: no key, no transaction
    assert service.step() == []
    assert KeyService(req.market, private.id, private.data_key, 0, private.doc).step() == []  # never twice
    served = KeyService(req.market, public.id, public.data_key, 0, public.doc).step()
    assert {d.party for d in served} == {listed.address, other.address}  # open: any registered verifier

    m = req.market.market
    assert m.verifierKeyStatus(private.id, other.address) == 1  # still Requested
    assert m.verifierKeyStatus(private.id, listed.address) == VerifierKeyStatus.DELIVERED
    assert m.verifierKeyStatus(public.id, other.address) == VerifierKeyStatus.DELIVERED
    logs = m.web3_contract.events.VerifierKeyDelivered().get_logs(from_block=0)
    assert len(logs) == 3
    for ev in logs:
        a = ev["args"]
        v = listed if a["verifier"] == listed.address else other
        job = private if a["jobId"] == private.id else public
        ctx = verifier_key_context(req.market.chain_id, req.market.address, job.id, v.address)
        assert envelope.unwrap(bytes(a["envelope"]), bytes(v.key), ctx) == job.data_key  # the job key
