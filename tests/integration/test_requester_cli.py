"""`veritrain job ...` run as a user runs it (subprocesses), on the real stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_requester_support import (
    TestWorker,
    digits,
    digits_spec,
    travel,
    wait_with_clock,
    worker_env,
    write_spec,
)

from veritrain.deployments import save
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_local
from veritrain.storage import IpfsStorage

REQUESTER, ALICE = dev_account(1), dev_account(2)


def run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "veritrain.cli", "job", *args], env=env,
                          capture_output=True, text=True, timeout=180)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def cli_env(fresh_chain, anvil, ipfs, tmp_path: Path):  # type: ignore[no-untyped-def]
    deployment = deploy_local(fresh_chain, dev_account(0), mint_to=[REQUESTER.address, ALICE.address])
    path = save(deployment, tmp_path / "deployment.json")
    env = {**os.environ, "VERITRAIN_RPC_URL": anvil.url, "VERITRAIN_DEPLOYMENT": str(path),
           "VERITRAIN_IPFS_API": ipfs.url, "VERITRAIN_HOME": str(tmp_path / "home")}
    env.pop("VERITRAIN_REQUESTER_KEY", None)
    return env, deployment


def test_submit_serve_status_fetch_as_a_user(cli_env, anvil, ipfs, w3, tmp_path):  # type: ignore[no-untyped-def]
    env, deployment = cli_env
    spec = digits_spec(num_shards=1)
    spec_path = write_spec(spec, tmp_path / "spec.json")
    x, y = digits()
    np.savez(tmp_path / "digits.npz", features=x, labels=y)

    out = run(env, "submit", str(spec_path), "--data", str(tmp_path / "digits.npz"), "--reward", "2.5",
              "--stake", "1", "--dev-account", "1", "--json")
    posted = json.loads(out.stdout)
    job_id = posted["job_id"]
    assert job_id == 1 and posted["post_tx"].startswith("0x")

    wk = TestWorker(anvil.url, ALICE, deployment, IpfsStorage(ipfs.url), tmp_path / "nonces")
    task_id = wk.claim(job_id, 0)
    served = run(env, "serve", "--once", "--dev-account", "1")
    assert f"task {task_id}" in served.stdout
    assert run(env, "serve", "--once", "--dev-account", "1").stdout == ""  # never twice
    wk.submit(wk.train(task_id, wk.wait_key(task_id, timeout=5)))

    status = json.loads(run(env, "status", str(job_id), "--dev-account", "1", "--json").stdout)
    assert status["tasks"][0]["phase"] == "revealed" and not status["done"]
    assert status["escrow"] == 25 * 10**17
    travel(w3, spec.deadlines.challenge_window + 1)
    wk.finalize(task_id)
    watched = run(env, "watch", str(job_id), "--dev-account", "1", "--interval", "0.1")
    assert "1/1 tasks final" in watched.stdout and f"task {task_id}:finalized" in watched.stdout

    fetched = json.loads(run(env, "fetch", str(job_id), "--out", str(tmp_path / "model.safetensors"),
                             "--dev-account", "1", "--json").stdout)
    assert fetched["metrics"]["holdout_accuracy"] > 0.5
    assert fetched["provenance"]["tasks"][0]["worker"] == ALICE.address
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), "np") as f:
        assert json.loads(f.metadata()["veritrain.provenance"])["job_id"] == job_id


def test_two_rounds_as_a_user(cli_env, anvil, ipfs, w3, tmp_path):  # type: ignore[no-untyped-def]
    """submit a 2-round spec; `job serve --job ID` serves keys and posts round 1 from round 0's
    verified aggregate, then exits when the job has ended; a real worker process trains both
    rounds; status and fetch show both rounds."""
    env, deployment = cli_env
    deadlines = {"key_window": 600, "submission_window": 3600, "reveal_window": 600, "challenge_window": 3}
    spec = digits_spec(num_shards=1, rounds=2, deadlines=deadlines)
    spec_path = write_spec(spec, tmp_path / "spec.json")
    x, y = digits()
    np.savez(tmp_path / "digits.npz", features=x, labels=y)
    posted = json.loads(run(env, "submit", str(spec_path), "--data", str(tmp_path / "digits.npz"), "--reward",
                            "2.5", "--stake", "1", "--dev-account", "1", "--json").stdout)
    job_id = posted["job_id"]

    wenv = worker_env(ALICE, tmp_path, rpc_url=anvil.url, deployment=Path(env["VERITRAIN_DEPLOYMENT"]),
                      ipfs_url=ipfs.url)
    with open(tmp_path / "serve.log", "w") as serve_out, open(tmp_path / "worker.log", "w") as worker_out:
        serve = subprocess.Popen([sys.executable, "-m", "veritrain.cli", "job", "serve", "--job", str(job_id),
                                  "--interval", "0.2", "--dev-account", "1"], env=env, stdout=serve_out,
                                 stderr=subprocess.STDOUT, text=True)
        worker_argv = [sys.executable, "-m", "veritrain.cli", "worker", "run", "--max-tasks", "2"]
        worker = subprocess.Popen(worker_argv, env=wenv, stdout=worker_out, stderr=subprocess.STDOUT,
                                  text=True)
        wait_with_clock(w3, worker, 240)
        wait_with_clock(w3, serve, 60)  # it stops by itself once the last round has ended
    served = (tmp_path / "serve.log").read_text()
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert serve.returncode == 0 and "every job served has ended" in served, served[-3000:]
    assert served.count("posted the next round") == 1, served
    assert served.count("ended and is closed") == 2, served  # both round jobs: leftover escrow back

    status = json.loads(run(env, "status", str(job_id), "--dev-account", "1", "--json").stdout)
    assert status["done"] and len(status["tasks"]) == 2
    fetched = json.loads(run(env, "fetch", str(job_id), "--out", str(tmp_path / "model.safetensors"),
                             "--dev-account", "1", "--json").stdout)
    rounds = fetched["provenance"]["rounds"]
    assert [r["job_id"] for r in rounds][0] == job_id and len(rounds) == 2 and rounds[1]["job_id"] != job_id
    assert sorted((t["round"], t["shard"]) for t in fetched["provenance"]["tasks"]) == [(0, 0), (1, 0)]
    assert fetched["metrics"]["rounds"] == 2 and fetched["metrics"]["holdout_accuracy"] > 0.5


def test_user_errors_are_one_line_and_exit_1(cli_env, tmp_path):  # type: ignore[no-untyped-def]
    env, _ = cli_env
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nmodel: {name: nope}\n")
    for args, needle in [
        (("status", "42", "--dev-account", "1"), "no job 42"),
        (("submit", str(bad), "--data", "x.npz", "--dev-account", "1"), "model.name"),
        (("status", "1"), "no requester account"),
    ]:
        proc = run(env, *args, ok=False)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.startswith("error: ") and needle in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_example_script_deploys_and_posts(anvil, ipfs, fresh_chain, tmp_path):  # type: ignore[no-untyped-def]
    env = {**os.environ, "VERITRAIN_RPC_URL": anvil.url, "VERITRAIN_DEPLOYMENT": str(tmp_path / "d.json"),
           "VERITRAIN_IPFS_API": ipfs.url, "VERITRAIN_HOME": str(tmp_path / "home")}
    script = Path(__file__).resolve().parents[2] / "examples" / "requester_digits.py"
    proc = subprocess.run([sys.executable, str(script), "--deploy", "--post-only"], env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "posted job 1 " in proc.stdout and (tmp_path / "d.json").exists()
    listed = run({**env}, "list", "--dev-account", "1", "--json")
    assert [j["job_id"] for j in json.loads(listed.stdout)] == [1]
