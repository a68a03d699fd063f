"""Portable drop-in modules and :func:`convert`, which makes a zoo model portable in place.

Each portable module is a subclass of the torch module it replaces, with the same parameters,
buffers and initialisation, and a ``forward`` built from
:mod:`veritrain.training.portable.functions`. :func:`convert` swaps the class of every known
module and refuses a model that holds any other kind of computing module.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from veritrain.errors import SpecError
from veritrain.training.portable import functions as pf
from veritrain.training.portable.arith import f32
from veritrain.training.portable.rng import bits, keep_mask, normal, uniform


class PortableLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pf.linear(x, self.weight, self.bias)


class PortableLayerNorm(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pf.layer_norm(x, self.weight, self.bias, self.eps)


class PortableEmbedding(nn.Embedding):
    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return pf.embedding(idx, self.weight)


class PortableGELU(nn.GELU):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pf.gelu(x)


class PortableTanh(nn.Tanh):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pf.tanh(x)


class PortableDropout(nn.Dropout):
    """Dropout whose mask comes from :mod:`~veritrain.training.portable.rng`.

    Buffers (so in every checkpoint): ``rng_key`` (set per task by :func:`seed_dropout`) and
    ``rng_calls`` (how many masks were drawn). Kept values are scaled by
    the float32 value of 1/(1-p).
    """

    rng_key: torch.Tensor
    rng_calls: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        mask = keep_mask(int(self.rng_key), int(self.rng_calls), x.shape, self.p, x.device)
        with torch.no_grad():
            self.rng_calls += 1
        scale = torch.where(mask, f32(1.0 / (1.0 - self.p)), 0.0).to(x.dtype)
        return x * scale


_SWAPS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Linear: PortableLinear, nn.LayerNorm: PortableLayerNorm, nn.Embedding: PortableEmbedding,
    nn.GELU: PortableGELU, nn.Tanh: PortableTanh, nn.Dropout: PortableDropout,
}
#: Modules that compute nothing a portable model must replace (containers, elementwise exact ops).
_KEEP: tuple[type[nn.Module], ...] = (nn.Sequential, nn.ModuleList, nn.Flatten, nn.ReLU)


def convert(model: nn.Module) -> nn.Module:
    """Make ``model`` portable in place (and return it).

    A module may opt in with a ``make_portable()`` method (the transformer's attention does:
    it switches its matmul and softmax); any other module type raises :class:`SpecError`.
    The weights are then drawn again by :func:`_initialise`.
    """
    for name, module in model.named_modules():
        kind = type(module)
        if kind in _SWAPS:
            if kind is nn.GELU and module.approximate != "none":  # type: ignore[attr-defined]
                raise SpecError([f"replay.mode: {name}: only the exact GELU has a portable form"])
            if kind is nn.LayerNorm and not module.elementwise_affine:  # type: ignore[attr-defined]
                raise SpecError([f"replay.mode: {name}: a LayerNorm without weights has no portable form"])
            module.__class__ = _SWAPS[kind]
            if kind is nn.Dropout:
                module.register_buffer("rng_key", torch.zeros((), dtype=torch.int64))
                module.register_buffer("rng_calls", torch.zeros((), dtype=torch.int64))
        elif hasattr(module, "make_portable"):
            module.make_portable()
        elif not isinstance(module, _KEEP):
            raise SpecError([f"replay.mode: portable: {name or 'the model'} ({kind.__name__}) has no "
                             "portable form; use standard mode or a model with a portable form"])
    _initialise(model)
    return model


def _initialise(model: nn.Module) -> None:
    """Draw every weight again from the portable generator (torch's initialisers round
    differently on different CPU kernel levels), with torch's distributions: Linear weights and
    biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), Embedding N(0, 1), LayerNorm ones and zeros
    (dropout keys: :func:`seed_dropout`).
    The key comes from the seeded torch generator (its integers are the same everywhere)."""
    key = int(torch.randint(0, 2**31, (), dtype=torch.int64))
    draws = 0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, PortableLinear):
                bound = 1.0 / math.sqrt(module.in_features)
                for p in (module.weight, module.bias):
                    if p is not None:
                        p.copy_(uniform(key, draws, p.shape, -bound, bound))
                        draws += 1
            elif isinstance(module, PortableEmbedding):
                module.weight.copy_(normal(key, draws, module.weight.shape, 1.0))
                draws += 1


def seed_dropout(model: nn.Module) -> None:
    """Give every dropout module of ``model`` its own key for this task (from the torch generator,
    which the engine seeds per task) and a zero counter, so tasks that start from one model draw
    different masks."""
    key = int(torch.randint(0, 2**31, (), dtype=torch.int64))
    drops = [m for m in model.modules() if isinstance(m, PortableDropout)]
    with torch.no_grad():
        for i, module in enumerate(drops):
            module.rng_key.fill_(int(bits(key, i, 1)[0]) & 0x7FFFFFFF)
            module.rng_calls.zero_()
