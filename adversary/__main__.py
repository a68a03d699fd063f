"""``python -m adversary``: the dishonest worker processes the demo and the benchmarks start."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Optional

import typer

app = typer.Typer(
    name="adversary",
    help="Dishonest workers for the demo, the benchmarks and the tests (never for real use).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class Behaviour(StrEnum):
    skip_step = "skip-step"
    perturb_weight = "perturb-weight"
    wrong_start = "wrong-start"


class Kind(StrEnum):
    other_data = "other-data"
    copy_root = "copy-root"


@app.command("worker")
def worker(
    behaviour: Annotated[Behaviour, typer.Option("--behaviour", help="How to falsify the segment.")],
    segment: Annotated[int, typer.Option("--segment", help="The segment j to falsify (wrong-start: 0).")],
    delta: Annotated[float, typer.Option("--delta", help="perturb-weight/wrong-start: the change.")] = 1e-3,
    offset: Annotated[int, typer.Option("--offset", help="skip-step: which step of the segment.")] = 0,
    once: Annotated[bool, typer.Option("--once", help="One pass over open tasks, then exit.")] = False,
    max_tasks: Annotated[
        Optional[int],  # noqa: UP045 - typer needs Optional here
        typer.Option("--max-tasks", help="Stop after this many tasks."),
    ] = None,
) -> None:
    """The worker role with a cheating trainer (settings from VERITRAIN_WORKER_*)."""
    from adversary.worker import run

    code = run(behaviour.value, segment, delta=delta, offset=offset, once=once, max_tasks=max_tasks)
    raise typer.Exit(code)


@app.command("standalone")
def standalone(
    kind: Annotated[Kind, typer.Option("--kind", help="Which cheat.")],
    job: Annotated[int, typer.Option("--job", help="The job to cheat on.")],
    dev_account: Annotated[int, typer.Option("--dev-account", help="Dev account index to act as.")],
    segment: Annotated[int, typer.Option("--segment", help="other-data: the segment to falsify.")] = 1,
    max_tasks: Annotated[int, typer.Option("--max-tasks", help="Stop after this many tasks.")] = 1,
) -> None:
    """A cheater on the core alone, for cheats the worker loop cannot express."""
    from veritrain import lifeline

    lifeline.from_env()
    from adversary.standalone import run

    raise typer.Exit(run(kind.value, job, dev_account, segment=segment, max_tasks=max_tasks))


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
