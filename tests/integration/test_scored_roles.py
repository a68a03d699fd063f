"""Scored mode's roles as a person runs them (issue 21), on the real stack: an honest worker
that is just ``veritrain worker run`` (it finds the scored job itself, beside replay work),
another through ``veritrain worker scored JOB`` (keystore, password, settings from the
environment), a copier (the adversary's strategy through ``python -m worker.scored``) and a
validator that is just ``veritrain verifier run``, each its own process, for one window of a job
posted with the SDK's ``post_scored_job``. Every role joins, asks for the job's key on-chain and
gets it from the requester's ``veritrain job serve`` (which found the job's key in the
requester's home, sealed there by ``post_scored_job``), wrapped to its own public key.

The attack checked: a worker that submits another's update as its own. It must be paid nothing
and slashed, while both honest workers are paid and the contract's balance still covers what
it owes. ``make bench`` runs the full version (3 windows, 8 workers, a lying validator).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from bench.realstack import VERIFIERS, BenchStack, Proc
from bench.scored import scored_rounds, scored_spec

HONEST, COPIER = (2, 3), 4
VALIDATOR = VERIFIERS[0]
PHASES = {"submit": 45, "reveal": 15, "commit": 30, "reveal_scores": 15}


def _report(proc: Proc) -> dict[str, Any]:
    for line in reversed(proc.log.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise AssertionError(f"{proc.name} printed no report:\n{proc.tail()}")


def test_scored_roles_as_commands_pay_the_honest_and_slash_a_copier(tmp_path: Path) -> None:
    import numpy as np
    from sklearn.datasets import load_digits

    from requester.scored import ScoredTerms, post_scored_job
    from veritrain.chain.facades import IERC20_ABI
    from veritrain.data import Dataset
    from veritrain.dev.accounts import dev_account
    from veritrain.scored.chain import ScoredChain
    from veritrain.storage.ipfs import IpfsStorage

    with BenchStack(tmp_path) as bs:
        scored = scored_rounds(bs, (VALIDATOR,))
        job_id = int(scored.functions.jobCount().call()) + 1
        # the workers' own commands, their keys from encrypted keystores: `worker run` finds the
        # job itself; `worker scored JOB` finds ScoredRounds in the network's deployment record
        cli = [sys.executable, "-m", "veritrain.cli"]
        procs: dict[str, Proc] = {
            "honest-run": bs.spawn("honest-run", [*cli, "worker", "run"],
                                   bs.worker_env(HONEST[0], tmp_path / "worker-run")),
            "honest-scored": bs.spawn("honest-scored", [*cli, "worker", "scored", str(job_id)],
                                      bs.worker_env(HONEST[1], tmp_path / "worker-scored")),
        }
        copier_env = bs.env(VERITRAIN_SCORED_ACCOUNT_KEY=dev_account(COPIER).key.hex(),
                            VERITRAIN_SCORED_STRATEGY="adversary.scored:copier",
                            VERITRAIN_SCORED_COPY_OF=dev_account(HONEST[0]).address)
        procs["copier"] = bs.spawn("copier", [sys.executable, "-m", "worker.scored", bs.rpc, scored.address,
                                              str(job_id)], copier_env)
        procs["validator"] = bs.start_verifier(VALIDATOR)  # `verifier run` finds and validates the job
        daemons = ("honest-run", "validator")
        ready = time.monotonic() + 240
        while not all("waiting for scored job" in p.tail(50) for n, p in procs.items() if n not in daemons):
            dead = {n: p.tail() for n, p in procs.items() if not p.alive()}
            assert not dead and time.monotonic() < ready, f"a role did not start: {dead}"
            time.sleep(1)

        x, y = load_digits(return_X_y=True)
        requester = ScoredChain(bs.w3, scored.address, dev_account(1))
        e18 = 10**18
        terms = ScoredTerms(reward_per_window=90 * e18, validator_fee_per_window=9 * e18,
                            worker_stake=20 * e18, validator_stake=30 * e18,
                            submit_window=PHASES["submit"], reveal_window=PHASES["reveal"],
                            score_commit_window=PHASES["commit"], score_reveal_window=PHASES["reveal_scores"])
        data = Dataset((x[:600] / 16.0).astype(np.float32), y[:600].astype(np.int64))
        home = tmp_path / "requester"
        posted = post_scored_job(requester, IpfsStorage(bs.ipfs), scored_spec(1), data, terms, home=home)
        assert posted.job_id == job_id
        # the requester's key service answers each role's on-chain key request
        procs["serve"] = bs.spawn("serve", [*cli, "job", "serve", "--dev-account", "1", "--home", str(home),
                                            "--interval", "0.5"], bs.env())
        running = (*daemons, "serve")  # these run until stopped

        limit = time.monotonic() + sum(PHASES.values()) + 240
        done = f"scored job {job_id}: done"
        while any(p.alive() for n, p in procs.items() if n not in running) or not all(
                done in procs[n].log.read_text(errors="replace") for n in daemons):
            dead = {n: p.tail() for n, p in procs.items() if n in running and not p.alive()}
            assert not dead and time.monotonic() < limit, dead or {n: p.tail(5) for n, p in procs.items()}
            time.sleep(2)
        failed = {n: p.tail() for n, p in procs.items() if n not in running and p.popen.returncode != 0}
        assert not failed, failed
        reports = {n: _report(p) for n, p in procs.items() if n not in running}
        earned = {n: int(re.findall(rf"{done}, earned (\d+)", procs[n].log.read_text(errors="replace"))[-1])
                  for n in daemons}

        paid = {s.worker.lower(): s.payout for s in requester.settled(job_id, 0)}
        slashed = {k.lower(): v for k, v in requester.slashed(job_id, 0).items()}
        honest = [dev_account(i).address.lower() for i in HONEST]
        copier = dev_account(COPIER).address.lower()
        assert all(paid.get(a, 0) > 0 for a in honest), paid
        assert paid.get(copier, 0) == 0 and slashed.get(copier, 0) > 0, (paid, slashed)
        assert reports["honest-scored"]["submitted"] == [0]
        assert int(reports["honest-scored"]["earned"]) > 0 and earned["honest-run"] > 0  # withdrawn
        vote = scored.events.ScoresRevealed().get_logs(
            from_block=0, argument_filters={"jobId": job_id, "validator": dev_account(VALIDATOR).address})
        assert len(vote) == 1 and len(vote[0]["args"]["scores"]) == 3  # it scored all three
        assert vote[0]["args"]["copiers"] != 0  # and flagged the copy
        assert earned["validator"] > 0  # its fee
        # each role got the key only wrapped to its own public key, on-chain
        delivered = scored.events.KeyDelivered().get_logs(from_block=0, argument_filters={"jobId": job_id})
        served = re.findall(rf"scored job {job_id}: data key for (0x[0-9a-fA-F]+)",
                            procs["serve"].log.read_text(errors="replace"))
        assert len(served) == len(delivered) == 4
        assert {e["args"]["account"].lower() for e in delivered} == {*honest, copier,
                                                                      dev_account(VALIDATOR).address.lower()}
        assert all(posted.data_key not in bytes(e["args"]["envelope"]) for e in delivered)
        token = bs.w3.eth.contract(address=bs.deployment.address("DevToken"), abi=IERC20_ABI)
        assert token.functions.balanceOf(scored.address).call() >= scored.functions.liabilities().call()
