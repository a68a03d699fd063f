"""The worker on the real stack (Anvil + js-ipfs): paid, crash-resumed, racing, abandoned.

The test plays the requester with veritrain core alone (no requester/ import): it encrypts
load_digits shards, uploads them and the job document, posts the job and answers claims
with key envelopes.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from eth_utils import keccak
from sklearn.datasets import load_digits
from web3.logs import DISCARD

from veritrain import crypto, envelope, merkle
from veritrain.artifacts import abi
from veritrain.data import Dataset, encode_shard
from veritrain.deployments import save
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_local
from veritrain.jobdoc import JobDocument, ShardRef, new_nonce, worker_key_context
from veritrain.journal import Journal
from veritrain.manifest import load as load_manifest
from veritrain.spec import JobSpec, load_spec
from veritrain.starts import BoundStarts
from veritrain.storage import IpfsStorage
from veritrain.tasks import task_id_of
from worker.keystore import create_keystore
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
                 challenge_window: int = 2, redundancy: int = 1, lie_about_shards: bool = False,
                 bogus_starts: bool = False) -> None:
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
            plain = encode_shard(Dataset(x[i::spec.num_shards][:300], y[i::spec.num_shards][:300]))
            self.shards.append(plain)
            ct = crypto.encrypt_bytes(plain, crypto.shard_key(self.key, binding, i), job_id=binding,
                                      shard_index=i)
            cid = storage.put_bytes(ct)
            import hashlib

            digest = "00" * 32 if lie_about_shards else hashlib.sha256(ct).hexdigest()
            refs.append(ShardRef(index=i, cid=cid, sha256=digest, size=len(ct),
                                 examples=300))
        self.doc = JobDocument.create(spec, refs, nonce)
        assert self.doc.binding == binding
        self.spec_cid = storage.put_bytes(self.doc.to_bytes())
        slots = spec.num_shards * spec.rounds * redundancy
        _send(w3, self.acct, token.functions.approve(self.market.address, slots * reward))
        params = (self.spec_cid, self.doc.shards_root(), spec.num_shards * spec.rounds, redundancy,
                  spec.num_checkpoints, reward, stake, griefing, 0, key_window, 3600, 600, challenge_window,
                  keccak(b"bogus") if bogus_starts else BoundStarts.of(self.doc).root, False)
        receipt = _send(w3, self.acct, self.market.functions.postJob(params))
        self.job_id = self.market.events.JobPosted().process_receipt(receipt, errors=DISCARD)[0].args.jobId
        self.answered: set[tuple[int, str]] = set()
        self.from_block = receipt["blockNumber"]

    def shard_key(self, task_id: int) -> bytes:
        return crypto.shard_key(self.key, self.doc.binding, self.doc.task_key(task_id).shard)

    def answer_claims(self) -> int:
        """Deliver the key to every claim not yet answered; returns how many were answered."""
        n = 0
        for log in self.market.events.TaskClaimed().get_logs(from_block=self.from_block):
            a = log.args
            if (a.taskId, a.worker) in self.answered:
                continue
            chain_id = self.w3.eth.chain_id
            ctx = worker_key_context(chain_id, self.market.address, a.taskId, a.worker)
            env = envelope.wrap(self.shard_key(a.taskId), bytes(a.pubKey), ctx)
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
    before = token.balanceOf(acct.address)
    try:
        summary = run_with_requester(worker, req, once=True)
        task_id = task_id_of(req.job_id, 0)
        assert summary.phases == {task_id: "finalized"}, lines
        item = worker.journal.get(f"task:{task_id}")
        assert item is not None
        # the revealed root is the manifest's, and every checkpoint decrypts to its committed hash
        manifest = load_manifest(stack["storage"].get_bytes(item.data["manifest_cid"]))
        claim = worker.chain.claim_of(task_id)
        assert "0x" + bytes(claim.root).hex() == manifest.root == item.data["root"]
        from veritrain.checkpoint import checkpoint_hash
        from veritrain.jobdoc import checkpoint_binding

        ck = crypto.decrypt_bytes(stack["storage"].get_bytes(manifest.checkpoint_cids[-1]),
                                  req.shard_key(task_id),
                                  job_id=checkpoint_binding(req.doc, task_id, acct.address),
                                  shard_index=len(manifest.hashes) - 1)
        assert "0x" + checkpoint_hash(ck).hex() == manifest.hashes[-1]
        assert merkle.MerkleTree(manifest.hashes).root_hex == manifest.root
        # final: the evidence is unpinned on the node; the result (manifest, last checkpoint) is not
        ipfs = stack["storage"]
        n = len(manifest.hashes)
        assert [ipfs.pinned(c) for c in manifest.checkpoint_cids] == [False] * (n - 1) + [True]
        assert ipfs.pinned(item.data["manifest_cid"])
        assert any(f"task {task_id}: final; unpinned {n - 1} checkpoints" in x for x in lines)
        # paid: reward + stake back, then withdrawn to the wallet
        assert worker.chain.owed() == 10 * TOKEN + 5 * TOKEN
        from worker.status import status_report

        report = status_report(worker.settings, acct.address)
        assert report["tasks"][0]["phase"] == "finalized" and report["earned"] == 10 * TOKEN
        assert report["owed"] == 15 * TOKEN and report["staked"] == 0
        assert worker.withdraw() == 15 * TOKEN
        assert token.balanceOf(acct.address) == before + 10 * TOKEN
        assert worker.chain.owed() == 0
        actions = [t.action for t in worker.journal.txs(f"task:{task_id}")]
        assert actions == ["approve", "claim", "commit", "reveal", "finalize"]
        assert all(t.status == "mined" and t.tx_hash for t in worker.journal.txs(f"task:{task_id}"))
    finally:
        worker.close()


def _journal_phase(path: Path, key: str) -> str | None:
    if not path.exists():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute("SELECT phase FROM items WHERE key=?", (key,)).fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


#: A worker process whose trainer sleeps after each step (so the test can kill it mid-training).
SLOW_WORKER = """
import os, sys, time
from worker.keystore import load_account
from worker.loop import run_worker
from worker.settings import WorkerSettings
from worker.tasks import default_trainer
assert "torch" not in sys.modules, "torch must load after the job's replay profile is set"

