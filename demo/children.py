"""The demo's child processes: started by argv, one log each, stopped by their own ids.

Every child runs in its own session (``start_new_session``), so a Ctrl-C at the terminal
reaches only the orchestrator, which then stops each child's process group (the child and
the training/replay subprocesses it spawned) by the id it recorded, checked against the
kernel's start time so a recycled PID is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from veritrain import lifeline
from veritrain.dev import procs
from veritrain.errors import VeritrainError


class ChildFailed(VeritrainError, RuntimeError):
    """A child process exited when it should not have (or with an error)."""

    def __init__(self, name: str, code: int | None, log: Path, last: str) -> None:
        self.name, self.code, self.log, self.last = name, code, log, last
        why = "did not finish in time" if code is None else f"exited with code {code}"
        super().__init__(f"{name} {why} (log: {log})\n{last}")


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes]
    started: int | None
    #: Expected to run until the orchestrator stops it; exiting at all is a failure.
    daemon: bool
    #: Exit code 0 is acceptable (e.g. a worker with --max-tasks that finished).
    may_exit: bool = False
    stdout_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid


def tail_lines(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "   (no log)"
    return "\n".join(f"   | {line}" for line in text.rstrip().splitlines()[-lines:])


@dataclass
class Children:
    log_dir: Path
    base_env: dict[str, str]
    cwd: Path
    children: dict[str, Child] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, *,
              daemon: bool = True, may_exit: bool = False, capture_stdout: bool = False) -> Child:
        """Start ``argv`` with its stdout and stderr in ``<log_dir>/<name>.log`` (stdout in a
        separate ``<name>.out`` when ``capture_stdout``, appended to the log at the end)."""
        if name in self.children:
            raise ValueError(f"a child named {name} was already started")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        out_path = self.log_dir / f"{name}.out" if capture_stdout else None
        full_env = {**self.base_env, **lifeline.env_for_child(), **(env or {})}  # dies with us
        with open(log, "ab") as err:
            err.write(f"$ {' '.join(argv)}\n".encode())
            err.flush()
            out = open(out_path, "wb") if out_path else err  # noqa: SIM115 - closed below
            try:
                proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                        env=full_env, cwd=self.cwd, start_new_session=True)
            finally:
                if out is not err:
                    out.close()
        child = Child(name, argv, log, proc, procs.start_time(proc.pid), daemon, may_exit, out_path)
        self.children[name] = child
        self._record()
        return child

    @property
    def record_path(self) -> Path:
        return self.log_dir / "children.json"

    def _record(self) -> None:
        """PIDs and start times on disk, so a run killed with SIGKILL is cleaned up by the next."""
        rows = {c.name: {"pid": c.pid, "started": c.started} for c in self.children.values()}
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows))
        os.replace(tmp, self.record_path)

    def wait(self, name: str, timeout: float, *, poll: float = 0.2, check_others: bool = True) -> str:
        """Wait for a non-daemon child to exit 0; returns its stdout (when captured).

        Other children are checked meanwhile, so a crash anywhere fails fast.
        """
        child = self.children[name]
        deadline = time.monotonic() + timeout
        while child.proc.poll() is None:
            if check_others:
                self.check(skip=name)
            if time.monotonic() > deadline:
                raise ChildFailed(name, None, child.log, tail_lines(child.log))
            time.sleep(poll)
        stdout = ""
        if child.stdout_path is not None:
            stdout = child.stdout_path.read_text(errors="replace")
            with open(child.log, "a") as fh:
                fh.write(stdout)
        if child.proc.returncode != 0:
            raise ChildFailed(name, child.proc.returncode, child.log, tail_lines(child.log))
        return stdout

    def run(self, name: str, argv: list[str], env: dict[str, str] | None = None, *,
            timeout: float = 120.0) -> str:
        self.start(name, argv, env, daemon=False, capture_stdout=True)
        return self.wait(name, timeout)

    def check(self, skip: str | None = None) -> None:
        """Raise :class:`ChildFailed` for the first child that ended when it should not have."""
        for child in self.children.values():
            if child.name == skip:
                continue
            code = child.proc.poll()
            if code is None:
                continue
            if code != 0 or (child.daemon and not child.may_exit):
                raise ChildFailed(child.name, code, child.log, tail_lines(child.log))

    def running(self, name: str) -> bool:
        return self.children[name].proc.poll() is None

    def stop_all(self, timeout: float = 8.0) -> list[str]:
        """SIGTERM every live child's process group, SIGKILL what is left after ``timeout``."""
        live = [c for c in self.children.values() if c.proc.poll() is None]
        for c in live:
            self._signal(c, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(c.proc.poll() is None for c in live):
            time.sleep(0.1)
        for c in live:
            if c.proc.poll() is None:
                self._signal(c, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    c.proc.wait(timeout=5)
            else:
                # the group may still hold a training subprocess the child spawned
                self._signal(c, signal.SIGKILL, group_only=True)
        return [c.name for c in live]

    @staticmethod
    def _signal(c: Child, sig: int, *, group_only: bool = False) -> None:
        """Signal ``c``'s session: the child (while it is still the process we started) and
        every process in its session started after it (its training/replay subprocesses)."""
        targets = session_members(c.pid, c.started)
        if not group_only and procs.is_alive(c.pid, c.started):
            targets.add(c.pid)
        for pid in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def session_members(sid: int, not_before: int | None) -> set[int]:
    """PIDs whose session id is ``sid`` and that started no earlier than ``not_before``."""
    out: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after the command name: state ppid pgrp session ... starttime is field 22 overall
        if fields[0] == "Z" or int(fields[3]) != sid:
            continue
        if not_before is not None and int(fields[19]) < not_before:
            continue
        out.add(int(entry.name))
    return out


def stop_recorded(log_dir: Path) -> list[str]:
    """Stop the children a previous (killed) run recorded in ``log_dir``, if still running."""
    try:
        rows = json.loads((log_dir / "children.json").read_text())
    except (FileNotFoundError, ValueError):
        return []
    stopped = []
    for name, row in rows.items():
        pid, started = int(row["pid"]), row.get("started")
        members = session_members(pid, started)
        if procs.is_alive(pid, started):
            members.add(pid)
        for member in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(member, signal.SIGKILL)
        if members:
            stopped.append(name)
    return stopped
