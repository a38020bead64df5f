"""End-to-end trace benchmark: generate mixed-format multi-hop logs, ingest, correlate, classify, find blind spots.

    python benchmarks/trace_end_to_end.py --lines 1000000 [--lines 2000000 ...] [--workdir DIR] [--keep]

Three request shapes are mixed (the vendors' documented formats, as in tests/fixtures/trace/scenarios):

* CloudFront (standard log) -> NGINX (log_format) -> Kong (log serializer JSON) -> Spring backend (logstash JSON)
* Cloudflare (Logpush JSON) -> Envoy ingress gateway (format string) -> Istio sidecar (default TEXT) -> OTel Python
* AWS API Gateway ($context JSON) -> ECS backend JSON

Reported per size: hop records/s end to end (generation excluded), the split between ingest and analysis, the
ratio to a raw DuckDB read of the same files (every line as one VARCHAR), and the peak RSS of this process and its
worker processes. Run on demand, never in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "trace" / "scenarios"))

from _render import CLOUDFRONT_HEADER, GATEWAY_ENVOY_FORMAT, NGINX_LOG_FORMAT  # noqa: E402

BASE = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
MASK = (1 << 128) - 1


def _hex(i: int, salt: int, n: int = 32) -> str:
    """An id for request ``i`` and id kind ``salt`` (< 256): (i, salt) is packed before the odd multiplier, so ids of
    different kinds or requests never collide (an earlier form, (i+1)*(2*salt+1), merged unrelated requests)."""
    return format((((i + 1) << 8 | salt) * 0x9E3779B97F4A7C15F39CC0605CEDC835) & MASK, "032x")[:n]


def generate(directory: Path, n_lines: int) -> dict[str, int]:
    """Write about ``n_lines`` hop lines; returns lines per file."""
    files = {name: open(directory / name, "w", buffering=1 << 20) for name in (  # noqa: SIM115
        "cloudfront.log", "nginx.log", "kong.jsonl", "spring.jsonl", "cloudflare.jsonl", "gateway.log",
        "sidecar.log", "otelpy.jsonl", "apigw.jsonl", "ecs.jsonl")}
    files["cloudfront.log"].write(CLOUDFRONT_HEADER)
    counts = dict.fromkeys(files, 0)
    i = 0
    total = 0
    while total < n_lines:
        t = BASE + timedelta(milliseconds=i)
        trace = _hex(i, 1)
        shape = i % 10
        status = 401 if i % 37 == 0 else (503 if i % 53 == 0 else 200)
        d, tm = t.strftime("%Y-%m-%d"), t.strftime("%H:%M:%S")
        iso = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
        client = f"198.51.{(i >> 8) & 255}.{i & 255}"
        if shape < 5:
            edge = _hex(i, 2, 52) + "=="
            rid = _hex(i, 3)
            res = "Miss" if status == 200 else "Error"
            files["cloudfront.log"].write(
                f"{d}\t{tm}\tFRA56-P1\t512\t{client}\tGET\td111111abcdef8.cloudfront.net\t/api/orders/{i % 1000}\t"
                f"{status}\t-\tMozilla/5.0\t-\t-\t{res}\t{edge}\tapi.example.com\thttps\t310\t0.050\t-\tTLSv1.3\t"
                f"TLS_AES_128_GCM_SHA256\t{res}\tHTTP/2.0\t-\t-\t50312\t0.050\t{res}\tapplication/json\t97\t-\t-\n")
            clf = t.strftime("%d/%b/%Y:%H:%M:%S +0000")
            files["nginx.log"].write(
                f'130.176.12.7 - - [{clf}] "GET /api/orders/{i % 1000} HTTP/1.1" {status} 97 "-" "Mozilla/5.0" '
                f'"{client}" {rid} "00-{trace}-{_hex(i, 4, 16)}-01" "{edge}" "10.0.1.5:8000" "{status}" 0.040\n')
            source = "kong" if status == 401 else "upstream"
            files["kong.jsonl"].write(json.dumps({
                "request": {"id": _hex(i, 5), "method": "GET", "uri": f"/api/orders/{i % 1000}", "size": 212,
                            "headers": {"host": "api.internal", "x-request-id": rid,
                                        "traceparent": f"00-{trace}-{_hex(i, 4, 16)}-01"}},
                "response": {"status": status, "size": 410}, "client_ip": "10.0.0.5",
                "started_at": int(t.timestamp() * 1000), "source": source,
                "latencies": {"request": 31, "kong": 4, "proxy": 27}}) + "\n")
            counts["cloudfront.log"] += 1
            counts["nginx.log"] += 1
            counts["kong.jsonl"] += 1
            total += 3
            if status != 401:
                files["spring.jsonl"].write(
                    f'{{"@timestamp":"{iso}","@version":"1","message":"GET {status}","logger_name":"access",'
                    f'"level":"INFO","traceId":"{trace}","spanId":"{_hex(i, 6, 16)}","method":"GET",'
                    f'"path":"/api/orders/{i % 1000}","status":{status},"request_id":"{rid}"}}\n')
                counts["spring.jsonl"] += 1
                total += 1
        elif shape < 8:
            ray = _hex(i, 7, 16)
            xrid = _hex(i, 8)
            files["cloudflare.jsonl"].write(
                f'{{"RayID":"{ray}","EdgeStartTimestamp":"{iso}","ClientIP":"{client}",'
                f'"ClientRequestHost":"api.example.com","ClientRequestMethod":"POST","ClientRequestPath":"/api/pay",'
                f'"EdgeResponseStatus":{status},"OriginResponseStatus":{status},"SecurityAction":"",'
                f'"RequestHeaders":{{"traceparent":"00-{trace}-{_hex(i, 9, 16)}-01"}}}}\n')
            rcd = "jwt_authn_access_denied{Jwt_is_expired}" if status == 401 else "via_upstream"
            up = "-" if status == 401 else "10.44.1.27:8080"
            files["gateway.log"].write(
                f'[{iso}] "POST /api/pay HTTP/1.1" {status} - {rcd} - "-" 0 97 9 7 "{client}" "Mozilla/5.0" '
                f'"{xrid}" "api.example.com" "{up}" outbound|8080||pay.shop.svc.cluster.local - 10.40.0.29:8443 '
                f'172.70.1.9:40001 api.example.com pay-route "00-{trace}-{_hex(i, 9, 16)}-01" "{ray}-FRA" '
                f'"https://idp.example.com/"\n')
            counts["cloudflare.jsonl"] += 1
            counts["gateway.log"] += 1
            total += 2
            if status != 401:
                files["sidecar.log"].write(
                    f'[{iso}] "POST /api/pay HTTP/1.1" {status} - via_upstream - "-" 0 97 4 3 "{client}" '
                    f'"Mozilla/5.0" "{xrid}" "pay.shop:8080" "127.0.0.6:8080" inbound|8080|| - 10.44.1.27:8080 '
                    f'10.40.0.29:50001 outbound_.8080_._.pay.shop.svc.cluster.local default\n')
                files["otelpy.jsonl"].write(
                    f'{{"timestamp":"{iso}","levelname":"INFO","name":"uvicorn.access","message":"POST {status}",'
                    f'"otelTraceID":"{trace}","otelSpanID":"{_hex(i, 10, 16)}","otelServiceName":"pay",'
                    f'"method":"POST","path":"/api/pay","status":{status},"request_id":"{xrid}"}}\n')
                counts["sidecar.log"] += 1
                counts["otelpy.jsonl"] += 1
                total += 2
        else:
            epoch = f"{int(t.timestamp()):08x}"
            tail = _hex(i, 11, 24)
            req = _hex(i, 12)
            rtype = "UNAUTHORIZED" if status == 401 else "-"
            files["apigw.jsonl"].write(
                f'{{"requestId":"{req}","ip":"{client}","requestTime":"{t.strftime("%d/%b/%Y:%H:%M:%S +0000")}",'
                f'"httpMethod":"GET","resourcePath":"/orders/{{id}}","path":"/orders/{i % 1000}","status":"{status}",'
                f'"protocol":"HTTP/1.1","responseLength":"97","xrayTraceId":"1-{epoch}-{tail}",'
                f'"responseType":"{rtype}","integrationStatus":"{status if status != 401 else "-"}"}}\n')
            counts["apigw.jsonl"] += 1
            total += 1
            if status != 401:
                files["ecs.jsonl"].write(
                    f'{{"@timestamp":"{iso}","log.level":"info","message":"GET {status}","ecs.version":"1.6.0",'
                    f'"service.name":"orders","http.request.method":"GET","url.path":"/orders/{i % 1000}",'
                    f'"http.response.status_code":{status},"trace.id":"{epoch}{tail}","http.request.id":"{req}"}}\n')
                counts["ecs.jsonl"] += 1
                total += 1
        i += 1
    for fh in files.values():
        fh.close()
    (directory / "nginx.conf").write_text(NGINX_LOG_FORMAT)
    (directory / "gateway.format").write_text(GATEWAY_ENVOY_FORMAT)
    return counts


def lines_source(files: list[Path], extra: str = "") -> str:
    """DuckDB's reader of every line of ``files`` as one VARCHAR (``extra``: more read_csv options)."""
    lst = ", ".join(f"'{p}'" for p in files)
    return (f"read_csv([{lst}], columns={{'line': 'VARCHAR'}}, delim=chr(1), quote='', escape='', "
            f"header=false{extra})")