def slow(spec, task, features, labels, directory, progress):
    def tick(step, total):
        time.sleep(0.05)
        progress(step, total)
    return default_trainer(spec, task, features, labels, directory, tick)

s = WorkerSettings()
run_worker(s, load_account(s.keystore_path, s.password.get_secret_value()), once=True, trainer=slow,
           say=lambda m: print(m, flush=True))
"""


def test_sigkill_mid_training_then_restart_gives_the_uninterrupted_root(stack: dict[str, Any]) -> None:
    spec = make_spec(steps=120, k=10)
    req = Requester(stack["w3"], stack["dep"], stack["storage"], spec)
    acct = dev_account(3)
    home = stack["tmp"] / "w3"
    create_keystore(home / "keystore.json", "pw", bytes(acct.key), iterations=2**4)
    env = {**os.environ, "VERITRAIN_WORKER_RPC_URL": stack["rpc"], "VERITRAIN_WORKER_IPFS_API": stack["ipfs"],
           "VERITRAIN_WORKER_DEPLOYMENT": str(stack["deployment"]),
           "VERITRAIN_WORKER_HOME": str(home), "VERITRAIN_WORKER_PASSWORD": "pw",
           "VERITRAIN_WORKER_POLL_INTERVAL": "0.1"}
    task_id = task_id_of(req.job_id, 0)
    acct_dir = home / f"31337-{acct.address.lower()}"
    journal = acct_dir / req.market.address.lower()[2:10] / "journal.sqlite"
    ckpts = journal.parent / "tasks" / str(task_id) / "ckpt"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WORKER], env=env, cwd=stack["tmp"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            req.answer_claims()
            done = len(list(ckpts.glob("ckpt-*.vtck"))) if ckpts.exists() else 0
            if _journal_phase(journal, f"task:{task_id}") == "training" and done >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    kept = sorted(ckpts.glob("ckpt-*.vtck"))
    assert 3 <= len(kept) < spec.num_checkpoints  # killed mid-training
    first_mtime = kept[0].stat().st_mtime_ns
    assert _journal_phase(journal, f"task:{task_id}") == "training"

    # restart through the real CLI: it must resume, not claim again
    cli = subprocess.Popen([str(Path(sys.executable).with_name("veritrain")), "worker", "run", "--once"],
                           env=env, cwd=stack["tmp"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and cli.poll() is None:
            stack["w3"].provider.make_request("evm_mine", [])
            time.sleep(0.2)
        out, err = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 0, err
    assert f"task {task_id}: finalized" in out, err
    assert "resuming training from the local checkpoints" in err
    assert kept[0].stat().st_mtime_ns == first_mtime  # finished training was not redone

    # the root equals an uninterrupted run of the same task
    from veritrain.data import decode_shard
    from veritrain.training.runner import run_in_profile

    shard = decode_shard(req.shards[0])
    features, labels = shard.features, shard.labels
    hashes = run_in_profile(spec, "train", task=req.doc.task_key(0), features=features, labels=labels,
                            directory=stack["tmp"] / "reference")
    claim = req.market.functions.getClaim(task_id, acct.address).call()
    assert "0x" + bytes(claim[5]).hex() == merkle.MerkleTree(hashes).root_hex
    claims = req.market.events.TaskClaimed().get_logs(from_block=req.from_block)
    assert [c.args.worker for c in claims] == [acct.address]  # claimed exactly once
    j = Journal(journal)
    try:
        assert len([t for t in j.txs(f"task:{task_id}", "claim")]) == 1
    finally:
        j.close()


def test_two_workers_racing_for_one_task_one_wins_one_refused_cleanly(stack: dict[str, Any]) -> None:
    spec = make_spec()
    req = Requester(stack["w3"], stack["dep"], stack["storage"], spec)
    workers = [Worker(settings_for(stack, f"race{i}"), dev_account(i)) for i in (2, 3)]
    try:
        offers = [w.pick() for w in workers]
        assert all(o is not None and o.task_id == offers[0].task_id for o in offers)  # type: ignore[union-attr]
        items = [w.take(o) for w, o in zip(workers, offers, strict=True)]  # type: ignore[arg-type]
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def claim(w: Worker, it: Any) -> None:
            barrier.wait()
            try:
                w.advance(it)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=claim, args=(w, it)) for w, it in zip(workers, items, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        got = [w.journal.get(it.key) for w, it in zip(workers, items, strict=True)]
        phases = sorted(g.phase for g in got if g is not None)
        assert phases == ["awaiting_key", "not_claimed"]
        loser = next(g for g in got if g is not None and g.phase == "not_claimed")
        assert "somebody else took the slot first" in loser.data["reason"]
        task = req.market.functions.getTask(offers[0].task_id).call()  # type: ignore[union-attr]
        assert task[1] == 1  # one active claim
        # the loser has no stake locked and looks for other work; none is open
        loser_w = workers[[g.phase for g in got].index("not_claimed")]  # type: ignore[union-attr]
        assert loser_w.chain.owed() == 0 and loser_w.pick() is None
    finally:
        for w in workers:
            w.close()


def test_key_never_delivered_worker_abandons_and_gets_griefing_fee(stack: dict[str, Any]) -> None:
    spec = make_spec()
    req = Requester(stack["w3"], stack["dep"], stack["storage"], spec, key_window=30)
    acct = dev_account(4)
    worker = Worker(settings_for(stack, "w4"), acct)
    out: dict[str, Any] = {}
    t = threading.Thread(target=lambda: out.update(summary=worker.run(once=True)))
    t.start()
    try:
        task_id = task_id_of(req.job_id, 0)
        deadline = time.monotonic() + 60
        while worker.journal.get(f"task:{task_id}") is None or \
                worker.journal.get(f"task:{task_id}").phase != "awaiting_key":  # type: ignore[union-attr]
            assert time.monotonic() < deadline and t.is_alive()
            time.sleep(0.05)
        time.sleep(0.5)
        assert worker.journal.get(f"task:{task_id}").phase == "awaiting_key"  # type: ignore[union-attr]
        stack["w3"].provider.make_request("evm_increaseTime", [31])
        stack["w3"].provider.make_request("evm_mine", [])
        t.join(60)
        assert not t.is_alive()
    finally:
        worker.stop.set()
        t.join(10)
    try:
        assert out["summary"].phases == {task_id: "abandoned"}
        item = worker.journal.get(f"task:{task_id}")
        assert item is not None and item.data["griefing_fee"] == 2 * TOKEN
        assert worker.chain.owed() == 5 * TOKEN + 2 * TOKEN  # stake back + griefing fee
        assert [t.action for t in worker.journal.txs(f"task:{task_id}")] == ["approve", "claim", "abandon"]
    finally:
        worker.close()


def test_shard_failing_its_integrity_check_fails_the_task_with_a_reason(stack: dict[str, Any]) -> None:
    req = Requester(stack["w3"], stack["dep"], stack["storage"], make_spec(), lie_about_shards=True)
    worker = Worker(settings_for(stack, "w5"), dev_account(5))
    try:
        summary = run_with_requester(worker, req, once=True)
        task_id = task_id_of(req.job_id, 0)
        assert summary.phases == {task_id: "failed"}
        reason = worker.journal.get(f"task:{task_id}").data["reason"]  # type: ignore[union-attr]
        assert "shard 0" in reason and "promises" in reason and "cannot be trained" in reason
        assert not (worker.task_dir(task_id) / "shard.enc").exists()  # nothing unverified kept
        assert not (worker.task_dir(task_id) / "ckpt").exists()  # and nothing trained
    finally:
        worker.close()


def test_a_job_with_bogus_bound_starts_is_refused_before_claiming(stack: dict[str, Any]) -> None:
    """The requester's attack: it binds starts that are not its document's, so an honest worker
    that starts where the document says could be slashed by proof (and the stake collected).
    Round-0 starts are public: the worker computes them and never claims such a job, so it
    has nothing at stake. Fails without the worker's start check (it would claim and train)."""
    req = Requester(stack["w3"], stack["dep"], stack["storage"], make_spec(), bogus_starts=True)
    said: list[str] = []
    worker = Worker(settings_for(stack, "w3b"), dev_account(3), say=said.append)
    try:
        before = worker.chain.balance()
        summary = run_with_requester(worker, req, once=True)
        assert summary.taken == [] and summary.phases == {}
        assert worker.chain.balance() == before and worker.chain.owed() == 0  # no stake ever locked
        assert not req.market.events.TaskClaimed().get_logs(from_block=req.from_block)
        assert any("bound starts" in line for line in said), said  # the operator is told why
    finally:
        worker.close()
