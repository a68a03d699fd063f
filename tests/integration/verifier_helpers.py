"""Drive a requester and workers with veritrain core only (roles never import each other),
so verifier integration tests run the whole protocol on the real Anvil and IPFS node.

requester: shard + encrypt + upload, job document, postJob, deliverKey, deliverRefereeKey,
deliverVerifierKey for sampling verifiers; worker: claim, train (honest, or with a cheat from
adversary.cheats), upload encrypted checkpoints + manifest, commit, reveal.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from eth_abi import encode
from sklearn.datasets import load_digits
from web3 import Web3

from veritrain import crypto, envelope
from veritrain.data import Dataset, encode_shard
from veritrain.deployments import Deployment
from veritrain.dev.accounts import dev_account
from veritrain.jobdoc import (
    JobDocument,
    ShardRef,
    checkpoint_binding,
    new_nonce,
    referee_key_context,
    verifier_key_context,
    worker_key_context,
)
from veritrain.manifest import Manifest
from veritrain.spec import JobSpec, load_spec
from veritrain.starts import BoundStarts
from veritrain.storage import Storage
from veritrain.tasks import task_id_of
from veritrain.training.sinks import MemorySink

ROOT = Path(__file__).resolve().parents[2]
REWARD = 50 * 10**18
STAKE = 200 * 10**18


def send(w3: Web3, acct: Any, call: Any) -> Any:
    tx = call.build_transaction({"from": acct.address,
                                 "nonce": w3.eth.get_transaction_count(acct.address, "pending")})
    h = w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(h, poll_latency=0.005)
    assert receipt["status"] == 1, f"transaction reverted: {call.fn_name}"
    return receipt


def contracts(w3: Web3, dep: Deployment) -> dict[str, Any]:
    from veritrain.artifacts import artifact

    return {name: w3.eth.contract(address=addr, abi=artifact(name)["abi"])
            for name, addr in dep.contracts.items()}


def small_spec(num_shards: int = 2, **overrides: Any) -> JobSpec:
    from veritrain.training.profile import current_profile

    raw = yaml.safe_load((ROOT / "examples" / "digits-mlp.yaml").read_text())
    raw.update(steps_per_task=40, checkpoint_interval=10, num_shards=num_shards, batch_size=16)
    raw.update(overrides)
    raw["model"]["args"]["hidden"] = [32]
    raw["replay"] = current_profile(threads=1).model_dump()
    return load_spec(raw)


def digits_shards(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype(np.float32)[:400], y.astype(np.int64)[:400]
    return [(x[i::n], y[i::n]) for i in range(n)]


@dataclass
class Job:
    job_id: int
    doc: JobDocument
    spec_cid: str
    key: bytes
    shards: list[tuple[np.ndarray, np.ndarray]]

    def task_id(self, index: int) -> int:
        return task_id_of(self.job_id, index)

    def shard_key(self, task_id: int) -> bytes:
        """What a worker or referee of ``task_id`` is given: its shard's key, not the job key."""
        return crypto.shard_key(self.key, self.doc.binding, self.doc.task_key(task_id).shard)


