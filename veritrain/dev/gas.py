"""``python -m veritrain.dev.gas`` (``make gas``): gas of every contract function on a
representative scenario, written to ``.veritrain/bench/gas.json`` (see veritrain.bench.gas)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_OUT = Path(".veritrain/bench/gas.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="veritrain.dev.gas")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    from veritrain.bench.gas import run
    from veritrain.bench.results import machine

    gas = run(quick=False)["gas"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**gas, "machine": machine()}, indent=2, sort_keys=True) + "\n")
    width = max(len(k) for k in gas["functions"])
    for name, used in gas["functions"].items():
        print(f"  {name:<{width}}  {used:>9,}")
    for key, target in gas["targets"].items():
        verdict = "ok" if gas[key] <= target else "OVER TARGET"
        print(f"{key}: {gas[key]:,} (target {target:,}) {verdict}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
