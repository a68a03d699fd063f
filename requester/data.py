"""The requester's dataset: load it, check it fits the job's model, split it into shards.

Adapter until the core's dataset module lands (issue 4, ``veritrain.data``/``shards``): the
loaders here read ``.npz`` (``features``/``labels``, or ``x``/``y``), ``.pt`` (a dict of
tensors with the same keys, or a ``(features, labels)`` tuple) and CSV (label in the last
column, an optional header row). A shard is an ``.npz`` with exactly ``features`` and
``labels`` (no pickles) — the same container the engine's runner uses — so a worker reads it
with ``numpy.load(io.BytesIO(plaintext), allow_pickle=False)``; see :func:`read_shard`.

No torch at import time (``.pt`` loading imports it inside the loader).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from veritrain.errors import DataError
from veritrain.spec import JobSpec
from veritrain.training.data_order import derive_seed

SHARD_KEYS = ("features", "labels")


@dataclass(frozen=True)
class Dataset:
    """Features and labels in memory; ``source`` names where they came from (for messages)."""

    features: np.ndarray
    labels: np.ndarray
    source: str = "dataset"

    def __len__(self) -> int:
        return len(self.features)

    def take(self, idx: np.ndarray) -> Dataset:
        return Dataset(self.features[idx], self.labels[idx], self.source)


def load_dataset(obj: Any) -> Dataset:
    """A :class:`Dataset` from a path (.npz, .pt, .csv), a ``(features, labels)`` pair or a Dataset."""
    if isinstance(obj, Dataset):
        return obj
    if isinstance(obj, tuple | list) and len(obj) == 2:
        return Dataset(np.asarray(obj[0]), np.asarray(obj[1]), "in-memory dataset")
    if not isinstance(obj, str | Path):
        raise DataError(f"cannot use a {type(obj).__name__} as a dataset: pass a path "
                        "(.npz, .pt, .csv) or a (features, labels) pair")
    path = Path(obj)
    if not path.exists():
        raise DataError(f"dataset {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix in (".pt", ".pth"):
        return _load_pt(path)
    if suffix == ".csv":
        return _load_csv(path)
    raise DataError(f"dataset {path}: unsupported format {suffix or '(none)'}; use .npz, .pt or .csv")


def _pick(keys: Any, path: Path) -> tuple[str, str]:
    for fx, fy in (("features", "labels"), ("x", "y"), ("X", "y")):
        if fx in keys and fy in keys:
            return fx, fy
    raise DataError(f"dataset {path} has arrays {sorted(keys)}; it needs 'features' and 'labels' "
                    "(or 'x' and 'y')")


def _load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as npz:
            fx, fy = _pick(npz.files, path)
            return Dataset(npz[fx], npz[fy], str(path))
    except (ValueError, OSError) as exc:
        raise DataError(f"dataset {path} is not a readable .npz without pickles: {exc}") from None


def _load_pt(path: Path) -> Dataset:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise DataError(f"dataset {path} is not a readable tensor file: {exc}") from None
    if isinstance(obj, tuple | list) and len(obj) == 2:
        return Dataset(np.asarray(obj[0]), np.asarray(obj[1]), str(path))
    if isinstance(obj, dict):
        fx, fy = _pick(obj.keys(), path)
        return Dataset(np.asarray(obj[fx]), np.asarray(obj[fy]), str(path))
    raise DataError(f"dataset {path} holds a {type(obj).__name__}; save a dict "
                    "{'features': tensor, 'labels': tensor}")


def _load_csv(path: Path) -> Dataset:
    rows: list[list[float]] = []
    with open(path, newline="") as fh:
        for n, row in enumerate(csv.reader(fh), start=1):
            if not row:
                continue
            try:
                rows.append([float(v) for v in row])
            except ValueError:
                if n == 1 and not rows:  # a header row
                    continue
                raise DataError(f"dataset {path}, row {n}: not all values are numbers") from None
    if not rows:
        raise DataError(f"dataset {path} has no data rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise DataError(f"dataset {path}: rows have different numbers of columns ({sorted(widths)})")
    arr = np.asarray(rows)
    return Dataset(arr[:, :-1].astype(np.float32), arr[:, -1], str(path))


# ------------------------------------------------------------------------ validation
def check_fits(spec: JobSpec, data: Dataset) -> Dataset:
    """The dataset in the spec's dtypes; :class:`DataError` naming every mismatch with the model."""
    d = spec.data
    x, y = np.asarray(data.features), np.asarray(data.labels)
    where = data.source
    problems: list[str] = []
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"{where} has no examples")
    if tuple(x.shape[1:]) != tuple(d.input_shape):
        flat = int(np.prod(x.shape[1:])) == int(np.prod(d.input_shape))
        hint = f" (reshape to {tuple(d.input_shape)})" if flat else ""
        problems.append(f"one example has shape {tuple(x.shape[1:])}, the model's input is "
                        f"{tuple(d.input_shape)} (data.input_shape){hint}")
    want_y = (len(x),) if d.targets == "class" else (len(x), *d.input_shape)
    if tuple(y.shape) != want_y:
        problems.append(f"labels have shape {tuple(y.shape)}, expected {want_y}")
    if problems:
        raise DataError(f"{where} does not fit the job's model: " + "; ".join(problems))
    if d.input_dtype == "float32":
        if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
            raise DataError(f"{where}: features are {x.dtype}, not numbers")
        x = x.astype(np.float32)
        bad = np.argwhere(~np.isfinite(x).reshape(len(x), -1).all(axis=1))
        if len(bad):
            raise DataError(f"{where}: example {int(bad[0][0])} has NaN or infinite features")
    else:
        x = _integers(x, where, "tokens")
    y = _integers(y, where, "labels")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= d.num_classes:
        flat = y.reshape(len(y), -1)
        row = int(np.argwhere(((flat < 0) | (flat >= d.num_classes)).any(axis=1))[0][0])
        bad = [int(v) for v in flat[row] if not 0 <= v < d.num_classes][0]
        raise DataError(f"{where}: labels must lie in [0, {d.num_classes}) (data.num_classes); "
                        f"example {row} has label {bad}")
    if len(x) < spec.num_shards:
        raise DataError(f"{where} has {len(x)} examples, fewer than the job's {spec.num_shards} shards")
    return Dataset(np.ascontiguousarray(x), np.ascontiguousarray(y), where)


