"""A counting JSON-RPC proxy in front of Anvil, run in the bench's own process (a thread).

Each role gets its own URL, ``http://127.0.0.1:<port>/<role>``; the proxy forwards every call to
the upstream node unchanged and counts calls per role and per method (a JSON-RPC batch counts
each call in it). That is how the scale benchmark tells "requests per completed task" apart for
the workers, the requester and the verifier without touching their code.

    with CountingProxy(anvil_url) as proxy:
        url = proxy.url("worker-2")   # give this to the role as VERITRAIN_RPC_URL
        ...
        proxy.counts()                # {"worker-2": {"eth_call": 120, ...}, ...}

Unlike tests/integration/rpc_proxy.py (a separate process that imitates a hosted provider's
refusals), this one refuses nothing: it only measures. Loopback only.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CountingProxy:
    """Forwards JSON-RPC to ``upstream``; counts calls per URL path (the role) and method."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._lock = threading.Lock()
        self._counts: dict[str, Counter[str]] = {}
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, role: str) -> str:
        """The URL to give ``role``: its calls are counted under that name."""
        if not role or "/" in role:
            raise ValueError(f"a role name is one path segment, not {role!r}")
        return f"http://127.0.0.1:{self.port}/{role}"

    def start(self) -> CountingProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> CountingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ counting
    def count(self, role: str, methods: list[str]) -> None:
        with self._lock:
            self._counts.setdefault(role, Counter()).update(methods)

    def counts(self) -> dict[str, dict[str, int]]:
        """A copy of the counters: role -> method -> calls."""
        with self._lock:
            return {role: dict(c) for role, c in self._counts.items()}

    def total(self, prefix: str = "", method: str | None = None) -> int:
        """Calls by the roles whose name starts with ``prefix`` (of one ``method``, or all)."""
        with self._lock:
            return sum(n for role, c in self._counts.items() if role.startswith(prefix)
                       for m, n in c.items() if method is None or m == method)

    def forward(self, body: bytes) -> bytes:
        req = urllib.request.Request(self.upstream, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return bytes(resp.read())


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a role stopped mid-request (the bench stops them by signal): not worth a traceback


def methods_of(body: bytes) -> list[str]:
    """The JSON-RPC method names in one request body (a single call or a batch)."""
    try:
        call = json.loads(body)
    except ValueError:
        return ["<invalid>"]
    calls = call if isinstance(call, list) else [call]
    return [str(c.get("method", "<none>")) if isinstance(c, dict) else "<invalid>" for c in calls]


def _handler(proxy: CountingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - the http.server spelling
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            proxy.count(self.path.strip("/") or "default", methods_of(body))
            try:
                out, code = proxy.forward(body), 200
            except OSError as exc:  # the node is down: answer like an unreachable node would
                out, code = json.dumps({"error": f"upstream unreachable: {exc}"}).encode(), 502
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    return Handler
