"""Write scikit-learn's breast-cancer set as an analyst would export it: a header row, the
label first as text (``diagnosis``: benign / malignant), then the 30 raw, unscaled features.

    python examples/breast_cancer_csv.py cancer.csv

The set ships inside scikit-learn (no download). docs/quickstart.md trains on it with
examples/breast-cancer.yaml.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def write(path: Path) -> Path:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["diagnosis", *[n.replace(" ", "_") for n in d.feature_names]])
        for x, y in zip(d.data, d.target, strict=True):
            out.writerow([d.target_names[y], *(f"{v:g}" for v in x)])
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "cancer.csv")
    print(f"wrote {write(target)} (569 examples, header, label 'diagnosis' first)")
