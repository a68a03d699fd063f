"""The deterministic training engine: train a task, replay a segment, evaluate.

A task trains ``steps_per_task`` steps on one shard; after every ``k`` steps (and at step 0)
the full state is encoded canonically (:mod:`veritrain.checkpoint`) and handed to the sink
with its hash ``h_i``. Batches come from :class:`~veritrain.training.data_order.BatchOrder`,
so a run resumed from any checkpoint, or a replay of segment ``j``, sees the same batches and
(under the job's replay profile) produces bitwise the same checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from veritrain.checkpoint import CheckpointState, decode
from veritrain.errors import CheckpointFormatError, DataError
from veritrain.spec import JobSpec, TaskKey
from veritrain.training import profile, registry, state, writer
from veritrain.training.data_order import BatchOrder
from veritrain.training.sinks import CheckpointSink, MemorySink
from veritrain.training.steps import training_step_for

Progress = Callable[[int, int], None]
"""``progress(steps_done, steps_total)``, called after every step."""


def as_tensors(spec: JobSpec, features: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The shard as tensors of the spec's dtypes; :class:`DataError` naming what is wrong."""
    x = torch.as_tensor(np.asarray(features))
    y = torch.as_tensor(np.asarray(labels))
    d = spec.data
    want_x = (len(x), *d.input_shape)
    want_y = (len(x),) if d.targets == "class" else want_x
    if tuple(x.shape) != want_x:
        raise DataError(f"features have shape {tuple(x.shape)}; the job's data wants {want_x}")
    if tuple(y.shape) != want_y:
        raise DataError(f"labels have shape {tuple(y.shape)}; the job's data wants {want_y}")
    if len(x) == 0:
        raise DataError("the shard has no examples")
    # float features in the default dtype the profile set (float32, or a CUDA job's float64)
    x = x.to(torch.get_default_dtype() if d.input_dtype == "float32" else torch.int64).contiguous()
    y = y.to(torch.int64).contiguous()
    if d.input_dtype == "float32" and not torch.isfinite(x).all():
        raise DataError("features contain NaN or infinity")
    limit = d.num_classes
    if int(y.min()) < 0 or int(y.max()) >= limit:
        raise DataError(f"labels must lie in [0, {limit}); found {int(y.min())}..{int(y.max())}")
    if d.input_dtype == "int64" and (int(x.min()) < 0 or int(x.max()) >= limit):
        raise DataError(f"tokens must lie in [0, {limit}); found {int(x.min())}..{int(x.max())}")
    return x, y


def refuse_unsupported(spec: JobSpec, task: TaskKey | None = None, dp_key: bytes | None = None) -> None:
    """Refuse rather than silently train without what the job asks for (before any work)."""
    training_step_for(spec, task if task is not None else TaskKey(round=0, shard=0), dp_key)


def order_for(spec: JobSpec, task: TaskKey, n: int) -> BatchOrder:
    return BatchOrder(spec.seed, task.round, task.shard, n, spec.batch_size)


