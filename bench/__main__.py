"""``python -m bench [--quick] [--only NAME]... [--out PATH] [--doc PATH]`` (``make bench``).

Runs every benchmark module in :data:`MODULES` order, merges each module's keys into the
results file as soon as it finishes, and at the end regenerates the table page
(docs/benchmarks.md; with ``--out`` elsewhere, ``benchmarks.md`` beside the results file).
A module that fails is reported and the others still run; the exit code is then 1.
"""

from __future__ import annotations

import importlib
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from bench.results import DEFAULT_PATH, record

#: Modules under bench with a ``run(quick: bool) -> dict`` function, in run order:
#: the in-process ones first (cheap, and their failures show early), the real stack last.
MODULES: list[str] = ["storage", "engine", "portable", "dp", "gpt", "incentives", "gas", "verifier_cost",
                      "scored", "scale", "protocol"]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


app = typer.Typer(name="bench", add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    quick: Annotated[bool, typer.Option("--quick", help="Tiny configuration (the test suite's).")] = False,
    only: Annotated[
        Optional[list[str]],  # noqa: UP045 - typer needs Optional here
        typer.Option("--only", help=f"Run only this module (repeatable): {', '.join(MODULES)}."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="The results file.")] = DEFAULT_PATH,
    doc: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--doc", help="The generated table (default docs/benchmarks.md, or beside --out)."),
    ] = None,
) -> None:
    """Every benchmark, side by side; a failed module is reported and the others still run."""
    unknown = sorted(set(only or []) - set(MODULES))
    if unknown:
        typer.echo(f"error: unknown benchmark {', '.join(unknown)}; choose from {', '.join(MODULES)}",
                   err=True)
        raise typer.Exit(2)
    raise typer.Exit(run(only or MODULES, quick=quick, out=out, doc=doc))


def run(names: list[str], *, quick: bool, out: Path, doc: Path | None) -> int:
    # SIGTERM unwinds like Ctrl-C, so every module's clean-up (finally: stop what it started) runs.
    signal.signal(signal.SIGTERM, _interrupt)
    doc = doc or (Path("docs/benchmarks.md") if out == DEFAULT_PATH else out.with_name("benchmarks.md"))
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            results = module.run(quick=quick)
        except Exception as exc:  # one broken module must not cost the others' numbers
            traceback.print_exc()
            print(f"[{name}] FAILED after {time.perf_counter() - t0:.1f} s: {exc!r}", flush=True)
            errors[name] = repr(exc)
            record({"bench_errors": errors}, out)
            continue
        seconds[name] = round(time.perf_counter() - t0, 1)
        record(results, out)
        keys = ", ".join(f"{k}={v}" for k, v in results.items() if not isinstance(v, dict | list))
        print(f"[{name}] {seconds[name]:.1f} s: {keys}", flush=True)
    total = round(time.perf_counter() - started, 1)
    record(
        {"quick": quick, "bench_seconds": {**seconds, "total": total}, "bench_errors": errors}, out
    )
    from bench import report

    report.write(out, doc)
    print(f"results in {out}, table in {doc} ({total:.0f} s)")
    if errors:
        print(f"failed: {', '.join(errors)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    app()
