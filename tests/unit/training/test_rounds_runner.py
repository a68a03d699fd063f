"""A round's task starts from the previous aggregate: the runner threads the initial model's
canonical bytes to the engine, in this process and in a fresh one, and a resume gives the
same chain."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from veritrain.jobdoc import encode_initial_model
from veritrain.spec import TaskKey
from veritrain.training import state
from veritrain.training.engine import start_hash
from veritrain.training.runner import model_state_of, run_in_profile, train_or_resume
from veritrain.training.sinks import DirectorySink


def _aggregate(spec, seed: int) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    model = state.build_model(spec)
    rng = np.random.default_rng(seed)
    return {f"model/{k}": rng.standard_normal(v.shape).astype(np.float32) * 0.1
            for k, v in model.state_dict().items()}


def test_initial_model_sets_h0_and_a_resume_gives_the_same_chain(make_spec, digits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(rounds=2)
    x, y = digits[0][:300], digits[1][:300]
    task = TaskKey(round=1, shard=0)
    plain = encode_initial_model(spec, "ab" * 32, 1, _aggregate(spec, 1))
    chain = train_or_resume(spec, task, x, y, tmp_path / "a", initial_model=plain)
    assert len(chain) == spec.num_checkpoints
    assert chain[0] == start_hash(spec, task, model_state_of(plain))
    assert chain[0] != start_hash(spec, task)  # not the seeded start
    other = encode_initial_model(spec, "ab" * 32, 1, _aggregate(spec, 2))
    assert start_hash(spec, task, model_state_of(other)) != chain[0]
    # checkpoint 0 holds exactly the aggregate's weights
    ck0 = state.restore(spec, task, DirectorySink(tmp_path / "a").read(0))
    agg = model_state_of(plain)
    assert all(np.array_equal(v.numpy(), agg[k].numpy()) for k, v in ck0.model.state_dict().items())
    # killed after checkpoint 2: resuming (initial model given again or not) gives the same chain
    b = tmp_path / "b"
    train_or_resume(spec, task, x, y, b, initial_model=plain)
    for i in DirectorySink(b).indices()[3:]:
        DirectorySink(b).path(i).unlink()
    assert train_or_resume(spec, task, x, y, b, initial_model=plain) == chain


def test_a_fresh_process_trains_from_the_same_initial_model(make_spec, digits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(rounds=2)
    x, y = digits[0][:300], digits[1][:300]
    task = TaskKey(round=1, shard=1)
    plain = encode_initial_model(spec, "cd" * 32, 1, _aggregate(spec, 3))
    here = train_or_resume(spec, task, x, y, tmp_path / "here", initial_model=plain)
    there = run_in_profile(spec, "train", task=task, features=x, labels=y, directory=tmp_path / "there",
                           force_subprocess=True, initial_model=plain)
    assert there == here
