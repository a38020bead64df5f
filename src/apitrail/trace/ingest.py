"""Ingest with line accounting: every line of every file lands in ``hops`` (as one hop per record it holds) or
in ``rejects``.

Per file: pick the format (``--format-name`` / ``--log-format`` globs, else detection from the first lines),
then parse. Formats with a :class:`Vector` take the DuckDB fast path (``fastpath.py``) and only the unsettled rows
go through Python; the others are parsed by their Python line parser, in a process pool for big files.
Counts reconcile per file: ``lines == hop_lines + rejects`` (rejects include ``header`` and ``blank`` lines);
``hops`` counts the hop rows, ``hops >= hop_lines`` (a line may hold several records, see ``formats/_base.py``).
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import itertools
import multiprocessing
import multiprocessing.context
import os
import sys
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from apitrail.errors import LogFormatError, UsageError
from apitrail.trace import fastpath
from apitrail.trace.formats import detect_format, get_format, get_template_format
from apitrail.trace.formats._base import FormatOptions, LineParser, LogFormat, Reject, Vector
from apitrail.trace.normalize.record import HopContext, to_hop
from apitrail.trace.schema import HOP_SCHEMA, LAYERS, REJECT_SCHEMA
from apitrail.trace.secrets import find_leaks, fingerprint
from apitrail.trace.store import LEAK_SCHEMA, Store

NON_DATA_REASONS = ("header", "blank")
CHUNK_LINES = 20_000
# lines the SQL fast path leaves to Python are the costly ones (a secret to redact: ~0.3 ms each), so a few
# thousand already pay for the pool
POOL_MIN_LINES = 2_000
# inputs from this size on start the worker pool before parsing, so its workers are up when the first slow rows
# arrive (measured: started lazily instead, 1M nginx lines ran 3% slower)
PREFORK_BYTES = 16 << 20
DETECT_LINES = 20
DETECT_BYTES = 256 * 1024
# a file is read and parsed in blocks of whole lines of about this size: memory stays bounded whatever its size
BLOCK_BYTES = 64 << 20
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


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
    block_bytes: int = BLOCK_BYTES


@dataclass
class FileResult:
    file: str
    format: str | None
    confidence: float
    layer: str | None
    lines: int = 0
    hops: int = 0  # hop rows: one per record
    hop_lines: int = 0  # lines that gave one or more hops
    rejects: int = 0
    headers: int = 0
    blank: int = 0
    fast_rows: int = 0
    python_rows: int = 0
    leaks: int = 0
    seconds: float = 0.0
    # why the SQL fast path gave the file back to Python (every line then parsed by the reference parser)
    fast_path_error: str | None = None
    # why reading stopped before the end of the file (a truncated gzip): the lines before it were ingested
    read_error: str | None = None

    @property
    def data_lines(self) -> int:
        return self.lines - self.headers - self.blank

    @property
    def reject_rate(self) -> float:
        bad = self.rejects - self.headers - self.blank
        return bad / self.data_lines if self.data_lines > 0 else 0.0

    @property
    def reconciled(self) -> bool:
        """Every line counted once (a line with hops or a reject), and each line with hops gave one or more."""
        return self.lines == self.hop_lines + self.rejects and self.hops >= self.hop_lines


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
    for raw in data[:DETECT_BYTES].split(b"\n"):
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


LeakRow = tuple[int, str, str, str, int]
"""(line, field, kind, fingerprint, record): a row of the ``leaks`` table; a whole-line scan is record 1."""


@dataclass
class ChunkResult:
    hops: pa.Table
    rejects: list[tuple[int, str]]
    leaks: list[LeakRow]
    headers: int = 0
    blank: int = 0
    hop_lines: int = 0  # lines that gave the rows of ``hops`` (fewer than the rows when a line holds several)


def _parse_lines(fmt: LogFormat, fopts: FormatOptions, ctx: HopContext, numbered: Sequence[tuple[int, str]],
                 parser: LineParser | None = None,
                 collect_leaks: bool = True) -> ChunkResult:
    """The reference path: the format's Python parser + ``to_hop`` for each record of each line (a line is all
    hops or one reject)."""
    if parser is None:
        parser = fmt.make_parser(fopts)
    rows: list[dict[str, Any]] = []
    rejects: list[tuple[int, str]] = []
    leaks: list[LeakRow] = []
    headers = blank = hop_lines = 0
    for n, line in numbered:
        line = line.rstrip("\r\n")
        if not line.strip():
            rejects.append((n, "blank"))
            blank += 1
            continue
        try:
            parsed = parser(line)
            if parsed is None:
                rejects.append((n, "header"))
                headers += 1
                continue
            recs = parsed if isinstance(parsed, list) else [parsed]
            if not recs:
                raise Reject("no records")
            hops = [(rec, *to_hop(rec, ctx, n, i)) for i, rec in enumerate(recs, 1)]
        except Reject as exc:
            rejects.append((n, _safe_reason(exc.reason)))
            _line_leaks(n, line, leaks, collect_leaks)
            continue
        except Exception as exc:  # noqa: BLE001 - a parser bug must not lose the line
            rejects.append((n, f"parser error: {type(exc).__name__}"))
            _line_leaks(n, line, leaks, collect_leaks)
            continue
        hop_lines += 1
        for i, (rec, row, found) in enumerate(hops, 1):
            rows.append(row)
            if collect_leaks:
                for lk in found:
                    leaks.append((n, lk.field, lk.kind, fingerprint(lk.secret(_raw_value(rec, lk.field))), i))
    try:
        table = pa.Table.from_pylist(rows, schema=HOP_SCHEMA)
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape ("\ud800"): U+FFFD, as for invalid bytes
        table = pa.Table.from_pylist([{k: _valid_text(v) for k, v in row.items()} for row in rows], schema=HOP_SCHEMA)
    return ChunkResult(table, rejects, leaks, headers, blank, hop_lines)


def _valid_text(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_valid_text(v) for v in value]
    return value


def _raw_value(rec: dict[str, Any], key: str) -> str:
    v = (rec.get("raw") or {}).get(key)
    return v if isinstance(v, str) else str(v)


def _line_leaks(n: int, line: str, out: list[LeakRow], collect: bool) -> None:
    if collect:
        for lk in find_leaks("line", line):
            out.append((n, "line", lk.kind, fingerprint(lk.secret(line)), 1))


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
    run_id = uuid.uuid4().hex[:12]
    started = datetime.now(UTC)
    sizes = {f: f.stat().st_size for f in files}
    prog = _progress(options.progress and sum(sizes.values()) > 20_000_000, len(files))
    pools = _PoolHolder(None)
    if sum(sizes.values()) >= PREFORK_BYTES and (options.workers or os.cpu_count() or 1) > 1:
        pools.pool = _worker_pool(options)
    result = IngestResult(run_id=run_id)
    try:
        for path in files:
            result.files.append(_ingest_file_transaction(path, options, store, pools, started, run_id))
            if prog is not None:
                prog.advance(prog.task_ids[0])
    finally:
        if pools.pool is not None:
            pools.pool.shutdown()
        if prog is not None:
            prog.stop()
    return result


@dataclass
class _PoolHolder:
    pool: ProcessPoolExecutor | None
    # chunks submitted to the pool and not yet stored: (file result, context, future)
    pending: list[tuple[FileResult, HopContext, Future[ChunkResult]]] = field(default_factory=list)


class _FastPathFailed(Exception):
    """The SQL fast path failed on a file: its transaction is aborted, and the file is parsed again in Python."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _ingest_file_transaction(path: Path, options: IngestOptions, store: Store, pools: _PoolHolder,
                             started: datetime, run_id: str) -> FileResult:
    """One transaction per file: a file lands whole or not at all, and a file store writes full row groups once
    instead of logging every statement's rows to the WAL and checkpointing them again (one transaction for a whole
    run held every row of a 10M-line run in transaction-local storage: +1.2 GB per 3M rows). When the SQL fast
    path fails the transaction is aborted: it is rolled back and the file parsed again in Python."""
    fast_path_error: str | None = None  # set when the SQL failed: the next attempt parses in Python
    while True:
        pools.pending.clear()  # what an aborted attempt left is dropped
        store.execute("BEGIN TRANSACTION")
        try:
            t0 = time.perf_counter()
            fr = _ingest_file(path, options, store, pools, fast_path_error)
            fr.seconds = time.perf_counter() - t0
            store.execute(
                "INSERT INTO ingest_runs (run_id, started_at, file, format, confidence, layer, lines, hops, rejects, "
                "headers, blank, fast_rows, python_rows, leaks, reject_rate, seconds, hop_lines) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, started, fr.file, fr.format, fr.confidence, fr.layer, fr.lines, fr.hops,
                 fr.rejects, fr.headers, fr.blank, fr.fast_rows, fr.python_rows, fr.leaks, fr.reject_rate,
                 fr.seconds, fr.hop_lines])
            store.execute("COMMIT")
            return fr
        except _FastPathFailed as failed:
            store.con.execute("ROLLBACK")
            fastpath.restore_row_order(store.con)
            fast_path_error = failed.reason
        except BaseException:
            store.con.execute("ROLLBACK")
            fastpath.restore_row_order(store.con)
            raise


