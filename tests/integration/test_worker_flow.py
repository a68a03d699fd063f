"""The worker on the real stack (Anvil + js-ipfs): paid, crash-resumed, racing, abandoned.

The test plays the requester with veritrain core alone (no requester/ import): it encrypts
load_digits shards, uploads them and the job document, posts the job and answers claims
with key envelopes.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits
from web3.logs import DISCARD

from veritrain import crypto, envelope, merkle
from veritrain.artifacts import abi
from veritrain.deployments import save
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_local
from veritrain.jobdoc import JobDocument, ShardRef, new_nonce, worker_key_context
from veritrain.manifest import load as load_manifest
from veritrain.spec import JobSpec, load_spec
from veritrain.storage import IpfsStorage
from worker.loop import Worker
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "digits-mlp.yaml"
TOKEN = 10**18
REQUESTER = 1


def _send(w3: Any, acct: Any, call: Any) -> Any:
    tx = call.build_transaction({"from": acct.address,
                                 "nonce": w3.eth.get_transaction_count(acct.address, "pending")})
    h = w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(h, poll_latency=0.01)
    assert receipt["status"] == 1
    return receipt


def make_spec(steps: int = 60, k: int = 10, shards: int = 1, hidden: int = 32) -> JobSpec:
    from veritrain.training.profile import current_profile

    raw = yaml.safe_load(EXAMPLE.read_text())
    raw.update(steps_per_task=steps, checkpoint_interval=k, num_shards=shards)
    raw["model"]["args"]["hidden"] = [hidden]
    raw["replay"] = current_profile(threads=1).model_dump()
    return load_spec(raw)


class Requester:
    """Posts one job and answers claims: what a requester's SDK does, done with core code."""

    def __init__(self, w3: Any, dep: Any, storage: IpfsStorage, spec: JobSpec, *, reward: int = 10 * TOKEN,
                 stake: int = 5 * TOKEN, griefing: int = 2 * TOKEN, key_window: int = 600,
                 challenge_window: int = 2, redundancy: int = 1) -> None:
        self.w3, self.storage, self.spec = w3, storage, spec
        self.acct = dev_account(REQUESTER)
        self.market = w3.eth.contract(address=dep.address("JobMarket"), abi=abi("JobMarket"))
        token = w3.eth.contract(address=dep.address("DevToken"), abi=abi("DevToken"))
        self.key = crypto.generate_data_key()
        x, y = load_digits(return_X_y=True)
        x = (x / 16.0).astype(np.float32)
        y = y.astype(np.int64)
        nonce = new_nonce()
        from veritrain.jobdoc import binding_for

        binding = binding_for(spec, nonce)
        refs, self.shards = [], []
        for i in range(spec.num_shards):
            buf = io.BytesIO()
            np.savez(buf, features=x[i::spec.num_shards][:300], labels=y[i::spec.num_shards][:300])
            self.shards.append(buf.getvalue())
            ct = crypto.encrypt_bytes(buf.getvalue(), self.key, job_id=binding, shard_index=i)
            cid = storage.put_bytes(ct)
            import hashlib

            refs.append(ShardRef(index=i, cid=cid, sha256=hashlib.sha256(ct).hexdigest(), size=len(ct),
                                 examples=300))
        self.doc = JobDocument.create(spec, refs, nonce)
        assert self.doc.binding == binding
        self.spec_cid = storage.put_bytes(self.doc.to_bytes())
        slots = spec.num_shards * spec.rounds * redundancy
        _send(w3, self.acct, token.functions.approve(self.market.address, slots * reward))
        params = (self.spec_cid, self.doc.shards_root(), spec.num_shards * spec.rounds, redundancy,
                  spec.num_checkpoints, reward, stake, griefing, 0, key_window, 3600, 600, challenge_window)
        receipt = _send(w3, self.acct, self.market.functions.postJob(params))
        self.job_id = self.market.events.JobPosted().process_receipt(receipt, errors=DISCARD)[0].args.jobId
        self.answered: set[tuple[int, str]] = set()
        self.from_block = receipt["blockNumber"]

    def answer_claims(self) -> int:
        """Deliver the key to every claim not yet answered; returns how many were answered."""
        n = 0
        for log in self.market.events.TaskClaimed().get_logs(from_block=self.from_block):
            a = log.args
            if (a.taskId, a.worker) in self.answered:
                continue
            chain_id = self.w3.eth.chain_id
            ctx = worker_key_context(chain_id, self.market.address, a.taskId, a.worker)
            env = envelope.wrap(self.key, bytes(a.pubKey), ctx)
            _send(self.w3, self.acct, self.market.functions.deliverKey(a.taskId, a.worker, env))
            self.answered.add((a.taskId, a.worker))
            n += 1
        return n


