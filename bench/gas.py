"""Gas of every contract function on a representative scenario, on a throwaway Anvil.

``python -m bench.gas [--out PATH]`` (``make gas``) writes ``.veritrain/bench/gas.json``; ``python -m
bench`` runs it among the other benchmarks.

``run(quick)`` starts its own Anvil on a free port (veritrain.dev.stack, a temporary home),
deploys the protocol, plays the scenario below and always stops the chain. It returns
``{"gas": {...}}``: ``functions`` (gas used per ``Contract.function``, the mean when called
several times), and the two totals the issue sets targets for:

- ``task_happy_path``: claim, deliverKey, commit, reveal, finalize, withdraw of one task plus
  that task's share of postJob (the job has ``TASKS`` tasks, redundancy 1);
- ``dispute_total``: a challenge with the challenger's Merkle proofs into a root over 1,025
  leaves (1,024 checkpoint segments; ``challengeWithProof``: the verifier replayed from the
  worker's manifest, so it holds the leaves), the committee draw, three referees' commit and
  reveal (each its own transaction, as the verifier role sends them), settlement;
- ``wrong_start_slash`` (reported, no target): ``slashWrongStart`` of a worker whose leaf 0 is
  not its task's bound start (two proofs over 1,025 and 8 leaves);
- ``scored_window_total`` (reported, no target): one window of a scored job with three workers
  and two validators, every ScoredRounds transaction of it (``scored_window``);
- ``dispute_answered_total`` (reported, no target): the same dispute opened without proofs
  (``challenge``, data availability is the worker's burden) and the worker's ``answer`` with
  its two leaves and their proofs. ``DisputeResolver.answer`` is what an honest worker pays
  to meet a challenge.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Annotated, Any

import typer
from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3.logs import DISCARD

from veritrain.chain.receipts import commitment

TASKS = 8
CHECKPOINTS = 1025  # n + 1 leaves for n = 1,024 segments
TARGETS = {"task_happy_path": 400_000, "dispute_total": 700_000}
#: Reported beside the targets: a dispute in which the challenger could not prove the worker's
#: leaves (data availability: the worker answers on-chain); no target of its own.
E18 = 10**18


def _leaf(i: int, h: bytes) -> bytes:
    return keccak(abi_encode(["uint256", "bytes32"], [i, h]))


def _tree(hashes: list[bytes]) -> list[list[bytes]]:
    layers = [[_leaf(i, h) for i, h in enumerate(hashes)]]
    while len(layers[-1]) > 1:
        cur = layers[-1]
        nxt = [keccak(min(a, b) + max(a, b)) for a, b in zip(cur[::2], cur[1::2], strict=False)]
        if len(cur) % 2:
            nxt.append(cur[-1])
        layers.append(nxt)
    return layers


def _proof(layers: list[list[bytes]], i: int) -> list[bytes]:
    out = []
    for layer in layers[:-1]:
        if i ^ 1 < len(layer):
            out.append(layer[i ^ 1])
        i //= 2
    return out


def _pubkey(account: Any) -> bytes:
    from eth_keys import keys

    return bytes(keys.PrivateKey(account.key).public_key.to_bytes())


class _Runner:
    """Locally signed transactions with tracked nonces; records gas per function."""

    def __init__(self, w3: Any) -> None:
        self.w3 = w3
        self.nonces: dict[str, int] = {}
        self.gas: dict[str, list[int]] = defaultdict(list)
        self.chain_id = w3.eth.chain_id

    def send(self, account: Any, contract_name: str, call: Any) -> Any:
        addr = account.address
        if addr not in self.nonces:
            self.nonces[addr] = self.w3.eth.get_transaction_count(addr, "pending")
        tx = call.build_transaction(
            {
                "from": addr,
                "nonce": self.nonces[addr],
                "gas": 5_000_000,
                "chainId": self.chain_id,
                "maxFeePerGas": 2 * 10**9,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        self.nonces[addr] += 1
        h = self.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(h, poll_latency=0.005)
        if receipt["status"] != 1:
            call.call({"from": addr})  # raises the contract's error
            raise RuntimeError(f"{contract_name}.{call.fn_name} reverted")
        self.gas[f"{contract_name}.{call.fn_name}"].append(int(receipt["gasUsed"]))
        return receipt

    def warp(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])
        self.w3.provider.make_request("evm_mine", [])


def _job(spec: str, **kw: int) -> tuple[Any, ...]:
    p: dict[str, Any] = {
        "specCid": spec,
        "shardsRoot": b"\x11" * 32,
        "taskCount": TASKS,
        "redundancy": 1,
        "checkpointCount": CHECKPOINTS,
        "rewardPerTask": 50 * E18,
        "stakePerTask": 40 * E18,
        "griefingFee": 5 * E18,
        "refereeFeePool": 8 * E18,
        "keyWindow": 3600,
        "submissionWindow": 86_400,
        "revealWindow": 3600,
        "challengeWindow": 86_400,
        "startsRoot": b"\x22" * 32,
        "startsKeyed": False,
    }
    p.update(kw)
    return tuple(p.values())


def scenario(w3: Any) -> dict[str, Any]:
    """Deploy and play the scenario on ``w3``; the gas figures."""
    from veritrain.artifacts import artifact
    from veritrain.dev.accounts import dev_account
    from veritrain.dev.deploy import REGISTRY_MIN_STAKE, RESOLVER_PARAMS, deploy_local

    RESOLVER_COMMITTEE = RESOLVER_PARAMS["committeeSize"]  # noqa: N806

    owner = dev_account(0)
    dep = deploy_local(w3, owner)
    c = {
        n: w3.eth.contract(address=dep.address(n), abi=artifact(n)["abi"])
        for n in ("DevToken", "JobMarket", "VerifierRegistry", "DisputeResolver")
    }
    token, market, registry, resolver = (c[n] for n in c)
    run = _Runner(w3)
    requester, workers = dev_account(1), [dev_account(i) for i in (2, 3, 4, 5)]
    verifiers = [dev_account(i) for i in range(6, 12)]
    for i in range(1, 14):
        run.send(dev_account(i), "DevToken", token.functions.approve(market.address, 2**256 - 1))
    for v in verifiers:
        run.send(v, "VerifierRegistry", registry.functions.register(_pubkey(v), REGISTRY_MIN_STAKE))

    cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    envelope = b"\x04" + b"\xee" * 128  # eciespy: 65-byte ephemeral key + nonce + tag + 32-byte key
    honest = [keccak(b"h" + i.to_bytes(4, "big")) for i in range(CHECKPOINTS)]
    starts = _tree([honest[0]] * TASKS)  # every task bound to start at honest[0]
    r = run.send(requester, "JobMarket", market.functions.postJob(_job(cid, startsRoot=starts[-1][0])))
    job = market.events.JobPosted().process_receipt(r, errors=DISCARD)[0]["args"]["jobId"]
    post_share = r["gasUsed"] // TASKS

    cheat = honest[:513] + [keccak(b"x" + i.to_bytes(4, "big")) for i in range(513, CHECKPOINTS)]
    trees = {"honest": _tree(honest), "cheat": _tree(cheat)}
    salt = b"\x05" * 32

    def submit(worker: Any, task: int, layers: list[list[bytes]], reveal: bool = True) -> None:
        root = layers[-1][0]
        run.send(worker, "JobMarket", market.functions.claim(task, _pubkey(worker), bytes(32)))
        run.send(requester, "JobMarket", market.functions.deliverKey(task, worker.address, envelope))
        run.send(worker, "JobMarket", market.functions.commit(task, commitment(root, worker.address, salt)))
        if reveal:
            run.send(worker, "JobMarket", market.functions.reveal(task, root, salt, cid))

    # task 0: the happy path
    t0 = (job << 32) | 0
    submit(workers[0], t0, trees["honest"])
    # task 1: a cheat diverging after checkpoint 512, challenged at j = 512
    t1 = (job << 32) | 1
    submit(workers[1], t1, trees["cheat"])
    j = 512
    seg = (j, cheat[j], _proof(trees["cheat"], j), cheat[j + 1], _proof(trees["cheat"], j + 1))
    by_addr: dict[str, Any] = {v.address: v for v in verifiers}

    def challenge_to_commits(task_id: int, answered: bool) -> tuple[int, list[str]]:
        """Challenge segment j of ``task_id`` (with the challenger's proofs, or without and
        the worker answering), draw, deliver keys, commit every vote."""
        # j is even, so leaves j and j + 1 are siblings and one proof shows both (proofNext
        # empty), as verifier.challenge and the worker's answer send it
        shared = (*seg[:4], [])
        if answered:
            # data availability: the challenge names j, the worker answers with its leaves
            call = resolver.functions.challenge(task_id, workers[1].address, j, honest[j + 1])
        else:
            call = resolver.functions.challengeWithProof(task_id, workers[1].address, shared, honest[j + 1])
        r = run.send(verifiers[0], "DisputeResolver", call)
        d = resolver.events.DisputeOpened().process_receipt(r, errors=DISCARD)[0]["args"]["disputeId"]
        if answered:
            run.send(workers[1], "DisputeResolver", resolver.functions.answer(d, shared))
        r = run.send(dev_account(13), "DisputeResolver", resolver.functions.drawCommittee(d))
        drawn = resolver.events.CommitteeDrawn().process_receipt(r, errors=DISCARD)[0]["args"]
        refs = list(drawn["referees"])
        for ref in refs:
            run.send(requester, "DisputeResolver", resolver.functions.deliverRefereeKey(d, ref, envelope))
        for seat, ref in enumerate(refs):
            run.send(by_addr[ref], "DisputeResolver",
                     resolver.functions.commitVote(d, seat, commitment(honest[j + 1], ref, salt)))
        return d, refs

    def dispute(task_id: int, answered: bool) -> dict[str, list[int]]:
        """One whole dispute; the gas of each resolver call it made (key deliveries aside)."""
        before = {k: len(v) for k, v in run.gas.items()}
        did, referees = challenge_to_commits(task_id, answered)
        for seat, ref in enumerate(referees):
            reveal = resolver.functions.revealVote(did, seat, honest[j + 1], salt)
            run.send(by_addr[ref], "DisputeResolver", reveal)
        run.send(dev_account(13), "DisputeResolver", resolver.functions.settle(did))
        calls = {k: v[before.get(k, 0):] for k, v in run.gas.items() if k.startswith("DisputeResolver.")}
        return {k: v for k, v in calls.items() if v and not k.endswith("deliverRefereeKey")}

    dispute_gas = dispute(t1, answered=False)
    t4 = (job << 32) | 4
    submit(workers[1], t4, trees["cheat"])
    answered_gas = dispute(t4, answered=True)

    # task 5: a worker that started elsewhere, slashed by a proof alone (no committee)
    t5 = (job << 32) | 5
    wrong = [keccak(b"elsewhere")] + honest[1:]
    trees["wrong"] = _tree(wrong)
    submit(workers[2], t5, trees["wrong"])
    run.send(verifiers[2], "JobMarket", market.functions.slashWrongStart(
        t5, workers[2].address, wrong[0], _proof(trees["wrong"], 0), honest[0], _proof(starts, 5)))

    run.warp(86_401)
    run.send(dev_account(13), "JobMarket", market.functions.finalize(t0, workers[0].address))
    run.send(workers[0], "JobMarket", market.functions.withdraw())
    happy_keys = ("claim", "deliverKey", "commit", "reveal", "finalize", "withdraw")
    happy = {k: run.gas[f"JobMarket.{k}"][0] for k in happy_keys}

    # the remaining functions, once each
    t2, t3 = (job << 32) | 2, (job << 32) | 3
    run.send(workers[2], "JobMarket", market.functions.claim(t2, _pubkey(workers[2]), bytes(32)))
    run.send(workers[3], "JobMarket", market.functions.claim(t3, _pubkey(workers[3]), bytes(32)))
    run.send(requester, "JobMarket", market.functions.deliverKey(t3, workers[3].address, envelope))
    run.warp(86_400 + 3601)
    run.send(dev_account(13), "JobMarket", market.functions.abandon(t2, workers[2].address))
    run.send(dev_account(13), "JobMarket", market.functions.timeout(t3, workers[3].address))
    run.send(requester, "JobMarket", market.functions.cancelJob(job))
    run.send(dev_account(13), "JobMarket", market.functions.closeJob(job))
    job2 = _job(cid, taskCount=1, redundancy=2)
    r = run.send(requester, "JobMarket", market.functions.postJob(job2))
    job2_id = market.events.JobPosted().process_receipt(r, errors=DISCARD)[0]["args"]["jobId"]
    t = (job2_id << 32) | 0
    # a sampling verifier asks for the data key of an open job; the requester delivers it
    run.send(verifiers[1], "JobMarket", market.functions.requestVerifierKey(job2_id))
    deliver = market.functions.deliverVerifierKey(job2_id, verifiers[1].address, envelope)
    run.send(requester, "JobMarket", deliver)
    submit(workers[0], t, trees["honest"], reveal=False)
    submit(workers[1], t, trees["cheat"], reveal=False)
    for w, name in ((workers[0], "honest"), (workers[1], "cheat")):
        run.send(w, "JobMarket", market.functions.reveal(t, trees[name][-1][0], salt, cid))
    seg_b = (j, cheat[j], _proof(trees["cheat"], j), cheat[j + 1], _proof(trees["cheat"], j + 1))
    seg_a = (j, honest[j], _proof(trees["honest"], j), honest[j + 1], _proof(trees["honest"], j + 1))
    run.send(
        dev_account(13),
        "DisputeResolver",
        resolver.functions.disputeWorkers(t, workers[0].address, seg_a, workers[1].address, seg_b),
    )
    scored = scored_window(w3, run, dep, requester, workers[:3], verifiers[:2])
    forced_parts = forced_round(w3, run, token.address, requester, workers[0], verifiers[:1])
    run.send(verifiers[5], "VerifierRegistry", registry.functions.deregister())
    run.warp(7 * 86_400 + 1)
    run.send(verifiers[5], "VerifierRegistry", registry.functions.withdrawStake())
    run.send(owner, "JobMarket", market.functions.pause())
    run.send(owner, "JobMarket", market.functions.unpause())

    balance = token.functions.balanceOf(market.address).call()
    assert balance == market.functions.liabilities().call(), "money invariant broken in the gas scenario"
    totals = {
        "task_happy_path": post_share + sum(happy.values()),
        "dispute_total": sum(sum(v) for v in dispute_gas.values()),
        "dispute_answered_total": sum(sum(v) for v in answered_gas.values()),
        "wrong_start_slash": run.gas["JobMarket.slashWrongStart"][0],
        "scored_window_total": sum(scored.values()),
        # a forced error caught: the challenge and the worker's answerForced (no committee)
        "forced_round_total": forced_parts["challenge"] + forced_parts["answerForced"],
        # what forced errors add to every redundancy-1 task: the seed kept by claim, the seal
        # made by deliverKey (the jackpot fee in postJob is one more storage write per job)
        "forced_per_task_overhead": (forced_parts["claim"] - happy["claim"])
                                    + (forced_parts["deliverKey"] - happy["deliverKey"]),
    }
    return {
        "functions": {k: round(mean(v)) for k, v in sorted(run.gas.items())
                      if not k.startswith("DevToken") and "(forced)" not in k},
        "task_happy_path_parts": {"postJob_share": post_share, **happy},
        "dispute_parts": {k: v for k, v in dispute_gas.items()},
        "dispute_answered_parts": {k: v for k, v in answered_gas.items()},
        "scored_window_parts": scored,
        "forced_round_parts": forced_parts,
        **totals,
        "targets": TARGETS,
        "within_targets": all(totals[k] <= TARGETS[k] for k in TARGETS),
        "scenario": {"tasks_per_job": TASKS, "checkpoints": CHECKPOINTS, "committee": RESOLVER_COMMITTEE},
    }


def scored_window(w3: Any, run: _Runner, dep: Any, requester: Any, workers: list[Any],
                  validators: list[Any]) -> dict[str, int]:
    """One window of a scored job (ScoredRounds), every role's transactions: the job posted, the
    workers and validators joined and given the key, each worker's update committed and
    revealed, each validator's scores committed and revealed, the window settled, one worker
    leaving and withdrawing. Gas per function, summed over the window's calls."""
    from veritrain.artifacts import artifact
    from veritrain.scored.commitments import score_commitment, update_commitment

    c = w3.eth.contract(address=dep.address("ScoredRounds"), abi=artifact("ScoredRounds")["abi"])
    token = w3.eth.contract(address=dep.address("DevToken"), abi=artifact("DevToken")["abi"])
    phase = 100
    model = keccak(b"initial model")
    params = ("bafkreiscoredjob", model, 1, 8, 4, 2000, 5000, 100 * E18, 12 * E18, 20 * E18, 30 * E18, 10,
              phase, phase, phase, phase)
    before = {k: len(v) for k, v in run.gas.items()}
    for a in (requester, *workers, *validators):
        run.send(a, "DevToken", token.functions.approve(c.address, 2**256 - 1))
    r = run.send(requester, "ScoredRounds", c.functions.postJob(params))
    job = c.events.JobPosted().process_receipt(r, errors=DISCARD)[0]["args"]["jobId"]
    for w in workers:
        run.send(w, "ScoredRounds", c.functions.joinAsWorker(job, _pubkey(w)))
    for v in validators:
        run.send(v, "ScoredRounds", c.functions.joinAsValidator(job))
    for a in (*workers, *validators):
        run.send(requester, "ScoredRounds", c.functions.deliverKey(job, a.address, b"\x01" + b"\xee" * 93))
    salt = b"\x07" * 32
    hashes = [keccak(b"update" + bytes([i])) for i in range(len(workers))]
    for w, h in zip(workers, hashes, strict=True):
        run.send(w, "ScoredRounds", c.functions.submit(job, 0, update_commitment(h, w.address, salt)))
    run.warp(phase)
    for i, (w, h) in enumerate(zip(workers, hashes, strict=True)):
        run.send(w, "ScoredRounds", c.functions.revealUpdate(job, 0, i, h, salt, f"bafyupdate{i}"))
    run.warp(phase)
    scores = [300, 200, 100]
    for v in validators:
        commit = score_commitment(job, 0, scores, 0, model, v.address, salt)
        run.send(v, "ScoredRounds", c.functions.commitScores(job, 0, commit))
    run.warp(phase)
    for v in validators:
        run.send(v, "ScoredRounds", c.functions.revealScores(job, 0, scores, 0, model, salt))
    run.warp(phase)
    run.send(requester, "ScoredRounds", c.functions.settle(job, 0))
    run.send(workers[0], "ScoredRounds", c.functions.leave(job))
    run.send(workers[0], "ScoredRounds", c.functions.withdraw())
    assert token.functions.balanceOf(c.address).call() == c.functions.liabilities().call(), (
        "money invariant broken in the scored window")
    return {k: sum(v[before.get(k, 0):]) for k, v in run.gas.items()
            if k.startswith("ScoredRounds.") and len(v) > before.get(k, 0)}


