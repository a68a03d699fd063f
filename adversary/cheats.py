"""Deliberately dishonest workers, for tests and the demo. The normal code path never imports this.

Each cheat trains a task like :func:`veritrain.training.engine.train_task` does, except in one
segment, and then carries on honestly from the falsified state, so its chain is internally
consistent and only a replay of that segment exposes it:

- :class:`SkipStep` skips one optimizer step (saves compute; the step counter moves on anyway);
- :class:`PerturbWeight` adds ``delta`` to one weight at the end of the segment;
- :class:`OtherData` trains the segment on other examples than the assigned shard;
- :class:`WrongStart` starts from another model (``delta`` added to one initial weight) and
  trains honestly from there: every segment replays, only ``h_0`` differs from the start the
  job bound on-chain, so ``JobMarket.slashWrongStart`` catches it with a proof alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from veritrain.spec import JobSpec, TaskKey
from veritrain.training import profile, state
from veritrain.training.engine import as_tensors, order_for, train_step
from veritrain.training.sinks import CheckpointSink


@dataclass(frozen=True)
class SkipStep:
    segment: int
    offset: int = 0  # which step of the segment is skipped


@dataclass(frozen=True)
class PerturbWeight:
    segment: int
    delta: float = 1e-3
    parameter: int = 0  # index into model.parameters(); element 0 of it is changed


@dataclass(frozen=True)
class OtherData:
    segment: int
    features: Any
    labels: Any


@dataclass(frozen=True)
class WrongStart:
    delta: float = 1e-2
    parameter: int = 0
    segment: int = -1  # no segment is falsified: only the start


Cheat = SkipStep | PerturbWeight | OtherData | WrongStart


def dishonest_train(spec: JobSpec, task: TaskKey, features: Any, labels: Any, cheat: Cheat,
                    sink: CheckpointSink, dp_key: bytes | None = None) -> list[bytes]:
    """Train ``task`` with ``cheat`` applied in its segment; returns the (false) chain h_0..h_n.
    ``dp_key``: a DP-SGD job's shard key (the honest steps draw the honest noise)."""
    profile.enter(spec.replay)
    x, y = as_tensors(spec, features, labels)
    order = order_for(spec, task, len(x))
    if isinstance(cheat, OtherData):
        ox, oy = as_tensors(spec, cheat.features, cheat.labels)
        other = order_for(spec, task, len(ox))
    k = spec.checkpoint_interval
    live = state.initial(spec, task, dp_key=dp_key)
    if isinstance(cheat, WrongStart):
        with torch.no_grad():
            list(live.model.parameters())[cheat.parameter].view(-1)[0] += cheat.delta
    hashes = []
    for index in range(spec.num_checkpoints):
        if index:
            segment = index - 1
            for offset in range(k):
                if segment != cheat.segment:
                    train_step(live, order, x, y)
                elif isinstance(cheat, SkipStep) and offset == cheat.offset:
                    live.step += 1
                elif isinstance(cheat, OtherData):
                    train_step(live, other, ox, oy)
                else:
                    train_step(live, order, x, y)
            if isinstance(cheat, PerturbWeight) and segment == cheat.segment:
                with torch.no_grad():
                    list(live.model.parameters())[cheat.parameter].view(-1)[0] += cheat.delta
        data, digest = state.checkpoint(spec, task, live)
        sink.put(index, data, digest)
        hashes.append(digest)
    return hashes