def _store_rejects(store: Store, ctx: HopContext, rejects: list[tuple[int, str]]) -> None:
    if rejects:
        store.append("rejects", pa.table({
            "source.file": pa.array([ctx.file] * len(rejects), pa.string()),
            "source.line": pa.array([n for n, _ in rejects], pa.int64()),
            "source.format": pa.array([ctx.format] * len(rejects), pa.string()),
            "reason": pa.array([r for _, r in rejects], pa.string()),
        }, schema=REJECT_SCHEMA))


def _store_leaks(store: Store, file: str, leaks: list[LeakRow]) -> None:
    if leaks:
        store.append("leaks", pa.table({
            "file": [file] * len(leaks), "line": [lk[0] for lk in leaks], "field": [lk[1] for lk in leaks],
            "kind": [lk[2] for lk in leaks], "fingerprint": [lk[3] for lk in leaks],
            "record": [lk[4] for lk in leaks]}, schema=LEAK_SCHEMA))


def decode_log_bytes(data: bytes) -> bytes:
    """A whole log file's bytes as text bytes: gunzipped when gzip, without a leading UTF-8 byte-order mark (for
    callers that hold the file in memory, as Spark's ``binaryFiles`` does; ingest streams with :class:`_Blocks`)."""
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise LogFormatError(f"gzip stream unreadable: {_safe_reason(str(exc) or type(exc).__name__)}") from exc
    return data[len(UTF8_BOM):] if data.startswith(UTF8_BOM) else data


