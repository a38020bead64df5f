"""The apitrail command line. Thin: parse options, call an engine, hand the result to a writer."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from apitrail import __version__
from apitrail.errors import ApitrailError, UsageError
from apitrail.scan.baseline import app as baseline_app


class _LazyTraceGroup(TyperGroup):
    """The ``trace`` group, built from ``apitrail.trace.cli`` only when a trace command (or its help) is used.

    The trace side imports duckdb and pyarrow (about 0.3 s), which ``apitrail scan`` never needs. Parsing and
    dispatch are delegated to the real group, so its default-command behaviour is kept; the real group is built
    once per click command tree, like the rest of the CLI, so commands registered on the trace app later are seen.
    """

    _real_group: TyperGroup | None = None

    def _real(self) -> TyperGroup:
        if self._real_group is None:
            from apitrail.trace.cli import app as trace_app

            self._real_group = typer.main.get_group(trace_app)
        return self._real_group

    def list_commands(self, ctx: Any) -> list[str]:
        return self._real().list_commands(ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return self._real().get_command(ctx, cmd_name)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return self._real().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        return self._real().invoke(ctx)


# NOTE: same help text as apitrail.trace.cli.app (shown by `apitrail --help` without importing the trace side)
TRACE_HELP = "Request identity trace: ingest access logs of every hop, join, classify, find blind spots."
trace_app = typer.Typer(help=TRACE_HELP, no_args_is_help=True, cls=_LazyTraceGroup)

app = typer.Typer(
    name="apitrail",
    help="Local-first API security: static route/auth scanner (scan) and request identity trace pipeline (trace).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(trace_app, name="trace")
app.add_typer(baseline_app, name="baseline")


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(f"apitrail {__version__}")
        raise typer.Exit(0)


def _write(text: str, output: Path | None) -> None:
    try:
        from apitrail.output.guard import guard
    except ImportError:  # pragma: no cover - guard ships with the package
        pass
    else:
        guard(text)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc


@app.command()
def scan(
    root: Path = typer.Argument(Path("."), help="Source tree to scan."),
    fmt: str | None = typer.Option(None, "--format", "-f", help="table (default on a TTY), json, sarif, markdown."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    fail_on: str | None = typer.Option(None, "--fail-on", help="Exit 1 if a finding is at or over this severity."),
    baseline: Path | None = typer.Option(None, "--baseline", help="Report only findings not in this baseline."),
    compliance: str | None = typer.Option(None, "--compliance", help="Show a control view: soc2 or iso27001."),
    strict: bool = typer.Option(False, "--strict", help="Exit 3 if any file could not be analysed."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the facts cache."),
    config_file: Path | None = typer.Option(None, "--config", help="Config file (default: .apitrail.toml or pyproject)."),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Worker processes (0: one per core)."),
    debug: bool = typer.Option(False, "--debug", help="Re-raise internal errors."),
) -> None:
    """Inventory routes, resolve who can call each one, and find API security gaps."""
    from apitrail.config import load_config
    from apitrail.output.scan_writers import FORMATS, render_scan
    from apitrail.scan.engine import ScanOptions
    from apitrail.scan.gate import failing_findings
    from apitrail.scan.pipeline import run_scan

    if not root.exists():
        raise UsageError(f"no such path: {root}")
    if not root.is_dir():
        raise UsageError(f"not a directory: {root}")
    fmt = fmt or ("table" if sys.stdout.isatty() and output is None else "json")
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r} (use one of: {', '.join(FORMATS)})")
    if compliance is not None and compliance not in ("soc2", "iso27001"):
        raise UsageError(f"unknown --compliance {compliance!r} (use soc2 or iso27001)")
    if baseline is not None and not baseline.is_file():
        raise UsageError(f"baseline not found: {baseline}")
    config = load_config(root, config_file)
    fail_on = fail_on or config.fail_on
    if fail_on is not None:
        from apitrail.findings import Severity

        try:
            Severity.parse(fail_on)
        except ValueError as exc:
            raise UsageError(f"--fail-on: {exc}") from exc
    options = ScanOptions(use_cache=not no_cache, jobs=jobs, max_bytes=config.max_file_bytes,
                          excludes=list(config.exclude), strict=strict, debug=debug)
    result = run_scan(root, options, config, baseline)
    if compliance is not None:
        from apitrail.controls.report import render_compliance

        text = render_compliance(result, compliance, fmt)
    else:
        width = None
        if fmt == "table" and output is None:
            try:
                width = os.get_terminal_size().columns
            except OSError:
                width = None
        text = render_scan(result, fmt, width)
    _write(text, output)
    for w in result.warnings:
        typer.echo(f"apitrail: warning: {w}", err=True)
    if strict and result.model.errors:
        typer.echo(f"apitrail: incomplete: {len(result.model.errors)} file(s) could not be analysed", err=True)
        raise typer.Exit(3)
    if failing_findings(result.findings, fail_on, config):
        raise typer.Exit(1)


@app.command()
def demo(
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or markdown."),
) -> None:
    """Scan the bundled example app and trace its bundled multi-hop logs (embedded DuckDB, no server)."""
    from apitrail.demo import run_demo

    run_demo(fmt)


def main() -> None:
    """Map our errors to one line and an exit code (raises SystemExit, like a Typer app)."""
    try:
        app()
    except ApitrailError as exc:
        typer.echo(f"apitrail: error: {exc}", err=True)
        sys.exit(exc.exit_code)


def entry() -> None:
    """Console-script entry point: ``main``, then the process ends without tearing down its heap (as mypy
    does): a scan holds hundreds of thousands of fact objects, and freeing them one by one at exit cost
    0.15-0.25 s of a 4 s scan. Output streams are flushed, and every file and store was closed by its command."""
    code = 0
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            typer.echo(exc.code, err=True)
            code = 1
        else:
            code = int(exc.code or 0)
    _hard_exit(code)


def _hard_exit(code: int) -> None:
    import logging
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to deliver
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
