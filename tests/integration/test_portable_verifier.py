"""A cheat in a portable job is caught by a verifier whose machine differs from the worker's.

The worker trains in its own process (one thread, ATen's ``default`` kernel level) and skips a
step in segment 1; its checkpoints, encrypted, and the shard go to the real IPFS node. The
verifier (this process: two threads, this CPU's best kernel level) replays every segment in
place through the production path (:class:`verifier.replay.SegmentReplayer` with
:func:`verifier.replay.engine_replay`): the honest segments match bitwise, the cheated one does not.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from verifier.replay import SegmentReplayer
from veritrain import crypto
from veritrain.data import Dataset, encode_shard
from veritrain.jobdoc import JobDocument, ShardRef, binding_for, checkpoint_binding
from veritrain.manifest import Manifest
from veritrain.storage import IpfsStorage
from veritrain.training import runner
from veritrain.training.portable.workloads import workload

ROOT = Path(__file__).resolve().parents[2]
WORKER = "0x" + "ab" * 20
TASK_ID = (1 << 32) | 0
STEPS, K = 6, 2

_WORKER_SCRIPT = """
import json, sys
from pathlib import Path
import torch
from adversary.cheats import SkipStep, dishonest_train
from veritrain.spec import TaskKey
from veritrain.training.portable.workloads import workload
from veritrain.training.sinks import MemorySink
steps, k = int(sys.argv[2]), int(sys.argv[3])
spec, x, y, _, _ = workload("mlp", "portable", steps=steps, k=k)
sink = MemorySink()
hashes = dishonest_train(spec, TaskKey(round=0, shard=0), x, y, SkipStep(segment=1), sink)
for i in range(len(hashes)):
    Path(sys.argv[1], f"{i}.vtck").write_bytes(sink.data(i))
print(json.dumps({"hashes": [h.hex() for h in hashes], "threads": torch.get_num_threads(),
                  "isa": torch.backends.cpu.get_cpu_capability()}))
"""


def _worker(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "default",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-c", _WORKER_SCRIPT, str(tmp_path), str(STEPS), str(K)]
    out = subprocess.run(cmd, env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_cheat_in_a_portable_job_is_caught_by_a_verifier_on_another_configuration(  # type: ignore[no-untyped-def]
        ipfs, tmp_path) -> None:
    worker = _worker(tmp_path)
    storage, key, nonce = IpfsStorage(ipfs.url, retry_seconds=5), crypto.generate_data_key(), b"p" * 16
    spec, x, y, _, _ = workload("mlp", "portable", steps=STEPS, k=K)
    shard = crypto.encrypt_bytes(encode_shard(Dataset(x, y)), key, job_id=binding_for(spec, nonce),
                                 shard_index=0)
    ref = ShardRef(index=0, cid=storage.put_bytes(shard), sha256=hashlib.sha256(shard).hexdigest(),
                   size=len(shard), examples=len(x))
    doc = JobDocument.create(spec, [ref], nonce)
    spec_cid = storage.put_bytes(doc.to_bytes())
    binding = checkpoint_binding(doc, TASK_ID, WORKER)
    hashes = [bytes.fromhex(h) for h in worker["hashes"]]
    plain = [(tmp_path / f"{i}.vtck").read_bytes() for i in range(len(hashes))]
    cids = [storage.put_bytes(crypto.encrypt_bytes(data, key, job_id=binding, shard_index=i))
            for i, data in enumerate(plain)]
    manifest = Manifest.build(spec_cid=spec_cid, job_id=1, task_id=TASK_ID, worker=WORKER, k=K,
                              hashes=hashes, checkpoint_cids=cids)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        here = (torch.get_num_threads(), torch.backends.cpu.get_cpu_capability())
        assert here != (worker["threads"], worker["isa"]) and worker["isa"] == "DEFAULT"
        assert runner.in_process_ok(spec)  # the replay runs here, as this machine is
        replayer = SegmentReplayer(storage)
        ctx = replayer.context(doc, manifest, key, TASK_ID, WORKER)
        checks = [replayer.check(ctx, j) for j in range(ctx.n_segments)]
    finally:
        torch.set_num_threads(before)
    assert [c.outcome for c in checks] == ["match", "mismatch", "match"], [c.detail for c in checks]
    assert checks[1].replayed != checks[1].claimed and checks[1].vote == bytes.fromhex(checks[1].replayed[2:])
