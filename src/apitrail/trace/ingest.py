"""Ingest with line accounting: every line of every file lands in ``hops`` or ``rejects``.

Per file: pick the format (``--format-name`` / ``--log-format`` globs, else detection from the first lines),
then parse. Formats with a :class:`Vector` take the DuckDB fast path (``fastpath.py``) and only the unsettled rows
go through Python; the others are parsed by their Python line parser, in a process pool for big files.
Counts reconcile per file: ``lines == hops + rejects`` (rejects include ``header`` and ``blank`` lines).
"""

from __future__ import annotations

import fnmatch
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from apitrail.errors import LogFormatError, UsageError
from apitrail.trace import fastpath
from apitrail.trace.formats import detect_format, get_format, get_template_format
from apitrail.trace.formats._base import FormatOptions, LogFormat, Reject
from apitrail.trace.normalize.record import HopContext, to_hop
from apitrail.trace.schema import HOP_SCHEMA, LAYERS, REJECT_SCHEMA
from apitrail.trace.secrets import find_leaks, fingerprint
from apitrail.trace.store import LEAK_SCHEMA, Store

NON_DATA_REASONS = ("header", "blank")
CHUNK_LINES = 20_000
# lines the SQL fast path leaves to Python are the costly ones (a secret to redact: ~0.3 ms each), so a few
# thousand already pay for the pool
POOL_MIN_LINES = 2_000
DETECT_LINES = 20


@dataclass(frozen=True)
class LogFormatSpec:
    glob: str
    kind: str
    template: str


@dataclass(frozen=True)
class IngestOptions:
    log_formats: tuple[LogFormatSpec, ...] = ()
    layers: tuple[tuple[str, str], ...] = ()
    format_names: tuple[tuple[str, str], ...] = ()
    strict: bool = False
    max_reject_rate: float = 0.05
    engine: str = "auto"  # "auto": SQL fast path where declared; "python": reference parsers only
    workers: int | None = None
    progress: bool = False
    collect_leaks: bool = True


@dataclass
class FileResult:
    file: str
    format: str | None
    confidence: float
    layer: str | None
    lines: int = 0
    hops: int = 0
    rejects: int = 0
    headers: int = 0
    blank: int = 0
    fast_rows: int = 0
    python_rows: int = 0
    leaks: int = 0
    seconds: float = 0.0
    # why the SQL fast path gave the file back to Python (every line then parsed by the reference parser)
    fast_path_error: str | None = None

    @property
    def data_lines(self) -> int:
        return self.lines - self.headers - self.blank

    @property
    def reject_rate(self) -> float:
        bad = self.rejects - self.headers - self.blank
        return bad / self.data_lines if self.data_lines > 0 else 0.0

    @property
    def reconciled(self) -> bool:
        return self.lines == self.hops + self.rejects


@dataclass
class IngestResult:
    run_id: str
    files: list[FileResult] = field(default_factory=list)

    def total(self, attr: str) -> int:
        return sum(int(getattr(f, attr)) for f in self.files)

    @property
    def reject_rate(self) -> float:
        data = sum(f.data_lines for f in self.files)
        bad = sum(f.rejects - f.headers - f.blank for f in self.files)
        return bad / data if data > 0 else 0.0

    @property
    def reconciled(self) -> bool:
        return all(f.reconciled for f in self.files)


# ---------------------------------------------------------------------------------------------------- options


def _split_glob(spec: str, what: str) -> tuple[str, str]:
    glob, sep, value = spec.partition("=")
    if not sep or not glob or not value:
        raise UsageError(f"{what} expects GLOB=VALUE, got {spec!r}")
    return glob, value


def parse_log_format_option(spec: str, base_dir: Path | None = None) -> LogFormatSpec:
    """``GLOB=KIND:@CONFIGFILE`` or ``GLOB=KIND:INLINE`` (or without ``GLOB=``: every file)."""
    glob = "*"
    rest = spec
    head, sep, tail = spec.partition("=")
    if sep and ":" not in head:
        glob, rest = head, tail
    kind, sep, template = rest.partition(":")
    if not sep or not kind or not template:
        raise UsageError(f"--log-format expects GLOB=KIND:@CONFIGFILE or KIND:INLINE, got {spec!r}")
    get_template_format(kind)  # raises LogFormatError for an unknown kind
    if template.startswith("@"):
        path = Path(template[1:])
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            template = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise LogFormatError(f"cannot read log-format file {path}: {exc.strerror}") from exc
    return LogFormatSpec(glob, kind, template)


