"""`veritrain job ...` commands (plugged into the veritrain CLI by entry point)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Post training jobs, deliver keys, watch them, fetch checked models.",
                  no_args_is_help=True)
