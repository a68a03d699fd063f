"""Keep the dev chain's state file bounded by what happened on the chain, not by its age.

Anvil's ``--state`` file holds every block header: about 1.75 kB per block, empty or not (issue
25 measured 41 MB at 21,000 blocks of a one-second clock). Before ``dev up`` starts Anvil on an
existing file, :func:`compact` drops the empty blocks older than the newest ``keep_recent``:

- every block with a transaction stays, so every event stays readable with ``eth_getLogs`` and
  every receipt with ``eth_getTransactionReceipt``;
- accounts, code and storage are untouched (they live beside the blocks, not in them);
- the newest ``keep_recent`` blocks stay whole, so ``blockhash`` and the roles' reorg checks
  of recent blocks see the same chain.

A dropped block reads as missing (``eth_getBlockByNumber`` answers null), which the event
poller treats as pruned rather than as a reorg (``veritrain.chain.events``). Anvil loads such a
file as it is (checked: head, logs and new transactions after a restart); the test is
``tests/integration/test_dev_stack.py``. The file is rewritten atomically; one that cannot be
read is left alone for Anvil to report.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

#: Empty blocks newer than this many below the head are kept (above the roles' reorg window).
KEEP_RECENT = 1_000


@dataclass(frozen=True)
class Compaction:
    blocks_before: int
    blocks_after: int
    bytes_before: int
    bytes_after: int
    keep_recent: int

    def line(self) -> str:
        return (f"chain state: kept {self.blocks_after:,} of {self.blocks_before:,} blocks "
                f"({self.bytes_before / 1e6:.1f} MB -> {self.bytes_after / 1e6:.1f} MB; "
                f"empty blocks older than the newest {self.keep_recent:,} dropped)")


def _number(block: dict) -> int:
    return int(block["header"]["number"], 16)


def prune_blocks(state: dict, keep_recent: int = KEEP_RECENT) -> list[dict]:
    """The blocks of an Anvil state dump to keep: block 0, every block with a transaction, and
    every block within ``keep_recent`` of the newest."""
    blocks = state.get("blocks") or []
    if not blocks:
        return []
    head = max(_number(b) for b in blocks)
    return [b for b in blocks
            if b.get("transactions") or _number(b) == 0 or _number(b) > head - keep_recent]


def compact(path: Path, keep_recent: int = KEEP_RECENT) -> Compaction | None:
    """Rewrite the state file at ``path`` without its old empty blocks. None when there was
    nothing to drop, or the file is missing or unreadable."""
    try:
        raw = path.read_bytes()
        state = json.loads(raw)
        kept = prune_blocks(state, keep_recent)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    before = len(state.get("blocks") or [])
    if len(kept) == before:
        return None
    state["blocks"] = kept
    text = json.dumps(state, separators=(",", ":")).encode()
    tmp = path.with_suffix(".compacting")
    tmp.write_bytes(text)
    os.replace(tmp, path)
    return Compaction(before, len(kept), len(raw), len(text), keep_recent)
