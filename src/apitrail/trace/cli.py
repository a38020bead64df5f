"""`apitrail trace ...` commands (owned by the trace engine).

``apitrail trace PATH...`` (no subcommand) runs the default command ``run`` (the analysis summary registered by
``trace/analyze_cli.py``); ``ingest`` and ``leaks`` live here.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from apitrail.errors import UsageError
from apitrail.output.guard import guard
from apitrail.trace.ingest import (
    IngestOptions,
    IngestResult,
    check_strict,
    ingest_paths,
    parse_format_name_option,
    parse_layer_option,
    parse_log_format_option,
)
from apitrail.trace.store import Store

DEFAULT_COMMAND = "run"


class DefaultCommandGroup(TyperGroup):
    """A group that dispatches to ``run`` when the first argument is not a known subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h") \
                and DEFAULT_COMMAND in self.commands:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(help="Request identity trace: ingest access logs of every hop, join, classify, find blind spots.",
                  no_args_is_help=True, cls=DefaultCommandGroup)


def _emit(text: str, where: str = "terminal output") -> None:
    """Every terminal write goes through the output guard first."""
    sys.stdout.write(guard(text, where))
    sys.stdout.flush()


def render_result(result: IngestResult) -> str:
    table = Table(title=f"apitrail trace ingest (run {result.run_id})", show_lines=False)
    for col, justify in (("file", "left"), ("format", "left"), ("layer", "left"), ("lines", "right"),
                         ("hop lines", "right"), ("hops", "right"), ("rejects", "right"), ("headers", "right"), ("fast", "right"),
                         ("python", "right"), ("leaks", "right"), ("reject rate", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for f in result.files:
        table.add_row(f.file, f.format or "unknown", f.layer or "", str(f.lines), str(f.hop_lines), str(f.hops),
                      str(f.rejects),
                      str(f.headers + f.blank), str(f.fast_rows), str(f.python_rows), str(f.leaks),
                      f"{f.reject_rate:.1%}")
    table.add_row("total", "", "", str(result.total("lines")), str(result.total("hop_lines")), str(result.total("hops")),
                  str(result.total("rejects")), str(result.total("headers") + result.total("blank")),
                  str(result.total("fast_rows")), str(result.total("python_rows")), str(result.total("leaks")),
                  f"{result.reject_rate:.1%}", style="bold")
    buf = io.StringIO()
    Console(file=buf, width=160, force_terminal=sys.stdout.isatty()).print(table)
    status = "reconciled" if result.reconciled else "NOT reconciled"
    buf.write(f"lines = hop lines + rejects: {status}\n")
    multi = result.total("hops") - result.total("hop_lines")
    if multi > 0:
        buf.write(f"{multi:,} more hops than hop lines: lines holding several records (source.record)\n")
    for f in result.files:
        if f.fast_path_error:
            buf.write(f"{f.file}: parsed in Python (the SQL fast path failed: {f.fast_path_error})\n")
        if f.read_error:
            buf.write(f"{f.file}: read stopped after line {f.lines:,} ({f.read_error})\n")
    return buf.getvalue()


def build_options(log_format: list[str], layer: list[str], format_name: list[str], strict: bool,
                  max_reject_rate: float, engine: str = "auto") -> IngestOptions:
    if not 0.0 <= max_reject_rate <= 1.0:
        raise UsageError("--max-reject-rate must be between 0 and 1")
    if engine not in ("auto", "python"):
        raise UsageError("--engine must be auto or python")
    return IngestOptions(
        log_formats=tuple(parse_log_format_option(s) for s in log_format),
        layers=tuple(parse_layer_option(s) for s in layer),
        format_names=tuple(parse_format_name_option(s) for s in format_name),
        strict=strict, max_reject_rate=max_reject_rate, engine=engine, progress=True,
    )


@app.command("ingest")
def ingest_cmd(
    paths: list[Path] = typer.Argument(..., help="Log files or directories."),
    store: Path | None = typer.Option(None, "--store", help="DuckDB file (default: in memory)."),
    log_format: list[str] = typer.Option([], "--log-format", help="GLOB=KIND:@CONFIGFILE or KIND:INLINE."),
    layer: list[str] = typer.Option([], "--layer", help="GLOB=LAYER override."),
    format_name: list[str] = typer.Option([], "--format-name", help="GLOB=NAME: force a registered format."),
    strict: bool = typer.Option(False, "--strict", help="Exit 3 when the reject rate is over the limit or a file cannot be read to its end."),
    max_reject_rate: float = typer.Option(0.05, "--max-reject-rate", help="Limit for --strict (0..1)."),
    engine: str = typer.Option("auto", "--engine", help="auto (SQL fast path where declared) or python."),
) -> None:
    """Parse access logs of every hop into the canonical hop record (tables hops / rejects)."""
    options = build_options(log_format, layer, format_name, strict, max_reject_rate, engine)
    st = Store(store)
    try:
        result = ingest_paths(paths, options, st)
    finally:
        st.close()
    _emit(render_result(result))
    failed = check_strict(result, options)
    if failed:
        typer.echo(f"apitrail: {failed}", err=True)
        raise typer.Exit(3)


def leak_records(paths: list[Path], options: IngestOptions) -> list[dict[str, Any]]:
    st = Store(None)
    try:
        ingest_paths(paths, options, st)
        rows = st.execute("SELECT file, line, field, kind, fingerprint, record FROM leaks "
                          "ORDER BY file, line, record, field, kind")
        out = []
        for r in rows.fetchall():
            rec = dict(zip(("file", "line", "field", "kind", "fingerprint"), r[:5], strict=True))
            if r[5] is not None and r[5] > 1:  # the 2nd and later records of a line; absent means record 1
                rec["record"] = r[5]
            out.append(rec)
        return out
    finally:
        st.close()


@app.command("leaks")
def leaks_cmd(
    paths: list[Path] = typer.Argument(..., help="Log files or directories."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or table."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write here instead of stdout."),
    log_format: list[str] = typer.Option([], "--log-format", help="GLOB=KIND:@CONFIGFILE or KIND:INLINE."),
    layer: list[str] = typer.Option([], "--layer"),
    format_name: list[str] = typer.Option([], "--format-name"),
) -> None:
    """Find raw secrets in logs: one record per leak (file, line, field, kind, keyed fingerprint; record when the
    leak is in the 2nd or a later record of its line), never the value."""
    if fmt not in ("jsonl", "table"):
        raise UsageError("--format must be jsonl or table")
    options = build_options(log_format, layer, format_name, False, 0.05)
    records = leak_records(paths, options)
    if fmt == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        table = Table(title=f"{len(records)} leaked secrets")
        for col in ("file", "line", "field", "kind", "fingerprint"):
            table.add_column(col)
        for r in records:
            line = f'{r["line"]}#{r["record"]}' if "record" in r else str(r["line"])
            table.add_row(str(r["file"]), line, str(r["field"]), str(r["kind"]), str(r["fingerprint"]))
        buf = io.StringIO()
        Console(file=buf, width=160).print(table)
        text = buf.getvalue()
    if output is not None:
        output.write_text(guard(text, str(output)), encoding="utf-8")
        typer.echo(f"{len(records)} leaks written to {output}", err=True)
    else:
        _emit(text)


try:  # part 2 registers run / explain / export
    from apitrail.trace.analyze_cli import register  # type: ignore[attr-defined]

    register(app)
except ImportError:
    pass

__all__ = ["DefaultCommandGroup", "app", "build_options", "leak_records", "render_result"]
