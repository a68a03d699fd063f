"""``python -m demo [--quick] [--json] [--home DIR] [--timeout S] [--keep]
[--network local|remote-sim]`` (``make demo``, ``make demo-remote``): see :mod:`demo.run`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from demo.run import DEFAULT_HOME

app = typer.Typer(name="demo", add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    quick: Annotated[bool, typer.Option("--quick", help="The smaller variant the test suite runs.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="summary.json on stdout (the table on stderr).")
    ] = False,
    home: Annotated[Path, typer.Option("--home", help="Everything of this run.")] = DEFAULT_HOME,
    timeout: Annotated[
        Optional[float],  # noqa: UP045 - typer needs Optional here
        typer.Option("--timeout", min=1, help="Give up after this many seconds."),
    ] = None,
    network: Annotated[
        str, typer.Option("--network", help="local (the dev stack), or remote-sim: a chain that behaves like "
                          "a hosted one (rate limits, log-range caps, a reorg, a provider killed).")
    ] = "local",
    keep: Annotated[bool, typer.Option("--keep", help="Keep the stack and the explorer up after the "
                                       "run, until Ctrl-C.")] = False,
) -> None:
    """A whole job on a fresh local stack: honest workers, one cheater caught and slashed."""
    from demo.run import main as run

    raise typer.Exit(run(quick=quick, as_json=as_json, home=home, timeout=timeout, network=network,
                         keep=keep))


if __name__ == "__main__":
    app()