class _Blocks:
    """A file's bytes as blocks of whole lines (at most about ``block_bytes`` each), gunzipped when the file is
    gzip (CDN and load-balancer logs are delivered so), without a leading UTF-8 byte-order mark. A stream that ends early (a truncated or corrupt gzip)
    stops the blocks after the lines read so far and leaves its reason in ``error``."""

    def __init__(self, path: Path, block_bytes: int) -> None:
        self.path = path
        self.block_bytes = block_bytes
        self.error: str | None = None
        self.compressed = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            raw = self.path.open("rb")
        except OSError as exc:
            raise UsageError(f"cannot read {self.path}: {exc.strerror}") from exc
        with raw:
            self.compressed = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb") if self.compressed else raw
            carry = b""
            first = True
            while True:
                try:
                    chunk = stream.read(self.block_bytes)
                except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                    self.error = f"gzip stream unreadable after {raw.tell():,} compressed bytes: " \
                                 f"{_safe_reason(str(exc) or type(exc).__name__)}"
                    break
                except OSError as exc:
                    raise UsageError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
                if not chunk:
                    break
                if first and chunk.startswith(UTF8_BOM):  # exports from Windows tools start with one
                    chunk = chunk[len(UTF8_BOM):]
                first = False
                data = carry + chunk if carry else chunk
                cut = data.rfind(b"\n") + 1
                carry = data[cut:]
                if cut:
                    yield data[:cut]
            if carry:
                yield carry


