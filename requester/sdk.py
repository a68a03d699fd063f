"""The requester SDK: post a training job on private data, serve its keys, fetch a checked model.

    from requester import Requester
    r = Requester(rpc_url, account, IpfsStorage(api), deployment)
    job = r.post_job("examples/digits-mlp.yaml", "digits.npz", reward_per_task=10**18,
                     stake_per_task=10**18)
    with job.serve_keys():
        job.wait(timeout=3600)
    res = job.result()           # model, metrics on the held-out set, provenance
    res.save("model.safetensors")

Everything is checked before anything is posted: the spec, the dataset against the model's
input, the token balance (and the allowance when ``approve=False``). Posting costs one
``postJob`` transaction, plus one ``approve`` only when the allowance is short.

A spec with ``rounds > 1`` runs one on-chain job per round, each starting from the previous
round's aggregate (:mod:`requester.rounds`); the balance must cover every round's escrow up
front, round 0 is posted here, and the key-service loop (``job.serve_keys()``, ``job.wait()``,
``veritrain job serve``) posts the next round when the last one's results are final and
verified. The job's public id stays round 0's on-chain id.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from requester import data as datamod
from requester.errors import InsufficientFundsError, UnknownJobError, UnsupportedError
from requester.market import Market
from requester.rounds import RoundDriver, RoundJob, post_params, rounds_of
from requester.store import JobRecord, JobStore, Terms, seal_key, unseal_key
from veritrain.chain.receipts import tx_hash
from veritrain.chain.states import JobStatus
from veritrain.deployments import Deployment
from veritrain.deployments import load as load_deployment
from veritrain.errors import ConfigError, ContractRevert, DataError, SpecError
from veritrain.jobdoc import JobDocument
from veritrain.netprofile import NetworkProfile
from veritrain.spec import JobSpec, load_spec
from veritrain.storage import Storage
from veritrain.units import TokenFormat

UINT96 = 2**96 - 1


def _spec(spec: JobSpec | str | Path | dict[str, Any]) -> JobSpec:
    if isinstance(spec, JobSpec):
        return spec
    if isinstance(spec, str) and not spec.lstrip().startswith(("{", "schema_version")) and Path(spec).suffix:
        spec = Path(spec)
    return load_spec(spec)  # type: ignore[arg-type]



@dataclass(frozen=True)
class Costs:
    escrow: int  # per round (one on-chain job)
    reward_per_task: int
    stake_per_task: int
    griefing_fee: int
    referee_fee_pool: int
    rounds: int = 1
    #: per round, beyond the escrow: the jackpot pool's fee (redundancy-1 jobs, docs/spec/forced.md)
    jackpot_fee: int = 0

    @property
    def total(self) -> int:
        """What the whole job pays over all its rounds: escrows and jackpot fees."""
        return (self.escrow + self.jackpot_fee) * self.rounds

    def terms(self, approve: bool) -> Terms:
        return Terms(reward_per_task=self.reward_per_task, stake_per_task=self.stake_per_task,
                     griefing_fee=self.griefing_fee, referee_fee_pool=self.referee_fee_pool, approve=approve)


def check_supported(spec: JobSpec) -> None:
    from veritrain.incentives import incentive_for

    try:
        scheme = incentive_for(spec)
    except SpecError as exc:
        raise UnsupportedError("cannot post this job: " + "; ".join(exc.problems)) from None
    if scheme.contract != "JobMarket":
        raise UnsupportedError(f"cannot post this job here: Requester.post_job posts replay mode jobs to "
                               f"JobMarket; an incentive: {scheme.name} job goes to {scheme.contract} "
                               f"through requester.scored.post_scored_job (docs/scored.md)")


def settle_privacy(spec: JobSpec, train: Any) -> JobSpec:
    """A DP-SGD spec with its noise multiplier (for a target epsilon) or its epsilon (for a
    noise multiplier) computed by the accountant over this data's shards
    (:func:`veritrain.privacy.settle`); other specs unchanged. UnsupportedError with the
    numbers for a target no noise reaches."""
    if spec.privacy.dp_sgd is None:
        return spec
    from veritrain import privacy

    sizes = [len(s) for s in datamod.split_shards(spec, train)]
    try:
        settled, _ = privacy.settle(spec, sizes)
    except SpecError as exc:
        raise UnsupportedError("cannot post this job: " + "; ".join(exc.problems)) from None
    return settled


def job_costs(spec: JobSpec, reward_per_task: int, stake_per_task: int,
              griefing_fee: int | None, referee_fee_pool: int) -> Costs:
    problems = []
    for name, v in (("reward_per_task", reward_per_task), ("stake_per_task", stake_per_task)):
        if not isinstance(v, int) or not 0 < v <= UINT96:
            problems.append(f"{name} must be a positive whole number of token units below 2**96, got {v!r}")
    fee = reward_per_task // 10 if griefing_fee is None else griefing_fee
    if isinstance(reward_per_task, int) and not 0 <= fee <= reward_per_task:
        problems.append(f"griefing_fee must lie in [0, reward_per_task], got {fee}")
    if not isinstance(referee_fee_pool, int) or referee_fee_pool < 0:
        problems.append(f"referee_fee_pool must be >= 0, got {referee_fee_pool!r}")
    if problems:
        raise ConfigError("; ".join(problems))
    from veritrain.incentives import incentive_for

    escrow = incentive_for(spec).round_escrow(spec, reward_per_task, referee_fee_pool)
    return Costs(escrow, reward_per_task, stake_per_task, fee, referee_fee_pool, spec.rounds)


class Requester:
    """One requester account on one deployment, with a storage backend and a local job store."""

    def __init__(self, rpc_url: str | NetworkProfile, account: Any, storage: Storage,
                 deployment: Deployment | str | Path | None = None, *, home: Path | str | None = None,
                 client: Any = None) -> None:
        """``rpc_url``: one URL, several comma-separated (failover), or a network profile
        (:func:`veritrain.netprofile.load_profile`): its URLs (health-checked, chain id checked),
        deployment, fee policy and log-range limit."""
        from veritrain.chain import ChainClient

        network = rpc_url if isinstance(rpc_url, NetworkProfile) else None
        if network is not None:
            rpc_url = ",".join(network.connect())
            if deployment is None:
                deployment = network.deployment
        assert isinstance(rpc_url, str)
        if not isinstance(deployment, Deployment):  # None: found by the network at rpc_url
            deployment = load_deployment(Path(deployment) if deployment is not None else None, rpc_url)
        self.account = account
        self.storage = storage
        self.deployment = deployment
        if home is None:
            from veritrain.settings import default_home

            home = default_home()
        self.home = Path(home)
        self.network = network
        self.client = client or ChainClient(rpc_url, account, deployment, network=network,
                                            nonce_dir=self.home / "requester" / "nonces")
        self.market = Market(self.client, deployment)
        self.store = JobStore(self.home, deployment.chain_id, self.market.address)

    @property
    def address(self) -> str:
        return str(self.account.address)

    # -------------------------------------------------------------------------- posting
    def tokens(self) -> TokenFormat:
        """How the market token's amounts are shown: decimals and symbol (read once)."""
        if getattr(self, "_tokens", None) is None:
            token = self.market.token
            self._tokens = TokenFormat(int(token.decimals()), str(token.symbol()))
        return self._tokens

    def jackpot_fee(self, spec: JobSpec, reward_per_task: int) -> int:
        """What ``postJob`` adds to one round's escrow for the jackpot pool (the resolver's
        ``jackpotFeeBps``; redundancy-1 jobs only)."""
        from veritrain import forced

        bps = self.market.resolver.params().jackpot_fee_bps
        return forced.jackpot_fee(spec.num_shards * reward_per_task, spec.redundancy, bps)

    def check_funds(self, costs: Costs, *, approve: bool = True) -> None:
        fmt = self.tokens()
        balance = int(self.market.token.balanceOf(self.address))
        per_round = costs.escrow + costs.jackpot_fee
        what = (fmt(per_round) if costs.rounds == 1 else
                f"{fmt(costs.total)} over its {costs.rounds} rounds ({fmt(per_round)} per round)")
        if costs.jackpot_fee:
            what += f" (the jackpot fee of {fmt(costs.jackpot_fee)} per round included)"
        if balance < costs.total:
            raise InsufficientFundsError(
                f"the job escrows {what} but {self.address} holds {fmt(balance)}, "
                f"{fmt(costs.total - balance)} short: lower the reward, the number of shards or rounds, "
                "or fund the account (on the local stack: `veritrain dev fund ADDRESS`)")
        if not approve:
            allowance = int(self.market.token.allowance(self.address, self.market.address))
            if allowance < costs.total:
                raise InsufficientFundsError(
                    f"the market may spend {fmt(allowance)} of {self.address}'s tokens, the job escrows "
                    f"{what}: approve the market first (or let post_job approve)")
        w3 = self.client.w3
        gas = int(self.client.retry(lambda: w3.eth.get_balance(self.address), "reading the balance"))
        if gas == 0:
            raise InsufficientFundsError(f"{self.address} has no ether to pay for gas")

    def stake_warning(self, spec: JobSpec, reward_per_task: int, stake_per_task: int,
                      p: float | None = None) -> str | None:
        """A line when ``stake_per_task`` is below the bound of docs/economics.md, counting every
        active registered verifier as sampling at ``p`` (default: a verifier's default rate) —
        an optimistic count (a referee may sample nothing); None when the stake is enough."""
        from veritrain.economics import DEFAULT_SAMPLING_P, Terms, quote, stake_warning

        verifiers = int(self.market.registry.poolSize())
        q = quote(Terms(reward=reward_per_task, stake=stake_per_task, segments=spec.num_checkpoints - 1,
                        verifiers=verifiers, p=DEFAULT_SAMPLING_P if p is None else p))
        return stake_warning(q, self.tokens())

    def post_job(self, spec: JobSpec | str | Path | dict[str, Any], dataset: Any, *,
                 reward_per_task: int, stake_per_task: int, griefing_fee: int | None = None,
                 referee_fee_pool: int = 0, holdout: float = 0.2, holdout_data: Any = None,
                 approve: bool = True) -> Job:
        """Validate, shard, encrypt, upload and post; returns the :class:`Job`.

        ``dataset``: a path (.npz, .pt, .csv) or a ``(features, labels)`` pair. ``holdout``:
        the fraction kept back (never uploaded) for :meth:`Job.result`'s evaluation, unless
        ``holdout_data`` is given. Amounts are in the token's smallest unit.
        """
        from requester.prepare import prepare_job

        spec = _spec(spec)
        check_supported(spec)
        costs = job_costs(spec, reward_per_task, stake_per_task, griefing_fee, referee_fee_pool)
        costs = replace(costs, jackpot_fee=self.jackpot_fee(spec, reward_per_task))
        data = datamod.load_dataset(dataset, spec)
        held = datamod.load_dataset(holdout_data, spec) if holdout_data is not None else None
        if held is not None and held.classes != data.classes:
            raise DataError(f"{held.source} has text labels {held.classes}, "
                            f"{data.source} has {data.classes}: "
                            "both must name the same classes")
        warning = datamod.scale_warning(spec, data)
        if warning is not None:
            import warnings

            from requester.errors import DataWarning

            warnings.warn(warning, DataWarning, stacklevel=2)
        stake_warning = self.stake_warning(spec, reward_per_task, stake_per_task)
        if stake_warning is not None:
            import warnings

            from requester.errors import StakeWarning

            warnings.warn(stake_warning, StakeWarning, stacklevel=2)
        train = data if held is not None else datamod.split_holdout(spec, data, holdout)[0]
        spec = settle_privacy(spec, train)  # before anything is posted: refuses an impossible target
        self.check_funds(costs, approve=approve)
        prepared = prepare_job(spec, data, self.storage, holdout=holdout, holdout_data=held)
        doc = prepared.doc
        record = JobRecord(chain_id=self.deployment.chain_id, market=self.market.address,
                           requester=self.address, doc_cid=prepared.doc_cid, binding=doc.binding,
                           sealed_key=seal_key(prepared.data_key, self.account, prepared.doc_cid),
                           shards_root="0x" + doc.shards_root().hex(),
                           terms=costs.terms(approve) if spec.rounds > 1 else None)
        if prepared.holdout is not None:
            where = self.store.holdout_path(prepared.doc_cid)
            record.holdout = str(datamod.save_holdout(prepared.holdout, where))
        self.store.save_pending(record)
        allowance = int(self.market.token.allowance(self.address, self.market.address))
        if allowance < costs.escrow + costs.jackpot_fee:  # every round's at once: later rounds need none
            record.approve_tx = tx_hash(self.market.token.approve(self.market.address, costs.total).send())
        from veritrain.starts import BoundStarts

        starts = BoundStarts.of(doc)  # round 0: every task starts from the seeded model
        params = post_params(doc, prepared.doc_cid, record.terms or costs.terms(approve), starts.root)
        try:
            receipt = self.market.market.postJob(params).send()
        except ContractRevert:  # refused by the contract: nothing was posted, forget the record
            (self.store.pending_dir / f"{record.doc_cid}.json").unlink(missing_ok=True)
            raise
        from web3.logs import DISCARD

        posted = self.market.market.web3_contract.events.JobPosted().process_receipt(receipt, errors=DISCARD)
        record.job_id = int(posted[0]["args"]["jobId"])
        record.post_tx = tx_hash(receipt)
        record.post_block = int(receipt["blockNumber"])
        self.store.save(record)
        return Job(self, record, doc=doc, data_key=prepared.data_key)

    # ------------------------------------------------------------------------- lookup
    def job(self, job_id: int) -> Job:
        """A job this requester posted from this home (a later round's on-chain id gives the
        multi-round job it belongs to); UnknownJobError otherwise."""
        if not isinstance(job_id, int) or job_id < 1:
            raise UnknownJobError(f"{job_id!r} is not a job id (they are whole numbers from 1)")
        try:
            if job_id not in self.store.job_ids():
                self.recover()
            record = self.store.load(job_id)
        except UnknownJobError:
            parent = self._round_parent(job_id)
            if parent is not None:  # a later round's on-chain id: the job it belongs to
                return self.job(parent)
            onchain = self.market.get_job(job_id)
            if onchain.status == JobStatus.NONE:
                raise UnknownJobError(f"there is no job {job_id} on the market "
                                      f"{self.market.address} (chain {self.deployment.chain_id})") from None
            if onchain.requester.lower() != self.address.lower():
                raise UnknownJobError(f"job {job_id} was posted by {onchain.requester}, not by "
                                      f"{self.address}") from None
            raise
        onchain = self.market.get_job(job_id)
        if onchain.spec_cid != record.doc_cid:
            raise UnknownJobError(
                f"job {job_id} on the market {self.market.address} is not the job recorded in "
                f"{self.store.path(job_id)} (spec {record.doc_cid}): was the chain reset? "
                "Remove the stale record")
        return Job(self, record)

    def _round_parent(self, job_id: int) -> int | None:
        for parent in self.store.job_ids():
            if any(r.job_id == job_id for r in self.store.load(parent).rounds):
                return parent
        return None

    def jobs(self) -> list[Job]:
        self.recover()
        return [Job(self, self.store.load(i)) for i in self.store.job_ids()]

    def recover(self) -> list[int]:
        """Finish the records of jobs posted by a process that died before saving the job id.

        Each pending record (written before ``postJob`` was sent) is matched with this
        account's ``JobPosted`` event of the same spec CID; returns the job ids recovered.
        """
        pending = {r.doc_cid: r for r in self.store.pending()}
        if not pending:
            return []
        found = []
        for ev in self.market.market.events(self.deployment.deploy_block, names=["JobPosted"]).poll():
            record = pending.get(str(ev.args["specCid"]))
            if record is None or str(ev.args["requester"]).lower() != self.address.lower():
                continue
            record.job_id = int(ev.args["jobId"])
            record.post_block, record.post_tx = ev.block_number, ev.tx_hash
            self.store.save(record)
            found.append(record.job_id)
        return found

    def withdraw(self) -> int:
        """Withdraw everything the market owes this account (refunds); returns the amount."""
        owed = int(self.market.market.owed(self.address))
        if owed:
            self.market.market.withdraw().send()
        return owed


