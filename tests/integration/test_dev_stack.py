"""`veritrain dev up|status|down` as a user runs it, and the failures it must explain."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from veritrain.dev import procs

VERITRAIN = [sys.executable, "-m", "veritrain.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VERITRAIN, *args], capture_output=True, text=True, timeout=180,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    yield tmp_path
    run("dev", "down", "--home", str(tmp_path))  # never leave a process behind


def ports() -> list[str]:
    return ["--anvil-port", str(procs.free_port()), "--ipfs-port", str(procs.free_port())]


def test_up_status_down_leaves_no_process(home: Path) -> None:
    up = run("dev", "up", "--home", str(home), *ports(), "--json")
    assert up.returncode == 0, up.stderr
    status = json.loads(run("dev", "status", "--home", str(home), "--json").stdout)
    assert status["running"] is True
    services = status["services"]
    assert set(services) == {"anvil", "ipfs", "clock"}
    assert services["anvil"]["detail"] == 31337
    assert services["ipfs"]["answers"] is True
    pids = {name: (svc["pid"], svc["started"]) for name, svc in services.items()}
    assert all(procs.is_alive(pid, started) for pid, started in pids.values())

    down = run("dev", "down", "--home", str(home))
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not any(procs.is_alive(pid, started) for pid, started in pids.values())
    assert not (home / "dev" / "stack.json").exists()
    assert json.loads(run("dev", "status", "--home", str(home), "--json").stdout)["running"] is False


def test_second_up_is_refused_while_running(home: Path) -> None:
    args = ports()
    assert run("dev", "up", "--home", str(home), *args).returncode == 0
    again = run("dev", "up", "--home", str(home), *args)
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "already running" in again.stderr
    assert "Traceback" not in again.stderr


def test_taken_port_is_named_and_nothing_is_left(home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("dev", "up", "--home", str(home), "--anvil-port", str(port),
                     "--ipfs-port", str(procs.free_port()))
    assert result.returncode == 1
    assert f"port {port} for anvil is taken" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (home / "dev" / "stack.json").exists()


def test_stale_state_file_is_cleaned(home: Path) -> None:
    (home / "dev").mkdir(parents=True)
    stale = {"home": str(home), "services": {"anvil": {
        "name": "anvil", "pid": 999_999, "started": 1, "port": 1, "log": "x", "url": "x"}}}
    (home / "dev" / "stack.json").write_text(json.dumps(stale))
    down = run("dev", "down", "--home", str(home))
    assert down.returncode == 0 and "already gone" in down.stdout
    assert not (home / "dev" / "stack.json").exists()


def test_missing_node_modules_is_explained(home: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    empty = tmp_path_factory.mktemp("no_node_modules")
    result = run("dev", "up", "--home", str(home), *ports(),
                 env={"VERITRAIN_NODE_MODULES": str(empty)})
    assert result.returncode == 1
    assert "anvil not found" in result.stderr and "make setup" in result.stderr
    assert not (home / "dev" / "stack.json").exists()


def _rpc(url: str, method: str) -> object:
    reply = procs.http_post_json(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": []})
    assert isinstance(reply, dict)
    return reply["result"]


def test_the_chain_keeps_time_and_ipfs_restarts_alone(home: Path) -> None:
    import time

    up = run("dev", "up", "--home", str(home), *ports(), "--block-time", "0.5")
    assert up.returncode == 0, up.stderr
    exports = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines()
                   if line.startswith("export "))
    rpc = exports["VERITRAIN_RPC_URL"]
    assert exports["VERITRAIN_HOME"] == str(home.resolve()) and exports["APE_FOUNDRY_HOST"] == rpc
    assert exports["VERITRAIN_IPFS_API"].startswith("/ip4/127.0.0.1/tcp/")
    # nobody transacts, yet blocks come and their timestamps follow the clock
    first = int(str(_rpc(rpc, "eth_blockNumber")), 16)
    time.sleep(3)
    assert int(str(_rpc(rpc, "eth_blockNumber")), 16) >= first + 2
    assert _rpc(rpc, "anvil_getAutomine") is True  # each transaction still mined at once (Ape needs it)

    state = json.loads(run("dev", "status", "--home", str(home), "--json").stdout)["services"]
    os.kill(state["ipfs"]["pid"], 15)  # the IPFS node dies; the chain runs on
    for _ in range(100):
        if not procs.is_alive(state["ipfs"]["pid"], state["ipfs"]["started"]):
            break
        time.sleep(0.1)
    again = run("dev", "up", "--home", str(home), "--only", "ipfs")
    assert again.returncode == 0, again.stderr
    after = json.loads(run("dev", "status", "--home", str(home), "--json").stdout)
    assert after["running"] is True and after["services"]["ipfs"]["answers"] is True
    assert after["services"]["ipfs"]["port"] == state["ipfs"]["port"]  # same port, same exports
    assert after["services"]["anvil"]["pid"] == state["anvil"]["pid"]  # the chain was not touched
    assert after["services"]["clock"]["pid"] == state["clock"]["pid"]
    refused = run("dev", "up", "--home", str(home), "--only", "ipfs")
    assert refused.returncode == 1 and "already running" in refused.stderr
    bad = run("dev", "up", "--home", str(home), "--only", "redis")
    assert bad.returncode == 1 and "choose one of anvil, ipfs" in bad.stderr


def test_anvil_keeps_old_states_in_the_stack_and_down_removes_them(home: Path, tmp_path_factory) -> None:
    """Anvil writes chain states past its 500 in memory to disk, by default under
    ~/.foundry/anvil/tmp, and only a clean exit removes them: each killed Anvil of a busy run
    left GBs there until a CI disk filled. The stack's Anvil writes into the stack, and
    `dev down` removes what it wrote."""
    fake_home = tmp_path_factory.mktemp("user-home")
    env = {"HOME": str(fake_home)}
    args = ports()
    assert run("dev", "up", "--home", str(home), *args, "--only", "anvil", env=env).returncode == 0
    url = f"http://127.0.0.1:{args[1]}"
    for _ in range(7):  # 700 blocks, 100 a call
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": ["0x64"]})
        req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
        assert "error" not in json.loads(urllib.request.urlopen(req, timeout=60).read())
    cache = home / "dev" / "anvil-cache"
    assert cache.is_dir() and any(cache.rglob("*")), "Anvil persisted no state past 500 blocks"
    assert not (fake_home / ".foundry" / "anvil" / "tmp").exists() or not any(
        (fake_home / ".foundry" / "anvil" / "tmp").iterdir())
    assert run("dev", "down", "--home", str(home), env=env).returncode == 0
    assert not cache.exists()


def _call(url: str, method: str, params: list[object]) -> object:
    reply = procs.http_post_json(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, 60.0)
    assert isinstance(reply, dict) and "error" not in reply, reply
    return reply["result"]


def _send(url: str, tx: dict[str, object]) -> dict[str, object]:
    """Send from an unlocked dev account and wait for the receipt (after `anvil_mine`, Anvil
    answers with the hash before the block is mined)."""
    import time

    tx_hash = _call(url, "eth_sendTransaction", [tx])
    for _ in range(200):
        receipt = _call(url, "eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            assert isinstance(receipt, dict)
            return receipt
        time.sleep(0.05)
    raise AssertionError(f"{tx_hash} was not mined")


#: Init code of a contract whose runtime emits one LOG0 on every call (runtime 60006000a000).
_LOGGER = "0x6006600c60003960066000f3" + "60006000a000"


def test_a_restart_drops_old_empty_blocks_and_keeps_every_event(home: Path) -> None:
    """An idle dev chain grew its state file by ~1.75 kB a block, for ever (issue 25). `dev up`
    now drops empty blocks older than the newest 1,000 from the file before Anvil loads it; the
    blocks with transactions stay, so every event and receipt stays readable."""
    args = ports()
    up = ("dev", "up", "--home", str(home), *args, "--only", "anvil", "--block-time", "0")
    assert run(*up).returncode == 0
    url = f"http://127.0.0.1:{args[1]}"
    sender = _call(url, "eth_accounts", [])[0]  # type: ignore[index]
    logger = _send(url, {"from": sender, "data": _LOGGER})["contractAddress"]
    _send(url, {"from": sender, "to": logger})
    for _ in range(6):  # 3,000 empty blocks
        _call(url, "anvil_mine", ["0x1f4"])
    _send(url, {"from": sender, "to": logger})
    head = int(str(_call(url, "eth_blockNumber", [])), 16)
    logs_before = _call(url, "eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "address": logger}])
    assert len(logs_before) == 2  # type: ignore[arg-type]
    assert run("dev", "down", "--home", str(home)).returncode == 0
    state = home / "dev" / "anvil-state.json"
    size_before = state.stat().st_size

    again = run(*up)
    assert again.returncode == 0, again.stderr
    assert "chain state: kept" in again.stdout
    assert state.stat().st_size < size_before / 2
    assert int(str(_call(url, "eth_blockNumber", [])), 16) == head  # the same chain, same head
    everything = {"fromBlock": "0x0", "toBlock": "latest", "address": logger}
    assert _call(url, "eth_getLogs", [everything]) == logs_before
    assert _call(url, "eth_getBlockByNumber", [hex(head // 2), False]) is None  # an old empty block: gone
    assert _call(url, "eth_getBlockByNumber", [hex(head - 10), False]) is not None  # a recent one: kept
    _send(url, {"from": sender, "to": logger})  # and the chain goes on
    logs = _call(url, "eth_getLogs", [{"fromBlock": hex(head + 1), "toBlock": "latest", "address": logger}])
    assert len(logs) == 1  # type: ignore[arg-type]
