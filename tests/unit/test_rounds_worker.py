"""The worker on round r > 0 of a multi-round job: the on-chain job has num_shards tasks, the
task's copy of the previous aggregate is fetched, checked (ciphertext hash, key, plaintext
digest) and handed to the trainer; anything wrong ends the task ``failed`` with one reason.
Fake chain and MemoryStorage (the code above them); the real stack is in tests/integration."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from test_worker_loop import FakeChain, item

from veritrain import crypto, envelope
from veritrain.data import Dataset, encode_shard
from veritrain.dev.accounts import dev_account
from veritrain.errors import IntegrityError
from veritrain.jobdoc import (
    InitialModelRef,
    JobDocument,
    ModelCopyRef,
    ShardRef,
    binding_for,
    encode_initial_model,
    initial_model_binding,
    open_initial_model,
    worker_key_context,
)
from veritrain.spec import TaskKey, load_spec
from veritrain.starts import BoundStarts
from veritrain.storage import MemoryStorage
from worker import loop, tasks
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
WORKER = dev_account(5)
TASK = (9 << 32) | 1  # round job 9, shard 1


def _model(spec: Any, doc: JobDocument, value: float) -> dict[str, np.ndarray]:
    """The spec's model with every parameter set to ``value`` (a stand-in aggregate)."""
    from veritrain.training import state

    params = state.initial(spec, doc.task_key(0)).model.state_dict().items()
    return {f"model/{k}": np.full(tuple(v.shape), value, np.float32) for k, v in params}


class Round:
    """A 2-shard, 3-round job's round-1 document with every blob in MemoryStorage."""

    def __init__(self, *, tamper_copy: bool = False, wrong_digest: bool = False,
                 wrong_sha: bool = False) -> None:
        self.spec = load_spec(ROOT / "examples" / "digits-mlp.yaml").model_copy(update={"rounds": 3})
        self.storage = MemoryStorage()
        self.key = crypto.generate_data_key()
        nonce = b"n" * 16
        binding = binding_for(self.spec, nonce)
        rng = np.random.default_rng(0)
        shard_refs = []
        for i in range(2):
            sh = Dataset(features=rng.random((12, 64)).astype(np.float32), labels=rng.integers(0, 10, 12))
            ct = crypto.encrypt_bytes(encode_shard(sh), crypto.shard_key(self.key, binding, i),
                                      job_id=binding, shard_index=i)
            shard_refs.append(ShardRef(index=i, cid=self.storage.put_bytes(ct),
                                       sha256=hashlib.sha256(ct).hexdigest(), size=len(ct), examples=12))
        doc0 = JobDocument.create(self.spec, shard_refs, nonce)
        tensors = _model(self.spec, doc0, 0.5)  # a real model of the spec: its h_0 is computable
        self.plain = encode_initial_model(self.spec, binding, 1, tensors)
        copies = []
        for i in range(2):
            ct = crypto.encrypt_bytes(self.plain, crypto.shard_key(self.key, binding, i),
                                      job_id=initial_model_binding(binding, 1), shard_index=i)
            if tamper_copy and i == 1:
                ct = ct[:-1] + bytes([ct[-1] ^ 1])  # published tampered: its hash is what the doc lists
            sha = hashlib.sha256(ct).hexdigest()
            copies.append(ModelCopyRef(shard=i, cid=self.storage.put_bytes(ct),
                                       sha256=("0" * 64 if wrong_sha and i == 1 else sha), size=len(ct)))
        digest = hashlib.sha256(self.plain).hexdigest() if not wrong_digest else "1" * 64
        self.doc = doc0.next_round(InitialModelRef(digest=digest, previous_job=8, copies=tuple(copies)))
        self.doc_cid = self.storage.put_bytes(self.doc.to_bytes())

    def envelope(self, shard: int = 1) -> str:
        pub = envelope.public_key_from_private(bytes(WORKER.key))
        ctx = worker_key_context(31337, "0x" + "ab" * 20, TASK, WORKER.address)
        return "0x" + envelope.wrap(crypto.shard_key(self.key, self.doc.binding, shard), pub, ctx).hex()


def test_job_problems_accept_one_job_of_num_shards_tasks_per_round() -> None:
    r = Round()
    job = SimpleNamespace(shards_root=r.doc.shards_root(), checkpoint_count=r.spec.num_checkpoints,
                          task_count=2)
    assert tasks.job_problems(r.doc, job) == []  # type: ignore[arg-type]
    rounds_x_shards = SimpleNamespace(**{**job.__dict__, "task_count": 6})
    assert any("taskCount 6" in p for p in tasks.job_problems(r.doc, rounds_x_shards))  # type: ignore[arg-type]
    round0_root = SimpleNamespace(**{**job.__dict__, "shards_root": r.doc.model_copy(
        update={"round": 0, "initial_model": None}).shards_root()})
    assert any("shardsRoot" in p for p in tasks.job_problems(r.doc, round0_root))  # type: ignore[arg-type]


