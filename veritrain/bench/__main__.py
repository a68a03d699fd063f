"""``python -m veritrain.bench [--quick] [--only NAME ...]``: run every benchmark module."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from veritrain.bench.results import DEFAULT_PATH, record

#: Modules under veritrain.bench with a ``run(quick: bool) -> dict`` function, in run order.
MODULES: list[str] = ["storage", "engine"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="veritrain.bench")
    parser.add_argument("--quick", action="store_true", help="tiny configuration (tests)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these modules")
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args(argv)
    names = args.only or MODULES
    for name in names:
        module = importlib.import_module(f"veritrain.bench.{name}")
        t0 = time.perf_counter()
        results = module.run(quick=args.quick)
        record(results, args.out)
        keys = ", ".join(f"{k}={v}" for k, v in results.items() if not isinstance(v, dict))
        print(f"[{name}] {time.perf_counter() - t0:.1f} s: {keys}", flush=True)
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
