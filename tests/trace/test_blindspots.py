"""Blind spots on hand-built hop rows: each kind has a positive and a negative case."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from apitrail.trace.blindspots import BlindSpotOptions
from apitrail.trace.engines._pipeline import AnalysisResult, AnalyzeOptions
from apitrail.trace.engines.duckdb import analyze_connection, load_hops

T1 = "4bf92f3577b34da6a3ce929d0e0e4736"
T2 = "0af7651916cd43dd8448eb211c80319c"
T3 = "a3ce929d0e0e47364bf92f3577b34da6"
GW_BY = "spiffe://cluster.local/ns/istio-system/sa/ingressgateway"


def h(layer: str, file: str, t: float, **kw: Any) -> dict[str, Any]:
    return {"hop.layer": layer, "hop.product": layer, "source.file": file, "timestamp": f"2026-03-02T09:00:{t:06.3f}Z",
            "http.request.method": "GET", "url.path": "/api/orders", "http.response.status_code": 200, **kw}


def run(hops: list[dict[str, Any]], **bopts: Any) -> AnalysisResult:
    for i, hop in enumerate(hops):
        hop["source.line"] = i
    con = duckdb.connect()
    load_hops(con, hops)
    return analyze_connection(con, options=AnalyzeOptions(blind_spots=BlindSpotOptions(**bopts)))


def spots_of(result: AnalysisResult, line: int) -> list[str]:
    for r in result.requests:
        if any(x["source"]["line"] == line for x in r["hops"]):
            return list(r["blind_spots"])
    raise AssertionError(f"line {line} not in the output")


CASES: list[tuple[str, list[dict[str, Any]], int, set[str], set[str]]] = [
    ("trace restarts at the backend",
     [h("gateway", "gw", 1, **{"trace.id": T1, "http.request.id": "rid-1111-aaaa"}),
      h("backend", "app", 1.1, **{"trace.id": T2, "http.request.id": "rid-1111-aaaa"})],
     0, {"propagation_break"}, set()),
    ("trace disappears where the source logs trace ids on other lines",
     [h("gateway", "gw", 1, **{"trace.id": T1, "http.request.id": "rid-2222-bbbb"}),
      h("backend", "app", 1.1, **{"http.request.id": "rid-2222-bbbb"}),
      h("backend", "app", 9, **{"trace.id": T3}), h("gateway", "gw", 9, **{"trace.id": T3})],
     0, {"propagation_break"}, set()),
    ("a source that never logs trace ids is not a break (coverage instead)",
     [h("gateway", "gw", 1, **{"trace.id": T1, "http.request.id": "rid-3333-cccc"}),
      h("mesh", "sidecar", 1.1, **{"http.request.id": "rid-3333-cccc"})],
     0, set(), {"propagation_break"}),
    ("invalid traceparent", [h("proxy", "ng", 1, **{"trace.invalid_reason": "uppercase hex"}),
                             h("gateway", "gw", 1.1)], 0, {"invalid_traceparent"}, set()),
    ("backend with no gateway record in its group",
     [h("gateway", "gw", 1, **{"trace.id": T1}), h("backend", "app", 1.1, **{"trace.id": T1}),
      h("backend", "app", 5, **{"trace.id": T2})],
     2, {"gateway_bypass"}, set()),
    ("an application's own log record (no method, path or status) bypassed nothing",
     [h("gateway", "gw", 1, **{"trace.id": T1}), h("backend", "app", 1.1, **{"trace.id": T1}),
      h("backend", "app", 5, **{"http.request.method": None, "url.path": None, "http.response.status_code": None,
                                "trace.id": T2})],
     2, set(), {"gateway_bypass"}),
    ("backend reached through the gateway is no bypass",
     [h("gateway", "gw", 1, **{"trace.id": T1}), h("backend", "app", 1.1, **{"trace.id": T1})],
     1, set(), {"gateway_bypass"}),
    ("XFCC chain without the gateway's By=",
     [h("gateway", "gw", 1, **{"trace.id": T1}),
      h("backend", "app", 1.1, **{"trace.id": T1, "tls.forwarded_by": ["spiffe://cluster.local/ns/x/sa/other"]})],
     1, {"gateway_bypass"}, set()),
    ("identity logged at the gateway, lost at the backend",
     [h("gateway", "gw", 1, **{"trace.id": T1, "token.audience": ["orders"], "token.issuer": "https://idp"}),
      h("backend", "app", 1.1, **{"trace.id": T1, "token.issuer": "https://idp"})],
     1, {"missing_identity:backend:token.audience"}, {"missing_identity:backend:token.issuer"}),
    ("a source whose key set changes mid-file (a deploy)",
     [h("backend", "app", 1, **{"schema.source_fingerprint": "fp-a"}),
      h("backend", "app", 2, **{"schema.source_fingerprint": "fp-a"}),
      h("backend", "app", 3, **{"schema.source_fingerprint": "fp-b"}),
      h("backend", "app", 4, **{"schema.source_fingerprint": "fp-b"})],
     2, {"schema_drift"}, set()),
    ("optional keys that come and go line by line are no drift",
     [h("gateway", "kong", 1, **{"schema.source_fingerprint": "fp-a"}),
      h("gateway", "kong", 2, **{"schema.source_fingerprint": "fp-b"}),
      h("gateway", "kong", 3, **{"schema.source_fingerprint": "fp-a"}),
      h("gateway", "kong", 4, **{"schema.source_fingerprint": "fp-b"})],
     3, set(), {"schema_drift"}),
    ("a steady key set is no drift",
     [h("backend", "app", 1, **{"schema.source_fingerprint": "fp-a"}),
      h("backend", "app", 2, **{"schema.source_fingerprint": "fp-a"})],
     1, set(), {"schema_drift"}),
]


@pytest.mark.parametrize(("name", "hops", "line", "must", "must_not"), CASES, ids=[c[0] for c in CASES])
def test_blind_spots(name: str, hops: list[dict[str, Any]], line: int, must: set[str], must_not: set[str]) -> None:
    kwargs = {"gateway_ids": (GW_BY,)} if "XFCC" in name else {}
    got = set(spots_of(run(hops, **kwargs), line))
    assert must <= got
    assert not (must_not & got)


def test_coverage_and_notes_in_the_summary() -> None:
    res = run([h("gateway", "gw", 1, **{"hop.product": "kong", "trace.id": T1, "token.issuer": "https://idp"}),
               h("backend", "app", 1.1, **{"trace.id": T1, "trace.source": "mdc"}),
               h("backend", "app2", 3, **{"trace.id": T2, "trace.source": "otel"})])
    s = res.summary()
    cov = {row["layer"]: row["present"] for row in s["identity_coverage"]}
    assert cov["gateway"]["token.issuer"] == 1.0
    assert cov["backend"]["token.issuer"] == 0.0
    assert any(n.startswith("Kong:") for n in s["notes"])
    assert any("schema drift: backend" in n for n in s["notes"])
