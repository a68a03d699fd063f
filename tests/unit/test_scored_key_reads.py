"""Scored key service and key wait read only the blocks since their last look (issue 25: each
`job serve` pass read every KeyRequested event since the deployment, O(history) per pass)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

import veritrain.scored.chain as chain_mod
from veritrain.envelope import public_key_from_private, wrap
from veritrain.scored.chain import REREAD, ScoredChain

ADDRESS = "0x" + "11" * 20
DEPLOY_BLOCK = 100


class _Client:
    """What ScoredChain asks of its ChainClient, over a scripted chain of events."""

    def __init__(self) -> None:
        self.head = 5_000
        self.events: dict[str, list[tuple[int, dict[str, Any]]]] = {"KeyRequested": [], "KeyDelivered": []}
        self.requested: set[str] = set()
        self.reads: list[tuple[str, int, int]] = []
        self.delivered: list[str] = []
        self.chain_id = 31337

    def block_number(self) -> int:
        return self.head

    def logs(self, event: Any, start: int, end: int | None, **filters: Any) -> list[Any]:
        end = self.head if end is None else end
        self.reads.append((event.event_name, start, end))
        return [{"args": args} for block, args in self.events[event.event_name]
                if start <= block <= end and all(args.get(k) == v for k, v in filters.items())]

    def call(self, contract: Any, fn: str, *args: Any) -> Any:
        assert fn == "keyRequested"
        return args[1] in self.requested

    def transact(self, contract: Any, fn: str, job: int, account: str, envelope: bytes, wait: bool) -> str:
        self.requested.discard(account)
        self.delivered.append(account)
        return "0x" + "ab" * 32

    def wait(self, tx_hash: str, what: str) -> dict[str, int]:
        return {"gasUsed": 50_000}


def _chain(client: _Client, account: Any = None) -> ScoredChain:
    return ScoredChain(Web3(), ADDRESS, account, client=client, from_block=DEPLOY_BLOCK)


def _request(client: _Client, block: int, job: int) -> str:
    acct = Account.create()
    client.events["KeyRequested"].append(
        (block, {"jobId": job, "account": acct.address, "pubKey": public_key_from_private(bytes(acct.key))}))
    client.requested.add(acct.address)
    return acct.address


def test_each_pass_reads_the_new_blocks_only_and_answers_each_request_once() -> None:
    client = _Client()
    chain, key = _chain(client), bytes(32)
    first = _request(client, 1_000, job=3)
    assert chain.deliver_keys(3, key) == [first]
    assert client.reads == [("KeyRequested", DEPLOY_BLOCK, 5_000)]  # the first pass catches up once
    client.head = 5_100
    second = _request(client, 5_050, job=3)
    _request(client, 5_060, job=4)  # another job's request: not this pass's business
    assert chain.deliver_keys(3, key) == [second]
    assert client.reads[-1] == ("KeyRequested", 5_000 - REREAD + 1, 5_100)  # not from the deployment
    client.head = 5_101
    assert chain.deliver_keys(3, key) == []
    assert client.delivered == [first, second]


def test_the_key_wait_reads_forward_from_where_it_looked_last(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _Client()
    worker = Account.create()
    chain = _chain(client, worker)
    pub = public_key_from_private(bytes(worker.key))
    envelope = wrap(b"k" * 32, pub, chain.key_context(7, worker.address))
    delivered = {"jobId": 7, "account": worker.address, "envelope": envelope}
    client.events["KeyDelivered"].append((5_003, delivered))
    heads = iter([5_001, 5_002, 5_003])

    def advance(_: float) -> None:
        client.head = next(heads)

    monkeypatch.setattr(chain_mod.time, "sleep", advance)
    client.head = 5_000
    assert chain.wait_key(7, poll=0) == b"k" * 32
    starts = [start for name, start, _ in client.reads]
    assert starts[0] == DEPLOY_BLOCK and all(s > 5_000 - 2 * REREAD for s in starts[1:])