def parse_layer_option(spec: str) -> tuple[str, str]:
    glob, layer = _split_glob(spec, "--layer")
    if layer not in LAYERS:
        raise UsageError(f"--layer: unknown layer {layer!r} (known: {', '.join(LAYERS)})")
    return glob, layer


def parse_format_name_option(spec: str) -> tuple[str, str]:
    glob, name = _split_glob(spec, "--format-name")
    get_format(name)
    return glob, name


def _matches(glob: str, path: Path) -> bool:
    return fnmatch.fnmatch(path.name, glob) or fnmatch.fnmatch(str(path), glob) or \
        fnmatch.fnmatch(path.as_posix(), "*/" + glob)


def iter_files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith(".") and not name.endswith((".duckdb", ".wal")):
                        out.append(Path(root) / name)
        elif path.is_file():
            out.append(path)
        else:
            raise UsageError(f"no such file or directory: {path}")
    return out


def first_lines(data: bytes, n: int = DETECT_LINES) -> list[str]:
    out: list[str] = []
    for raw in data[: 256 * 1024].split(b"\n"):
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if line.strip():
            out.append(line)
            if len(out) >= n:
                break
    return out


def resolve_format(path: Path, data: bytes, options: IngestOptions) -> tuple[LogFormat | None, FormatOptions, float]:
    layer = next((lay for g, lay in options.layers if _matches(g, path)), None)
    for spec in options.log_formats:
        if _matches(spec.glob, path):
            fmt = get_template_format(spec.kind)
            return fmt, FormatOptions(template=spec.template, layer=layer), 1.0
    for glob, name in options.format_names:
        if _matches(glob, path):
            return get_format(name), FormatOptions(layer=layer), 1.0
    detected, conf = detect_format(first_lines(data))
    return detected, FormatOptions(layer=layer), conf


# ---------------------------------------------------------------------------------------------------- parsing


@dataclass
class ChunkResult:
    hops: pa.Table
    rejects: list[tuple[int, str]]
    leaks: list[tuple[int, str, str, str]]
    headers: int = 0
    blank: int = 0


def _parse_lines(fmt: LogFormat, fopts: FormatOptions, ctx: HopContext, numbered: Sequence[tuple[int, str]],
                 parser: Callable[[str], dict[str, Any] | None] | None = None,
                 collect_leaks: bool = True) -> ChunkResult:
    """The reference path: the format's Python parser + ``to_hop`` for each line."""
    if parser is None:
        parser = fmt.make_parser(fopts)
    rows: list[dict[str, Any]] = []
    rejects: list[tuple[int, str]] = []
    leaks: list[tuple[int, str, str, str]] = []
    headers = blank = 0
    for n, line in numbered:
        line = line.rstrip("\r\n")
        if not line.strip():
            rejects.append((n, "blank"))
            blank += 1
            continue
        try:
            rec = parser(line)
            if rec is None:
                rejects.append((n, "header"))
                headers += 1
                continue
            row, found = to_hop(rec, ctx, n)
        except Reject as exc:
            rejects.append((n, _safe_reason(exc.reason)))
            _line_leaks(n, line, leaks, collect_leaks)
            continue
        except Exception as exc:  # noqa: BLE001 - a parser bug must not lose the line
            rejects.append((n, f"parser error: {type(exc).__name__}"))
            _line_leaks(n, line, leaks, collect_leaks)
            continue
        rows.append(row)
        if collect_leaks:
            for lk in found:
                leaks.append((n, lk.field, lk.kind, fingerprint(lk.secret(_raw_value(rec, lk.field)))))
    return ChunkResult(pa.Table.from_pylist(rows, schema=HOP_SCHEMA), rejects, leaks, headers, blank)


def _raw_value(rec: dict[str, Any], key: str) -> str:
    v = (rec.get("raw") or {}).get(key)
    return v if isinstance(v, str) else str(v)


