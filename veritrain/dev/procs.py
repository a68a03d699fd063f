"""Process helpers for the dev stack: free ports, identity-checked PIDs, readiness probes.

Pure standard library so ``veritrain dev status`` stays fast (no web3, no torch).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone.

    Recorded with every PID so a recycled PID is never mistaken for our process.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces; fields after the last ')' are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is as good as gone
        return None
    return int(fields[19])


def is_alive(pid: int, started: int | None) -> bool:
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def anvil_cache_args(folder: Path) -> list[str]:
    """Anvil's ``--cache-path``: where it writes the chain's older states (those past the 500 it
    keeps in memory). Left to itself it writes them under ``~/.foundry/anvil/tmp`` and removes
    them only on a clean exit, which a stopped (signalled) Anvil never has: each run of a busy
    chain left up to 5 GB there, and the suite's runs filled a CI disk. Each Anvil we start gets
    a folder of its own instead, and whoever stops it removes the folder
    (:func:`remove_anvil_cache`)."""
    return ["--cache-path", str(folder)]


def remove_anvil_cache(folder: Path) -> None:
    """Remove an Anvil's state cache (after that Anvil has stopped)."""
    shutil.rmtree(folder, ignore_errors=True)


def stop_pid(pid: int, started: int | None, timeout: float = 10.0) -> bool:
    """SIGTERM ``pid`` (only if it is still the process we started), SIGKILL after ``timeout``.

    Returns True if a process was stopped. Reaps it when it is our child.
    """
    if not is_alive(pid, started):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_alive(pid, started):
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    for _ in range(100):
        _reap(pid)
        if not is_alive(pid, started):
            break
        time.sleep(0.05)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def http_post_json(url: str, body: dict | None = None, timeout: float = 2.0) -> object:
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def anvil_chain_id(port: int, timeout: float = 2.0) -> int | None:
    """eth_chainId from an RPC node on ``port``, or None if it does not answer."""
    try:
        reply = http_post_json(
            f"http://127.0.0.1:{port}",
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            timeout,
        )
    except (OSError, urllib.error.URLError, ValueError):
        return None
    if isinstance(reply, dict) and "result" in reply:
        return int(reply["result"], 16)
    return None


def ipfs_version(port: int, timeout: float = 2.0) -> str | None:
    """The IPFS daemon's version from /api/v0/version on ``port``, or None."""
    try:
        reply = http_post_json(f"http://127.0.0.1:{port}/api/v0/version", None, timeout)
    except (OSError, urllib.error.URLError, ValueError):
        return None
    if isinstance(reply, dict) and "Version" in reply:
        return str(reply["Version"])
    return None


def tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])