def _integers(a: np.ndarray, where: str, what: str) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64)
    if np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        return a.astype(np.int64)
    raise DataError(f"{where}: {what} must be whole numbers, got {a.dtype}")


# -------------------------------------------------------------------------- splitting
def split_holdout(spec: JobSpec, data: Dataset, fraction: float) -> tuple[Dataset, Dataset | None]:
    """(training part, held-out part): a seeded split the requester keeps the second half of."""
    if not 0 <= fraction < 1:
        raise DataError(f"holdout must be in [0, 1), got {fraction}")
    if fraction == 0:
        return data, None
    rng = np.random.default_rng(derive_seed(spec.seed, "requester-holdout"))
    perm = rng.permutation(len(data))
    n_hold = max(1, int(round(len(data) * fraction)))
    if len(data) - n_hold < spec.num_shards:
        raise DataError(f"{data.source}: after holding out {n_hold} examples, {len(data) - n_hold} "
                        f"remain for {spec.num_shards} shards; lower the holdout")
    return data.take(np.sort(perm[n_hold:])), data.take(np.sort(perm[:n_hold]))


def split_shards(spec: JobSpec, data: Dataset) -> list[Dataset]:
    """``spec.num_shards`` shards of near-equal size; the same (spec seed, data) gives the same split."""
    rng = np.random.default_rng(derive_seed(spec.seed, "requester-shards"))
    perm = rng.permutation(len(data))
    return [data.take(np.sort(part)) for part in np.array_split(perm, spec.num_shards)]


def shard_bytes(shard: Dataset) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, features=shard.features, labels=shard.labels)
    return buf.getvalue()


def read_shard(data: bytes, source: str = "shard") -> Dataset:
    """The inverse of :func:`shard_bytes` (what a worker does after decrypting)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if sorted(npz.files) != sorted(SHARD_KEYS):
                raise DataError(f"{source} has arrays {sorted(npz.files)}, expected {list(SHARD_KEYS)}")
            return Dataset(npz["features"], npz["labels"], source)
    except (ValueError, OSError) as exc:
        raise DataError(f"{source} is not a shard (.npz of features and labels): {exc}") from None


def save_npz(data: Dataset, path: Path) -> Path:
    """Write ``data`` as a 0600 .npz (the requester's held-out set stays private)."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(shard_bytes(data))
    return path
