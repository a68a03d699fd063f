"""A local IPFS Pinning Service API server (https://ipfs.github.io/pinning-services-api-spec/)
for tests: a real process that pins on a real IPFS node through the Kubo RPC API.

    python tests/integration/pinning_service.py --port 9100 --token SECRET \
        --ipfs-api /ip4/127.0.0.1/tcp/5001/http [--lifetime 600]

The spec's endpoints, with its shapes and codes:
- ``GET /pins`` (filters ``cid`` (comma list), ``name``, ``match`` (exact|iexact|partial|ipartial),
  ``status`` (comma list; default ``pinned``), ``before``, ``after``, ``limit`` (default 10))
  -> 200 ``{"count", "results": [PinStatus]}`` (count: all that match, results: the newest ``limit``);
- ``POST /pins`` ``{"cid", "name"?, "origins"?, "meta"?}`` -> 202 PinStatus (``queued``; a worker
  thread pins it on the node: ``pinning`` -> ``pinned`` | ``failed``);
- ``GET /pins/{requestid}`` -> 200 PinStatus; ``POST /pins/{requestid}`` (replace) -> 202;
  ``DELETE /pins/{requestid}`` -> 202 (the node unpins the CID once no request holds it);
- every request needs ``Authorization: Bearer <token>`` (else 401); errors are
  ``{"error": {"reason", "details"}}`` (400 BAD_REQUEST, 401 UNAUTHORIZED, 404 NOT_FOUND).
Loopback only; exits after ``--lifetime`` seconds or when its parent dies.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import threading
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STATUSES = {"queued", "pinning", "pinned", "failed"}


def _http_api(multiaddr: str) -> str:
    parts = multiaddr.strip("/").split("/")  # ip4 127.0.0.1 tcp 5001 http
    return f"http://{parts[1]}:{parts[3]}/api/v0"


class Service:
    def __init__(self, token: str, ipfs_api: str) -> None:
        self.token, self.api = token, _http_api(ipfs_api)
        self.lock = threading.Lock()
        self.pins: dict[str, dict[str, Any]] = {}

    def kubo(self, command: str, cid: str) -> None:
        """One Kubo RPC call: ``POST /api/v0/<command>?arg=<cid>``."""
        url = f"{self.api}/{command}?{urllib.parse.urlencode({'arg': cid})}"
        with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=120) as r:
            r.read()

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        status = {"requestid": uuid.uuid4().hex, "status": "queued",
                  "created": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                  "pin": {k: body[k] for k in ("cid", "name", "origins", "meta") if k in body},
                  "delegates": ["/ip4/127.0.0.1/tcp/4001/p2p/QmLocalFakePinningService"], "info": {}}
        with self.lock:
            self.pins[status["requestid"]] = status
        threading.Thread(target=self._pin, args=(status,), daemon=True).start()
        return dict(status)

    def _pin(self, status: dict[str, Any]) -> None:
        with self.lock:
            status["status"] = "pinning"
        try:
            self.kubo("pin/add", status["pin"]["cid"])
            outcome = "pinned"
        except OSError:
            outcome = "failed"
        with self.lock:
            status["status"] = outcome

    def delete(self, requestid: str) -> None:
        with self.lock:
            gone = self.pins.pop(requestid)
            cid = gone["pin"]["cid"]
            still = any(p["pin"]["cid"] == cid for p in self.pins.values())
        if not still:
            with contextlib.suppress(OSError):  # not pinned (failed, or never got that far)
                self.kubo("pin/rm", cid)

    def listing(self, q: dict[str, list[str]]) -> dict[str, Any]:
        cids = set(q["cid"][0].split(",")) if "cid" in q else None
        statuses = set(q.get("status", ["pinned"])[0].split(","))
        if not statuses <= STATUSES:
            raise ValueError(f"unknown status in {sorted(statuses)}")
        name, match = q.get("name", [None])[0], q.get("match", ["exact"])[0]
        before, after = q.get("before", [None])[0], q.get("after", [None])[0]
        limit = int(q.get("limit", ["10"])[0])
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be 1..1000")

        def named(p: dict[str, Any]) -> bool:
            have = p["pin"].get("name") or ""
            if name is None:
                return True
            if match == "exact":
                return have == name
            if match == "iexact":
                return have.lower() == name.lower()
            if match == "partial":
                return name in have
            if match == "ipartial":
                return name.lower() in have.lower()
            raise ValueError(f"unknown match {match!r}")

        with self.lock:
            rows = [dict(p) for p in self.pins.values()
                    if (cids is None or p["pin"]["cid"] in cids) and p["status"] in statuses and named(p)
                    and (before is None or p["created"] < before) and (after is None or p["created"] > after)]
        rows.sort(key=lambda p: p["created"], reverse=True)
        return {"count": len(rows), "results": rows[:limit]}


def _error(code: int, reason: str, details: str) -> tuple[int, dict[str, Any]]:
    return code, {"error": {"reason": reason, "details": details}}


def handler(svc: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: Any = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> tuple[int, Any]:
            if self.headers.get("Authorization") != f"Bearer {svc.token}":
                return _error(401, "UNAUTHORIZED", "a valid access token is required")
            url = urllib.parse.urlsplit(self.path)
            parts = [p for p in url.path.split("/") if p]
            body: Any = None
            if method == "POST":
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return _error(400, "BAD_REQUEST", "the body is not JSON")
                if not isinstance(body, dict) or not isinstance(body.get("cid"), str) or not body["cid"]:
                    return _error(400, "BAD_REQUEST", "a Pin needs a cid")
            if parts == ["pins"]:
                if method == "GET":
                    try:
                        return 200, svc.listing(urllib.parse.parse_qs(url.query))
                    except ValueError as exc:
                        return _error(400, "BAD_REQUEST", str(exc))
                if method == "POST":
                    return 202, svc.create(body)
            elif len(parts) == 2 and parts[0] == "pins":
                rid = parts[1]
                with svc.lock:
                    known = svc.pins.get(rid)
                    known = dict(known) if known else None
                if known is None:
                    return _error(404, "NOT_FOUND", f"no pin request {rid}")
                if method == "GET":
                    return 200, known
                if method == "DELETE":
                    svc.delete(rid)
                    return 202, None
                if method == "POST":  # replace: the new request supersedes the old
                    new = svc.create(body)
                    svc.delete(rid)
                    return 202, new
            return _error(400, "BAD_REQUEST", f"no such endpoint: {method} {url.path}")

        def do_GET(self) -> None:  # noqa: N802
            self._send(*self._route("GET"))

        def do_POST(self) -> None:  # noqa: N802
            self._send(*self._route("POST"))

        def do_DELETE(self) -> None:  # noqa: N802
            self._send(*self._route("DELETE"))

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--ipfs-api", required=True, help="the node it pins on: /ip4/127.0.0.1/tcp/5001/http")
    ap.add_argument("--lifetime", type=float, default=600.0)
    a = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", a.port), handler(Service(a.token, a.ipfs_api)))
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
