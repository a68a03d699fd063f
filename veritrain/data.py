"""Datasets: load, validate, split deterministically into shards, and the shard format.

Loaders: ``.npz`` (``features``/``labels`` or ``x``/``y``), ``.pt`` (a dict with those keys or
a ``(features, labels)`` tuple of tensors), CSV (label in the last column or a named one; a
header row is detected), and a folder of ``.npy`` images with a ``labels.csv`` (``file,label``).
Validation names the file and the row: wrong feature shape, NaN/inf, labels that are not
integers in ``[0, num_classes)``.

Shard format (version 1, little-endian)::

    b"VTSHARD" | version u8 | n u64 | ndim u8 | dims u32 * ndim | features f32[n, *dims] | labels i64[n]

No pickles anywhere: ``np.load(..., allow_pickle=False)``, ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import csv
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from veritrain.canon import derive_seed
from veritrain.errors import DataError

if TYPE_CHECKING:
    from veritrain.spec import JobSpec

MAGIC = b"VTSHARD"
VERSION = 1
_HEAD = struct.Struct("<7sBQB")


@dataclass(frozen=True)
class Dataset:
    features: np.ndarray  # float32 [n, ...]
    labels: np.ndarray  # int64 [n]
    source: str = "dataset"

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def take(self, idx: np.ndarray) -> Dataset:
        return Dataset(self.features[idx], self.labels[idx], self.source)


def validate(features: Any, labels: Any, source: str, *, num_classes: int | None = None,
             feature_shape: tuple[int, ...] | None = None) -> Dataset:
    """Convert to float32/int64 and check everything; DataError names ``source`` and the row."""
    x = np.asarray(features)
    y = np.asarray(labels)
    if x.ndim < 1 or x.shape[0] == 0:
        raise DataError(f"{source}: no examples")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise DataError(f"{source}: {x.shape[0]} feature rows but labels of shape {y.shape}; "
                        "need one label per row")
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    if feature_shape is not None and tuple(x.shape[1:]) != tuple(feature_shape):
        raise DataError(f"{source}: features have shape {tuple(x.shape[1:])} per row, "
                        f"the model expects {tuple(feature_shape)}")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{source}: features are {x.dtype}, not numbers")
    x = x.astype(np.float32, copy=False)
    bad = ~np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
    if bad.any():
        raise DataError(f"{source}: row {int(np.argmax(bad))} has a NaN or infinite feature")
    if not np.issubdtype(y.dtype, np.number):
        raise DataError(f"{source}: labels are {y.dtype}, not integers")
    yi = y.astype(np.int64)
    nonint = yi != y
    if nonint.any():
        r = int(np.argmax(nonint))
        raise DataError(f"{source}: row {r} has label {y[r]!r}, which is not an integer class")
    limit = num_classes if num_classes is not None else None
    out = (yi < 0) | ((yi >= limit) if limit is not None else False)
    if np.any(out):
        r = int(np.argmax(out))
        raise DataError(f"{source}: row {r} has label {yi[r]}, outside [0, {limit if limit else 'inf'})")
    return Dataset(np.ascontiguousarray(x), yi, source)


def spec_checks(spec: JobSpec) -> dict[str, Any]:
    """The :func:`validate` checks a dataset or shard of ``spec``'s job must pass."""
    return {"num_classes": spec.data.num_classes, "feature_shape": tuple(spec.data.input_shape)}


def _pick(keys: Any, source: str) -> tuple[str, str]:
    for fx, fy in (("features", "labels"), ("x", "y"), ("X", "y")):
        if fx in keys and fy in keys:
            return fx, fy
    raise DataError(f"{source} has arrays {sorted(keys)}; it needs 'features' and 'labels' (or 'x', 'y')")


def load_npz(path: Path, **checks: Any) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as npz:
            fx, fy = _pick(npz.files, str(path))
            return validate(npz[fx], npz[fy], str(path), **checks)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path} is not a readable .npz: {exc}") from None


def load_pt(path: Path, **checks: Any) -> Dataset:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise DataError(f"{path} is not a readable tensor file: {exc}") from None
    if isinstance(obj, dict):
        fx, fy = _pick(obj.keys(), str(path))
        x, y = obj[fx], obj[fy]
    elif isinstance(obj, tuple | list) and len(obj) == 2:
        x, y = obj
    else:
        raise DataError(f"{path} holds a {type(obj).__name__}; save a dict of 'features' and "
                        "'labels' tensors or a (features, labels) tuple")
    return validate(np.asarray(x), np.asarray(y), str(path), **checks)


