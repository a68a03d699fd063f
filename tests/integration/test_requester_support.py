"""Support for the requester's integration tests (no tests here).

A minimal honest worker driven with veritrain core only (roles never import each other):
claim -> wait for the key envelope -> decrypt the shard -> train with veritrain.training ->
encrypt and upload checkpoints and the manifest -> commit -> reveal. Plus a deployed stack,
a digits job spec that this process can train under, and time travel.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from eth_abi import encode as abi_encode
from sha3 import keccak_256

from veritrain import crypto, envelope
from veritrain.jobdoc import JobDocument, checkpoint_binding, worker_key_context
from veritrain.manifest import Manifest
from veritrain.spec import JobSpec, TaskKey, load_spec
from veritrain.tasks import split_task_id, task_id_of

ROOT = Path(__file__).resolve().parents[2]
SPEC_YAML = ROOT / "examples" / "digits-mlp.yaml"
REWARD = 10 * 10**18
STAKE = 5 * 10**18


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def digits_spec(**overrides: Any) -> JobSpec:
    """The example spec, short, with the replay profile this test process honours."""
    import yaml

    from veritrain.training.profile import current_profile

    raw = yaml.safe_load(SPEC_YAML.read_text())
    raw.update(steps_per_task=40, checkpoint_interval=20, batch_size=32)
    raw["optimizer"] = {"name": "sgd", "lr": 0.1, "momentum": 0.9}
    raw["model"] = {"name": "mlp", "args": {"hidden": [32]}}
    raw["replay"] = current_profile(threads=1).model_dump(mode="json")
    raw.update(overrides)
    return load_spec(raw)


def write_spec(spec: JobSpec, path: Path) -> Path:
    import json

    path.write_text(json.dumps(spec.model_dump(mode="json")))
    return path


def worker_env(account: Any, work: Path, *, rpc_url: str, deployment: Path, ipfs_url: str) -> dict[str, str]:
    """The environment of a ``veritrain worker run`` process for ``account`` (keystore and home
    under ``work``)."""
    import json

    from eth_account import Account

    keystore = work / "worker-keystore.json"
    keystore.write_text(json.dumps(Account.encrypt(bytes(account.key), "pw", iterations=2)))
    return {**os.environ, "VERITRAIN_RPC_URL": rpc_url, "VERITRAIN_DEPLOYMENT": str(deployment),
            "VERITRAIN_IPFS_API": ipfs_url, "VERITRAIN_WORKER_HOME": str(work / "worker"),
            "VERITRAIN_WORKER_KEYSTORE": str(keystore), "VERITRAIN_WORKER_PASSWORD": "pw",
            "VERITRAIN_WORKER_POLL_INTERVAL": "0.2"}


def wait_with_clock(w3: Any, proc: Any, timeout: float) -> None:
    """Mine a block every half second (chain time follows the clock) until ``proc`` exits or
    ``timeout`` passes; a process still running then is killed."""
    try:
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            w3.provider.make_request("evm_mine", [])
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def run_worker_process(job: Any, w3: Any, account: Any, work: Path, *, rpc_url: str, deployment: Path,
                       ipfs_url: str, args: list[str], timeout: float) -> tuple[int | None, str, list[Any]]:
    """Run ``veritrain worker run ARGS`` as its own process (keystore, home and log under
    ``work``) while ``job.serve_keys()`` answers its claims and the chain's clock follows the
    wall clock. Returns its exit code, its output and the key service's errors."""
    import subprocess
    import sys

    env = worker_env(account, work, rpc_url=rpc_url, deployment=deployment, ipfs_url=ipfs_url)
    log = work / "worker.log"
    with job.serve_keys(interval=0.2) as keys, open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "veritrain.cli", "worker", "run", *args],
                                env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        wait_with_clock(w3, proc, timeout)
    return proc.returncode, log.read_text(), list(keys.errors)


def travel(w3: Any, seconds: int) -> None:
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])


@dataclass
class WorkerRun:
    task_id: int
    worker: str
    root: bytes
    manifest_cid: str
    hashes: list[bytes]
    final_state: bytes


class TestWorker:
    """An honest (or, with ``tamper``, lying) worker on one account."""

    __test__ = False  # not a pytest class

    def __init__(self, rpc_url: str, account: Any, deployment: Any, storage: Any, nonce_dir: Path) -> None:
        from veritrain.chain import ChainClient, bind

        self.account = account
        self.storage = storage
        self.client = ChainClient(rpc_url, account, deployment, nonce_dir=nonce_dir)
        self.market = bind(self.client, "JobMarket", deployment.address("JobMarket"))
        self.token = bind(self.client, "DevToken", self.market.token())

    def claim(self, job_id: int, index: int) -> int:
        task_id = task_id_of(job_id, index)
        job = self.market.getJob(job_id)
        self.token.approve(self.market.address, job[5])  # stakePerTask
        self.market.claim(task_id, envelope.public_key_from_private(bytes(self.account.key)), bytes(32))
        return task_id

    def wait_key(self, task_id: int, timeout: float = 30.0) -> bytes:
        deadline = time.monotonic() + timeout
        poller = self.market.events(0, names=["KeyDelivered"])
        while time.monotonic() < deadline:
            for ev in poller.poll():
                if int(ev.args["taskId"]) == task_id and ev.args["worker"] == self.account.address:
                    ctx = worker_key_context(self.client.chain_id, self.market.address, task_id,
                                             self.account.address)
                    return envelope.unwrap(ev.args["envelope"], bytes(self.account.key), ctx)
            time.sleep(0.1)
        raise AssertionError(f"no key for task {task_id} within {timeout} s")

    def train(self, task_id: int, key: bytes, tamper: bool = False) -> WorkerRun:
        from veritrain.data import decode_shard
        from veritrain.training.engine import train_task
        from veritrain.training.sinks import MemorySink

        job_id, index = split_task_id(task_id)
        spec_cid = self.market.getJob(job_id)[-1]
        doc = JobDocument.from_bytes(self.storage.get_bytes(spec_cid))
        ref = doc.shard(index)
        plain = crypto.decrypt_bytes(self.storage.get_bytes(ref.cid), key, job_id=doc.binding,
                                     shard_index=index)
        shard = decode_shard(plain)
        sink = MemorySink()
        hashes = train_task(doc.spec, TaskKey(round=0, shard=index), shard.features, shard.labels, sink)
        binding = checkpoint_binding(doc, task_id, self.account.address)
        cids = []
        for i in range(len(hashes)):
            data = sink.data(i)
            if tamper and i == len(hashes) - 1:
                data = sink.data(i - 1)  # serve other bytes than the committed h_n
            ct = crypto.encrypt_bytes(data, key, job_id=binding, shard_index=i)
            cids.append(self.storage.put_bytes(ct))
        m = Manifest.build(spec_cid=spec_cid, job_id=job_id, task_id=task_id, worker=self.account.address,
                           k=doc.spec.checkpoint_interval, hashes=hashes, checkpoint_cids=cids)
        mcid = self.storage.put_bytes(m.canonical_json())
        final = sink.data(len(hashes) - 1)
        return WorkerRun(task_id, self.account.address, m.root_bytes(), mcid, hashes, final)

    def submit(self, run: WorkerRun) -> None:
        salt = os.urandom(32)
        commitment = keccak_256(abi_encode(["bytes32", "address", "bytes32"],
                                           [run.root, self.account.address, salt])).digest()
        self.market.commit(run.task_id, commitment)
        self.market.reveal(run.task_id, run.root, salt, run.manifest_cid)

    def finalize(self, task_id: int) -> None:
        self.market.finalize(task_id, self.account.address)
