"""A remote-like chain on this machine (issue 18), startable from Python by anyone.

    with remote_chain(home) as net:          # Anvil + two provider proxies, all real processes
        net.urls                             # [primary proxy, secondary proxy]: a failover list
        net.anvil_url                        # the node itself (for the operator: deploy, reorg)
        net.write_profile(vt_home, deployment)   # [networks.remote-sim] in vt_home/networks.toml
        net.reorg(2); net.kill_primary(); net.stop_mining(); net.start_mining()
        net.counters()                       # what the providers saw: 429s, log pages, ...

The chain: Anvil mining a block every ``block_time`` seconds (no automine) under chain id
11155111. In front of it, two processes of ``tests/integration/rpc_proxy.py`` behave like
hosted providers: the *primary* caps ``eth_getLogs`` at ``log_range`` blocks and answers more
than ``rate`` requests a second with HTTP 429; the *secondary* caps log ranges the same way and
drops every ``drop_every``-th connection. Both append each raw transaction they forward to
``<home>/sent.jsonl``, so :func:`tx_census` can tell from the chain which transactions were
replaced (same sender and nonce, another hash mined) and which a reorg dropped and were sent
again. Every process started here is stopped by :meth:`RemoteChain.close` (and dies with its
parent, or after ``lifetime`` seconds, whatever happens).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veritrain.dev import procs

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The provider proxy (a plain script: it imports nothing of the project).
PROXY = REPO_ROOT / "tests" / "integration" / "rpc_proxy.py"
NETWORK = "remote-sim"
CHAIN_ID = 11155111


@dataclass
class Reorg:
    depth: int
    #: The first block number the reorg replaced.
    from_block: int
    #: The transactions in the replaced blocks, by hash: (sender, to, input). The chain forgets
    #: them (Anvil does not return them to the pool); whoever sent them must send them again.
    dropped: dict[str, tuple[str, str | None, str]]


@dataclass
class RemoteChain:
    home: Path
    anvil_url: str
    primary: str
    secondary: str
    log_range: int
    block_time: float
    chain_id: int = CHAIN_ID
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    reorgs: list[Reorg] = field(default_factory=list)
    #: The last counters read from each proxy (a killed proxy keeps its final figures).
    last_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    primary_killed: bool = False

    @property
    def urls(self) -> list[str]:
        return [self.primary, self.secondary]

    @property
    def record(self) -> Path:
        return self.home / "sent.jsonl"

    # ------------------------------------------------------------------ the node
    def rpc(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call straight to Anvil; raises on a JSON-RPC error."""
        reply: Any = procs.http_post_json(self.anvil_url, {"jsonrpc": "2.0", "id": 1, "method": method,
                                                           "params": params}, timeout=30)
        if reply.get("error"):
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result")

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber", []), 16)

    def stop_mining(self) -> None:
        """No more blocks until :meth:`start_mining` (transactions wait in the pool: stuck)."""
        self.rpc("evm_setIntervalMining", [0])

    def pending_senders(self) -> set[str]:
        """Addresses with a transaction waiting in the node's pool (``txpool_content``)."""
        content = self.rpc("txpool_content", [])
        return {str(a).lower() for a in (content.get("pending") or {})}

    def start_mining(self) -> None:
        self.rpc("evm_setIntervalMining", [max(1, round(self.block_time))])

    def reorg(self, depth: int) -> Reorg:
        """Replace the last ``depth`` blocks with empty ones (``anvil_reorg``); mining is held
        meanwhile, so the blocks read are exactly the blocks replaced."""
        self.stop_mining()
        try:
            head = self.head()
            first = head - depth + 1
            dropped = {}
            for number in range(first, head + 1):
                block = self.rpc("eth_getBlockByNumber", [hex(number), True])
                for tx in block["transactions"]:
                    dropped[str(tx["hash"]).lower()] = (str(tx["from"]).lower(),
                                                        str(tx["to"]).lower() if tx.get("to") else None,
                                                        str(tx["input"]).lower())
            self.rpc("anvil_reorg", [depth, []])
        finally:
            self.start_mining()
        done = Reorg(depth, first, dropped)
        self.reorgs.append(done)
        return done

    # ------------------------------------------------------------------ the providers
    def kill_primary(self) -> None:
        """The primary provider goes away for good (every client must fail over)."""
        self.proxy_stats()  # keep its final figures
        _stop(self.procs.pop("primary"))
        self.primary_killed = True

    def proxy_stats(self) -> dict[str, dict[str, int]]:
        for name, url in (("primary", self.primary), ("secondary", self.secondary)):
            if name in self.procs:
                stats = _get_stats(url)
                if stats is not None:
                    self.last_stats[name] = stats
        return self.last_stats

    def counters(self) -> dict[str, int]:
        """What the providers saw, summed over both (a killed primary: its last figures)."""
        stats = self.proxy_stats()
        total = lambda key: sum(int(s.get(key, 0)) for s in stats.values())  # noqa: E731
        return {"requests": total("requests"), "rate_limited": total("rate_limited"),
                "log_pages": total("get_logs") - total("range_refused"),
                "log_ranges_refused": total("range_refused"), "max_log_range": max(
                    (int(s.get("max_log_range", 0)) for s in stats.values()), default=0),
                "dropped_connections": total("dropped"),
                # every role lists the primary first: a request reaches the secondary only by failing over
                "failover_requests": int(stats.get("secondary", {}).get("requests", 0)),
                "reorgs": len(self.reorgs),
                "primary_killed": int(self.primary_killed)}

    # ------------------------------------------------------------------ the profile
    def profile_toml(self, deployment: Path | None = None, *, confirmations: int = 3,
                     replace_after: float = 4.0, ipfs_api: str | None = None) -> str:
        lines = [f"[networks.{NETWORK}]", f"chain_id = {self.chain_id}",
                 f"rpc_urls = {json.dumps(self.urls)}", f"confirmations = {confirmations}",
                 f"log_range = {self.log_range}", f"poll_interval = {self.block_time:g}",
                 'params = "local"']
        if ipfs_api:
            lines.append(f"ipfs_api = {json.dumps(ipfs_api)}")
        if deployment is not None:
            lines.append(f"deployment = {json.dumps(str(deployment))}")
        lines += ["", f"[networks.{NETWORK}.fees]", 'mode = "eip1559"', "max_fee_gwei = 100",
                  f"replace_after = {replace_after:g}", "bump_percent = 25"]
        return "\n".join(lines) + "\n"

    def write_profile(self, vt_home: Path, deployment: Path | None = None, **kw: Any) -> Path:
        """``vt_home/networks.toml`` with this network as ``remote-sim`` (``VERITRAIN_HOME=vt_home``)."""
        vt_home.mkdir(parents=True, exist_ok=True)
        path = vt_home / "networks.toml"
        path.write_text(self.profile_toml(deployment, **kw))
        return path

    def close(self) -> None:
        self.proxy_stats()
        for name in list(self.procs):
            _stop(self.procs.pop(name))


