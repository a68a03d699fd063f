"""DP-SGD in the engine: per-example clipping, noise derived from the shard key, bitwise replay
by a key holder, and what someone without the key (or the public spec seed alone) gets."""

from __future__ import annotations

import pytest
import torch

from veritrain.crypto import dp_noise_seed, generate_data_key
from veritrain.errors import SpecError
from veritrain.spec import TaskKey
from veritrain.training import engine, state, steps
from veritrain.training.dp import DpSgdStep
from veritrain.training.sinks import MemorySink

TASK = TaskKey(round=0, shard=0)
KEY = bytes(range(32))
DP = {"dp_sgd": {"noise_multiplier": 1.0, "max_grad_norm": 1.0, "delta": 1e-5}}


def test_noise_seed_is_hkdf_of_the_key_task_and_step() -> None:
    seeds = {dp_noise_seed(KEY, r, s, t) for r in range(2) for s in range(2) for t in range(3)}
    assert len(seeds) == 12  # every (round, shard, step) its own generator
    assert dp_noise_seed(KEY, 0, 0, 0) != dp_noise_seed(generate_data_key(), 0, 0, 0)
    assert all(0 <= s < 2**63 for s in seeds)
    with pytest.raises(ValueError, match="32 bytes"):
        dp_noise_seed(b"short", 0, 0, 0)


def test_a_dp_job_without_the_shard_key_is_refused(make_spec, digits) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(privacy=DP)
    with pytest.raises(SpecError, match="needs its shard key"):
        engine.train_task(spec, TASK, digits[0][:100], digits[1][:100], MemorySink())
    assert isinstance(steps.training_step_for(spec, TASK, KEY), DpSgdStep)
    no_sigma = make_spec(privacy={"dp_sgd": {"epsilon": 4, "max_grad_norm": 1.0, "delta": 1e-5}})
    with pytest.raises(SpecError, match="no noise_multiplier"):
        steps.training_step_for(no_sigma, TASK, KEY)


def test_dp_training_replays_bitwise_with_the_key_and_not_without_it(make_spec, digits) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(privacy=DP)
    x, y = digits[0][:300], digits[1][:300]
    sink = MemorySink()
    chain = engine.train_task(spec, TASK, x, y, sink, dp_key=KEY)
    assert len(chain) == spec.num_checkpoints
    for j in (0, 3):
        _, h = engine.replay_segment_bytes(spec, TASK, j, sink.items[j][0], x, y, dp_key=KEY)
        assert h == chain[j + 1]
        # someone with a different key (e.g. guessing it from the public spec) draws other noise
        _, other = engine.replay_segment_bytes(spec, TASK, j, sink.items[j][0], x, y,
                                               dp_key=generate_data_key())
        assert other != chain[j + 1]


def test_dp_step_clips_each_example_and_adds_noise_of_the_stated_scale(make_spec, digits) -> None:  # type: ignore[no-untyped-def]
    """With noise 0 and a tiny clip, every example's gradient is cut to C: the update of plain
    SGD (lr, no momentum) is at most lr*C in L2, unlike the unclipped plain step's."""
    x, y = digits[0][:200], digits[1][:200]
    sgd = {"name": "sgd", "lr": 1.0, "momentum": 0.0}
    plain = make_spec(optimizer=sgd)
    tiny = make_spec(optimizer=sgd, privacy={"dp_sgd": {"noise_multiplier": 1e-12,
                                                        "max_grad_norm": 1e-3, "delta": 1e-5}})

    def update(spec, key=None):  # type: ignore[no-untyped-def]
        live = state.initial(spec, TASK, dp_key=key)
        before = torch.cat([p.detach().flatten().clone() for p in live.model.parameters()])
        engine.train_step(live, engine.order_for(spec, TASK, len(x)), *engine.as_tensors(spec, x, y))
        after = torch.cat([p.detach().flatten() for p in live.model.parameters()])
        return float((after - before).norm())

    assert update(tiny, KEY) <= 1e-3 * 1.0001
    assert update(plain) > 1e-2
    # noise: sigma*C per coordinate, divided by the batch size
    loud = make_spec(optimizer=sgd, privacy={"dp_sgd": {"noise_multiplier": 50.0,
                                                        "max_grad_norm": 1.0, "delta": 1e-5}})
    live = state.initial(loud, TASK, dp_key=KEY)
    before = torch.cat([p.detach().flatten().clone() for p in live.model.parameters()])
    engine.train_step(live, engine.order_for(loud, TASK, len(x)), *engine.as_tensors(loud, x, y))
    after = torch.cat([p.detach().flatten() for p in live.model.parameters()])
    per_coord = float((after - before).std())
    expected = 50.0 * 1.0 / loud.batch_size
    assert 0.9 * expected < per_coord < 1.1 * expected


def test_the_key_crosses_to_a_fresh_replay_process(make_spec, digits) -> None:  # type: ignore[no-untyped-def]
    """The verifier's exact replay may run in a child process: the key goes with it (dp.key)."""
    from veritrain.training.runner import run_in_profile

    spec = make_spec(privacy=DP)
    x, y = digits[0][:300], digits[1][:300]
    sink = MemorySink()
    chain = engine.train_task(spec, TASK, x, y, sink, dp_key=KEY)
    _, h = run_in_profile(spec, "replay", task=TASK, features=x, labels=y, j=2,
                          checkpoint=sink.items[2][0], dp_key=KEY, force_subprocess=True)
    assert h == chain[3]
    with pytest.raises(SpecError, match="needs its shard key"):
        run_in_profile(spec, "replay", task=TASK, features=x, labels=y, j=2,
                       checkpoint=sink.items[2][0], force_subprocess=True)


def test_without_the_key_a_dp_task_still_has_its_start_and_evaluation_but_no_step(make_spec, digits) -> None:  # type: ignore[no-untyped-def]
    """The requester's h_0 check and baselines need no key; a training step does."""
    spec = make_spec(privacy=DP)
    x, y = digits[0][:100], digits[1][:100]
    assert engine.start_hash(spec, TASK) == engine.train_task(spec, TASK, x, y, MemorySink(), dp_key=KEY)[0]
    live = state.initial(spec, TASK)
    with pytest.raises(SpecError, match="needs its shard key"):
        engine.train_step(live, engine.order_for(spec, TASK, len(x)), *engine.as_tensors(spec, x, y))
    assert live.step == 0
