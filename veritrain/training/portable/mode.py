"""The one interface the engine uses: model, optimizer and loss for a job's replay mode."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def is_portable(spec: Any) -> bool:
    return bool(spec.replay.mode == "portable")


def make_model(spec: Any, model: nn.Module) -> nn.Module:
    """The zoo's ``model`` as the job's mode wants it (converted in place when portable)."""
    if not is_portable(spec):
        return model
    from veritrain.training.portable.modules import convert

    return convert(model)


def start_task(spec: Any, model: nn.Module) -> None:
    """Per-task randomness of a portable model (its dropout keys), drawn from the torch generator
    the engine has just seeded for the task; nothing in standard mode (dropout uses that
    generator directly)."""
    if is_portable(spec):
        from veritrain.training.portable.modules import seed_dropout

        seed_dropout(model)


def make_optimizer(spec: Any, params: Iterable[torch.Tensor]) -> torch.optim.Optimizer | None:
    """The portable optimizer for a portable job; None means: the standard torch optimizer."""
    if not is_portable(spec):
        return None
    from veritrain.training.portable.optim import build

    return build(spec.optimizer, params)


def loss_fn(portable: bool) -> Loss:
    """Mean cross-entropy of (N, C) logits against (N,) classes, portable or torch's."""
    if not portable:
        return F.cross_entropy
    from veritrain.training.portable.functions import cross_entropy

    return cross_entropy
