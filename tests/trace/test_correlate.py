"""Correlation on hop rows written straight into a DuckDB ``hops`` table (no parser involved).

Each case is (hops, expected groups as sets of hop indexes, expected join label per group). Groups are read back
through the trace output contract: ``source.line`` carries the index of the hop in the case.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from apitrail.trace.correlate import CorrelateOptions
from apitrail.trace.engines._pipeline import AnalyzeOptions
from apitrail.trace.engines.duckdb import analyze_connection, load_hops

T1 = "4bf92f3577b34da6a3ce929d0e0e4736"
T2 = "0af7651916cd43dd8448eb211c80319c"
RID = "84961386-6d84-929d-98bd-c5aee93b5c88"


def hop(layer: str, t: float, **kw: Any) -> dict[str, Any]:
    base = {"hop.layer": layer, "hop.product": kw.pop("product", layer), "timestamp": f"2026-03-02T09:00:{t:06.3f}Z",
            "http.request.method": kw.pop("method", "GET"), "url.path": kw.pop("path", "/api/orders"),
            "http.response.status_code": kw.pop("status", 200)}
    base.update({k.replace("_", ".") if k in ("trace_id",) else k: v for k, v in kw.items()})
    return base


def run(hops: list[dict[str, Any]], **opts: Any) -> list[dict[str, Any]]:
    for i, h in enumerate(hops):
        h["source.file"] = "case.log"
        h["source.line"] = i
    con = duckdb.connect()
    load_hops(con, hops)
    return analyze_connection(con, options=AnalyzeOptions(correlate=CorrelateOptions(**opts))).requests


def groups(records: list[dict[str, Any]]) -> dict[frozenset[int], str]:
    return {frozenset(h["source"]["line"] for h in r["hops"]): r["join"] for r in records}


CASES: list[tuple[str, list[dict[str, Any]], dict[frozenset[int], str]]] = [
    ("one trace id across three layers",
     [hop("proxy", 1, **{"trace.id": T1}), hop("gateway", 1.01, **{"trace.id": T1}),
      hop("backend", 1.02, **{"trace.id": T1})],
     {frozenset({0, 1, 2}): "trace_id"}),
    ("placeholder keys are split off, never joined",
     [hop("backend", 1, **{"trace.id": "00000000000000000000000000000000", "http.request.id": "-"}),
      hop("backend", 2, **{"trace.id": "0", "http.request.id": "0"}),
      hop("backend", 3, **{"http.request.id": "null"})],
     {frozenset({0}): "none", frozenset({1}): "none", frozenset({2}): "none"}),
    ("CloudFront edge id meets the origin's X-Amz-Cf-Id, origin joins the gateway by trace id",
     [hop("cdn", 1, product="cloudfront", **{"edge.request_id": "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ=="}),
      hop("proxy", 1.1, **{"edge.request_id": "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
                            "trace.id": T1}),
      hop("gateway", 1.2, **{"trace.id": T1})],
     {frozenset({0, 1, 2}): "request_id"}),
    ("Cf-Ray <RayID>-<colo> at the origin meets Cloudflare's RayID",
     [hop("cdn", 1, product="cloudflare", **{"edge.request_id": "7a1f7ad4df2f870a"}),
      hop("gateway", 1.1, **{"edge.request_id": "7a1f7ad4df2f870a-ORD"})],
     {frozenset({0, 1}): "request_id"}),
    ("Istio double logging and a retry share x-request-id",
     [hop("mesh", 1, **{"http.request.id": RID, "hop.direction": "outbound"}),
      hop("mesh", 1.001, **{"http.request.id": RID, "hop.direction": "inbound"}),
      hop("backend", 1.002, status=503, **{"http.request.id": RID}),
      hop("backend", 1.2, **{"http.request.id": RID})],
     {frozenset({0, 1, 2, 3}): "request_id"}),
    ("a request id logged under a trace key joins by value but does not make the join trace_id",
     [hop("proxy", 1, **{"http.request.id": T2, "http.request.id_source": "nginx.$request_id", "trace.id": T1,
                         "trace.source": "w3c"}),
      hop("backend", 1.1, **{"trace.id": T2, "trace.source": "mdc"})],
     {frozenset({0, 1}): "request_id"}),
    ("heuristic: a keyless CDN line joins the only matching origin request (client in X-Forwarded-For)",
     [hop("cdn", 10.0, **{"client.address": "198.51.100.7"}),
      hop("proxy", 11.5, **{"client.address": "130.176.1.1", "http.request.header.x-forwarded-for": "198.51.100.7",
                            "trace.id": T1}),
      hop("gateway", 11.6, **{"trace.id": T1})],
     {frozenset({0, 1, 2}): "heuristic"}),
    ("heuristic: two identical CDN lines for one origin request stay apart (ambiguous)",
     [hop("cdn", 10.0, **{"client.address": "198.51.100.7"}),
      hop("cdn", 10.2, **{"client.address": "198.51.100.7"}),
      hop("proxy", 10.5, **{"http.request.header.x-forwarded-for": "198.51.100.7", "trace.id": T1})],
     {frozenset({0}): "none", frozenset({1}): "none", frozenset({2}): "none"}),
    ("heuristic: outside the skew window nothing joins",
     [hop("cdn", 1.0, **{"client.address": "198.51.100.7"}),
      hop("proxy", 30.0, **{"http.request.header.x-forwarded-for": "198.51.100.7"})],
     {frozenset({0}): "none", frozenset({1}): "none"}),
    ("chains of different keys form one component",
     [hop("cdn", 1, **{"edge.request_id": "edge-aaaa-1111"}),
      hop("proxy", 1.1, **{"edge.request_id": "edge-aaaa-1111", "http.request.id": "rid-bbbb-2222"}),
      hop("gateway", 1.2, **{"http.request.id": "rid-bbbb-2222", "trace.id": T1}),
      hop("backend", 1.3, **{"trace.id": T1})],
     {frozenset({0, 1, 2, 3}): "request_id"}),
]


@pytest.mark.parametrize(("name", "hops", "expected"), CASES, ids=[c[0] for c in CASES])
def test_groups(name: str, hops: list[dict[str, Any]], expected: dict[frozenset[int], str]) -> None:
    assert groups(run(hops)) == expected


def test_hub_keys_are_not_used() -> None:
    hops = [hop("backend", float(i), **{"http.request.id": "constant-request-id"}) for i in range(5)]
    assert len(run(hops, max_fanout=3)) == 5
    assert len(run(hops, max_fanout=10)) == 1


def test_no_heuristic_option() -> None:
    hops = CASES[6][1]
    assert "heuristic" not in groups(run([dict(h) for h in hops], heuristic=False)).values()


def test_request_key_prefers_the_trace_id() -> None:
    recs = run([hop("proxy", 1, **{"http.request.id": RID, "trace.id": T1}),
                hop("backend", 1.1, **{"http.request.id": RID})])
    assert [r["request_key"] for r in recs] == [T1]


def _union_find_groups(hops: list[dict[str, Any]], fields: tuple[str, ...], max_fanout: int) -> set[frozenset[int]]:
    """Reference: connected components over the key values (hubs dropped), by union-find in Python."""
    parent = list(range(len(hops)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    by_key: dict[str, set[int]] = {}
    for i, h in enumerate(hops):
        for f in fields:
            if h.get(f):
                by_key.setdefault(h[f], set()).add(i)
    for members in by_key.values():
        if 2 <= len(members) <= max_fanout:
            first, *rest = sorted(members)
            for m in rest:
                parent[find(m)] = find(first)
    comps: dict[int, set[int]] = {}
    for i in range(len(hops)):
        comps.setdefault(find(i), set()).add(i)
    return {frozenset(c) for c in comps.values()}


@pytest.mark.parametrize("seed", range(6))
def test_components_equal_union_find(seed: int) -> None:
    """Random key collisions across kinds (bridges, chains, hubs) give exactly the connected components."""
    import random

    rnd = random.Random(seed)
    fields = ("trace.id", "http.request.id", "edge.request_id")
    pool = [f"key-{seed}-{i:04d}" for i in range(rnd.choice((40, 120, 400)))]
    hops = []
    for i in range(300):
        kw = {f: rnd.choice(pool) for f in fields if rnd.random() < 0.5}
        hops.append(hop(rnd.choice(("proxy", "gateway", "backend")), i / 10, path=f"/p/{i}", **kw))
    expected = _union_find_groups(hops, fields, max_fanout=8)
    assert set(groups(run([dict(h) for h in hops], max_fanout=8, heuristic=False))) == expected


def test_long_chain_is_one_group() -> None:
    """A chain of 120 hops, each sharing one key with the next, is one request (more links than iterations)."""
    hops = [hop("backend", i / 100, **{"http.request.id": f"rid-{i:04d}", "edge.request_id": f"rid-{i + 1:04d}"})
            for i in range(120)]
    recs = run(hops, max_iterations=12)
    assert len(recs) == 1 and len(recs[0]["hops"]) == 120


def test_repeated_source_lines_still_give_distinct_hops() -> None:
    """Hops loaded by hand may repeat (file, line): each stays a hop of its own."""
    hops = [hop("proxy", 1, **{"trace.id": T1}), hop("backend", 1.1, **{"trace.id": T1}),
            hop("backend", 2, **{"trace.id": T2})]
    for h in hops:
        h["source.file"] = "same.log"
        h["source.line"] = 7
    con = duckdb.connect()
    load_hops(con, hops)
    recs = analyze_connection(con).requests
    assert sorted(len(r["hops"]) for r in recs) == [1, 2]


def test_every_placeholder_spelling_is_split_off() -> None:
    """Each placeholder (any case, padded with spaces) and all-zero/dash ids never join; a real id still does."""
    from apitrail.trace.correlate import PLACEHOLDERS

    values = [v for p in PLACEHOLDERS for v in (p, f"  {p.upper()} ")] + ["0000-0000", "::--", "00000000000000000000"]
    hops = [hop("backend", i / 2, **{"http.request.id": v, "trace.id": v}) for i, v in enumerate(values)]
    hops += [hop("proxy", 40.0, **{"http.request.id": " Real-ID-1234 "}), hop("backend", 41.0, **{"trace.id": "real-id-1234"})]
    got = run(hops)
    assert sorted(len(r["hops"]) for r in got) == [1] * len(values) + [2]
