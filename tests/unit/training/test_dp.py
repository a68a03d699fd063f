"""DP-SGD in the engine: a Poisson sample and noise both derived from the shard key, per-example
clipping, bitwise replay by a key holder, and what someone without the key (or the public spec
seed alone) gets."""

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
    """With noise 0 and a tiny clip, every sampled example's gradient is cut to C: the update of
    plain SGD (lr 1, no momentum) is at most C * |sample| / (expected batch size) in L2, unlike
    the unclipped plain step's."""
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

    step = steps.training_step_for(tiny, TASK, KEY)
    assert isinstance(step, DpSgdStep)
    sampled = len(step.sample(step.generator(0), len(x), tiny.batch_size))
    assert update(tiny, KEY) <= 1e-3 * sampled / tiny.batch_size * 1.0001
    assert update(plain) > 1e-2
    # noise: sigma*C per coordinate, divided by the expected batch size q*n = batch_size
    loud = make_spec(optimizer=sgd, privacy={"dp_sgd": {"noise_multiplier": 50.0,
                                                        "max_grad_norm": 1.0, "delta": 1e-5}})
    live = state.initial(loud, TASK, dp_key=KEY)
    before = torch.cat([p.detach().flatten().clone() for p in live.model.parameters()])
    engine.train_step(live, engine.order_for(loud, TASK, len(x)), *engine.as_tensors(loud, x, y))
    after = torch.cat([p.detach().flatten() for p in live.model.parameters()])
    per_coord = float((after - before).std())
    expected = 50.0 * 1.0 / loud.batch_size
    assert 0.9 * expected < per_coord < 1.1 * expected


def test_the_sample_is_poisson_and_secret_to_whoever_lacks_the_key(make_spec) -> None:  # type: ignore[no-untyped-def]
    """The attack this stops: with the public batch order an observer of the job document knows
    which steps used a record, so no amplification by subsampling could be claimed. A DP step's
    batch is a Poisson sample (rate q = B/n) drawn from the shard key: the same with the key,
    independent of the public seed, and another one under any other key."""
    n, spec = 1000, make_spec(privacy=DP)
    a = steps.training_step_for(spec, TASK, KEY)
    b = steps.training_step_for(spec.model_copy(update={"seed": spec.seed + 1}), TASK, KEY)
    other = steps.training_step_for(spec, TASK, generate_data_key())
    assert isinstance(a, DpSgdStep) and isinstance(b, DpSgdStep) and isinstance(other, DpSgdStep)
    sizes, overlap_public, overlap_other = [], 0, 0
    public = engine.order_for(spec, TASK, n)
    for t in range(200):
        mine = a.sample(a.generator(t), n, spec.batch_size)
        assert torch.equal(mine, b.sample(b.generator(t), n, spec.batch_size))  # the seed plays no part
        assert torch.equal(mine, a.sample(a.generator(t), n, spec.batch_size))  # replayable
        sizes.append(len(mine))
        overlap_public += len(set(mine.tolist()) & set(public.indices(t).tolist()))
        theirs = other.sample(other.generator(t), n, spec.batch_size)
        overlap_other += len(set(mine.tolist()) & set(theirs.tolist()))
    q = spec.batch_size / n
    # sample sizes: Binomial(n, q): mean B, variance n q (1 - q)
    assert abs(sum(sizes) / len(sizes) - spec.batch_size) < 4 * (n * q * (1 - q) / len(sizes)) ** 0.5
    assert min(sizes) < spec.batch_size < max(sizes)
    # neither the public order nor another key predicts the sample beyond chance (q * B per step)
    chance = 200 * q * spec.batch_size
    assert overlap_public < 2 * chance and overlap_other < 2 * chance
    # q = 1 when the batch covers the shard: every example every step
    assert len(a.sample(a.generator(0), spec.batch_size - 1, spec.batch_size)) == spec.batch_size - 1


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


def test_a_step_whose_sample_is_empty_moves_the_model_by_noise_alone(make_spec, digits) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(batch_size=1, optimizer={"name": "sgd", "lr": 1.0, "momentum": 0.0}, privacy=DP)
    x, y = engine.as_tensors(spec, digits[0][:400], digits[1][:400])
    step = steps.training_step_for(spec, TASK, KEY)
    assert isinstance(step, DpSgdStep)
    t = next(t for t in range(100) if len(step.sample(step.generator(t), len(x), 1)) == 0)
    live = state.initial(spec, TASK, dp_key=KEY)
    live.step = t
    before = [p.detach().clone() for p in live.model.parameters()]
    loss = engine.train_step(live, engine.order_for(spec, TASK, len(x)), x, y)
    assert float(loss) == 0.0 and live.step == t + 1
    gen = step.generator(t)
    torch.rand(len(x), generator=gen)  # the (empty) sample's draw comes first
    for p, b in zip(live.model.parameters(), before, strict=True):
        noise = torch.normal(0.0, 1.0, size=p.shape, generator=gen, dtype=p.dtype)
        assert torch.allclose(b - p.detach(), noise, atol=1e-6)  # lr 1, expected batch 1
