"""Lines that hold several records (an OTLP/JSON export batch, an Event Hubs ``{"records": [...]}`` wrapper): one hop
per record with the line's ``source.line`` and its ``source.record``, lines still reconcile, a secret in a later
record is reported on that record and redacted, and the hops join other layers' hops like any other hop.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest
from _trace_helpers import FIXTURES, ingest_case
from typer.testing import CliRunner

from apitrail.cli import app
from apitrail.trace.engines._pipeline import find_request, hop_ref
from apitrail.trace.ingest import IngestOptions, ingest_paths
from apitrail.trace.secrets import fingerprint
from apitrail.trace.store import Store

ROOT = Path(__file__).resolve().parents[2]
# built at test time, so no token-shaped string sits in the file (as in test_leaks.py)
JWT2 = ".".join(base64.urlsafe_b64encode(p.encode()).rstrip(b"=").decode()
                for p in ('{"alg":"RS256"}', '{"sub":"planted-mr","aud":"api"}')) + ".YmF6cXV4Zm9vYmFyMg"
APIM_KEY = "0123456789abcdef0123456789abcd77"


def _scorer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("score_trace_mr", ROOT / "benchmarks" / "score_trace.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


A = "4bf92f3577b34da6a3ce929d0e0e4736"
B = "5bf92f3577b34da6a3ce929d0e0e4737"


def _attr(k: str, v: Any) -> dict[str, Any]:
    return {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}


def _lr(ts: int, tid: str | None, method: str, path: str, status: int, *extra: dict[str, Any]) -> dict[str, Any]:
    rec: dict[str, Any] = {"timeUnixNano": str(ts), "body": {"stringValue": f"{method} {path} {status}"},
                           "attributes": [_attr("http.request.method", method), _attr("url.path", path),
                                          _attr("http.response.status_code", status), *extra]}
    if tid:
        rec.update(traceId=tid, spanId=tid[:16], flags=1)
    return rec


def _export(*records: dict[str, Any], service: str = "orders") -> str:
    return json.dumps({"resourceLogs": [{"resource": {"attributes": [_attr("service.name", service)]},
                                         "scopeLogs": [{"scope": {"name": "access"}, "logRecords": list(records)}]}]})


def _kong(i: int, tid: str, status: int, path: str) -> str:
    return json.dumps({"request": {"method": "GET", "uri": path, "url": "http://gw" + path,
                                   "headers": {"host": "gw", "traceparent": f"00-{tid}-00f067aa0ba902b{i}-01"}},
                       "response": {"status": status, "headers": {}}, "client_ip": "10.0.0.1",
                       "started_at": 1714641181000 + i * 1000, "latencies": {"request": 5}})


@pytest.fixture()
def layered(tmp_path: Path) -> Path:
    """A Kong gateway in front of a service that exports its access records as OTLP/JSON batches: the two requests
    of the gateway meet records 1 and 2 of the same export line; record 3 is a log record of no request."""
    (tmp_path / "kong.jsonl").write_text(_kong(1, A, 200, "/orders/1") + "\n" + _kong(2, B, 502, "/orders") + "\n")
    (tmp_path / "otel.jsonl").write_text(_export(
        _lr(1714641182001000000, A, "GET", "/orders/1", 200),
        _lr(1714641183001000000, B, "GET", "/orders", 502),
        {"timeUnixNano": "1714641183500000000", "body": {"stringValue": "background job done"}}) + "\n")
    return tmp_path


# ------------------------------------------------------------------------------------------------ accounting


@pytest.mark.parametrize(("case", "lines", "hop_lines", "hops"), [
    (FIXTURES / "otel_logs" / "otlp-batches.jsonl", 6, 3, 6),
    (FIXTURES / "azure_apim" / "eventhubs-batches.jsonl", 5, 4, 7),
])
@pytest.mark.parametrize("engine", ["auto", "python"])
def test_every_line_counted_once_and_hops_separately(case: Path, lines: int, hop_lines: int, hops: int,
                                                     engine: str) -> None:
    result, store = ingest_case(case, engine)
    fr = result.files[0]
    assert (fr.lines, fr.hop_lines, fr.hops) == (lines, hop_lines, hops)
    assert fr.lines == fr.hop_lines + fr.rejects and fr.reconciled and result.reconciled
    assert store.execute("SELECT count(*) FROM hops").fetchone()[0] == fr.hops
    assert store.execute('SELECT count(DISTINCT "source.line") FROM hops').fetchone()[0] == fr.hop_lines
    assert store.execute("SELECT lines, hop_lines, hops, rejects FROM ingest_runs").fetchall() == \
        [(fr.lines, fr.hop_lines, fr.hops, fr.rejects)]
    # no line is both hops and a reject; (file, line, record) is a key
    both = store.execute('SELECT count(*) FROM rejects r JOIN hops h ON r."source.line" = h."source.line"').fetchone()
    assert both[0] == 0
    dup = store.execute('SELECT count(*) FROM (SELECT 1 FROM hops GROUP BY "source.file", "source.line", '
                        '"source.record" HAVING count(*) > 1) x').fetchone()
    assert dup[0] == 0


def test_otlp_records_carry_their_resource() -> None:
    _, store = ingest_case(FIXTURES / "otel_logs" / "otlp-batches.jsonl")
    rows = store.execute('SELECT "source.line", "source.record", "hop.product", "hop.instance", "url.path" FROM hops '
                         'ORDER BY 1, 2').fetchall()
    assert rows[:4] == [(1, 1, "orders-api", "orders-1", "/orders/1"), (1, 2, "orders-api", "orders-1", "/orders"),
                        (1, 3, "items-api", "items-2", "/items/8"), (1, 4, "items-api", "items-2", None)]
    assert rows[4:] == [(2, 1, "orders-api", "orders-1", "/orders/2"), (3, 1, "orders-api", "orders-1", "/health")]


def test_single_record_lines_are_record_1_on_both_paths(tmp_path: Path) -> None:
    """The SQL fast path sets source.record to the 1 the Python path gives a single-record line."""
    case = FIXTURES / "azure_apim" / "gatewaylogs.jsonl"
    for engine in ("auto", "python"):
        result, store = ingest_case(case, engine)
        if engine == "auto":
            assert result.files[0].fast_rows > 0
        assert store.execute('SELECT DISTINCT "source.record" FROM hops').fetchall() == [(1,)]


def test_cli_summary_reports_hop_lines_and_hops(layered: Path) -> None:
    res = CliRunner().invoke(app, ["trace", "ingest", str(layered)])
    assert res.exit_code == 0, res.output
    assert "hop lines" in res.output and "lines = hop lines + rejects: reconciled" in res.output
    assert "2 more hops than hop lines" in res.output


def test_store_written_before_source_record_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    store = Store(db)
    store.close()
    con = duckdb.connect(str(db))
    for table, col in (("hops", '"source.record"'), ("leaks", "record"), ("ingest_runs", "hop_lines")):
        con.execute(f"ALTER TABLE {table} DROP COLUMN {col}")
    con.execute('INSERT INTO hops ("source.file", "source.line") VALUES (\'old.log\', 7)')
    con.execute("INSERT INTO ingest_runs (file, lines, hops, rejects) VALUES ('old.log', 1, 1, 0)")
    con.close()
    store = Store(db)
    try:
        assert store.execute('SELECT "source.record" FROM hops').fetchall() == [(1,)]
        assert store.execute("SELECT hop_lines FROM ingest_runs").fetchall() == [(1,)]
        result = ingest_paths([FIXTURES / "otel_logs" / "otlp-batches.jsonl"], IngestOptions(), store)
        assert result.reconciled
        assert store.execute('SELECT max("source.record") FROM hops').fetchone() == (4,)
    finally:
        store.close()


# ------------------------------------------------------------------------------------------------ secrets


def test_secret_in_second_record_is_found_and_redacted(tmp_path: Path) -> None:
    (tmp_path / "otel.jsonl").write_text(_export(
        _lr(1714641182001000000, A, "GET", "/orders/1", 200),
        _lr(1714641183001000000, B, "GET", "/orders", 401,
            _attr("http.request.header.authorization", "Bearer " + JWT2))) + "\n")
    apim = {"records": [
        {"time": "2024-05-02T09:12:40Z", "category": "GatewayLogs", "correlationId": "c-1",
         "properties": {"method": "GET", "url": "https://apim/orders/1", "responseCode": 200}},
        {"time": "2024-05-02T09:12:41Z", "category": "GatewayLogs", "correlationId": "c-2",
         "properties": {"method": "GET", "url": "https://apim/orders/2", "responseCode": 200,
                        "requestHeaders": {"Ocp-Apim-Subscription-Key": APIM_KEY}}}]}
    (tmp_path / "apim.jsonl").write_text(json.dumps(apim) + "\n")
    out = tmp_path / "leaks.jsonl"
    res = CliRunner().invoke(app, ["trace", "leaks", str(tmp_path / "otel.jsonl"), str(tmp_path / "apim.jsonl"),
                                   "--format", "jsonl", "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert JWT2 not in text + res.output and APIM_KEY not in text + res.output
    leaks = [json.loads(line) for line in text.splitlines()]
    jwt = [lk for lk in leaks if lk["fingerprint"] == fingerprint(JWT2)]
    key = [lk for lk in leaks if lk["fingerprint"] == fingerprint(APIM_KEY)]
    assert jwt and all(lk["line"] == 1 and lk["record"] == 2 and lk["file"].endswith("otel.jsonl") for lk in jwt)
    assert key and all(lk["line"] == 1 and lk["record"] == 2 and lk["file"].endswith("apim.jsonl") for lk in key)
    # the hops: the secret is fingerprinted on record 2, and its bytes are in no table
    store = Store()
    try:
        ingest_paths([tmp_path / "otel.jsonl", tmp_path / "apim.jsonl"], IngestOptions(), store)
        for table in ("hops", "rejects", "leaks", "ingest_runs"):
            dumped = json.dumps(store.con.sql(f"SELECT * FROM {table}").to_arrow_table().to_pylist(), default=str)
            assert JWT2 not in dumped and APIM_KEY not in dumped, table
        rows = store.execute('SELECT "source.file", "source.record", "token.fingerprint" FROM hops '
                             'ORDER BY 1, 2').fetchall()
        fps = {(Path(f).name, r): fp for f, r, fp in rows}
        assert fps[("otel.jsonl", 2)] == fingerprint(JWT2) and fps[("otel.jsonl", 1)] is None
        assert fps[("apim.jsonl", 2)] == fingerprint(APIM_KEY) and fps[("apim.jsonl", 1)] is None
    finally:
        store.close()


# ------------------------------------------------------------------------------------------------ correlation


def _run(paths: list[Path]) -> list[dict[str, Any]]:
    from apitrail.trace.analyze_cli import analyze_paths

    records, _ = analyze_paths([str(p) for p in paths])
    return records


def test_records_of_one_line_join_different_requests(layered: Path) -> None:
    records = _run([layered / "kong.jsonl", layered / "otel.jsonl"])
    by_key = {r["request_key"]: r for r in records}
    a, b = by_key[A], by_key[B]
    assert a["join"] == b["join"] == "trace_id"
    assert [(Path(h["source"]["file"]).name, h["source"]["line"], h["source"].get("record")) for h in a["hops"]] == \
        [("kong.jsonl", 1, None), ("otel.jsonl", 1, None)]  # record 1: no "record" member
    assert [(Path(h["source"]["file"]).name, h["source"]["line"], h["source"].get("record")) for h in b["hops"]] == \
        [("kong.jsonl", 2, None), ("otel.jsonl", 1, 2)]
    assert b["failure"]["hop"]["record"] == 2 and b["failure"]["layer"] == "backend"
    assert any(e.endswith("otel.jsonl:1#2") for e in b["failure"]["evidence"])
    lone = [r for r in records if r["request_key"].startswith("hop:")]
    assert len(lone) == 1 and lone[0]["request_key"].endswith("otel.jsonl:1#3")
    assert len(records) == 3


def test_explain_by_file_line_record(layered: Path) -> None:
    records = _run([layered / "kong.jsonl", layered / "otel.jsonl"])
    assert find_request(records, "otel.jsonl:1#2")["request_key"] == B  # type: ignore[index]
    assert find_request(records, "otel.jsonl:1")["request_key"] == A  # type: ignore[index]
    res = CliRunner().invoke(app, ["trace", "explain", "otel.jsonl:1#2", str(layered / "kong.jsonl"),
                                   str(layered / "otel.jsonl")])
    assert res.exit_code == 0, res.output
    assert B in res.output and "otel.jsonl:1#2" in res.output


def test_hop_refs_for_the_scorer() -> None:
    score_trace = _scorer()
    assert hop_ref({"file": "f", "line": 3}) == "f:3" == score_trace.hop_ref({"file": "f", "line": 3})
    assert hop_ref({"file": "f", "line": 3, "record": 2}) == "f:3#2" == score_trace.hop_ref(
        {"file": "f", "line": 3, "record": 2})
    assert score_trace.norm_ref("f:3#1") == "f:3" and score_trace.norm_ref("f:3#2") == "f:3#2"
    truth = {"requests": [{"id": "x", "class": "dependency", "join": "trace_id",
                           "failing": {"hop": "otel.jsonl:1#2", "layer": "backend"},
                           "hops": ["kong.jsonl:2", "otel.jsonl:1#2"], "blind_spots": []}]}
    group = {"request_key": B, "join": "trace_id", "blind_spots": [],
             "hops": [{"source": {"file": "kong.jsonl", "line": 2}},
                      {"source": {"file": "otel.jsonl", "line": 1, "record": 2}}],
             "failure": {"class": "dependency", "hop": {"file": "otel.jsonl", "line": 1, "record": 2}}}
    score = score_trace.score_records(truth, [group])
    assert (score.class_ok, score.hop_ok, score.join_ok) == (1, 1, 1), score.misses
