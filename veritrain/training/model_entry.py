"""What a model of the zoo is: its argument model, its builder and its loss.

Kept apart from :mod:`veritrain.training.registry` (which finds entries) and
:mod:`veritrain.training.zoo` (the built-in entries) so neither imports the other's importer.
Nothing here imports torch at import time: a JobSpec validates on a machine that never trains.

A model entry (:class:`ModelEntry`) is the unit a third-party package registers through the
``veritrain.models`` entry-point group (see :mod:`veritrain.training.registry`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class DataShape:
    """What a builder needs to know about the data (the JobSpec's ``data`` section).

    ``targets`` is ``"class"`` (one label per example) or ``"sequence"`` (one label per
    position, e.g. next-token prediction); ``input_dtype`` is ``"float32"`` or ``"int64"``.
    """

    input_shape: tuple[int, ...]
    num_classes: int
    input_dtype: str = "float32"
    targets: str = "class"


Builder = Callable[[Any, DataShape], Any]
"""``builder(args, data) -> torch.nn.Module`` mapping a batch to logits (last dim ``num_classes``)."""


class Loss(Protocol):
    """``loss(logits, targets, reduction)``: the training objective (a torch scalar); with
    ``reduction="none"``, one loss per position, in batch order (scored mode's validators average
    them per example)."""

    def __call__(self, logits: Any, targets: Any,
                 reduction: Literal["mean", "sum", "none"] = "mean") -> Any: ...


def cross_entropy(logits: Any, targets: Any, reduction: Literal["mean", "sum", "none"] = "mean") -> Any:
    """Cross-entropy over the last dimension, every position a sample (classes and sequences)."""
    import torch.nn.functional as F

    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction=reduction)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    args_model: type[BaseModel]
    builder: Builder
    loss: Loss = cross_entropy
    portable: bool = False  # built only from modules veritrain.training.portable can convert

    def parse_args(self, args: dict[str, Any]) -> BaseModel:
        return self.args_model.model_validate(args)

    def problems(self, args: dict[str, Any], data: DataShape | None) -> list[str]:
        """Every problem with ``args`` (paths relative to ``model.args``); empty when fine."""
        try:
            parsed = self.parse_args(args)
        except ValidationError as exc:
            return [format_error(err, prefix="model.args") for err in exc.errors()]
        check = getattr(parsed, "check_data", None)
        if data is not None and check is not None:
            return list(check(data))
        return []


#: pydantic's wording -> ours, longest first (``optimizer.lr: must be > 0``).
_PHRASES = (
    ("Input should be greater than or equal to ", "must be >= "),
    ("Input should be less than or equal to ", "must be <= "),
    ("Input should be greater than ", "must be > "),
    ("Input should be less than ", "must be < "),
    ("Field required", "required"),
    ("Extra inputs are not permitted", "unknown field"),
)


def format_error(err: Any, prefix: str = "") -> str:
    """``path.to.field: message`` for one pydantic error dict."""
    parts = [str(p) for p in err.get("loc", ()) if p not in ("function-after", "function-before")]
    path = ".".join(([prefix] if prefix else []) + parts) or "(spec)"
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    for old, new in _PHRASES:
        msg = msg.replace(old, new)
    head, sep, rest = msg.partition(": ")
    if sep and head.isidentifier():  # a model validator naming its field: "bound: required ..."
        path, msg = (f"{path}.{head}" if path != "(spec)" else head), rest
    return f"{path}: {msg}"
