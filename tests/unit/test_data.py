"""Dataset loaders, validation with file and row, deterministic split, shard format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from veritrain import data
from veritrain.errors import DataError


def xy(n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)).astype(np.float32), rng.integers(0, 4, size=n)


def test_npz_pt_csv_and_image_folder_load_the_same_data(tmp_path: Path) -> None:
    x, y = xy()
    np.savez(tmp_path / "d.npz", features=x, labels=y)
    torch.save({"x": torch.tensor(x), "y": torch.tensor(y)}, tmp_path / "d.pt")
    rows = ["a,b,c,label"] + [",".join(f"{v:.9g}" for v in r) + f",{c}" for r, c in zip(x, y, strict=True)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    img = tmp_path / "imgs"
    img.mkdir()
    lines = ["file,label"]
    for i, (r, c) in enumerate(zip(x, y, strict=True)):
        np.save(img / f"{i}.npy", r)
        lines.append(f"{i}.npy,{c}")
    (img / "labels.csv").write_text("\n".join(lines) + "\n")
    for src in ("d.npz", "d.pt", "d.csv", "imgs"):
        d = data.load(tmp_path / src, num_classes=4)
        assert d.features.dtype == np.float32 and d.labels.dtype == np.int64
        np.testing.assert_allclose(d.features, x, rtol=1e-6)
        np.testing.assert_array_equal(d.labels, y)


def test_csv_named_label_column(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("label,f1,f2\n1,0.5,0.25\n0,1,2\n")
    d = data.load(tmp_path / "d.csv", label="label")
    np.testing.assert_array_equal(d.labels, [1, 0])
    np.testing.assert_allclose(d.features, [[0.5, 0.25], [1, 2]])
    with pytest.raises(DataError, match="no column named 'y'"):
        data.load(tmp_path / "d.csv", label="y")


def test_nan_label_range_and_shape_errors_name_file_and_row(tmp_path: Path) -> None:
    x, y = xy()
    x[7, 1] = np.nan
    np.savez(tmp_path / "nan.npz", features=x, labels=y)
    with pytest.raises(DataError, match=r"nan\.npz: row 7 has a NaN"):
        data.load(tmp_path / "nan.npz")
    x, y = xy()
    y[5] = 9
    np.savez(tmp_path / "lab.npz", features=x, labels=y)
    with pytest.raises(DataError, match=r"lab\.npz: row 5 has label 9, outside \[0, 4\)"):
        data.load(tmp_path / "lab.npz", num_classes=4)
    with pytest.raises(DataError, match=r"shape \(3,\) per row, the model expects \(4,\)"):
        data.load(tmp_path / "lab.npz", feature_shape=(4,))
    (tmp_path / "bad.csv").write_text("1,2,0\n1,x,1\n")
    with pytest.raises(DataError, match=r"bad\.csv: line 2 has a value that is not a number"):
        data.load(tmp_path / "bad.csv")
    (tmp_path / "frac.csv").write_text("1,2,0\n1,3,1.5\n")
    with pytest.raises(DataError, match="row 1 has label 1.5"):
        data.load(tmp_path / "frac.csv")


def test_split_is_deterministic_disjoint_and_complete() -> None:
    x, y = xy(103)
    d = data.validate(x, y, "mem")
    a, b, c = data.split(d, 5, seed=1), data.split(d, 5, seed=1), data.split(d, 5, seed=2)
    assert all(np.array_equal(p.features, q.features) for p, q in zip(a, b, strict=True))
    assert not all(np.array_equal(p.features, q.features) for p, q in zip(a, c, strict=True))
    assert sorted(len(s) for s in a) == [20, 20, 21, 21, 21]
    rows = np.concatenate([s.features for s in a])
    assert sorted(map(tuple, rows)) == sorted(map(tuple, x))
    with pytest.raises(DataError, match="into 200 shards"):
        data.split(d, 200, seed=0)


def test_shard_roundtrip_and_rejects_damage() -> None:
    x, y = xy()
    d = data.validate(x.reshape(20, 3, 1), y, "mem")
    blob = data.encode_shard(d)
    assert len(blob) == 7 + 1 + 8 + 1 + 8 + 20 * 3 * 4 + 20 * 8
    back = data.decode_shard(blob)
    np.testing.assert_array_equal(back.features, d.features)
    np.testing.assert_array_equal(back.labels, d.labels)
    assert back.features.flags.writeable and back.labels.flags.writeable  # torch takes them as they are
    with pytest.raises(DataError, match="truncated"):
        data.decode_shard(blob[:-1], source="shard 3")
    with pytest.raises(DataError, match="not a Veritrain shard"):
        data.decode_shard(b"PK\x03\x04" + blob)
    y2 = np.zeros(20, dtype=np.int64)
    y2[2] = 3
    bad = data.encode_shard(data.validate(x, y2, "mem"))
    with pytest.raises(DataError, match="shard 9: row 2 has label 3, outside"):
        data.decode_shard(bad, source="shard 9", num_classes=3)
