"""The end-to-end demo (issue 9), smaller variant: `python -m demo --quick`.

Runs as a user runs it — one subprocess that starts its own stack on free ports and every
party as its own process — and checks summary.json, whose figures the demo reads from the
chain's events. The quick variant: 3 shards x 100 steps, 2 honest workers and 1 cheater
(skips a step in one segment), 4 verifiers, a 40 s challenge window; accuracy bar 0.85
(the full demo's is 0.90).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_demo_catches_the_cheater_and_pays_the_honest(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERITRAIN_")}
    argv = [sys.executable, "-m", "demo", "--quick", "--json", "--home", str(home)]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=570)
    assert (home / "summary.json").exists(), proc.stderr[-4000:]
    summary = json.loads((home / "summary.json").read_text())
    assert json.loads(proc.stdout) == summary  # --json prints exactly the file
    assert proc.returncode == (0 if summary["ok"] else 1)
    assert summary["ok"] is True, proc.stderr[-4000:]

    # the shape issue 9 fixes
    assert set(summary) == {"ok", "job_id", "tasks", "seconds", "gas_total", "model_accuracy", "workers",
                            "disputes"}
    assert summary["tasks"] == 3 and summary["job_id"] >= 1
    assert summary["gas_total"] > 0 and summary["seconds"] > 0
    assert summary["model_accuracy"] >= 0.85

    workers = summary["workers"]
    cheaters = [w for w in workers if w["behaviour"] == "cheater"]
    honest = [w for w in workers if w["behaviour"] == "honest"]
    assert len(cheaters) == 1 and len(honest) == 2
    assert cheaters[0]["slashed"] > 0 and cheaters[0]["paid"] == 0
    assert all(w["paid"] > 0 and w["slashed"] == 0 for w in honest)
    # every task was paid once: the cheater's task went to an honest worker
    details = json.loads((home / "details.json").read_text())
    assert sum(w["paid"] for w in honest) == summary["tasks"] * details["scenario"]["reward"] * 10**18

    (dispute,) = summary["disputes"]
    assert dispute["loser"].lower() == cheaters[0]["address"].lower()
    assert dispute["challenger"].lower() not in {w["address"].lower() for w in workers}
    assert dispute["task"] >> 32 == summary["job_id"]

    # every child logged to its own file, and nothing of the run is left running
    for name in ("requester-serve", "requester-submit", "requester-fetch", "cheater", "honest-1", "honest-2",
                 "verifier-1", "verifier-2", "verifier-3", "verifier-4"):
        assert (home / "logs" / f"{name}.log").stat().st_size > 0, name
    assert not (home / "stack" / "dev" / "stack.json").exists()