def raw_read(files: list[Path]) -> float:
    con = duckdb.connect()
    t0 = time.perf_counter()
    con.execute(f"CREATE TABLE t AS SELECT * FROM {lines_source(files)}")
    dt = time.perf_counter() - t0
    con.close()
    return dt


class DescendantRSS:
    """Peak summed RSS of this process's descendants, sampled from /proc every 0.2 s. The slow-row workers are
    children of a forkserver, not of this process, so ``RUSAGE_CHILDREN`` never sees them."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DescendantRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_kb = max(self.peak_kb, self._sample())

    @staticmethod
    def _sample() -> int:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        me, total = os.getpid(), 0
        for pid in rss:
            p = parents.get(pid)
            while p is not None and p not in (0, 1, me):
                p = parents.get(p)
            if p == me:
                total += rss[pid]
        return total


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_once(n_lines: int, workdir: Path, keep: bool) -> dict[str, float]:
    from apitrail.trace.analyze_cli import _ingest_options
    from apitrail.trace.blindspots import find_blind_spots
    from apitrail.trace.classify import classify, hop_columns, raw_extract_sql
    from apitrail.trace.correlate import correlate
    from apitrail.trace.engines.duckdb import DuckDBRunner
    from apitrail.trace.ingest import ingest_paths
    from apitrail.trace.store import Store

    d = workdir / f"e2e-{n_lines}"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    t0 = time.perf_counter()
    counts = generate(d, n_lines)
    gen_s = time.perf_counter() - t0
    logs = sorted(d / f for f in counts)
    opts = _ingest_options([f"nginx.log=nginx:@{d}/nginx.conf", f"gateway.log=envoy:@{d}/gateway.format"],
                           ["gateway.log=gateway"],
                           ["spring.jsonl=backend_json", "otelpy.jsonl=backend_json", "ecs.jsonl=backend_json"])
    store = Store(d / "trace.duckdb")
    t0 = time.perf_counter()
    with DescendantRSS() as workers_rss:
        result = ingest_paths([str(p) for p in logs], opts, store)
    ingest_s = time.perf_counter() - t0
    hops = int(store.execute("SELECT count(*) FROM hops").fetchone()[0])  # type: ignore[index]
    run = DuckDBRunner(store.con)
    t0 = time.perf_counter()
    stats = correlate(run, "hops", extra=hop_columns(run.dialect), pre_source=raw_extract_sql(run.dialect))
    corr_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    classify(run)
    cls_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    find_blind_spots(run)
    bs_s = time.perf_counter() - t0
    classes = dict(store.execute("SELECT class, count(*) FROM t_gc GROUP BY class ORDER BY 2 DESC").fetchall())
    store.close()
    me, kids = peak_rss_mb(), workers_rss.peak_kb / 1024  # before the raw read (it loads every line into memory)
    raw_s = min(raw_read(logs) for _ in range(2))
    total_s = ingest_s + corr_s + cls_s + bs_s
    out = {
        "lines": sum(counts.values()), "hops": hops, "rejects": result.total("rejects") - len(counts) * 0,
        "requests": stats.groups, "iterations": stats.iterations, "generate_s": round(gen_s, 1),
        "ingest_s": round(ingest_s, 2), "correlate_s": round(corr_s, 2), "classify_s": round(cls_s, 2),
        "blind_spots_s": round(bs_s, 2), "total_s": round(total_s, 2),
        "hops_per_s": round(hops / total_s), "analysis_hops_per_s": round(hops / (corr_s + cls_s + bs_s)),
        "raw_read_s": round(raw_s, 2), "ratio_to_raw": round(total_s / raw_s, 1),
        "peak_rss_mb": round(me), "peak_rss_workers_mb": round(kids), "classes": classes,
    }
    if not keep:
        shutil.rmtree(d)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, action="append", help="lines to generate (repeatable); default 1M")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory_limit for the store (e.g. 1GB)")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="apitrail-e2e-"))
    if args.memory_limit:
        os.environ["APITRAIL_MEMORY_LIMIT"] = args.memory_limit
    print(f"cores: {os.cpu_count()}  workdir: {workdir}", flush=True)
    for n in args.lines or [1_000_000]:
        print(json.dumps(run_once(n, workdir, args.keep)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
