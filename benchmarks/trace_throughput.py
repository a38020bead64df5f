"""Trace ingest throughput, on demand (not in CI).

    python benchmarks/trace_throughput.py --lines 1000000 [--formats nginx,cloudflare_http_requests] [--runs 3]

For each format it writes N synthetic lines (shapes from the fixtures, varied ids/paths/statuses, about 1% of
lines carrying a planted credential so the slow path is exercised), ingests the file into an in-memory store
through the normal registry path (``ingest_paths``) and reports the median lines/s of ``--runs`` runs, the median
time of a raw DuckDB read of the same file (``read_csv`` of lines for text, ``read_json`` for JSON) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from apitrail.trace.formats import get_format
from apitrail.trace.ingest import IngestOptions, ingest_paths
from apitrail.trace.store import Store

PATHS = ["/api/v1/orders", "/api/v1/orders/42", "/health", "/static/app.js", "/api/v1/users/7/profile", "/login"]
UAS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
       "curl/8.4.0", "okhttp/4.12.0", "python-requests/2.31.0"]
STATUSES = [200] * 20 + [201, 204, 301, 304, 400, 401, 403, 404, 429, 500, 502, 503, 504]


def _nginx(i: int, rnd: random.Random) -> str:
    path = rnd.choice(PATHS)
    if i % 100 == 0:
        path += "?access_token=opaque" + format(i, "x") + "abcdef"
    return (f'10.{i % 250}.{(i // 250) % 250}.{i % 7} - - [02/May/2024:09:{(i // 60) % 60:02d}:{i % 60:02d} +0000] '
            f'"{rnd.choice(["GET", "POST", "PUT"])} {path} HTTP/1.1" {rnd.choice(STATUSES)} {rnd.randint(0, 90000)} '
            f'"-" "{rnd.choice(UAS)}"')


def _cloudflare(i: int, rnd: random.Random) -> str:
    rec = {"RayID": format(rnd.getrandbits(64), "016x"), "EdgeStartTimestamp": f"2024-05-02T09:{(i // 60) % 60:02d}:{i % 60:02d}Z",
           "ClientIP": f"198.51.{i % 250}.{i % 200}", "ClientRequestHost": "api.example.com",
           "ClientRequestMethod": rnd.choice(["GET", "POST"]), "ClientRequestPath": rnd.choice(PATHS),
           "ClientRequestURI": rnd.choice(PATHS), "ClientRequestUserAgent": rnd.choice(UAS),
           "EdgeResponseStatus": rnd.choice(STATUSES), "OriginResponseStatus": 200, "OriginIP": "203.0.113.10",
           "ClientSSLProtocol": "TLSv1.3", "ClientMTLSAuthStatus": "unknown", "EdgeColoCode": "FRA",
           "CacheCacheStatus": "dynamic", "EdgeResponseBytes": rnd.randint(100, 90000), "Cookies": {},
           "RequestHeaders": {}}
    if i % 100 == 0:
        rec["RequestHeaders"] = {"authorization": "Bearer opaque" + format(i, "x") + "0123456789"}
    return json.dumps(rec, separators=(",", ":"))


def _backend(i: int, rnd: random.Random) -> str:
    rec = {"@timestamp": f"2024-05-02T09:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z", "log.level": "INFO",
           "message": "request completed", "service.name": "orders",
           "trace.id": format(rnd.getrandbits(128), "032x"), "span.id": format(rnd.getrandbits(64), "016x"),
           "http.request.method": rnd.choice(["GET", "POST"]), "url.path": rnd.choice(PATHS).split("?")[0],
           "http.response.status_code": rnd.choice(STATUSES)}
    return json.dumps(rec, separators=(",", ":"))


GENERATORS: dict[str, tuple[Callable[[int, random.Random], str], str]] = {
    "nginx": (_nginx, "text"),
    "cloudflare_http_requests": (_cloudflare, "json"),
    "backend_json": (_backend, "json"),
}


def generate(name: str, n: int, path: Path) -> None:
    gen, _ = GENERATORS[name]
    rnd = random.Random(42)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(gen(i, rnd))
            fh.write("\n")


def raw_read(path: Path, kind: str) -> float:
    con = duckdb.connect()
    t0 = time.perf_counter()
    if kind == "json":
        con.execute(f"SELECT count(*) FROM read_json('{path}', format='newline_delimited')").fetchone()
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_json('{path}', format='newline_delimited')")
    else:
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{path}', columns={{'line': 'VARCHAR'}}, "
                    "delim=chr(1), quote='', escape='', header=false)")
    dt = time.perf_counter() - t0
    con.close()
    return dt


def ours(path: Path, name: str) -> tuple[float, int, int, int]:
    store = Store()
    t0 = time.perf_counter()
    result = ingest_paths([path], IngestOptions(format_names=((path.name, name),)), store)
    dt = time.perf_counter() - t0
    fr = result.files[0]
    assert fr.reconciled, "line accounting broken"
    store.close()
    return dt, fr.hops, fr.fast_rows, fr.python_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--formats", default="nginx,cloudflare_http_requests,backend_json")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("APITRAIL_FP_KEY", "benchmark-key")
    print(f"cores: {os.cpu_count()}  lines per format: {args.lines:,}  runs: {args.runs} (medians)")
    print(f"{'format':28} {'lines/s':>12} {'raw read s':>11} {'ours s':>8} {'ratio':>6} {'fast':>9} {'python':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.formats.split(","):
            get_format(name)
            _, kind = GENERATORS[name]
            path = Path(tmp) / f"bench-{name}.{'jsonl' if kind == 'json' else 'log'}"
            generate(name, args.lines, path)
            times, raws = [], []
            fast = slow = 0
            for _ in range(args.runs):
                dt, hops, fast, slow = ours(path, name)
                times.append(dt)
                raws.append(raw_read(path, kind))
            t, r = statistics.median(times), statistics.median(raws)
            print(f"{name:28} {args.lines / t:12,.0f} {r:11.2f} {t:8.2f} {t / r:6.1f} {fast:9,} {slow:8,}")


if __name__ == "__main__":
    main()
