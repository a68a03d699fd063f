"""The model zoo's registry: model names, their argument models, builders and losses.

Importing this module never imports torch: a JobSpec can be validated -- the model name
exists, its arguments are accepted, they fit the data -- on a machine that never trains.

Models come from three places, looked up once on first use:

1. the built-in zoo (:data:`veritrain.training.zoo.ENTRIES`);
2. installed packages, through the ``veritrain.models`` entry-point group: in the package's
   ``pyproject.toml``::

       [project.entry-points."veritrain.models"]
       tiny_resnet = "my_models.zoo:TINY_RESNET"   # a ModelEntry, or an iterable of them

3. :func:`register` at run time (a decorator, for code that imports veritrain itself).

A :class:`ModelEntry` is ``(name, args_model, builder, loss)``: ``args_model`` is a frozen
pydantic model that may define ``check_data(data) -> list[str]``; ``builder(args, data)``
returns a ``torch.nn.Module``; ``loss(logits, targets, reduction)`` is the objective
(cross-entropy by default). A name registered twice with different builders is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel

from veritrain.training import zoo
from veritrain.training.model_entry import (  # re-exported: the spec and the engine read them here
    Builder,
    DataShape,
    Loss,
    ModelEntry,
    cross_entropy,
    format_error,
)

__all__ = ["ENTRY_POINT_GROUP", "Builder", "DataShape", "Loss", "ModelEntry", "cross_entropy",
           "format_error", "get", "names", "register"]

#: Installed packages add models through this entry-point group (like the CLI's ``veritrain.cli``).
ENTRY_POINT_GROUP = "veritrain.models"

_MODELS: dict[str, ModelEntry] = {}
_loaded = False


def _add(entry: ModelEntry, source: str) -> None:
    if not isinstance(entry, ModelEntry):
        raise TypeError(f"{source} gave {entry!r}, not a veritrain ModelEntry")
    known = _MODELS.get(entry.name)
    if known is not None and known != entry:
        raise ValueError(f"model {entry.name!r} is registered twice ({source} differs from the first)")
    _MODELS[entry.name] = entry


def _load() -> None:
    """The built-in zoo, then every ``veritrain.models`` entry point; once per process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for entry in zoo.ENTRIES:
        _add(entry, "the built-in zoo")
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        value: Any = ep.load()
        entries: Iterable[Any] = value if isinstance(value, list | tuple) else [value]
        for entry in entries:
            _add(entry, f"entry point {ep.name} ({ep.value})")


def reload() -> None:
    """Forget what was found and look again on next use (after installing a model package)."""
    global _loaded
    _MODELS.clear()
    _loaded = False


def register(name: str, args_model: type[BaseModel], *, loss: Loss = cross_entropy,
             portable: bool = False) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder`` as the zoo model ``name`` taking ``args_model``
    (``portable``: it has a form for ``replay.mode: portable``)."""

    def wrap(builder: Builder) -> Builder:
        _load()
        _add(ModelEntry(name, args_model, builder, loss, portable), f"register({name!r})")
        return builder

    return wrap


def names() -> list[str]:
    _load()
    return sorted(_MODELS)


def get(name: str) -> ModelEntry:
    """The registered model ``name``; KeyError naming the known models otherwise."""
    _load()
    try:
        return _MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_MODELS))}") from None
