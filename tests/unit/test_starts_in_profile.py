"""Computing a job's bound starts must not cost a verifier its in-process replays.

A verifier checks every result's ``h_0`` against the job's bound starts before it replays. That
check is the first thing in a fresh role process to load torch; loaded without the job's replay
profile (``MKL_CBWR``, ``ATEN_CPU_CAPABILITY``, set only before torch loads), the process no
longer honours the profile, and every later replay of the job then ran in a fresh process: a
second or more per segment of a tiny MLP, enough to miss challenge windows (the newcomer test
saw 7 s a segment). Each check runs in a fresh interpreter, where torch is not loaded yet.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from veritrain.training.profile import current_profile

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys
from veritrain.jobdoc import JobDocument, ShardRef
from veritrain.spec import load_spec
from veritrain.training.runner import in_process_ok

raw = json.loads(sys.argv[1])
spec = load_spec(raw)
ref = ShardRef(index=0, cid="bafyshard0", sha256="ab" * 32, size=10, examples=5)
doc = JobDocument.create(spec, [ref], b"n" * 16)
from veritrain.starts import BoundStarts
BoundStarts.of(doc)
print(json.dumps({"torch_loaded": "torch" in sys.modules, "in_process": in_process_ok(spec)}))
"""


def _spec_needing_the_environment() -> dict:  # type: ignore[type-arg]
    """The example job on this machine's profile, plus MKL_CBWR: a setting only an environment
    variable set before torch loads can honour."""
    raw = yaml.safe_load((ROOT / "examples" / "breast-cancer.yaml").read_text())
    raw["replay"] = {**current_profile(threads=1).model_dump(), "mkl_cbwr": "AVX2,STRICT"}
    return raw  # type: ignore[no-any-return]


def _child() -> dict:  # type: ignore[type-arg]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(_spec_needing_the_environment())],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_bound_starts_leave_the_process_able_to_replay_the_job_in_process() -> None:
    got = _child()
    assert got == {"torch_loaded": True, "in_process": True}
