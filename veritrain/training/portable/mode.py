"""The one interface the engine uses: model, optimizer and loss for a job's replay mode."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


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


def loss_for(spec: Any, entry_loss: Any) -> Any:
    """The training loss of the job's mode: the model entry's own in standard mode; in portable
    mode the portable cross-entropy (every portable entry trains on cross-entropy), mean over
    every position, as the entry's loss is called (``loss(logits, targets)``)."""
    if not is_portable(spec):
        return entry_loss
    from veritrain.training.portable.functions import cross_entropy

    def portable_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    return portable_cross_entropy
