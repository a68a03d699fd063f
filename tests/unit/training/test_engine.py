"""The engine in this process: chains, resume, replay, evaluation, cheats, tolerance mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adversary import cheats as adversary
from veritrain.checkpoint import checkpoint_hash, decode
from veritrain.errors import CheckpointFormatError, DataError, SpecError
from veritrain.spec import TaskKey
from veritrain.training import engine, judges, tolerance
from veritrain.training.runner import train_or_resume
from veritrain.training.sinks import DirectorySink, MemorySink

TASK = TaskKey(round=0, shard=0)


@pytest.fixture(scope="module")
def honest(make_spec, digits):  # type: ignore[no-untyped-def]
    spec = make_spec()
    x, y = digits[0][:600], digits[1][:600]
    sink = MemorySink()
    hashes = engine.train_task(spec, TASK, x, y, sink)
    return spec, x, y, sink, hashes


def test_chain_has_n_plus_one_checkpoints_and_is_reproducible(honest) -> None:  # type: ignore[no-untyped-def]
    spec, x, y, sink, hashes = honest
    assert len(hashes) == spec.num_checkpoints == 7 and len(set(hashes)) == 7
    assert [checkpoint_hash(sink.data(i)) for i in range(7)] == hashes
    assert engine.train_task(spec, TASK, x, y, MemorySink()) == hashes
    meta = decode(sink.data(3)).meta
    assert (meta["step"], meta["index"], meta["task"], meta["job"]) == (30, 3, {"round": 0, "shard": 0},
                                                                         spec.digest().hex())


def test_other_task_or_seed_gives_another_chain(make_spec, honest) -> None:  # type: ignore[no-untyped-def]
    spec, x, y, _, hashes = honest
    other = engine.train_task(spec, TaskKey(round=0, shard=1), x, y, MemorySink())
    assert other[0] != hashes[0]  # the task is part of the state
    reseeded = engine.train_task(make_spec(seed=99), TASK, x, y, MemorySink())
    assert reseeded[1] != hashes[1]


def test_resume_from_every_checkpoint_continues_the_same_chain(honest) -> None:  # type: ignore[no-untyped-def]
    spec, x, y, sink, hashes = honest
    for i in range(len(hashes) - 1):
        assert engine.train_task(spec, TASK, x, y, MemorySink(), resume=sink.data(i)) == hashes[i + 1 :]


def test_every_segment_replays_to_the_committed_hash(honest) -> None:  # type: ignore[no-untyped-def]
    spec, x, y, sink, hashes = honest
    for j in range(len(hashes) - 1):
        assert engine.replay_segment(spec, TASK, j, sink.data(j), x, y) == hashes[j + 1]
    with pytest.raises(CheckpointFormatError, match="not #2"):
        engine.replay_segment(spec, TASK, 2, sink.data(1), x, y)
    with pytest.raises(CheckpointFormatError, match="mismatch: task"):
        engine.replay_segment(spec, TaskKey(round=0, shard=1), 1, sink.data(1), x, y)


def test_progress_reports_every_step(make_spec, digits) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec()
    seen: list[tuple[int, int]] = []
    engine.train_task(spec, TASK, digits[0][:100], digits[1][:100], MemorySink(),
                      progress=lambda s, n: seen.append((s, n)))
    assert seen == [(s, 60) for s in range(1, 61)]


def test_directory_sink_resumes_after_a_lost_tail(tmp_path: Path, honest) -> None:  # type: ignore[no-untyped-def]
    spec, x, y, _, hashes = honest
    full = train_or_resume(spec, TASK, x, y, tmp_path / "a")
    assert full == hashes
    for i in (6, 5, 4):
        (tmp_path / "a" / f"ckpt-{i:06d}.vtck").unlink()
    (tmp_path / "a" / ".ckpt-000004.123.tmp").write_bytes(b"half a file")  # a killed write
    assert DirectorySink(tmp_path / "a").chain() == hashes[:4]
    assert train_or_resume(spec, TASK, x, y, tmp_path / "a") == hashes


def test_evaluation_reports_loss_and_accuracy(honest, digits) -> None:  # type: ignore[no-untyped-def]
    spec, _, _, sink, _ = honest
    xe, ye = digits[0][1200:], digits[1][1200:]
    before, after = engine.evaluate(spec, sink.data(0), xe, ye), engine.evaluate(spec, sink.data(6), xe, ye)
    assert before.examples == after.examples == len(ye) and before.perplexity is None
    assert after.loss < before.loss and after.accuracy > 0.6 > before.accuracy


def test_bad_shard_is_refused_with_one_clear_error(make_spec, digits) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec()
    x, y = digits[0][:50], digits[1][:50]
    with pytest.raises(DataError, match=r"features have shape \(50, 8, 8\)"):
        engine.train_task(spec, TASK, x.reshape(50, 8, 8), y, MemorySink())
    with pytest.raises(DataError, match=r"labels must lie in \[0, 10\)"):
        engine.train_task(spec, TASK, x, y + 5, MemorySink())
    bad = x.copy()
    bad[3, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        engine.train_task(spec, TASK, bad, y, MemorySink())


def test_dp_sgd_jobs_without_the_noise_key_are_refused_not_trained_without_privacy(make_spec, digits) -> None:  # type: ignore[no-untyped-def]
    dp = {"dp_sgd": {"epsilon": 3, "delta": 1e-5, "noise_multiplier": 1.1, "max_grad_norm": 1}}
    with pytest.raises(SpecError, match="privacy.dp_sgd: a DP-SGD task needs its shard key"):
        engine.train_task(make_spec(privacy=dp), TASK, digits[0][:50], digits[1][:50], MemorySink())


CHEATS = {
    "skip_step": lambda x, y: adversary.SkipStep(segment=3, offset=4),
    "perturb_weight": lambda x, y: adversary.PerturbWeight(segment=3, delta=1e-3),
    "other_data": lambda x, y: adversary.OtherData(segment=3, features=x[600:1200], labels=y[600:1200]),
}


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_cheats_are_caught_by_exact_replay_and_by_tolerance_mode(make_spec, name, honest, digits) -> None:  # type: ignore[no-untyped-def]
    spec, x, y, honest_sink, hashes = honest
    sink = MemorySink()
    claimed = adversary.dishonest_train(spec, TASK, x, y, CHEATS[name](*digits), sink)
    assert claimed[:4] == hashes[:4] and claimed[4] != hashes[4]  # honest up to the cheat
    # exact mode: the first wrong segment is pinpointed, the others replay fine
    assert engine.replay_segment(spec, TASK, 3, sink.data(3), x, y) != claimed[4]
    assert engine.replay_segment(spec, TASK, 4, sink.data(4), x, y) == claimed[5]
    # tolerance mode, verifier on another thread count
    tol = make_spec(replay=_tolerant(spec, 1e-5))
    sink_t = MemorySink()
    adversary.dishonest_train(tol, TASK, x, y, CHEATS[name](*digits), sink_t)
    torch.set_num_threads(2)
    try:
        verdict = judges.verify_segment(tol, TASK, 3, sink_t.data(3), sink_t.data(4), x, y)
    finally:
        torch.set_num_threads(1)
    assert not verdict.accepted and verdict.distance.value > 1e-5


def _tolerant(spec, bound):  # type: ignore[no-untyped-def]
    return {**spec.replay.model_dump(), "tolerance": {"mode": "tolerance", "bound": bound}}


def test_honest_run_at_another_thread_count_passes_tolerance_mode(make_spec, digits) -> None:  # type: ignore[no-untyped-def]
    x, y = digits[0][:600], digits[1][:600]
    base = make_spec(optimizer={"name": "adam", "lr": 1e-3})
    spec = make_spec(optimizer={"name": "adam", "lr": 1e-3}, replay=_tolerant(base, 1e-5))
    sink = MemorySink()
    hashes = engine.train_task(spec, TASK, x, y, sink)
    chain = [sink.data(i) for i in range(len(hashes))]
    cal = tolerance.calibrate(spec, TASK, x, y, chain, thread_counts=[2])
    assert cal.largest < 1e-5 and cal.bound == max(10 * cal.largest, 1e-6)
    torch.set_num_threads(2)
    try:
        verdicts = [judges.verify_segment(spec, TASK, j, chain[j], chain[j + 1], x, y) for j in range(6)]
    finally:
        torch.set_num_threads(1)
    assert all(v.accepted for v in verdicts), [v.distance for v in verdicts]


def test_model_zoo_cnn_and_char_lm_train_replay_and_evaluate(make_spec) -> None:
    rng = np.random.default_rng(0)
    images = rng.standard_normal((64, 1, 8, 8)).astype(np.float32)
    cnn = make_spec(model={"name": "cnn", "args": {"channels": [4, 8], "hidden": 16}},
                    data={"input_shape": [1, 8, 8], "num_classes": 10}, steps_per_task=20)
    text = np.frombuffer(b"the quick brown fox jumps over the lazy dog " * 20, dtype=np.uint8) % 32
    windows = np.stack([text[i : i + 17] for i in range(0, 800, 7)]).astype(np.int64)
    lm_args = {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32}
    lm_data = {"input_shape": [16], "num_classes": 32, "input_dtype": "int64", "targets": "sequence"}
    lm = make_spec(model={"name": "char_lm", "args": lm_args}, data=lm_data,
                   optimizer={"name": "adamw", "lr": 3e-3}, steps_per_task=20)
    for spec, x, y in ((cnn, images, rng.integers(0, 10, 64)), (lm, windows[:, :-1], windows[:, 1:])):
        sink = MemorySink()
        hashes = engine.train_task(spec, TASK, x, y, sink)
        assert engine.replay_segment(spec, TASK, 1, sink.data(1), x, y) == hashes[2]
        result = engine.evaluate(spec, sink.data(2), x, y)
        assert result.loss < engine.evaluate(spec, sink.data(0), x, y).loss
    assert result.perplexity == pytest.approx(float(np.exp(result.loss)))
