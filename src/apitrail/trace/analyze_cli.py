"""`apitrail trace run | explain | export`: the analysis commands (registered on the trace app by ``register``).

Thin, as the CLI should be: parse options, ingest (``trace/ingest.py``), run an engine (DuckDB by default,
``--engine spark``), hand the result to a writer. Writers stream the records a batch of request groups at a time
while the analysis is open (``open_analysis``), and pass every batch through the output guard before the output
appears (``GuardedOutput``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pyarrow as pa
import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from apitrail.errors import UsageError
from apitrail.output.guard import guard
from apitrail.trace.blindspots import BlindSpotOptions
from apitrail.trace.correlate import CorrelateOptions
from apitrail.trace.engines._pipeline import (
    BATCH_ROWS,
    AnalysisResult,
    AnalyzeOptions,
    find_request,
    hop_ref,
    jsonl_line,
)

ENGINES = ("duckdb", "spark")


def _ingest_options(log_format: list[str], layer: list[str], format_name: list[str], strict: bool = False,
                    max_reject_rate: float = 0.05, parser: str = "auto") -> Any:
    from apitrail.trace.cli import build_options

    return build_options(log_format, layer, format_name, strict, max_reject_rate, parser)


@contextmanager
def open_analysis(paths: list[str], log_format: list[str] | None = None, layer: list[str] | None = None,
                  format_name: list[str] | None = None, engine: str = "duckdb", store: str | None = None,
                  options: AnalyzeOptions | None = None, parser: str = "auto",
                  spark_master: str | None = None) -> Iterator[AnalysisResult]:
    """Ingest log files and analyze them; the result streams its records while the context is open."""
    if engine not in ENGINES:
        raise UsageError(f"--engine must be one of {', '.join(ENGINES)}")
    iopts = _ingest_options(list(log_format or []), list(layer or []), list(format_name or []), parser=parser)
    if engine == "spark":
        from apitrail.trace.engines.spark import analyze_dataframe, get_session, parse_with_spark
        from apitrail.trace.ingest import iter_files

        files = [str(p) for p in iter_files(paths)]
        spark = get_session(spark_master)
        yield analyze_dataframe(spark, parse_with_spark(spark, files, iopts), options)
        return

    from apitrail.trace.engines.duckdb import analyze_connection
    from apitrail.trace.ingest import ingest_paths
    from apitrail.trace.store import Store

    st = Store(store)
    try:
        if paths:
            ingest_paths(paths, iopts, st)
        yield analyze_connection(st.con, "hops", options)
    finally:
        st.close()


def analyze_paths(paths: list[str], log_format: list[str] | None = None, layer: list[str] | None = None,
                  format_name: list[str] | None = None, engine: str = "duckdb", store: str | None = None,
                  options: AnalyzeOptions | None = None, parser: str = "auto",
                  spark_master: str | None = None) -> tuple[list[dict[str, Any]], AnalysisResult]:
    """Ingest log files and analyze them; returns the trace output records (all in memory) and the result."""
    with open_analysis(paths, log_format, layer, format_name, engine, store, options, parser,
                       spark_master) as result:
        result.materialize()
    return result.requests, result


def _analyze_options(skew: float, gateway_id: list[str], gateway_source: list[str], no_heuristic: bool) -> AnalyzeOptions:
    return AnalyzeOptions(
        correlate=CorrelateOptions(skew_seconds=skew, heuristic=not no_heuristic),
        blind_spots=BlindSpotOptions(gateway_ids=tuple(gateway_id), gateway_sources=tuple(gateway_source)),
    )


def _write(text: str, output: Path | None, where: str) -> None:
    guard(text, where)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.write_text(text, encoding="utf-8")


class ChunkGuard:
    """The output guard over a text given chunk by chunk (each ending at a line end), with the same windows as one
    call over the whole text: the guard reads a line with a suspect word together with the next non-blank line,
    so the tail of each chunk from its last non-blank line is guarded again in front of the next chunk."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._carry = ""

    def check(self, text: str) -> None:
        if not text:
            return
        guard(self._carry + text, self.where)
        stripped = text.rstrip()
        self._carry = (self._carry + text) if not stripped else text[stripped.rfind("\n") + 1:]


