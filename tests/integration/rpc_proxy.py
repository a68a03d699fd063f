"""A JSON-RPC proxy that enforces what hosted providers enforce, in front of a local Anvil.

    python tests/integration/rpc_proxy.py --upstream http://127.0.0.1:8545 --port 9001 \
        [--log-range 100] [--rate 50] [--drop-every 0] [--lifetime 600]

- ``eth_getLogs`` over more than ``--log-range`` blocks is answered with a JSON-RPC error
  ("block range exceeds N"), as Alchemy/Infura do.
- More than ``--rate`` requests in one second are answered with HTTP 429.
- Every ``--drop-every``-th request has its connection closed with no answer (before it is
  forwarded, so a dropped send never reached the chain).
- ``--record FILE`` appends every ``eth_sendRawTransaction`` it forwards to FILE (one JSON line:
  the raw transaction in hex), so a run can tell replacements and re-sends from the chain.
- ``GET /stats`` answers the counters as JSON; ``POST /control`` with ``{"drop_every": N}`` or
  ``{"rate": N}`` changes the behaviour of a running proxy.
Loopback only; exits by itself after ``--lifetime`` seconds (and when its parent dies).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Proxy:
    def __init__(self, upstream: str, log_range: int, rate: int, drop_every: int,
                 record: str | None = None) -> None:
        self.upstream = upstream
        self.record = record
        self.log_range = log_range
        self.rate = rate
        self.drop_every = drop_every
        self.lock = threading.Lock()
        self.window: tuple[int, int] = (0, 0)  # (second, requests in it)
        self.stats = {"requests": 0, "rate_limited": 0, "dropped": 0, "range_refused": 0,
                      "get_logs": 0, "max_log_range": 0, "sent_raw": 0}

    def admit(self) -> str:
        """``ok``, ``429`` or ``drop`` for the next request."""
        with self.lock:
            self.stats["requests"] += 1
            n = self.stats["requests"]
            if self.drop_every and n % self.drop_every == 0:
                self.stats["dropped"] += 1
                return "drop"
            sec = int(time.monotonic())
            count = self.window[1] + 1 if self.window[0] == sec else 1
            self.window = (sec, count)
            if self.rate and count > self.rate:
                self.stats["rate_limited"] += 1
                return "429"
            return "ok"

    def forward(self, body: bytes) -> bytes:
        req = urllib.request.Request(self.upstream, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return bytes(resp.read())

    def _block(self, tag: Any) -> int:
        if isinstance(tag, str) and tag.startswith("0x"):
            return int(tag, 16)
        if tag == "earliest":
            return 0
        reply = json.loads(self.forward(json.dumps(
            {"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []}).encode()))
        return int(reply["result"], 16)

    def note(self, call: dict[str, Any]) -> None:
        """Count (and with ``--record``, keep) a raw transaction about to be forwarded."""
        if call.get("method") != "eth_sendRawTransaction":
            return
        with self.lock:
            self.stats["sent_raw"] += 1
            if self.record:
                with open(self.record, "a") as fh:
                    fh.write(json.dumps({"raw": (call.get("params") or [""])[0]}) + "\n")

    def check(self, call: dict[str, Any]) -> dict[str, Any] | None:
        """An error reply for a call the provider refuses, else None."""
        if call.get("method") != "eth_getLogs":
            return None
        flt = (call.get("params") or [{}])[0]
        if "blockHash" in flt:
            return None
        start, end = self._block(flt.get("fromBlock", "latest")), self._block(flt.get("toBlock", "latest"))
        with self.lock:
            self.stats["get_logs"] += 1
            if end - start + 1 > self.log_range:
                self.stats["range_refused"] += 1
                return {"jsonrpc": "2.0", "id": call.get("id"), "error": {
                    "code": -32600, "message": f"block range exceeds {self.log_range} blocks"}}
            self.stats["max_log_range"] = max(self.stats["max_log_range"], end - start + 1)
        return None


def handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            with proxy.lock:
                body = json.dumps(proxy.stats).encode()
            self._reply(200, body)

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/control":
                change = json.loads(body)
                with proxy.lock:
                    for key in ("drop_every", "rate", "log_range"):
                        if key in change:
                            setattr(proxy, key, int(change[key]))
                self._reply(200, b"{}")
                return
            verdict = proxy.admit()
            if verdict == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if verdict == "429":
                self._reply(429, b'{"error": "too many requests"}')
                return
            call = json.loads(body)
            refusal = proxy.check(call) if isinstance(call, dict) else None
            if refusal is None and isinstance(call, dict):
                proxy.note(call)
            out = json.dumps(refusal).encode() if refusal else proxy.forward(body)
            self._reply(200, out)

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log-range", type=int, default=100)
    ap.add_argument("--rate", type=int, default=0, help="requests per second; 0 = unlimited")
    ap.add_argument("--drop-every", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=600.0)
    ap.add_argument("--record", default=None, help="append each eth_sendRawTransaction here (JSON lines)")
    a = ap.parse_args()
    proxy = Proxy(a.upstream, a.log_range, a.rate, a.drop_every, a.record)
    server = ThreadingHTTPServer(("127.0.0.1", a.port), handler(proxy))
    server.daemon_threads = True
    parent = os.getppid()

    def watchdog() -> None:
        deadline = time.monotonic() + a.lifetime
        while time.monotonic() < deadline and os.getppid() == parent:
            time.sleep(0.5)
        server.shutdown()

    threading.Thread(target=watchdog, daemon=True).start()
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
