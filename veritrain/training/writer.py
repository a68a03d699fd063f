"""Checkpoints written off the training thread: a background writer with a bounded queue.

The training thread hands over a snapshot (:func:`veritrain.training.state.snapshot`: a clone
on the training device, no wait for the host) and goes on training. One writer thread, in
checkpoint order, copies it to host memory (pinned, on its own CUDA stream, for a GPU),
encodes it canonically, hashes it and calls ``sink.put`` (which may encrypt and upload). At
most ``depth`` checkpoints wait at a time: a slow sink then holds training back rather than
letting snapshots pile up in memory. A sink error is raised on the training thread at the next
hand-over or at :meth:`BackgroundWriter.close`.

Crash safety is the sink's: written in index order by one thread, a
:class:`~veritrain.training.sinks.DirectorySink` killed at any moment holds a contiguous run of
whole checkpoints, which ``train_or_resume`` resumes after.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from veritrain.checkpoint import CheckpointState, checkpoint_hash, encode
from veritrain.training.sinks import CheckpointSink

#: Checkpoints allowed in flight before the training thread waits for the writer.
DEFAULT_DEPTH = 2


class BackgroundWriter:
    """``with BackgroundWriter(sink) as w: w.submit(i, snapshot.to_state)``; ``w.hashes`` after."""

    def __init__(self, sink: CheckpointSink, depth: int = DEFAULT_DEPTH) -> None:
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self.sink, self.depth = sink, depth
        self.hashes: list[bytes] = []
        self._pending: deque[Future[bytes]] = deque()
        self._failed = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="veritrain-ckpt")

    def submit(self, index: int, make_state: Callable[[], CheckpointState]) -> None:
        """Queue checkpoint ``index``; waits while ``depth`` are already queued."""
        while len(self._pending) >= self.depth:
            self.hashes.append(self._pending.popleft().result())
        self._pending.append(self._pool.submit(self._write, index, make_state))

    @property
    def in_flight(self) -> int:
        return sum(not f.done() for f in self._pending)

    def _write(self, index: int, make_state: Callable[[], CheckpointState]) -> bytes:
        if self._failed:  # never write past a checkpoint that failed: the run stays contiguous
            raise RuntimeError(f"checkpoint {index} not written: an earlier one failed")
        try:
            data = encode(make_state())
            digest = checkpoint_hash(data)
            self.sink.put(index, data, digest)
        except BaseException:
            self._failed = True
            raise
        return digest

    def close(self) -> list[bytes]:
        """Wait for every queued checkpoint; their hashes, in order (a sink error is raised)."""
        try:
            while self._pending:
                self.hashes.append(self._pending.popleft().result())
        finally:
            self._pool.shutdown(wait=True)
        return self.hashes

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
            return
        # training failed: let what is queued finish (whole files only), keep the first error
        for f in self._pending:
            f.exception()
        self._pool.shutdown(wait=True)
