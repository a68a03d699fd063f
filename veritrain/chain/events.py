"""Event polling: decoded logs from a block onwards, ``confirmations`` blocks behind the head.

A quiet chain (a local automine chain makes a block only when someone transacts) would hold
the newest events back for ever: the block that confirms them never comes. With
``quiet_after`` set, a head that has not moved for that many seconds counts as confirmed, so
the last reveal before a task is final is still seen. Only for chains without reorgs (local
ones): :data:`veritrain.settings.LOCAL_CHAIN_IDS`.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from veritrain.chain.client import ChainClient


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
    ``cursor`` is the next block to read; store it to resume after a restart.
    """

    def __init__(self, client: ChainClient, contract: Any, from_block: int, *,
                 names: list[str] | None = None, confirmations: int = 0, step: int = 2000,
                 quiet_after: float | None = None, clock: Any = time.monotonic) -> None:
        self.client = client
        self.contract = contract
        self.cursor = from_block
        self.confirmations = confirmations
        self.quiet_after = quiet_after
        self._clock = clock
        self._head_seen: tuple[int, float] | None = None  # (head, when it was first seen)
        self.step = step
        from web3 import Web3

        abi_events = [e for e in contract.abi if e.get("type") == "event"]
        wanted = [e for e in abi_events if names is None or e["name"] in names]
        if names is not None and len(wanted) != len(set(names)):
            missing = set(names) - {e["name"] for e in wanted}
            raise ValueError(f"contract has no event(s) {sorted(missing)}")
        self._by_topic: dict[bytes, str] = {}
        for e in wanted:
            sig = f"{e['name']}({','.join(_type(i) for i in e['inputs'])})"
            self._by_topic[bytes(Web3.keccak(text=sig))] = e["name"]

    def poll(self) -> list[Event]:
        """Every new event up to ``head - confirmations``; advances the cursor."""
        head = self.confirmed_head()
        out: list[Event] = []
        while self.cursor <= head:
            end = min(self.cursor + self.step - 1, head)
            flt = {"address": self.contract.address, "fromBlock": self.cursor, "toBlock": end,
                   "topics": [["0x" + t.hex() for t in self._by_topic]]}
            logs = self.client.retry(lambda f=flt: self.client.w3.eth.get_logs(f),  # type: ignore[misc]
                                     "reading logs")
            for log in logs:
                name = self._by_topic.get(bytes(log["topics"][0]))
                if name is None:
                    continue
                ev = self.contract.events[name]().process_log(log)
                out.append(Event(
                    name=name, args={k: _plain(v) for k, v in ev["args"].items()},
                    address=log["address"], block_number=log["blockNumber"],
                    tx_hash="0x" + bytes(log["transactionHash"]).hex(), log_index=log["logIndex"],
                ))
            self.cursor = end + 1
        return out


    def confirmed_head(self) -> int:
        """The newest block to read: ``confirmations`` behind the head, or the head itself once
        it has stood still for ``quiet_after`` seconds."""
        raw = self.client.block_number()
        now = self._clock()
        if self._head_seen is None or self._head_seen[0] != raw:
            self._head_seen = (raw, now)
        if self.quiet_after is not None and now - self._head_seen[1] >= self.quiet_after:
            return raw
        return raw - self.confirmations


def _type(param: dict[str, Any]) -> str:
    from veritrain.chain.errors import canonical_type

    return canonical_type(param)