def test_the_copy_opens_only_with_its_shard_key_and_is_checked(tmp_path: Path) -> None:
    r = Round()
    path = tasks.fetch_initial_model(r.storage, r.doc, 1, tmp_path / "initial.enc")
    k1 = crypto.shard_key(r.key, r.doc.binding, 1)
    assert open_initial_model(r.doc, path.read_bytes(), k1, 1) == r.plain
    with pytest.raises(IntegrityError, match="does not open with this task's key"):
        open_initial_model(r.doc, path.read_bytes(), crypto.shard_key(r.key, r.doc.binding, 0), 1)
    with pytest.raises(IntegrityError, match="promises"):
        bad = Round(wrong_sha=True)
        tasks.fetch_initial_model(bad.storage, bad.doc, 1, tmp_path / "x.enc")


@pytest.fixture
def worker(tmp_path: Path) -> Any:
    calls: list[dict[str, Any]] = []

    def trainer(spec: Any, task: TaskKey, features: Any, labels: Any, directory: Path, progress: Any,
                **kw: Any) -> list[bytes]:
        calls.append({"task": task, **kw})
        return [bytes(32)] * spec.num_checkpoints

    w = loop.Worker(WorkerSettings(home=tmp_path), WORKER, chain=FakeChain(), storage=None, trainer=trainer)
    w.calls = calls
    yield w
    w.close()


def _run(w: Any, r: Round, phase: str = loop.FETCHING, starts_root: bytes | None = None) -> Any:
    """Advance a task of ``r`` from ``phase``; the job on-chain binds ``starts_root`` (the
    document's own starts by default)."""
    w.storage = r.storage
    w.chain.job_state.starts_root = starts_root or BoundStarts.of(r.doc, r.plain).root
    it = item(w, phase, task_id=TASK, job_id=9, task_index=1, spec_cid=r.doc_cid, envelope=r.envelope())
    while it.phase not in loop.TERMINAL and it.phase != loop.UPLOADING and w.advance(it):
        it = w.journal.get(it.key)
    return it


def test_round_1_trains_from_the_checked_aggregate(worker: Any) -> None:
    r = Round()
    it = _run(worker, r)
    assert it.phase == loop.UPLOADING, it.data.get("reason")
    assert worker.calls == [{"task": TaskKey(round=1, shard=1), "initial_model": r.plain}]


@pytest.mark.parametrize(("bad", "reason"), [
    ({"tamper_copy": True}, "does not open with this task's key"),
    ({"wrong_digest": True}, "not the previous round's aggregate"),
    ({"wrong_sha": True}, "the job document promises"),
])
def test_a_bad_initial_model_fails_the_task_with_one_reason(worker: Any, bad: dict[str, bool],
                                                            reason: str) -> None:
    it = _run(worker, Round(**bad))
    assert it.phase == loop.FAILED and reason in it.data["reason"] and "initial model" in it.data["reason"]
    assert worker.calls == []  # nothing trained


def test_a_bogus_keyed_start_is_refused_not_trained_from(worker: Any) -> None:
    """The requester's attack on round r > 0: it binds starts that are not the starts of the
    aggregate its key opens, so a worker starting where the document says would be slashed.
    The worker checks after the key and refuses the task on-chain (stake and costs back) before
    training or committing. Fails without the check (the task would train, then be slashed)."""
    r = Round()
    bogus = BoundStarts.of(r.doc.model_copy(update={"round": 0, "initial_model": None})).root
    it = _run(worker, r, starts_root=bogus)
    assert it.phase == loop.ABANDONED and "bound starts" in it.data["reason"]
    assert [(c.name, c.args) for c in worker.chain.sent] == [("refuseStart", (TASK,))]
    assert worker.calls == []  # nothing trained, nothing committed


def test_round_0_starts_are_checked_before_claiming() -> None:
    """Round 0: the starts follow from the public document, so a job that binds others is one
    to stay away from (the offer carries the problem and the policy skips it)."""
    r = Round()
    doc0 = r.doc.model_copy(update={"round": 0, "initial_model": None})
    job = SimpleNamespace(shards_root=doc0.shards_root(), checkpoint_count=r.spec.num_checkpoints,
                          task_count=2, starts_root=BoundStarts.of(doc0).root)
    assert tasks.job_problems(doc0, job) == []  # type: ignore[arg-type]
    bogus = SimpleNamespace(**{**job.__dict__, "starts_root": BoundStarts.of(r.doc, r.plain).root})
    [problem] = tasks.job_problems(doc0, bogus)  # type: ignore[arg-type]
    assert "bound starts" in problem and "would be slashed" in problem
