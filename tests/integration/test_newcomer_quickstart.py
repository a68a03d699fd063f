"""Issue 24's done-when: a newcomer finishes a job on their own CSV with the documented
commands alone (docs/quickstart.md), each one its own process, on a fresh `dev up` stack.

The CSV is written the way an analyst writes one: a header row, raw (unscaled) features, text
labels, the label in the first column. The test uses only what `dev up` printed (its
exports), the Ape deploy, `dev fund`, `job submit/serve/status/fetch`, `worker init/run` and
`verifier run/status`, and asserts: the job reaches final on a chain whose clock runs by
itself (nobody mines blocks here), every reveal was verified by the verifier (none missed),
the model's held-out accuracy beats the reported baselines by a clear margin, and
`job fetch` from another working directory finds the job.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from veritrain.dev import procs
from veritrain.dev.accounts import dev_account

ROOT = Path(__file__).resolve().parents[2]
CHALLENGE_WINDOW = 20  # seconds: short for the test; the example's 60 s is for a person


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERITRAIN_", "APE_FOUNDRY"))}
    env["PYTHONPATH"] = str(ROOT)  # subprocesses import this checkout's code
    return env


class Shell:
    """A user's shell: an environment (the exports `dev up` printed) and a working folder."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.background: list[tuple[subprocess.Popen[str], Path]] = []

    def run(self, *args: str, stdin: str | None = None, cwd: Path | None = None,
            timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "veritrain.cli", *args], cwd=cwd or self.cwd,
                              env={**self.env, **(env or {})}, input=stdin, capture_output=True, text=True,
                              timeout=timeout)
        said = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        assert proc.returncode == 0, f"veritrain {' '.join(args)}:\n{said}"
        return proc

    def start(self, name: str, *args: str) -> Path:
        log = self.cwd / f"{name}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "veritrain.cli", *args], cwd=self.cwd,
                                    env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)
        self.background.append((proc, log))
        return log

    def stop_all(self) -> None:
        for proc, _ in self.background:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def stack_shell(tmp_path: Path) -> Iterator[Shell]:
    """`veritrain dev up --fresh` on free ports under a fresh home; the shell then holds exactly
    the exports it printed. `dev down` at the end, always."""
    home = tmp_path / "home"
    env = _base_env()
    up = subprocess.run([sys.executable, "-m", "veritrain.cli", "dev", "up", "--fresh", "--home", str(home),
                         "--anvil-port", str(procs.free_port()), "--ipfs-port", str(procs.free_port())],
                        env=env, capture_output=True, text=True, timeout=180)
    try:
        assert up.returncode == 0, up.stderr
        exports = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines()
                       if line.startswith("export "))
        assert set(exports) == {"VERITRAIN_HOME", "VERITRAIN_RPC_URL", "APE_FOUNDRY_HOST",
                                "VERITRAIN_IPFS_API"}
        assert "a block after 1 s without one" in up.stdout
        analyst = tmp_path / "analyst"  # the user's own folder, not the checkout
        analyst.mkdir()
        shell = Shell({**env, **exports, "APE_DATA_FOLDER": str(tmp_path / "ape")}, analyst)
        try:
            yield shell
        finally:
            shell.stop_all()
    finally:
        subprocess.run([sys.executable, "-m", "veritrain.cli", "dev", "down", "--home", str(home)],
                       env=env, capture_output=True, text=True, timeout=60)


