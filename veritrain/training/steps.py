"""The training step, as a strategy chosen once from the JobSpec.

A :class:`TrainingStep` does one optimizer step of a task on the batch of ``live.step``. The
engine never branches on how: :func:`training_step_for` picks the implementation when a task's
live state is built (:func:`veritrain.training.state.initial`), and the engine, the replay and
the cheats in ``adversary/`` all call it through :func:`veritrain.training.engine.train_step`.

Today there is one implementation, :class:`PlainStep` (the model entry's loss, backward, the
optimizer's step). DP-SGD and device-specific steps are new implementations (DP-SGD a wrapper
around a plain step that clips and noises the gradients) returned here for the specs that ask
for them; until one exists, such a spec is refused rather than trained without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from veritrain.errors import SpecError
from veritrain.spec import JobSpec
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

    def __call__(self, live: Live, order: BatchOrder, x: Any, y: Any) -> Any:
        idx = order.indices(live.step)
        live.model.train()
        live.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(live.model(x[idx]), y[idx])
        loss.backward()
        live.optimizer.step()
        live.step += 1
        return loss


def training_step_for(spec: JobSpec) -> TrainingStep:
    """The step ``spec`` trains with; :class:`SpecError` for a step this engine does not have."""
    if spec.privacy.dp_sgd is not None:
        raise SpecError(["privacy.dp_sgd: DP-SGD is not supported by this engine yet; "
                         "remove it or use an engine that applies it"])
    from veritrain.training.portable.mode import loss_for

    return PlainStep(loss_for(spec, registry.get(spec.model.name).loss))
