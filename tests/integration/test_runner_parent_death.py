"""The training subprocess dies with its parent (PR_SET_PDEATHSIG): a SIGKILLed worker
leaves no orphan trainer writing checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PARENT = textwrap.dedent("""
    import sys, yaml, numpy as np
    from pathlib import Path
    from sklearn.datasets import load_digits
    from veritrain.spec import TaskKey, load_spec
    from veritrain.training.runner import run_in_profile

    raw = yaml.safe_load(Path(sys.argv[1]).read_text())
    raw.update(steps_per_task=20_000_000, checkpoint_interval=1000, num_shards=1)  # progress lines
    # (every 1% = 200k steps) come too rarely for a broken pipe to end the child first
    x, y = load_digits(return_X_y=True)
    run_in_profile(load_spec(raw), "train", task=TaskKey(round=0, shard=0),
                   features=(x[:300] / 16.0).astype(np.float32), labels=y[:300],
                   directory=Path(sys.argv[2]), force_subprocess=True)
""")


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"veritrain.training.runner" in cmd:
            out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_sigkilled_parent_takes_its_training_subprocess_with_it(tmp_path: Path) -> None:
    child = None
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(ROOT / "examples" / "digits-mlp.yaml"),
                               str(tmp_path / "ckpt")], cwd=ROOT)
    try:
        deadline, children = time.monotonic() + 60, []
        while not children and time.monotonic() < deadline:
            assert parent.poll() is None, "the parent exited before starting the trainer"
            children = _children(parent.pid)
            time.sleep(0.1)
        assert len(children) == 1, "the trainer subprocess never started"
        (child,) = children
        while not list((tmp_path / "ckpt").glob("*.vtck")) and time.monotonic() < deadline:
            time.sleep(0.1)  # the child is past its start and training
        assert _alive(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        gone_by = time.monotonic() + 10
        while _alive(child) and time.monotonic() < gone_by:
            time.sleep(0.05)
        assert not _alive(child), f"trainer {child} outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child is not None and _alive(child):  # only if the test failed: never leave it running
            os.kill(child, signal.SIGKILL)
