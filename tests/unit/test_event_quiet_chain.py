"""A quiet chain must not hide the newest events from a poller that waits for confirmations:
the verifier would otherwise never see the last reveal before a task is final (issue 24)."""

from __future__ import annotations

from typing import Any

from veritrain.chain.events import EventPoller


class _Head:
    """The one thing confirmed_head reads from the client: the block number."""

    def __init__(self, n: int) -> None:
        self.n = n

    def block_number(self) -> int:
        return self.n


class _Contract:
    abi: list[Any] = []
    address = "0x" + "00" * 20


def _poller(head: _Head, quiet: float | None, clock: list[float]) -> EventPoller:
    return EventPoller(head, _Contract(), 0, confirmations=1, quiet_after=quiet,  # type: ignore[arg-type]
                       clock=lambda: clock[0])


def test_a_head_that_stands_still_counts_as_confirmed_after_quiet_after() -> None:
    head, clock = _Head(10), [100.0]
    p = _poller(head, 2.0, clock)
    assert p.confirmed_head() == 9  # just seen: one confirmation held back
    clock[0] = 101.5
    assert p.confirmed_head() == 9
    clock[0] = 102.0
    assert p.confirmed_head() == 10  # quiet for 2 s: the reveal in block 10 is read
    head.n, clock[0] = 11, 102.5  # a new block: confirmations apply again
    assert p.confirmed_head() == 10


def test_without_quiet_after_a_quiet_chain_holds_the_last_block_back() -> None:
    head, clock = _Head(10), [0.0]
    p = _poller(head, None, clock)
    clock[0] = 10_000.0
    assert p.confirmed_head() == 9  # what the verifier did before: the last reveal never seen
