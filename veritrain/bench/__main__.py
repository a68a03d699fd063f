"""``python -m veritrain.bench [--quick] [--only NAME ...] [--out PATH] [--doc PATH]``.

Runs every benchmark module in :data:`MODULES` order, merges each module's keys into the
results file as soon as it finishes, and at the end regenerates the table page
(docs/benchmarks.md; with ``--out`` elsewhere, ``benchmarks.md`` beside the results file).
A module that fails is reported and the others still run; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import time
import traceback
from pathlib import Path

from veritrain.bench.results import DEFAULT_PATH, record

#: Modules under veritrain.bench with a ``run(quick: bool) -> dict`` function, in run order:
#: the in-process ones first (cheap, and their failures show early), the real stack last.
MODULES: list[str] = ["storage", "engine", "portable", "gas", "verifier_cost", "protocol"]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="veritrain.bench")
    parser.add_argument("--quick", action="store_true", help="tiny configuration (tests)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these modules")
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
    parser.add_argument(
        "--doc",
        type=Path,
        default=None,
        help="the generated table (default docs/benchmarks.md, or beside --out)",
    )
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every module's clean-up (finally: stop what it started) runs.
    signal.signal(signal.SIGTERM, _interrupt)
    names = args.only or MODULES
    doc = args.doc or (
        Path("docs/benchmarks.md") if args.out == DEFAULT_PATH else args.out.with_name("benchmarks.md")
    )
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"veritrain.bench.{name}")
            results = module.run(quick=args.quick)
        except Exception as exc:  # one broken module must not cost the others' numbers
            traceback.print_exc()
            print(f"[{name}] FAILED after {time.perf_counter() - t0:.1f} s: {exc!r}", flush=True)
            errors[name] = repr(exc)
            record({"bench_errors": errors}, args.out)
            continue
        seconds[name] = round(time.perf_counter() - t0, 1)
        record(results, args.out)
        keys = ", ".join(f"{k}={v}" for k, v in results.items() if not isinstance(v, dict | list))
        print(f"[{name}] {seconds[name]:.1f} s: {keys}", flush=True)
    total = round(time.perf_counter() - started, 1)
    record(
        {"quick": args.quick, "bench_seconds": {**seconds, "total": total}, "bench_errors": errors}, args.out
    )
    from veritrain.bench import report

    report.write(args.out, doc)
    print(f"results in {args.out}, table in {doc} ({total:.0f} s)")
    if errors:
        print(f"failed: {', '.join(errors)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
