"""The worker's chain access: :class:`veritrain.chain.ChainClient` plus the worker's journal.

Everything generic (signing, nonces shared by threads and processes, retries of an
unreachable node, decoded custom-error reverts, typed struct views) is the core's. What is
the worker's own: every transaction goes through the one journaled send
(:mod:`veritrain.chain.journaled`: intent -> sent with its hash -> mined/failed), the hash
*before* the transaction leaves, so a restarted
worker finds a pending hash (:meth:`WorkerChain.pending_tx`) and waits for it instead of
sending again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from veritrain.chain import ChainClient
from veritrain.chain.facades import Contracts, Tx
from veritrain.chain.journaled import JournaledSender
from veritrain.chain.states import ClaimStatus
from veritrain.chain.views import Claim, Dispute, Job, ResolverParams, Task
from veritrain.deployments import Deployment
from veritrain.errors import ChainError
from veritrain.journal import Journal


class WorkerChain:
    """The worker's account on one deployment: the contracts' typed facades
    (:mod:`veritrain.chain.facades`), the worker's reads, and the journaled send."""

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
        self.sender = JournaledSender(self.client)
        contracts = Contracts.of(self.client, deployment)
        self.market, self.resolver = contracts.market, contracts.resolver
        self.registry, self.token = contracts.registry, contracts.token

    # ---------------------------------------------------------------- reads
    def now(self) -> int:
        return self.client.timestamp()

    def block_number(self) -> int:
        return self.client.block_number()

    def claim_of(self, task_id: int, worker: str | None = None) -> Claim:
        return self.market.getClaim(task_id, worker or self.address)

    def status_of(self, task_id: int, worker: str | None = None) -> ClaimStatus:
        """The claim's status, with ENDED (abandoned, timed out or slashed) read as NONE: for
        the worker's phases an ended claim is no claim, and the task may be claimed again."""
        status = self.claim_of(task_id, worker).status
        return ClaimStatus.NONE if status == ClaimStatus.ENDED else status

    def job(self, job_id: int) -> Job:
        return self.market.getJob(job_id)

    def task(self, task_id: int) -> Task:
        return self.market.getTask(task_id)

    def dispute(self, dispute_id: int) -> Dispute:
        return self.resolver.getDispute(dispute_id)

    def resolver_params(self) -> ResolverParams:
        return self.resolver.params()

    def owed(self) -> int:
        return self.market.owed(self.address)

    def balance(self) -> int:
        return self.token.balanceOf(self.address)

    def allowance(self) -> int:
        return self.token.allowance(self.address, self.market.address)

    def one_head(self) -> Any:
        """A loop pass's shared read of the latest block (:meth:`ChainClient.one_head`)."""
        return self.client.one_head()

    def simulate_claim(self, task_id: int, pubkey: bytes, seed_hash: bytes) -> None:
        """Run ``claim`` on the latest state without sending it; a revert raises by name."""
        self.client.call(self.market.web3_contract, "claim", task_id, pubkey, seed_hash)

    def claim_block_hash(self, task_id: int, from_block: int) -> bytes:
        """The hash of the block holding this worker's (latest) claim of the task."""
        logs = self.market.logs("TaskClaimed", from_block, taskId=task_id, worker=self.address)
        if not logs:
            raise ChainError(f"task {task_id}: no TaskClaimed event of {self.address} "
                             f"since block {from_block}")
        return bytes(logs[-1].blockHash)

    def pending_claims(self) -> dict[int, int]:
        """Other workers' ``claim`` transactions waiting in the node's mempool: task id -> how many.

        Read from the pending block (one request). A worker that looks here before it sends its
        own claim does not send one that a rival's, mined first in the same block, would revert.
        A node without a mempool view (many hosted endpoints) answers with its latest block,
        whose claims are already counted in the task's state, or refuses: then nothing is
        pending, and a lost race still ends cleanly as a mined revert does (worker/loop.py)."""
        from web3.exceptions import Web3Exception

        try:
            block: Any = self.w3.eth.get_block("pending", full_transactions=True)
            if block.get("number") is None or int(block["number"]) <= self.client.block_number():
                return {}
        except (Web3Exception, ValueError, OSError):
            return {}
        market, me = self.market.address.lower(), self.address.lower()
        out: dict[int, int] = {}
        for tx in block["transactions"]:
            if str(tx.get("to") or "").lower() != market or str(tx["from"]).lower() == me:
                continue
            try:
                fn, args = self.market.web3_contract.decode_function_input(tx["input"])
            except ValueError:
                continue
            if fn.fn_name == "claim":
                out[int(args["taskId"])] = out.get(int(args["taskId"]), 0) + 1
        return out

    # ---------------------------------------------------------------- writes
    def send(self, fn: Tx, journal: Journal, item: str, action: str) -> Any:
        """Send one transaction, journaled (:class:`veritrain.chain.journaled.JournaledSender`);
        wait for its receipt; return it. A revert at estimation raises the decoded ContractRevert
        (nothing is sent, the nonce is not used); the intent is recorded as failed."""
        return self.sender.send(journal, item, action, fn.transact)

    def send_once(self, fn: Tx, journal: Journal, item: str, action: str) -> Any:
        """Wait for a still-pending earlier attempt of (item, action), or send ``fn`` now."""
        return self.sender.send_once(journal, item, action, fn.transact)

    def wait(self, tx_hash: str, journal: Journal | None = None, tx_id: int | None = None,
             action: str = "transaction") -> Any:
        """The receipt; a reverted transaction raises its decoded error (e.g. a lost race)."""
        return self.sender.wait(tx_hash, journal, tx_id, action)

    def pending_tx(self, journal: Journal, item: str, action: str) -> str | None:
        """Hash of a ``sent`` transaction for (item, action) the node still knows, not yet mined."""
        return self.sender.pending(journal, item, action)
