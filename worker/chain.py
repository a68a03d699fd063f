"""A small chain adapter for the worker: contracts, signed sends, reverts, retries, events.

Until the shared typed client (``veritrain.chain``) settles, this is the worker's only
web3 code. Every transaction is recorded in the journal (intent -> sent with its hash ->
mined/failed) *before* it leaves, so a restarted worker looks a pending hash up instead of
sending again. Custom-error reverts surface as :mod:`veritrain.chain.errors` classes
(``JobMarketTaskFull`` ...); an unreachable RPC node is retried for ``retry_seconds`` and then
ends in one :class:`~veritrain.errors.ChainError` line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from veritrain.artifacts import artifact
from veritrain.chain.errors import decode_revert
from veritrain.chain.nonce import NonceManager
from veritrain.chain.states import ClaimStatus
from veritrain.deployments import Deployment
from veritrain.errors import ChainError, ContractRevert
from veritrain.journal import Journal

T = TypeVar("T")



def _connection_errors() -> tuple[type[BaseException], ...]:
    import requests

    return (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError)


class WorkerChain:
    def __init__(self, rpc_url: str, deployment: Deployment, account: Any, nonce_dir: Path,
                 *, retry_seconds: float = 30.0) -> None:
        from web3 import HTTPProvider, Web3

        self.rpc_url = rpc_url
        self.retry_seconds = retry_seconds
        self.w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        self.account = account
        self.address: str = account.address
        self.deployment = deployment
        self.market = self._contract("JobMarket")
        self.resolver = self._contract("DisputeResolver")
        self.chain_id = self.retry(lambda: self.w3.eth.chain_id, "reading the chain id")
        if self.chain_id != deployment.chain_id:
            raise ChainError(f"the RPC node at {rpc_url} serves chain {self.chain_id}, but the deployment "
                             f"file is for chain {deployment.chain_id}; check VERITRAIN_RPC_URL / DEPLOYMENT")
        token = self.retry(lambda: self.market.functions.token().call(), "reading the market's token")
        self.token = self.w3.eth.contract(address=token, abi=artifact("DevToken")["abi"])
        self.nonces = NonceManager(self.address, self.chain_id, nonce_dir,
                                   lambda: self.w3.eth.get_transaction_count(self.address, "pending"))

    def _contract(self, name: str) -> Any:
        return self.w3.eth.contract(address=self.deployment.address(name), abi=artifact(name)["abi"],
                                    decode_tuples=True)

    # ---------------------------------------------------------------- reads
    def retry(self, fn: Callable[[], T], what: str) -> T:
        """Run a read, retrying while the node is unreachable; reverts are decoded."""
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.2
        while True:
            try:
                return fn()
            except _connection_errors() as exc:
                if time.monotonic() + delay > deadline:
                    raise ChainError(f"{what}: the RPC node at {self.rpc_url} did not answer for "
                                     f"{self.retry_seconds:.0f} s ({type(exc).__name__}); is it running "
                                     "and VERITRAIN_RPC_URL right?") from None
                time.sleep(delay)
                delay = min(delay * 2, 3.0)
            except Exception as exc:
                decoded = _decode(exc)
                if decoded is not None:
                    raise decoded from None
                raise

    def call(self, fn: Any, what: str = "") -> Any:
        return self.retry(fn.call, what or f"calling {fn.fn_name}")

    def now(self) -> int:
        """Chain time: the latest block's timestamp (what the next call is checked against)."""
        block = self.retry(lambda: self.w3.eth.get_block("latest"), "reading the latest block")
        return int(block["timestamp"])

    def block_number(self) -> int:
        return int(self.retry(lambda: self.w3.eth.block_number, "reading the block number"))

    def claim_of(self, task_id: int, worker: str | None = None) -> Any:
        return self.call(self.market.functions.getClaim(task_id, worker or self.address))

    def status_of(self, task_id: int, worker: str | None = None) -> ClaimStatus:
        return ClaimStatus(int(self.claim_of(task_id, worker).status))

    def job(self, job_id: int) -> Any:
        return self.call(self.market.functions.getJob(job_id))

    def task(self, task_id: int) -> Any:
        return self.call(self.market.functions.getTask(task_id))

    def owed(self) -> int:
        return int(self.call(self.market.functions.owed(self.address)))

    def balance(self) -> int:
        return int(self.call(self.token.functions.balanceOf(self.address)))

    def allowance(self) -> int:
        return int(self.call(self.token.functions.allowance(self.address, self.market.address)))

    def logs(self, event: Any, from_block: int, **filters: Any) -> list[Any]:
        return list(self.retry(lambda: event.get_logs(from_block=from_block, argument_filters=filters),
                               f"reading {event.event_name} events"))

    # ---------------------------------------------------------------- writes
    def send(self, fn: Any, journal: Journal, item: str, action: str) -> Any:
        """Sign, record and send one transaction; wait for its receipt; return it.

        A revert at estimation raises the decoded ContractRevert (nothing is sent, the
        nonce is not used); the intent is recorded as failed with the error's name.
        """
        tx_id = journal.tx_intent(item, action)
        try:
            with self.nonces.reserve() as nonce:
                tx = self.retry(lambda: fn.build_transaction(
                    {"from": self.address, "nonce": nonce, "chainId": self.chain_id}),
                    f"preparing {action}")
                signed = self.account.sign_transaction(tx)
                tx_hash = "0x" + bytes(signed.hash).hex()
                journal.tx_update(tx_id, "sent", tx_hash)
                self._send_raw(signed.raw_transaction, action)
        except ContractRevert as exc:
            journal.tx_update(tx_id, "failed", detail=exc.name)
            raise
        except Exception as exc:
            if "nonce" in str(exc).lower():
                self.nonces.resync()
            journal.tx_update(tx_id, "failed", detail=str(exc)[:200])
            raise
        return self.wait(tx_hash, journal, tx_id, action)

    def _send_raw(self, raw: bytes, action: str) -> None:
        try:
            self.retry(lambda: self.w3.eth.send_raw_transaction(raw), f"sending {action}")
        except ValueError as exc:  # "already known": our own earlier attempt reached the node
            if "already known" not in str(exc).lower():
                raise

    def wait(self, tx_hash: str, journal: Journal | None = None, tx_id: int | None = None,
             action: str = "transaction", timeout: float = 120.0) -> Any:
        receipt = self.retry(lambda: self.w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=timeout, poll_latency=0.02), f"waiting for {action}")
        ok = receipt["status"] == 1
        if journal is not None and tx_id is not None:
            journal.tx_update(tx_id, "mined" if ok else "failed")
        if not ok:
            raise self._revert_reason(tx_hash, receipt) or ChainError(
                f"{action} transaction {tx_hash} reverted on-chain")
        return receipt

    def _revert_reason(self, tx_hash: str, receipt: Any) -> ContractRevert | None:
        """Replay a reverted transaction as a call to decode its custom error (a lost race)."""
        try:
            tx = self.w3.eth.get_transaction(tx_hash)
            self.w3.eth.call({"from": tx["from"], "to": tx["to"], "data": tx["input"]},
                             block_identifier=receipt["blockNumber"])
        except Exception as exc:
            found = _decode(exc)
            if found is not None:
                found.tx = tx_hash
            return found
        return None

    def pending_tx(self, journal: Journal, item: str, action: str) -> str | None:
        """Hash of a ``sent`` transaction for (item, action) the node still knows, not yet mined."""
        from web3.exceptions import TransactionNotFound

        for rec in reversed(journal.txs(item, action)):
            if rec.status != "sent" or not rec.tx_hash:
                continue
            try:
                self.retry(lambda h=rec.tx_hash: self.w3.eth.get_transaction(h), "looking up a tx")
            except TransactionNotFound:
                journal.tx_update(rec.id, "dropped")
                continue
            return rec.tx_hash
        return None


def _decode(exc: BaseException) -> ContractRevert | None:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str | bytes):
        return decode_revert(data)
    return None