class GuardedOutput:
    """Text written chunk by chunk through the output guard, fail-closed: chunks go to a temporary file, and only
    when every chunk has passed does it become ``output`` (renamed) or get copied to stdout."""

    def __init__(self, output: Path | None, where: str) -> None:
        self.output = output
        self._guard = ChunkGuard(where)
        self._tmp: Any = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in close()/abort()
            "w", encoding="utf-8", newline="", delete=False, prefix=".apitrail-",
            dir=None if output is None else output.parent)

    def write(self, text: str) -> None:
        self._guard.check(text)
        self._tmp.write(text)

    def close(self) -> None:
        self._tmp.close()
        name = self._tmp.name
        if self.output is None:
            with open(name, encoding="utf-8", newline="") as f:
                shutil.copyfileobj(f, sys.stdout)
            sys.stdout.flush()
            os.unlink(name)
            return
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(name, 0o666 & ~mask)
        os.replace(name, self.output)

    def abort(self) -> None:
        self._tmp.close()
        with suppress(FileNotFoundError):
            os.unlink(self._tmp.name)

    def __enter__(self) -> GuardedOutput:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_jsonl(result: AnalysisResult, output: Path | None, batch_rows: int = BATCH_ROWS) -> int:
    """The trace output JSONL, one batch of request groups at a time; returns the number of records."""
    n = 0
    with GuardedOutput(output, "trace jsonl") as out:
        for batch in result.iter_batches(batch_rows):
            out.write("".join(jsonl_line(r) + "\n" for r in batch))
            n += len(batch)
    return n


def render_summary(result: AnalysisResult) -> str:
    s = result.summary()
    buf = io.StringIO()
    con = Console(file=buf, width=140, force_terminal=sys.stdout.isatty())
    con.print(Text(f"{s['requests']} requests from {s['hops']} hop records; joins: "
                   + ", ".join(f"{k} {v}" for k, v in s["joins"].items()), style="bold"))
    t = Table(title="failure classes per layer")
    classes = [c for c in s["classes"] if c != "none"]
    t.add_column("layer")
    for c in classes:
        t.add_column(c, justify="right")
    for layer, counts in s["classes_per_layer"].items():
        t.add_row(layer, *(str(counts.get(c, 0)) for c in classes))
    con.print(t)
    con.print(f"requests without failure: {s['classes'].get('none', 0)}")
    if s["top_reasons"]:
        t = Table(title="top reasons (vendor codes verbatim)")
        t.add_column("layer: reason")
        t.add_column("requests", justify="right")
        for reason, n in s["top_reasons"]:
            t.add_row(reason, str(n))
        con.print(t)
    if s["blind_spots"]:
        t = Table(title="blind spots")
        t.add_column("kind")
        t.add_column("requests", justify="right")
        for kind, n in s["blind_spots"].items():
            t.add_row(kind, str(n))
        con.print(t)
    t = Table(title="identity coverage (share of hop records with the field)")
    t.add_column("layer")
    t.add_column("hops", justify="right")
    fields = list(s["identity_coverage"][0]["present"]) if s["identity_coverage"] else []
    for f in fields:
        t.add_column(f, justify="right")
    for row in s["identity_coverage"]:
        t.add_row(row["layer"], str(row["hops"]), *(f"{row['present'][f]:.0%}" for f in fields))
    con.print(t)
    for note in s["notes"]:
        con.print(f"[dim]note:[/dim] {note}")
    return buf.getvalue()


