"""One typed facade per contract: the only way a role, script or test reaches the contracts.

Each method is named after the contract function it calls, takes typed arguments and returns
a typed value: struct getters return the views of :mod:`veritrain.chain.views`, enums the
members of :mod:`veritrain.chain.states`. A state-changing function returns a :class:`Tx`
(the prepared call): ``.send()`` signs, broadcasts and waits for the receipt;
``.transact(on_signed)`` broadcasts without waiting, for the one journaled send
(:mod:`veritrain.chain.journaled`). A new contract function is one typed method here.

The token is any ERC-20, reached through the standard interface (:data:`IERC20_ABI`);
:class:`DevToken` (the dev token's ``mint``) is used only where the dev token is minted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from veritrain.artifacts import ARTIFACTS_DIR
from veritrain.chain.client import ChainClient, OnSigned
from veritrain.chain.events import EventPoller
from veritrain.chain.states import VerifierKeyStatus
from veritrain.chain.views import Ballot, Claim, Dispute, Job, ResolverParams, Task, Verifier

#: The standard ERC-20 interface (EIP-20, with the optional metadata getters).
IERC20_ABI: list[dict[str, Any]] = [
    *({"type": "function", "name": n, "stateMutability": "view", "inputs": [],
       "outputs": [{"name": "", "type": t}]}
      for n, t in (("name", "string"), ("symbol", "string"), ("decimals", "uint8"),
                   ("totalSupply", "uint256"))),
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "account", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "allowance", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    *({"type": "function", "name": n, "stateMutability": "nonpayable",
       "inputs": [{"name": a, "type": "address"}, {"name": "value", "type": "uint256"}],
       "outputs": [{"name": "", "type": "bool"}]} for n, a in (("approve", "spender"), ("transfer", "to"))),
    {"type": "function", "name": "transferFrom", "stateMutability": "nonpayable",
     "inputs": [{"name": "from", "type": "address"}, {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"}], "outputs": [{"name": "", "type": "bool"}]},
    *({"type": "event", "name": n, "anonymous": False,
       "inputs": [{"name": a, "type": "address", "indexed": True},
                  {"name": b, "type": "address", "indexed": True},
                  {"name": "value", "type": "uint256", "indexed": False}]}
      for n, a, b in (("Transfer", "from", "to"), ("Approval", "owner", "spender"))),
]


@dataclass(frozen=True)
class Tx:
    """One prepared transaction: ``contract.fn(*args)`` through ``client``."""

    client: ChainClient
    contract: Any  # the web3 contract
    fn: str
    args: tuple[Any, ...]
    gas: int | None = None  # a limit fixed beforehand (:meth:`estimate`); None: estimated when sent
    #: Runs right before the signed transaction leaves; what it raises stops the send (:meth:`checked`).
    last_look: Callable[[], None] | None = None

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def checked(self, last_look: Callable[[], None]) -> Tx:
        """This transaction with ``last_look()`` run right before it leaves (after it is signed
        and journaled): a last look at the chain or mempool that may call the send off."""
        return replace(self, last_look=last_look)

    def estimate(self) -> Tx:
        """This transaction with its gas limit estimated now (a revert raises its decoded
        ContractRevert): a caller may look at the chain between the estimate and the send."""
        return replace(self, gas=self.client.estimate(self.contract, self.fn, *self.args))

    def send(self, *, gas: int | None = None, value: int = 0) -> Any:
        """Sign, broadcast, wait; the receipt (a revert raises its decoded ContractRevert)."""
        return self.client.transact(self.contract, self.fn, *self.args, gas=gas, value=value)

    def transact(self, on_signed: OnSigned | None = None, *, gas: int | None = None) -> Any:
        """Sign and broadcast without waiting (``on_signed(hash)`` runs before it leaves); the hash."""
        return self.client.transact(self.contract, self.fn, *self.args, gas=gas or self.gas, wait=False,
                                    on_signed=on_signed, last_look=self.last_look)


class Facade:
    """A deployed contract bound to a client. ``ARTIFACT`` names its ABI in ``folder``."""

    ARTIFACT: ClassVar[str]

    def __init__(self, client: ChainClient, address: str | None = None, folder: Path = ARTIFACTS_DIR) -> None:
        self.client = client
        self.web3_contract = self._contract(address, folder)
        self.address: str = str(self.web3_contract.address)

    def _contract(self, address: str | None, folder: Path) -> Any:
        return self.client.contract(self.ARTIFACT, address, folder)

    def _call(self, fn: str, *args: Any) -> Any:
        return self.client.call(self.web3_contract, fn, *args)

    def _tx(self, fn: str, *args: Any) -> Tx:
        return Tx(self.client, self.web3_contract, fn, args)

    def events(self, from_block: int, names: list[str] | None = None, confirmations: int = 0,
               step: int = 2000, quiet_after: float | None = None) -> EventPoller:
        """A poller of this contract's events (each delivered once, when confirmed)."""
        return EventPoller(self.client, self.web3_contract, from_block, names=names,
                           confirmations=confirmations, step=step, quiet_after=quiet_after)

    def logs(self, event: str, from_block: int, **filters: Any) -> list[Any]:
        """Decoded ``event`` logs since ``from_block`` whose indexed arguments match ``filters``."""
        # paged within the provider's log-range limit (ChainClient.logs)
        return self.client.logs(getattr(self.web3_contract.events, event), from_block, **filters)