def _line_leaks(n: int, line: str, out: list[tuple[int, str, str, str]], collect: bool) -> None:
    if collect:
        for lk in find_leaks("line", line):
            out.append((n, "line", lk.kind, fingerprint(lk.secret(line))))


def _safe_reason(reason: str) -> str:
    """Reject reasons are short and never carry secrets, whatever a parser put there."""
    from apitrail.trace.secrets import redact_value

    text = " ".join(str(reason).split())[:200]
    return redact_value("reason", text)[0]


def _chunk_worker(args: tuple[str, FormatOptions, HopContext, list[tuple[int, str]], bool, str | None]) -> ChunkResult:
    name, fopts, ctx, numbered, collect, kind = args
    fmt = get_template_format(kind) if kind else get_format(name)
    return _parse_lines(fmt, fopts, ctx, numbered, collect_leaks=collect)


# ---------------------------------------------------------------------------------------------------- driver


def _progress(enabled: bool, total: int) -> Any:
    if not enabled or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)
    prog.start()
    prog.add_task("ingest", total=total)
    return prog


def ingest_paths(paths: Iterable[str | Path], options: IngestOptions | None = None,
                 store: Store | None = None) -> IngestResult:
    """Parse every file into ``store`` (in memory when None). The Python API used by the CLI and part 2."""
    options = options or IngestOptions()
    store = store or Store()
    files = iter_files(paths)
    result = IngestResult(run_id=uuid.uuid4().hex[:12])
    started = datetime.now(UTC)
    sizes = {f: f.stat().st_size for f in files}
    prog = _progress(options.progress and sum(sizes.values()) > 20_000_000, len(files))
    pool: ProcessPoolExecutor | None = None
    # one transaction for the run: it lands whole or not at all, and a file store writes full row groups once
    # instead of logging every file's rows to the WAL and checkpointing them again
    store.execute("BEGIN TRANSACTION")
    try:
        for path in files:
            t0 = time.perf_counter()
            fr, pool = _ingest_file(path, options, store, pool)
            fr.seconds = time.perf_counter() - t0
            store.execute(
                "INSERT INTO ingest_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [result.run_id, started, fr.file, fr.format, fr.confidence, fr.layer, fr.lines, fr.hops,
                 fr.rejects, fr.headers, fr.blank, fr.fast_rows, fr.python_rows, fr.leaks, fr.reject_rate,
                 fr.seconds])
            result.files.append(fr)
            if prog is not None:
                prog.advance(prog.task_ids[0])
        store.execute("COMMIT")
    except BaseException:
        store.con.execute("ROLLBACK")
        raise
    finally:
        if pool is not None:
            pool.shutdown()
        if prog is not None:
            prog.stop()
    return result


def _store_rejects(store: Store, ctx: HopContext, rejects: list[tuple[int, str]]) -> None:
    if rejects:
        store.append("rejects", pa.table({
            "source.file": pa.array([ctx.file] * len(rejects), pa.string()),
            "source.line": pa.array([n for n, _ in rejects], pa.int64()),
            "source.format": pa.array([ctx.format] * len(rejects), pa.string()),
            "reason": pa.array([r for _, r in rejects], pa.string()),
        }, schema=REJECT_SCHEMA))


def _store_leaks(store: Store, file: str, leaks: list[tuple[int, str, str, str]]) -> None:
    if leaks:
        store.append("leaks", pa.table({
            "file": [file] * len(leaks), "line": [n for n, *_ in leaks], "field": [f for _, f, _, _ in leaks],
            "kind": [k for *_, k, _ in leaks], "fingerprint": [fp for *_, fp in leaks]}, schema=LEAK_SCHEMA))


