"""`apitrail trace ...` commands (owned by the trace engine)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Request identity trace: ingest access logs of every hop, join, classify, find blind spots.",
                  no_args_is_help=True)
