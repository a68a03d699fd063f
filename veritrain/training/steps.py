"""The training step, as a strategy chosen once from the JobSpec.

A :class:`TrainingStep` does one optimizer step of a task on the batch of ``live.step``. The
engine never branches on how: :func:`training_step_for` picks the implementation when a task's
live state is built (:func:`veritrain.training.state.initial`), and the engine, the replay and
the cheats in ``adversary/`` all call it through :func:`veritrain.training.engine.train_step`.

Two implementations: :class:`PlainStep` (the model entry's loss, backward, the optimizer's
step) and :class:`veritrain.training.dp.DpSgdStep` (the same loss, per-example gradients clipped
and noised with a key-derived generator) for specs with ``privacy.dp_sgd``. A spec asking for
a step this engine does not have is refused rather than trained without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from veritrain.errors import SpecError
from veritrain.spec import JobSpec, TaskKey
from veritrain.training import registry
from veritrain.training.data_order import BatchOrder
from veritrain.training.model_entry import Loss


class Live(Protocol):
    """What a step reads and moves on (:class:`veritrain.training.state.Live` has these)."""

    model: Any
    optimizer: Any
    step: int


class TrainingStep(Protocol):
    """``step(live, order, x, y)``: one optimizer step on batch ``live.step``; returns the loss."""

    def __call__(self, live: Live, order: BatchOrder, x: Any, y: Any) -> Any: ...


@dataclass(frozen=True)
class PlainStep:
    """Forward, the model's loss, backward, one optimizer step; ``live.step`` moves on by one."""

    loss: Loss
    autocast: bool = False  # bf16 autocast of the forward pass (a CUDA profile's option)

    def __call__(self, live: Live, order: BatchOrder, x: Any, y: Any) -> Any:
        import torch

        idx = order.indices(live.step)
        device = next(live.model.parameters()).device
        xb, yb = batch_on(x, y, idx, device)
        live.model.train()
        live.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=self.autocast):
            loss = self.loss(live.model(xb), yb)
        loss.backward()
        live.optimizer.step()
        live.step += 1
        return loss


def batch_on(x: Any, y: Any, idx: Any, device: Any) -> tuple[Any, Any]:
    """The batch ``idx`` of the shard, on the model's ``device`` (a no-op when already there:
    the engine moves the shard to the device once)."""
    idx = idx.to(x.device)
    return x[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True)


@dataclass(frozen=True)
class RefusedStep:
    """The step of live state built for something other than training (an evaluation, ``h_0``)
    when the job's step cannot be built here, e.g. a DP-SGD job without its key: calling it
    raises the refusal."""

    problems: tuple[str, ...]

    def __call__(self, live: Live, order: BatchOrder, x: Any, y: Any) -> Any:
        raise SpecError(list(self.problems))


def step_or_refusal(spec: JobSpec, task: TaskKey, dp_key: bytes | None) -> TrainingStep:
    """:func:`training_step_for`, or a :class:`RefusedStep` carrying its refusal."""
    try:
        return training_step_for(spec, task, dp_key)
    except SpecError as exc:
        return RefusedStep(tuple(exc.problems))


def training_step_for(spec: JobSpec, task: TaskKey | None = None,
                      dp_key: bytes | None = None) -> TrainingStep:
    """The step ``spec`` trains with; :class:`SpecError` for a step this engine cannot run.

    A DP-SGD job (``privacy.dp_sgd``) needs ``task`` and ``dp_key``, the task's shard key
    (:func:`veritrain.crypto.shard_key`), from which each step's noise is derived: without it the
    job is refused rather than trained with noise nobody else could replay."""
    from veritrain.training.portable.mode import loss_for

    cuda = spec.replay.cuda
    plain = PlainStep(loss_for(spec, registry.get(spec.model.name).loss),
                      autocast=cuda is not None and cuda.autocast == "bf16")
    dp = spec.privacy.dp_sgd
    if dp is None:
        return plain
    if cuda is not None:
        raise SpecError(["privacy.dp_sgd: DP-SGD is not available with replay.device cuda yet"])
    if dp.noise_multiplier is None:
        raise SpecError(["privacy.dp_sgd: no noise_multiplier; post the job with the requester's "
                         "post_job, which computes it from the target epsilon"])
    if spec.replay.mode == "portable":
        raise SpecError(["privacy.dp_sgd: DP-SGD is not available in portable replay mode"])
    if task is None or dp_key is None:
        raise SpecError(["privacy.dp_sgd: a DP-SGD task needs its shard key to derive the noise "
                         "(pass dp_key=; the worker and verifiers hold it)"])
    from veritrain.training.dp import DpSgdStep

    return DpSgdStep(plain.loss, dp.max_grad_norm, dp.noise_multiplier, bytes(dp_key), task)