def _ingest_file(path: Path, options: IngestOptions, store: Store,
                 pool: ProcessPoolExecutor | None) -> tuple[FileResult, ProcessPoolExecutor | None]:
    file = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    store.forget_file(file)
    fmt, fopts, conf = resolve_format(path, data, options)
    lines_tbl = fastpath.lines_table(data)
    total = lines_tbl.num_rows
    if fmt is None:
        fr = FileResult(file, None, conf, fopts.layer, lines=total)
        text = [ln.rstrip("\r\n") for ln in lines_tbl.column("line").to_pylist()]
        unknown = [(i + 1, "blank" if not ln.strip() else "unknown format") for i, ln in enumerate(text)]
        found: list[tuple[int, str, str, str]] = []
        for i, ln in enumerate(text):
            _line_leaks(i + 1, ln, found, options.collect_leaks)
        ctx = HopContext(file, "unknown", fopts.layer or "", "")
        _store_rejects(store, ctx, unknown)
        _store_leaks(store, file, found)
        fr.blank = sum(1 for _, r in unknown if r == "blank")
        fr.rejects, fr.leaks = len(unknown), len(found)
        return fr, pool

    try:
        parser = fmt.make_parser(fopts)
    except Reject as exc:
        raise LogFormatError(f"{path}: {exc.reason}") from exc
    except (ValueError, KeyError) as exc:
        raise LogFormatError(f"{path}: invalid {fmt.name} format: {exc}") from exc
    layer = fopts.layer or fmt.layer
    ctx = HopContext(file, fmt.name, fmt.layer, fmt.product, layer_override=fopts.layer,
                     product_override=fopts.product)
    fr = FileResult(file, fmt.name, conf, layer, lines=total)
    rejects: list[tuple[int, str]] = []
    leaks: list[tuple[int, str, str, str]] = []
    vector = None
    if options.engine == "auto":
        vector = fmt.make_file_vector(fopts, data) if fmt.make_file_vector else fmt.vector_for(fopts)
    fres = None
    if vector is not None:
        try:
            fres = fastpath.run(store.con, lines_tbl, vector, ctx)
        except fastpath.FastPathError as exc:
            fr.fast_path_error = _safe_reason(str(exc))
    if fres is not None:
        fr.fast_rows = fres.fast_rows
        rejects.extend(fres.rejects)
        for n, line in fres.rejected_lines:  # rejected lines are still scanned for raw secrets
            _line_leaks(n, line, leaks, options.collect_leaks)
        numbered = fres.slow
    else:
        numbered = list(enumerate((ln for ln in lines_tbl.column("line").to_pylist()), start=1))
    chunks: list[ChunkResult] = []
    kind = fmt.template_kind or (fmt.name if fopts.template else None)
    if len(numbered) >= POOL_MIN_LINES and not fmt.stateful and (options.workers or os.cpu_count() or 1) > 1:
        if pool is None:
            pool = ProcessPoolExecutor(max_workers=options.workers or os.cpu_count())
        workers = options.workers or os.cpu_count() or 1
        size = max(500, min(CHUNK_LINES, -(-len(numbered) // (2 * workers))))
        jobs = [(fmt.name, fopts, ctx, numbered[i:i + size], options.collect_leaks, kind)
                for i in range(0, len(numbered), size)]
        chunks.extend(pool.map(_chunk_worker, jobs))
    elif numbered:
        chunks.append(_parse_lines(fmt, fopts, ctx, numbered, parser, options.collect_leaks))
    for ch in chunks:
        store.append("hops", ch.hops)
        fr.python_rows += ch.hops.num_rows
        rejects.extend(ch.rejects)
        leaks.extend(ch.leaks)
        fr.headers += ch.headers
        fr.blank += ch.blank
    fr.blank += sum(1 for _, r in rejects if r == "blank") - sum(ch.blank for ch in chunks)
    _store_rejects(store, ctx, sorted(rejects))
    _store_leaks(store, file, leaks)
    fr.hops = fr.fast_rows + fr.python_rows
    fr.rejects = len(rejects)
    fr.leaks = len(leaks)
    return fr, pool


def check_strict(result: IngestResult, options: IngestOptions) -> str | None:
    """The message for ``--strict`` when the reject rate (header and blank lines excluded) is over the limit."""
    if options.strict and result.reject_rate > options.max_reject_rate:
        return (f"reject rate {result.reject_rate:.2%} is over --max-reject-rate {options.max_reject_rate:.2%}")
    return None


__all__ = [
    "FileResult",
    "IngestOptions",
    "IngestResult",
    "LogFormatSpec",
    "check_strict",
    "ingest_paths",
    "iter_files",
    "parse_format_name_option",
    "parse_layer_option",
    "parse_log_format_option",
    "replace",
]