class ERC20(Facade):
    """Any ERC-20 token, through the standard interface."""

    ARTIFACT = "IERC20"

    def _contract(self, address: str | None, folder: Path) -> Any:
        from web3 import Web3

        if address is None:
            raise ValueError("an ERC-20 facade needs the token's address (JobMarket.token())")
        return self.client.w3.eth.contract(address=Web3.to_checksum_address(address), abi=IERC20_ABI)

    def balanceOf(self, account: str) -> int:  # noqa: N802 - the contract's spelling
        return int(self._call("balanceOf", account))

    def allowance(self, owner: str, spender: str) -> int:
        return int(self._call("allowance", owner, spender))

    def decimals(self) -> int:
        return int(self._call("decimals"))

    def symbol(self) -> str:
        return str(self._call("symbol"))

    def approve(self, spender: str, value: int) -> Tx:
        return self._tx("approve", spender, value)

    def transfer(self, to: str, value: int) -> Tx:
        return self._tx("transfer", to, value)


class DevToken(ERC20):
    """The dev token: an ERC-20 anyone may mint (local and test networks only)."""

    ARTIFACT = "DevToken"

    def _contract(self, address: str | None, folder: Path) -> Any:
        return self.client.contract(self.ARTIFACT, address, folder)

    def mint(self, to: str, amount: int) -> Tx:
        return self._tx("mint", to, amount)


class JobMarket(Facade):
    ARTIFACT = "JobMarket"

    # ---- views
    def token(self) -> str:
        return str(self._call("token"))

    def jobCount(self) -> int:  # noqa: N802
        return int(self._call("jobCount"))

    def getJob(self, job_id: int) -> Job:  # noqa: N802
        return Job.of(self._call("getJob", job_id))

    def getTask(self, task_id: int) -> Task:  # noqa: N802
        return Task.of(self._call("getTask", task_id))

    def getClaim(self, task_id: int, worker: str) -> Claim:  # noqa: N802
        return Claim.of(self._call("getClaim", task_id, worker))

    def owed(self, account: str) -> int:
        return int(self._call("owed", account))

    def verifierKeyStatus(self, job_id: int, verifier: str) -> VerifierKeyStatus:  # noqa: N802
        return VerifierKeyStatus(int(self._call("verifierKeyStatus", job_id, verifier)))

    def liabilities(self) -> int:
        return int(self._call("liabilities"))

    def sealOf(self, task_id: int, worker: str) -> bytes:  # noqa: N802
        return bytes(self._call("sealOf", task_id, worker))

    # ---- transactions
    def postJob(self, params: tuple[Any, ...]) -> Tx:  # noqa: N802 - JobParams, in ABI order
        return self._tx("postJob", params)

    def cancelJob(self, job_id: int) -> Tx:  # noqa: N802
        return self._tx("cancelJob", job_id)

    def closeJob(self, job_id: int) -> Tx:  # noqa: N802
        return self._tx("closeJob", job_id)

    def deliverKey(self, task_id: int, worker: str, envelope: bytes) -> Tx:  # noqa: N802
        return self._tx("deliverKey", task_id, worker, envelope)

    def deliverVerifierKey(self, job_id: int, verifier: str, envelope: bytes) -> Tx:  # noqa: N802
        return self._tx("deliverVerifierKey", job_id, verifier, envelope)

    def requestVerifierKey(self, job_id: int) -> Tx:  # noqa: N802
        return self._tx("requestVerifierKey", job_id)

    def claim(self, task_id: int, pub_key: bytes, seed_hash: bytes) -> Tx:
        """``seed_hash``: ``keccak256(secret)`` (docs/spec/forced.md), or 32 zero bytes for a
        claim that is never a forced error."""
        return self._tx("claim", task_id, pub_key, seed_hash)

    def abandon(self, task_id: int, worker: str) -> Tx:
        return self._tx("abandon", task_id, worker)

    def commit(self, task_id: int, commitment: bytes) -> Tx:
        return self._tx("commit", task_id, commitment)

    def reveal(self, task_id: int, root: bytes, salt: bytes, manifest_cid: str) -> Tx:
        return self._tx("reveal", task_id, root, salt, manifest_cid)

    def finalize(self, task_id: int, worker: str) -> Tx:
        return self._tx("finalize", task_id, worker)

    def slashWrongStart(self, task_id: int, worker: str, started: bytes, started_proof: list[bytes],  # noqa: N802
                        bound: bytes, bound_proof: list[bytes]) -> Tx:
        return self._tx("slashWrongStart", task_id, worker, started, started_proof, bound, bound_proof)

    def refuseStart(self, task_id: int) -> Tx:  # noqa: N802
        return self._tx("refuseStart", task_id)

    def withdraw(self) -> Tx:
        return self._tx("withdraw")

    def setModules(self, registry: str, resolver: str) -> Tx:  # noqa: N802
        return self._tx("setModules", registry, resolver)