def _get_stats(url: str) -> dict[str, int] | None:
    try:
        with urllib.request.urlopen(url + "/stats", timeout=2) as r:
            return dict(json.loads(r.read()))
    except (OSError, ValueError):
        return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _wait(check: Any, what: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited during start-up (code {proc.returncode})")
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def remote_chain(home: Path, *, block_time: float = 1.0, chain_id: int = CHAIN_ID, log_range: int = 100,
                 rate: int = 40, drop_every: int = 25, lifetime: float = 1800.0) -> Iterator[RemoteChain]:
    """Start Anvil and the two provider proxies (logs in ``home``); stop them all on exit."""
    from veritrain.dev.accounts import DEV_ACCOUNT_COUNT
    from veritrain.dev.stack import ANVIL_REL
    from veritrain.settings import StackSettings

    home.mkdir(parents=True, exist_ok=True)
    anvil_port = procs.free_port()
    binary = StackSettings().node_modules / ANVIL_REL
    started: dict[str, subprocess.Popen[bytes]] = {}
    net: RemoteChain | None = None
    try:
        with open(home / "anvil.log", "ab") as log:
            started["anvil"] = subprocess.Popen(
                [str(binary), "--port", str(anvil_port), "--host", "127.0.0.1",
                 "--block-time", f"{block_time:g}", "--chain-id", str(chain_id),
                 "--accounts", str(DEV_ACCOUNT_COUNT), "--silent",
                 *procs.anvil_cache_args(home / "anvil-cache")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _wait(lambda: procs.anvil_chain_id(anvil_port) == chain_id, "anvil", started["anvil"])
        anvil_url = f"http://127.0.0.1:{anvil_port}"
        urls = {}
        roles = (("primary", ["--rate", str(rate)]), ("secondary", ["--drop-every", str(drop_every)]))
        for name, opts in roles:
            port = procs.free_port()
            argv = [sys.executable, str(PROXY), "--upstream", anvil_url, "--port", str(port),
                    "--log-range", str(log_range), "--lifetime", str(lifetime),
                    "--record", str(home / "sent.jsonl"), *opts]
            with open(home / f"proxy-{name}.log", "ab") as log:
                started[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL)
            urls[name] = f"http://127.0.0.1:{port}"
            url = urls[name]
            _wait(lambda url=url: _get_stats(url) is not None, f"the {name} proxy", started[name])  # type: ignore[misc]
        net = RemoteChain(home, anvil_url, urls["primary"], urls["secondary"], log_range, block_time,
                          chain_id, procs={k: v for k, v in started.items() if k != "anvil"})
        yield net
    finally:
        if net is not None:
            net.close()
        for proc in reversed(list(started.values())):
            _stop(proc)
        procs.remove_anvil_cache(home / "anvil-cache")


# --------------------------------------------------------------------------- reading the outcome
@dataclass(frozen=True)
class Sent:
    hash: str
    sender: str
    nonce: int


def sent_transactions(record: Path) -> list[Sent]:
    """Every distinct raw transaction the providers forwarded, decoded (hash, sender, nonce)."""
    import rlp
    from eth_account import Account
    from eth_utils import keccak

    out: dict[str, Sent] = {}
    if not record.exists():
        return []
    for line in record.read_text().splitlines():
        raw = bytes.fromhex(json.loads(line)["raw"].removeprefix("0x"))
        h = "0x" + keccak(raw).hex()
        if h in out:
            continue
        fields = rlp.decode(raw[1:]) if raw[0] < 0x7F else rlp.decode(raw)  # typed: [chainId, nonce, ...]
        nonce = int.from_bytes(fields[1] if raw[0] < 0x7F else fields[0], "big")
        out[h] = Sent(h, str(Account.recover_transaction(raw)).lower(), nonce)
    return list(out.values())


def mined_transactions(w3: Any, first_block: int = 0) -> dict[str, dict[str, Any]]:
    """Every transaction on the chain now, by hash: sender, nonce, to, input, block."""
    out: dict[str, dict[str, Any]] = {}
    for number in range(first_block, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            out["0x" + bytes(tx["hash"]).hex()] = {
                "sender": str(tx["from"]).lower(), "nonce": int(tx["nonce"]), "block": number,
                "to": str(tx["to"]).lower() if tx["to"] else None, "input": "0x" + bytes(tx["input"]).hex()}
    return out


def tx_census(net: RemoteChain, w3: Any) -> dict[str, int]:
    """From the chain and what the providers forwarded:

    - ``replaced``: transactions never mined whose sender and nonce were mined under another
      hash (a stuck transaction replaced with a bumped fee), not counting those a reorg dropped;
    - ``dropped_by_reorg``: transactions in the blocks the reorgs replaced;
    - ``resent_after_reorg``: of those, how many calls (sender, target, data) are on the chain
      again, mined after the reorg."""
    mined = mined_transactions(w3)
    by_nonce = {(m["sender"], m["nonce"]): h for h, m in mined.items()}
    dropped = {h: call for r in net.reorgs for h, call in r.dropped.items()}
    replaced = sum(1 for s in sent_transactions(net.record)
                   if s.hash not in mined and s.hash not in dropped
                   and by_nonce.get((s.sender, s.nonce), s.hash) != s.hash)
    first = min((r.from_block for r in net.reorgs), default=0)
    calls_after = {(m["sender"], m["to"], m["input"]) for m in mined.values() if m["block"] >= first}
    resent = sum(1 for call in dropped.values() if call in calls_after)
    return {"replaced": replaced, "dropped_by_reorg": len(dropped), "resent_after_reorg": resent}
