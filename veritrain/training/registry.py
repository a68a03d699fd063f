"""The model zoo's registry: model names, their argument models and their builders.

Importing this module (and :mod:`veritrain.training.zoo`, which fills it) never imports
torch: a JobSpec can be validated — the model name exists, its arguments are accepted, they
fit the data — on a machine that never trains. Builders import torch inside their bodies.

Adding a model is one registered function in ``zoo.py``::

    @register("mlp", MlpArgs)
    def build_mlp(args: MlpArgs, data: DataShape) -> "torch.nn.Module": ...

where ``MlpArgs`` is a frozen pydantic model and may define ``check_data(data) -> list[str]``
for problems that involve the data section (e.g. a CNN needs a (C, H, W) input).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class ModelEntry:
    name: str
    args_model: type[BaseModel]
    builder: Builder
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


_MODELS: dict[str, ModelEntry] = {}


def register(name: str, args_model: type[BaseModel], *,
             portable: bool = False) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder`` as the zoo model ``name`` taking ``args_model``
    (``portable``: it has a form for ``replay.mode: portable``)."""

    def wrap(builder: Builder) -> Builder:
        if name in _MODELS and _MODELS[name].builder is not builder:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = ModelEntry(name, args_model, builder, portable)
        return builder

    return wrap


def _load_zoo() -> None:
    from veritrain.training import zoo  # noqa: F401  (registers the built-in models)


def names() -> list[str]:
    _load_zoo()
    return sorted(_MODELS)


def get(name: str) -> ModelEntry:
    """The registered model ``name``; KeyError naming the known models otherwise."""
    _load_zoo()
    try:
        return _MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_MODELS))}") from None


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
