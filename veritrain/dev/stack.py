"""The local stack: a real Anvil chain and a real IPFS node, started and stopped by PID.

``veritrain dev up|status|down`` and the pytest fixtures use this same code. Every process
we start is recorded (PID, its kernel start time, port, log) in a state file, and only
those processes are ever stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from veritrain.dev import chainstate, procs
from veritrain.dev.accounts import DEV_ACCOUNT_COUNT
from veritrain.errors import PortInUseError, SetupError, StackError
from veritrain.settings import StackSettings

ANVIL_REL = Path("@foundry-rs/anvil-linux-amd64/bin/anvil")
IPFS_CLI_REL = Path("ipfs/src/cli.js")
#: js-ipfs 0.66 on Node 20 needs Promise.withResolvers (toolchain.md, workaround 1).
POLYFILL = Path(__file__).with_name("node_polyfill.cjs")
SERVICES = ("anvil", "ipfs")
#: The chain's clock (veritrain.dev.clock) runs beside Anvil whenever ``block_time > 0``.
CLOCK = "clock"


@dataclass
class Service:
    name: str
    pid: int
    started: int | None
    port: int
    log: str
    url: str


@dataclass
class StackState:
    home: str
    services: dict[str, Service] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"home": self.home, "services": {k: asdict(v) for k, v in self.services.items()}},
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> StackState:
        raw = json.loads(text)
        return cls(
            home=raw["home"],
            services={k: Service(**v) for k, v in raw.get("services", {}).items()},
        )


class Stack:
    """One local stack rooted at ``settings.home``."""

    def __init__(self, settings: StackSettings | None = None) -> None:
        self.settings = settings or StackSettings()
        self.home = self.settings.home.resolve()
        #: What the last start of Anvil dropped from its state file (see ``chainstate``).
        self.compaction: chainstate.Compaction | None = None

    # ----------------------------------------------------------------------------- paths
    @property
    def dev_dir(self) -> Path:
        return self.home / "dev"

    @property
    def anvil_cache(self) -> Path:
        """Anvil's cache of older chain states (see :func:`procs.anvil_cache_args`)."""
        return self.dev_dir / "anvil-cache"

    @property
    def state_file(self) -> Path:
        return self.dev_dir / "stack.json"

    def _tool(self, rel: Path, what: str) -> Path:
        path = self.settings.node_modules.resolve() / rel
        if not path.exists():
            raise SetupError(
                f"{what} not found at {path}: run `make setup` (it installs node_modules)"
            )
        return path

    # ----------------------------------------------------------------------------- state
    def read_state(self) -> StackState | None:
        try:
            return StackState.from_json(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise StackError(
                f"state file {self.state_file} is unreadable ({exc}): "
                "stop the stack's processes by hand and delete the file"
            ) from exc

    def _write_state(self, state: StackState) -> None:
        self.dev_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(state.to_json())
        os.replace(tmp, self.state_file)

    def live_services(self, state: StackState) -> dict[str, Service]:
        return {k: s for k, s in state.services.items() if procs.is_alive(s.pid, s.started)}

    # ----------------------------------------------------------------------------- up
    def up(self, services: tuple[str, ...] = SERVICES, fresh: bool = False) -> StackState:
        """Start the services, wait until each answers, record them. All or nothing.

        The chain's state persists across restarts; ``fresh`` starts from an empty chain.
        """
        if "anvil" in services and self.settings.block_time > 0:
            services = (*services, CLOCK)  # the clock goes (and restarts) with its chain
        previous = self.read_state()
        kept: dict[str, Service] = {}
        if previous is not None:
            live = self.live_services(previous)
            clash = {k: v for k, v in live.items() if k in services and k != CLOCK}
            if clash:
                pids = ", ".join(f"{k} pid {s.pid}" for k, s in clash.items())
                raise StackError(
                    f"a stack is already running from {self.home} ({pids}): "
                    "use it, or run `veritrain dev down` first"
                )
            if live and fresh:
                raise StackError("--fresh empties the chain: stop the running stack first "
                                 "(`veritrain dev down`)")
            # a running service not asked for stays (`dev up --only ipfs` restarts just IPFS)
            kept = {k: v for k, v in live.items() if k not in services}
            for name in (k for k in live if k in services):  # a clock left behind by its chain
                procs.stop_pid(live[name].pid, live[name].started)
            if not kept:
                self.state_file.unlink()  # stale: every recorded process is gone
        ports = {"anvil": self.settings.anvil_port, "ipfs": self.settings.ipfs_api_port, CLOCK: 0}
        if kept and previous is not None:  # restarting part of a stack keeps its ports
            ports.update({k: v.port for k, v in previous.services.items() if k in services})
        for name in services:
            if ports[name] and procs.port_in_use(ports[name]):
                env = "VERITRAIN_ANVIL_PORT" if name == "anvil" else "VERITRAIN_IPFS_API_PORT"
                raise PortInUseError(
                    f"port {ports[name]} for {name} is taken by another process: "
                    f"stop that process or choose another port with {env}"
                )
        # Check every tool before starting anything, so a missing one leaves nothing behind.
        starters = {"anvil": self._start_anvil, "ipfs": self._start_ipfs, CLOCK: self._start_clock}
        if "anvil" in services:
            self._tool(ANVIL_REL, "anvil")
        if "ipfs" in services:
            self._tool(IPFS_CLI_REL, "the js-ipfs daemon")
        if fresh:
            (self.dev_dir / "anvil-state.json").unlink(missing_ok=True)
        state = StackState(home=str(self.home), services=dict(kept))
        try:
            for name in services:
                state.services[name] = starters[name](ports[name])
                self._write_state(state)
        except BaseException:
            for name, svc in state.services.items():
                if name not in kept:
                    procs.stop_pid(svc.pid, svc.started)
            if kept:
                self._write_state(StackState(home=str(self.home), services=dict(kept)))
            else:
                self.state_file.unlink(missing_ok=True)
            raise
        return state

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> tuple[int, Path]:
        self.dev_dir.mkdir(parents=True, exist_ok=True)
        log = self.dev_dir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # Ctrl-C in the shell does not kill the stack
            )
        return proc.pid, log

    def _wait(self, name: str, pid: int, log: Path, probe) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + self.settings.startup_timeout
        while time.monotonic() < deadline:
            if probe() is not None:
                return
            if procs.start_time(pid) is None:
                raise StackError(f"{name} exited during start-up: {procs.tail(log)} (log: {log})")
            time.sleep(0.1)
        raise StackError(
            f"{name} did not answer within {self.settings.startup_timeout:.0f} s "
            f"(log: {log}); raise VERITRAIN_STARTUP_TIMEOUT on a slow machine"
        )

    def _start_anvil(self, port: int) -> Service:
        anvil = self._tool(ANVIL_REL, "anvil")
        chain_state = self.dev_dir / "anvil-state.json"
        argv = [str(anvil), "--port", str(port), "--host", "127.0.0.1", "--silent"]
        argv += ["--accounts", str(DEV_ACCOUNT_COUNT)]
        argv += ["--state", str(chain_state)]
        self.compaction = chainstate.compact(chain_state)  # old empty blocks: issue 25
        procs.remove_anvil_cache(self.anvil_cache)  # left by an Anvil that was killed
        argv += procs.anvil_cache_args(self.anvil_cache)
        if self.settings.anvil_state_interval:
            argv += ["--state-interval", str(self.settings.anvil_state_interval)]
        argv += list(self.settings.anvil_extra_args)
        pid, log = self._spawn("anvil", argv, dict(os.environ))
        started = procs.start_time(pid)
        self._wait("anvil", pid, log, lambda: procs.anvil_chain_id(port))
        return Service("anvil", pid, started, port, str(log), f"http://127.0.0.1:{port}")

    def _start_clock(self, _port: int) -> Service:
        import sys

        rpc = f"http://127.0.0.1:{self.settings.anvil_port}"
        anvil = self.read_state()
        if anvil is not None and "anvil" in anvil.services:
            rpc = anvil.services["anvil"].url
        argv = [sys.executable, "-m", "veritrain.dev.clock", "--rpc", rpc,
                "--interval", f"{self.settings.block_time:g}"]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                          env.get("PYTHONPATH", "")]))
        pid, log = self._spawn(CLOCK, argv, env)
        started = procs.start_time(pid)
        what = f"a block every {self.settings.block_time:g} s when quiet"
        return Service(CLOCK, pid, started, 0, str(log), what)

    def _start_ipfs(self, port: int) -> Service:
        cli = self._tool(IPFS_CLI_REL, "the js-ipfs daemon")
        repo = self.home / "ipfs"
        env = dict(os.environ)
        env["IPFS_PATH"] = str(repo)
        env["NODE_OPTIONS"] = f"{env.get('NODE_OPTIONS', '')} -r {POLYFILL}".strip()
        ensure_ipfs_repo(cli, repo, env)
        configure_ipfs_repo(repo, port)
        node = shutil.which("node") or "node"
        pid, log = self._spawn("ipfs", [node, str(cli), "daemon", "--offline"], env)
        started = procs.start_time(pid)
        self._wait("ipfs", pid, log, lambda: procs.ipfs_version(port))
        return Service("ipfs", pid, started, port, str(log), f"/ip4/127.0.0.1/tcp/{port}/http")

    # ----------------------------------------------------------------------------- down
    def down(self) -> list[Service]:
        """Stop exactly the recorded processes; returns those that were still running."""
        state = self.read_state()
        if state is None:
            return []
        stopped = [s for s in state.services.values() if procs.stop_pid(s.pid, s.started)]
        if "anvil" in state.services:
            procs.remove_anvil_cache(self.anvil_cache)
        self.state_file.unlink(missing_ok=True)
        return stopped

    def exports(self, state: StackState) -> dict[str, str]:
        """The environment a role needs to use this stack from any shell and folder."""
        env = {"VERITRAIN_HOME": str(self.home)}
        if "anvil" in state.services:
            env["VERITRAIN_RPC_URL"] = state.services["anvil"].url
            env["APE_FOUNDRY_HOST"] = state.services["anvil"].url
        if "ipfs" in state.services:
            env["VERITRAIN_IPFS_API"] = state.services["ipfs"].url
        return env

    def status(self) -> dict[str, object]:
        """A JSON-able picture: each recorded service, whether it runs and answers."""
        state = self.read_state()
        if state is None:
            return {"running": False, "home": str(self.home), "services": {}}
        out: dict[str, object] = {}
        for name, svc in state.services.items():
            alive = procs.is_alive(svc.pid, svc.started)
            answer: int | str | None
            if name == "anvil":
                answer = procs.anvil_chain_id(svc.port) if alive else None
            elif name == CLOCK:
                answer = "ticking" if alive else None
            else:
                answer = procs.ipfs_version(svc.port) if alive else None
            out[name] = {**asdict(svc), "alive": alive, "answers": answer is not None,
                         "detail": answer}
        running = bool(out) and all(v["alive"] for v in out.values())  # type: ignore[index]
        return {"running": running, "home": str(self.home), "services": out}


