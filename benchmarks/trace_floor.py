"""What DuckDB itself needs for the unavoidable parts of trace ingest, measured against the throughput targets.

    python benchmarks/trace_floor.py [--lines 1000000] [--e2e-lines 10000000] [--runs 3] [--workdir DIR]

The targets of issues 4 and 6 are absolute (lines/s, hop records/s) or relative to a raw DuckDB line read. This
benchmark times, on the same generated files and in the same run, steps that any implementation keeping the
documented store and contracts has to perform, each done by DuckDB or pyarrow alone with no apitrail code:

JSON format (issue 4: >= 1M lines/s, ``trace_throughput.py``'s ``backend_json`` file, in-memory store as there):

* ``read_json``: DuckDB's own reader, the file into a table of its columns (the benchmark's "raw read");
* ``leak prefilter``: the secret-shape regex of ``apitrail.trace.secrets`` over every line (pyarrow, RE2; the
  leak detector must see every raw field);
* ``insert``: those rows, already parsed, into the store's ``hops`` table (every mapped column, plus the line as
  ``raw.unmapped``, which the contract keeps).

End to end (issue 6: >= 500k hop records/s, within 3x of a raw line read; ``trace_end_to_end.py``'s files,
store file as there):

* ``raw line read``: every line as one VARCHAR (the benchmark's denominator);
* ``store write``: every line, unparsed, written into ``hops`` of a store *file* as ``raw.unmapped`` with its
  ``source.file``; no parsing, no join, no other column.

Each floor is then compared with the time budget its target allows. Run on demand, never in CI.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import trace_end_to_end  # noqa: E402
import trace_throughput  # noqa: E402

from apitrail.trace.fastpath import lines_table  # noqa: E402
from apitrail.trace.secrets import PREFILTER  # noqa: E402
from apitrail.trace.store import Store  # noqa: E402

JSON_TARGET_LINES_S = 1_000_000
E2E_TARGET_HOPS_S = 500_000
E2E_TARGET_RATIO = 3.0


def _median(fn: Callable[[], float], runs: int) -> float:
    return statistics.median(fn() for _ in range(runs))


def json_floor(path: Path, runs: int) -> dict[str, float]:
    def read_json() -> float:
        con = duckdb.connect()
        t0 = time.perf_counter()
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_json('{path}', format='newline_delimited')")
        dt = time.perf_counter() - t0
        con.close()
        return dt

    def prefilter() -> float:
        lines = lines_table(path.read_bytes()).column("line")
        t0 = time.perf_counter()
        pc.match_substring_regex(lines, PREFILTER.removeprefix("(?i)"), ignore_case=True)
        return time.perf_counter() - t0

    def insert() -> float:
        store = Store()
        con = store.con
        con.execute(f"""CREATE TEMP TABLE parsed AS SELECT j.*, l.line FROM
            (SELECT row_number() OVER () AS n, * FROM read_json('{path}', format='newline_delimited')) j
            JOIN (SELECT row_number() OVER () AS n, line FROM {trace_end_to_end.lines_source([path])}) l USING (n)""")
        t0 = time.perf_counter()
        con.execute("""INSERT INTO hops ("timestamp", "http.request.method", "url.path",
                "http.response.status_code", "trace.id", "span.id", "hop.product", "hop.layer", "source.file",
                "source.line", "source.format", "raw.unmapped")
            SELECT "@timestamp"::TIMESTAMPTZ, "http.request.method", "url.path", "http.response.status_code",
                "trace.id", "span.id", "service.name", 'backend', 'bench.jsonl', n, 'backend_json', line
            FROM parsed""")
        dt = time.perf_counter() - t0
        store.close()
        return dt

    return {"read_json": _median(read_json, runs), "prefilter": _median(prefilter, runs),
            "insert": _median(insert, runs)}


def e2e_floor(files: list[Path], workdir: Path, runs: int) -> dict[str, float]:
    def raw() -> float:
        return trace_end_to_end.raw_read(files)

    def store_write() -> float:
        target = workdir / "floor.duckdb"
        target.unlink(missing_ok=True)
        store = Store(target)
        t0 = time.perf_counter()
        store.con.execute(f"""INSERT INTO hops ("source.file", "source.line", "raw.unmapped")
            SELECT filename, 0, line FROM {trace_end_to_end.lines_source(files, ", filename=true")}""")
        store.con.execute("CHECKPOINT")
        dt = time.perf_counter() - t0
        store.close()
        target.unlink(missing_ok=True)
        return dt

    return {"raw_line_read": _median(raw, runs), "store_write": _median(store_write, runs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="JSON lines (issue 4 floor)")
    ap.add_argument("--e2e-lines", type=int, default=10_000_000, help="mixed lines (issue 6 floor); 0 skips")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("APITRAIL_FP_KEY", "benchmark-key")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="apitrail-floor-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"cores: {os.cpu_count()}  runs: {args.runs} (medians)  duckdb {duckdb.__version__}  pyarrow {pa.__version__}")

    path = workdir / "backend.jsonl"
    if not path.exists():
        trace_throughput.generate("backend_json", args.lines, path)
    j = json_floor(path, args.runs)
    budget = args.lines / JSON_TARGET_LINES_S
    floor = j["read_json"] + j["prefilter"] + j["insert"]
    print(f"\nJSON, {args.lines:,} backend_json lines; budget at {JSON_TARGET_LINES_S:,} lines/s: {budget:.2f} s")
    for k, v in j.items():
        print(f"  {k:14} {v:7.2f} s")
    print(f"  {'floor (sum)':14} {floor:7.2f} s  = {args.lines / floor:,.0f} lines/s at best, "
          f"{floor / budget:.2f}x the budget")

    if args.e2e_lines:
        e2e_dir = workdir / f"e2e-{args.e2e_lines}"
        if not e2e_dir.exists():
            e2e_dir.mkdir()
            trace_end_to_end.generate(e2e_dir, args.e2e_lines)
        files = sorted(p for p in e2e_dir.iterdir() if p.suffix in (".log", ".jsonl"))
        e = e2e_floor(files, workdir, args.runs)
        budget_rate = args.e2e_lines / E2E_TARGET_HOPS_S
        budget_ratio = E2E_TARGET_RATIO * e["raw_line_read"]
        print(f"\nEnd to end, {args.e2e_lines:,} mixed lines in {len(files)} files")
        print(f"  {'raw line read':14} {e['raw_line_read']:7.2f} s")
        print(f"  {'store write':14} {e['store_write']:7.2f} s  = {args.e2e_lines / e['store_write']:,.0f} "
              f"rows/s at best, {e['store_write'] / e['raw_line_read']:.1f}x the raw read")
        print(f"  budget at {E2E_TARGET_HOPS_S:,} hops/s: {budget_rate:.2f} s; budget at "
              f"{E2E_TARGET_RATIO:g}x raw read: {budget_ratio:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
