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
    with pytest.raises(DataError, match=r"nan\.npz: NaN or infinite features at example 7$"):
        data.load(tmp_path / "nan.npz")
    x, y = xy()
    y[5] = 9
    np.savez(tmp_path / "lab.npz", features=x, labels=y)
    with pytest.raises(DataError, match=r"lab\.npz: labels outside \[0, 4\): example 5 has 9$"):
        data.load(tmp_path / "lab.npz", num_classes=4)
    with pytest.raises(DataError, match=r"shape \(3,\) per row, the model expects \(4,\)"):
        data.load(tmp_path / "lab.npz", feature_shape=(4,))
    (tmp_path / "bad.csv").write_text("1,2,0\n1,x,1\n")
    with pytest.raises(DataError, match=r"bad\.csv: bad values at line 2 \(column 1 is 'x', not a number\)$"):
        data.load(tmp_path / "bad.csv")
    (tmp_path / "frac.csv").write_text("1,2,0\n1,3,1.5\n")
    with pytest.raises(DataError, match=r"labels must be integer classes \(or text\): line 2 has 1\.5;"):
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
    with pytest.raises(DataError, match=r"shard 9: labels outside \[0, 3\): example 2 has 3"):
        data.decode_shard(bad, source="shard 9", num_classes=3)


def test_analyst_csv_header_text_labels_label_not_last(tmp_path: Path) -> None:
    # how an analyst writes one: a header, the label first, text labels, blank trailing line
    (tmp_path / "a.csv").write_text("diagnosis,radius,area\nmalignant,17.9,1001\nbenign,13.5,566\n"
                                    "benign,12.1,450\n\n")
    d = data.load(tmp_path / "a.csv", label="diagnosis", num_classes=2, format="csv")
    assert d.classes == ("benign", "malignant")  # sorted: class 0 is benign
    np.testing.assert_array_equal(d.labels, [1, 0, 0])
    np.testing.assert_allclose(d.features, [[17.9, 1001], [13.5, 566], [12.1, 450]], rtol=1e-6)
    by_index = data.load(tmp_path / "a.csv", label=0, num_classes=2)
    np.testing.assert_array_equal(by_index.labels, d.labels)
    # three classes of text where the spec allows two: the mapping is named
    (tmp_path / "three.csv").write_text("y,f\na,1\nb,2\nc,3\n")
    with pytest.raises(DataError, match=r"3 text labels \(a, b, c\) but the spec's data.num_classes is 2"):
        data.load(tmp_path / "three.csv", label="y", num_classes=2)


def test_csv_errors_count_file_lines_and_list_the_first_few(tmp_path: Path) -> None:
    rows = ["label,f1,f2"] + [f"{i % 2},{'x' if i in (1, 3, 4, 5, 6, 7, 8) else i},1" for i in range(10)]
    rows[3] = ",2,2"  # a missing label on file line 4 (data row 2)
    (tmp_path / "bad.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError) as err:
        data.load(tmp_path / "bad.csv", label="label")
    msg = str(err.value)
    assert "line 3 ('f1' is 'x', not a number)" in msg  # file line 3: header is line 1
    assert "line 4 (the label column 'label' is empty)" in msg
    assert msg.endswith("and 3 more"), msg  # 8 bad lines, the first 5 listed
    (tmp_path / "wide.csv").write_text("1,2,0\n1,2\n1,2,0,4\n")
    with pytest.raises(DataError, match=r"expected 3 columns at line 2 \(has 2\), line 3 \(has 4\)$"):
        data.load(tmp_path / "wide.csv")
    with pytest.raises(DataError, match="no header row, so it has no column named 'label'"):
        data.load(tmp_path / "wide.csv", label="label")


def test_a_declared_format_that_does_not_match_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("1,2,0\n3,4,1\n")
    with pytest.raises(DataError, match=r"d\.csv is csv, but the spec says data.format: npz"):
        data.load(tmp_path / "d.csv", format="npz")
    assert len(data.load(tmp_path / "d.csv", format="csv")) == 2


def test_transforms_fit_on_one_set_and_apply_the_same_float32_arithmetic() -> None:
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(200, 3)) * [1, 100, 1000] + [0, 50, 5000]).astype(np.float32)
    std = data.fit_transform("standardize", x)
    assert std is not None and std.kind == "standardize"
    z = std.apply(x)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-4)
    mm = data.fit_transform("minmax", x)
    assert mm is not None
    np.testing.assert_allclose(mm.apply(x).min(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(mm.apply(x).max(axis=0), 1, atol=1e-6)
    const = np.ones((5, 2), np.float32)
    assert data.fit_transform("standardize", const).scale == (1.0, 1.0)  # type: ignore[union-attr]
    assert data.fit_transform("none", x) is None
    # the published numbers (Python floats through JSON) give the same bytes
    again = data.Transform("standardize", tuple(float(v) for v in std.offset), tuple(std.scale))
    assert again.apply(x).tobytes() == z.tobytes()
    assert data.unscaled_features(x) == [1, 2]
    assert data.unscaled_features(z) == []


def test_image_folder_errors_name_labels_csv_lines(tmp_path: Path) -> None:
    img = tmp_path / "imgs"
    img.mkdir()
    for i in range(3):
        np.save(img / f"{i}.npy", np.full((2, 2), i, np.float32))
    (img / "labels.csv").write_text("file,label\n0.npy,0\n1.npy,7\n2.npy,1\n")
    with pytest.raises(DataError, match=r"labels\.csv: labels outside \[0, 4\): line 3 has 7$"):
        data.load(img, num_classes=4)
