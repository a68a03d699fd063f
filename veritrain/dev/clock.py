"""The dev chain's clock: mine an empty block whenever the chain has been quiet for a while.

Anvil in automine makes a block only when someone transacts, so on a quiet chain block
timestamps stand still and no deadline (a challenge window, a key window) ever passes. Anvil's
own interval mining fixes the clock but turns automine off, and Ape then stops waiting for
receipts (`ape run deploy` fails with "did not create a contract"). So the stack keeps Anvil in
automine and runs this small process beside it: every ``interval`` seconds, if no block came
since the last look, it calls ``evm_mine``. Transactions are still mined at once; time moves
at least once per ``interval``.

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


def run(url: str, interval: float) -> None:
    last: object = None
    while True:
        try:
            last = tick(url, last)
        except (OSError, urllib.error.URLError, ValueError):
            last = None  # the node is restarting or gone: keep looking
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rpc", required=True)
    ap.add_argument("--interval", type=float, default=1.0)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run(args.rpc, args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
