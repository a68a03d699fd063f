"""Output of `veritrain worker run`: a rich progress bar on stderr when it is a terminal,
plain timestamped lines otherwise; and the SIGINT/SIGTERM handlers that stop cleanly."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any, TextIO


class Reporter:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._bar: Any = None
        self._tasks: dict[int, Any] = {}
        self._last_plain: dict[int, float] = {}

    def __enter__(self) -> Reporter:
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=Console(file=self.stream), transient=False)
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def say(self, msg: str) -> None:
        if self._bar is not None:
            self._bar.console.print(msg)
        else:
            print(f"{time.strftime('%H:%M:%S')} {msg}", file=self.stream, flush=True)

    def progress(self, task_id: int, step: int, total: int) -> None:
        if self._bar is not None:
            if task_id not in self._tasks:
                self._tasks[task_id] = self._bar.add_task(f"task {task_id}", total=total)
            self._bar.update(self._tasks[task_id], completed=step)
            return
        now = time.monotonic()
        if step == total or now - self._last_plain.get(task_id, 0) >= 5:
            self._last_plain[task_id] = now
            self.say(f"task {task_id}: step {step}/{total}")


def install_stop_handlers() -> threading.Event:
    """SIGINT/SIGTERM set the returned event (a second SIGINT interrupts at once)."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
