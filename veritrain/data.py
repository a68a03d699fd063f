"""Datasets: load, validate, split deterministically into shards, and the shard format.

Loaders: ``.npz`` (``features``/``labels`` or ``x``/``y``), ``.pt`` (a dict with those keys or
a ``(features, labels)`` tuple of tensors), CSV, and a folder of ``.npy`` images with a
``labels.csv`` (``file,label``). A job spec's ``data.format`` must match the file.

CSV (docs/quickstart.md#data-formats): one example per line, comma-separated; a header row is
detected (a first line that is not all numbers). The label is the column named by the spec's
``data.label`` (a header name, or a 0-based column index), else the last column. Labels are
integer classes, or text (``benign``/``malignant``): text labels become classes 0..K-1 in
sorted order, and the mapping travels with the data (``Dataset.classes``, then the job
document). Every other column is a numeric feature.

One line-numbering convention everywhere: ``line N`` is the file's physical line, 1-based,
the header included (what an editor shows); arrays (npz, pt) name ``example N``, 0-based.
Errors list the first few bad lines (up to :data:`MAX_LISTED`), not just the first.

Shard format (little-endian; version 1 for one label per example, version 2 for one label per
position, a language model's next tokens; docs/spec §12)::

    b"VTSHARD" | version u8 | n u64 | ndim u8 | dims u32 * ndim | features f32[n, *dims] | labels i64[n]
    b"VTSHARD" | 2 | n u64 | ndim u8 | dims u32 * ndim | features f32[n, *dims] | labels i64[n, *dims]

Token features travel as float32 (exact below 2^24); the task converts them to int64.

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

#: How many bad lines (or examples) an error message lists.
MAX_LISTED = 5

MAGIC = b"VTSHARD"
VERSION = 1
SEQUENCE_VERSION = 2  # labels of the features' shape (``data.targets: sequence``)
_HEAD = struct.Struct("<7sBQB")


@dataclass(frozen=True)
class Dataset:
    features: np.ndarray  # float32 [n, ...]
    labels: np.ndarray  # int64 [n]
    source: str = "dataset"
    #: Text labels: ``classes[i]`` is the text of class ``i`` (None when labels were numbers).
    classes: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def take(self, idx: np.ndarray) -> Dataset:
        return Dataset(self.features[idx], self.labels[idx], self.source, self.classes)


def _example(r: int) -> str:
    return f"example {r}"


def _listed(rows: np.ndarray | list[int], name: Any, what: Any) -> str:
    """``line 3 (...), line 7 (...) and 4 more``: the first :data:`MAX_LISTED` bad rows."""
    rows = [int(r) for r in rows]
    text = ", ".join(f"{name(r)} {what(r)}".rstrip() for r in rows[:MAX_LISTED])
    return text + (f" and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else "")


def validate(features: Any, labels: Any, source: str, *, num_classes: int | None = None,
             feature_shape: tuple[int, ...] | None = None, row_name: Any = _example,
             classes: tuple[str, ...] | None = None, sequence: bool = False) -> Dataset:
    """Convert to float32/int64 and check everything; DataError names ``source`` and the first
    few bad rows (``row_name(r)``: ``example r`` for arrays, ``line N`` for a CSV).
    ``sequence``: a language model's data, token features and one next-token label per
    position (labels of the features' shape)."""
    x = np.asarray(features)
    y = np.asarray(labels)
    if x.ndim < 1 or x.shape[0] == 0:
        raise DataError(f"{source}: no examples")
    if sequence:
        return _validate_sequence(x, y, source, num_classes, feature_shape, row_name)
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
    bad = np.flatnonzero(~np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1))
    if bad.size:
        raise DataError(f"{source}: NaN or infinite features at {_listed(bad, row_name, lambda r: '')}")
    if not np.issubdtype(y.dtype, np.number):
        raise DataError(f"{source}: labels are {y.dtype}, not integers")
    yi = y.astype(np.int64)
    nonint = np.flatnonzero(yi != y)
    if nonint.size:
        raise DataError(f"{source}: labels must be integer classes (or text): "
                        f"{_listed(nonint, row_name, lambda r: f'has {y[r]!r}')}; "
                        "is the label column the right one? name it with data.label in the spec")
    limit = num_classes if num_classes is not None else None
    out = np.flatnonzero((yi < 0) | ((yi >= limit) if limit is not None else False))
    if out.size:
        if classes is not None:
            raise DataError(f"{source}: {len(classes)} text labels ({', '.join(classes)}) but the spec's "
                            f"data.num_classes is {limit}")
        raise DataError(f"{source}: labels outside [0, {limit if limit else 'inf'}): "
                        f"{_listed(out, row_name, lambda r: f'has {yi[r]}')}")
    return Dataset(np.ascontiguousarray(x), yi, source, classes)


