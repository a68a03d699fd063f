"""The explorer's picture of the chain: every protocol event since the deployment, read in pages.

:class:`ChainIndex` keeps one :class:`~veritrain.chain.events.EventPoller` per contract (the
market, the dispute resolver, the verifier registry), so logs are read in pages no wider than
the network profile's ``log_range`` (halved while a provider refuses a page) and a reorg is
noticed. On a reorg the index forgets everything and reads again from the deployment block:
what it shows is always the current chain. Refreshes are lazy (at most every ``min_interval``
seconds, on a request), so an idle explorer sends no RPC traffic.

Besides the events it caches what never changes once mined: block timestamps, receipts'
gas, and the public documents on IPFS (job documents, manifests).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from veritrain.chain.events import Event, EventPoller
from veritrain.chain.facades import Contracts
from veritrain.deployments import Deployment
from veritrain.errors import VeritrainError

#: The contract function each event stands for (the gas chart groups transactions by it).
ACTIONS: dict[str, str] = {
    "JobPosted": "postJob", "TaskClaimed": "claim", "KeyDelivered": "deliverKey",
    "ResultCommitted": "commit", "ResultRevealed": "reveal", "ClaimFinalized": "finalize",
    "ClaimAbandoned": "abandon", "Withdrawn": "withdraw", "JobClosed": "closeJob",
    "JobCancelled": "cancelJob", "VerifierKeyRequested": "requestVerifierKey",
    "VerifierKeyDelivered": "deliverVerifierKey", "DisputeOpened": "challenge",
    "DisputeAnswered": "answer", "CommitteeDrawn": "drawCommittee",
    "RefereeKeyDelivered": "deliverRefereeKey", "VoteCommitted": "commitVote",
    "VoteRevealed": "revealVote", "DisputeSettled": "settle", "VerifierRegistered": "register",
    "VerifierDeregistered": "deregister", "StakeWithdrawn": "withdrawStake", "SeedOpened": "openSeed",
}


class NotFound(VeritrainError, LookupError):
    """A job, task, dispute, account or transaction the chain does not have."""


@dataclass(frozen=True)
class Loaded:
    """A public document from IPFS: the parsed value, or why it could not be had."""

    value: Any = None
    error: str | None = None


class ChainIndex:
    """Events of the deployment's contracts, refreshed on demand; see the module doc."""

    def __init__(self, client: Any, deployment: Deployment, storage: Any = None, *,
                 min_interval: float = 0.5, confirmations: int = 0) -> None:
        self.client = client
        self.deployment = deployment
        self.storage = storage
        self.min_interval = min_interval
        self.confirmations = confirmations
        self.contracts = Contracts.of(client, deployment)
        self.events: list[Event] = []
        self.head = -1
        self.error: str | None = None
        self.reorgs = 0
        self._lock = threading.RLock()
        self._last = 0.0
        self._times: dict[int, int] = {}
        self._gas: dict[str, int] = {}
        self._docs: dict[str, Loaded] = {}
        self._token: tuple[int, str] | None = None
        self._pollers: list[EventPoller] = []
        self._reset()

    # ------------------------------------------------------------------ reading the chain
    def _reset(self) -> None:
        c = self.contracts
        self._pollers = [EventPoller(self.client, f.web3_contract, self.deployment.deploy_block,
                                     confirmations=self.confirmations)
                         for f in (c.market, c.resolver, c.registry)]
        self.events = []

    def refresh(self, *, force: bool = False) -> None:
        """Read the events of the blocks mined since the last refresh (throttled). A failure
        is kept in :attr:`error` (the pages show it) and raised."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last < self.min_interval and self.head >= 0:
                if self.error:
                    raise VeritrainError(self.error)
                return
            self._last = now
            try:
                new: list[Event] = []
                for p in self._pollers:
                    new += p.poll()
                if any(p.retracted for p in self._pollers):  # a reorg: read everything again
                    self.reorgs += 1
                    self._reset()
                    new = []
                    for p in self._pollers:
                        new += p.poll()
                self.events = sorted(self.events + new, key=lambda e: (e.block_number, e.log_index))
                self.head = max(p.cursor for p in self._pollers) - 1
                self.error = None
            except VeritrainError as exc:
                self.error = str(exc)
                raise

    @property
    def version(self) -> str:
        """Changes whenever what the pages show may have changed (polled by the pages)."""
        return f"{self.head}:{len(self.events)}:{self.reorgs}"

    # ------------------------------------------------------------------ queries
    def of(self, *names: str, **args: Any) -> list[Event]:
        """Events named ``names`` whose arguments equal ``args`` (addresses case-insensitive)."""
        out = []
        for e in self.events:
            if names and e.name not in names:
                continue
            if all(_same(e.args.get(k), v) for k, v in args.items()):
                out.append(e)
        return out

    def tx_events(self, tx_hash: str) -> list[Event]:
        h = tx_hash.lower()
        return [e for e in self.events if e.tx_hash.lower() == h]

    def token_format(self) -> tuple[int, str]:
        """The market token's (decimals, symbol), read once; (0, "") for a token without the
        optional metadata getters (amounts then show in base units)."""
        if self._token is None:
            from veritrain.errors import ContractRevert

            token = self.contracts.token
            try:
                self._token = (token.decimals(), token.symbol())
            except ContractRevert:
                self._token = (0, "")
        return self._token

    def block_time(self, number: int) -> int:
        """The block's timestamp (cached: a mined block's time never changes)."""
        if number not in self._times:
            block = self.client.retry(lambda: self.client.w3.eth.get_block(number), "reading a block")
            self._times[number] = int(block["timestamp"])
        return self._times[number]

    def receipt(self, tx_hash: str) -> Any:
        from web3.exceptions import TransactionNotFound

        h: Any = tx_hash
        try:
            return self.client.retry(lambda: self.client.w3.eth.get_transaction_receipt(h),
                                     "reading a receipt")
        except (TransactionNotFound, ValueError):
            raise NotFound(f"no transaction {tx_hash} on this chain") from None

    def gas_used(self, tx_hash: str) -> int:
        if tx_hash not in self._gas:
            self._gas[tx_hash] = int(self.receipt(tx_hash)["gasUsed"])
        return self._gas[tx_hash]

    def action_of(self, tx_hash: str) -> str | None:
        """The protocol action a transaction performed (its first event that names one)."""
        for e in self.tx_events(tx_hash):
            if e.name in ACTIONS:
                return ACTIONS[e.name]
        return None

    # ------------------------------------------------------------------ public documents
    def document(self, cid: str) -> Loaded:
        """The job document at ``cid`` (IPFS), parsed and checked, or why not."""
        from veritrain.jobdoc import JobDocument

        return self._load(cid, lambda b: JobDocument.from_bytes(b, cid))

    def manifest(self, cid: str) -> Loaded:
        """The manifest at ``cid`` (IPFS), validated (its root is the root of its hashes), or why not."""
        from veritrain.manifest import load

        return self._load(cid, lambda b: load(b, cid))

    def _load(self, cid: str, parse: Any) -> Loaded:
        if cid in self._docs:
            return self._docs[cid]
        if self.storage is None:
            return Loaded(error="no IPFS node configured (VERITRAIN_IPFS_API)")
        from veritrain.storage.base import StorageUnreachableError

        try:
            loaded = Loaded(value=parse(self.storage.get_bytes(cid)))
        except StorageUnreachableError as exc:
            return Loaded(error=str(exc))  # the node may come back: do not remember the failure
        except VeritrainError as exc:
            loaded = Loaded(error=str(exc))
        self._docs[cid] = loaded
        return loaded


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)
