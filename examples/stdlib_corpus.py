"""Package the Python standard library's source files into a byte-level language-model dataset.

Every machine with Python has this corpus offline. The ``.py`` files under the running
interpreter's stdlib folder (sorted by path; tests, ``site-packages`` and ``idlelib`` left out)
are read as bytes; whole files go to the held-out set whenever it holds less than
``1/HOLDOUT_EVERY`` of the bytes, so held-out text comes from files the model never trained
on. Each side is cut into non-overlapping windows of ``context`` bytes: features are the bytes
``t .. t+context-1`` (int64, 0..255), labels the next bytes ``t+1 .. t+context``, which is what
``data: {input_shape: [context], num_classes: 256, input_dtype: int64, targets: sequence}``
asks for (``examples/gpt-stdlib.yaml``).

    python examples/stdlib_corpus.py --context 256 --max-bytes 4000000 --out stdlib.npz
    veritrain job submit examples/gpt-stdlib.yaml --data stdlib.npz   # random 20% held out

writes ``stdlib.npz`` (training windows) and ``stdlib-heldout.npz`` (the held-out files'
windows; the SDK's ``post_job(..., holdout_data=...)`` takes it). Stdlib sources differ between
Python versions: the requester packages once and the shards on IPFS are the data.
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
from pathlib import Path

import numpy as np

HOLDOUT_EVERY = 10
SKIP_PARTS = {"site-packages", "dist-packages", "test", "tests", "idlelib", "__pycache__"}


def source_files(root: Path | None = None) -> list[Path]:
    """The stdlib's ``.py`` files, sorted by their path below ``root``."""
    root = Path(sysconfig.get_paths()["stdlib"]) if root is None else root
    files = [p for p in root.rglob("*.py") if not SKIP_PARTS & set(p.relative_to(root).parts)]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def corpus(max_bytes: int, root: Path | None = None) -> tuple[bytes, bytes]:
    """(training text, held-out text), together at most ``max_bytes`` bytes."""
    train, held = bytearray(), bytearray()
    for path in source_files(root):
        if len(train) + len(held) >= max_bytes:
            break
        try:
            data = path.read_bytes()
        except OSError:
            continue
        # a file goes to the held-out side whenever that side has fallen below its share of bytes
        held_short = len(held) * (HOLDOUT_EVERY - 1) < len(train)
        (held if held_short else train).extend(data + b"\n")
    total = len(train) + len(held)
    if total > max_bytes:  # trim the training side, the held-out side stays whole files
        del train[max(0, len(train) - (total - max_bytes)):]
    return bytes(train), bytes(held)


def windows(text: bytes, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows: features ``(N, context)`` and next bytes ``(N, context)``, int64."""
    if context < 1:
        raise ValueError("context must be >= 1")
    arr = np.frombuffer(text, dtype=np.uint8).astype(np.int64)
    n = (len(arr) - 1) // context
    if n < 1:
        raise ValueError(f"{len(arr)} bytes make no window of {context} + 1 bytes")
    x = arr[: n * context].reshape(n, context)
    y = arr[1 : n * context + 1].reshape(n, context)
    return x, y


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--context", type=int, default=256, help="bytes per example (the spec's input_shape)")
    ap.add_argument("--max-bytes", type=int, default=4_000_000, help="corpus size, both sides")
    ap.add_argument("--out", type=Path, default=Path("stdlib.npz"), help="training windows (.npz)")
    args = ap.parse_args(argv)
    train, held = corpus(args.max_bytes)
    x, y = windows(train, args.context)
    hx, hy = windows(held, args.context)
    np.savez(args.out, features=x, labels=y)
    heldout = args.out.with_name(args.out.stem + "-heldout.npz")
    np.savez(heldout, features=hx, labels=hy)
    print(f"{args.out}: {len(x)} windows of {args.context} bytes; {heldout}: {len(hx)} held-out windows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
