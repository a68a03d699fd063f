"""The dev chain's state-file compaction (veritrain.dev.chainstate, issue 25)."""

from __future__ import annotations

import json
from pathlib import Path

from veritrain.dev import chainstate


def _block(n: int, txs: int = 0) -> dict:
    return {"header": {"number": hex(n)}, "transactions": [{"tx": i} for i in range(txs)]}


def test_old_empty_blocks_go_and_blocks_with_transactions_and_recent_ones_stay() -> None:
    state = {"blocks": [_block(0)] + [_block(n, txs=1 if n in (5, 40) else 0) for n in range(1, 101)]}
    kept = [int(b["header"]["number"], 16) for b in chainstate.prune_blocks(state, keep_recent=10)]
    assert kept == [0, 5, 40, *range(91, 101)]


def test_compact_rewrites_the_file_and_leaves_everything_but_blocks_alone(tmp_path: Path) -> None:
    path = tmp_path / "anvil-state.json"
    state = {"accounts": {"0xabc": {"nonce": 3}}, "best_block_number": 3000, "transactions": [{"h": 1}],
             "blocks": [_block(n, txs=1 if n == 7 else 0) for n in range(3001)]}
    path.write_text(json.dumps(state))
    done = chainstate.compact(path, keep_recent=100)
    assert done is not None and (done.blocks_before, done.blocks_after) == (3001, 102)
    assert done.bytes_after == path.stat().st_size < done.bytes_before
    assert "older than the newest 100 dropped" in done.line()
    after = json.loads(path.read_text())
    del after["blocks"], state["blocks"]
    assert after == state
    assert chainstate.compact(path, keep_recent=100) is None  # nothing left to drop: file kept as is


def test_an_unreadable_or_missing_file_is_left_for_anvil_to_report(tmp_path: Path) -> None:
    path = tmp_path / "anvil-state.json"
    assert chainstate.compact(path) is None
    path.write_text('{"blocks": [')  # cut short
    assert chainstate.compact(path) is None and path.read_text() == '{"blocks": ['
