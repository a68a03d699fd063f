"""Event polling: decoded logs from a block onwards, ``confirmations`` blocks behind the head."""

from __future__ import annotations

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
                 names: list[str] | None = None, confirmations: int = 0, step: int = 2000) -> None:
        self.client = client
        self.contract = contract
        self.cursor = from_block
        self.confirmations = confirmations
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
        head = self.client.block_number() - self.confirmations
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


def _type(param: dict[str, Any]) -> str:
    from veritrain.chain.errors import canonical_type

    return canonical_type(param)
