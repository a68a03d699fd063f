"""The demo's own chain access: deploy, fund the workers' fresh keys, keep blocks coming,
and read what happened (events and receipts) for the progress lines and the summary.

The orchestrator never acts in the protocol: after deploying and funding it only *reads*
the chain, and mines empty blocks so chain time follows the wall clock (see
:class:`BlockClock`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from veritrain.artifacts import artifact
from veritrain.deployments import Deployment
from veritrain.dev import procs
from veritrain.dev.deploy import _send, deploy_contract, deploy_protocol

PROTOCOL = ("JobMarket", "DisputeResolver", "VerifierRegistry")


def connect(url: str) -> Any:
    from web3 import HTTPProvider, Web3

    return Web3(HTTPProvider(url, request_kwargs={"timeout": 30}))


def deploy(w3: Any, deployer: Any, *, resolver_params: dict[str, int], mint_to: list[str],
           mint: int) -> Deployment:
    """DevToken + the protocol (resolver with the demo's windows), tokens minted to ``mint_to``."""
    start = w3.eth.block_number
    token = deploy_contract(w3, deployer, "DevToken", deployer.address)
    contracts = deploy_protocol(w3, deployer, token.address, resolver_params=resolver_params)
    for holder in mint_to:
        _send(w3, deployer, token.functions.mint(holder, mint))
    return Deployment(network="demo", chain_id=w3.eth.chain_id, deploy_block=start,
                      contracts={"DevToken": token.address, **{k: c.address for k, c in contracts.items()}})


def fund(w3: Any, funder: Any, deployment: Deployment, addresses: list[str], *, eth: int,
         tokens: int) -> None:
    """Gas money (a plain transfer) and DevTokens (minted by the token's owner) for fresh keys."""
    token = w3.eth.contract(address=deployment.address("DevToken"), abi=artifact("DevToken")["abi"])
    for addr in addresses:
        nonce = w3.eth.get_transaction_count(funder.address, "pending")
        tx = {"to": addr, "value": eth, "gas": 21_000, "nonce": nonce, "chainId": w3.eth.chain_id,
              "maxFeePerGas": 2 * w3.eth.gas_price + 1, "maxPriorityFeePerGas": 1}
        h = w3.eth.send_raw_transaction(funder.sign_transaction(tx).raw_transaction)
        w3.eth.wait_for_transaction_receipt(h, poll_latency=0.01)
        _send(w3, funder, token.functions.mint(addr, tokens))


class BlockClock:
    """Mine an empty block every ``interval`` seconds (``evm_mine``; time is never warped).

    Anvil automines one block per transaction and otherwise makes none, so its clock (the
    latest block's timestamp, which every role reads as "now") stands still while nobody
    sends anything. A real chain makes a block every few seconds; this does the same, so
    deadlines pass in real time and events get the confirmation blocks verifiers wait for.
    """

    def __init__(self, url: str, interval: float = 1.0) -> None:
        self.url, self.interval = url, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="block-clock", daemon=True)
        self.mined = 0

    def start(self) -> BlockClock:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                procs.http_post_json(self.url, {"jsonrpc": "2.0", "id": 1, "method": "evm_mine",
                                                "params": []}, timeout=5)
                self.mined += 1
            except (OSError, ValueError):
                pass  # the node is busy or going down; the next tick tries again


@dataclass(frozen=True)
class Event:
    contract: str
    name: str
    args: dict[str, Any]
    block: int
    log_index: int
    tx: str


class EventLog:
    """Every event of the protocol's contracts, decoded, read incrementally in block order."""

    def __init__(self, w3: Any, deployment: Deployment) -> None:
        from eth_utils import event_abi_to_log_topic

        self.w3 = w3
        self.events: list[Event] = []
        self._cursor = deployment.deploy_block
        self._decoders: dict[tuple[str, bytes], tuple[str, Any]] = {}
        self._names: dict[str, str] = {}
        for name in PROTOCOL:
            address = deployment.address(name)
            contract = w3.eth.contract(address=address, abi=artifact(name)["abi"])
            self._names[address.lower()] = name
            for abi in contract.abi:
                if abi["type"] == "event":
                    topic = bytes(event_abi_to_log_topic(abi))
                    self._decoders[(address.lower(), topic)] = (name, getattr(contract.events, abi["name"])())
        self._addresses = [deployment.address(n) for n in PROTOCOL]

    def poll(self) -> list[Event]:
        """Events in blocks mined since the last call (oldest first); also kept in ``events``."""
        head = self.w3.eth.block_number
        if head < self._cursor:
            return []
        logs = self.w3.eth.get_logs({"address": self._addresses, "fromBlock": self._cursor, "toBlock": head})
        self._cursor = head + 1
        new = []
        for log in sorted(logs, key=lambda g: (g["blockNumber"], g["logIndex"])):
            key = (str(log["address"]).lower(), bytes(log["topics"][0]))
            if key not in self._decoders:
                continue
            contract, decoder = self._decoders[key]
            ev = decoder.process_log(log)
            new.append(Event(contract, ev["event"], dict(ev["args"]), int(log["blockNumber"]),
                             int(log["logIndex"]), "0x" + bytes(log["transactionHash"]).hex()))
        self.events.extend(new)
        return new

    def rewind(self, from_block: int) -> list[Event]:
        """Forget the events of blocks ``from_block`` on (a reorg replaced them) and read those
        blocks again at the next :meth:`poll`; returns the events forgotten."""
        gone = [e for e in self.events if e.block >= from_block]
        self.events = [e for e in self.events if e.block < from_block]
        self._cursor = min(self._cursor, from_block)
        return gone

    def named(self, *names: str) -> list[Event]:
        return [e for e in self.events if e.name in names]


def gas_used(w3: Any, first_block: int = 0) -> tuple[int, dict[str, int], int]:
    """Gas of every transaction mined from ``first_block`` to the head, read from receipts.

    Returns (total, gas by function name — ``deploy`` for contract creations — , transactions).
    """
    from eth_utils import function_abi_to_4byte_selector

    selectors: dict[bytes, str] = {}
    for name in (*PROTOCOL, "DevToken"):
        for abi in artifact(name)["abi"]:
            if abi["type"] == "function":
                selectors[bytes(function_abi_to_4byte_selector(abi))] = abi["name"]
    total, count = 0, 0
    by_fn: dict[str, int] = {}
    for number in range(first_block, w3.eth.block_number + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        if not block["transactions"]:
            continue
        receipts = {bytes(r["transactionHash"]): r for r in w3.eth.get_block_receipts(number)}
        for tx in block["transactions"]:
            gas = int(receipts[bytes(tx["hash"])]["gasUsed"])
            data = bytes(tx["input"])
            fn = ("deploy" if tx["to"] is None
                  else selectors.get(data[:4], "transfer" if not data else "other"))
            by_fn[fn] = by_fn.get(fn, 0) + gas
            total += gas
            count += 1
    return total, dict(sorted(by_fn.items(), key=lambda kv: -kv[1])), count
