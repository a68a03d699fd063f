"""Assigned and held-out batch indices of a scored window.

A worker's examples in window ``w`` come from ``derive_seed(seed, "scored-assign", w, address)``
(address lower-case hex): nobody picks its own data, and anyone can recompute what a worker was
given. Validators' held-out batches come from ``derive_seed(seed, "scored-eval", w, salt)`` with
``salt`` = :func:`eval_salt` of the window's revealed update hashes: fixed once the commits
close, unknown to every worker when it committed (each sees only its own hash), and the same
for every validator, so honest validators measure the same thing.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from veritrain.canon import derive_seed


def _batches(rng_seed: int, n_examples: int, batch_size: int, n_batches: int) -> list[list[int]]:
    if n_examples < 1 or batch_size < 1 or n_batches < 0:
        raise ValueError(f"need examples >= 1 and batch size >= 1, got {n_examples}, {batch_size}")
    rng = random.Random(rng_seed)
    size = min(batch_size, n_examples)
    return [sorted(rng.sample(range(n_examples), size)) for _ in range(n_batches)]


def assigned_batches(seed: int, window: int, address: str, n_examples: int, batch_size: int,
                     n_batches: int) -> list[list[int]]:
    """The ``n_batches`` batches (example indices) ``address`` trains on in ``window``."""
    rng_seed = derive_seed(seed, "scored-assign", window, address.lower())
    return _batches(rng_seed, n_examples, batch_size, n_batches)


def eval_batches(seed: int, window: int, salt: str, n_examples: int, batch_size: int,
                 n_batches: int) -> list[list[int]]:
    """Held-out batches a validator samples for ``window`` with its own ``salt``."""
    return _batches(derive_seed(seed, "scored-eval", window, salt), n_examples, batch_size, n_batches)


def eval_salt(update_hashes: Sequence[bytes]) -> str:
    """sha256 (hex) of the revealed update hashes of a window, in submission index order."""
    return hashlib.sha256(b"".join(bytes(h) for h in update_hashes)).hexdigest()
