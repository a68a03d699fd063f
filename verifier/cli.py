"""`veritrain verifier ...` commands (plugged into the veritrain CLI by entry point)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run a verifier: sample and replay results, challenge, referee.", no_args_is_help=True)