class DisputeResolver(Facade):
    ARTIFACT = "DisputeResolver"

    def getDispute(self, dispute_id: int) -> Dispute:  # noqa: N802
        return Dispute.of(self._call("getDispute", dispute_id), dispute_id=dispute_id)

    def getBallots(self, dispute_id: int) -> list[Ballot]:  # noqa: N802
        referees, states, ballots = self._call("getBallots", dispute_id)
        return [Ballot.of(seat) for seat in zip(referees, states, ballots, strict=True)]

    def params(self) -> ResolverParams:
        return ResolverParams.of(self._call("params"))

    def disputeCount(self) -> int:  # noqa: N802
        return int(self._call("disputeCount"))

    def jackpot(self) -> int:
        return int(self._call("jackpot"))

    def jackpotFor(self, job_id: int) -> int:  # noqa: N802
        return int(self._call("jackpotFor", job_id))

    def totalBonds(self) -> int:  # noqa: N802
        return int(self._call("totalBonds"))

    def challenge(self, task_id: int, worker: str, j: int, claimed_next: bytes) -> Tx:
        return self._tx("challenge", task_id, worker, j, claimed_next)

    def challengeWithProof(self, task_id: int, worker: str, seg: tuple[Any, ...],  # noqa: N802
                           claimed_next: bytes) -> Tx:
        return self._tx("challengeWithProof", task_id, worker, seg, claimed_next)

    def answer(self, dispute_id: int, seg: tuple[Any, ...]) -> Tx:
        return self._tx("answer", dispute_id, seg)

    def answerForced(self, dispute_id: int, secret: bytes, snap: bytes) -> Tx:  # noqa: N802
        return self._tx("answerForced", dispute_id, secret, snap)

    def openSeed(self, task_id: int, worker: str, secret: bytes, snap: bytes) -> Tx:  # noqa: N802
        return self._tx("openSeed", task_id, worker, secret, snap)

    def challengeOptOut(self, task_id: int, worker: str) -> Tx:  # noqa: N802
        return self._tx("challengeOptOut", task_id, worker)

    def drawCommittee(self, dispute_id: int) -> Tx:  # noqa: N802
        return self._tx("drawCommittee", dispute_id)

    def deliverRefereeKey(self, dispute_id: int, referee: str, envelope: bytes) -> Tx:  # noqa: N802
        return self._tx("deliverRefereeKey", dispute_id, referee, envelope)

    def commitVote(self, dispute_id: int, seat: int, commitment: bytes) -> Tx:  # noqa: N802
        return self._tx("commitVote", dispute_id, seat, commitment)

    def revealVote(self, dispute_id: int, seat: int, vote: bytes, salt: bytes) -> Tx:  # noqa: N802
        return self._tx("revealVote", dispute_id, seat, vote, salt)

    def settle(self, dispute_id: int) -> Tx:
        return self._tx("settle", dispute_id)


class VerifierRegistry(Facade):
    ARTIFACT = "VerifierRegistry"

    def getVerifier(self, verifier: str) -> Verifier:  # noqa: N802
        return Verifier.of(self._call("getVerifier", verifier))

    def isActive(self, verifier: str) -> bool:  # noqa: N802
        return bool(self._call("isActive", verifier))

    def stakeOf(self, verifier: str) -> int:  # noqa: N802
        return int(self._call("stakeOf", verifier))

    def minStake(self) -> int:  # noqa: N802
        return int(self._call("minStake"))

    def poolSize(self) -> int:  # noqa: N802
        return int(self._call("poolSize"))

    def register(self, pub_key: bytes, stake: int) -> Tx:
        return self._tx("register", pub_key, stake)

    def bindResolver(self) -> Tx:  # noqa: N802
        return self._tx("bindResolver")


@dataclass(frozen=True)
class Contracts:
    """The deployment's contracts as facades: the market, its modules and its token."""

    market: JobMarket
    resolver: DisputeResolver
    registry: VerifierRegistry
    token: ERC20

    @classmethod
    def of(cls, client: ChainClient, deployment: Any = None) -> Contracts:
        """Bound through ``client`` at ``deployment``'s addresses (default: the client's)."""
        dep = deployment or client.deployment
        if dep is None:
            raise ValueError("Contracts.of needs a deployment (the client has none)")
        market = JobMarket(client, dep.address("JobMarket"))
        return cls(market=market, resolver=DisputeResolver(client, dep.address("DisputeResolver")),
                   registry=VerifierRegistry(client, dep.address("VerifierRegistry")),
                   token=ERC20(client, market.token()))
