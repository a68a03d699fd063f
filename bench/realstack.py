"""Process helpers for the real-stack benchmarks: one Anvil + IPFS stack on free ports, the
deployed contracts, role processes started through their CLIs (``veritrain job|worker|verifier``,
``python -m adversary worker``) and stopped by the PIDs recorded here, chain reads from events.

veritrain never imports the role packages: everything a role does here, it does in its own
process. Only what the demo's orchestration lacks lives here (see protocol.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veritrain import lifeline

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench"
#: Dev-account roles on the bench stack (the test mnemonic's 20 funded accounts).
DEPLOYER, REQUESTER = 0, 1
VERIFIERS = (10, 11, 12, 13)
WORKER_POOL = (2, 3, 4, 5, 6, 7, 8, 9, 14, 15, 16, 17, 18, 19)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class BenchStack:
    """A fresh stack under ``work``; ``close()`` stops every process it started, by PID."""

    def __init__(self, work: Path, anvil_args: tuple[str, ...] = ()) -> None:
        self.work = work
        self.anvil_args = anvil_args
        self.procs: list[Proc] = []
        self.stack: Any = None
        self.t_up = 0.0

    # ------------------------------------------------------------------ lifecycle
    def up(self) -> BenchStack:
        from web3 import HTTPProvider, Web3

        from veritrain.deployments import save
        from veritrain.dev import procs
        from veritrain.dev.accounts import dev_account
        from veritrain.dev.deploy import deploy_local
        from veritrain.dev.stack import Stack
        from veritrain.settings import StackSettings

        t0 = time.perf_counter()
        settings = StackSettings(
            home=self.work / "home",
            anvil_port=procs.free_port(),
            ipfs_api_port=procs.free_port(),
            anvil_state_interval=0,
            anvil_extra_args=self.anvil_args,
        )
        self.stack = Stack(settings)
        state = self.stack.up()
        self.rpc = state.services["anvil"].url
        self.ipfs = state.services["ipfs"].url
        self.w3 = Web3(HTTPProvider(self.rpc, request_kwargs={"timeout": 60}))
        self.deployment = deploy_local(self.w3, dev_account(DEPLOYER))
        self.dep_path = save(self.deployment, self.work / "deployment.json")
        from veritrain.artifacts import artifact

        self.c: dict[str, Any] = {
            n: self.w3.eth.contract(
                address=Web3.to_checksum_address(self.deployment.address(n)), abi=artifact(n)["abi"]
            )
            for n, a in self.deployment.contracts.items()
            if n != "DevToken"
        }
        self.t_up = time.perf_counter() - t0
        return self

    def close(self) -> None:
        for p in self.procs:
            stop(p)
        if self.stack is not None:
            self.stack.down()

    def __enter__(self) -> BenchStack:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ processes
    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "VERITRAIN_RPC_URL": self.rpc,
            "VERITRAIN_DEPLOYMENT": str(self.dep_path),
            "VERITRAIN_IPFS_API": self.ipfs,
            "VERITRAIN_HOME": str(self.work / "requester-home"),
            "PYTHONUNBUFFERED": "1",
        }
        env.update(extra)
        return env

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        log = self.work / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            popen = subprocess.Popen(  # dies with the bench (lifeline)
                argv, env={**env, **lifeline.env_for_child()}, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def cli(self, args: list[str], timeout: float = 300, **env: str) -> str:
        """Run ``veritrain <args>`` to completion; its stdout (raises with the output on failure)."""
        out = subprocess.run(
            [sys.executable, "-m", "veritrain.cli", *args],
            env=self.env(**env),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise RuntimeError(
                f"veritrain {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()[-2000:]}"
            )
        return out.stdout

    def keystore(self, index: int) -> Path:
        from eth_account import Account

        from veritrain.dev.accounts import dev_account

        path = self.work / "keys" / f"worker-{index}.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                json.dumps(Account.encrypt(bytes(dev_account(index).key), PASSWORD, iterations=2))
            )
        return path

    def worker_env(self, index: int, home: Path) -> dict[str, str]:
        return self.env(
            VERITRAIN_WORKER_HOME=str(home),
            VERITRAIN_WORKER_KEYSTORE=str(self.keystore(index)),
            VERITRAIN_WORKER_PASSWORD=PASSWORD,
            VERITRAIN_WORKER_POLL_INTERVAL="0.5",
            VERITRAIN_WORKER_WITHDRAW_THRESHOLD="1",
        )

    def start_worker(
        self,
        name: str,
        index: int,
        home: Path,
        extra: list[str] | None = None,
        module: list[str] | None = None,
    ) -> Proc:
        argv = [sys.executable, "-m", *(module or ["veritrain.cli", "worker", "run"]), *(extra or [])]
        return self.spawn(name, argv, self.worker_env(index, home))

    def start_verifier(self, index: int) -> Proc:
        home = self.work / f"verifier-{index}"
        from veritrain.dev import procs

        env = self.env(
            VERITRAIN_VERIFIER_DEV_ACCOUNT=str(index),
            VERITRAIN_VERIFIER_HOME=str(home),
            VERITRAIN_VERIFIER_API_PORT=str(procs.free_port()),
            VERITRAIN_VERIFIER_POLL_INTERVAL="0.5",
        )
        proc = self.spawn(
            f"verifier-{index}", [sys.executable, "-m", "veritrain.cli", "verifier", "run"], env
        )
        proc.home = home  # type: ignore[attr-defined]
        proc.api = f"http://127.0.0.1:{env['VERITRAIN_VERIFIER_API_PORT']}"  # type: ignore[attr-defined]
        return proc

    # ------------------------------------------------------------------ chain
    def mine(self) -> None:
        """Chain time follows the clock only when blocks are mined (automine)."""
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def warp(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.mine()

    def events(self, contract: str, event: str, from_block: int) -> list[Any]:
        ev = getattr(self.c[contract].events, event)
        return list(ev().get_logs(from_block=from_block, to_block="latest"))

    def failed_transactions(self, from_block: int) -> list[dict[str, Any]]:
        """Every mined transaction with status 0 since ``from_block``."""
        failed = []
        for n in range(from_block, self.w3.eth.block_number + 1):
            res = self.w3.provider.make_request("eth_getBlockReceipts", [hex(n)])  # type: ignore[arg-type]
            for r in res.get("result") or []:
                if int(r["status"], 16) == 0:
                    failed.append({"block": n, "from": r["from"], "to": r["to"], "tx": r["transactionHash"]})
        return failed


def verifier_stats(proc: Proc) -> dict[str, Any] | None:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{proc.api}/stats", timeout=3) as r:  # type: ignore[attr-defined]
            return dict(json.loads(r.read()))
    except (OSError, ValueError):
        return None


def stop(proc: Proc, timeout: float = 15.0) -> int | None:
    """SIGTERM (the roles stop after their current step), then SIGKILL; this process group only."""
    if proc.alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGTERM)
        try:
            proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait()
    return proc.popen.returncode
