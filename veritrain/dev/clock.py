"""The dev chain's clock: mine an empty block whenever the chain has been quiet for a while.

Anvil in automine makes a block only when someone transacts, so on a quiet chain block
timestamps stand still and no deadline (a challenge window, a key window) ever passes. Anvil's
own interval mining fixes the clock but turns automine off, and Ape then stops waiting for
receipts (`ape run deploy` fails with "did not create a contract"). So the stack keeps Anvil in
automine and runs this small process beside it: every ``interval`` seconds, if no block came
since the last look, it calls ``evm_mine``. Transactions are still mined at once; time moves
at least once per ``interval``.

An idle chain must not grow without end (issue 25: a block a second made the state file 41 MB
at 21,000 blocks, ~1.7 kB per empty block, rewritten every second): once nobody but the clock has
made a block for ``idle_after`` seconds, the pause between its blocks doubles, up to
``max_interval``; the first block somebody else makes brings it back to ``interval``. An idle
dev chain then adds ``86,400 / max_interval`` blocks a day instead of ``86,400 / interval``, and
chain time lags the wall clock by at most ``max_interval`` while nobody transacts.

    python -m veritrain.dev.clock --rpc http://127.0.0.1:8545 --interval 1
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import urllib.error

from veritrain.dev.procs import http_post_json


def _rpc(url: str, method: str, params: list[object]) -> object:
    reply = http_post_json(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, 5.0)
    return reply.get("result") if isinstance(reply, dict) else None


def tick(url: str, last: object) -> object:
    """One look: mine a block if the head is still ``last``; returns the head seen."""
    head = _rpc(url, "eth_blockNumber", [])
    if head is not None and head == last:
        _rpc(url, "evm_mine", [])
        head = _rpc(url, "eth_blockNumber", [])
    return head


class Pace:
    """The pause before the next look: ``interval`` while others make blocks, doubling once the
    clock alone has made them for ``idle_after`` seconds, up to ``max_interval``."""

    def __init__(self, interval: float, idle_after: float = 60.0, max_interval: float = 30.0) -> None:
        self.interval, self.idle_after = interval, idle_after
        self.max_interval = max(max_interval, interval)
        self.pause = interval
        self._mined: object = None  # the head after the clock's own last block
        self._quiet_since: float | None = None

    def next(self, head_before: object, head_after: object, now: float) -> float:
        """After one look: ``head_before`` seen, ``head_after`` once it mined (equal: it did not)."""
        foreign = head_before != self._mined  # somebody else made a block since the clock's last
        self._mined = head_after if head_after != head_before else self._mined
        if foreign or self._quiet_since is None:
            self._quiet_since, self.pause = now, self.interval
        elif now - self._quiet_since >= self.idle_after:
            self.pause = min(self.pause * 2, self.max_interval)
        return self.pause


def run(url: str, interval: float, idle_after: float = 60.0, max_interval: float = 30.0) -> None:
    last: object = None
    pace = Pace(interval, idle_after, max_interval)
    while True:
        try:
            before = _rpc(url, "eth_blockNumber", [])
            last = tick(url, last)
            pause = pace.next(before, last, time.monotonic())
        except (OSError, urllib.error.URLError, ValueError):
            last, pause = None, interval  # the node is restarting or gone: keep looking
        time.sleep(pause)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rpc", required=True)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--idle-after", type=float, default=60.0,
                    help="seconds with no block but the clock's before its pauses grow")
    ap.add_argument("--max-interval", type=float, default=30.0, help="the longest pause on an idle chain")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run(args.rpc, args.interval, args.idle_after, args.max_interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
