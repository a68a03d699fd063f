"""The background checkpoint writer: training goes on while a sink is slow, at most `depth`
checkpoints wait, order is kept, a sink error reaches the training thread, and a crash leaves
a contiguous run of whole checkpoints that a resume continues after."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from veritrain.checkpoint import CheckpointState, checkpoint_hash, decode, encode
from veritrain.spec import TaskKey
from veritrain.training import engine
from veritrain.training.sinks import DirectorySink, MemorySink
from veritrain.training.writer import BackgroundWriter


def _state(i: int) -> CheckpointState:
    return CheckpointState(meta={"i": i}, tensors={"w": np.full(4, i, dtype=np.float32)})


class GatedSink:
    """Blocks in ``put`` until released; records the order of puts."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.order: list[int] = []

    def put(self, index: int, data: bytes, digest: bytes) -> None:
        self.entered.set()
        self.gate.wait(10)
        self.order.append(index)


def test_a_slow_sink_does_not_hold_training_until_the_queue_is_full() -> None:
    sink = GatedSink()
    w = BackgroundWriter(sink, depth=2)
    w.submit(0, lambda: _state(0))
    assert sink.entered.wait(5)
    w.submit(1, lambda: _state(1))  # returns at once: one being written, one queued
    assert w.in_flight == 2 and sink.order == []
    third = threading.Thread(target=w.submit, args=(2, lambda: _state(2)))
    third.start()
    third.join(0.3)
    assert third.is_alive()  # the queue is full: the training thread waits for the writer
    sink.gate.set()
    third.join(5)
    assert not third.is_alive()
    hashes = w.close()
    assert sink.order == [0, 1, 2]
    assert hashes == [checkpoint_hash(encode(_state(i))) for i in range(3)]


def test_a_sink_error_reaches_the_training_thread() -> None:
    class Broken:
        def put(self, index: int, data: bytes, digest: bytes) -> None:
            raise OSError("disk full")

    w = BackgroundWriter(Broken(), depth=1)
    w.submit(0, lambda: _state(0))
    with pytest.raises(OSError, match="disk full"):
        w.submit(1, lambda: _state(1))
    with pytest.raises(ValueError):
        BackgroundWriter(MemorySink(), depth=0)


def test_training_killed_mid_queue_resumes_from_the_last_whole_checkpoint(  # type: ignore[no-untyped-def]
        tmp_path, make_spec, digits) -> None:
    """The sink fails at checkpoint 3 while training runs ahead: what is on disk is 0..2, whole,
    and a resume from there gives the uninterrupted chain."""
    spec, task = make_spec(), TaskKey(round=0, shard=0)
    x, y = digits
    whole = MemorySink()
    engine.train_task(spec, task, x, y, whole)

    class DiesAtThree(DirectorySink):
        def put(self, index: int, data: bytes, digest: bytes) -> None:
            if index == 3:
                raise KeyboardInterrupt("killed")
            super().put(index, data, digest)

    with pytest.raises(KeyboardInterrupt):
        engine.train_task(spec, task, x, y, DiesAtThree(tmp_path))
    disk = DirectorySink(tmp_path)
    assert disk.indices() == [0, 1, 2]
    latest = disk.latest()
    assert latest is not None and latest[0] == 2
    assert decode(latest[1]).meta["step"] == 2 * spec.checkpoint_interval
    rest = engine.train_task(spec, task, x, y, disk, resume=latest[1])
    assert disk.chain() == whole.hashes() and rest == whole.hashes()[3:]
