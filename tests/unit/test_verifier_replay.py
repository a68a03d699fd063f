"""Segment replay and judgement over MemoryStorage: match, mismatch, unrunnable, unavailable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits

from adversary.cheats import SkipStep, dishonest_train
from verifier.replay import SegmentReplayer, load_manifest
from veritrain import crypto
from veritrain.data import Dataset, encode_shard
from veritrain.errors import ManifestError, ReplayProfileError
from veritrain.jobdoc import InitialModelRef, JobDocument, ModelCopyRef, ShardRef, checkpoint_binding
from veritrain.manifest import Manifest
from veritrain.spec import TaskKey, load_spec
from veritrain.starts import BoundStarts
from veritrain.storage import MemoryStorage
from veritrain.training.engine import train_task
from veritrain.training.sinks import MemorySink

ROOT = Path(__file__).resolve().parents[2]
WORKER = "0x" + "ab" * 20
TASK_ID = (1 << 32) | 0


def _spec():  # type: ignore[no-untyped-def]
    from veritrain.training.profile import current_profile

    raw = yaml.safe_load((ROOT / "examples" / "digits-mlp.yaml").read_text())
    raw.update(steps_per_task=30, checkpoint_interval=10, num_shards=1, batch_size=16)
    raw["model"]["args"]["hidden"] = [16]
    raw["replay"] = current_profile(threads=1).model_dump()
    return load_spec(raw)


def _job(cheat=None, key=None, round_=0):  # type: ignore[no-untyped-def]
    spec, storage, key = _spec(), MemoryStorage(), key or crypto.generate_data_key()
    if round_:
        spec = spec.model_copy(update={"rounds": round_ + 1})
    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype(np.float32)[:200], y.astype(np.int64)[:200]
    nonce = b"n" * 16
    from veritrain.jobdoc import binding_for

    ct = crypto.encrypt_bytes(encode_shard(Dataset(x, y)), key, job_id=binding_for(spec, nonce),
                              shard_index=0)
    import hashlib

    ref = ShardRef(index=0, cid=storage.put_bytes(ct), sha256=hashlib.sha256(ct).hexdigest(), size=len(ct),
                   examples=len(x))
    doc = JobDocument.create(spec, [ref], nonce)
    for _ in range(round_):  # a later round's job: the replayer never needs the initial model itself
        doc = doc.next_round(InitialModelRef(digest="ab" * 32, previous_job=1, copies=(
            ModelCopyRef(shard=0, cid="bafym0", sha256="cd" * 32, size=99),)))
    spec_cid = storage.put_bytes(doc.to_bytes())
    sink = MemorySink()
    task = TaskKey(round=round_, shard=0)
    hashes = (train_task(spec, task, x, y, sink) if cheat is None
              else dishonest_train(spec, task, x, y, cheat, sink))
    binding = checkpoint_binding(doc, TASK_ID, WORKER)
    cids = [storage.put_bytes(crypto.encrypt_bytes(sink.data(i), key, job_id=binding, shard_index=i))
            for i in range(len(hashes))]
    m = Manifest.build(spec_cid=spec_cid, job_id=1, task_id=TASK_ID, worker=WORKER, k=10, hashes=hashes,
                       checkpoint_cids=cids)
    return storage, doc, m, key


def test_honest_segments_match_and_cheated_segment_mismatches():
    storage, doc, m, key = _job(cheat=SkipStep(segment=1))
    r = SegmentReplayer(storage)
    ctx = r.context(doc, m, key, TASK_ID, WORKER)
    assert ctx.n_segments == 3 and ctx.task == TaskKey(round=0, shard=0)
    outcomes = [r.check(ctx, j) for j in range(3)]
    assert [c.outcome for c in outcomes] == ["match", "mismatch", "match"]
    bad = outcomes[1]
    assert bad.claimed == m.hashes[2] and bad.replayed != bad.claimed
    assert bad.vote == bytes.fromhex(bad.replayed[2:])
    assert outcomes[0].vote == m.hash_bytes(1)


def test_unrunnable_profile_is_reported_not_guessed():
    storage, doc, m, key = _job()

    def refuse(*_args):  # type: ignore[no-untyped-def]
        raise ReplayProfileError("torch_version: job wants '9.9.9', this process has '2.13.0'")

    r = SegmentReplayer(storage, replay=refuse)
    check = r.check(r.context(doc, m, key, TASK_ID, WORKER), 0)
    assert check.outcome == "unrunnable" and "torch_version" in check.detail
    assert check.replayed is None and check.vote is None


def test_missing_checkpoint_is_withheld_but_a_wrong_key_is_only_unavailable():
    storage, doc, m, key = _job()
    empty = MemoryStorage()  # the worker's checkpoints are not retrievable
    empty.put_bytes(storage.get_bytes(doc.shards[0].cid))
    r = SegmentReplayer(empty)
    check = r.check(r.context(doc, m, key, TASK_ID, WORKER), 1)
    assert check.outcome == "withheld" and "checkpoint 1" in check.detail
    assert check.vote is None  # a referee votes "unavailable" on withheld evidence
    # A key that does not open the shard is this verifier's problem, never the worker's.
    wrong_key = SegmentReplayer(storage).check(
        SegmentReplayer(storage).context(doc, m, crypto.generate_data_key(), TASK_ID, WORKER), 0)
    assert wrong_key.outcome == "unavailable" and wrong_key.detail.startswith("shard:")


def test_manifest_must_match_revealed_root_and_task():
    storage, doc, m, key = _job()
    cid = storage.put_bytes(m.canonical_json())
    loaded = load_manifest(storage, cid, root=m.root_bytes(), task_id=TASK_ID, worker=WORKER.upper())
    assert loaded.root == m.root
    with pytest.raises(ManifestError, match="revealed"):
        load_manifest(storage, cid, root=b"\x01" * 32, task_id=TASK_ID, worker=WORKER)
    with pytest.raises(ManifestError, match="not task"):
        load_manifest(storage, cid, root=m.root_bytes(), task_id=TASK_ID + 1, worker=WORKER)


def test_a_later_rounds_task_is_replayed_as_that_round():
    """Every round is its own job of num_shards tasks: task index 0 of round 1's job is round 1,
    shard 0 (replaying it as round 0 would reject every honest checkpoint)."""
    storage, doc, m, key = _job(cheat=SkipStep(segment=2), round_=1)
    r = SegmentReplayer(storage)
    ctx = r.context(doc, m, key, TASK_ID, WORKER)
    assert ctx.task == TaskKey(round=1, shard=0)
    assert [r.check(ctx, j).outcome for j in range(3)] == ["match", "match", "mismatch"]


class _FakeChain:
    """The watcher's view of the chain (code below the unit under test)."""

    address = "0x" + "cd" * 20
    chain_id = 31337

    def __init__(self, starts_root: bytes = b"") -> None:
        self.sent: list[tuple] = []
        self.starts_root = starts_root  # the job's bound starts (JobMarket.getJob)
        self.slashed: list[tuple] = []

    def timestamp(self) -> int:
        return 1_000

    def challenge(self, ch):  # type: ignore[no-untyped-def]
        return ch  # the prepared transaction

    def send(self, journal, item, action, tx, detail=None):  # type: ignore[no-untyped-def]
        self.sent.append(tx.args())
        self.functions = [*getattr(self, "functions", []), tx.function]
        journal.tx_update(journal.tx_intent(item, action, detail), "mined", "0x" + "11" * 32)
        return {"transactionHash": b"\x11" * 32}

    def job(self, job_id: int):  # type: ignore[no-untyped-def]
        from types import SimpleNamespace

        return SimpleNamespace(checkpoint_count=3, starts_root=self.starts_root)

    def slash_wrong_start(self, task_id, worker, args):  # type: ignore[no-untyped-def]
        self.slashed.append((task_id, worker, *args))
        return {"transactionHash": b"\x22" * 32}

    def dispute_id_from(self, receipt):  # type: ignore[no-untyped-def]
        return 7