def forced_round(w3: Any, run: _Runner, token: str, requester: Any, worker: Any,
                 verifiers: list[Any]) -> dict[str, int]:
    """A forced error caught, on a protocol deployed with forced errors on (every sealed claim
    drawn, a 2 % jackpot fee): gas of the seeded claim, the sealing key delivery, the
    challenge and answerForced (docs/spec/forced.md)."""
    from veritrain import forced
    from veritrain.artifacts import artifact
    from veritrain.dev.accounts import dev_account
    from veritrain.dev.deploy import REGISTRY_MIN_STAKE, deploy_protocol

    protocol = deploy_protocol(w3, dev_account(0), token,
                               resolver_params={"forcedErrorBps": 10_000, "jackpotFeeBps": 200})
    market, resolver = protocol["JobMarket"], protocol["DisputeResolver"]
    erc20 = w3.eth.contract(address=token, abi=artifact("DevToken")["abi"])
    for who in (requester, worker, *verifiers):
        run.send(who, "DevToken", erc20.functions.approve(market.address, 2**256 - 1))
    for v in verifiers:
        run.send(v, "VerifierRegistry(forced)", protocol["VerifierRegistry"].functions.register(
            _pubkey(v), REGISTRY_MIN_STAKE))
    cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    honest = [keccak(b"h" + i.to_bytes(4, "big")) for i in range(CHECKPOINTS)]
    layers = _tree(honest)
    r = run.send(requester, "JobMarket(forced)", market.functions.postJob(_job(cid, taskCount=1)))
    job = market.events.JobPosted().process_receipt(r, errors=DISCARD)[0]["args"]["jobId"]
    t, secret, salt = job << 32, b"\x42" * 32, b"\x05" * 32
    seeded = market.functions.claim(t, _pubkey(worker), forced.seed_hash(secret))
    r = run.send(worker, "JobMarket(forced)", seeded)
    snap = bytes(w3.eth.get_block(r["blockNumber"])["hash"])
    envelope = b"\x04" + b"\xee" * 128
    run.send(requester, "JobMarket(forced)", market.functions.deliverKey(t, worker.address, envelope))
    root = layers[-1][0]
    run.send(worker, "JobMarket(forced)", market.functions.commit(t, commitment(root, worker.address, salt)))
    run.send(worker, "JobMarket(forced)", market.functions.reveal(t, root, salt, cid))
    sel = forced.select(secret, snap, bps=10_000, redundancy=1, checkpoints=CHECKPOINTS - 1)
    assert sel.selected and sel.segment is not None
    r = run.send(verifiers[0], "DisputeResolver(forced)",
                 resolver.functions.challenge(t, worker.address, sel.segment, b"\x77" * 32))
    dispute = resolver.events.DisputeOpened().process_receipt(r, errors=DISCARD)[0]["args"]["disputeId"]
    run.send(worker, "DisputeResolver(forced)", resolver.functions.answerForced(dispute, secret, snap))
    assert erc20.functions.balanceOf(market.address).call() == market.functions.liabilities().call()
    g = run.gas
    return {"postJob": g["JobMarket(forced).postJob"][-1], "claim": g["JobMarket(forced).claim"][-1],
            "deliverKey": g["JobMarket(forced).deliverKey"][-1],
            "challenge": g["DisputeResolver(forced).challenge"][-1],
            "answerForced": g["DisputeResolver(forced).answerForced"][-1]}