class Job:
    """A posted job: its on-chain id, its key, its status, its keys service and its result."""

    def __init__(self, requester: Requester, record: JobRecord, *, doc: JobDocument | None = None,
                 data_key: bytes | None = None) -> None:
        assert record.job_id is not None
        self.requester = requester
        self.record = record
        self.id: int = record.job_id
        self._doc = doc
        self._key = data_key

    def __repr__(self) -> str:
        return f"Job({self.id}, spec={self.record.doc_cid})"

    @property
    def doc(self) -> JobDocument:
        if self._doc is None:
            raw = self.requester.storage.get_bytes(self.record.doc_cid)
            self._doc = JobDocument.from_bytes(raw, source=self.record.doc_cid)
        return self._doc

    @property
    def spec(self) -> JobSpec:
        return self.doc.spec

    # ------------------------------------------------------------------------- rounds
    def record_fresh(self) -> JobRecord:
        """The record as on disk now (another process may have advanced or cancelled the job)."""
        self.record = self.requester.store.load(self.id)
        return self.record

    def save_record(self, record: JobRecord) -> None:
        self.requester.store.save(record)
        self.record = record

    @property
    def rounds(self) -> list[RoundJob]:
        """Every round recorded so far (round 0 first); a single-round job has one."""
        if self.spec.rounds > 1:
            self.record_fresh()
        return rounds_of(self.record, self.requester.deployment.deploy_block)

    def round_doc(self, round_: int) -> JobDocument:
        if round_ == 0:
            return self.doc
        docs: dict[int, JobDocument] = self.__dict__.setdefault("_round_docs", {})
        if round_ not in docs:
            cid = self.rounds[round_].doc_cid
            doc = JobDocument.from_bytes(self.requester.storage.get_bytes(cid), source=cid)
            if doc.round != round_ or doc.binding != self.doc.binding:
                raise UnknownJobError(f"job {self.id}: the document {cid} recorded for round {round_} "
                                      f"is round {doc.round} of binding {doc.binding[:12]}...")
            docs[round_] = doc
        return docs[round_]

    def remember_doc(self, round_: int, doc: JobDocument) -> None:
        self.__dict__.setdefault("_round_docs", {})[round_] = doc

    @property
    def data_key(self) -> bytes:
        if self._key is None:
            self._key = unseal_key(self.record, self.requester.account)
        return self._key

    @property
    def task_ids(self) -> list[int]:
        """Every posted round's task ids, round 0 first."""
        from veritrain.tasks import task_id_of

        return [task_id_of(rj.job_id, i) for rj in self.rounds if rj.job_id is not None
                for i in range(self.spec.num_shards)]

    # ------------------------------------------------------------------------- status
    def status(self) -> Any:
        from requester.status import job_status

        return job_status(self)

    def wait(self, timeout: float = 3600.0, *, poll: float = 1.0, serve_keys: bool = True) -> Any:
        """Until every task has its ``redundancy`` finalized results (or the job ends); for a
        multi-round job, until the last round's tasks have.

        With ``serve_keys`` the key service runs inside the wait (and advances the rounds), so
        a script needs nothing else. Raises JobTimeoutError after ``timeout`` seconds.
        """
        from requester.errors import JobTimeoutError
        from requester.status import RoundTracker, job_status

        service = RoundDriver(self)
        deadline = time.monotonic() + timeout
        trackers: dict[int, RoundTracker] = {}  # each poll reads only the events since the last
        while True:
            if serve_keys:
                service.step()
            st = job_status(self, trackers)
            if st.done or st.state != "open":
                return st
            if time.monotonic() >= deadline:
                raise JobTimeoutError(f"job {self.id} not done after {timeout:.0f} s: {st.summary()}")
            time.sleep(poll)

    @property
    def from_block(self) -> int:
        """The block to read this job's events from (its posting block, else the deployment's)."""
        return int(self.record.post_block or self.requester.deployment.deploy_block)

    def serve_keys(self, interval: float = 1.0) -> Any:
        """Start the key service in a background thread; use as a context manager or ``.stop()``.
        For a multi-round job it also posts each next round when the last one is done."""
        from requester.keyservice import KeyServiceThread

        return KeyServiceThread(RoundDriver(self), interval).start()  # type: ignore[arg-type]

    def cancel(self) -> int:
        """Stop new claims; returns the refund credited (see ``Requester.withdraw``). A
        multi-round job is marked cancelled first (no further round is posted), then the round
        under way is cancelled on-chain."""
        target = self.id
        if self.spec.rounds > 1:
            record = self.record_fresh()
            record.cancelled = True
            self.save_record(record)
            posted = [rj for rj in self.rounds if rj.job_id is not None]
            target = int(posted[-1].job_id)  # type: ignore[arg-type]
            if self.requester.market.get_job(target).status != JobStatus.OPEN:
                return 0  # between rounds (or ended): nothing on-chain to cancel
        receipt = self.requester.market.market.cancelJob(target).send()
        from web3.logs import DISCARD

        contract = self.requester.market.market.web3_contract
        ev = contract.events.JobCancelled().process_receipt(receipt, errors=DISCARD)
        return int(ev[0]["args"]["refunded"])

    # ------------------------------------------------------------------------- result
    def result(self, *, require_all: bool = True) -> Any:
        from requester.fetch import job_result

        return job_result(self, require_all=require_all)

    def to_json(self) -> str:
        return json.dumps(self.status().to_dict(), indent=2)
