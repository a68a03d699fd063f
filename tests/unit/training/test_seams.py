"""The engine's strategy seams: models from the zoo or an installed package (with their own loss),
the training step, the replay judge and the incentive scheme, each chosen once from the spec."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from veritrain.checkpoint import decode
from veritrain.errors import SpecError
from veritrain.incentives import ReplayIncentive, ScoredIncentive, incentive_for
from veritrain.spec import TaskKey
from veritrain.training import engine, judges, registry, steps
from veritrain.training.sinks import MemorySink

TASK = TaskKey(round=0, shard=0)

MODEL_PACKAGE = '''
import math

from pydantic import BaseModel, ConfigDict

from veritrain.training.model_entry import ModelEntry, cross_entropy


class LinearArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def build_linear(args, data):
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(data.input_shape), data.num_classes))


def no_gradient(logits, targets, reduction="mean"):
    """A loss whose gradient is zero everywhere: plain SGD leaves every weight where it was."""
    return cross_entropy(logits, targets, reduction) * 0.0


FROZEN = ModelEntry("frozen_linear", LinearArgs, build_linear, no_gradient)
'''


@pytest.fixture
def installed_model_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A third-party distribution on sys.path that declares a ``veritrain.models`` entry point,
    found by importlib.metadata the way a pip-installed package is."""
    (tmp_path / "vt_extra_models").mkdir()
    (tmp_path / "vt_extra_models" / "__init__.py").write_text(textwrap.dedent(MODEL_PACKAGE))
    dist = tmp_path / "vt_extra_models-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vt-extra-models\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[veritrain.models]\nfrozen_linear = vt_extra_models:FROZEN\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reload()
    yield
    registry.reload()


def _model_tensors(data: bytes) -> dict[str, np.ndarray]:
    return {k: v for k, v in decode(data).tensors.items() if k.startswith("model/")}


def _linear_spec(make_spec, name: str):  # type: ignore[no-untyped-def]
    return make_spec(model={"name": name, "args": {}},
                     optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.0})


def test_a_model_registered_by_an_installed_package_validates_and_trains_with_its_own_loss(
        installed_model_package, make_spec, digits) -> None:  # type: ignore[no-untyped-def]
    assert "frozen_linear" in registry.names() and {"mlp", "cnn", "char_lm"} <= set(registry.names())
    with pytest.raises(SpecError, match="model.args.width: unknown field"):
        make_spec(model={"name": "frozen_linear", "args": {"width": 3}})
    frozen = _linear_spec(make_spec, "frozen_linear")
    x, y = digits[0][:200], digits[1][:200]
    sink = MemorySink()
    engine.train_task(frozen, TASK, x, y, sink)
    first, last = _model_tensors(sink.data(0)), _model_tensors(sink.data(frozen.num_checkpoints - 1))
    assert all(np.array_equal(first[k], last[k]) for k in first)  # the zero-gradient loss was used

    # the same builder with the default loss (registered at run time) does move the weights
    entry = registry.get("frozen_linear")
    registry.register("plain_linear", entry.args_model)(entry.builder)
    plain = _linear_spec(make_spec, "plain_linear")
    sink = MemorySink()
    engine.train_task(plain, TASK, x, y, sink)
    first, last = _model_tensors(sink.data(0)), _model_tensors(sink.data(plain.num_checkpoints - 1))
    assert not all(np.array_equal(first[k], last[k]) for k in first)
    assert engine.evaluate(plain, sink.data(plain.num_checkpoints - 1), x, y).loss > 0


def test_a_model_name_cannot_be_taken_twice(installed_model_package) -> None:  # type: ignore[no-untyped-def]
    mlp = registry.get("mlp")
    with pytest.raises(ValueError, match="'mlp' is registered twice"):
        registry.register("mlp", mlp.args_model)(lambda args, data: None)
    assert registry.get("mlp") == mlp


def test_training_step_is_chosen_from_the_spec(make_spec) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec()
    step = steps.training_step_for(spec)
    assert isinstance(step, steps.PlainStep) and step.loss is registry.get("mlp").loss
    dp = make_spec(privacy={"dp_sgd": {"noise_multiplier": 1.0, "max_grad_norm": 1.0,
                                       "epsilon": 8.0, "delta": 1e-5}})
    assert type(steps.training_step_for(dp, TASK, bytes(32))).__name__ == "DpSgdStep"
    with pytest.raises(SpecError, match="DP-SGD task needs its shard key"):  # not trained without noise
        engine.train_task(dp, TASK, np.zeros((4, 64), np.float32), np.zeros(4, np.int64), MemorySink())


def test_replay_judge_is_chosen_from_the_spec_and_judges_by_its_mode(make_spec, digits) -> None:  # type: ignore[no-untyped-def]
    exact = make_spec()
    tol = make_spec(replay={**exact.replay.model_dump(), "tolerance": {"mode": "tolerance", "bound": 1e-3}})
    assert judges.judge_for(exact) == judges.ExactJudge()
    assert judges.judge_for(tol) == judges.ToleranceJudge(1e-3)
    x, y = digits[0][:300], digits[1][:300]
    sink = MemorySink()
    engine.train_task(tol, TASK, x, y, sink)
    honest_next = sink.data(2)
    replayed_next, _ = judges.judge_for(tol).replay(tol, TASK, 1, sink.data(1), x, y)
    assert replayed_next == honest_next  # same machine, same settings: bitwise
    tampered = engine.replay_segment_bytes(tol, TASK, 1, sink.data(1), x[::-1].copy(), y[::-1].copy(),
                                           strict_profile=False)[0]  # the segment on other batches
    within = judges.judge_for(tol).judge(sink.data(1), honest_next, honest_next)
    beyond = judges.judge_for(tol).judge(sink.data(1), tampered, honest_next)
    assert within.accepted and within.distance is not None and within.distance.value == 0.0
    assert not beyond.accepted and "vs bound 0.001" in beyond.detail
    # exact mode accepts no other hash, however close
    assert not judges.judge_for(exact).judge(sink.data(1), None, honest_next).accepted


def test_incentive_scheme_is_chosen_from_the_spec(make_spec) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(num_shards=4, redundancy=2)
    scheme = incentive_for(spec)
    assert scheme == ReplayIncentive()
    assert scheme.round_escrow(spec, reward_per_task=10, referee_fee_pool=7) == 4 * 2 * 10 + 7
    scored = make_spec(incentive="scored", rounds=3)
    assert incentive_for(scored) == ScoredIncentive() and incentive_for(scored).contract == "ScoredRounds"
    # one round (window) escrows its reward and the validators' fee
    assert incentive_for(scored).round_escrow(scored, reward_per_task=10, referee_fee_pool=7) == 17
    with pytest.raises(SpecError, match="settles replay, scored mode only, not 'auction'"):
        incentive_for(make_spec().model_copy(update={"incentive": "auction"}))
