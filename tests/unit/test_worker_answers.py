"""The worker answers a challenge that proves nothing (issue 14): with its leaves and proofs
from the manifest it kept, before the deadline; after it, it settles (and loses)."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

from test_worker_loop import Functions, item, worker  # noqa: F401 (pytest fixture)

from veritrain.chain import segments
from veritrain.chain.states import DisputeStatus
from veritrain.manifest import Manifest
from worker import loop

CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


def _setup(w: Any, status: DisputeStatus, deadline: int) -> tuple[Any, Manifest]:
    it = item(w, loop.WATCHING, manifest_cid=CID)
    hashes = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    m = Manifest.build(spec_cid=CID, job_id=1, task_id=it.data["task_id"], worker=w.address, k=10,
                       hashes=hashes, checkpoint_cids=[CID] * 5)
    tdir = w.task_dir(it.data["task_id"])
    tdir.mkdir(parents=True, exist_ok=True)
    (tdir / "manifest.json").write_bytes(m.canonical_json())
    d = SimpleNamespace(status=status, deadline=deadline, accused=w.address, segment=3, draw_block=0,
                        accuser_next=bytes(32))
    w.chain.resolver = Functions()
    w.chain.dispute = lambda dispute_id: d
    return it, m


def test_accused_worker_answers_with_its_leaves_and_proofs(worker: Any) -> None:  # noqa: F811
    it, m = _setup(worker, DisputeStatus.ANSWERING, deadline=worker.chain.now() + 100)
    assert worker.disputes().serve(it, 4)
    [call] = worker.chain.sent
    dispute_id, seg = call.args
    assert call.name == "answer" and dispute_id == 4
    assert seg[0] == 3 and (seg[1], seg[3]) == (m.hash_bytes(3), m.hash_bytes(4))
    assert segments.verify(m.root_bytes(), seg)


def test_after_the_answer_deadline_the_worker_settles_instead(worker: Any) -> None:  # noqa: F811
    it, _ = _setup(worker, DisputeStatus.ANSWERING, deadline=worker.chain.now() - 1)
    assert worker.disputes().serve(it, 4)
    assert [c.name for c in worker.chain.sent] == ["settle"]


def test_a_worker_that_lost_its_manifest_says_so_and_sends_nothing(worker: Any) -> None:  # noqa: F811
    it, _ = _setup(worker, DisputeStatus.ANSWERING, deadline=worker.chain.now() + 100)
    (worker.task_dir(it.data["task_id"]) / "manifest.json").unlink()
    said: list[str] = []
    worker.say = said.append
    assert not worker.disputes().serve(it, 4)
    assert worker.chain.sent == [] and "cannot answer" in said[-1]


def _drawn_at(w: Any, it: Any, j_star: int) -> Any:
    """Journal the task as a forced error drawn at ``j_star`` (a secret whose draw gives it)."""
    from veritrain import forced

    snap = b"\x01" * 32
    secret = next(s for s in (hashlib.sha256(bytes([i, 9])).digest() for i in range(10_000))
                  if forced.select(s, snap, bps=10_000, redundancy=1, checkpoints=4).segment == j_star)
    w.chain.resolver_params = lambda: SimpleNamespace(forced_error_bps=10_000)
    return w.journal.put(it.key, it.phase, forced_secret=secret.hex(), forced_snap=snap.hex(),
                         forced_segment=j_star, hashes=["00" * 32] * 5), secret, snap


def test_a_challenge_of_its_forced_segment_is_answered_as_forced(worker: Any) -> None:  # noqa: F811
    """docs/spec/forced.md: the drawn worker answers a challenge of j* (here 3... as j*+1 of
    j* = 2) with its secret; the committee would otherwise slash it for doing as told."""
    it, _ = _setup(worker, DisputeStatus.ANSWERING, deadline=worker.chain.now() + 100)
    it, secret, snap = _drawn_at(worker, it, 2)  # segments 2 and 3 show the forced checkpoint 3
    assert worker.disputes().serve(it, 4)
    [call] = worker.chain.sent
    assert call.name == "answerForced" and call.args == (4, secret, snap)


def test_an_opt_out_challenge_is_answered_with_the_leaves_never_as_forced(worker: Any) -> None:  # noqa: F811
    """An opt-out challenge asks whether j*+1 is the real checkpoint: answerForced would
    revert there, and an unanswered challenge is lost."""
    from veritrain import forced

    it, m = _setup(worker, DisputeStatus.ANSWERING, deadline=worker.chain.now() + 100)
    it, _, _ = _drawn_at(worker, it, 2)
    worker.chain.dispute(4).accuser_next = forced.OPT_OUT
    assert worker.disputes().serve(it, 4)
    [call] = worker.chain.sent
    assert call.name == "answer" and call.args[1][0] == 3


def test_a_challenge_of_another_segment_is_answered_with_the_leaves(worker: Any) -> None:  # noqa: F811
    it, _ = _setup(worker, DisputeStatus.ANSWERING, deadline=worker.chain.now() + 100)
    it, _, _ = _drawn_at(worker, it, 0)  # forced at checkpoint 1: segments 0 and 1, not 3
    assert worker.disputes().serve(it, 4)
    assert [c.name for c in worker.chain.sent] == ["answer"]
