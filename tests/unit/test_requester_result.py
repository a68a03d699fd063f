"""result(): each final checkpoint is checked against the on-chain root before it is used,
and the provenance names task, worker, root, manifest and checkpoint. MemoryStorage (a fake
allowed in unit tests of the code above it); the real stack is in tests/integration."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from requester.errors import ResultIntegrityError
from requester.result import verify_task
from requester.store import JobRecord, JobStore, seal_key, unseal_key
from veritrain import crypto, merkle
from veritrain.checkpoint import CheckpointState, encode_and_hash
from veritrain.dev.accounts import dev_account
from veritrain.errors import ConfigError
from veritrain.jobdoc import JobDocument, ShardRef, checkpoint_binding
from veritrain.manifest import Manifest
from veritrain.spec import load_spec
from veritrain.storage import MemoryStorage

ROOT = Path(__file__).resolve().parents[2]
WORKER = dev_account(2).address
TASK = 1 << 32 | 1


@pytest.fixture
def job():  # type: ignore[no-untyped-def]
    spec = load_spec(ROOT / "examples" / "digits-mlp.yaml")
    refs = [ShardRef(index=i, cid="bafkqaaa", sha256="0" * 64, size=1, examples=10 + i) for i in range(2)]
    doc = JobDocument.create(spec, refs, b"n" * 16)
    storage = MemoryStorage()
    return SimpleNamespace(spec=spec, doc=doc, storage=storage, key=crypto.generate_data_key(),
                           doc_cid=storage.put_bytes(doc.to_bytes()))


def upload(job, states, *, swap_last: bytes | None = None, task=TASK, worker=WORKER):  # type: ignore[no-untyped-def]
    hashes, cids = [], []
    binding = checkpoint_binding(job.doc, task, worker)
    for i, st in enumerate(states):
        data, h = encode_and_hash(st)
        hashes.append(h)
        if swap_last is not None and i == len(states) - 1:
            data = swap_last
        cids.append(job.storage.put_bytes(crypto.encrypt_bytes(data, job.key, job_id=binding, shard_index=i)))
    m = Manifest.build(spec_cid=job.doc_cid, job_id=1, task_id=task, worker=worker, k=20, hashes=hashes,
                       checkpoint_cids=cids)
    return m, job.storage.put_bytes(m.canonical_json())


def states(job, step: int = 200, shard: int = 1):  # type: ignore[no-untyped-def]
    meta = {"job": job.spec.digest().hex(), "task": {"round": 0, "shard": shard}}
    return [CheckpointState(meta={**meta, "step": s}, tensors={"model/w": np.full(3, s, np.float32)})
            for s in (0, step // 2, step)]


def check(job, m, mcid, **kw):  # type: ignore[no-untyped-def]
    args = dict(task_id=TASK, shard=1, worker=WORKER, onchain_root=m.root_bytes(), manifest_cid=mcid,
                checkpoint_count=3)
    return verify_task(job.doc, job.storage, job.key, **{**args, **kw})


def test_an_honest_result_is_returned_with_its_provenance(job) -> None:  # type: ignore[no-untyped-def]
    m, mcid = upload(job, states(job))
    state, res = check(job, m, mcid)
    assert float(state.tensors["model/w"][0]) == 200.0
    assert (res.task_id, res.shard, res.worker, res.examples) == (TASK, 1, WORKER, 11)
    assert res.root == m.root and res.manifest_cid == mcid and res.checkpoint_cid == m.checkpoint_cids[2]
    assert merkle.verify(res.root, 2, res.checkpoint_hash, m.proof(2))


def test_wrong_bytes_behind_the_final_cid_are_refused(job) -> None:  # type: ignore[no-untyped-def]
    other = encode_and_hash(states(job)[1])[0]
    m, mcid = upload(job, states(job), swap_last=other)
    with pytest.raises(ResultIntegrityError, match="hashes to"):
        check(job, m, mcid)


def test_a_manifest_that_is_not_the_committed_root_is_refused(job) -> None:  # type: ignore[no-untyped-def]
    m, mcid = upload(job, states(job))
    with pytest.raises(ResultIntegrityError, match="not the root committed on-chain"):
        check(job, m, mcid, onchain_root=b"\x11" * 32)
    with pytest.raises(ResultIntegrityError, match="lists 3 checkpoints, the job has 11"):
        check(job, m, mcid, checkpoint_count=11)


def test_ciphertext_under_another_key_or_task_is_refused(job) -> None:  # type: ignore[no-untyped-def]
    m, mcid = upload(job, states(job), task=TASK)
    with pytest.raises(ResultIntegrityError, match="manifest is for task"):
        check(job, m, mcid, task_id=TASK + 1)
    other = SimpleNamespace(**{**job.__dict__, "key": crypto.generate_data_key()})
    with pytest.raises(ResultIntegrityError, match="failed authentication"):
        check(other, m, mcid)


def test_a_checkpoint_of_another_shard_or_step_is_refused(job) -> None:  # type: ignore[no-untyped-def]
    m, mcid = upload(job, states(job, shard=0))
    with pytest.raises(ResultIntegrityError, match="mismatch: task"):
        check(job, m, mcid)
    m, mcid = upload(job, states(job, step=100))
    with pytest.raises(ResultIntegrityError, match="mismatch: step"):
        check(job, m, mcid)


def test_job_record_is_private_and_its_key_sealed_to_the_requester(tmp_path: Path) -> None:
    acct, other = dev_account(1), dev_account(2)
    key = crypto.generate_data_key()
    store = JobStore(tmp_path, 31337, "0xABC")
    rec = JobRecord(chain_id=31337, market="0xabc", requester=acct.address, doc_cid="bafyx", binding="b",
                    sealed_key=seal_key(key, acct, "bafyx"), shards_root="0x00")
    store.save_pending(rec)
    assert [r.doc_cid for r in store.pending()] == ["bafyx"]
    rec.job_id = 7
    path = store.save(rec)
    assert store.pending() == [] and store.job_ids() == [7]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert key.hex() not in path.read_text()
    assert unseal_key(store.load(7), acct) == key
    with pytest.raises(ConfigError, match="cannot open its data key"):
        unseal_key(store.load(7), other)


def test_a_round_task_must_start_from_the_published_initial_model(job) -> None:  # type: ignore[no-untyped-def]
    chain = states(job)
    m, mcid = upload(job, chain)
    h0 = encode_and_hash(chain[0])[1]
    _, res = check(job, m, mcid, expected_h0=h0)
    assert res.start_hash == "0x" + h0.hex()
    with pytest.raises(ResultIntegrityError, match="did not start from the previous round's aggregate"):
        check(job, m, mcid, expected_h0=bytes(32))
