"""Event polling: decoded logs from a block onwards, ``confirmations`` blocks behind the head.

A quiet chain (a local automine chain makes a block only when someone transacts) would hold
the newest events back for ever: the block that confirms them never comes. With
``quiet_after`` set, a head that has not moved for that many seconds counts as confirmed, so
the last reveal before a task is final is still seen. Only for chains without reorgs (local
ones): :data:`veritrain.settings.LOCAL_CHAIN_IDS`.

Like a careful indexer, the poller reads ``eth_getLogs`` in pages no wider than the provider's
block-range limit (``step``, default the client's ``log_range`` from the network profile), halving
a page the provider still refuses as too wide, and it notices reorgs: it remembers the hash of the
last block of each page it read, and when the hash under its cursor changes it rewinds to the
newest remembered block that is still on the chain, moves the events of the dropped blocks to
:attr:`EventPoller.retracted` (a role undoes what it derived from them) and reads the new blocks
again, so every event it yields is on the current chain and none is yielded twice for one block.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from veritrain.chain.client import ChainClient, RangeTooWide, is_range_error

#: Blocks of history kept for reorg detection and retraction.
REORG_WINDOW = 256


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    args: dict[str, Any]
    address: str
    block_number: int
    tx_hash: str
    log_index: int


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    return v


class EventPoller:
    """Yields each matching event once, in chain order, as blocks become confirmed.

    ``names`` limits the event types (default: every event in the contract's ABI).
    ``cursor`` is the next block to read; store :meth:`state` to resume after a restart
    (:meth:`resume`), reorg detection included.
    """

    def __init__(self, client: ChainClient, contract: Any, from_block: int, *,
                 names: list[str] | None = None, confirmations: int = 0, step: int | None = None,
                 quiet_after: float | None = None, clock: Any = time.monotonic) -> None:
        self.client = client
        self.contract = contract
        self.cursor = from_block
        self.confirmations = confirmations
        self.quiet_after = quiet_after
        self._clock = clock
        self._head_seen: tuple[int, float] | None = None  # (head, when it was first seen)
        self._raw_head = 0  # the head's number as last read
        self._tip: str | None = None  # the latest block's hash at the last poll
        self.step: int = step or int(getattr(client, "log_range", 2000))
        #: Page-end block -> its hash, for the newest pages (reorg detection).
        self._hashes: dict[int, str] = {}
        #: Events yielded from the newest blocks, which a reorg may still drop.
        self._recent: list[Event] = []
        #: Events yielded earlier whose blocks a reorg dropped (oldest first); the caller clears it.
        self.retracted: list[Event] = []
        self.stats = {"pages": 0, "reorgs": 0, "narrowed": 0}
        from web3 import Web3

        abi_events = [e for e in contract.abi if e.get("type") == "event"]
        wanted = [e for e in abi_events if names is None or e["name"] in names]
        if names is not None and len(wanted) != len(set(names)):
            missing = set(names) - {e["name"] for e in wanted}
            raise ValueError(f"contract has no event(s) {sorted(missing)}")
        address_hash = Web3.keccak(hexstr=contract.address)
        #: The three logs-bloom bits of the contract's address (yellow paper §4.3.1).
        self._bloom_bits = [((address_hash[i] << 8) | address_hash[i + 1]) & 2047 for i in (0, 2, 4)]
        self._by_topic: dict[bytes, str] = {}
        for e in wanted:
            sig = f"{e['name']}({','.join(_type(i) for i in e['inputs'])})"
            self._by_topic[bytes(Web3.keccak(text=sig))] = e["name"]

    # -- resuming after a restart ----------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What a restarted role needs to resume here *and* notice a reorg that happened while it
        was down: the cursor, the remembered page-end hashes and the events of the newest blocks
        (JSON-ready; journal it together with whatever was derived from the events)."""
        return {"cursor": self.cursor, "hashes": {str(n): h for n, h in self._hashes.items()},
                "recent": [e.model_dump(mode="json") for e in self._recent]}

    def resume(self, state: Any) -> EventPoller:
        """Continue from a :meth:`state`. The next :meth:`poll` checks the remembered hashes, so
        events of blocks dropped meanwhile reach :attr:`retracted` as if it had never stopped. A
        bare cursor (what journals held before) resumes without that check; None keeps
        ``from_block``."""
        if state is None:
            return self
        if isinstance(state, int):
            self.cursor = state
            return self
        self.cursor = int(state["cursor"])
        self._hashes = {int(n): str(h) for n, h in state.get("hashes", {}).items()}
        self._recent = [Event.model_validate(e) for e in state.get("recent", [])]
        return self

    def poll(self) -> list[Event]:
        """Every new event up to ``head - confirmations``; advances the cursor (after undoing a
        reorg, see the module doc).

        It reads the latest block first: when that is the block of the last poll, nothing can
        have changed (a block's hash fixes its whole ancestry) and the poll costs that one
        request; when its parent is the last poll's latest block the chain only grew, so the
        reorg check is skipped. A page ending at the latest block takes its hash from it; a page
        of the latest block alone is not read when its logs bloom rules the contract out."""
        number, tip, parent, bloom = self._latest()
        previous, head = self._tip, self._confirmed(number)
        if previous == tip and self.cursor > head:
            return []
        if previous is None or parent != previous:
            self._check_reorg()
        out: list[Event] = []
        while self.cursor <= head:
            end = min(self.cursor + self.step - 1, head)
            try:
                quiet = self.cursor == end == number and not self._may_log(bloom)
                logs = [] if quiet else self._logs(self.cursor, end)
            except RangeTooWide:
                if self.step == 1:
                    raise
                self.step = max(1, self.step // 2)
                self.stats["narrowed"] += 1
                continue
            self.stats["pages"] += 1
            page = [ev for ev in (self._decode(log) for log in logs) if ev is not None]
            if end < self._raw_head - REORG_WINDOW:
                # deeper than any reorg this poller undoes: its hash would be forgotten at once
                # (_forget_old), so a catch-up across a long history reads logs alone
                out += page
                self.cursor = end + 1
                continue
            block_hash = tip if end == number else self._hash(end)
            if block_hash is None and not self._pruned(end):  # the head moved back: a reorg
                break
            out += page
            if block_hash is not None:
                self._hashes[end] = block_hash
            self.cursor = end + 1
        self._recent += out
        self._forget_old()
        self._tip = tip  # only after a whole poll: one that failed checks again next time
        return out

    def _logs(self, start: int, end: int) -> list[Any]:
        from web3.exceptions import Web3RPCError

        flt = {"address": self.contract.address, "fromBlock": start, "toBlock": end,
               "topics": [["0x" + t.hex() for t in self._by_topic]]}

        def read() -> list[Any]:
            try:
                return list(self.client.w3.eth.get_logs(flt))  # type: ignore[arg-type]
            except Web3RPCError as exc:
                if is_range_error(exc):
                    raise RangeTooWide(str(exc)) from None
                raise

        return self.client.retry(read, "reading logs")

    def _decode(self, log: Any) -> Event | None:
        name = self._by_topic.get(bytes(log["topics"][0]))
        if name is None:
            return None
        ev = self.contract.events[name]().process_log(log)
        return Event(
            name=name, args={k: _plain(v) for k, v in ev["args"].items()},
            address=log["address"], block_number=log["blockNumber"],
            tx_hash="0x" + bytes(log["transactionHash"]).hex(), log_index=log["logIndex"],
        )

    def _latest(self) -> tuple[int, str, str, bytes | None]:
        """(number, hash, parent hash, logs bloom) of the latest block."""
        block = self.client.head()
        self._raw_head = int(block["number"])
        bloom = block.get("logsBloom")
        return (self._raw_head, "0x" + bytes(block["hash"]).hex(), "0x" + bytes(block["parentHash"]).hex(),
                bytes(bloom) if bloom is not None else None)

    def _may_log(self, bloom: bytes | None) -> bool:
        """Whether the block with this logs bloom may hold a log of the contract: a quiet chain's
        new block (an empty one, or others' transactions) then costs no ``eth_getLogs``. The
        bloom has no false negatives."""
        if bloom is None or len(bloom) != 256:
            return True
        return all(bloom[255 - bit // 8] & (1 << (bit % 8)) for bit in self._bloom_bits)

    def _hash(self, number: int) -> str | None:
        from web3.exceptions import BlockNotFound

        try:
            block = self.client.retry(lambda: self.client.w3.eth.get_block(number), "reading a block")
        except BlockNotFound:
            return None
        return "0x" + bytes(block["hash"]).hex()

    def _pruned(self, number: int) -> bool:
        """A block below the head that reads as missing was pruned, not reorged: a dev chain
        whose old empty blocks ``dev up`` dropped (``veritrain.dev.chainstate``). A reorg that
        shortens the chain leaves the missing block above the new head."""
        return number <= self.client.block_number()

    def _unchanged(self, number: int) -> bool:
        """Block ``number`` still has the hash read before (or was pruned since)."""
        now = self._hash(number)
        return now == self._hashes[number] if now is not None else self._pruned(number)

    def _check_reorg(self) -> None:
        """Rewind past blocks whose hash changed since they were read."""
        if not self._hashes:
            return
        newest = max(self._hashes)
        if self._unchanged(newest):
            return
        self.stats["reorgs"] += 1
        kept = [n for n in sorted(self._hashes, reverse=True) if self._unchanged(n)]
        ancestor = kept[0] if kept else min(self._hashes) - 1
        for n in [n for n in self._hashes if n > ancestor]:
            del self._hashes[n]
        self.retracted += [e for e in self._recent if e.block_number > ancestor]
        self._recent = [e for e in self._recent if e.block_number <= ancestor]
        self.cursor = min(self.cursor, ancestor + 1)

    def _forget_old(self) -> None:
        if not self._hashes:
            return
        horizon = max(self._hashes) - REORG_WINDOW
        self._hashes = {n: h for n, h in self._hashes.items() if n >= horizon}
        self._recent = [e for e in self._recent if e.block_number >= horizon]

    def confirmed_head(self) -> int:
        """The newest block to read: ``confirmations`` behind the head, or the head itself once
        it has stood still for ``quiet_after`` seconds."""
        return self._confirmed(self.client.block_number())

    def _confirmed(self, raw: int) -> int:
        """:meth:`confirmed_head` for a head of ``raw``."""
        now = self._clock()
        if self._head_seen is None or self._head_seen[0] != raw:
            self._head_seen = (raw, now)
        if self.quiet_after is not None and now - self._head_seen[1] >= self.quiet_after:
            return raw
        return raw - self.confirmations


def _type(param: dict[str, Any]) -> str:
    from veritrain.chain.errors import canonical_type

    return canonical_type(param)