def _ingest_file(path: Path, options: IngestOptions, store: Store, pools: _PoolHolder,
                 fast_path_error: str | None) -> FileResult:
    file = str(path)
    blocks = _Blocks(path, options.block_bytes)
    stream = iter(blocks)
    head: list[bytes] = []  # the blocks that hold the lines detection reads
    for block in stream:
        head.append(block)
        if sum(map(len, head)) >= DETECT_BYTES or len(first_lines(b"".join(head))) >= DETECT_LINES:
            break
    first = b"".join(head)
    store.forget_file(file)
    fmt, fopts, conf = resolve_format(path, first, options)
    if fmt is None:
        fr = FileResult(file, None, conf, fopts.layer)
        ctx = HopContext(file, "unknown", fopts.layer or "", "")
        for block in itertools.chain(head, stream):
            _unknown_block(block, fr, ctx, store, options)
        fr.read_error = blocks.error
        return fr

    try:
        parser = fmt.make_parser(fopts)
    except Reject as exc:
        raise LogFormatError(f"{path}: {exc.reason}") from exc
    except (ValueError, KeyError) as exc:
        raise LogFormatError(f"{path}: invalid {fmt.name} format: {exc}") from exc
    layer = fopts.layer or fmt.layer
    ctx = HopContext(file, fmt.name, fmt.layer, fmt.product, layer_override=fopts.layer,
                     product_override=fopts.product)
    fr = FileResult(file, fmt.name, conf, layer, fast_path_error=fast_path_error)
    vector = None
    if options.engine == "auto" and not fmt.make_file_vector:
        vector = fmt.vector_for(fopts)
    declared = b""  # the header line in force (CloudFront's #Fields) at the start of the next block
    for block in itertools.chain(head, stream):
        if options.engine == "auto" and fmt.make_file_vector:
            vector = fmt.make_file_vector(fopts, declared + block)
        if fmt.header_prefix:
            declared = _last_line_starting(block, fmt.header_prefix) or declared
        _ingest_block(block, fr, fmt, fopts, ctx, parser, vector, store, options, pools)
    _collect_pending(store, pools)
    fr.read_error = blocks.error
    fr.hops = fr.fast_rows + fr.python_rows
    return fr


def _last_line_starting(block: bytes, prefix: bytes) -> bytes | None:
    """The last line of ``block`` that starts with ``prefix`` (with its EOL), or None."""
    at = block.rfind(b"\n" + prefix)
    start = at + 1 if at >= 0 else (0 if block.startswith(prefix) else -1)
    if start < 0:
        return None
    end = block.find(b"\n", start)
    return block[start:] + b"\n" if end < 0 else block[start:end + 1]


def _unknown_block(block: bytes, fr: FileResult, ctx: HopContext, store: Store, options: IngestOptions) -> None:
    """Lines of a file whose format is unknown: each rejected (and still scanned for secrets)."""
    tbl = fastpath.lines_table(block, fr.lines + 1)
    text = [ln.rstrip("\r\n") for ln in tbl.column("line").to_pylist()]
    unknown = [(fr.lines + i + 1, "blank" if not ln.strip() else "unknown format") for i, ln in enumerate(text)]
    found: list[LeakRow] = []
    for (n, _), ln in zip(unknown, text, strict=True):
        _line_leaks(n, ln, found, options.collect_leaks)
    _store_rejects(store, ctx, unknown)
    _store_leaks(store, ctx.file, found)
    fr.lines += len(unknown)
    fr.blank += sum(1 for _, r in unknown if r == "blank")
    fr.rejects += len(unknown)
    fr.leaks += len(found)


def _warm(_: int) -> int:
    return os.getpid()


def _worker_pool(options: IngestOptions) -> ProcessPoolExecutor:
    """The pool for the rows Python parses, its workers started at once."""
    workers = options.workers or os.cpu_count() or 1
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context())
    list(pool.map(_warm, range(workers)))
    return pool


