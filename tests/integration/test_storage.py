"""IpfsStorage against the real IPFS daemon; a lying proxy in front of it for integrity tests."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from veritrain.errors import IntegrityError, StorageError
from veritrain.storage import IpfsStorage, StorageUnreachableError, cid_of_bytes
from veritrain.storage.cid import CHUNK_SIZE, MAX_LINKS


@pytest.fixture(scope="module")
def store(ipfs) -> IpfsStorage:  # type: ignore[no-untyped-def]
    return IpfsStorage(ipfs.url, retry_seconds=5)


def _port(multiaddr: str) -> int:
    return int(multiaddr.split("/tcp/")[1].split("/")[0])


@pytest.mark.parametrize("size", [0, 12, CHUNK_SIZE, CHUNK_SIZE + 1, 7 * CHUNK_SIZE + 3])
def test_put_get_bytes_roundtrip_with_locally_computed_cid(store: IpfsStorage, size: int) -> None:
    data = random.Random(size).randbytes(size)
    cid = store.put_bytes(data)
    assert cid == cid_of_bytes(data)
    assert store.get_bytes(cid) == data
    assert store.has(cid)


def test_two_level_tree_file_streams_both_ways(store: IpfsStorage, tmp_path: Path) -> None:
    data = os.urandom(MAX_LINKS * CHUNK_SIZE + 3 * CHUNK_SIZE + 11)  # > 45 MiB: two levels
    src = tmp_path / "big"
    src.write_bytes(data)
    cid = store.put_file(src)
    assert cid == cid_of_bytes(data)
    out = store.get_file(cid, tmp_path / "out" / "big")
    assert out.read_bytes() == data
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["big"]


def test_has_is_false_for_missing_content(store: IpfsStorage) -> None:
    assert store.has(cid_of_bytes(b"never stored " + os.urandom(8))) is False


def _pinned(store: IpfsStorage, cid: str) -> bool:
    try:
        store._client._client.request("/pin/ls", (cid,), opts={"type": "recursive"}, decoder="json")
    except Exception:
        return False
    return True


def test_pin_pins_content_someone_else_added_unpinned(store: IpfsStorage) -> None:
    data = os.urandom(100)
    opts = {"cid-version": 1, "raw-leaves": True, "cid-base": "base32", "pin": False}
    cid = store._client.add_bytes(data, opts=opts)
    assert not _pinned(store, cid)
    store.pin(cid)
    assert _pinned(store, cid)
    assert _pinned(store, store.put_bytes(b"uploads are pinned too " + os.urandom(4)))


def test_missing_content_times_out_with_clear_error(ipfs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = IpfsStorage(ipfs.url, fetch_timeout=0.5)
    missing = cid_of_bytes(b"missing " + os.urandom(8))
    with pytest.raises(StorageError, match="could not find the content"):
        store.get_file(missing, tmp_path / "x")
    assert not any(tmp_path.iterdir())


def test_malformed_cid_is_refused_before_any_io(store: IpfsStorage) -> None:
    with pytest.raises(IntegrityError, match="not a base32 CIDv1"):
        store.get_bytes("QmZfF6C9j4VtoCsTp4KSrhYH47QMd3DNXVZBKaxJdhaPab")


# ------------------------------------------------------------------ a lying node (proxy)
class _Proxy:
    """HTTP proxy to the real daemon that can rewrite responses (a lying node or gateway)."""

    def __init__(self, upstream: str, rewrite: Callable[[str, bytes], bytes], port: int = 0) -> None:
        self.upstream = upstream
        self.rewrite = rewrite
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self._body()
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "transfer-encoding", "content-length")}
                r = requests.post(proxy.upstream + self.path, data=body, headers=headers, timeout=60)
                content = proxy.rewrite(self.path, r.content)
                self.send_response(r.status_code)
                self.send_header("Content-Type", r.headers.get("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.addr = f"/ip4/127.0.0.1/tcp/{self.server.server_address[1]}/http"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def lying(ipfs) -> Iterator[Callable[[Callable[[str, bytes], bytes]], _Proxy]]:  # type: ignore[no-untyped-def]
    proxies: list[_Proxy] = []

    def make(rewrite: Callable[[str, bytes], bytes]) -> _Proxy:
        proxies.append(_Proxy(f"http://127.0.0.1:{_port(ipfs.url)}", rewrite))
        return proxies[-1]

    yield make
    for p in proxies:
        p.close()


def _flip_cat(path: str, body: bytes) -> bytes:
    if path.startswith("/api/v0/cat") and body:
        return bytes([body[0] ^ 1]) + body[1:]
    return body


def test_lying_node_is_caught_on_every_read(store: IpfsStorage, lying, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(3 * CHUNK_SIZE)
    cid = store.put_bytes(data)
    liar = IpfsStorage(lying(_flip_cat).addr, retry_seconds=1)
    with pytest.raises(IntegrityError, match="served wrong data"):
        liar.get_bytes(cid)
    dest = tmp_path / "shard"
    with pytest.raises(IntegrityError, match="served wrong data"):
        liar.get_file(cid, dest)
    assert not any(tmp_path.iterdir()), "no partial or unverified file may be left behind"


def test_node_that_lies_about_the_added_cid_is_caught(store: IpfsStorage, lying) -> None:  # type: ignore[no-untyped-def]
    other = store.put_bytes(b"something else")

    def swap_hash(path: str, body: bytes) -> bytes:
        if path.startswith("/api/v0/add"):
            import json

            doc = json.loads(body)
            doc["Hash"] = other
            return json.dumps(doc).encode()
        return body

    liar = IpfsStorage(lying(swap_hash).addr, retry_seconds=1)
    with pytest.raises(IntegrityError, match=f"under CID {other}"):
        liar.put_bytes(b"my shard")


# ------------------------------------------------------------------ unreachable / restarting
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_daemon_raises_storage_error_naming_the_address() -> None:
    addr = f"/ip4/127.0.0.1/tcp/{_free_port()}/http"
    store = IpfsStorage(addr, retry_seconds=0.6, backoff=0.05)
    t0 = time.monotonic()
    with pytest.raises(StorageUnreachableError, match=addr) as info:
        store.put_bytes(b"x")
    assert time.monotonic() - t0 >= 0.3  # it retried with backoff before giving up
    assert "is unreachable (no answer after" in str(info.value)
    assert isinstance(info.value, StorageError)  # callers that catch any storage error still do


def test_daemon_coming_back_within_the_retry_window_succeeds(ipfs) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    upstream = f"http://127.0.0.1:{_port(ipfs.url)}"
    holder: list[_Proxy] = []

    def come_back() -> None:  # the API answers again 0.8 s from now, on the same address
        time.sleep(0.8)
        holder.append(_Proxy(upstream, lambda path, body: body, port=port))

    threading.Thread(target=come_back, daemon=True).start()
    store = IpfsStorage(f"/ip4/127.0.0.1/tcp/{port}/http", retry_seconds=10, backoff=0.05)
    t0 = time.monotonic()
    try:
        cid = store.put_bytes(b"after restart")
        assert time.monotonic() - t0 >= 0.7
        assert store.get_bytes(cid) == b"after restart"
    finally:
        for p in holder:
            p.close()