class _Keys:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def job_key(self, job_id: int) -> bytes:
        return self.key

    def pending(self, job_id: int) -> bool:
        return False


def test_watcher_challenges_a_result_whose_checkpoints_cannot_be_opened(tmp_path: Path) -> None:
    from verifier.watcher import WITHHELD_CLAIM, WatchConfig, Watcher
    from veritrain.jobdoc import binding_for
    from veritrain.journal import Journal

    job_key = crypto.generate_data_key()  # the watcher derives the task's shard key from it
    storage, doc, m, _ = _job(key=crypto.shard_key(job_key, binding_for(_spec(), b"n" * 16), 0))
    spec_cid = m.spec_cid
    withheld = MemoryStorage()  # the shard, the document and the manifest, no checkpoints
    for cid in (doc.shards[0].cid, spec_cid):
        withheld.put_bytes(storage.get_bytes(cid))
    manifest_cid = withheld.put_bytes(m.canonical_json())
    journal, chain = Journal(tmp_path / "j.sqlite"), _FakeChain(BoundStarts.of(doc).root)
    journal.put("result:1:w", "seen", task_id=TASK_ID, worker=WORKER, spec_cid=spec_cid,
                manifest_cid=manifest_cid, root=m.root, challenge_deadline=2_000)
    config = WatchConfig(p=1.0, secret=b"s" * 32)
    w = Watcher(chain, journal, SegmentReplayer(withheld), _Keys(job_key), config)
    assert w.process(journal.get("result:1:w")) == "challenged"  # type: ignore[arg-type]
    [args] = chain.sent
    assert args[-1] == bytes.fromhex(WITHHELD_CLAIM[2:]) and args[-1] != m.hash_bytes(1)
    assert journal.get("result:1:w").data["dispute_id"] == 7  # type: ignore[union-attr]


