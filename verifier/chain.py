"""The verifier's view of the contracts: typed reads and the few transactions it sends.

A small adapter over :class:`veritrain.chain.ChainClient` and the contracts' typed facades
(:mod:`veritrain.chain.facades`: JobMarket, VerifierRegistry, DisputeResolver, the token as any
ERC-20). A method that changes state returns the prepared :class:`~veritrain.chain.facades.Tx`;
:meth:`VerifierChain.send` sends it through the one journaled send
(:mod:`veritrain.chain.journaled`). Imports web3: import it lazily from the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from veritrain.chain import ChainClient
from veritrain.chain.facades import Contracts, Tx
from veritrain.chain.journaled import JournaledSender
from veritrain.chain.states import BallotState, ClaimStatus, VerifierKeyStatus, VerifierStatus
from veritrain.chain.views import Dispute, Job, ResolverParams
from veritrain.deployments import Deployment
from veritrain.envelope import public_key_from_private
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
        contracts = Contracts.of(self.client, deployment)
        self.market, self.registry = contracts.market, contracts.registry
        self.resolver, self.token = contracts.resolver, contracts.token
        self.sender = JournaledSender(self.client)

    def send(self, journal: Journal, item: str, action: str, tx: Tx, *, detail: str | None = None,
             gas: int | None = None) -> Any:
        """Send ``tx`` journaled (its hash recorded before it leaves); the receipt."""
        return self.sender.send(journal, item, action, lambda on_signed: tx.transact(on_signed, gas=gas),
                                detail=detail)

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

    def one_head(self) -> Any:
        """A loop pass's shared read of the latest block (:meth:`ChainClient.one_head`)."""
        return self.client.one_head()

    def pollers(self, market_from: int, resolver_from: int, confirmations: int) -> tuple[Any, Any]:
        from veritrain.settings import LOCAL_CHAIN_IDS

        # a local chain has no reorgs and may go quiet (automine): a head standing still for
        # QUIET_SECONDS counts as confirmed, so the last reveal before a task is final is seen
        quiet = QUIET_SECONDS if self.chain_id in LOCAL_CHAIN_IDS else None
        m = self.market.events(market_from, names=["JobPosted", "ResultRevealed"],
                               confirmations=confirmations, quiet_after=quiet)
        names = ["DisputeOpened", "DisputeAnswered", "DrawRescheduled", "CommitteeDrawn",
                 "RefereeKeyDelivered", "VoteRevealed", "JackpotPaid", "SeedOpened", "DisputeSettled"]
        r = self.resolver.events(resolver_from, names=names, confirmations=confirmations, quiet_after=quiet)
        return m, r

    # ------------------------------------------------------------------ registry
    def is_active(self) -> bool:
        return bool(self.registry.isActive(self.address))

    def verifier_status(self) -> VerifierStatus:
        return self.registry.getVerifier(self.address).status

    def stake(self) -> int:
        return self.registry.stakeOf(self.address)

    def min_stake(self) -> int:
        return self.registry.minStake()

    def approve(self, amount: int) -> Any:
        """Let the market take ``amount`` (the registry and resolver collect through it); the receipt."""
        return self.token.approve(self.market.address, amount).send()

    def register(self, stake: int) -> Tx:
        """Approve ``stake`` now; the registration to send."""
        self.approve(stake)
        return self.registry.register(self.public_key(), stake)

    # ------------------------------------------------------------------ market
    def job(self, job_id: int) -> Job:
        return self.market.getJob(job_id)

    def spec_cid(self, job_id: int) -> str:
        return self.job(job_id).spec_cid

    def requester_of(self, job_id: int) -> str:
        return self.job(job_id).requester

    def claim_status(self, task_id: int, worker: str) -> ClaimStatus:
        return self.market.getClaim(task_id, worker).status

    def verifier_key_status(self, job_id: int) -> VerifierKeyStatus:
        return self.market.verifierKeyStatus(job_id, self.address)

    def request_verifier_key(self, job_id: int) -> Tx:
        return self.market.requestVerifierKey(job_id)

    def verifier_key_envelope(self, job_id: int) -> bytes | None:
        """The envelope of the ``VerifierKeyDelivered`` event for this verifier and job, if any."""
        logs = self.market.logs("VerifierKeyDelivered", self.deployment.deploy_block, jobId=job_id,
                                verifier=self.address)
        return bytes(logs[-1]["args"]["envelope"]) if logs else None

    def owed(self) -> int:
        return self.market.owed(self.address)

    def withdraw(self) -> Tx:
        return self.market.withdraw()

    # ------------------------------------------------------------------ resolver
    def params(self) -> ResolverParams:
        return self.resolver.params()

    def bond(self) -> int:
        return self.params().challenge_bond

    def challenge(self, ch: Any) -> Tx:
        """The transaction opening the dispute ``ch`` (a :class:`verifier.challenge.Challenge`):
        with the worker's proofs (``challengeWithProof``) or without (``challenge``: the worker
        must answer). The bond is approved now."""
        bond = self.bond()
        if bond:
            self.approve(bond)
        opener = {"challenge": self.resolver.challenge,
                  "challengeWithProof": self.resolver.challengeWithProof}
        return opener[ch.function](*ch.args())

    def challenge_opt_out(self, task_id: int, worker: str) -> Tx:
        """``challengeOptOut``: an opened forced error whose leaf j*+1 is the real checkpoint.
        The bond is approved now."""
        bond = self.bond()
        if bond:
            self.approve(bond)
        return self.resolver.challengeOptOut(task_id, worker)

    def slash_wrong_start(self, task_id: int, worker: str, args: tuple[Any, ...]) -> Any:
        """``JobMarket.slashWrongStart``: ``args`` from :meth:`veritrain.starts.BoundStarts.wrong_start`."""
        return self.market.slashWrongStart(task_id, worker, *args).send()

    def has_challenged(self, task_id: int, worker: str) -> bool:
        """Whether this verifier opened a dispute of ``worker``'s claim on ``task_id``."""
        logs = self.resolver.logs("DisputeOpened", self.deployment.deploy_block, taskId=task_id,
                                  accused=worker)
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
        return self.resolver.getDispute(dispute_id)

    def ballots(self, dispute_id: int) -> list[tuple[str, BallotState, bytes]]:
        return [(str(b.referee), b.state, b.ballot) for b in self.resolver.getBallots(dispute_id)]

    def reveal_window(self) -> int:
        return self.params().reveal_window

    def draw(self, dispute_id: int) -> Tx:
        return self.resolver.drawCommittee(dispute_id)

    def commit_vote(self, dispute_id: int, seat: int, commitment: bytes) -> Tx:
        """Commit in ``seat`` (this verifier's index in the drawn committee)."""
        return self.resolver.commitVote(dispute_id, seat, commitment)

    def reveal_vote(self, dispute_id: int, seat: int, vote: bytes, salt: bytes) -> Tx:
        return self.resolver.revealVote(dispute_id, seat, vote, salt)

    def settle(self, dispute_id: int) -> Tx:
        return self.resolver.settle(dispute_id)

