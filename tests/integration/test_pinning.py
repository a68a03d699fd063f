"""Remote pinning through the IPFS Pinning Service API (veritrain/storage/pinning.py), against a
real service process (tests/integration/pinning_service.py: the spec's endpoints, pinning on the
real IPFS node through the Kubo RPC API), and local pin/unpin spoken as Kubo speaks it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from veritrain.errors import StorageError
from veritrain.storage import IpfsStorage
from veritrain.storage.pinning import PinningService

SERVICE = Path(__file__).with_name("pinning_service.py")
TOKEN = "secret-token"


@pytest.fixture(scope="module")
def service(ipfs) -> Iterator[SimpleNamespace]:  # type: ignore[no-untyped-def]
    from veritrain.dev import procs

    port = procs.free_port()
    proc = subprocess.Popen([sys.executable, str(SERVICE), "--port", str(port), "--token", TOKEN,
                             "--ipfs-api", ipfs.url, "--lifetime", "600"])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/pins", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "the service did not start"
                time.sleep(0.1)
        yield SimpleNamespace(url=url, proc=proc)
    finally:
        proc.terminate()
        proc.wait(10)


def test_stored_content_is_pinned_remotely_once_and_unpinned_everywhere(ipfs, service) -> None:  # type: ignore[no-untyped-def]
    remote = PinningService(service.url, TOKEN)
    store = IpfsStorage(ipfs.url, retry_seconds=5, pinning=remote)
    data = b"checkpoint bytes " + str(time.time()).encode()
    cid = store.put_bytes(data)
    (request,) = remote.find(cid)
    assert remote.wait(request.requestid).status == "pinned" and request.cid == cid
    store.pin(cid)  # pinning again asks for nothing new
    assert [p.requestid for p in remote.find(cid)] == [request.requestid]
    assert store.pinned(cid)
    # the spec's default status filter is "pinned" only; the listing counts all that match
    raw = requests.get(service.url + "/pins", params={"cid": cid},
                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()
    assert raw["count"] == 1 and raw["results"][0]["status"] == "pinned"

    store.unpin(cid)
    assert remote.find(cid) == [] and not store.pinned(cid)
    with pytest.raises(StorageError, match="HTTP 404 NOT_FOUND"):
        remote.status(request.requestid)
    store.unpin(cid)  # not pinned any more: no error, nothing to do
    assert store.get_bytes(cid) == data  # unpinned is not deleted (until a garbage collection)


def test_a_wrong_token_is_one_clear_error_and_nothing_is_stored_remotely(ipfs, service, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VERITRAIN_PINNING_ENDPOINT", service.url)
    monkeypatch.setenv("VERITRAIN_PINNING_TOKEN", "wrong")
    store = IpfsStorage(ipfs.url, retry_seconds=5)  # the roles' construction: settings from the env
    assert store.pinning is not None and store.pinning.endpoint == service.url
    with pytest.raises(StorageError, match=r"\(HTTP 401 UNAUTHORIZED: a valid access token is required\)"):
        store.put_bytes(b"private shard")
    right = PinningService(service.url, TOKEN)
    assert right.find(IpfsStorage(ipfs.url, pinning=right).put_bytes(b"another")) != []
    with pytest.raises(StorageError, match="HTTP 400 BAD_REQUEST: unknown status"):
        right.find("bafy", statuses=("lost",))
