"""``make bench``'s portable module, quick: both ratios land in results.json and on the page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_portable_bench_records_both_ratios_and_the_page_shows_them(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "bench", "--quick", "--only", "portable", "--out", str(out)]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, timeout=900, capture_output=True)
    results = json.loads(out.read_text())
    ratios = results["portable_step_ratio"]
    assert set(ratios) == {"mlp", "char_lm"} and all(r > 0 for r in ratios.values())
    for name in ("mlp", "char_lm"):
        detail = results["portable"][name]
        assert len(detail["standard"]) == len(detail["portable"]) == results["portable"]["rounds"]
    page = (tmp_path / "benchmarks.md").read_text()
    assert f"| `portable_step_ratio.mlp` | {ratios['mlp']:.4g} |" in page
    assert f"| `portable_step_ratio.char_lm` | {ratios['char_lm']:.4g} |" in page
    assert "### portable_step_ratio (issue 20)" in page
