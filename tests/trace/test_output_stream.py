"""The trace output is streamed: records built batch by batch from the engine must equal the in-memory assembly
of whole result sets, the summary aggregated in SQL must equal a counter over the records, and every chunk
written passes the output guard before anything appears."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from apitrail.errors import SecretLeakError
from apitrail.output.guard import guard
from apitrail.trace.analyze_cli import ChunkGuard, GuardedOutput, to_parquet_rows, write_export, write_jsonl
from apitrail.trace.engines._pipeline import AnalysisResult, analyze, assemble, find_request, jsonl_line, summarize
from apitrail.trace.engines.duckdb import DuckDBRunner, load_hops

LAYERS = [("cdn", "cloudfront"), ("gateway", "kong"), ("proxy", "nginx"), ("mesh", "istio"), ("backend", "spring")]
STATUSES = [200, 200, 200, 401, 403, 404, 429, 502, 503, 0]


def many_groups(n: int = 400, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` requests of 1 to 5 hops over a few files: trace ids, some hops without a timestamp, failures with
    and without a vendor reason, and requests sharing a first-hop time (ordered by file, then line)."""
    rnd = random.Random(seed)
    hops: list[dict[str, Any]] = []
    lines: dict[str, int] = {}
    for i in range(n):
        tid = f"{rnd.getrandbits(128):032x}"
        depth = rnd.randint(1, 5)
        status = rnd.choice(STATUSES)
        second = i // 3  # three requests per second: equal first-hop times across files
        for j, (layer, product) in enumerate(LAYERS[5 - depth:]):
            file = f"{layer}-{i % 2}.log"
            lines[file] = lines.get(file, 0) + 1
            hop: dict[str, Any] = {
                "source.file": file, "source.line": lines[file], "hop.layer": layer, "hop.product": product,
                "trace.id": tid, "trace.source": "w3c", "http.request.method": rnd.choice(["GET", "POST"]),
                "url.path": f"/api/ö/{i % 17}", "http.response.status_code": status if j == depth - 1 else
                (status if status >= 400 and rnd.random() < 0.5 else 200),
            }
            if rnd.random() > 0.05:
                hop["timestamp"] = f"2026-03-02T09:{second // 60 % 60:02d}:{second % 60:02d}.{j * 7:03d}Z"
            if status >= 400 and j == depth - 1 and rnd.random() < 0.7:
                hop["failure.reason"] = rnd.choice(["UAEX", "ACCESS_DENIED", "no_healthy_upstream"])
                hop["failure.origin"] = "self"
            if rnd.random() < 0.2:
                hop["token.issuer"] = "https://issuer.example"
            hops.append(hop)
    return hops


class CountingRunner(DuckDBRunner):
    """Counts the rows the engine has handed over so far by ``stream``."""

    pulled = 0

    def stream(self, select_sql: str, batch_rows: int) -> Iterator[dict[str, list[Any]]]:
        for cols in super().stream(select_sql, batch_rows):
            self.pulled += len(next(iter(cols.values())))
            yield cols


@pytest.fixture(scope="module")
def analysed() -> Iterator[tuple[CountingRunner, AnalysisResult]]:
    con = duckdb.connect()
    load_hops(con, many_groups())
    run = CountingRunner(con)
    yield run, analyze(run)
    con.close()


def reference(run: DuckDBRunner) -> list[dict[str, Any]]:
    """The records as the whole-result assembly builds them (every hop row fetched at once)."""
    hop_rows = run.rows("SELECT g, depth, file, line, rec, layer, product, direction, status, ts, sig, hop_class, "
                        "hop_reason, hop_self, heur, method, path FROM t_hc")
    group_rows = run.rows("SELECT gr.g, gr.join_kind, gr.request_key, gc.class, gc.reason, gc.fail_depth, "
                          "gc.masked_by_depth, gc.accept_depth FROM t_group gr JOIN t_gc gc ON gr.g = gc.g")
    return assemble(hop_rows, group_rows, run.rows("SELECT g, spot FROM t_bs"))


