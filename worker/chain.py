"""The worker's chain access: :class:`veritrain.chain.ChainClient` plus the worker's journal.

Everything generic (signing, nonces shared by threads and processes, retries of an
unreachable node, decoded custom-error reverts, typed struct views) is the core's. What is
the worker's own: every transaction is recorded in the journal (intent -> sent with its hash
-> mined/failed), the hash *before* the transaction leaves (``on_signed``), so a restarted
worker finds a pending hash (:meth:`WorkerChain.pending_tx`) and waits for it instead of
sending again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from veritrain.chain import ChainClient
from veritrain.chain.states import ClaimStatus
from veritrain.chain.views import Claim, Dispute, Job, ResolverParams, Task
from veritrain.deployments import Deployment
from veritrain.errors import ChainError, ContractRevert
from veritrain.journal import Journal


class WorkerChain:
    def __init__(self, rpc_url: str, deployment: Deployment, account: Any, nonce_dir: Path,
                 *, retry_seconds: float = 30.0) -> None:
        self.client = ChainClient(rpc_url, account, deployment, nonce_dir=nonce_dir,
                                  retry_seconds=retry_seconds)
        self.w3 = self.client.w3
        self.rpc_url = rpc_url
        self.account = account
        self.address: str = account.address
        self.deployment = deployment
        self.chain_id = self.client.chain_id  # checks the node serves the deployment's chain
        self.market = self.client.contract("JobMarket")
        self.resolver = self.client.contract("DisputeResolver")
        self.registry = self.client.contract("VerifierRegistry")
        self._by_address = {c.address: c for c in (self.market, self.resolver, self.registry)}
        self.token = self.client.contract("DevToken", self.call(self.market.functions.token()))
        self._by_address[self.token.address] = self.token

    # ---------------------------------------------------------------- reads
    def call(self, fn: Any, what: str = "") -> Any:
        """Call a bound web3 function (``market.functions.jobCount()``) through the client."""
        return self.client.call(self._by_address[fn.address], fn.fn_name, *fn.args)

    def now(self) -> int:
        return self.client.timestamp()

    def block_number(self) -> int:
        return self.client.block_number()

    def claim_of(self, task_id: int, worker: str | None = None) -> Claim:
        return Claim.of(self.call(self.market.functions.getClaim(task_id, worker or self.address)))

    def status_of(self, task_id: int, worker: str | None = None) -> ClaimStatus:
        """The claim's status, with ENDED (abandoned, timed out or slashed) read as NONE: for
        the worker's phases an ended claim is no claim, and the task may be claimed again."""
        status = self.claim_of(task_id, worker).status
        return ClaimStatus.NONE if status == ClaimStatus.ENDED else status

    def job(self, job_id: int) -> Job:
        return Job.of(self.call(self.market.functions.getJob(job_id)))

    def task(self, task_id: int) -> Task:
        return Task.of(self.call(self.market.functions.getTask(task_id)))

    def dispute(self, dispute_id: int) -> Dispute:
        return Dispute.of(self.call(self.resolver.functions.getDispute(dispute_id)), dispute_id=dispute_id)

    def resolver_params(self) -> ResolverParams:
        return ResolverParams.of(self.call(self.resolver.functions.params()))

    def owed(self) -> int:
        return int(self.call(self.market.functions.owed(self.address)))

    def balance(self) -> int:
        return int(self.call(self.token.functions.balanceOf(self.address)))

    def allowance(self) -> int:
        return int(self.call(self.token.functions.allowance(self.address, self.market.address)))

    def logs(self, event: Any, from_block: int, **filters: Any) -> list[Any]:
        """Decoded ``event`` logs since ``from_block`` whose indexed arguments match ``filters``."""
        return self.client.logs(event, from_block, **filters)  # paged within the provider's range limit

    # ---------------------------------------------------------------- writes
    def send(self, fn: Any, journal: Journal, item: str, action: str) -> Any:
        """Send one transaction, journaled; wait for its receipt; return it.

        A revert at estimation raises the decoded ContractRevert (nothing is sent, the
        nonce is not used); the intent is recorded as failed with the error's name.
        """
        tx_id = journal.tx_intent(item, action)
        sent: list[str] = []

        def record(tx_hash: str) -> None:
            sent.append(tx_hash)
            journal.tx_update(tx_id, "sent", tx_hash)

        try:
            self.client.transact(self._by_address[fn.address], fn.fn_name, *fn.args, wait=False,
                                 on_signed=record)
        except ContractRevert as exc:
            journal.tx_update(tx_id, "failed", detail=exc.name)
            raise
        except Exception as exc:
            journal.tx_update(tx_id, "failed", detail=str(exc)[:200])
            raise
        return self.wait(sent[-1], journal, tx_id, action)

    def wait(self, tx_hash: str, journal: Journal | None = None, tx_id: int | None = None,
             action: str = "transaction") -> Any:
        """The receipt; a reverted transaction raises its decoded error (e.g. a lost race)."""
        try:
            receipt = self.client.wait(tx_hash, what=action)
        except ChainError as exc:  # reverted (decoded, or not), or not mined in time
            if isinstance(exc, ContractRevert):
                exc.tx = tx_hash
            if journal is not None and tx_id is not None and (isinstance(exc, ContractRevert)
                                                              or " reverted " in str(exc)):
                journal.tx_update(tx_id, "failed", detail=getattr(exc, "name", str(exc)[:200]))
            raise
        if journal is not None and tx_id is not None:
            journal.tx_update(tx_id, "mined")
        return receipt

    def pending_tx(self, journal: Journal, item: str, action: str) -> str | None:
        """Hash of a ``sent`` transaction for (item, action) the node still knows, not yet mined."""
        for rec in reversed(journal.txs(item, action)):
            if rec.status != "sent" or not rec.tx_hash:
                continue
            if self.client.find_transaction(rec.tx_hash) is None:
                journal.tx_update(rec.id, "dropped")
                continue
            return rec.tx_hash
        return None
