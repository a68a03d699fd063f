"""DEV/BENCH ONLY: a cheating worker process for the cheats ``python -m adversary worker`` lacks.

    python -m adversary standalone --kind other-data|copy-root --job ID --dev-account N [--max-tasks M]

Built on the core alone (the same formats the worker role uses, docs/worker.md "Formats used"):
claim an open task of the job, wait for ``KeyDelivered``, fetch and decrypt the shard, then

- ``other-data``: train, but segment ``--segment`` on other examples than the shard
  (public digits rows; :class:`adversary.cheats.OtherData`), carrying on honestly after;
- ``copy-root``: train nothing: take another worker's revealed result on another task of the
  same job and reveal its root as its own. Since per-shard keys (5b0b68e) a worker holds only
  its own shard's key, so a copier can neither read the other task's checkpoints nor produce
  checkpoints that hash to the copied root under its own key; what it *can* do is publish a
  manifest of its own (its task id and address, so the verifier's manifest checks pass) that
  lists the other result's hashes and checkpoint CIDs -- the copied root -- and reveal that.
  (Copying within one shard would need a second result on the same shard: in a single-round
  job only a replicated task has one, and commit-reveal hides it until the copier commits.)

upload the checkpoints (other-data) and the manifest, commit, reveal. It answers no dispute
(the requester's key service hands referees their keys). Settings: ``VERITRAIN_RPC_URL`` (one
URL, or a comma-separated failover list as a network profile sets it), ``VERITRAIN_DEPLOYMENT``,
``VERITRAIN_IPFS_API``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

KINDS = ("other-data", "copy-root")


class Cheater:
    def __init__(self, kind: str, job_id: int, index: int, segment: int) -> None:
        from web3 import Web3

        from veritrain.artifacts import artifact
        from veritrain.chain.provider import FailoverProvider
        from veritrain.deployments import load
        from veritrain.dev.accounts import dev_account
        from veritrain.storage import IpfsStorage

        self.kind, self.job_id, self.segment = kind, job_id, segment
        from veritrain.netprofile import split_urls

        # the profile's failover list, rate limits waited out (FailoverProvider)
        self.w3 = Web3(FailoverProvider(split_urls(os.environ["VERITRAIN_RPC_URL"]), request_timeout=60))
        dep = load(Path(os.environ["VERITRAIN_DEPLOYMENT"]))
        self.market = self.w3.eth.contract(
            address=Web3.to_checksum_address(dep.address("JobMarket")), abi=artifact("JobMarket")["abi"]
        )
        self.token = self.w3.eth.contract(
            address=Web3.to_checksum_address(dep.address("DevToken")), abi=artifact("DevToken")["abi"]
        )
        self.acct = dev_account(index)
        self.storage = IpfsStorage(os.environ["VERITRAIN_IPFS_API"])
        from veritrain.chain.views import Job

        job = Job.of(self.market.functions.getJob(job_id).call())  # by field name, not position
        self.task_count, self.stake, self.spec_cid = job.task_count, job.stake_per_task, job.spec_cid
        from veritrain.jobdoc import JobDocument

        self.doc = JobDocument.from_bytes(self.storage.get_bytes(self.spec_cid), self.spec_cid)

    def send(self, call: Any) -> Any:
        tx = call.build_transaction(
            {
                "from": self.acct.address,
                "nonce": self.w3.eth.get_transaction_count(self.acct.address, "pending"),
            }
        )
        h = self.w3.eth.send_raw_transaction(self.acct.sign_transaction(tx).raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(h, timeout=120, poll_latency=0.05)
        if receipt["status"] != 1:
            raise RuntimeError(f"{call.fn_name} reverted")
        return receipt

    def claim_one(self) -> int | None:
        from veritrain import envelope
        from veritrain.tasks import task_id_of

        pub = envelope.public_key_from_private(bytes(self.acct.key))
        allowance = self.token.functions.allowance(self.acct.address, self.market.address).call()
        if allowance < self.stake:
            self.send(self.token.functions.approve(self.market.address, 10**30))
        for index in range(self.task_count):
            tid = task_id_of(self.job_id, index)
            try:
                self.market.functions.claim(tid, pub, bytes(32)).call({"from": self.acct.address})
            except Exception:  # noqa: BLE001 - taken, closed, or not claimable: try the next
                continue
            try:
                self.send(self.market.functions.claim(tid, pub, bytes(32)))
            except Exception:  # noqa: BLE001 - lost a race for the slot
                continue
            return tid
        return None

    def wait_key(self, tid: int, timeout: float = 300) -> bytes:
        from veritrain import envelope
        from veritrain.jobdoc import worker_key_context

        deadline = time.monotonic() + timeout
        start = max(0, self.w3.eth.block_number - 200)
        while time.monotonic() < deadline:
            logs = self.market.events.KeyDelivered().get_logs(
                from_block=start, argument_filters={"taskId": tid, "worker": self.acct.address}
            )
            if logs:
                ctx = worker_key_context(self.w3.eth.chain_id, self.market.address, tid, self.acct.address)
                return envelope.unwrap(bytes(logs[-1]["args"]["envelope"]), bytes(self.acct.key), ctx)
            time.sleep(0.5)
        raise TimeoutError(f"no key for task {tid}")

    def copied(self, tid: int) -> tuple[list[bytes], list[str], str]:
        """(hashes, checkpoint CIDs, source) of another worker's revealed result on another task
        of this job: what a copier can read without any key (the manifest is public)."""
        from veritrain.manifest import load as load_manifest
        from veritrain.tasks import split_task_id

        while True:
            for ev in self.market.events.ResultRevealed().get_logs(from_block=0):
                other, who = int(ev["args"]["taskId"]), str(ev["args"]["worker"])
                if other != tid and split_task_id(other)[0] == self.job_id and who != self.acct.address:
                    m = load_manifest(self.storage.get_bytes(ev["args"]["manifestCid"]))
                    hashes = [m.hash_bytes(i) for i in range(m.n_checkpoints)]
                    return hashes, list(m.checkpoint_cids), f"task {other & 0xFFFFFFFF} of {who}"
            time.sleep(1.0)

    def chain_for(self, tid: int, key: bytes) -> list[bytes]:
        """The plaintext checkpoints this (other-data) cheater will claim as its own."""
        import numpy as np
        from sklearn.datasets import load_digits

        from adversary import cheats as adversary
        from veritrain import crypto
        from veritrain.data import decode_shard
        from veritrain.spec import TaskKey
        from veritrain.tasks import split_task_id
        from veritrain.training import profile
        from veritrain.training.sinks import MemorySink

        spec = self.doc.spec
        index = split_task_id(tid)[1]
        task = TaskKey(round=index // spec.num_shards, shard=index % spec.num_shards)
        ref = self.doc.shard(task.shard)
        shard = decode_shard(
            crypto.decrypt_bytes(
                self.storage.get_bytes(ref.cid), key, job_id=self.doc.binding, shard_index=task.shard
            )
        )
        profile.preset_environment(spec.replay)
        xs, ys = load_digits(return_X_y=True)
        n = len(shard.labels)
        ox, oy = (xs[-n:] / 16.0).astype(np.float32), ys[-n:].astype(np.int64)
        cheat = adversary.OtherData(min(self.segment, spec.num_checkpoints - 2), ox, oy)
        sink = MemorySink()
        adversary.dishonest_train(spec, task, shard.features, shard.labels, cheat, sink)
        return [sink.data(i) for i in range(spec.num_checkpoints)]

    def upload(self, tid: int, key: bytes, checkpoints: list[bytes]) -> tuple[list[bytes], list[str]]:
        """Encrypt and upload ``checkpoints`` as this worker's, under the task's shard key."""
        from veritrain import crypto
        from veritrain.checkpoint import checkpoint_hash
        from veritrain.jobdoc import checkpoint_binding

        binding = checkpoint_binding(self.doc, tid, self.acct.address)
        hashes = [checkpoint_hash(c) for c in checkpoints]
        cids: list[str] = [
            self.storage.put_bytes(crypto.encrypt_bytes(c, key, job_id=binding, shard_index=i))
            for i, c in enumerate(checkpoints)
        ]
        return hashes, cids

    def submit(self, tid: int, hashes: list[bytes], cids: list[str], what: str) -> None:
        from eth_abi import encode
        from web3 import Web3

        from veritrain.manifest import Manifest

        m = Manifest.build(
            spec_cid=self.spec_cid,
            job_id=self.job_id,
            task_id=tid,
            worker=self.acct.address,
            k=self.doc.spec.checkpoint_interval,
            hashes=hashes,
            checkpoint_cids=cids,
        )
        manifest_cid = self.storage.put_bytes(m.canonical_json())
        salt = os.urandom(32)
        root = m.root_bytes()
        commitment = Web3.keccak(encode(["bytes32", "address", "bytes32"], [root, self.acct.address, salt]))
        self.send(self.market.functions.commit(tid, commitment))
        while True:  # reveals open once every slot of the task committed
            try:
                self.market.functions.reveal(tid, root, salt, manifest_cid).call({"from": self.acct.address})
                break
            except Exception:  # noqa: BLE001
                time.sleep(0.5)
        self.send(self.market.functions.reveal(tid, root, salt, manifest_cid))
        print(f"task {tid}: revealed ({what}) root 0x{root.hex()}", flush=True)


def run(kind: str, job: int, dev_account: int, *, segment: int = 1, max_tasks: int = 1) -> int:
    """Cheat on ``max_tasks`` tasks of ``job`` as dev account ``dev_account``; the exit code."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    print(f"WARNING: dishonest bench worker ({kind}); benchmarks only", file=sys.stderr, flush=True)
    c = Cheater(kind, job, dev_account, segment)
    done = 0
    while done < max_tasks:
        tid = c.claim_one()
        if tid is None:
            time.sleep(1.0)
            continue
        key = c.wait_key(tid)
        if kind == "copy-root":
            hashes, cids, source = c.copied(tid)
            c.submit(tid, hashes, cids, f"copy-root: the root, hashes and CIDs of {source}")
        else:
            hashes, cids = c.upload(tid, key, c.chain_for(tid, key))
            c.submit(tid, hashes, cids, kind)
        done += 1
    return 0