def test_streamed_batches_equal_the_whole_assembly(analysed: tuple[CountingRunner, AnalysisResult]) -> None:
    run, res = analysed
    batches = list(res.iter_batches(batch_rows=16))
    streamed = [r for b in batches for r in b]
    ref = reference(run)
    assert len(streamed) == len(ref) == 400
    assert [jsonl_line(r) for r in streamed] == [jsonl_line(r) for r in ref]
    assert len(batches) > 40 and max(len(b) for b in batches) <= 16
    assert any(h.get("class") for r in streamed for h in r["hops"]) and any(r["blind_spots"] for r in streamed)


def test_streaming_does_not_fetch_everything_first(analysed: tuple[CountingRunner, AnalysisResult]) -> None:
    run, res = analysed
    hops = run.scalar("SELECT count(*) FROM t_hc")
    run.pulled = 0
    it = res.iter_batches(batch_rows=10)
    first = next(it)
    assert first and run.pulled <= 20 < hops  # one or two engine batches, not the whole result
    rest = [r for b in it for r in b]
    assert run.pulled == hops and len(first) + len(rest) == 400


def test_sql_summary_equals_a_counter_over_the_records(analysed: tuple[CountingRunner, AnalysisResult]) -> None:
    run, res = analysed
    records = reference(run)
    fresh = AnalysisResult(run, res.stats, res.blind)
    assert fresh.summary() == summarize(records, res.stats, res.blind)
    s = fresh.summary()
    assert s["requests"] == 400 and len(s["top_reasons"]) >= 3 and s["blind_spots"]


def test_find_equals_the_lookup_over_all_records(analysed: tuple[CountingRunner, AnalysisResult]) -> None:
    run, res = analysed
    records = reference(run)
    fresh = AnalysisResult(run, res.stats, res.blind)
    hop = records[5]["hops"][-1]["source"]
    keys = [records[0]["request_key"], records[9]["request_key"].upper(), records[3]["request_key"][:10],
            records[3]["request_key"][:1], f"{hop['file']}:{hop['line']}", "no-such-key", "gateway-1.log:3"]
    for key in keys:
        assert fresh.find(key) == find_request(records, key), key


def test_write_jsonl_and_exports_in_small_batches(analysed: tuple[CountingRunner, AnalysisResult],
                                                  tmp_path: Path) -> None:
    run, res = analysed
    records = reference(run)
    out = tmp_path / "requests.jsonl"
    assert write_jsonl(res, out, batch_rows=8) == 400
    assert out.read_text(encoding="utf-8") == "".join(jsonl_line(r) + "\n" for r in records)
    pq_out = tmp_path / "hops.parquet"
    n = write_export(res, "parquet", pq_out, batch_rows=8)
    assert pq.read_table(pq_out).to_pylist() == to_parquet_rows(records) and n == run.scalar("SELECT count(*) FROM t_hc")
    api = tmp_path / "api.jsonl"
    assert write_export(res, "ocsf-api", api, batch_rows=8) == 400
    assert [json.loads(x)["api"]["request"]["uid"] for x in api.read_text().splitlines()] == \
        [r["request_key"] for r in records]
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


SPLIT_TOKEN = "ordinary line\nAuthorization: Bearer\n\n  4f9c2d7e1a6b3c8d9e0f1a2b3c4d5e6f\nlast line\n"


def test_chunk_guard_sees_a_window_across_chunks() -> None:
    with pytest.raises(SecretLeakError):
        guard(SPLIT_TOKEN)
    cut = SPLIT_TOKEN.index("\n\n") + 2  # split after the blank line that follows "Bearer"
    first, second = SPLIT_TOKEN[:cut], SPLIT_TOKEN[cut:]
    assert first.endswith("\n\n") and "Bearer" not in second
    guard(first)
    guard(second)  # neither half alone is caught
    g = ChunkGuard("test")
    g.check(first)
    with pytest.raises(SecretLeakError):
        g.check(second)


def test_guarded_output_writes_nothing_when_a_later_chunk_fails(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with pytest.raises(SecretLeakError), GuardedOutput(out, "test") as w:
        w.write("{\"a\": 1}\n" * 1000)
        w.write("{\"token\": \"Bearer 4f9c2d7e1a6b3c8d9e0f1a2b3c4d5e6f\"}\n")
    assert not out.exists() and not list(tmp_path.iterdir())
    with GuardedOutput(out, "test") as w:
        w.write("one\n")
        w.write("two\n")
    assert out.read_text() == "one\ntwo\n" and [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