@dataclass
class Requester:
    w3: Web3
    dep: Deployment
    storage: Storage
    acct: Any = field(default_factory=lambda: dev_account(1))

    def __post_init__(self) -> None:
        self.c = contracts(self.w3, self.dep)

    def post_job(self, spec: JobSpec, *, challenge_window: int = 3600) -> Job:
        key = crypto.generate_data_key()
        nonce = new_nonce()
        from veritrain.jobdoc import binding_for

        binding = binding_for(spec, nonce)
        shards = digits_shards(spec.num_shards)
        refs = []
        for i, (x, y) in enumerate(shards):
            ct = crypto.encrypt_bytes(encode_shard(Dataset(x, y)), crypto.shard_key(key, binding, i),
                                      job_id=binding, shard_index=i)
            cid = self.storage.put_bytes(ct)
            refs.append(ShardRef(index=i, cid=cid, sha256=hashlib.sha256(ct).hexdigest(), size=len(ct),
                                 examples=len(x)))
        doc = JobDocument.create(spec, refs, nonce)
        spec_cid = self.storage.put_bytes(doc.to_bytes())
        tasks = spec.rounds * spec.num_shards
        pool = 10 * 10**18 * tasks
        escrow = tasks * spec.redundancy * REWARD + pool
        market = self.c["JobMarket"]
        # with room for a jackpot fee (a deployment with forced errors on adds up to every reward)
        approve = self.c["DevToken"].functions.approve(market.address, escrow + tasks * REWARD)
        send(self.w3, self.acct, approve)
        params = (spec_cid, doc.shards_root(), tasks, spec.redundancy, spec.num_checkpoints, REWARD, STAKE,
                  REWARD // 10, pool, 600, 3600, 600, challenge_window, BoundStarts.of(doc).root, False)
        send(self.w3, self.acct, market.functions.postJob(params))
        job_id = market.functions.jobCount().call()
        return Job(job_id, doc, spec_cid, key, shards)

    def deliver_key(self, job: Job, task_id: int, worker: Any) -> None:
        pub = envelope.public_key_from_private(bytes(worker.key))
        ctx = worker_key_context(self.w3.eth.chain_id, self.c["JobMarket"].address, task_id, worker.address)
        env = envelope.wrap(job.shard_key(task_id), pub, ctx)
        send(self.w3, self.acct, self.c["JobMarket"].functions.deliverKey(task_id, worker.address, env))

    def deliver_verifier_keys(self, job: Job) -> list[str]:
        """Answer every pending ``VerifierKeyRequested`` on ``job`` with the job key (on-chain)."""
        market = self.c["JobMarket"]
        served = []
        for ev in market.events.VerifierKeyRequested().get_logs(from_block=0,
                                                               argument_filters={"jobId": job.job_id}):
            v = ev["args"]["verifier"]
            if market.functions.verifierKeyStatus(job.job_id, v).call() != 1:
                continue
            ctx = verifier_key_context(self.w3.eth.chain_id, market.address, job.job_id, v)
            env = envelope.wrap(job.key, bytes(ev["args"]["pubKey"]), ctx)
            send(self.w3, self.acct, market.functions.deliverVerifierKey(job.job_id, v, env))
            served.append(v)
        return served

    def deliver_referee_keys(self, job: Job, dispute_id: int) -> list[str]:
        resolver = self.c["DisputeResolver"]
        referees = resolver.functions.getBallots(dispute_id).call()[0]
        key = job.shard_key(resolver.functions.getDispute(dispute_id).call()[0])  # the disputed task's
        for r in referees:
            pub = self.c["VerifierRegistry"].functions.getVerifier(r).call()[4]
            ctx = referee_key_context(self.w3.eth.chain_id, self.c["JobMarket"].address, dispute_id, r)
            send(self.w3, self.acct,
                 resolver.functions.deliverRefereeKey(dispute_id, r, envelope.wrap(key, pub, ctx)))
        return list(referees)


@dataclass
class Worker:
    w3: Web3
    dep: Deployment
    storage: Storage
    acct: Any

    def __post_init__(self) -> None:
        self.c = contracts(self.w3, self.dep)

    def claim(self, task_id: int) -> None:
        market = self.c["JobMarket"]
        send(self.w3, self.acct, self.c["DevToken"].functions.approve(market.address, STAKE))
        pub = envelope.public_key_from_private(bytes(self.acct.key))
        send(self.w3, self.acct, market.functions.claim(task_id, pub, bytes(32)))

    def train_and_submit(self, job: Job, task_index: int, cheat: Any = None) -> Manifest:
        """Train (honestly, or with ``cheat``), upload encrypted checkpoints and the manifest,
        commit and reveal. Returns the manifest."""
        from adversary.cheats import dishonest_train
        from veritrain.training.engine import train_task

        spec, task_id = job.doc.spec, job.task_id(task_index)
        task = job.doc.task_key(task_index)
        x, y = job.shards[task.shard]
        sink = MemorySink()
        dp_key = job.shard_key(task_id) if spec.privacy.dp_sgd is not None else None  # DP noise's secret
        if cheat is None:
            hashes = train_task(spec, task, x, y, sink, dp_key=dp_key)
        else:
            hashes = dishonest_train(spec, task, x, y, cheat, sink, dp_key)
        binding = checkpoint_binding(job.doc, task_id, self.acct.address)
        key = job.shard_key(task_id)
        cids = [self.storage.put_bytes(crypto.encrypt_bytes(sink.data(i), key, job_id=binding, shard_index=i))
                for i in range(len(hashes))]
        m = Manifest.build(spec_cid=job.spec_cid, job_id=job.job_id, task_id=task_id,
                           worker=self.acct.address, k=spec.checkpoint_interval, hashes=hashes,
                           checkpoint_cids=cids)
        manifest_cid = self.storage.put_bytes(m.canonical_json())
        salt = os.urandom(32)
        root = m.root_bytes()
        commitment = Web3.keccak(encode(["bytes32", "address", "bytes32"], [root, self.acct.address, salt]))
        market = self.c["JobMarket"]
        send(self.w3, self.acct, market.functions.commit(task_id, commitment))
        send(self.w3, self.acct, market.functions.reveal(task_id, root, salt, manifest_cid))
        return m


def time_travel(w3: Web3, seconds: int) -> None:
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])


def balance(w3: Web3, dep: Deployment, who: str) -> int:
    return int(contracts(w3, dep)["DevToken"].functions.balanceOf(who).call())