def _validate_sequence(x: np.ndarray, y: np.ndarray, source: str, num_classes: int | None,
                       feature_shape: tuple[int, ...] | None, row_name: Any) -> Dataset:
    """Token sequences: features and labels of one shape ``(n, *feature_shape)``, integers in
    ``[0, num_classes)``; features kept as float32 (exact for tokens below 2^24)."""
    if feature_shape is not None and tuple(x.shape[1:]) != tuple(feature_shape):
        raise DataError(f"{source}: token rows have shape {tuple(x.shape[1:])}, "
                        f"the model expects {tuple(feature_shape)}")
    if y.shape != x.shape:
        raise DataError(f"{source}: labels have shape {y.shape}; a sequence job needs one next token "
                        f"per position, shape {x.shape}")
    limit = num_classes if num_classes is not None else 2**24
    for what, arr in (("features", x), ("labels", y)):
        if not np.issubdtype(arr.dtype, np.number):
            raise DataError(f"{source}: {what} are {arr.dtype}, not token numbers")
        flat = arr.reshape(arr.shape[0], -1)
        bad = np.flatnonzero(((flat != np.round(flat)) | (flat < 0) | (flat >= limit)).any(axis=1))
        if bad.size:
            raise DataError(f"{source}: {what} must be integer tokens in [0, {limit}): "
                            f"{_listed(bad, row_name, lambda r: '')}")
    return Dataset(np.ascontiguousarray(x.astype(np.float32)), np.ascontiguousarray(y.astype(np.int64)),
                   source)


def spec_checks(spec: JobSpec) -> dict[str, Any]:
    """The :func:`validate` checks a dataset or shard of ``spec``'s job must pass."""
    return {"num_classes": spec.data.num_classes, "feature_shape": tuple(spec.data.input_shape),
            "sequence": spec.data.targets == "sequence"}


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
    except DataError:
        raise
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


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _label_column(path: Path, label: str | int | None, header: list[str] | None, width: int) -> int:
    if label is None:
        return width - 1
    if isinstance(label, int) or (isinstance(label, str) and label.isdigit() and
                                  (header is None or label not in header)):
        col = int(label)
        if not 0 <= col < width:
            raise DataError(f"{path}: label column {col} is outside its {width} columns (0-based)")
        return col
    if header is None:
        raise DataError(f"{path} has no header row, so it has no column named {label!r}: "
                        "add a header or give data.label as a 0-based column index")
    if label not in header:
        raise DataError(f"{path} has no column named {label!r} (columns: {', '.join(header)})")
    return header.index(label)


