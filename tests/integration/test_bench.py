"""The benchmark harness on its tiny configuration: every key of issue 10 appears with a sane
type and range, and docs/benchmarks.md-style table is generated. Never a timed assertion:
the numbers themselves are the benchmark's business (make bench), not the suite's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, *modules: str) -> dict:  # type: ignore[type-arg]
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out),
         *(arg for m in modules for arg in ("--only", m))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "benchmarks.md").exists()
    return dict(json.loads(out.read_text()))


def test_verifier_cost_quick(tmp_path: Path) -> None:
    res = _run(tmp_path, "verifier_cost")
    assert isinstance(res["verifier_cost_ratio"], float) and 0 < res["verifier_cost_ratio"] < 10
    detail = res["verifier_cost"]
    assert detail["p"] == pytest.approx(0.1)  # the documented default
    assert detail["replay_mismatches"] == 0 and detail["segments_replayed"] > 0
    assert res["quick"] is True and res["bench_errors"] == {}
    table = (tmp_path / "benchmarks.md").read_text()
    assert "`verifier_cost_ratio`" in table and "machine:" in table and "date:" in table


def test_protocol_quick_on_the_real_stack(tmp_path: Path) -> None:
    """Real Anvil + IPFS + role processes: e2e, detection, false challenges, concurrency."""
    res = _run(tmp_path, "protocol")
    assert res["protocol"]["errors"] == {}, res["protocol"]["errors"]
    assert isinstance(res["e2e_seconds"], float) and res["e2e_seconds"] > 0
    assert isinstance(res["e2e_protocol_overhead"], float) and res["e2e_protocol_overhead"] > 1
    assert 0.0 <= res["detection_rate"] <= 1.0
    assert 0.0 <= res["false_challenge_rate"] <= 1.0
    assert res["detection"]["planted"] >= 4
    assert {c["kind"] for c in res["detection"]["cheats"]} == {
        "skip-step",
        "perturb-weight",
        "other-data",
        "copy-root",
    }
    assert isinstance(res["concurrent_workers"], int) and res["concurrent_workers"] >= 0
    assert res["concurrency_curve"] and res["concurrency_curve"][0]["workers"] == 2
