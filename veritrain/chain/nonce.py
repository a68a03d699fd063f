"""Nonces for one account shared by threads (a lock) and processes (a file lock).

The lock file ``<dir>/<chain id>-<address>.nonce`` holds the next nonce. A sender takes the
lock, reads the file, sends, and writes ``nonce + 1`` before releasing it, so two senders
never pick the same nonce. A nonce error from the node (someone else used the account)
triggers :meth:`NonceManager.resync` from the node's ``pending`` count.

The file can outlive the chain it counted (``evm_revert``, ``veritrain dev up --fresh``): a
stored nonce *above* the node's pending count would go out as a gapped transaction that is
never mined. Every sender holds the lock through sign + send, so while we hold it the node's
pending count already includes every transaction we sent; a stored nonce above it is stale
and the node's count is used instead.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


class NonceManager:
    def __init__(self, address: str, chain_id: int, folder: Path,
                 pending_count: Callable[[], int]) -> None:
        self.path = Path(folder) / f"{chain_id}-{address.lower()}.nonce"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pending_count = pending_count
        with _GUARD:
            self._lock = _THREAD_LOCKS.setdefault(str(self.path), threading.Lock())

    @contextmanager
    def reserve(self) -> Iterator[int]:
        """Hold the account's nonce; commit ``nonce + 1`` if the block exits normally."""
        with self._lock, open(self.path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.seek(0)
                text = f.read().strip()
                pending = self._pending_count()
                nonce = pending if not text or int(text) > pending else int(text)
                yield nonce
                self._write(f, nonce + 1)
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def resync(self) -> int:
        """Forget the stored nonce; the next reservation reads the node's pending count."""
        with self._lock, open(self.path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                nonce = self._pending_count()
                self._write(f, nonce)
                return nonce
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @staticmethod
    def _write(f, value: int) -> None:  # type: ignore[no-untyped-def]
        f.seek(0)
        f.truncate()
        f.write(str(value))
        f.flush()
