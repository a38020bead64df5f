"""Classification on hand-built hop groups: the class, the failing hop and the vendor reason verbatim.

Every case is one request (all hops share a trace id); ``fail`` is the index of the failing hop (None for none).
The four hard cases of issue 6 are marked ``hard:``.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from apitrail.trace.classify import SIGNALS, cond_sql, hop_class_select
from apitrail.trace.engines._sql import DUCKDB, SPARK
from apitrail.trace.engines.duckdb import analyze_connection, load_hops
from apitrail.trace.schema import FAILURE_CLASSES

T = "4bf92f3577b34da6a3ce929d0e0e4736"


def h(layer: str, product: str, status: int, **kw: Any) -> dict[str, Any]:
    return {"hop.layer": layer, "hop.product": product, "http.response.status_code": status, "trace.id": T,
            "trace.source": "w3c", "http.request.method": "GET", "url.path": "/api/orders", **kw}


def classify(hops: list[dict[str, Any]]) -> dict[str, Any]:
    for i, hop in enumerate(hops):
        hop["source.file"] = "case.log"
        hop["source.line"] = i
        hop["timestamp"] = f"2026-03-02T09:00:00.{i:03d}Z"
    con = duckdb.connect()
    load_hops(con, hops)
    recs = analyze_connection(con).requests
    assert len(recs) == 1
    return recs[0]["failure"]


VIA = {"failure.origin": "upstream"}
CASES: list[tuple[str, list[dict[str, Any]], str, int | None, str | None]] = [
    ("all hops succeed", [h("cdn", "cloudfront", 200), h("gateway", "kong", 200, **VIA), h("backend", "spring", 200)],
     "none", None, None),
    ("retry chain ends in 200", [h("proxy", "nginx", 200, **{"upstream.status_codes": "502, 200"}),
                                 h("backend", "spring", 502), h("backend", "spring", 200)], "none", None, None),
    ("Kong key-auth 401 (source=kong)",
     [h("proxy", "nginx", 401, **{"upstream.status_codes": "401"}), h("gateway", "kong", 401, **{"failure.origin": "self"})],
     "authn", 1, "self"),
    ("Kong 403 acl", [h("gateway", "kong", 403, **{"failure.origin": "self"})], "authz", 0, "self"),
    ("Kong 429", [h("gateway", "kong", 429, **{"failure.origin": "self"})], "rate_limited", 0, "self"),
    ("Kong 502 itself (upstream unreachable)", [h("gateway", "kong", 502, **{"failure.origin": "self"})],
     "dependency", 0, "self"),
    ("backend 503 relayed by Kong and NGINX",
     [h("proxy", "nginx", 503, **{"upstream.status_codes": "503"}), h("gateway", "kong", 503, **VIA),
      h("backend", "spring", 503)], "dependency", 2, "503"),
    ("Envoy JWT expired", [h("gateway", "envoy", 401, **{"failure.reason": "jwt_authn_access_denied{Jwt_is_expired}",
                                                         "failure.origin": "self"})],
     "authn", 0, "jwt_authn_access_denied{Jwt_is_expired}"),
    ("Envoy RBAC at the inbound sidecar",
     [h("gateway", "envoy", 403, **VIA),
      h("mesh", "istio", 403, **{"failure.reason": "rbac_access_denied_matched_policy[ns[shop]-policy[x]-rule[0]]",
                                 "failure.origin": "self", "hop.direction": "inbound"})],
     "authz", 1, "rbac_access_denied_matched_policy[ns[shop]-policy[x]-rule[0]]"),
    ("Envoy UAEX", [h("gateway", "envoy", 403, **{"response.flags": "UAEX", "failure.reason": "ext_authz_denied",
                                                  "failure.origin": "self"})], "authz", 0, "UAEX"),
    ("Envoy NR", [h("gateway", "envoy", 404, **{"response.flags": "NR", "failure.reason": "route_not_found"})],
     "routing", 0, "NR"),
    ("Envoy RL", [h("gateway", "envoy", 429, **{"response.flags": "RL", "failure.reason": "local_rate_limited"})],
     "rate_limited", 0, "RL"),
    ("Envoy UH", [h("gateway", "envoy", 503, **{"response.flags": "UH", "failure.reason": "no_healthy_upstream"})],
     "dependency", 0, "UH"),
    ("Envoy DC", [h("gateway", "envoy", 0, **{"response.flags": "DC"})], "client_abort", 0, "DC"),
    ("hard: Envoy audience 403 after the gateway accepted the token",
     [h("gateway", "kong", 403, **VIA, **{"token.issuer": "https://idp", "authn.result": "success"}),
      h("mesh", "envoy", 403, **{"failure.reason": "jwt_authn_access_denied{Audiences_in_Jwt_are_not_allowed}",
                                 "failure.origin": "self"})],
     "token_exchange", 1, "jwt_authn_access_denied{Audiences_in_Jwt_are_not_allowed}"),
    ("audience 403 with no upstream acceptance stays authz",
     [h("mesh", "envoy", 403, **{"failure.reason": "jwt_authn_access_denied{Audiences_in_Jwt_are_not_allowed}",
                                 "failure.origin": "self"})],
     "authz", 0, "jwt_authn_access_denied{Audiences_in_Jwt_are_not_allowed}"),
    ("hard: downstream authn masked as a 5xx upstream",
     [h("gateway", "kong", 500, **VIA), h("backend", "orders", 500),
      h("backend", "billing", 401, **{"failure.reason": "invalid_token"})],
     "authn", 2, "invalid_token"),
    ("hard: UF with CERTIFICATE_VERIFY_FAILED towards the upstream is authn",
     [h("gateway", "envoy", 503, **VIA),
      h("mesh", "istio", 503, **{"response.flags": "UF,URX", "hop.direction": "outbound",
                                 "failure.reason": "TLS error: 268435581:SSL routines:OPENSSL_internal:"
                                                   "CERTIFICATE_VERIFY_FAILED", "failure.origin": "self"})],
     "authn", 1, "TLS error: 268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED"),
    ("UF without TLS detail is dependency",
     [h("mesh", "istio", 503, **{"response.flags": "UF", "failure.reason": "upstream_reset_before_response_started"
                                                                           "{connection_failure}"})],
     "dependency", 0, "UF"),
    ("hard: API Gateway MISSING_AUTHENTICATION_TOKEN on an unknown path is routing",
     [h("gateway", "aws-apigateway", 403, **{"failure.reason": "MISSING_AUTHENTICATION_TOKEN"})],
     "routing", 0, "MISSING_AUTHENTICATION_TOKEN"),
    ("API Gateway MISSING_AUTHENTICATION_TOKEN on a known resource is authn",
     [h("gateway", "aws-apigateway", 403, **{"failure.reason": "MISSING_AUTHENTICATION_TOKEN",
                                              "http.route": "/orders/{id}"})],
     "authn", 0, "MISSING_AUTHENTICATION_TOKEN"),
    ("API Gateway THROTTLED", [h("gateway", "aws-apigateway", 429, **{"failure.reason": "THROTTLED"})],
     "rate_limited", 0, "THROTTLED"),
    ("API Gateway INTEGRATION_TIMEOUT while the backend still answers 200",
     [h("gateway", "aws-apigateway", 504, **{"failure.reason": "INTEGRATION_TIMEOUT"}), h("backend", "orders", 200)],
     "dependency", 0, "INTEGRATION_TIMEOUT"),
    ("NGINX auth_request 403 without upstream", [h("proxy", "nginx", 403)], "authz", 0, "403"),
    ("NGINX 499 client abort while the backend finishes",
     [h("proxy", "nginx", 499), h("backend", "orders", 200)], "client_abort", 0, "499"),
    ("CloudFront origin timeout, origin sees its client leave (499)",
     [h("cdn", "cloudfront", 504, **{"failure.reason": "OriginReadError"}), h("proxy", "nginx", 499)],
     "dependency", 0, "OriginReadError"),
    ("Cloudflare WAF block", [h("cdn", "cloudflare", 403, **{"authz.decision": "deny",
                                                               "upstream.status_codes": "0"})], "authz", 0, None),
    ("Cloudflare origin unreachable 522", [h("cdn", "cloudflare", 522, **{"upstream.status_codes": "0"})],
     "dependency", 0, "0"),
    ("Cloudflare mTLS absent", [h("cdn", "cloudflare", 403, **{"tls.client.verify_result": "absent"})],
     "authn", 0, "absent"),
    ("HAProxy PR 403 deny", [h("proxy", "haproxy", 403, **{"response.flags": "PR--"})], "authz", 0, "PR--"),
    ("HAProxy <NOSRV> 503", [h("proxy", "haproxy", 503, **{"response.flags": "SC--",
                                                            "upstream.address": "<NOSRV>"})],
     "routing", 0, "SC--"),
    ("backend 403 insufficient_scope after the gateway accepted the token",
     [h("gateway", "aws-apigateway", 403, **{"token.issuer": "https://cognito", "upstream.status_codes": "403"}),
      h("backend", "orders", 403, **{"failure.reason": "insufficient_scope"})],
     "token_exchange", 1, "insufficient_scope"),
    ("chained application 5xx: the deepest application error is the failing hop",
     [h("backend", "orders", 503), h("backend", "payments", 503)], "dependency", 1, "503"),
]


@pytest.mark.parametrize(("name", "hops", "cls", "fail", "reason"), CASES, ids=[c[0] for c in CASES])
def test_classification(name: str, hops: list[dict[str, Any]], cls: str, fail: int | None, reason: str | None) -> None:
    failure = classify(hops)
    assert failure["class"] == cls
    assert (failure.get("hop") or {}).get("line") == fail
    if reason is not None:
        assert failure["reason"] == reason
    if cls != "none":
        assert failure["evidence"], "a verdict always carries evidence"


def test_signal_table_is_well_formed() -> None:
    ids = [s.id for s in SIGNALS]
    assert len(ids) == len(set(ids)), "signal ids are unique"
    for s in SIGNALS:
        assert s.cls in FAILURE_CLASSES or s.cls.startswith("@"), s.id
        for c in s.when:
            for dialect in (DUCKDB, SPARK):
                assert cond_sql(c, dialect)
    for dialect in (DUCKDB, SPARK):
        pre, first, second = hop_class_select(dialect)
        assert "fx_0" in pre and "sig_idx" in first and "hop_self" in second


def test_unknown_condition_op_is_an_error() -> None:
    with pytest.raises(ValueError):
        cond_sql(("near", "failure.reason", "x"), DUCKDB)
