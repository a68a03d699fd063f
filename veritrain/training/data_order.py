"""Data order: the examples of every step derived from (job seed, task, step) alone.

No DataLoader and no shuffling state: the example stream of a task is the concatenation of
per-epoch permutations, permutation ``e`` drawn by ``torch.randperm`` from a generator seeded
with ``derive_seed(seed, "order", round, shard, e)``; step ``s`` takes stream positions
``s*B .. s*B+B-1``. Replay from any checkpoint therefore sees exactly the same batches.
Normative text: docs/spec/README.md, section 4 (``derive_seed`` is :func:`veritrain.canon.derive_seed`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from veritrain.canon import derive_seed

if TYPE_CHECKING:  # pragma: no cover
    import torch


__all__ = ["BatchOrder", "derive_seed"]


class BatchOrder:
    """Batch indices for one task over a shard of ``n`` examples."""

    def __init__(self, seed: int, round_: int, shard: int, n: int, batch_size: int) -> None:
        if n < 1:
            raise ValueError("the shard has no examples")
        self.seed, self.round, self.shard, self.n, self.batch_size = seed, round_, shard, n, batch_size
        self._cache: dict[int, torch.Tensor] = {}

    def permutation(self, epoch: int) -> torch.Tensor:
        import torch

        if epoch not in self._cache:
            if len(self._cache) > 4:
                self._cache.clear()
            g = torch.Generator().manual_seed(derive_seed(self.seed, "order", self.round, self.shard, epoch))
            self._cache[epoch] = torch.randperm(self.n, generator=g)
        return self._cache[epoch]

    def indices(self, step: int) -> torch.Tensor:
        """The ``batch_size`` example indices of (0-based) ``step``."""
        import torch

        start, stop = step * self.batch_size, (step + 1) * self.batch_size
        pieces = []
        while start < stop:
            epoch, offset = divmod(start, self.n)
            take = min(stop - start, self.n - offset)
            pieces.append(self.permutation(epoch)[offset : offset + take])
            start += take
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)