def load_csv(path: Path, label: str | None = None, **checks: Any) -> Dataset:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise DataError(f"{path} is empty")
    header = None
    try:
        [float(v) for v in rows[0]]
    except ValueError:
        header, rows = rows[0], rows[1:]
    col = len(rows[0]) - 1 if rows else -1
    if label is not None:
        if header is None or label not in header:
            raise DataError(f"{path} has no column named {label!r} (columns: {header})")
        col = header.index(label)
    width = len(header) if header else len(rows[0]) if rows else 0
    xs, ys = [], []
    for n, row in enumerate(rows):
        line = n + (2 if header else 1)
        if len(row) != width:
            raise DataError(f"{path}: line {line} has {len(row)} columns, expected {width}")
        try:
            vals = [float(v) for v in row]
        except ValueError:
            raise DataError(f"{path}: line {line} has a value that is not a number") from None
        ys.append(vals.pop(col))
        xs.append(vals)
    return validate(np.array(xs, dtype=np.float64), np.array(ys), str(path), **checks)


def load_image_folder(folder: Path, labels_file: str = "labels.csv", **checks: Any) -> Dataset:
    """``.npy`` images named in ``labels.csv`` (``file,label`` rows) inside ``folder``."""
    lf = folder / labels_file
    if not lf.exists():
        raise DataError(f"{folder} has no {labels_file} (rows of 'file,label')")
    images: list[np.ndarray] = []
    labels: list[float] = []
    with open(lf, newline="") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            if n == 1 and row and row[0] == "file":
                continue
            if len(row) != 2:
                raise DataError(f"{lf}: line {n} should be 'file,label'")
            try:
                img = np.load(folder / row[0], allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataError(f"{lf}: line {n}: cannot read image {row[0]}: {exc}") from None
            if images and img.shape != images[0].shape:
                raise DataError(f"{lf}: line {n}: image {row[0]} has shape {img.shape}, "
                                f"the first image has {images[0].shape}")
            try:
                labels.append(float(row[1]))
            except ValueError:
                raise DataError(f"{lf}: line {n}: label {row[1]!r} is not a number") from None
            images.append(img)
    if not images:
        raise DataError(f"{lf} lists no images")
    return validate(np.stack(images), np.array(labels), str(lf), **checks)


def load(path: Path | str, *, label: str | None = None, **checks: Any) -> Dataset:
    """Load by suffix (.npz, .pt/.pth, .csv) or a folder of images; checks as in :func:`validate`."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"dataset {path} does not exist")
    if path.is_dir():
        return load_image_folder(path, **checks)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz(path, **checks)
    if suffix in (".pt", ".pth"):
        return load_pt(path, **checks)
    if suffix == ".csv":
        return load_csv(path, label=label, **checks)
    raise DataError(f"dataset {path}: unsupported format {suffix or '(none)'}; "
                    "use .npz, .pt, .csv or a folder of .npy images with labels.csv")


def split(data: Dataset, num_shards: int, seed: int) -> list[Dataset]:
    """``num_shards`` near-equal shards; the same (data, seed) always gives the same split."""
    if not 0 < num_shards <= len(data):
        raise DataError(f"cannot split {len(data)} examples of {data.source} into {num_shards} shards")
    s = derive_seed(seed, "shards")
    perm = np.random.default_rng(s).permutation(len(data))
    return [data.take(np.sort(p)) for p in np.array_split(perm, num_shards)]


def encode_shard(data: Dataset) -> bytes:
    x = np.ascontiguousarray(data.features, dtype="<f4")
    y = np.ascontiguousarray(data.labels, dtype="<i8")
    dims = x.shape[1:]
    head = _HEAD.pack(MAGIC, VERSION, x.shape[0], len(dims)) + struct.pack(f"<{len(dims)}I", *dims)
    return head + x.tobytes() + y.tobytes()


def decode_shard(blob: bytes, source: str = "shard", **checks: Any) -> Dataset:
    """The shard in ``blob`` as a :class:`Dataset` of writable arrays, checked as in :func:`validate`."""
    if len(blob) < _HEAD.size or blob[:7] != MAGIC:
        raise DataError(f"{source} is not a Veritrain shard (bad header)")
    _, version, n, ndim = _HEAD.unpack_from(blob)
    if version != VERSION:
        raise DataError(f"{source} is shard format version {version}; this build reads {VERSION}")
    off = _HEAD.size
    dims = struct.unpack_from(f"<{ndim}I", blob, off)
    off += 4 * ndim
    per = int(np.prod(dims)) if dims else 1
    need = off + n * per * 4 + n * 8
    if len(blob) != need:
        raise DataError(f"{source} is {len(blob)} bytes, its header says {need}: truncated or padded")
    # one copy into owned memory: the arrays are writable (torch refuses read-only buffers)
    x = np.frombuffer(blob, dtype="<f4", count=n * per, offset=off).reshape((n, *dims)).copy()
    y = np.frombuffer(blob, dtype="<i8", count=n, offset=off + n * per * 4).copy()
    return validate(x, y, source, **checks)
