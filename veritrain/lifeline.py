"""Children that die with the process that started them (Linux ``PR_SET_PDEATHSIG``).

An orchestrator (the training runner's parent, ``make demo``, the benchmarks) sets
``LIFELINE_ENV`` to its own PID in a child's environment; the child calls :func:`from_env` as
it starts, and the kernel SIGKILLs it when the orchestrator dies, even by SIGKILL, so nothing
keeps running for nobody. The variable is removed from the child's environment once honoured,
so the child's own children do not inherit a lifeline to a process that is not their parent.
"""

from __future__ import annotations

import os
import sys

LIFELINE_ENV = "VERITRAIN_DIE_WITH"
_PR_SET_PDEATHSIG = 1


def env_for_child() -> dict[str, str]:
    """The environment entry that ties a child started by this process to its life."""
    return {LIFELINE_ENV: str(os.getpid())}


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when ``parent`` dies. Set at the child's start (not
    in a preexec_fn, which is unsafe in a threaded parent); a parent already gone is caught by
    the ``getppid`` check. Elsewhere than Linux a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os._exit(70)  # the parent is already gone: do not work for nobody


def from_env() -> None:
    """Honour (and remove) ``LIFELINE_ENV`` if the process was started with one."""
    parent = os.environ.pop(LIFELINE_ENV, None)
    if parent:
        die_with_parent(int(parent))
