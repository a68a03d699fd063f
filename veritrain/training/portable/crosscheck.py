"""``python -m veritrain.training.portable.crosscheck [--steps N] [NAME:MODE ...]``.

Trains each reference workload (:mod:`workloads`) in this process, as the environment set
before it started dictates (``OMP_NUM_THREADS``, ``ATEN_CPU_CAPABILITY``, ...), and prints one
JSON object: for every ``NAME:MODE``, ``state`` = sha256 of the final model and optimizer
tensors (comparable across environments in both modes) and ``chain`` = the checkpoint hashes
``h_0..h_n`` (comparable across environments in portable mode, whose spec is the same
everywhere). Tests run it in processes with different settings and compare.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys


def state_digest(data: bytes) -> str:
    from veritrain.checkpoint import decode

    h = hashlib.sha256()
    for name, arr in sorted(decode(data).tensors.items()):
        if name.startswith(("model/", "optim/")):
            h.update(name.encode() + b"\0" + arr.tobytes())
    return h.hexdigest()


def run(name: str, mode: str, steps: int) -> dict[str, object]:
    import torch

    from veritrain.spec import TaskKey
    from veritrain.training.engine import train_task
    from veritrain.training.portable.workloads import workload
    from veritrain.training.sinks import MemorySink

    spec, x, y, _, _ = workload(name, mode, steps=steps, k=steps // 2 or 1, threads=torch.get_num_threads())
    sink = MemorySink()
    chain = train_task(spec, TaskKey(round=0, shard=0), x, y, sink)
    return {"state": state_digest(sink.data(len(chain) - 1)), "chain": [h.hex() for h in chain]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="veritrain.training.portable.crosscheck")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("runs", nargs="*", default=["mlp:portable", "mlp:standard",
                                                     "char_lm:portable", "char_lm:standard"])
    args = parser.parse_args(argv)
    import torch

    out: dict[str, object] = {"threads": torch.get_num_threads(),
                              "isa": torch.backends.cpu.get_cpu_capability()}
    for item in args.runs:
        name, _, mode = item.partition(":")
        out[item] = run(name, mode, args.steps)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
