"""Training-state format 2 (docs/spec section 7.2): an older checkpoint is refused by name."""

from __future__ import annotations

import pytest

from veritrain.checkpoint import decode, encode
from veritrain.errors import CheckpointFormatError
from veritrain.spec import TaskKey
from veritrain.training import engine, state
from veritrain.training.sinks import MemorySink

TASK = TaskKey(round=0, shard=0)


def test_a_version_1_checkpoint_is_refused_not_replayed(make_spec, digits) -> None:  # type: ignore[no-untyped-def]
    """Version 1 read its seeds little-endian and named the job by another digest: replaying
    one under version 2 would give a different h_{j+1} and blame an honest worker."""
    spec = make_spec()
    x, y = digits[0][:100], digits[1][:100]
    sink = MemorySink()
    hashes = engine.train_task(spec, TASK, x, y, sink)
    current = decode(sink.data(1))
    assert current.meta["format"] == state.FORMAT == "veritrain-train-state/2"
    assert engine.replay_segment(spec, TASK, 1, sink.data(1), x, y) == hashes[2]
    current.meta["format"] = "veritrain-train-state/1"
    with pytest.raises(CheckpointFormatError, match="'veritrain-train-state/1'; this build reads"):
        engine.replay_segment(spec, TASK, 1, encode(current), x, y)