@pytest.fixture
def stack(fresh_chain: Any, ipfs: Any, anvil: Any, tmp_path: Path) -> dict[str, Any]:
    w3 = fresh_chain
    dep = deploy_local(w3, dev_account(0), mint_to=[dev_account(i).address for i in range(1, 6)])
    path = save(dep, tmp_path / "deployment.json")
    return {"w3": w3, "dep": dep, "deployment": path, "rpc": anvil.url, "ipfs": ipfs.url,
            "storage": IpfsStorage(ipfs.url), "tmp": tmp_path}


def settings_for(stack: dict[str, Any], name: str, **over: Any) -> WorkerSettings:
    return WorkerSettings(rpc_url=stack["rpc"], deployment=stack["deployment"], ipfs_api=stack["ipfs"],
                          home=stack["tmp"] / name, poll_interval=0.1, **over)


def run_with_requester(worker: Worker, req: Requester, **kw: Any) -> Any:
    """Run the worker loop in a thread while the requester answers claims."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["summary"] = worker.run(**kw)
        except BaseException as exc:  # surfaced below
            out["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    deadline = time.monotonic() + 120
    while t.is_alive() and time.monotonic() < deadline:
        req.answer_claims()
        req.w3.provider.make_request("evm_mine", [])  # a chain that keeps producing blocks
        time.sleep(0.2)
    worker.stop.set()
    t.join(30)
    if "error" in out:
        raise out["error"]
    return out["summary"]


def test_worker_completes_a_task_and_is_paid(stack: dict[str, Any]) -> None:
    spec = make_spec()
    req = Requester(stack["w3"], stack["dep"], stack["storage"], spec)
    acct = dev_account(2)
    lines: list[str] = []
    worker = Worker(settings_for(stack, "w2"), acct, say=lines.append)
    token = worker.chain.token
    before = token.functions.balanceOf(acct.address).call()
    try:
        summary = run_with_requester(worker, req, once=True)
        task_id = (req.job_id << 32) | 0
        assert summary.phases == {task_id: "finalized"}, lines
        item = worker.journal.get(f"task:{task_id}")
        assert item is not None
        # the revealed root is the manifest's, and every checkpoint decrypts to its committed hash
        manifest = load_manifest(stack["storage"].get_bytes(item.data["manifest_cid"]))
        claim = worker.chain.claim_of(task_id)
        assert "0x" + bytes(claim.root).hex() == manifest.root == item.data["root"]
        from veritrain.checkpoint import checkpoint_hash
        from veritrain.jobdoc import checkpoint_binding

        ck = crypto.decrypt_bytes(stack["storage"].get_bytes(manifest.checkpoint_cids[-1]), req.key,
                                  job_id=checkpoint_binding(req.doc, task_id, acct.address),
                                  shard_index=len(manifest.hashes) - 1)
        assert "0x" + checkpoint_hash(ck).hex() == manifest.hashes[-1]
        assert merkle.MerkleTree(manifest.hashes).root_hex == manifest.root
        # paid: reward + stake back, then withdrawn to the wallet
        assert worker.chain.owed() == 10 * TOKEN + 5 * TOKEN
        assert worker.withdraw() == 15 * TOKEN
        assert token.functions.balanceOf(acct.address).call() == before + 10 * TOKEN
        assert worker.chain.owed() == 0
        actions = [t.action for t in worker.journal.txs(f"task:{task_id}")]
        assert actions == ["approve", "claim", "commit", "reveal", "finalize"]
        assert all(t.status == "mined" and t.tx_hash for t in worker.journal.txs(f"task:{task_id}"))
    finally:
        worker.close()