def load_csv(path: Path, label: str | int | None = None, **checks: Any) -> Dataset:
    """A CSV as described in the module doc: header detected, label named or last, text labels
    mapped to classes, every bad line (up to :data:`MAX_LISTED`) named by its file line."""
    with open(path, newline="") as f:
        rows = [(n, row) for n, row in enumerate(csv.reader(f), start=1) if any(v.strip() for v in row)]
    if not rows:
        raise DataError(f"{path} is empty")
    header = None
    if not all(_is_number(v) for v in rows[0][1]):
        header, rows = [h.strip() for h in rows[0][1]], rows[1:]
    if not rows:
        raise DataError(f"{path} has a header row and no data")
    width = len(header) if header else len(rows[0][1])
    col = _label_column(path, label, header, width)
    name = header[col] if header else f"column {col}"

    def colname(c: int) -> str:
        return repr(header[c]) if header else f"column {c}"

    wrong_width = [(n, len(row)) for n, row in rows if len(row) != width]
    if wrong_width:
        raise DataError(f"{path}: expected {width} columns at " + _listed(
            list(range(len(wrong_width))), lambda i: f"line {wrong_width[i][0]}",
            lambda i: f"(has {wrong_width[i][1]})"))
    xs: list[list[float]] = []
    ys: list[str] = []
    bad: list[str] = []
    for n, row in rows:
        cells = [v.strip() for v in row]
        y = cells.pop(col)
        if y == "":
            bad.append(f"line {n} (the label column {name!r} is empty)")
        try:
            xs.append([float(v) for v in cells])
        except ValueError:
            c = next(i for i, v in enumerate(cells) if not _is_number(v))
            c_full = c if c < col else c + 1
            bad.append(f"line {n} ({colname(c_full)} is {cells[c]!r}, not a number)")
        ys.append(y)
    if bad:
        more = f" and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
        raise DataError(f"{path}: bad values at {', '.join(bad[:MAX_LISTED])}{more}")
    lines = [n for n, _ in rows]
    classes: tuple[str, ...] | None = None
    if all(_is_number(v) for v in ys):
        labels = np.array([float(v) for v in ys])
    else:  # text labels: classes in sorted order, recorded with the data
        classes = tuple(sorted(set(ys)))
        index = {c: i for i, c in enumerate(classes)}
        labels = np.array([index[v] for v in ys], dtype=np.int64)
    return validate(np.array(xs, dtype=np.float64), labels, str(path),
                    row_name=lambda r: f"line {lines[r]}", classes=classes, **checks)


def load_image_folder(folder: Path, labels_file: str = "labels.csv", **checks: Any) -> Dataset:
    """``.npy`` images named in ``labels.csv`` (``file,label`` rows) inside ``folder``."""
    lf = folder / labels_file
    if not lf.exists():
        raise DataError(f"{folder} has no {labels_file} (rows of 'file,label')")
    images: list[np.ndarray] = []
    labels: list[float] = []
    lines: list[int] = []
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
            lines.append(n)
    if not images:
        raise DataError(f"{lf} lists no images")
    return validate(np.stack(images), np.array(labels), str(lf), row_name=lambda r: f"line {lines[r]}",
                    **checks)


#: The spec's ``data.format`` -> what the file must look like.
FORMAT_SUFFIXES = {"npz": (".npz",), "pt": (".pt", ".pth"), "csv": (".csv",), "image_folder": ()}


def format_of(path: Path) -> str | None:
    """The ``data.format`` a path is in (by suffix; a folder is an image folder)."""
    if path.is_dir():
        return "image_folder"
    suffix = path.suffix.lower()
    return next((f for f, sfx in FORMAT_SUFFIXES.items() if suffix in sfx), None)


