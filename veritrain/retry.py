"""Retry with exponential backoff for services that restart (an RPC node, an IPFS daemon)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def with_backoff(
    fn: Callable[[], T],
    *,
    transient: tuple[type[BaseException], ...],
    seconds: float,
    backoff: float,
    give_up: Callable[[BaseException, int], Exception],
    max_delay: float = 2.0,
) -> T:
    """Call ``fn`` until it returns; on a ``transient`` error wait (doubling from ``backoff``,
    at most ``max_delay``) while ``seconds`` allow, then raise ``give_up(error, attempts)``."""
    deadline = time.monotonic() + seconds
    delay = backoff
    attempts = 0
    while True:
        attempts += 1
        try:
            return fn()
        except transient as exc:
            if time.monotonic() + delay > deadline:
                raise give_up(exc, attempts) from exc
            time.sleep(delay)
            delay = min(2 * delay, max_delay)
