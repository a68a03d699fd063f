"""The end-to-end demo (issue 9): a real job on real data, honest and cheating workers, a
verifier that catches the cheat, a committee that settles it on-chain.

    python -m demo [--quick] [--json] [--home .veritrain/demo] [--timeout S] [--network remote-sim]

It starts a fresh stack of its own (Anvil + IPFS on free ports, under ``<home>/stack``),
deploys the contracts, and runs every party as a separate process through the product's own
command lines — requester (``veritrain job submit`` / ``serve`` / ``fetch``), honest workers
(``veritrain worker run``), the cheater (``python -m adversary worker``), verifiers
(``veritrain verifier run``) — which talk only through the chain and IPFS. It reads the chain
to follow them, then writes ``<home>/summary.json`` from the chain's events and receipts.
The stack and every child are stopped at the end, on failure and on Ctrl-C alike.

``--network remote-sim`` (``make demo-remote``, issue 18) runs the same job on a chain that
behaves like a hosted one (:mod:`demo.remote`): Anvil mining a block a second under chain id
11155111, reached by every party only through two provider proxies (the primary rate-limits
with HTTP 429, both cap ``eth_getLogs`` at 100 blocks, the secondary drops connections), with
a network profile (3 confirmations, stuck transactions replaced after 4 s). During the job the
demo stops mining for a while as the honest workers claim (their transactions get stuck and
are replaced), reorganises the chain under the first honest claim (the chain forgets the
transactions of the replaced blocks; their senders send them again), and kills the primary
provider (everyone fails over). The summary's ``remote`` table counts each, from the
providers' counters and the chain; every one must be non-zero for the run to be ``ok``.

This module never imports worker/, requester/ or verifier/: that is the point.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo import chain as demo_chain
from demo import remote as demo_remote
from demo import summary as demo_summary
from demo.children import ChildFailed, Children, stop_recorded
from demo.summary import Party
from veritrain import lifeline
from veritrain.errors import VeritrainError
from veritrain.settings import PROJECT_ROOT

#: The checkout that holds demo/, adversary/ and the package (children import from it).
REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = 10**18
MARKER = ".veritrain-demo"
DEFAULT_HOME = Path(".veritrain/demo")
NETWORKS = ("local", demo_remote.NETWORK)
#: remote-sim: seconds without blocks while the honest workers claim (their claims get stuck).
STUCK_SECONDS = 9.0
#: remote-sim: the job's challenge window (seconds of chain time).
REMOTE_CHALLENGE_WINDOW = 120
#: remote-sim: counters of the summary's ``remote`` table that must each be non-zero.
REMOTE_MUST = ("rate_limited", "log_pages", "reorgs", "dropped_by_reorg", "resent_after_reorg",
               "failover_requests", "replaced")


@dataclass(frozen=True)
class Scenario:
    name: str
    shards: int
    steps: int
    checkpoint_interval: int
    honest: int
    cheat_segment: int
    challenge_window: int
    accuracy_bar: float
    timeout: float
    verifiers: int = 4  # one challenger + a committee of 3 that is not party to the dispute
    reward: int = 10
    stake: int = 20

    def caps(self) -> tuple[int, ...]:
        """Each honest worker's ``--max-tasks``: the shards split among them, so every one is
        paid. Uncapped, the first honest worker done could take the tasks left, the cheater's
        reopened one among them, before a slower one claimed any (the CI saw honest-1 do all
        three of the quick demo's tasks). The caps sum to the shards, so no task is left undone:
        the cheater's task, reopened after its slash, is an honest worker's share too."""
        if not 1 <= self.honest <= self.shards:
            raise ValueError(f"{self.honest} honest workers cannot each have one of {self.shards} tasks")
        base, extra = divmod(self.shards, self.honest)
        return tuple(base + (i < extra) for i in range(self.honest))


#: Measured: 4 shards x 200 SGD steps of the 64-128-64-10 MLP, FedAvg -> 0.955 held-out accuracy.
FULL = Scenario("full", shards=4, steps=200, checkpoint_interval=20, honest=3, cheat_segment=3,
                challenge_window=60, accuracy_bar=0.90, timeout=600)
#: Fewer shards, workers and steps, a shorter window; 3 x 100 steps measured 0.94 (bar 0.85).
QUICK = Scenario("quick", shards=3, steps=100, checkpoint_interval=20, honest=2, cheat_segment=2,
                 challenge_window=40, accuracy_bar=0.85, timeout=480)

#: Dispute windows for the demo's resolver (the defaults are 1 h / 1 d / 1 d). They are
#: ceilings: a dispute settles as soon as every referee has revealed. The commit window must
#: exceed the referees' vote margin (600 s before it they stop waiting for a key).
RESOLVER_WINDOWS = {"drawWindow": 120, "commitWindow": 900, "revealWindow": 300}
#: Job windows (seconds of chain time). Only the challenge window is ever waited out.
JOB_WINDOWS = {"key_window": 120, "submission_window": 600, "reveal_window": 300}


class DemoFailed(VeritrainError, RuntimeError):
    pass


def say(t0: float, msg: str) -> None:
    print(f"[{time.monotonic() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- inputs
def write_inputs(data_dir: Path, sc: Scenario) -> tuple[Path, Path]:
    """The job spec (examples/digits-mlp.yaml, scaled to the scenario) and the digits as .npz."""
    import numpy as np
    import yaml
    from sklearn.datasets import load_digits

    spec = yaml.safe_load((PROJECT_ROOT / "examples" / "digits-mlp.yaml").read_text())
    spec.update(num_shards=sc.shards, steps_per_task=sc.steps, checkpoint_interval=sc.checkpoint_interval)
    spec["deadlines"] = {**JOB_WINDOWS, "challenge_window": sc.challenge_window}
    data_dir.mkdir(parents=True, exist_ok=True)
    spec_path = data_dir / "job.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    digits = load_digits()  # ships inside scikit-learn: no download
    data_path = data_dir / "digits.npz"
    np.savez(data_path, features=(digits.data / 16.0).astype(np.float32),
             labels=digits.target.astype(np.int64))
    return spec_path, data_path


def fresh_home(home: Path) -> None:
    """Empty ``home`` for a new run (only a folder this demo made, or an empty one)."""
    from veritrain.dev.stack import Stack
    from veritrain.settings import StackSettings

    if home.exists():
        if not (home / MARKER).exists() and any(home.iterdir()):
            raise DemoFailed(f"{home} exists and was not made by the demo; choose another --home")
        left = stop_recorded(home / "logs")  # processes of a run that was killed outright
        if left:
            print(f"stopped {len(left)} processes left by an earlier run: {', '.join(left)}", file=sys.stderr)
        Stack(StackSettings(home=home / "stack")).down()  # and its stack
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / MARKER).write_text("made by python -m demo; deleted at its next run\n")


def child_env(rpc: str, ipfs: str, deployment: Path,
              network: tuple[str, Path] | None = None) -> dict[str, str]:
    """The children's environment; ``network`` (name, VERITRAIN_HOME holding its networks.toml)
    selects a network profile, whose confirmations and fee policy every role then uses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERITRAIN_")}
    env.update(VERITRAIN_RPC_URL=rpc, VERITRAIN_IPFS_API=ipfs, VERITRAIN_DEPLOYMENT=str(deployment),
               PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    if network is not None:
        env.update(VERITRAIN_NETWORK=network[0], VERITRAIN_HOME=str(network[1]))
    return env


# --------------------------------------------------------------------------- the run
class Demo:
    def __init__(self, sc: Scenario, home: Path, network: str = "local") -> None:
        self.sc, self.home = sc, home.resolve()
        self.network = network
        self.net: demo_remote.RemoteChain | None = None
        self._net_cm: Any = None
        self.remote: dict[str, int] = {}
        self.t0 = time.monotonic()
        self.py = sys.executable
        self.parties: list[Party] = []
        self.children: Children | None = None
        self.stack: Any = None
        self.clock: demo_chain.BlockClock | None = None
        self.events: demo_chain.EventLog | None = None
        self.job_id = 0
        self.accuracy: float | None = None
        self.notes: list[str] = []
        self.w3: Any = None
        self.deployment: Any = None
        self.gas: tuple[dict[str, int], int] = ({}, 0)
        self.problems: list[str] = []
        self.explorer_url: str | None = None

    def log(self, msg: str) -> None:
        say(self.t0, msg)

    def cli(self, *args: str) -> list[str]:
        return [self.py, "-m", "veritrain.cli", *args]

    # ------------------------------------------------------------------ phases
    def start_stack(self) -> tuple[str, str]:
        from veritrain.dev import procs
        from veritrain.dev.stack import Stack
        from veritrain.settings import StackSettings

        self.stack = Stack(StackSettings(home=self.home / "stack", anvil_port=procs.free_port(),
                                         ipfs_api_port=procs.free_port(), anvil_state_interval=0))
        if self.network == demo_remote.NETWORK:
            state = self.stack.up(("ipfs",), fresh=True)
            self._net_cm = demo_remote.remote_chain(self.home / "remote")
            self.net = self._net_cm.__enter__()
            ipfs = state.services["ipfs"].url
            self.log(f"remote-like chain up: anvil {self.net.anvil_url} (chain {self.net.chain_id}, "
                     f"a block a second), providers {', '.join(self.net.urls)}; ipfs {ipfs}")
            return self.net.anvil_url, ipfs  # the operator deploys and watches at the node itself
        state = self.stack.up(fresh=True)
        rpc, ipfs = state.services["anvil"].url, state.services["ipfs"].url
        self.log(f"stack up: anvil {rpc}, ipfs {ipfs} (home {self.stack.home})")
        return rpc, ipfs

    def init_workers(self, ch: Children) -> list[tuple[str, str, Path]]:
        """Start ``veritrain worker init`` for each worker (fresh keys); returns (name, behaviour, home)."""
        out = [("cheater", "cheater", self.home / "workers" / "cheater")]
        out += [(f"honest-{i}", "honest", self.home / "workers" / f"honest-{i}")
                for i in range(1, self.sc.honest + 1)]
        for name, _, whome in out:
            ch.start(f"init-{name}", self.cli("worker", "init"), self.worker_env(name, whome),
                     daemon=False, capture_stdout=True)
        return out

    def worker_env(self, name: str, whome: Path) -> dict[str, str]:
        return {"VERITRAIN_WORKER_HOME": str(whome), "VERITRAIN_WORKER_PASSWORD": f"demo-{name}",
                "VERITRAIN_WORKER_POLL_INTERVAL": "1"}

    def deploy(self, rpc: str, worker_addrs: list[str]) -> Path:
        from veritrain import deployments
        from veritrain.dev.accounts import dev_account
        from veritrain.dev.deploy import RESOLVER_PARAMS

        self.w3 = demo_chain.connect(rpc)
        deployer = dev_account(0)
        holders: list[str] = [dev_account(i).address for i in range(1 + 1 + self.sc.verifiers)]
        self.deployment = demo_chain.deploy(self.w3, deployer, mint_to=holders, mint=1_000_000 * TOKEN,
                                            resolver_params={**RESOLVER_PARAMS, **RESOLVER_WINDOWS})
        path = deployments.save(self.deployment, self.home / "deployment.json")
        demo_chain.fund(self.w3, deployer, self.deployment, worker_addrs, eth=10 * TOKEN,
                        tokens=1_000 * TOKEN)
        self.events = demo_chain.EventLog(self.w3, self.deployment)
        self.log(f"deployed (market {self.deployment.address('JobMarket')}); funded {len(worker_addrs)} "
                 f"fresh worker keys with 10 ETH and 1,000 VTD each")
        return path

    def start_verifiers(self, ch: Children) -> None:
        from veritrain.dev import procs
        from veritrain.dev.accounts import dev_account

        for i in range(1, self.sc.verifiers + 1):
            acct, challenger = dev_account(1 + i), i == 1
            vhome = self.home / "verifiers" / f"verifier-{i}"
            args = ["verifier", "run", "--home", str(vhome), "--p", "1.0" if challenger else "0.0"]
            port = procs.free_port() if challenger else 0
            args += ["--api-port", str(port)]
            ch.start(f"verifier-{i}", self.cli(*args), {"VERITRAIN_VERIFIER_DEV_ACCOUNT": str(1 + i)})
            self.parties.append(Party(f"verifier-{i}", acct.address, "verifier",
                                      "challenger" if challenger else "referee"))
            if challenger:
                self.challenger_home, self.challenger_account = vhome, acct
                self.log(f"verifier-1 samples every segment (p = 1) and serves its API on http://127.0.0.1:{port}")

    def start_explorer(self, ch: Children) -> None:
        """`veritrain explorer` on a free port: the run, live in a browser (docs/explorer.md)."""
        from veritrain.dev import procs

        port = procs.free_port()
        ch.start("explorer", self.cli("explorer", "--port", str(port), "--poll", "1"))
        self.explorer_url = f"http://127.0.0.1:{port}/"
        self.log(f"watch the market live in a browser: {self.explorer_url}")
        self.notes.append(f"the explorer showed the run live at {self.explorer_url} (`make demo "
                          "DEMO_ARGS=--keep` keeps it up after the run)")

    def check_explorer(self) -> None:
        """The explorer must show the run: it answers, reads the chain, and has the job's page."""
        import urllib.request

        for path in ("api/head", f"job/{self.job_id}"):
            try:
                with urllib.request.urlopen(f"{self.explorer_url}{path}", timeout=30) as r:
                    body = r.read()
            except OSError as exc:
                self.problems.append(f"the explorer at {self.explorer_url}{path} did not answer: {exc}")
                return
            if path == "api/head" and json.loads(body).get("error"):
                self.problems.append(f"the explorer cannot read the chain: {json.loads(body)['error']}")

    def hold(self) -> None:
        """``--keep``: leave the stack and the explorer up until Ctrl-C."""
        self.log(f"the demo is over; the explorer stays up at {self.explorer_url} with the chain "
                 "behind it: press Ctrl-C to stop everything")
        try:
            while True:
                time.sleep(1)
                if self.children is not None:
                    self.children.check()
        except KeyboardInterrupt:
            return

    def start_requester(self, ch: Children, spec: Path, data: Path) -> None:
        """`veritrain job serve` (keeps running) and `veritrain job submit` (exits with the job id)."""
        from veritrain.dev.accounts import dev_account

        self.requester_home = self.home / "requester"
        common = ["--dev-account", "1", "--home", str(self.requester_home)]
        ch.start("requester-serve", self.cli("job", "serve", "--interval", "1", *common))
        ch.start("requester-submit", self.cli("job", "submit", str(spec), "--data", str(data), "--reward",
                                              str(self.sc.reward), "--stake", str(self.sc.stake), "--holdout",
                                              "0.2", "--json", *common), daemon=False, capture_stdout=True)
        self.parties.append(Party("requester", dev_account(1).address, "requester", "honest"))

    def job_posted(self, ch: Children) -> None:
        out = ch.wait("requester-submit", 180)
        self.job_id = int(json.loads(out)["job_id"])
        self.log(f"requester posted job {self.job_id}; `veritrain job serve` delivers its keys")

    def start_workers(self, ch: Children, workers: list[tuple[str, str, Path]], behaviour: str) -> None:
        caps = iter(self.sc.caps())
        for name, b, whome in workers:
            if b != behaviour:
                continue
            env = self.worker_env(name, whome)
            if behaviour == "cheater":
                argv = [self.py, "-m", "adversary", "worker", "--behaviour", "skip-step",
                        "--segment", str(self.sc.cheat_segment), "--max-tasks", "1"]
            else:
                argv = self.cli("worker", "run", "--max-tasks", str(next(caps)))
            ch.start(name, argv, env, may_exit=True)  # each exits once its --max-tasks have ended

    def cheater_claimed(self) -> tuple[bool, str]:
        assert self.events is not None
        cheaters = {p.address.lower() for p in self.parties if p.behaviour == "cheater"}
        claimed = {str(e.args["worker"]).lower() for e in self.events.named("TaskClaimed")}
        return cheaters <= claimed, "the cheater has not claimed a task yet"

    # ------------------------------------------------------------------ remote-sim: what a real network does
    def stuck_claims(self, ch: Children, workers: list[tuple[str, str, Path]]) -> None:
        """No blocks while the honest workers start and claim: once an honest worker's claim
        waits in the pool, it stays stuck for ``STUCK_SECONDS`` (past the profile's
        ``replace_after``), so its sender replaces it with a bumped fee."""
        assert self.net is not None
        honest = {p.address.lower() for p in self.parties if p.kind == "worker" and p.behaviour == "honest"}
        self.net.stop_mining()
        self.log("remote-sim: no blocks from now until the honest workers' claims have been stuck "
                 f"for {STUCK_SECONDS:g} s")
        try:
            self.start_workers(ch, workers, "honest")
            give_up = time.monotonic() + 120
            stuck_since: float | None = None
            while time.monotonic() < give_up:
                ch.check()
                if stuck_since is None and self.net.pending_senders() & honest:
                    stuck_since = time.monotonic()
                    self.log("remote-sim: an honest claim waits in the pool")
                if stuck_since is not None and time.monotonic() - stuck_since >= STUCK_SECONDS:
                    break
                time.sleep(0.5)
        finally:
            self.net.start_mining()
        self.notes.append(f"remote-sim: mining stopped as the honest workers claimed, until a claim had "
                          f"waited {STUCK_SECONDS:g} s in the pool")

    def honest_claim(self) -> tuple[bool, str]:
        assert self.events is not None
        honest = {p.address.lower() for p in self.parties if p.kind == "worker" and p.behaviour == "honest"}
        ok = any(str(e.args["worker"]).lower() in honest for e in self.events.named("TaskClaimed"))
        return ok, "no honest claim yet"

    def reorg_and_failover(self, ch: Children, deadline: float) -> None:
        """Reorganise the chain under the first honest claim (its block and the next are
        replaced; the chain forgets their transactions), then kill the primary provider once a
        result is revealed after it."""
        assert self.net is not None and self.events is not None
        self.wait_for(ch, "an honest claim", self.honest_claim, min(deadline, time.monotonic() + 120))
        claim = next(e for e in self.events.named("TaskClaimed")
                     if self.name_of(e.args["worker"]).startswith("honest"))
        depth = max(2, self.net.head() - claim.block + 1)
        done = self.net.reorg(depth)
        gone = self.events.rewind(done.from_block)
        self.log(f"remote-sim: reorg of {depth} blocks from block {done.from_block}: the chain forgot "
                 f"{len(done.dropped)} transactions ({', '.join(e.name for e in gone) or 'no events'}); "
                 "their senders must send them again")
        self.notes.append(f"remote-sim: anvil_reorg replaced blocks {done.from_block}.."
                          f"{done.from_block + depth - 1} ({len(done.dropped)} transactions, "
                          f"events {[e.name for e in gone]})")
        revealed = len(self.events.named("ResultRevealed"))
        self.wait_for(ch, "a result revealed after the reorg", lambda: (
            len(self.events.named("ResultRevealed")) > revealed, "no new reveal"),  # type: ignore[union-attr]
            deadline)
        self.net.kill_primary()
        self.log(f"remote-sim: the primary provider {self.net.primary} is gone for good; "
                 "every party fails over")
        self.notes.append("remote-sim: the primary provider was killed after the first reveal that "
                          "followed the reorg")

    def remote_counters(self) -> dict[str, int]:
        if self.net is None or self.w3 is None:
            return {}
        return {**self.net.counters(), **demo_remote.tx_census(self.net, self.w3)}

    # ------------------------------------------------------------------ following the chain
    def name_of(self, address: Any) -> str:
        a = str(address).lower()
        for p in self.parties:
            if p.address.lower() == a:
                return p.name
        return str(address)[:10]

    def describe(self, e: demo_chain.Event) -> str | None:
        a, n = e.args, self.name_of
        task = f"task {int(a['taskId']) & 0xFFFFFFFF}" if "taskId" in a else ""
        tok = lambda v: f"{int(v) / TOKEN:g}"  # noqa: E731
        lines = {
            "VerifierRegistered": lambda: f"{n(a['verifier'])} registered (stake {tok(a['stake'])} VTD)",
            "JobPosted": lambda: (f"job {a['jobId']} on chain: {a['taskCount']} tasks, "
                                  f"escrow {tok(a['escrow'])} VTD"),
            "TaskClaimed": lambda: f"{task}: claimed by {n(a['worker'])}",
            "KeyDelivered": lambda: f"{task}: data key delivered to {n(a['worker'])}",
            "ResultRevealed": lambda: f"{task}: {n(a['worker'])} revealed its checkpoint root",
            "DisputeOpened": lambda: (f"{task}: {n(a['accuser'])} challenges {n(a['accused'])} at segment "
                                      f"{a['segment']} (dispute {a['disputeId']})"),
            "CommitteeDrawn": lambda: (f"dispute {a['disputeId']}: committee "
                                       f"{', '.join(n(r) for r in a['referees'])}"),
            "RefereeKeyDelivered": lambda: f"dispute {a['disputeId']}: key delivered to {n(a['referee'])}",
            "VoteRevealed": lambda: f"dispute {a['disputeId']}: {n(a['referee'])} revealed its vote",
            "DisputeSettled": lambda: (f"dispute {a['disputeId']} settled: "
                                       f"{demo_summary.OUTCOMES[int(a['outcome'])]}"),
            "ClaimSlashed": lambda: f"{task}: {n(a['worker'])} slashed {tok(a['stake'])} VTD, task reopens",
            "ClaimFinalized": lambda: f"{task}: finalized, {n(a['worker'])} earns {tok(a['reward'])} VTD",
            "ClaimTimedOut": lambda: f"{task}: {n(a['worker'])} TIMED OUT (penalty {tok(a['penalty'])})",
            "ClaimAbandoned": lambda: f"{task}: {n(a['worker'])} abandoned (no key in time)",
            "Withdrawn": lambda: f"{n(a['account'])} withdrew {tok(a['amount'])} VTD",
        }
        return lines[e.name]() if e.name in lines else None

    def follow(self, ch: Children) -> list[demo_chain.Event]:
        assert self.events is not None
        new = self.events.poll()
        for e in new:
            line = self.describe(e)
            if line:
                self.log(line)
        ch.check()
        return new

    def tasks_done(self) -> tuple[bool, str]:
        assert self.events is not None
        ev = self.events
        posted = [e for e in ev.named("JobPosted") if int(e.args["jobId"]) == self.job_id]
        if not posted:
            return False, "job not posted"
        count = int(posted[0].args["taskCount"])
        finalized = {int(e.args["taskId"]) for e in ev.named("ClaimFinalized")
                     if int(e.args["taskId"]) >> 32 == self.job_id}
        opened = {int(e.args["disputeId"]) for e in ev.named("DisputeOpened")}
        settled = {int(e.args["disputeId"]) for e in ev.named("DisputeSettled")}
        state = f"{len(finalized)}/{count} tasks finalized, {len(opened - settled)} disputes open"
        return len(finalized) == count and opened <= settled, state

    def wait_for(self, ch: Children, what: str, cond: Any, deadline: float) -> None:
        """Poll the chain until ``cond()`` holds; fail at ``deadline`` or when nothing at all has
        happened on-chain for longer than any of the demo's waits can explain (a stall)."""
        stall = 2 * self.sc.challenge_window + 60
        last = time.monotonic()
        while True:
            if self.follow(ch):
                last = time.monotonic()
            ok, state = cond()
            if ok:
                return
            now = time.monotonic()
            if now > deadline or now - last > stall:
                why = "timed out" if now > deadline else f"nothing happened on-chain for {now - last:.0f} s"
                raise DemoFailed(f"{why} waiting for {what}: {state}\n" + self.tails(ch))
            time.sleep(0.5)

    def tails(self, ch: Children, lines: int = 6) -> str:
        from demo.children import tail_lines

        return "\n".join(f"-- {c.name} ({c.log}):\n{tail_lines(c.log, lines)}"
                         for c in ch.children.values() if c.daemon)

    # ------------------------------------------------------------------ the scenario
    def run(self) -> demo_summary.Verdict:
        sc = self.sc
        deadline = self.t0 + sc.timeout
        fresh_home(self.home)
        self.log(f"demo '{sc.name}': {sc.shards} shards x {sc.steps} steps, {sc.honest} honest workers "
                 f"+ 1 cheater (skips a step in segment {sc.cheat_segment}), {sc.verifiers} verifiers; "
                 f"home {self.home}")
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("VERITRAIN_")}
        # the cheater runs `python -m adversary`, which lives beside the package, not in it
        base_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), base_env.get("PYTHONPATH")) if p)
        ch = self.children = Children(self.home / "logs", base_env, Path.cwd())
        workers = self.init_workers(ch)  # keys are made while the stack starts
        rpc, ipfs = self.start_stack()
        spec, data = write_inputs(self.home / "data", sc)
        addrs = []
        for name, behaviour, _ in workers:
            out = ch.wait(f"init-{name}", 120)
            m = re.search(r"0x[0-9a-fA-F]{40}", out)
            if not m:
                raise DemoFailed(f"`veritrain worker init` for {name} printed no address: {out!r}")
            addrs.append(m.group(0))
            self.parties.append(Party(name, m.group(0), "worker", behaviour))
        deployment = self.deploy(rpc, addrs)
        if self.net is not None:
            vt_home = self.home / "vt"
            self.net.write_profile(vt_home, deployment, ipfs_api=ipfs)
            ch.base_env = child_env(",".join(self.net.urls), ipfs, deployment, (demo_remote.NETWORK, vt_home))
            self.notes.append(f"network {demo_remote.NETWORK}: every party reaches the chain only "
                              f"through the providers {', '.join(self.net.urls)} "
                              f"(profile {vt_home / 'networks.toml'})")
        else:
            ch.base_env = child_env(rpc, ipfs, deployment)
            self.clock = demo_chain.BlockClock(rpc, 1.0).start()
            self.notes.append("chain time: the demo mines an empty block every second, so time passes as "
                              "on a real chain (it never warps time); job and dispute windows are short "
                              "instead")
        self.start_explorer(ch)
        self.start_requester(ch, spec, data)
        self.start_verifiers(ch)
        self.start_workers(ch, workers, "cheater")
        self.job_posted(ch)
        # The cheater takes its task before the honest workers arrive: the scenario is then the
        # same every run. (A worker that lost a race for a task reconsiders it once it reopens.)
        self.wait_for(ch, "the cheater's claim", self.cheater_claimed, min(deadline, time.monotonic() + 120))
        if self.net is not None:
            self.stuck_claims(ch, workers)
        else:
            self.start_workers(ch, workers, "honest")
        self.notes.append("the cheater starts first and claims its task before the honest workers start "
                          "(the same scenario every run)")
        self.notes.append(f"the honest workers take at most {', '.join(map(str, sc.caps()))} tasks "
                          "(`worker run --max-tasks`), so each is paid")
        if self.net is not None:
            self.reorg_and_failover(ch, deadline)
        self.wait_for(ch, "every task to be finalized", self.tasks_done, deadline)
        self.log("every task is final; honest workers withdraw their pay")
        honest = [(n, h) for n, b, h in workers if b == "honest"]
        for name, whome in honest:
            ch.start(f"withdraw-{name}", self.cli("worker", "withdraw"), self.worker_env(name, whome),
                     daemon=False, capture_stdout=True)
        for name, _ in honest:
            ch.wait(f"withdraw-{name}", 120)
        challengers = {str(e.args["accuser"]).lower() for e in self.events.named("DisputeOpened")}  # type: ignore[union-attr]
        self.wait_for(ch, "the challenger's withdrawal", lambda: (
            challengers <= {str(e.args["account"]).lower() for e in self.events.named("Withdrawn")},  # type: ignore[union-attr]
            "challenger has not withdrawn"), min(deadline, time.monotonic() + 60))
        model = self.home / "model.safetensors"
        fetch = self.cli("job", "fetch", str(self.job_id), "--out", str(model), "--json",
                         "--dev-account", "1", "--home", str(self.requester_home))
        out = ch.run("requester-fetch", fetch, timeout=180)
        claimed = float(json.loads(out)["metrics"]["holdout_accuracy"])
        self.log(f"requester fetched and checked the model: held-out accuracy {claimed:.4f}")
        self.measure(spec, model, claimed)
        self.follow(ch)
        self.check_explorer()
        return self.verdict()

    def measure(self, spec: Path, model: Path, claimed: float) -> None:
        """Evaluate the fetched model ourselves on the requester's held-out split."""
        from demo import evaluate as demo_eval

        held = demo_eval.holdout_path(self.requester_home, self.deployment.chain_id,
                                      self.deployment.address("JobMarket"), self.job_id)
        self.accuracy, n = demo_eval.accuracy(spec, model, held)
        self.log(f"the demo's own evaluation of {model.name}: {self.accuracy:.4f} on {n} held-out digits")
        if abs(self.accuracy - claimed) > 1e-9:
            self.problems.append(f"the requester reported accuracy {claimed:.6f}, the saved model "
                                 f"measures {self.accuracy:.6f}")

    def verdict(self) -> demo_summary.Verdict:
        gas_total, by_fn, count = (0, {}, 0) if self.w3 is None else demo_chain.gas_used(self.w3)
        self.gas = (by_fn, count)
        verdict = demo_summary.build(self.events.events if self.events else [], self.job_id, self.parties,
                                     seconds=time.monotonic() - self.t0, gas_total=gas_total,
                                     accuracy=self.accuracy, accuracy_bar=self.sc.accuracy_bar)
        if self.net is not None:
            self.remote = self.remote_counters()
            verdict.summary["network"] = self.network
            verdict.summary["remote"] = self.remote
            zero = [k for k in REMOTE_MUST if not self.remote.get(k)]
            if zero:
                self.problems.append(f"remote-sim: these counters stayed zero: {', '.join(zero)}")
        if self.problems:
            verdict.failures.extend(self.problems)
            verdict.summary["ok"] = False
        return verdict

    def shutdown(self) -> None:
        if self.children is not None:
            stopped = self.children.stop_all()
            if stopped:
                self.log(f"stopped {len(stopped)} processes")
        if self.clock is not None:
            self.clock.stop()
        if self._net_cm is not None:
            self._net_cm.__exit__(None, None, None)
            self._net_cm = None
            self.log("remote-like chain stopped")
        if self.stack is not None:
            self.stack.down()
            self.log("stack stopped")

    def logs(self) -> dict[str, str]:
        if self.children is None:
            return {}
        return {name: os.path.relpath(c.log) for name, c in self.children.children.items()}


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(*, quick: bool = False, as_json: bool = False, home: Path = DEFAULT_HOME,
         timeout: float | None = None, network: str = "local", keep: bool = False) -> int:
    """Run the scenario; the exit code (0 when every check of the summary holds). ``keep``:
    the stack and the explorer stay up after the run until Ctrl-C."""
    lifeline.from_env()  # run by the benchmark: die with it
    if network not in NETWORKS:
        print(f"error: --network must be one of {', '.join(NETWORKS)}, not {network!r}", file=sys.stderr)
        return 2
    sc = QUICK if quick else FULL
    if network != "local":
        # every send waits for 3 confirmations and every read for the providers' limits, and the
        # run stops twice on purpose: the challenger needs a longer window to replay and challenge
        # (a 40 s window let a cheater's task finalize before the challenge, on a loaded machine)
        sc = Scenario(**{**sc.__dict__, "timeout": sc.timeout + 300,
                         "challenge_window": max(sc.challenge_window, REMOTE_CHALLENGE_WINDOW)})
    if timeout:
        sc = Scenario(**{**sc.__dict__, "timeout": timeout})
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # also when started with SIGINT ignored
        signal.signal(sig, _raise_interrupt)
    demo = Demo(sc, home, network)
    verdict, error, code = None, None, 1
    try:
        verdict = demo.run()
        if keep:
            demo.hold()
    except KeyboardInterrupt:
        error, code = "interrupted", 130
    except (ChildFailed, VeritrainError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        if verdict is None:
            try:
                verdict = demo.verdict()  # what the chain shows so far
            except Exception:  # noqa: BLE001 - the chain may be gone; report the error below
                verdict = None
        demo.shutdown()
    if verdict is None:
        verdict = demo_summary.build([], demo.job_id, demo.parties, seconds=time.monotonic() - demo.t0,
                                     gas_total=0, accuracy=demo.accuracy, accuracy_bar=sc.accuracy_bar)
    if error:
        verdict.failures.insert(0, error)
        verdict.summary["ok"] = False
    summary_path = demo.home / "summary.json"
    if summary_path.parent.exists():
        summary_path.write_text(json.dumps(verdict.summary, indent=2) + "\n")
        details = {"scenario": sc.__dict__, "network": network, "failures": verdict.failures,
                   "notes": demo.notes,
                   "logs": demo.logs(), "gas_by_function": demo.gas[0], **verdict.details}
        (demo.home / "details.json").write_text(json.dumps(details, indent=2, default=str) + "\n")
    text = demo_summary.render(verdict, demo.parties, gas_by_fn=demo.gas[0], transactions=demo.gas[1],
                               logs=demo.logs(),
                               accuracy_bar=sc.accuracy_bar, notes=demo.notes)
    print(text, file=sys.stderr if as_json else sys.stdout)
    print(f"summary: {os.path.relpath(summary_path)}", file=sys.stderr if as_json else sys.stdout)
    if as_json:
        print(json.dumps(verdict.summary, indent=2))
    if code == 130:
        return code
    return 0 if verdict.summary["ok"] else 1

