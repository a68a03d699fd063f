"""The scored jobs a long-running role takes part in beside its replay work (docs/scored.md):
``veritrain worker run`` as a worker (worker/scored_jobs.py), ``veritrain verifier run`` as a
validator (verifier/scored_jobs.py).

Each pass, :meth:`ScoredJobs.tick` reads ``ScoredRounds.jobCount`` (one call, at most every
:data:`LOOK_EVERY` seconds) and looks only at the jobs posted since the last look (a cursor in the
role's journal). It takes a job whose last window has not passed the phase the role acts in and
that the role's ``accept`` lets through, and runs it in a thread of its own (the role's ``run``:
join with the stake, wait for the key on-chain, every window, leave and withdraw). Each thread
sends through a ChainClient of its own that shares the role's nonce files, so the role's main
loop and its scored jobs never race for a nonce.

Taken jobs are journaled: a restarted role resumes them (joining and the key are found on-chain
again; windows whose phase passed are skipped). A job whose thread fails :data:`ATTEMPTS` times
is given up, with the reason said.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from veritrain.journal import Journal
from veritrain.scored.chain import Phase, ScoredChain

#: Journal values: the next job id to look at, and the jobs taken and not yet finished.
CURSOR, TAKEN = "scored:next", "scored:taken"
#: A job whose thread failed this many times (an RPC or IPFS node down for long, a key that
#: does not open) is given up.
ATTEMPTS = 3
#: Seconds between two looks at ``jobCount`` (a new job's first phase lasts longer).
LOOK_EVERY = 10.0

#: ``connect() -> (ScoredChain, Storage)``: fresh connections for one job's thread.
Connect = Callable[[], tuple[ScoredChain, Any]]
#: ``run(chain, storage, job, say=...) -> report``: the role's whole part in one job; its
#: progress lines go to ``say`` (the role's own output, prefixed with the job).
Run = Callable[..., dict[str, Any]]
#: ``accept(job, params, chain, connect) -> None, or why the role does not take the job``;
#: ``chain`` is the pass's own (reads need no new connection), ``connect`` gives one for
#: what else the decision needs (the job document in IPFS).
Accept = Callable[[int, dict[str, Any], ScoredChain, Connect], "str | None"]


class ScoredJobs:
    """The scored jobs of one role: ``last_phase`` is the phase of a job's last window after
    which joining is pointless (a worker's SUBMIT, a validator's SCORE_COMMIT)."""

    def __init__(self, chain: ScoredChain, connect: Connect, journal: Journal, *, run: Run, accept: Accept,
                 last_phase: Phase, say: Callable[[str], None]) -> None:
        self.chain, self.connect, self.journal = chain, connect, journal
        self.run, self.accept, self.last_phase, self.say = run, accept, last_phase, say
        self.threads: dict[int, threading.Thread] = {}
        self.reports: dict[int, dict[str, Any]] = {}
        self._taken_lock = threading.Lock()  # TAKEN is read-modified-written by the job threads
        self._looked = float("-inf")

    @classmethod
    def on(cls, deployment: Any, rpc_url: str, account: Any, nonces: Path, ipfs_api: str, journal: Journal, *,
           run: Run, accept: Accept, last_phase: Phase, say: Callable[[str], None],
           rpc_retry_seconds: float = 30.0, ipfs_retry_seconds: float = 20.0) -> ScoredJobs | None:
        """For ``account`` on ``deployment``; None when the deployment has no ScoredRounds (a
        record written before scored mode)."""
        if deployment is None or "ScoredRounds" not in deployment.contracts:
            return None
        from veritrain.scored.chain import scored_chain
        from veritrain.storage import IpfsStorage

        def connect() -> tuple[ScoredChain, Any]:
            chain = scored_chain(rpc_url, account, deployment, nonce_dir=nonces,
                                 retry_seconds=rpc_retry_seconds)
            return chain, IpfsStorage(ipfs_api, retry_seconds=ipfs_retry_seconds)

        chain, _ = connect()
        return cls(chain, connect, journal, run=run, accept=accept, last_phase=last_phase, say=say)

    # ------------------------------------------------------------------ each pass
    def tick(self) -> list[int]:
        """Resume journaled jobs not running, take new acceptable ones; the jobs started."""
        started = [j for j in self.journal.value(TAKEN, []) if j not in self.threads]
        for job in started:
            self._start(job)
        if time.monotonic() - self._looked < LOOK_EVERY:
            return started
        self._looked = time.monotonic()
        count = int(self.chain.view("jobCount"))
        first = int(self.journal.value(CURSOR, 1))
        for job in range(first, count + 1):
            why = self._refusal(job)
            if why is None:
                self._taken(add=job)
                self._start(job)
                started.append(job)
            else:
                self.say(f"scored job {job}: skipped ({why})")
            self.journal.set(CURSOR, job + 1)
        return started

    def _taken(self, *, add: int | None = None, drop: int | None = None) -> None:
        with self._taken_lock:
            jobs = [j for j in self.journal.value(TAKEN, []) if j != drop]
            self.journal.set(TAKEN, jobs if add is None else [*jobs, add])

    def _refusal(self, job: int) -> str | None:
        """Why this role does not take ``job``; None when it does."""
        params = self.chain.params(job)
        if self.chain.phase(job, int(params["windows"]) - 1) > self.last_phase:
            return "its last window is past the phase this role acts in"
        return self.accept(job, params, self.chain, self.connect)

    def _start(self, job: int) -> None:
        self.say(f"scored job {job}: taking part (join, key, every open window)")
        thread = threading.Thread(target=self._run, args=(job,), name=f"scored-{job}", daemon=True)
        self.threads[job] = thread
        thread.start()

    def _run(self, job: int) -> None:
        try:
            chain, storage = self.connect()
            report = self.run(chain, storage, job, say=lambda msg: self.say(f"scored job {job}: {msg}"))
        except Exception as exc:  # this job stops here; the role's main loop goes on
            failures = int(self.journal.value(f"scored:failures:{job}", 0)) + 1
            self.journal.set(f"scored:failures:{job}", failures)
            if failures < ATTEMPTS:
                self.say(f"scored job {job}: {exc}; resuming it on the next pass ({failures} of {ATTEMPTS})")
                del self.threads[job]  # tick() starts it again
                return
            self.say(f"scored job {job}: given up after {failures} attempts: {exc}")
            report = {"error": str(exc)}
        else:
            self.say(f"scored job {job}: done, earned {report.get('earned', 0)}")
        self.reports[job] = report
        self._taken(drop=job)

    def running(self) -> list[int]:
        return [j for j, t in list(self.threads.items()) if t.is_alive()]