def _pool_context() -> multiprocessing.context.BaseContext:
    """Workers forked from a clean server process, never from this one: by now this process runs DuckDB's,
    pyarrow's and the row-flag scan's threads, and a fork copies whatever locks they hold (a worker crashed once
    in the test suite); they do not inherit DuckDB's buffers either."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["apitrail.trace.ingest"])
    return ctx


def _ingest_block(block: bytes, fr: FileResult, fmt: LogFormat, fopts: FormatOptions, ctx: HopContext,
                  parser: LineParser, vector: Vector | None, store: Store,
                  options: IngestOptions, pools: _PoolHolder) -> None:
    """Parse one block of whole lines (numbered on from the lines already counted) into ``store``. Rows sent to
    the worker pool are collected after the next block's SQL (they run meanwhile) or at the end of the file."""
    lines_tbl = fastpath.lines_table(block, fr.lines + 1)
    fr.lines += lines_tbl.num_rows
    rejects: list[tuple[int, str]] = []
    leaks: list[LeakRow] = []
    fres = None
    if vector is not None and fr.fast_path_error is None:
        try:
            fres = fastpath.run(store.con, lines_tbl, vector, ctx)
        except fastpath.FastPathError as exc:  # the transaction is aborted: start over, this file in Python
            raise _FastPathFailed(_safe_reason(str(exc))) from exc
    if fres is not None:
        fr.fast_rows += fres.fast_rows
        fr.hop_lines += fres.fast_rows  # the fast path takes single-record lines only
        rejects.extend(fres.rejects)
        for n, line in fres.rejected_lines:  # rejected lines are still scanned for raw secrets
            _line_leaks(n, line, leaks, options.collect_leaks)
        numbered = fres.slow
    else:
        numbered = list(zip(lines_tbl.column("n").to_pylist(), lines_tbl.column("line").to_pylist(), strict=True))
    del lines_tbl
    _collect_pending(store, pools)  # the previous block's pool rows ran during this block's SQL
    _store_chunk(store, fr, ctx, ChunkResult(pa.table({}), rejects, leaks))
    kind = fmt.template_kind or (fmt.name if fopts.template else None)
    workers = options.workers or os.cpu_count() or 1
    if len(numbered) >= POOL_MIN_LINES and not fmt.stateful and workers > 1:
        if pools.pool is None:
            pools.pool = _worker_pool(options)
        size = max(500, min(CHUNK_LINES, -(-len(numbered) // (2 * workers))))
        pools.pending.extend((fr, ctx, pools.pool.submit(_chunk_worker, (fmt.name, fopts, ctx, numbered[i:i + size],
                                                                          options.collect_leaks, kind)))
                             for i in range(0, len(numbered), size))
    elif numbered:
        _store_chunk(store, fr, ctx, _parse_lines(fmt, fopts, ctx, numbered, parser, options.collect_leaks))


def _collect_pending(store: Store, pools: _PoolHolder) -> None:
    while pools.pending:
        fr, ctx, future = pools.pending.pop(0)
        _store_chunk(store, fr, ctx, future.result())


def _store_chunk(store: Store, fr: FileResult, ctx: HopContext, chunk: ChunkResult) -> None:
    """Store the rows, rejects and leaks of a parsed chunk and count them in ``fr``."""
    if chunk.hops.num_rows:
        store.append("hops", chunk.hops)
        fr.python_rows += chunk.hops.num_rows
    fr.hop_lines += chunk.hop_lines
    fr.headers += chunk.headers
    fr.blank += sum(1 for _, r in chunk.rejects if r == "blank")
    _store_rejects(store, ctx, sorted(chunk.rejects))
    _store_leaks(store, ctx.file, chunk.leaks)
    fr.rejects += len(chunk.rejects)
    fr.leaks += len(chunk.leaks)


def check_strict(result: IngestResult, options: IngestOptions) -> str | None:
    """The message for ``--strict`` when a file could not be read to its end, or when the reject rate (header and
    blank lines excluded) is over the limit."""
    unread = [f.file for f in result.files if f.read_error]
    if options.strict and unread:
        return f"{len(unread)} file(s) could not be read to the end: {', '.join(unread[:3])}"
    if options.strict and result.reject_rate > options.max_reject_rate:
        return (f"reject rate {result.reject_rate:.2%} is over --max-reject-rate {options.max_reject_rate:.2%}")
    return None


__all__ = [
    "FileResult",
    "IngestOptions",
    "IngestResult",
    "LogFormatSpec",
    "check_strict",
    "decode_log_bytes",
    "ingest_paths",
    "iter_files",
    "parse_format_name_option",
    "parse_layer_option",
    "parse_log_format_option",
    "replace",
]
