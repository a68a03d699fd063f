"""What a scored job's worker and validator both do around their windows (docs/scored.md):
wait for the job, open its document and data, follow its global models and join with the
role's stake (:func:`open_session`); at the end settle the last window, leave and withdraw
(:func:`finish`); and, run as ``python -m``, read the chain, storage and plug-in from the
command line and environment (:func:`from_command_line`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from veritrain.scored.chain import Phase, ScoredChain
from veritrain.scored.follow import GlobalModels
from veritrain.scored.job import ScoredJobDoc, get_dataset
from veritrain.scored.train import ScoredModel
from veritrain.storage.base import Storage


@dataclass(frozen=True)
class Join:
    """How a role joins a scored job: the ScoredRounds function, the job parameter holding its
    stake, and whether it passes its public key (a worker does; a validator's is the one it
    registered in the VerifierRegistry)."""

    fn: str
    stake: str
    with_pubkey: bool


JOIN = {"worker": Join("joinAsWorker", "workerStake", True),
        "validator": Join("joinAsValidator", "validatorStake", False)}


@dataclass(frozen=True)
class ScoredSession:
    """One role's view of one scored job."""

    job_id: int
    params: dict[str, Any]
    doc: ScoredJobDoc
    model: ScoredModel
    models: GlobalModels
    address: str
    key: bytes

    @property
    def windows(self) -> int:
        return int(self.params["windows"])


def say_line(msg: str) -> None:
    """Where a scored role's progress goes when run alone (``python -m worker.scored``)."""
    print(msg, flush=True)


def open_session(chain: ScoredChain, storage: Storage, job_id: int, *, role: str,
                 say: Callable[[str], None] = say_line) -> ScoredSession:
    """Wait for job ``job_id`` (a role may start before its requester posts), join it as ``role``
    (``worker`` or ``validator``) with its stake, wait for the requester to deliver the job's
    data key on-chain, and open the job's data with it."""
    from veritrain.training.engine import as_tensors

    join = JOIN[role]
    say(f"{role} {chain.account.address}: waiting for scored job {job_id}")
    chain.wait_job(job_id)
    params = chain.params(job_id)
    doc = ScoredJobDoc.get(storage, params["specCid"])
    chain.join(job_id, join.fn, params[join.stake], with_pubkey=join.with_pubkey)
    key = chain.wait_key(job_id)
    say(f"{role} {chain.account.address}: joined scored job {job_id}, key delivered")
    data = get_dataset(storage, doc, key)
    model = ScoredModel(doc.spec, *as_tensors(doc.spec, data.features, data.labels))
    models = GlobalModels(chain, storage, doc, key, job_id, model)
    return ScoredSession(job_id, params, doc, model, models, chain.account.address, key)


def finish(chain: ScoredChain, session: ScoredSession, report: dict[str, Any], *,
           leave: bool) -> dict[str, Any]:
    """Settle the last window (anyone may) and wait for it; with ``leave``, leave the job and
    withdraw what is owed. Adds ``stake_left``, ``earned`` (when leaving) and ``gas`` to ``report``."""
    job_id, last, me = session.job_id, session.windows - 1, session.address
    chain.wait_phase(job_id, last, Phase.SETTLEABLE)
    chain.settle_if_due(job_id, last)
    chain.wait_phase(job_id, last, Phase.SETTLED)
    report["stake_left"] = int(chain.view("stakeOf", job_id, me))
    if leave:
        chain.send("leave", job_id)
        report["earned"] = int(chain.view("owed", me))
        chain.send("withdraw")
    report["gas"] = chain.gas_used
    return report


def from_command_line(argv: list[str] | None, plugin_env: str,
                      default: Callable[..., Any] | None) -> tuple[ScoredChain, Storage, int, Any]:
    """``RPC SCORED_ADDRESS JOB_ID`` with the account's key in ``VERITRAIN_SCORED_ACCOUNT_KEY``
    and IPFS at ``VERITRAIN_IPFS_API``; the plug-in named ``module:function`` in ``plugin_env``
    (else ``default``). The job's data key comes on-chain (:func:`open_session`)."""
    import importlib
    import sys

    from eth_account import Account
    from web3 import HTTPProvider, Web3

    from veritrain.storage.ipfs import IpfsStorage

    rpc, address, job = (argv or sys.argv[1:])[:3]
    account = Account.from_key(os.environ["VERITRAIN_SCORED_ACCOUNT_KEY"])
    chain = ScoredChain(Web3(HTTPProvider(rpc, request_kwargs={"timeout": 60})), address, account)
    storage = IpfsStorage(os.environ["VERITRAIN_IPFS_API"])
    plugin: Any = default
    if name := os.environ.get(plugin_env):
        module, fn = name.split(":")
        plugin = getattr(importlib.import_module(module), fn)
    return chain, storage, int(job), plugin
