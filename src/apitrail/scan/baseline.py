"""Baselines: `apitrail baseline create`, and `--baseline FILE` to report only new findings."""

from __future__ import annotations

import typer

app = typer.Typer(help="Create and inspect finding baselines.", no_args_is_help=True)