def _deploy(shell: Shell) -> str:
    """The documented Ape deploy (docs/quickstart.md), recording under the stack's home."""
    out = Path(shell.env["VERITRAIN_HOME"]) / "deployments" / "local.json"
    ape = Path(sys.executable).parent / "ape"
    proc = subprocess.run([str(ape), "run", "deploy", "--network", "ethereum:local:foundry", "--account",
                           "TEST::0", "--out", str(out)], cwd=ROOT, env=shell.env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _wait_for(what: str, check, timeout: float) -> object:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(1)


def test_a_newcomer_trains_on_an_analyst_csv_with_the_documented_commands(stack_shell: Shell,
                                                                          tmp_path: Path) -> None:
    sh = stack_shell
    deployed = _deploy(sh)
    assert "minted 1,000,000 VTD to each of dev accounts 0-" in deployed

    # the analyst's CSV and the example spec (its challenge window shortened for the test)
    writer = ROOT / "examples" / "breast_cancer_csv.py"
    subprocess.run([sys.executable, str(writer), "cancer.csv"], cwd=sh.cwd, env=sh.env, check=True,
                   capture_output=True, timeout=120)
    header = (sh.cwd / "cancer.csv").read_text().splitlines()[:2]
    assert header[0].startswith("diagnosis,mean_radius,")
    assert header[1].split(",")[0] in ("benign", "malignant")
    spec = (ROOT / "examples" / "breast-cancer.yaml").read_text()
    short = spec.replace("challenge_window: 60", f"challenge_window: {CHALLENGE_WINDOW}")
    (sh.cwd / "cancer.yaml").write_text(short)

    # requester: submit (no deployment file named anywhere: found by network), then serve keys
    sub = sh.run("job", "submit", "cancer.yaml", "--data", "cancer.csv", "--reward", "10", "--stake", "5",
                 "--dev-account", "1", "--json")
    submitted = json.loads(sub.stdout)
    job_id = submitted["job_id"]
    assert "unscaled" not in sub.stderr  # the spec standardizes, so no warning
    slog = sh.start("serve", "job", "serve", "--dev-account", "1")

    # the job document publishes the transform's statistics and the text labels' classes
    from veritrain.jobdoc import JobDocument
    from veritrain.storage import IpfsStorage

    doc = JobDocument.from_bytes(IpfsStorage(sh.env["VERITRAIN_IPFS_API"]).get_bytes(submitted["spec_cid"]))
    assert doc.version == 2 and doc.label_classes == ("benign", "malignant")
    assert doc.preprocessing is not None and doc.preprocessing.kind == "standardize"
    assert len(doc.preprocessing.offset) == 30 and max(doc.preprocessing.offset) > 100  # raw mean area

    # worker: a key imported from a pipe (no getpass warning), funded with `dev fund`
    worker_env = {"VERITRAIN_WORKER_PASSWORD": "correct horse battery"}
    sh.env.update(worker_env)
    init = sh.run("worker", "init", "--import", stdin="0x" + "42" * 32 + "\n")
    assert "GetPassWarning" not in init.stderr and "veritrain dev fund" in init.stderr
    address = init.stdout.split()[1].rstrip(":")
    funded = sh.run("dev", "fund", address, "--eth", "5", "--tokens", "50")
    assert funded.stdout.strip() == f"{address} now holds 5 ETH and 50 VTD"

    # a verifier replaying every segment
    vlog = sh.start("verifier", "verifier", "run", "--dev-account", "3", "--p", "1", "--api-port", "0")
    _wait_for("the verifier to register", lambda: "registered with stake 100 VTD" in vlog.read_text(), 60)

    # the worker trains both tasks; nobody mines: the stack's clock ends the challenge window
    run = sh.run("worker", "run", "--max-tasks", "2", timeout=420)
    task_ids = [(job_id << 32) | i for i in range(2)]
    assert [f"task {t}: finalized" for t in task_ids] == run.stdout.strip().splitlines()
    assert "reward 10 VTD, stake 5 VTD" in run.stderr  # amounts in tokens, not base units
    assert "FutureWarning" not in run.stderr

    status = json.loads(sh.run("job", "status", str(job_id), "--dev-account", "1", "--json").stdout)
    assert status["done"] and [t["task_id"] for t in status["tasks"]] == task_ids
    human = sh.run("job", "status", str(job_id), "--dev-account", "1").stdout
    assert f"task {task_ids[1]} (shard 1)" in human  # the same task naming as the worker's

    # every reveal was verified before it was final: none missed
    def verified() -> dict[str, int] | None:
        s = json.loads(sh.run("verifier", "status", "--json").stdout)["results"]
        return s if s["verified"] + s["missed"] + s["no_key"] >= 2 else None

    results = _wait_for("the verifier's verdicts", verified, 60)
    assert results["verified"] == 2 and results["missed"] == 0, results  # type: ignore[index]
    replayed = vlog.read_text()
    for t in task_ids:
        line = f"task {t} (worker {address}, shard {t & 1}): replayed segment 9 of 10 (steps 181-200): match"
        assert line in replayed

    # job serve said what each key was for (no dispute, so no dispute key) and closed the job
    _wait_for("job serve to close the ended job", lambda: "ended and is closed" in slog.read_text(), 60)
    served = slog.read_text()
    assert f"data key for worker {address} (task {task_ids[0]})" in served
    assert f"job key for sampling verifier {dev_account(3).address} (job {job_id})" in served
    assert "dispute" not in served and "VTD of escrow returned" in served
    assert "FutureWarning" not in served and "FutureWarning" not in vlog.read_text()
    earned = sh.run("worker", "status").stdout
    assert f"worker {address}  balance " in earned and "earned 20 VTD" in earned  # two rewards of 10

    # fetch from another folder: the job record lives in the per-user home, not in the cwd
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fetched = json.loads(sh.run("job", "fetch", str(job_id), "--out", "model.safetensors",
                                "--dev-account", "1", "--json", cwd=elsewhere).stdout)
    m = fetched["metrics"]
    assert (elsewhere / "model.safetensors").stat().st_size > 0
    assert m["holdout_examples"] == 114
    assert m["holdout_accuracy"] >= m["baseline_majority_accuracy"] + 0.2, m  # ~0.63 majority
    assert m["holdout_accuracy"] >= m["baseline_untrained_accuracy"] + 0.1, m
    assert m["holdout_accuracy"] >= 0.9, m
