"""`veritrain worker ...` commands (plugged into the veritrain CLI by entry point)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run a worker: stake, claim tasks, train, commit, get paid.", no_args_is_help=True)
