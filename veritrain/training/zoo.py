"""The built-in model zoo: an MLP, a small CNN, a character-level transformer LM and a byte-level GPT.

Each model is one builder function marked with :func:`_model` (its name, its frozen argument
model and its loss), collected in :data:`ENTRIES` for :mod:`veritrain.training.registry`.
torch is imported inside the builders only, so specs validate without it. Every model maps a
batch of inputs to logits whose last dimension is ``num_classes``; all three train on
cross-entropy (over positions for the language model).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from veritrain.training.model_entry import Builder, DataShape, Loss, ModelEntry, cross_entropy

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


#: The built-in models, in the order they are defined.
ENTRIES: list[ModelEntry] = []


def _model(name: str, args_model: type[BaseModel], *, loss: Loss = cross_entropy,
           portable: bool = False) -> Callable[[Builder], Builder]:
    """Mark ``builder`` as the zoo model ``name`` (``portable``: it has a form for
    ``replay.mode: portable``, see :mod:`veritrain.training.portable`)."""

    def wrap(builder: Builder) -> Builder:
        ENTRIES.append(ModelEntry(name, args_model, builder, loss, portable))
        return builder

    return wrap


class _Args(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _needs(data: DataShape, *, dtype: str, targets: str, rank: int | None, what: str) -> list[str]:
    problems = []
    if data.input_dtype != dtype:
        problems.append(f"data.input_dtype: the {what} needs {dtype} inputs")
    if data.targets != targets:
        problems.append(f"data.targets: the {what} needs {targets!r} targets")
    if rank is not None and len(data.input_shape) != rank:
        problems.append(f"data.input_shape: the {what} needs a rank-{rank} example shape")
    return problems


class MlpArgs(_Args):
    hidden: list[int] = Field(default_factory=lambda: [128], description="hidden layer widths")
    activation: Literal["relu", "tanh", "gelu"] = "relu"
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    def check_data(self, data: DataShape) -> list[str]:
        problems = _needs(data, dtype="float32", targets="class", rank=None, what="mlp")
        if any(h < 1 for h in self.hidden):
            problems.append("model.args.hidden: every width must be >= 1")
        return problems


@_model("mlp", MlpArgs, portable=True)
def build_mlp(args: MlpArgs, data: DataShape) -> nn.Module:
    from torch import nn

    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}[args.activation]
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(data.input_shape)
    for h in args.hidden:
        layers += [nn.Linear(width, h), act()]
        if args.dropout:
            layers.append(nn.Dropout(args.dropout))
        width = h
    layers.append(nn.Linear(width, data.num_classes))
    return nn.Sequential(*layers)


class CnnArgs(_Args):
    channels: list[int] = Field(default_factory=lambda: [16, 32], min_length=1, max_length=4)
    kernel_size: int = Field(default=3, ge=1, le=7)
    hidden: int = Field(default=64, ge=1)

    def check_data(self, data: DataShape) -> list[str]:
        problems = _needs(data, dtype="float32", targets="class", rank=3, what="cnn")
        if not problems and min(data.input_shape[1:]) < 2 ** len(self.channels):
            problems.append(
                f"model.args.channels: {len(self.channels)} pooling stages need images of at least "
                f"{2 ** len(self.channels)}x{2 ** len(self.channels)}"
            )
        return problems


@_model("cnn", CnnArgs)
def build_cnn(args: CnnArgs, data: DataShape) -> nn.Module:
    from torch import nn

    c, h, w = data.input_shape
    layers: list[nn.Module] = []
    for out in args.channels:
        layers += [nn.Conv2d(c, out, args.kernel_size, padding=args.kernel_size // 2), nn.ReLU(),
                   nn.MaxPool2d(2)]
        c, h, w = out, h // 2, w // 2
    layers += [nn.Flatten(), nn.Linear(c * h * w, args.hidden), nn.ReLU(),
               nn.Linear(args.hidden, data.num_classes)]
    return nn.Sequential(*layers)


class CharLmArgs(_Args):
    d_model: int = Field(default=64, ge=8)
    n_heads: int = Field(default=4, ge=1)
    n_layers: int = Field(default=2, ge=1, le=12)
    d_ff: int = Field(default=128, ge=8)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    def check_data(self, data: DataShape) -> list[str]:
        problems = _needs(data, dtype="int64", targets="sequence", rank=1, what="char_lm")
        if self.d_model % self.n_heads:
            problems.append("model.args.n_heads: must divide d_model")
        return problems


@_model("char_lm", CharLmArgs, portable=True)
def build_char_lm(args: CharLmArgs, data: DataShape) -> nn.Module:
    from veritrain.training.transformer import CharTransformer

    return CharTransformer(
        vocab=data.num_classes, context=data.input_shape[0], d_model=args.d_model,
        n_heads=args.n_heads, n_layers=args.n_layers, d_ff=args.d_ff, dropout=args.dropout,
    )


class GptArgs(_Args):
    d_model: int = Field(default=256, ge=8)
    n_heads: int = Field(default=4, ge=1)
    n_layers: int = Field(default=4, ge=1, le=24)
    d_ff: int | None = Field(default=None, ge=8, description="default 4 x d_model")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    def check_data(self, data: DataShape) -> list[str]:
        problems = _needs(data, dtype="int64", targets="sequence", rank=1, what="gpt")
        if data.num_classes != 256:
            problems.append("data.num_classes: the gpt reads bytes; its vocabulary is 256")
        if self.d_model % self.n_heads:
            problems.append("model.args.n_heads: must divide d_model")
        return problems


@_model("gpt", GptArgs)
def build_gpt(args: GptArgs, data: DataShape) -> nn.Module:
    """A byte-level GPT (:mod:`veritrain.training.gpt`): tied embeddings, GPT-2 initialisation."""
    from veritrain.training.gpt import BytesGpt

    return BytesGpt(vocab=data.num_classes, context=data.input_shape[0], d_model=args.d_model,
                    n_heads=args.n_heads, n_layers=args.n_layers, d_ff=args.d_ff or 4 * args.d_model,
                    dropout=args.dropout)
