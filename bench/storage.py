"""Storage benchmark: encrypted shard round trip vs raw IPFS, and the 100k-leaf Merkle tree.

``storage_ratio`` = throughput of (encrypt → put_file → get_file (verified) → decrypt) ÷
throughput of (raw ``add`` → ``cat``) of the same number of bytes, measured alternately in one
run against one IPFS daemon this benchmark starts on free ports (and always stops). Both
sides use the same HTTP client settings; fresh random bytes each time so no block is reused.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from veritrain import crypto, merkle


def _merkle_seconds(n: int = 100_000, repeats: int = 3) -> float:
    hashes = [os.urandom(32) for _ in range(n)]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        tree = merkle.MerkleTree(hashes)
        tree.proofs()
        times.append(time.perf_counter() - t0)
    return min(times)


def _round_trips(api: str, size: int, repeats: int, work: Path) -> dict[str, Any]:
    from veritrain.storage import IpfsStorage
    from veritrain.storage.ipfs import ADD_OPTS

    store = IpfsStorage(api)
    raw_client = store._client
    key = crypto.generate_data_key()
    raw_times, enc_times = [], []
    for r in range(repeats + 1):  # round 0 warms the daemon up and is discarded
        data = os.urandom(size)
        t0 = time.perf_counter()
        cid = raw_client.add_bytes(data, opts=ADD_OPTS)
        back = raw_client.cat(cid)
        t_raw = time.perf_counter() - t0
        assert back == data

        plain = work / f"plain{r}"
        plain.write_bytes(os.urandom(size))
        t0 = time.perf_counter()
        crypto.encrypt_file(plain, work / "ct", key, job_id=1, shard_index=r)
        cid = store.put_file(work / "ct")
        store.get_file(cid, work / "ct-back")
        crypto.decrypt_file(work / "ct-back", work / "plain-back", key, job_id=1, shard_index=r)
        t_enc = time.perf_counter() - t0
        assert (work / "plain-back").read_bytes() == plain.read_bytes()
        if r:
            raw_times.append(t_raw)
            enc_times.append(t_enc)
    raw_s, enc_s = statistics.median(raw_times), statistics.median(enc_times)
    mib = size / 2**20
    return {
        "storage_ratio": round(raw_s / enc_s, 3),
        "storage_raw_mib_s": round(2 * mib / raw_s, 1),
        "storage_encrypted_mib_s": round(2 * mib / enc_s, 1),
        "storage_bytes": size,
    }


def run(quick: bool) -> dict[str, Any]:
    from veritrain.dev import procs
    from veritrain.dev.stack import Stack
    from veritrain.settings import StackSettings

    size = (1 if quick else 64) * 2**20
    with tempfile.TemporaryDirectory(prefix="vt-bench-storage-") as tmp:
        work = Path(tmp)
        settings = StackSettings(home=work / "home", anvil_port=procs.free_port(),
                                 ipfs_api_port=procs.free_port(), anvil_state_interval=0)
        stack = Stack(settings)
        try:
            state = stack.up(services=("ipfs",))
            results = _round_trips(state.services["ipfs"].url, size, 1 if quick else 3, work)
        finally:
            stack.down()
    results["merkle_100k_seconds"] = round(_merkle_seconds(repeats=1 if quick else 3), 3)
    return results