def ensure_ipfs_repo(cli: Path, repo: Path, env: dict[str, str]) -> None:
    """Initialise an IPFS repo at ``repo`` once (~5 s); later starts reuse it."""
    if (repo / "config").exists():
        return
    repo.parent.mkdir(parents=True, exist_ok=True)
    node = shutil.which("node") or "node"
    result = subprocess.run(
        [node, str(cli), "init", "--empty-repo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0 or not (repo / "config").exists():
        shutil.rmtree(repo, ignore_errors=True)
        raise StackError(f"`jsipfs init` failed for {repo}: {result.stderr.strip()[-400:]}")


def configure_ipfs_repo(repo: Path, api_port: int) -> None:
    """Offline, loopback only: no swarm, no bootstrap, API on ``api_port``, no gateway.

    js-ipfs ``daemon --offline`` hangs without serving the API while swarm addresses are
    set (toolchain.md, workaround 2).
    """
    path = repo / "config"
    config = json.loads(path.read_text())
    addresses = config.setdefault("Addresses", {})
    addresses["Swarm"] = []
    addresses["API"] = f"/ip4/127.0.0.1/tcp/{api_port}"
    addresses["Gateway"] = ""  # an empty string turns the gateway off
    addresses["RPC"] = ""  # and the gRPC endpoint, so two stacks never share a port
    addresses["Delegates"] = []
    config["Bootstrap"] = []
    discovery = config.setdefault("Discovery", {})
    discovery["MDNS"] = {"Enabled": False}
    discovery["webRTCStar"] = {"Enabled": False}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2))
    os.replace(tmp, path)