def run(quick: bool = False) -> dict[str, Any]:
    """Start a throwaway Anvil, play the scenario, stop the chain; ``{"gas": {...}}``."""
    from web3 import HTTPProvider, Web3

    from veritrain.dev import procs
    from veritrain.dev.stack import Stack
    from veritrain.settings import StackSettings

    with tempfile.TemporaryDirectory(prefix="veritrain-gas-") as home:
        settings = StackSettings(
            home=Path(home),
            anvil_port=procs.free_port(),
            ipfs_api_port=procs.free_port(),
            anvil_state_interval=0,
        )
        stack = Stack(settings)
        try:
            state = stack.up(services=("anvil",))
            w3 = Web3(HTTPProvider(state.services["anvil"].url, request_kwargs={"timeout": 30}))
            return {"gas": scenario(w3)}
        finally:
            stack.down()


DEFAULT_OUT = Path(".veritrain/bench/gas.json")
app = typer.Typer(name="bench.gas", add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    out: Annotated[Path, typer.Option("--out", help="Where to write the figures.")] = DEFAULT_OUT,
) -> None:
    """Gas of every contract function, with the two totals against their targets."""
    from bench.results import machine

    gas = run(quick=False)["gas"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**gas, "machine": machine()}, indent=2, sort_keys=True) + "\n")
    width = max(len(k) for k in gas["functions"])
    for name, used in gas["functions"].items():
        typer.echo(f"  {name:<{width}}  {used:>9,}")
    for key, target in gas["targets"].items():
        verdict = "ok" if gas[key] <= target else "OVER TARGET"
        typer.echo(f"{key}: {gas[key]:,} (target {target:,}) {verdict}")
    typer.echo(f"wrote {out}")


if __name__ == "__main__":
    app()