def render_explain(record: dict[str, Any]) -> str:
    """The hop timeline of one request: offsets from the first hop, status, class and reason, then the verdict."""
    from datetime import datetime

    buf = io.StringIO()
    con = Console(file=buf, width=140, force_terminal=sys.stdout.isatty())
    hops = record["hops"]
    times = [datetime.fromisoformat(h["timestamp"].replace("Z", "+00:00")) for h in hops if h.get("timestamp")]
    t0 = min(times) if times else None
    t = Table(title=f"request {record['request_key']}  (join: {record['join']})")
    for col, just in (("#", "right"), ("layer", "left"), ("product", "left"), ("dir", "left"), ("+ms", "right"),
                      ("", "left"), ("status", "right"), ("class", "left"), ("reason", "left"), ("source", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    fail = record["failure"].get("hop")
    for i, h in enumerate(hops, 1):
        off = ""
        if t0 is not None and h.get("timestamp"):
            off = f"{(datetime.fromisoformat(h['timestamp'].replace('Z', '+00:00')) - t0).total_seconds() * 1000:.0f}"
        is_fail = fail is not None and fail == h["source"]
        style = "bold red" if is_fail else ("yellow" if h.get("class") else "")
        bar = "  " * (i - 1) + ("└─✖" if is_fail else "└─▶")
        t.add_row(str(i), h["layer"], h.get("product") or "", h.get("direction") or "", off, bar,
                  "" if h["status"] is None else str(h["status"]), h.get("class", ""), h.get("reason", ""),
                  hop_ref(h["source"]), style=style)
    con.print(t)
    f = record["failure"]
    verdict = f"class: {f['class']}"
    if f.get("layer"):
        verdict += f"   failing hop: {f['layer']}/{f.get('product') or '?'}   reason: {f.get('reason')}"
    body = verdict + "".join(f"\n  - {e}" for e in f.get("evidence") or [])
    if record["blind_spots"]:
        body += "\nblind spots: " + ", ".join(record["blind_spots"])
    con.print(Panel(body, title="verdict"))
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ exports


def to_parquet_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per hop with its request's key, join label, failure and blind spots."""
    rows = []
    for r in records:
        f = r["failure"]
        fh = f.get("hop") or {}
        for depth, h in enumerate(r["hops"], 1):
            rows.append({
                "request_key": r["request_key"], "join": r["join"], "depth": depth, "layer": h["layer"],
                "product": h.get("product"), "direction": h.get("direction"), "timestamp": h.get("timestamp"),
                "status": h["status"], "hop_class": h.get("class"), "hop_reason": h.get("reason"),
                "source_file": h["source"]["file"], "source_line": h["source"]["line"],
                "source_record": h["source"].get("record", 1),
                "is_failing_hop": fh == h["source"], "failure_class": f["class"], "failure_layer": f.get("layer"),
                "failure_reason": f.get("reason"), "blind_spots": list(r["blind_spots"]),
            })
    return rows


_API_ACTIVITY = {"POST": 1, "GET": 2, "HEAD": 2, "PUT": 3, "PATCH": 3, "DELETE": 4}
_HTTP_ACTIVITY = {"CONNECT": 1, "DELETE": 2, "GET": 3, "HEAD": 4, "OPTIONS": 5, "POST": 6, "PUT": 7, "TRACE": 8,
                  "PATCH": 9}


def _epoch_ms(ts: str | None) -> int | None:
    from datetime import datetime

    if not ts:
        return None
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


def _product(h: dict[str, Any]) -> dict[str, Any]:
    return {"name": h.get("product") or h["layer"], "vendor_name": h.get("product") or "unknown",
            "feature": {"name": h["layer"]}}


def to_ocsf_api_activity(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OCSF API Activity (class 6003), one event per request, with ``actor.authorizations`` per deciding hop."""
    out = []
    for r in records:
        f = r["failure"]
        first = r["hops"][0]
        method = (first.get("method") or "").upper()
        activity = _API_ACTIVITY.get(method, 99)
        auths = []
        for h in r["hops"]:
            if h.get("class") in ("authn", "authz", "token_exchange") or (
                    f.get("hop") == h["source"] and f["class"] in ("authn", "authz", "token_exchange")):
                decision = "Deny"
            elif h["status"] is not None and 0 < h["status"] < 400:
                decision = "Allow"
            else:
                continue
            auths.append({"decision": decision,
                          "policy": {"name": f"{h['layer']}/{h.get('product') or '?'}",
                                     "desc": h.get("reason") or f"status {h['status']}"}})
        failed = f["class"] != "none"
        out.append({
            "class_uid": 6003, "class_name": "API Activity", "category_uid": 6,
            "category_name": "Application Activity", "activity_id": activity, "type_uid": 600300 + activity,
            "severity_id": 3 if failed else 1, "time": _epoch_ms(first.get("timestamp")),
            "status_id": 2 if failed else 1, "status": "Failure" if failed else "Success",
            "status_code": None if first["status"] is None else str(first["status"]),
            "status_detail": f.get("reason"),
            "api": {"operation": f"{method} {first.get('path') or ''}".strip(),
                    "request": {"uid": r["request_key"]},
                    "response": {"code": first["status"]}},
            "actor": {"authorizations": auths},
            "metadata": {"version": "1.3.0", "product": {"name": "apitrail", "vendor_name": "apitrail"},
                         "correlation_uid": r["request_key"], "log_name": first["source"]["file"]},
            "unmapped": {"join": r["join"], "failure_class": f["class"], "failure_layer": f.get("layer"),
                         "blind_spots": r["blind_spots"]},
        })
    return out


def to_ocsf_http_activity(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OCSF HTTP Activity (class 4002), one event per hop record."""
    out = []
    for r in records:
        for h in r["hops"]:
            method = (h.get("method") or "").upper()
            activity = _HTTP_ACTIVITY.get(method, 99)
            err = h["status"] is not None and (h["status"] >= 400 or h["status"] == 0)
            out.append({
                "class_uid": 4002, "class_name": "HTTP Activity", "category_uid": 4,
                "category_name": "Network Activity", "activity_id": activity, "type_uid": 400200 + activity,
                "severity_id": 3 if err else 1, "time": _epoch_ms(h.get("timestamp")),
                "status_id": 2 if err else 1, "status_detail": h.get("reason"),
                "http_request": {"http_method": method or None, "url": {"path": h.get("path")},
                                 "uid": r["request_key"]},
                "http_response": {"code": h["status"]},
                "metadata": {"version": "1.3.0", "product": _product(h), "correlation_uid": r["request_key"],
                             "log_name": h["source"]["file"]},
                "unmapped": {"source_line": h["source"]["line"], "hop_class": h.get("class"),
                             "direction": h.get("direction"),
                             **({"source_record": h["source"]["record"]} if "record" in h["source"] else {})},
            })
    return out


EXPORT_KINDS = ("parquet", "ocsf-api", "ocsf-http")

PARQUET_SCHEMA = pa.schema([
    ("request_key", pa.string()), ("join", pa.string()), ("depth", pa.int64()), ("layer", pa.string()),
    ("product", pa.string()), ("direction", pa.string()), ("timestamp", pa.string()), ("status", pa.int64()),
    ("hop_class", pa.string()), ("hop_reason", pa.string()), ("source_file", pa.string()),
    ("source_line", pa.int64()), ("source_record", pa.int64()), ("is_failing_hop", pa.bool_()), ("failure_class", pa.string()),
    ("failure_layer", pa.string()), ("failure_reason", pa.string()), ("blind_spots", pa.list_(pa.string())),
])
"""The Parquet export's columns (fixed, so that every batch writes the same schema)."""


def write_export(records: AnalysisResult | list[dict[str, Any]], kind: str, output: Path,
                 batch_rows: int = BATCH_ROWS) -> int:
    """Write an export batch by batch (every batch through the guard); returns the number of rows or events."""
    batches = records.iter_batches(batch_rows) if isinstance(records, AnalysisResult) else [records]
    n = 0
    if kind == "parquet":
        import pyarrow.parquet as pq

        # the guard reads the rows as JSON lines; the Parquet file is written beside and renamed when all passed
        check = ChunkGuard("parquet export")
        tmp = output.with_name(f".{output.name}.apitrail-tmp")
        try:
            with pq.ParquetWriter(tmp, PARQUET_SCHEMA) as writer:
                for batch in batches:
                    rows = to_parquet_rows(batch)
                    check.check("".join(json.dumps(r, default=str) + "\n" for r in rows))
                    writer.write_table(pa.Table.from_pylist(rows, schema=PARQUET_SCHEMA))
                    n += len(rows)
            os.replace(tmp, output)
        finally:
            with suppress(FileNotFoundError):
                tmp.unlink()
        return n
    convert = to_ocsf_api_activity if kind == "ocsf-api" else to_ocsf_http_activity
    with GuardedOutput(output, f"{kind} export") as out:
        for batch in batches:
            events = convert(batch)
            out.write("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events))
            n += len(events)
    return n


# ------------------------------------------------------------------------------------------------ commands


def register(app: typer.Typer) -> None:
    """Add ``run``, ``explain`` and ``export`` to the ``apitrail trace`` app."""

    @app.command("run")
    def run_cmd(
        paths: list[Path] = typer.Argument(None, help="Log files or directories (omit with --store to reuse one)."),
        fmt: str = typer.Option("table", "--format", help="table (summary), json (summary) or jsonl (requests)."),
        output: Path | None = typer.Option(None, "-o", "--output", help="Write here instead of stdout."),
        engine: str = typer.Option("duckdb", "--engine", help="duckdb (default) or spark."),
        store: Path | None = typer.Option(None, "--store", help="DuckDB file to ingest into and analyze."),
        log_format: list[str] = typer.Option([], "--log-format", help="GLOB=KIND:@CONFIGFILE or KIND:INLINE."),
        layer: list[str] = typer.Option([], "--layer", help="GLOB=LAYER override."),
        format_name: list[str] = typer.Option([], "--format-name", help="GLOB=NAME: force a registered format."),
        parser: str = typer.Option("auto", "--parser", help="auto (SQL fast path where declared) or python."),
        skew: float = typer.Option(5.0, "--skew", help="Clock skew tolerated between layers (seconds)."),
        gateway_id: list[str] = typer.Option([], "--gateway-id", help="XFCC By= identity of the gateway."),
        gateway_source: list[str] = typer.Option([], "--gateway-source", help="Address the gateway connects from."),
        no_heuristic: bool = typer.Option(False, "--no-heuristic", help="Join by ids only."),
        spark_master: str | None = typer.Option(None, "--spark-master", help="Spark master URL (default local)."),
    ) -> None:
        """Join each request across hops, classify its failure and failing hop, and find blind spots."""
        if fmt not in ("table", "json", "jsonl"):
            raise UsageError("--format must be table, json or jsonl")
        if not paths and store is None:
            raise UsageError("give log files or directories, or --store with an ingested store")
        with open_analysis(
                [str(p) for p in paths or []], log_format, layer, format_name, engine,
                str(store) if store else None, _analyze_options(skew, gateway_id, gateway_source, no_heuristic),
                parser, spark_master) as result:
            if fmt == "jsonl":
                write_jsonl(result, output)
            elif fmt == "json":
                _write(json.dumps(result.summary(), indent=2, ensure_ascii=False) + "\n", output, "trace summary")
            else:
                _write(render_summary(result), output, "trace summary")

    @app.command("explain")
    def explain_cmd(
        key: str = typer.Argument(..., help="Request key (trace id, request id ...), a unique prefix, file:line or file:line#record."),
        paths: list[Path] = typer.Argument(None, help="Log files or directories."),
        store: Path | None = typer.Option(None, "--store", help="DuckDB store to analyze."),
        log_format: list[str] = typer.Option([], "--log-format"),
        layer: list[str] = typer.Option([], "--layer"),
        format_name: list[str] = typer.Option([], "--format-name"),
        skew: float = typer.Option(5.0, "--skew"),
    ) -> None:
        """Draw the hop timeline of one request and the reasoning behind its verdict."""
        if not paths and store is None:
            raise UsageError("give log files or directories, or --store")
        with open_analysis([str(p) for p in paths or []], log_format, layer, format_name, "duckdb",
                           str(store) if store else None, _analyze_options(skew, [], [], False)) as result:
            rec = result.find(key)
        if rec is None:
            raise UsageError(f"no request matches {key!r}")
        _write(render_explain(rec), None, "trace explain")

    @app.command("export")
    def export_cmd(
        paths: list[Path] = typer.Argument(None, help="Log files or directories."),
        to: str = typer.Option("parquet", "--to", help="parquet (one row per hop), ocsf-api (6003), ocsf-http (4002)."),
        output: Path = typer.Option(..., "-o", "--output", help="Output file."),
        store: Path | None = typer.Option(None, "--store"),
        log_format: list[str] = typer.Option([], "--log-format"),
        layer: list[str] = typer.Option([], "--layer"),
        format_name: list[str] = typer.Option([], "--format-name"),
        engine: str = typer.Option("duckdb", "--engine"),
    ) -> None:
        """Export the analysed requests: Parquet, or OCSF API Activity / HTTP Activity as JSON lines."""
        if to not in EXPORT_KINDS:
            raise UsageError("--to must be parquet, ocsf-api or ocsf-http")
        if not paths and store is None:
            raise UsageError("give log files or directories, or --store")
        with open_analysis([str(p) for p in paths or []], log_format, layer, format_name, engine,
                           str(store) if store else None) as result:
            n = write_export(result, to, output)
        typer.echo(f"wrote {n} {to} records to {output}", err=True)


__all__ = ["ChunkGuard", "GuardedOutput", "analyze_paths", "find_request", "open_analysis", "register", "render_explain",
           "render_summary", "to_ocsf_api_activity", "to_ocsf_http_activity", "to_parquet_rows", "write_export",
           "write_jsonl"]
