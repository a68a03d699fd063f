"""Children started with a lifeline die with their orchestrator, even one killed by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from veritrain import lifeline

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")

CHILD = (
    "import os, sys, time; from veritrain import lifeline; lifeline.from_env(); "
    "print(os.environ.get(lifeline.LIFELINE_ENV, 'gone'), flush=True); time.sleep(120)"
)
ORCHESTRATOR = (
    "import subprocess, sys, time, os; from veritrain import lifeline; "
    f"p = subprocess.Popen([sys.executable, '-c', {CHILD!r}], "
    "env={**os.environ, **lifeline.env_for_child()}, stdout=subprocess.PIPE, text=True); "
    "print(p.pid, p.stdout.readline().strip(), flush=True); time.sleep(120)"
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_child_dies_when_its_orchestrator_is_killed() -> None:
    orch = subprocess.Popen([sys.executable, "-c", ORCHESTRATOR], stdout=subprocess.PIPE, text=True)
    try:
        assert orch.stdout is not None
        child_pid, inherited = orch.stdout.readline().split()
        child = int(child_pid)
        assert inherited == "gone"  # honoured and removed: the child's own children inherit nothing
        assert _alive(child)
        orch.send_signal(signal.SIGKILL)
        orch.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        if orch.poll() is None:
            orch.kill()
            orch.wait()


def test_child_whose_parent_is_already_gone_exits_at_once() -> None:
    env = {**os.environ, lifeline.LIFELINE_ENV: "1"}  # pid 1 is not our parent
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, timeout=30, capture_output=True)
    assert out.returncode == 70 and out.stdout == b""


def test_no_lifeline_no_effect() -> None:
    env = {k: v for k, v in os.environ.items() if k != lifeline.LIFELINE_ENV}
    code = "from veritrain import lifeline; lifeline.from_env(); print('ran')"
    out = subprocess.run([sys.executable, "-c", code], env=env, timeout=30, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ran"
