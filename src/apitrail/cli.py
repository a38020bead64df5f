"""The apitrail command line. Thin: parse options, call an engine, hand the result to a writer."""

from __future__ import annotations

import sys

import typer

from apitrail import __version__
from apitrail.errors import ApitrailError
from apitrail.trace.cli import app as trace_app

app = typer.Typer(
    name="apitrail",
    help="Local-first API security: static route/auth scanner (scan) and request identity trace pipeline (trace).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(trace_app, name="trace")


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(f"apitrail {__version__}")
        raise typer.Exit(0)


def main() -> None:
    """Console-script entry point: map our errors to one line and an exit code."""
    try:
        app()
    except ApitrailError as exc:
        typer.echo(f"apitrail: error: {exc}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
