"""``python -m bench --quick --only dp`` writes the DP keys of issue 19 and their table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dp_bench_quick_writes_its_keys(tmp_path: Path) -> None:
    out, doc = tmp_path / "results.json", tmp_path / "benchmarks.md"
    cmd = [sys.executable, "-m", "bench", "--quick", "--only", "dp", "--out", str(out), "--doc", str(doc)]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["dp_step_ratio"] > 1  # per-example gradients cost more than one batch gradient
    dp = results["dp"]
    assert dp["source"].startswith("in-process")
    digits = dp["seeds"]["digits"]
    assert 0.5 < digits["none"]["accuracy_mean"] <= 1 and 0 < digits["eps8"]["accuracy_mean"] <= 1
    mia = dp["mia_in_process"]
    assert set(mia) == {"none", "eps8"} and "loss_threshold_auc" in mia["eps8"]
    assert results["dp_accuracy_drop_eps8_digits"] == round(
        (digits["none"]["accuracy_mean"] - digits["eps8"]["accuracy_mean"]) * 100, 2)
    assert isinstance(results["dp_mia_advantage_ratio_eps8_digits"], float)
    table = doc.read_text()
    assert "dp_step_ratio" in table and "### DP-SGD (issue 19)" in table and "| digits | eps8 |" in table
