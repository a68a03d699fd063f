"""The adversary's wrong-start cheat: a chain that replays segment by segment from its own h_0,
whose h_0 alone differs from the honest (bound) start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from adversary.cheats import WrongStart, dishonest_train
from adversary.worker import cheating_trainer
from veritrain.spec import TaskKey, load_spec
from veritrain.training.engine import replay_segment_bytes, train_task
from veritrain.training.sinks import MemorySink

ROOT = Path(__file__).resolve().parents[2]


def test_wrong_start_differs_only_at_the_start_and_replays_from_there() -> None:
    import yaml

    from veritrain.training.profile import current_profile

    raw = yaml.safe_load((ROOT / "examples" / "digits-mlp.yaml").read_text())
    raw.update(steps_per_task=20, checkpoint_interval=10, num_shards=1, batch_size=16)
    raw["replay"] = current_profile(threads=1).model_dump()  # this process honours it
    spec = load_spec(raw)
    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype(np.float32)[:100], y.astype(np.int64)[:100]
    task = TaskKey(round=0, shard=0)
    honest_sink, wrong_sink = MemorySink(), MemorySink()
    honest = train_task(spec, task, x, y, honest_sink)
    wrong = dishonest_train(spec, task, x, y, WrongStart(delta=1e-2), wrong_sink)
    assert wrong[0] != honest[0]
    # every segment of the wrong chain replays: no segment dispute can catch it
    for j in range(len(wrong) - 1):
        assert replay_segment_bytes(spec, task, j, wrong_sink.data(j), x, y)[1] == wrong[j + 1]


def test_wrong_start_takes_no_segment() -> None:
    with pytest.raises(ValueError, match="--segment must be 0"):
        cheating_trainer("wrong-start", 2)
    assert callable(cheating_trainer("wrong-start", 0))
