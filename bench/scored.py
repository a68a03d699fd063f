"""Scored mode on the real stack (issue 21): honest workers and planted cheats, three validators
one of which lies, every role its own process (``python -m worker.scored``,
``python -m verifier.validator``; cheats plugged in from adversary/scored.py).

One fresh stack (Anvil mining a block a second, js-ipfs), the protocol from ``deploy_local``
plus ScoredRounds over the same token and VerifierRegistry. The requester (this process, through
requester/scored.py) posts a scored job on load_digits' first 1,500 examples; the last 297 are
held out for the global model's loss. Windows run on the chain's clock.

Keys (all prefixed ``scored_``):
- ``honest_reward_share``: tokens paid to honest workers ÷ tokens paid to all workers;
- ``reward_share_<cheat>`` for free_rider, copier, stale, data_swapper;
- ``lying_validator_slashed`` (bool) and ``lying_validator_slashed_tokens``;
- ``global_loss_by_window``: held-out loss of the start model of each window and of the final
  model; ``central_loss``: the same model trained centrally (one process, the job's optimizer)
  for as many steps as one worker runs over all windows; ``loss_vs_central`` = final ÷ central;
- ``gas_per_window``: gas of every ScoredRounds transaction of the job ÷ windows, and
  ``settle_gas`` (mean per settle);
- ``validator_compute_ratio``: mean validator CPU seconds spent scoring ÷ mean honest worker
  CPU seconds spent training.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.realstack import REQUESTER, VERIFIERS, BenchStack, Proc

TRAIN = 1500
HONEST = (2, 3, 4, 5)
CHEATS = {"free_rider": 6, "copier": 7, "stale": 8, "data_swapper": 9}
PHASES = {"submit": 60, "reveal": 20, "commit": 45, "reveal_scores": 20}


def scored_spec(windows: int) -> Any:
    """The digits MLP example as a scored job of ``windows`` windows, on this machine's profile."""
    import yaml

    from bench.protocol import ROOT
    from veritrain.spec import load_spec
    from veritrain.training.profile import current_profile

    raw = yaml.safe_load((ROOT / "examples" / "digits-mlp.yaml").read_text())
    raw.update(incentive="scored", rounds=windows, num_shards=1)
    raw["replay"] = current_profile(threads=1).model_dump()
    return load_spec(raw)


