"""ScoredJobs (veritrain/scored/jobs.py), the scored-job side of `worker run` and `verifier run`,
over a fake ScoredRounds: which jobs are taken, that each is taken once across restarts, and
what happens when a job's thread fails. The real contract and processes run in
tests/integration/test_scored_roles.py."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from veritrain.journal import Journal
from veritrain.scored import jobs as jobs_mod
from veritrain.scored.chain import Phase
from veritrain.scored.jobs import ATTEMPTS, ScoredJobs


class FakeScored:
    """jobCount, getParams and phaseOf of a ScoredRounds holding ``params`` (job id -> params)."""

    def __init__(self, params: dict[int, dict[str, Any]], phases: dict[int, Phase]) -> None:
        self._params, self.phases = params, phases

    def view(self, fn: str, *args: Any) -> Any:
        assert fn == "jobCount" and not args
        return len(self._params)

    def params(self, job: int) -> dict[str, Any]:
        return self._params[job]

    def phase(self, job: int, window: int) -> Phase:
        return self.phases[job]


def _params(stake: int = 10, windows: int = 2) -> dict[str, Any]:
    return {"windows": windows, "workerStake": stake, "specCid": "bafy", "maxValidators": 4}


def _jobs(tmp_path: Path, chain: FakeScored, run: Any, said: list[str],
          max_stake: int | None = None) -> ScoredJobs:
    def accept(job: int, params: dict[str, Any], chain: Any, connect: Any) -> str | None:
        if max_stake is not None and params["workerStake"] > max_stake:
            return f"worker stake {params['workerStake']} above max_stake {max_stake}"
        return None

    return ScoredJobs(chain, lambda: (chain, None), Journal(tmp_path / "journal.sqlite"), run=run,
                      accept=accept, last_phase=Phase.SUBMIT, say=said.append)


def _wait(jobs: ScoredJobs) -> None:
    for t in list(jobs.threads.values()):
        t.join(10)


@pytest.fixture(autouse=True)
def _no_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs_mod, "LOOK_EVERY", 0.0)


def test_takes_open_acceptable_jobs_once_and_says_why_it_skips_the_others(tmp_path: Path) -> None:
    chain = FakeScored({1: _params(), 2: _params(stake=99), 3: _params()},
                       {1: Phase.SUBMIT, 2: Phase.SUBMIT, 3: Phase.SCORE_COMMIT})
    ran: list[int] = []
    said: list[str] = []
    jobs = _jobs(tmp_path, chain, lambda c, s, job, say: ran.append(job) or {"earned": 5}, said, max_stake=50)
    assert jobs.tick() == [1]
    _wait(jobs)
    assert ran == [1] and jobs.reports == {1: {"earned": 5}}
    assert any("job 2: skipped (worker stake 99 above max_stake 50)" in m for m in said)
    assert any("job 3: skipped (its last window is past" in m for m in said)
    # later passes look only at jobs posted since: nothing is taken twice
    assert jobs.tick() == [] and ran == [1]
    chain._params[4] = _params()
    chain.phases[4] = Phase.PENDING
    assert jobs.tick() == [4]
    _wait(jobs)
    assert ran == [1, 4]


def test_a_restarted_role_resumes_the_jobs_it_had_taken_and_takes_no_new_one_twice(tmp_path: Path) -> None:
    chain = FakeScored({1: _params(), 2: _params()}, {1: Phase.SUBMIT, 2: Phase.SUBMIT})
    hold = threading.Event()
    ran: list[int] = []

    def run(c: Any, s: Any, job: int, say: Any) -> dict[str, Any]:
        ran.append(job)
        hold.wait(10) if job == 2 else None
        return {}

    first = _jobs(tmp_path, chain, run, [])
    assert first.tick() == [1, 2]
    first.threads[1].join(10)  # job 1 ends; job 2 is still running when the role dies
    assert first.journal.value(jobs_mod.TAKEN) == [2]

    again = _jobs(tmp_path, chain, run, [])  # a new process on the same journal
    assert again.tick() == [2]  # resumed; job 1 (done) and the cursor are remembered
    hold.set()
    _wait(again)
    _wait(first)
    assert sorted(ran) == [1, 2, 2] and again.journal.value(jobs_mod.TAKEN) == []


def test_a_failing_job_is_retried_then_given_up_with_its_reason(tmp_path: Path) -> None:
    chain = FakeScored({1: _params()}, {1: Phase.SUBMIT})
    calls: list[int] = []
    said: list[str] = []

    def run(c: Any, s: Any, job: int, say: Any) -> dict[str, Any]:
        calls.append(job)
        raise OSError("the IPFS node is gone")

    jobs = _jobs(tmp_path, chain, run, said)
    for _ in range(ATTEMPTS + 2):
        jobs.tick()
        _wait(jobs)
    assert calls == [1] * ATTEMPTS
    assert jobs.reports == {1: {"error": "the IPFS node is gone"}}
    assert any(f"given up after {ATTEMPTS} attempts: the IPFS node is gone" in m for m in said)
    assert jobs.journal.value(jobs_mod.TAKEN) == []
