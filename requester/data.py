"""The requester's dataset: load it, check it fits the job's model, hold some back, shard it.

Loading, validation, the seeded shard split and the shard format are the core's
(:mod:`veritrain.data`), so workers read exactly what the requester wrote; this module adds
the checks against the job's model and the held-out set the requester keeps for itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from veritrain import data as core
from veritrain.data import Dataset
from veritrain.errors import DataError
from veritrain.spec import JobSpec
from veritrain.training.data_order import derive_seed

__all__ = ["Dataset", "load_dataset", "split_holdout", "split_shards", "save_holdout", "scale_warning"]


def load_dataset(obj: Any, spec: JobSpec) -> Dataset:
    """A dataset that fits ``spec``'s model: a path (.npz, .pt, .csv, a folder of .npy images
    with labels.csv) or a ``(features, labels)`` pair. DataError names the file and the first bad lines."""
    kinds = {("float32", "class"), ("int64", "sequence")}
    if (spec.data.input_dtype, spec.data.targets) not in kinds:
        raise DataError("the shard format carries float32 features with one class label per example, "
                        "or int64 tokens with one next token per position; this job wants "
                        f"{spec.data.input_dtype} inputs with {spec.data.targets!r} targets")
    if isinstance(obj, Dataset):
        data = core.validate(obj.features, obj.labels, obj.source, **core.spec_checks(spec))
    elif isinstance(obj, tuple | list) and len(obj) == 2:
        data = core.validate(obj[0], obj[1], "the dataset given", **core.spec_checks(spec))
    elif isinstance(obj, str | Path):
        data = core.load(obj, label=spec.data.label, format=spec.data.format, **core.spec_checks(spec))
    else:
        raise DataError(f"cannot use a {type(obj).__name__} as a dataset: pass a path "
                        "(.npz, .pt, .csv, image folder) or a (features, labels) pair")
    if len(data) < spec.num_shards:
        raise DataError(f"{data.source} has {len(data)} examples, fewer than the job's "
                        f"{spec.num_shards} shards")
    return data


def split_holdout(spec: JobSpec, data: Dataset, fraction: float) -> tuple[Dataset, Dataset | None]:
    """(training part, held-out part): a seeded split; the held-out part never leaves this machine."""
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
    """``spec.num_shards`` near-equal shards, seeded by the spec's seed (:func:`veritrain.data.split`)."""
    return core.split(data, spec.num_shards, spec.seed)


def save_holdout(data: Dataset, path: Path) -> Path:
    """Write the held-out set as a 0600 .npz (it stays private; :func:`veritrain.data.load`
    reads it back)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        np.savez(fh, features=data.features, labels=data.labels)
    return path


def scale_warning(spec: JobSpec, data: Dataset) -> str | None:
    """A warning when the features look unscaled and the job declares no preprocessing
    (a model trains badly on raw features of very different ranges), else None."""
    if spec.data.preprocessing != "none" or spec.data.input_dtype != "float32":
        return None
    cols = core.unscaled_features(data.features)
    if not cols:
        return None
    flat = data.features.reshape(len(data), -1)
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    widest = max(cols, key=lambda c: float(hi[c] - lo[c]))
    return (f"{data.source}: features look unscaled ({len(cols)} of {flat.shape[1]} range far beyond unit "
            f"scale, the widest from {lo[widest]:g} to {hi[widest]:g}); models usually train badly on raw "
            "features: set `data.preprocessing: standardize` (schema_version: 2) so the job standardizes "
            "them with statistics of the training split")