def _report(proc: Proc) -> dict[str, Any]:
    for line in reversed(proc.log.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError(f"{proc.name} printed no report:\n{proc.tail()}")


def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-scored-") as tmp, BenchStack(Path(tmp)) as bs:
        return _run(bs, quick)


def _run(bs: BenchStack, quick: bool) -> dict[str, Any]:
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from web3 import HTTPProvider, Web3

    from requester.scored import ScoredTerms, post_scored_job
    from veritrain.data import Dataset
    from veritrain.dev.accounts import dev_account
    from veritrain.scored import assign
    from veritrain.scored.chain import ScoredChain
    from veritrain.scored.follow import GlobalModels
    from veritrain.scored.job import ScoredJobDoc
    from veritrain.scored.train import ScoredModel
    from veritrain.storage.ipfs import IpfsStorage

    windows = 2 if quick else 3
    w3 = bs.w3
    validators = VERIFIERS[:3]
    scored = scored_rounds(bs, validators)

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    y = y.astype(np.int64)
    spec = scored_spec(windows)
    storage = IpfsStorage(bs.ipfs)
    requester = ScoredChain(w3, scored.address, dev_account(REQUESTER))
    e18 = 10**18
    terms = ScoredTerms(reward_per_window=100 * e18, validator_fee_per_window=12 * e18,
                        worker_stake=20 * e18, validator_stake=30 * e18,
                        submit_window=PHASES["submit"], reveal_window=PHASES["reveal"],
                        score_commit_window=PHASES["commit"], score_reveal_window=PHASES["reveal_scores"])
    # the roles start first and wait for the job (starting nine Python processes takes longer
    # than a submit phase on a busy machine); each gets the key on-chain once it has joined
    base_env = bs.env()
    job_id = int(scored.functions.jobCount().call()) + 1
    argv = [bs.rpc, scored.address, str(job_id)]
    procs: dict[str, Proc] = {}
    worker_argv = [sys.executable, "-m", "worker.scored", *argv]
    for i in HONEST:
        env = {**base_env, "VERITRAIN_SCORED_ACCOUNT_KEY": dev_account(i).key.hex()}
        procs[f"honest-{i}"] = bs.spawn(f"honest-{i}", worker_argv, env)
    for kind, i in CHEATS.items():
        env = {**base_env, "VERITRAIN_SCORED_ACCOUNT_KEY": dev_account(i).key.hex(),
               "VERITRAIN_SCORED_STRATEGY": f"adversary.scored:{kind}",
               "VERITRAIN_SCORED_COPY_OF": dev_account(HONEST[0]).address}
        procs[kind] = bs.spawn(kind, worker_argv, env)
    for n, i in enumerate(validators):
        env = {**base_env, "VERITRAIN_SCORED_ACCOUNT_KEY": dev_account(i).key.hex()}
        if n == len(validators) - 1:
            env["VERITRAIN_SCORED_LIE"] = "adversary.scored:lying_validator"
        validator_argv = [sys.executable, "-m", "verifier.validator", *argv]
        procs[f"validator-{i}"] = bs.spawn(f"validator-{i}", validator_argv, env)
    ready = time.monotonic() + 300
    while time.monotonic() < ready and all(p.alive() for p in procs.values()):
        if all("waiting for scored job" in p.tail(50) for p in procs.values()):
            break
        time.sleep(1)
    posted = post_scored_job(requester, storage, spec, Dataset(x[:TRAIN], y[:TRAIN]), terms)
    assert posted.job_id == job_id, (posted.job_id, job_id)
    stop = threading.Event()  # the requester's key service, on a connection of its own
    desk = ScoredChain(Web3(HTTPProvider(bs.rpc, request_kwargs={"timeout": 60})), scored.address,
                       dev_account(REQUESTER))
    service = threading.Thread(target=desk.serve_keys, args=(job_id, posted.data_key), kwargs={"stop": stop},
                               daemon=True)
    service.start()
    t0 = time.perf_counter()
    limit = time.monotonic() + windows * sum(PHASES.values()) + 300
    while any(p.alive() for p in procs.values()) and time.monotonic() < limit:
        time.sleep(2)
    stop.set()
    service.join(30)
    failed = {n: p.tail() for n, p in procs.items() if p.alive() or p.popen.returncode != 0}
    if failed:
        raise RuntimeError(f"scored bench: processes failed or hung: {json.dumps(failed)[:4000]}")
    elapsed = time.perf_counter() - t0
    reports = {n: _report(p) for n, p in procs.items()}

    # ------------------------------------------------------------------ rewards
    paid: dict[str, int] = {}
    slashed: dict[str, int] = {}
    for w in range(windows):
        for s in requester.settled(posted.job_id, w):
            paid[s.worker] = paid.get(s.worker, 0) + s.payout
        for who, amount in requester.slashed(posted.job_id, w).items():
            slashed[who] = slashed.get(who, 0) + amount
    total = sum(paid.values()) or 1
    honest_paid = sum(paid.get(dev_account(i).address, 0) for i in HONEST)
    liar = dev_account(validators[-1]).address

    # ------------------------------------------------------------------ losses
    doc = ScoredJobDoc.get(storage, posted.doc_cid)
    xt, yt = torch.tensor(x[:TRAIN]), torch.tensor(y[:TRAIN])
    model = ScoredModel(spec, xt, yt)
    held = ScoredModel(spec, torch.tensor(x[TRAIN:]), torch.tensor(y[TRAIN:]))
    held_batches = [list(range(len(x) - TRAIN))]
    models = GlobalModels(requester, storage, doc, posted.data_key, posted.job_id, model)
    losses = [held.loss(models.start(w)[0], held_batches) for w in range(windows + 1)]
    steps = windows * doc.local_batches * doc.local_epochs
    central = model.train(model.initial_state(),
                          assign.eval_batches(spec.seed, 0, "central", TRAIN, spec.batch_size, steps))
    central_loss = held.loss(central, held_batches)

    # ------------------------------------------------------------------ gas and compute
    from eth_utils import keccak

    settled_topic = "0x" + keccak(text="WindowSettled(uint256,uint256,bytes32,uint256,uint256)").hex()
    gas, settles = 0, []
    for n in range(w3.eth.block_number + 1):
        res = w3.provider.make_request("eth_getBlockReceipts", [hex(n)])  # type: ignore[arg-type]
        for r in res.get("result") or []:
            if (r.get("to") or "").lower() == scored.address.lower():
                gas += int(r["gasUsed"], 16)
                if any(log["topics"][0] == settled_topic for log in r["logs"]):
                    settles.append(int(r["gasUsed"], 16))
    val_cpu = [reports[f"validator-{i}"]["score_seconds"] for i in validators]
    work_cpu = [reports[f"honest-{i}"]["train_seconds"] for i in HONEST]

    out: dict[str, Any] = {
        "scored_windows": windows,
        "scored_workers": {"honest": len(HONEST), **{k: 1 for k in CHEATS}},
        "scored_validators": len(validators),
        "scored_seconds": round(elapsed, 1),
        "scored_honest_reward_share": round(honest_paid / total, 4),
        "scored_lying_validator_slashed": slashed.get(liar, 0) > 0,
        "scored_lying_validator_slashed_tokens": slashed.get(liar, 0) / e18,
        "scored_slashed_tokens": {k: v / e18 for k, v in slashed.items()},
        "scored_global_loss_by_window": [round(v, 4) for v in losses],
        "scored_central_loss": round(central_loss, 4),
        "scored_loss_vs_central": round(losses[-1] / central_loss, 4),
        "scored_gas_per_window": gas // windows,
        "scored_settle_gas": (sum(settles) // max(1, len(settles))) if settles else None,
        "scored_validator_compute_ratio": round(_mean(val_cpu) / max(1e-9, _mean(work_cpu)), 3),
    }
    for kind, i in CHEATS.items():
        out[f"scored_reward_share_{kind}"] = round(paid.get(dev_account(i).address, 0) / total, 4)
    return out


def scored_rounds(bs: BenchStack, validators: tuple[int, ...]) -> Any:
    """The stack's ScoredRounds (deployed with the protocol, over its token and VerifierRegistry),
    with ``validators`` (dev account indexes) registered as verifiers; the contract (web3)."""
    from eth_keys import keys

    from veritrain.artifacts import artifact
    from veritrain.dev.accounts import dev_account
    from veritrain.dev.deploy import REGISTRY_MIN_STAKE

    token = bs.deployment.address("DevToken")
    scored = bs.w3.eth.contract(address=bs.deployment.address("ScoredRounds"),
                                abi=artifact("ScoredRounds")["abi"])
    market, registry = bs.c["JobMarket"], bs.c["VerifierRegistry"]
    for i in validators:
        # the registry's stake is held by the market: approve it, then register
        _approve(bs.w3, dev_account(i), token, market.address, REGISTRY_MIN_STAKE * 2)
        _send(bs.w3, dev_account(i), registry.functions.register(
            keys.PrivateKey(dev_account(i).key).public_key.to_bytes(), REGISTRY_MIN_STAKE * 2))
    return scored


def _mean(xs: list[float]) -> float:
    return sum(xs) / max(1, len(xs))


def _approve(w3: Any, acct: Any, token: str, spender: str, amount: int) -> None:
    from veritrain.chain.facades import IERC20_ABI

    _send(w3, acct, w3.eth.contract(address=token, abi=IERC20_ABI).functions.approve(spender, amount))


def _send(w3: Any, acct: Any, call: Any) -> None:
    nonce = w3.eth.get_transaction_count(acct.address, "pending")
    tx = call.build_transaction({"from": acct.address, "nonce": nonce})
    h = w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
    if w3.eth.wait_for_transaction_receipt(h, poll_latency=0.05)["status"] != 1:
        raise RuntimeError(f"bench setup transaction reverted: {call.fn_name}")


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
