"""A dev chain whose old empty blocks `dev up` dropped (veritrain.dev.chainstate) answers null
for them. The poller must read past them and must not take them for a reorg; a block missing
above the head still is one (issue 25)."""

from __future__ import annotations

from typing import Any

from web3.exceptions import BlockNotFound

from veritrain.chain.events import EventPoller


class _Eth:
    def __init__(self, chain: _Chain) -> None:
        self.chain = chain

    def get_block(self, n: int | str) -> dict[str, Any]:
        if n == "latest":
            head = self.chain.height
            return {"number": head, "hash": self._hash(head), "parentHash": self._hash(head - 1)}
        assert isinstance(n, int)
        if n > self.chain.height or n in self.chain.pruned:
            raise BlockNotFound(n)
        return {"hash": self._hash(n)}

    def _hash(self, n: int) -> bytes:
        return self.chain.hashes.get(n, bytes([n % 256]) * 32)

    def get_logs(self, flt: dict[str, Any]) -> list[Any]:
        return []


class _Chain:
    log_range = 100

    def __init__(self, head: int) -> None:
        self.height, self.pruned, self.hashes = head, set[int](), dict[int, bytes]()
        self.w3 = type("W3", (), {"eth": _Eth(self)})()

    def block_number(self) -> int:
        return self.height

    def head(self) -> dict[str, Any]:
        return self.w3.eth.get_block("latest")

    def retry(self, fn: Any, what: str) -> Any:
        return fn()


class _Contract:
    abi: list[Any] = []
    address = "0x" + "00" * 20


def test_the_poller_reads_past_pruned_blocks_and_does_not_see_a_reorg_in_them() -> None:
    chain = _Chain(head=1_000)
    chain.pruned = {n for n in range(1, 900) if n % 100 != 0} | {199, 299}  # page ends 199, 299 pruned
    poller = EventPoller(chain, _Contract(), 0)  # type: ignore[arg-type]
    poller.poll()
    assert poller.cursor == 1_001  # before: stuck at block 199, the first pruned page end
    assert poller.stats["reorgs"] == 0
    remembered = poller.state()
    chain.pruned |= set(range(900, 990))  # a later `dev up` prunes what the poller remembered
    again = EventPoller(chain, _Contract(), 0).resume(remembered)  # type: ignore[arg-type]
    again.poll()
    assert again.stats["reorgs"] == 0 and again.cursor == 1_001 and again.retracted == []


def test_a_block_missing_above_the_head_is_still_a_reorg() -> None:
    chain = _Chain(head=1_000)
    poller = EventPoller(chain, _Contract(), 0)  # type: ignore[arg-type]
    poller.poll()
    chain.height = 950  # the chain got shorter: the page end at 1,000 is gone
    chain.hashes = {n: b"\xee" * 32 for n in range(900, 951)}  # and the blocks under it changed
    poller.poll()
    assert poller.stats["reorgs"] == 1
    assert poller.cursor == 951


def test_a_catch_up_over_a_long_history_reads_block_hashes_only_near_the_head() -> None:
    """A fresh verifier after 100,000 empty blocks spent 1.7 times the requests per task (issue 25):
    every 2,000-block page cost a log read and a block-hash read, though hashes deeper than the
    reorg window are forgotten at once. Now only the pages within it read a hash."""
    chain = _Chain(head=100_000)
    chain.log_range = 2_000
    calls = {"get_block": 0, "get_logs": 0}
    eth = chain.w3.eth
    get_block, get_logs = eth.get_block, eth.get_logs
    eth.get_block = lambda n: (calls.__setitem__("get_block", calls["get_block"] + 1), get_block(n))[1]
    eth.get_logs = lambda f: (calls.__setitem__("get_logs", calls["get_logs"] + 1), get_logs(f))[1]
    poller = EventPoller(chain, _Contract(), 0)  # type: ignore[arg-type]
    poller.poll()
    assert poller.cursor == 100_001
    # before: 51 and 51; now the latest block, and the hash of the page ending at 99,999
    assert calls == {"get_logs": 51, "get_block": 2}
    # a reorg near the head is still seen: the newest page end's hash was kept
    chain.hashes = {n: b"\xee" * 32 for n in range(99_990, 100_001)}
    poller.poll()
    assert poller.stats["reorgs"] == 1


def _counted(chain: _Chain) -> dict[str, int]:
    calls = {"get_block": 0, "get_logs": 0}
    eth = chain.w3.eth
    get_block, get_logs = eth.get_block, eth.get_logs
    eth.get_block = lambda n: (calls.__setitem__("get_block", calls["get_block"] + 1), get_block(n))[1]
    eth.get_logs = lambda f: (calls.__setitem__("get_logs", calls["get_logs"] + 1), get_logs(f))[1]
    return calls


def test_an_idle_poll_costs_one_request_and_a_new_block_two() -> None:
    """Every role polls on a short clock, most often finding nothing new (a job's fixed cost in
    issue 25's figures). Unchanged latest block: one request. One block on top of it: that read
    and one page of logs (no reorg check: the chain only grew; the page end's hash is the
    latest's). A block replaced at the same height is still a reorg."""
    chain = _Chain(head=1_000)
    poller = EventPoller(chain, _Contract(), 0)  # type: ignore[arg-type]
    poller.poll()
    calls = _counted(chain)
    assert poller.poll() == [] and calls == {"get_block": 1, "get_logs": 0}  # before: 2 requests
    chain.height = 1_001
    calls.update(get_block=0, get_logs=0)
    poller.poll()
    assert calls == {"get_block": 1, "get_logs": 1} and poller.cursor == 1_002  # before: 4
    chain.hashes = {1_001: b"\xee" * 32}  # the latest block replaced by another, same height
    poller.poll()
    assert poller.stats["reorgs"] == 1 and poller.cursor == 1_002
