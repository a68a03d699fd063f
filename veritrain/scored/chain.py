"""ScoredRounds over web3: phases, submissions, settled scores and keys. Transactions go through
the account's :class:`~veritrain.chain.client.ChainClient` (the one way every role sends: shared
nonces, retries, fee policy, confirmations), so a revert is the contract's named error
(:mod:`veritrain.chain.errors`, a :class:`~veritrain.errors.ChainError`)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from veritrain.artifacts import artifact
from veritrain.errors import ChainError, ContractRevert

#: Blocks read again on the next look for events (key requests and deliveries), in case the
#: newest ones were replaced by a reorg since: reading them twice is harmless.
REREAD = 12


class Phase(IntEnum):
    """ScoredRounds.Phase."""

    NONE = 0
    PENDING = 1
    SUBMIT = 2
    REVEAL = 3
    SCORE_COMMIT = 4
    SCORE_REVEAL = 5
    SETTLEABLE = 6
    SETTLED = 7


@dataclass(frozen=True)
class Revealed:
    index: int
    worker: str
    update_hash: bytes
    cid: str


@dataclass(frozen=True)
class Settled:
    index: int
    worker: str
    score: int
    copier: bool
    payout: int


class ScoredChain:
    """One ScoredRounds contract; ``account`` (a LocalAccount) signs what is sent, through
    ``client`` (default: a ChainClient of its own on ``w3``'s endpoint)."""

    def __init__(self, w3: Any, address: str, account: Any = None, *, client: Any = None,
                 from_block: int | None = None) -> None:
        self.w3, self.account = w3, account
        self.abi = artifact("ScoredRounds")["abi"]
        self.c = w3.eth.contract(address=address, abi=self.abi)
        self.gas_used: dict[str, int] = {}
        self._client = client
        #: First block whose events matter (the deployment's block; the client's deployment's
        #: when not given). Events are read from it in pages the provider accepts
        #: (``ChainClient.logs``), as a hosted RPC caps eth_getLogs ranges.
        dep = getattr(client, "deployment", None)
        self.from_block = from_block if from_block is not None else int(getattr(dep, "deploy_block", 0) or 0)
        #: Key requests read so far, per job: account -> public key, and the next block to read
        #: (so a ``job serve`` pass reads only the blocks since the last one, issue 25).
        self._requests: dict[int, dict[str, bytes]] = {}
        self._requests_from: dict[int, int] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            from veritrain.chain.client import ChainClient

            self._client = ChainClient(self.w3.provider.endpoint_uri, self.account)
        return self._client

    # ------------------------------------------------------------------ reads
    def view(self, fn: str, *args: Any) -> Any:
        """``fn(*args)`` of ScoredRounds, read through the client: a dropped connection fails over
        and is retried (a provider outage becomes one ChainError), a revert is its named error."""
        return self.client.call(self.c, fn, *args)

    @property
    def chain_id(self) -> int:
        return int(self.client.chain_id)

    def params(self, job: int) -> dict[str, Any]:
        return _named(self.c, "getParams", self.view("getParams", job))

    def job(self, job: int) -> dict[str, Any]:
        return _named(self.c, "getJob", self.view("getJob", job))

    def phase(self, job: int, window: int) -> Phase:
        return Phase(self.view("phaseOf", job, window))

    def window_start(self, job: int, window: int) -> int:
        return int(self.view("windowStart", job, window))

    def submissions(self, job: int, window: int) -> list[tuple[str, bool, bytes, bytes]]:
        return [tuple(s) for s in self.view("getSubmissions", job, window)]  # type: ignore[misc]

    def logs(self, event: str, *, since: int | None = None, until: int | None = None,
             **filters: Any) -> list[Any]:
        """Decoded ``event`` logs matching the indexed ``filters`` from block ``since`` (default
        :attr:`from_block`) to ``until`` (default: the head)."""
        start = self.from_block if since is None else since
        return list(self.client.logs(getattr(self.c.events, event), start, until, **filters))

    def _logs(self, event: str, job: int, window: int) -> list[Any]:
        return self.logs(event, jobId=job, window=window)

    def revealed(self, job: int, window: int) -> list[Revealed]:
        subs = self.submissions(job, window)
        out = []
        for e in self._logs("UpdateRevealed", job, window):
            a = e["args"]
            out.append(Revealed(a["index"], subs[a["index"]][0], bytes(a["updateHash"]), a["cid"]))
        return sorted(out, key=lambda r: r.index)

    def settled(self, job: int, window: int) -> list[Settled]:
        out = [Settled(a["index"], a["worker"], a["score"], a["copier"], a["payout"])
               for a in (e["args"] for e in self._logs("SubmissionSettled", job, window))]
        return sorted(out, key=lambda s: s.index)

    def slashed(self, job: int, window: int) -> dict[str, int]:
        return {e["args"]["account"]: e["args"]["amount"] for e in self._logs("Slashed", job, window)}

    def validator_fees(self, job: int, window: int) -> dict[str, int]:
        return {e["args"]["validator"]: e["args"]["fee"] for e in self._logs("ValidatorPaid", job, window)}

    # ------------------------------------------------------------------ time
    def wait_phase(self, job: int, window: int, phase: Phase, *, poll: float = 0.5,
                   timeout: float = 3600.0) -> Phase:
        """Block until ``window`` is at ``phase`` or later; the phase reached."""
        end = time.monotonic() + timeout
        while True:
            now = self.phase(job, window)
            if now >= phase:
                return now
            if time.monotonic() > end:
                raise ChainError(f"window {window} of scored job {job} did not reach {phase.name} "
                                 f"in {timeout:.0f} s")
            time.sleep(poll)

    def wait_job(self, job: int, *, poll: float = 0.5, timeout: float = 3600.0) -> None:
        """Block until job ``job`` is posted (a role may start before its requester posts)."""
        end = time.monotonic() + timeout
        while self.job(job)["requester"] == "0x" + "0" * 40:
            if time.monotonic() > end:
                raise ChainError(f"scored job {job} was not posted within {timeout:.0f} s")
            time.sleep(poll)

    # ------------------------------------------------------------------ writes
    def send(self, fn: str, *args: Any) -> Any:
        """Sign and send ``fn(*args)``; the receipt. A revert raises the contract's named error."""
        return self._counted(fn, self.client.transact(self.c, fn, *args))

    def _counted(self, fn: str, receipt: Any) -> Any:
        self.gas_used[fn] = self.gas_used.get(fn, 0) + int(receipt["gasUsed"])
        return receipt

    def settle_if_due(self, job: int, window: int) -> None:
        """Settle ``window`` when it is due and nobody has yet (anyone may; a lost race is fine)."""
        if window >= 0 and self.phase(job, window) == Phase.SETTLEABLE:
            with contextlib.suppress(ContractRevert):  # someone else settled it first
                self.send("settle", job, window)

    def approve(self, amount: int) -> None:
        """Let ScoredRounds pull ``amount`` of the token from the account (if it may not yet)."""
        from veritrain.chain.facades import IERC20_ABI

        me = self.account.address
        token = self.w3.eth.contract(address=self.view("token"), abi=IERC20_ABI)
        if self.client.call(token, "allowance", me, self.c.address) < amount:
            self.client.transact(token, "approve", self.c.address, amount)

    def join(self, job: int, fn: str, stake: int, *, with_pubkey: bool) -> None:
        """``fn`` (``joinAsWorker``, ``joinAsValidator``: ``veritrain.scored.session.JOIN``) unless
        joined, approving the stake first; ``with_pubkey`` passes the account's public key.
        Joining asks the requester for the job's key."""
        from veritrain.envelope import public_key_from_private

        if self.view("roleOf", job, self.account.address) != 0:
            return
        self.approve(stake)
        key = (public_key_from_private(bytes(self.account.key)),) if with_pubkey else ()
        self.send(fn, job, *key)

    # ------------------------------------------------------------------ keys
    def key_context(self, job: int, account: str) -> bytes:
        from veritrain.jobdoc import scored_key_context

        return scored_key_context(self.chain_id, self.c.address, job, account)

    def wait_key(self, job: int, *, poll: float = 0.5, timeout: float = 600.0) -> bytes:
        """The job's data key, once the requester has answered this account's request
        (``KeyDelivered``), unwrapped with the account's key. A delivery that does not open
        (not made for this account, job and contract) is a DecryptionError: nothing else answers."""
        from veritrain.envelope import unwrap

        me = self.account.address
        end, since = time.monotonic() + timeout, self.from_block
        while True:
            head = self.client.block_number()
            got = self.logs("KeyDelivered", since=since, until=head, jobId=job, account=me)
            if got:
                return unwrap(bytes(got[-1]["args"]["envelope"]), bytes(self.account.key),
                              self.key_context(job, me))
            since = max(since, head - REREAD + 1)  # each look reads the new blocks only
            if time.monotonic() > end:
                raise ChainError(f"the requester of scored job {job} did not deliver the key to {me} "
                                 f"within {timeout:.0f} s (is its key service running?)")
            time.sleep(poll)

    def deliver_keys(self, job: int, key: bytes) -> list[str]:
        """As the job's requester: answer every open key request of ``job`` with ``key`` wrapped to
        the public key the account joined with; the accounts answered. The answers go out
        together (consecutive nonces), then their receipts are awaited: a block for them all."""
        from veritrain.chain.errors import ScoredRoundsNoKeyRequest  # type: ignore[attr-defined]
        from veritrain.envelope import wrap

        head = self.client.block_number()
        since = self._requests_from.get(job, self.from_block)
        requests = self._requests.setdefault(job, {})
        for e in self.logs("KeyRequested", since=since, until=head, jobId=job):
            requests[e["args"]["account"]] = bytes(e["args"]["pubKey"])
        self._requests_from[job] = max(since, head - REREAD + 1)
        for account in [a for a in requests if not self.view("keyRequested", job, a)]:
            del requests[account]  # answered (by this service or another instance of it)
        open_ = list(requests.items())
        sent = []
        for account, pub in open_:
            envelope = wrap(key, pub, self.key_context(job, account))
            try:
                sent.append((account, self.client.transact(self.c, "deliverKey", job, account, envelope,
                                                            wait=False)))
            except ScoredRoundsNoKeyRequest:
                continue  # another instance of the requester's service answered it first
        for _account, h in sent:
            self._counted("deliverKey", self.client.wait(h, what="deliverKey"))
        return [account for account, _h in sent]

    def serve_keys(self, job: int, key: bytes, *, poll: float = 1.0, stop: Any = None) -> int:
        """Answer ``job``'s key requests until its last window is settled (or ``stop``, a
        threading.Event, is set); how many were answered."""
        last = int(self.params(job)["windows"]) - 1
        count = 0
        while not (stop is not None and stop.is_set()):
            count += len(self.deliver_keys(job, key))
            if self.phase(job, last) == Phase.SETTLED:
                return count
            time.sleep(poll)
        return count

def scored_chain(rpc_url: str, account: Any, deployment: Any = None, address: str | None = None, *,
                 nonce_dir: Any = None, retry_seconds: float = 30.0) -> ScoredChain:
    """ScoredRounds at ``address``, else the one of ``deployment`` (a Deployment, a record's path,
    or None: the network's record, :func:`veritrain.deployments.load`), sending as ``account``
    through a ChainClient (nonce files in ``nonce_dir``) and reading events from the deployment's
    block."""
    from web3 import Web3

    from veritrain import deployments
    from veritrain.chain.client import ChainClient
    from veritrain.deployments import Deployment
    from veritrain.errors import ConfigError

    dep = deployment
    if not isinstance(dep, Deployment):
        try:
            dep = deployments.load(deployment, rpc_url)
        except ConfigError:
            if address is None:
                raise
            dep = None  # the contract is named: no record needed
    client = ChainClient(rpc_url, account, dep, nonce_dir=nonce_dir, retry_seconds=retry_seconds)
    target = Web3.to_checksum_address(address) if address is not None else dep.address("ScoredRounds")
    return ScoredChain(client.w3, target, account, client=client)


def _named(contract: Any, fn: str, values: Any) -> dict[str, Any]:
    item = next(i for i in contract.abi if i.get("name") == fn and i["type"] == "function")
    names = [c["name"] for c in item["outputs"][0]["components"]]
    return dict(zip(names, values, strict=True))