def load(path: Path | str, *, label: str | int | None = None, format: str | None = None,
         **checks: Any) -> Dataset:
    """Load by suffix (.npz, .pt/.pth, .csv) or a folder of images; checks as in :func:`validate`.
    ``format`` (the spec's ``data.format``): a file of another format is refused."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"dataset {path} does not exist")
    found = format_of(path)
    if format is not None and found is not None and found != format:
        raise DataError(f"dataset {path} is {found}, but the spec says data.format: {format}; "
                        f"set data.format: {found} in the spec, or give a {format} dataset")
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


# ----------------------------------------------------------------------------- preprocessing
#: The declared preprocessing steps (the spec's ``data.preprocessing``).
PREPROCESSING = ("none", "standardize", "minmax")


@dataclass(frozen=True)
class Transform:
    """Per-feature ``(x - offset) / scale`` in float32, fitted on the training split.

    ``standardize``: offset = mean, scale = standard deviation; ``minmax``: offset = min,
    scale = max - min (to [0, 1]). A constant feature gets scale 1. The requester fits it
    (:func:`fit_transform`) and publishes offset and scale in the job document; workers,
    verifiers and the requester's evaluation apply the same float32 arithmetic
    (:meth:`apply`), so replay stays bitwise.
    """

    kind: str
    offset: tuple[float, ...]
    scale: tuple[float, ...]

    def apply(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float32)
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != len(self.offset):
            raise DataError(f"the {self.kind} transform has {len(self.offset)} features, the data "
                            f"{flat.shape[1]}")
        off = np.asarray(self.offset, dtype=np.float32)
        sc = np.asarray(self.scale, dtype=np.float32)
        return np.ascontiguousarray(((flat - off) / sc).astype(np.float32).reshape(x.shape))

    def apply_to(self, data: Dataset) -> Dataset:
        return Dataset(self.apply(data.features), data.labels, data.source, data.classes)


def fit_transform(kind: str, features: np.ndarray) -> Transform | None:
    """The ``kind`` transform fitted on ``features`` (None for ``none``)."""
    if kind not in PREPROCESSING:
        raise DataError(f"unknown preprocessing {kind!r}; use one of {', '.join(PREPROCESSING)}")
    if kind == "none":
        return None
    flat = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    if kind == "standardize":
        offset, scale = flat.mean(axis=0), flat.std(axis=0)
    else:
        offset, scale = flat.min(axis=0), flat.max(axis=0) - flat.min(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    f32 = np.float32
    return Transform(kind, tuple(float(f32(v)) for v in offset), tuple(float(f32(v)) for v in scale))


def unscaled_features(features: np.ndarray, limit: float = 10.0) -> list[int]:
    """Feature columns far from unit scale, on which a model trains badly unless the job
    standardizes them: a spread (std) or a centre (|mean|) above ``limit``, or, when spreads
    across features differ by more than ``limit**2``, the widely spread ones. Outliers alone
    do not count (a standardized column may reach 12). Empty: the features look fine."""
    flat = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    if flat.size == 0:
        return []
    spread, centre = flat.std(axis=0), np.abs(flat.mean(axis=0))
    cols = set(np.flatnonzero((spread > limit) | (centre > limit)).tolist())
    live = spread[spread > 0]
    if live.size and live.max() / live.min() > limit**2:
        cols |= set(np.flatnonzero(spread > live.min() * limit).tolist())
    return sorted(cols)


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
    version = SEQUENCE_VERSION if y.ndim > 1 else VERSION
    head = _HEAD.pack(MAGIC, version, x.shape[0], len(dims)) + struct.pack(f"<{len(dims)}I", *dims)
    return head + x.tobytes() + y.tobytes()


def decode_shard(blob: bytes, source: str = "shard", **checks: Any) -> Dataset:
    """The shard in ``blob`` as a :class:`Dataset` of writable arrays, checked as in :func:`validate`."""
    if len(blob) < _HEAD.size or blob[:7] != MAGIC:
        raise DataError(f"{source} is not a Veritrain shard (bad header)")
    _, version, n, ndim = _HEAD.unpack_from(blob)
    if version not in (VERSION, SEQUENCE_VERSION):
        raise DataError(f"{source} is shard format version {version}; this build reads "
                        f"{VERSION} and {SEQUENCE_VERSION}")
    off = _HEAD.size
    dims = struct.unpack_from(f"<{ndim}I", blob, off)
    off += 4 * ndim
    per = int(np.prod(dims)) if dims else 1
    labels = n * per if version == SEQUENCE_VERSION else n
    need = off + n * per * 4 + labels * 8
    if len(blob) != need:
        raise DataError(f"{source} is {len(blob)} bytes, its header says {need}: truncated or padded")
    if "sequence" in checks and (version == SEQUENCE_VERSION) != bool(checks["sequence"]):
        want = "one label per position" if checks["sequence"] else "one label per example"
        raise DataError(f"{source} is a shard of format version {version}; this job's data wants {want}")
    checks = {**checks, "sequence": version == SEQUENCE_VERSION}
    # one copy into owned memory: the arrays are writable (torch refuses read-only buffers)
    x = np.frombuffer(blob, dtype="<f4", count=n * per, offset=off).reshape((n, *dims)).copy()
    y = np.frombuffer(blob, dtype="<i8", count=labels, offset=off + n * per * 4).copy()
    if version == SEQUENCE_VERSION:
        y = y.reshape((n, *dims))
    return validate(x, y, source, **checks)