def test_watcher_challenges_a_root_whose_manifest_never_resolves_without_proofs(tmp_path: Path) -> None:
    """Issue 14, escape 1: a revealed root whose manifest CID resolves to nothing is challenged
    at segment 0 with no proofs (the worker must answer on-chain), after MANIFEST_TRIES ticks."""
    from verifier.watcher import MANIFEST_TRIES, WITHHELD_CLAIM, WatchConfig, Watcher
    from veritrain.jobdoc import binding_for
    from veritrain.journal import Journal

    job_key = crypto.generate_data_key()
    storage, doc, m, _ = _job(key=crypto.shard_key(job_key, binding_for(_spec(), b"n" * 16), 0))
    bare = MemoryStorage()  # the job document only: the manifest CID resolves to nothing
    bare.put_bytes(storage.get_bytes(m.spec_cid))
    missing = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    journal, chain = Journal(tmp_path / "j.sqlite"), _FakeChain()
    journal.put("result:1:w", "seen", task_id=TASK_ID, worker=WORKER, spec_cid=m.spec_cid,
                manifest_cid=missing, root="0x" + "ab" * 32, challenge_deadline=2_000)
    w = Watcher(chain, journal, SegmentReplayer(bare), _Keys(job_key), WatchConfig(p=1.0, secret=b"s" * 32))
    for _ in range(MANIFEST_TRIES - 1):  # a passing IPFS hiccup is not yet a reason to challenge
        assert w.process(journal.get("result:1:w")) == "seen"  # type: ignore[arg-type]
    assert chain.sent == []
    assert w.process(journal.get("result:1:w")) == "challenged"  # type: ignore[arg-type]
    assert chain.sent == [(TASK_ID, WORKER, 0, bytes.fromhex(WITHHELD_CLAIM[2:]))]
    assert chain.functions == ["challenge"]  # the unproven entry point: the worker must answer


def test_watcher_slashes_a_wrong_start_by_proof_without_sampling(tmp_path: Path) -> None:
    """Issue 22: a result that replays fine but starts off the bound h_0 is slashed with two
    proofs (the worker's leaf 0, the bound leaf), even at a p that samples no segment of it."""
    from adversary.cheats import WrongStart
    from verifier.watcher import WatchConfig, Watcher
    from veritrain import merkle
    from veritrain.jobdoc import binding_for
    from veritrain.journal import Journal

    job_key = crypto.generate_data_key()
    shard_key = crypto.shard_key(job_key, binding_for(_spec(), b"n" * 16), 0)
    storage, doc, m, _ = _job(cheat=WrongStart(), key=shard_key)
    starts = BoundStarts.of(doc)
    manifest_cid = storage.put_bytes(m.canonical_json())
    journal, chain = Journal(tmp_path / "j.sqlite"), _FakeChain(starts.root)
    journal.put("result:1:w", "seen", task_id=TASK_ID, worker=WORKER, spec_cid=m.spec_cid,
                manifest_cid=manifest_cid, root=m.root, challenge_deadline=2_000)
    config = WatchConfig(p=1e-9, secret=b"s" * 32)
    w = Watcher(chain, journal, SegmentReplayer(storage), _Keys(job_key), config)
    assert w.process(journal.get("result:1:w")) == "start_slashed"  # type: ignore[arg-type]
    [(task, worker, started, started_proof, bound, bound_proof)] = chain.slashed
    assert (task, worker, started, bound) == (TASK_ID, WORKER, m.hash_bytes(0), starts.hashes[0])
    assert started != bound and chain.sent == []  # no segment challenge, no committee
    assert merkle.verify(m.root, 0, started, started_proof)
    assert merkle.verify(starts.root, 0, bound, bound_proof)
    _, _, honest, _ = _job(key=shard_key)  # an honest result of the task starts where bound
    assert honest.hash_bytes(0) == starts.hashes[0]