def train_step(live: state.Live, order: BatchOrder, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One optimizer step on the batch of step ``live.step`` by the job's
    :class:`~veritrain.training.steps.TrainingStep`; returns the loss (a tensor)."""
    loss: torch.Tensor = live.train_step(live, order, x, y)
    return loss


def run_segments(spec: JobSpec, task: TaskKey, live: state.Live, x: torch.Tensor, y: torch.Tensor,
                 sink: CheckpointSink, *, until: int, progress: Progress | None = None,
                 depth: int = writer.DEFAULT_DEPTH) -> list[bytes]:
    """Train from ``live.step`` to step ``until``, emitting a checkpoint every ``k`` steps.

    The training thread only snapshots the state (a clone on its device); host copy, encoding,
    hashing and ``sink.put`` run in order on a :class:`~veritrain.training.writer.BackgroundWriter`
    while training goes on, at most ``depth`` checkpoints in flight. A sink error is raised here.
    """
    order = order_for(spec, task, len(x))
    k, total = spec.checkpoint_interval, spec.steps_per_task
    x, y = x.to(live.device), y.to(live.device)
    with writer.BackgroundWriter(sink, depth) as out:
        while live.step < until:
            train_step(live, order, x, y)
            if progress is not None:
                progress(live.step, total)
            if live.step % k == 0:
                out.submit(live.step // k, state.snapshot(spec, task, live).to_state)
    return out.hashes


def train_task(spec: JobSpec, task: TaskKey, features: Any, labels: Any, sink: CheckpointSink, *,
               progress: Progress | None = None, resume: bytes | None = None,
               initial_model: dict[str, torch.Tensor] | None = None,
               dp_key: bytes | None = None, strict_profile: bool = True) -> list[bytes]:
    """Train ``task`` on its shard; every checkpoint goes to ``sink``. ``dp_key``: the task's
    shard key, which a DP-SGD job derives its noise from (docs/spec/dp.md).

    Fresh: emits ``h_0..h_n`` and returns them. With ``resume`` (the bytes of checkpoint
    ``i``, e.g. :meth:`DirectorySink.latest`), continues after it and returns
    ``h_{i+1}..h_n``. ``initial_model`` (a state_dict, e.g. last round's aggregate) replaces
    the seeded initial weights. Runs in this process: it must honour the profile
    (:func:`profile.enter`; see ``runner.run_in_profile`` for a fresh process), or with
    ``strict_profile=False`` only its torch version (an honest run on other settings, for
    :mod:`veritrain.training.calibrate`).
    """
    spec.check_task(task)
    refuse_unsupported(spec, task, dp_key)
    profile.enter(spec.replay, strict=strict_profile)
    x, y = as_tensors(spec, features, labels)
    if resume is not None:
        live = state.restore(spec, task, resume, dp_key=dp_key)
        hashes: list[bytes] = []
    else:
        live = state.initial(spec, task, initial_model, dp_key=dp_key)
        data, digest = state.checkpoint(spec, task, live)
        sink.put(0, data, digest)
        hashes = [digest]
    return hashes + run_segments(spec, task, live, x, y, sink, until=spec.steps_per_task, progress=progress)


def start_hash(spec: JobSpec, task: TaskKey, initial_model: dict[str, torch.Tensor] | None = None) -> bytes:
    """``h_0`` of ``task`` started from ``initial_model`` (or the seeded model): no training, so
    anyone holding the initial model checks a worker's committed ``h_0`` without replaying."""
    spec.check_task(task)
    return state.checkpoint(spec, task, state.initial(spec, task, initial_model))[1]


def replay_segment_bytes(spec: JobSpec, task: TaskKey, j: int, checkpoint_j: bytes, features: Any,
                         labels: Any, *, strict_profile: bool = True,
                         dp_key: bytes | None = None) -> tuple[bytes, bytes]:
    """Replay the ``k`` steps after checkpoint ``j``: (bytes of checkpoint j+1, h_{j+1})."""
    n = spec.steps_per_task // spec.checkpoint_interval
    if not 0 <= j < n:
        raise ValueError(f"segment {j} does not exist: a task has segments 0..{n - 1}")
    refuse_unsupported(spec, task, dp_key)
    profile.enter(spec.replay, strict=strict_profile)
    live = state.restore(spec, task, checkpoint_j, dp_key=dp_key)
    if live.step != j * spec.checkpoint_interval:
        given = live.step // spec.checkpoint_interval
        raise CheckpointFormatError(f"the checkpoint given is #{given}, not #{j}")
    x, y = as_tensors(spec, features, labels)
    sink = MemorySink()
    run_segments(spec, task, live, x, y, sink, until=(j + 1) * spec.checkpoint_interval)
    return sink.items[j + 1]


def replay_segment(spec: JobSpec, task: TaskKey, j: int, checkpoint_j: bytes, features: Any,
                   labels: Any, *, dp_key: bytes | None = None) -> bytes:
    """``h_{j+1}`` recomputed from checkpoint ``j`` under the job's (pinned) profile."""
    return replay_segment_bytes(spec, task, j, checkpoint_j, features, labels, dp_key=dp_key)[1]


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    perplexity: float | None  # language models (``targets: sequence``)
    examples: int


def evaluate(spec: JobSpec, checkpoint: bytes | CheckpointState, features: Any, labels: Any) -> Evaluation:
    """Mean loss and accuracy of the checkpoint's model on an evaluation set."""
    ck = decode(checkpoint) if not isinstance(checkpoint, CheckpointState) else checkpoint
    model = state.build_model(spec)
    loss_fn = registry.get(spec.model.name).loss
    model.load_state_dict({k.removeprefix("model/"): torch.from_numpy(v)
                           for k, v in ck.tensors.items() if k.startswith("model/")})
    x, y = as_tensors(spec, features, labels)
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    b = spec.evaluation.batch_size
    with torch.no_grad():
        for start in range(0, len(x), b):
            xb, yb = x[start : start + b], y[start : start + b]
            logits = model(xb).reshape(-1, spec.data.num_classes)
            target = yb.reshape(-1)
            loss_sum += float(loss_fn(logits, target, reduction="sum"))
            correct += int((logits.argmax(dim=-1) == target).sum())
            count += target.numel()
    loss = loss_sum / count
    ppl = float(np.exp(loss)) if spec.data.targets == "sequence" else None
    return Evaluation(loss=loss, accuracy=correct / count, perplexity=ppl, examples=len(x))
