"""The verifier's view of the contracts: typed reads and the few transactions it sends.

A small adapter over :class:`veritrain.chain.ChainClient` and its bound contracts (JobMarket,
VerifierRegistry, DisputeResolver, the token). Imports web3: import it lazily from the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from veritrain.chain import ChainClient, bind
from veritrain.chain.receipts import tx_hash
from veritrain.chain.states import BallotState, ClaimStatus
from veritrain.chain.views import Claim, Dispute, Job, ResolverParams, Verifier
from veritrain.deployments import Deployment
from veritrain.envelope import public_key_from_private
from veritrain.errors import VeritrainError
from veritrain.journal import Journal

#: Seconds a local chain's head must stand still before its newest block counts as confirmed.
QUIET_SECONDS = 2.0


class VerifierChain:
    def __init__(self, rpc_url: str, account: Any, deployment: Deployment, *, nonce_dir: Path | None = None,
                 retry_seconds: float = 15.0) -> None:
        self.client = ChainClient(rpc_url, account, deployment, nonce_dir=nonce_dir,
                                  retry_seconds=retry_seconds)
        self.account = account
        self.address: str = account.address
        self.deployment = deployment
        self.market = bind(self.client, "JobMarket")
        self.registry = bind(self.client, "VerifierRegistry")
        self.resolver = bind(self.client, "DisputeResolver")
        token = self.market.token()
        self.token = bind(self.client, "DevToken", token)

    # ------------------------------------------------------------------ basics
    @property
    def chain_id(self) -> int:
        return self.client.chain_id

    def private_key(self) -> bytes:
        return bytes(self.account.key)

    def public_key(self) -> bytes:
        return bytes(public_key_from_private(self.private_key()))

    def block_number(self) -> int:
        return self.client.block_number()

    def timestamp(self) -> int:
        return self.client.timestamp()

    def pollers(self, market_from: int, resolver_from: int, confirmations: int) -> tuple[Any, Any]:
        from veritrain.settings import LOCAL_CHAIN_IDS

        # a local chain has no reorgs and may go quiet (automine): a head standing still for
        # QUIET_SECONDS counts as confirmed, so the last reveal before a task is final is seen
        quiet = QUIET_SECONDS if self.chain_id in LOCAL_CHAIN_IDS else None
        m = self.market.events(market_from, names=["JobPosted", "ResultRevealed"],
                               confirmations=confirmations, quiet_after=quiet)
        names = ["DisputeOpened", "DisputeAnswered", "DrawRescheduled", "CommitteeDrawn",
                 "RefereeKeyDelivered", "VoteRevealed", "DisputeSettled"]
        r = self.resolver.events(resolver_from, names=names, confirmations=confirmations, quiet_after=quiet)
        return m, r

    # ------------------------------------------------------------------ registry
    def is_active(self) -> bool:
        return bool(self.registry.isActive(self.address))

    def verifier_status(self) -> int:
        return Verifier.of(self.registry.getVerifier(self.address)).status

    def stake(self) -> int:
        return int(self.registry.stakeOf(self.address))

    def min_stake(self) -> int:
        return int(self.registry.minStake())

    def approve(self, amount: int) -> Any:
        return self.token.approve(self.market.address, amount)

    def register(self, stake: int) -> Any:
        self.approve(stake)
        return self.registry.register(self.public_key(), stake)

    # ------------------------------------------------------------------ market
    def job(self, job_id: int) -> Job:
        return Job.of(self.market.getJob(job_id))

    def spec_cid(self, job_id: int) -> str:
        return self.job(job_id).spec_cid

    def requester_of(self, job_id: int) -> str:
        return self.job(job_id).requester

    def claim_status(self, task_id: int, worker: str) -> ClaimStatus:
        return Claim.of(self.market.getClaim(task_id, worker)).status

    def verifier_key_status(self, job_id: int) -> int:
        """JobMarket.VerifierKeyStatus of this verifier for ``job_id``: 0 None, 1 Requested, 2 Delivered."""
        return int(self.market.verifierKeyStatus(job_id, self.address))

    def request_verifier_key(self, job_id: int) -> Any:
        return self.market.requestVerifierKey(job_id)

    def verifier_key_envelope(self, job_id: int) -> bytes | None:
        """The envelope of the ``VerifierKeyDelivered`` event for this verifier and job, if any."""
        event = self.market.web3_contract.events.VerifierKeyDelivered
        logs = self.client.retry(lambda: event.get_logs(
            from_block=self.deployment.deploy_block,
            argument_filters={"jobId": job_id, "verifier": self.address}), "reading VerifierKeyDelivered")
        return bytes(logs[-1]["args"]["envelope"]) if logs else None

    def owed(self) -> int:
        return int(self.market.owed(self.address))

    def withdraw(self) -> Any:
        return self.market.withdraw()

    # ------------------------------------------------------------------ resolver
    def params(self) -> ResolverParams:
        return ResolverParams.of(self.resolver.params())

    def bond(self) -> int:
        return self.params().challenge_bond

    def challenge(self, ch: Any) -> Any:
        """Open the dispute ``ch`` (a :class:`verifier.challenge.Challenge`): with the worker's
        proofs (``challengeWithProof``) or without (``challenge``: the worker must answer)."""
        bond = self.bond()
        if bond:
            self.approve(bond)
        return getattr(self.resolver, ch.function)(*ch.args())

    def slash_wrong_start(self, task_id: int, worker: str, args: tuple[Any, ...]) -> Any:
        """``JobMarket.slashWrongStart``: ``args`` from :meth:`veritrain.starts.BoundStarts.wrong_start`."""
        return self.market.slashWrongStart(task_id, worker, *args)

    def has_challenged(self, task_id: int, worker: str) -> bool:
        """Whether this verifier opened a dispute of ``worker``'s claim on ``task_id``."""
        event = self.resolver.web3_contract.events.DisputeOpened
        logs = self.client.retry(lambda: event.get_logs(
            from_block=self.deployment.deploy_block,
            argument_filters={"taskId": task_id, "accused": worker}), "reading DisputeOpened")
        return any(str(lg["args"]["accuser"]).lower() == self.address.lower() for lg in logs)

    def dispute_id_from(self, receipt: Any) -> int:
        """The id in the receipt's ``DisputeOpened``. Only the resolver's own logs are decoded:
        the receipt also holds the token's (bond transfer), which the resolver ABI cannot read."""
        from web3.logs import DISCARD

        mine = self.resolver.address.lower()
        logs = [lg for lg in receipt["logs"] if str(lg["address"]).lower() == mine]
        event = self.resolver.web3_contract.events.DisputeOpened()
        events = event.process_receipt({**dict(receipt), "logs": logs}, errors=DISCARD)
        return int(events[0]["args"]["disputeId"])

    def dispute(self, dispute_id: int) -> Dispute:
        return Dispute.of(self.resolver.getDispute(dispute_id), dispute_id=dispute_id)

    def ballots(self, dispute_id: int) -> list[tuple[str, BallotState, bytes]]:
        refs, states, ballots = self.resolver.getBallots(dispute_id)
        return [(str(r), BallotState(int(s)), bytes(b))
                for r, s, b in zip(refs, states, ballots, strict=True)]

    def reveal_window(self) -> int:
        return self.params().reveal_window

    def draw(self, dispute_id: int, gas: int | None = None) -> Any:
        return self.resolver.drawCommittee(dispute_id, gas=gas)

    def commit_vote(self, dispute_id: int, seat: int, commitment: bytes) -> Any:
        """Commit in ``seat`` (this verifier's index in the drawn committee)."""
        return self.resolver.commitVote(dispute_id, seat, commitment)

    def reveal_vote(self, dispute_id: int, seat: int, vote: bytes, salt: bytes) -> Any:
        return self.resolver.revealVote(dispute_id, seat, vote, salt)

    def settle(self, dispute_id: int) -> Any:
        return self.resolver.settle(dispute_id)


def journaled_send(journal: Journal, item: str, action: str, send: Callable[[], Any],
                   detail: str | None = None) -> Any:
    """Send one transaction with its intent journaled first and its outcome after; returns
    the receipt. A failure is recorded and re-raised."""
    tx = journal.tx_intent(item, action, detail=detail)
    try:
        receipt = send()
    except VeritrainError as exc:
        journal.tx_update(tx, "failed", detail=str(exc))
        raise
    journal.tx_update(tx, "mined", tx_hash=tx_hash(receipt))
    return receipt
