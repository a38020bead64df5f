"""Classification follow-ups from the format audits: each vendor signal read the way the parsers now record it
(hand-built hops for the signal itself, and the documented fixture shapes end to end)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from _trace_helpers import FIXTURES, meta_for, options_for
from test_classify import classify, h

from apitrail.trace.engines.duckdb import analyze_connection, load_hops
from apitrail.trace.ingest import IngestOptions, ingest_paths
from apitrail.trace.store import Store


def raw(**kw: Any) -> dict[str, Any]:
    return {"raw.unmapped": json.dumps(kw)}


def signal(failure: dict[str, Any]) -> str:
    """The id of the signal that classified the failing hop (first word of the evidence)."""
    return str(failure["evidence"][0]).split(":", 1)[0]


def fixture_failures(path: Path, fmt: str | None = None) -> dict[int, dict[str, Any]]:
    """The failure of each hop of a fixture file classified as a request of its own (the parser's shapes through
    the signal table, whatever the join makes of the file), by source line."""
    store = Store()
    try:
        names = ((path.name, fmt),) if fmt else ()
        ingest_paths([path], IngestOptions(format_names=names), store)
        table = store.con.sql('SELECT * FROM hops ORDER BY "source.line"').to_arrow_table()
    finally:
        store.close()
    out = {}
    for i in range(table.num_rows):
        con = duckdb.connect()
        load_hops(con, table.slice(i, 1))
        (rec,) = analyze_connection(con).requests
        out[rec["hops"][0]["source"]["line"]] = rec["failure"]
    return out


def _lines(path: Path) -> list[dict[str, Any]]:
    """Each line's object ({} for a blank or malformed line), so that positions are line numbers."""
    out = []
    for ln in path.read_text().splitlines():
        try:
            obj = json.loads(ln)
        except ValueError:
            obj = {}
        out.append(obj if isinstance(obj, dict) else {})
    return out


# --- 1. Cloudflare security actions, as Logpush logs them (camel-cased) and as the rules API spells them

CF_BLOCKED = ["block", "managedChallenge", "managed_challenge", "challenge", "jschallenge", "js_challenge",
              "jschallengeFailed", "challengeFailed", "managedChallengeFailed", "connectionClose",
              "forceConnectionClose", "drop"]


@pytest.mark.parametrize("action", CF_BLOCKED)
def test_cloudflare_security_action_stops_the_request(action: str) -> None:
    failure = classify([h("cdn", "cloudflare", 403, **raw(SecurityAction=action))])
    assert failure["class"] == "authz"
    assert signal(failure) == "cloudflare-security"
    assert (failure.get("hop") or {}).get("line") == 0


@pytest.mark.parametrize("action", ["managedChallengeNonInteractiveSolved", "jschallengeSolved", "challengeBypassed",
                                    "skip", "log", "unknown"])
def test_cloudflare_passing_action_is_not_a_block(action: str) -> None:
    failure = classify([h("cdn", "cloudflare", 522, **{"upstream.status_codes": "0"}, **raw(SecurityAction=action))])
    assert failure["class"] == "dependency"


def test_cloudflare_documented_security_lines() -> None:
    path = FIXTURES / "cloudflare_http_requests" / "documented.jsonl"
    got = fixture_failures(path)
    seen = set()
    for line, obj in enumerate(_lines(path), start=1):
        action, sources = str(obj.get("SecurityAction") or ""), obj.get("SecuritySources") or []
        if action.replace("_", "").lower() in {"managedchallenge", "jschallenge", "challenge", "block"}:
            want = "rate_limited" if any(str(s).lower() == "ratelimit" for s in sources) else "authz"
            assert got[line]["class"] == want, (line, action, got[line])
            assert signal(got[line]).startswith("cloudflare-"), got[line]
            seen.add(want)
    assert seen == {"authz", "rate_limited"}


# --- 2. AWS WAF rate-based rules


def _waf(action: str, rule_type: str, status: int, **kw: Any) -> dict[str, Any]:
    return h("cdn", "aws-waf", status, **{"authz.decision": "deny", "authz.engine": "waf", "failure.origin": "self",
                                          "failure.reason": f"{action}:some-rule", "failure.source": rule_type,
                                          "source.format": "aws_waf", **kw})


@pytest.mark.parametrize(("hop", "cls", "sig"), [
    (_waf("BLOCK", "RATE_BASED", 429), "rate_limited", "aws-waf-rate-based"),
    (_waf("BLOCK", "RATE_BASED", 403), "rate_limited", "aws-waf-rate-based"),
    # the parser's fields absent: the raw WAF record still says it
    (h("cdn", "aws-waf", 403, **raw(action="BLOCK", terminatingRuleType="RATE_BASED")), "rate_limited",
     "aws-waf-rate-based"),
    (_waf("BLOCK", "REGULAR", 403), "authz", "authz-deny"),
    (_waf("BLOCK", "MANAGED_RULE_GROUP", 403), "authz", "authz-deny"),
    (_waf("CAPTCHA", "RATE_BASED", 405), "authz", "authz-deny"),
], ids=["rate-429", "rate-403", "rate-raw", "regular", "managed", "rate-captcha"])
def test_aws_waf_rate_based_block_is_rate_limited(hop: dict[str, Any], cls: str, sig: str) -> None:
    failure = classify([hop])
    assert (failure["class"], signal(failure)) == (cls, sig)


def test_aws_waf_documented_rate_based_line() -> None:
    path = FIXTURES / "aws_waf" / "documented.jsonl"
    got = fixture_failures(path)
    rate = [n for n, obj in enumerate(_lines(path), start=1)
            if obj.get("terminatingRuleType") == "RATE_BASED" and obj.get("action") == "BLOCK"]
    assert rate
    for line in rate:
        assert got[line]["class"] == "rate_limited", got[line]


# --- 3. ALB error_reason values of the WAF integration

ALB_WAF_ERRORS = ["WAFConnectionError", "WAFConnectionTimeout", "WAFResponseReadTimeout", "WAFServiceError",
                  "WAFMemoryExceeded", "WAFUnhandledException"]


@pytest.mark.parametrize("reason", ALB_WAF_ERRORS)
def test_alb_waf_error_is_a_dependency_failure_of_the_load_balancer(reason: str) -> None:
    failure = classify([h("edge_lb", "aws-alb", 500, **{"failure.reason": reason, "source.format": "aws_alb"}),
                        h("backend", "orders", 200)])
    assert (failure["class"], failure["layer"], signal(failure)) == ("dependency", "edge_lb", "alb-waf")
    assert failure["reason"] == reason
    assert (failure.get("hop") or {}).get("line") == 0


def test_alb_waf_error_from_raw_error_reason() -> None:
    failure = classify([h("edge_lb", "aws-alb", 403, **raw(error_reason="WAFServiceError"))])
    assert (failure["class"], signal(failure)) == ("dependency", "alb-waf")


def test_alb_documented_waf_error_line() -> None:
    path = FIXTURES / "aws_alb" / "documented.log"
    got = fixture_failures(path)
    lines = [n for n, ln in enumerate(path.read_text().splitlines(), start=1)
             if any(f'"{e}"' in ln for e in ALB_WAF_ERRORS)]
    assert lines
    for line in lines:
        assert (got[line]["class"], got[line]["layer"], signal(got[line])) == ("dependency", "edge_lb", "alb-waf")


# --- 4. Azure APIM: the failed policy from failure.source (nested properties.lastError.source, *_s columns)

APIM_POLICY_SIGNALS = {"validate-jwt": ("authn", "apim-validate"),
                       "validate-client-certificate": ("authn", "apim-validate"),
                       "rate-limit": ("rate_limited", "apim-rate"), "rate-limit-by-key": ("rate_limited", "apim-rate"),
                       "quota-by-key": ("rate_limited", "apim-rate"), "ip-filter": ("authz", "apim-ip-filter"),
                       "forward-request": ("dependency", "apim-forward")}


@pytest.mark.parametrize("source", sorted(APIM_POLICY_SIGNALS))
@pytest.mark.parametrize("status", [403, 429, 500, 504])
def test_apim_signal_reads_failure_source(source: str, status: int) -> None:
    failure = classify([h("gateway", "azure-apim", status, **{"failure.source": source, "failure.origin": "self",
                                                               "failure.reason": "SomeReason"})])
    assert (failure["class"], signal(failure)) == APIM_POLICY_SIGNALS[source]


def test_apim_signal_reads_log_analytics_column() -> None:
    failure = classify([h("gateway", "azure-apim", 502, **raw(lastError_source_s="forward-request"))])
    assert (failure["class"], signal(failure)) == ("dependency", "apim-forward")


def test_apim_docs_shapes() -> None:
    path = FIXTURES / "azure_apim" / "docs-shapes.jsonl"
    expected = json.loads(path.with_name("docs-shapes.expected.json").read_text())["hops"]
    got = fixture_failures(path)
    checked = set()
    for hop in expected:
        source = hop.get("failure.source")
        if source in APIM_POLICY_SIGNALS:
            line = hop["source.line"]
            assert (got[line]["class"], signal(got[line])) == APIM_POLICY_SIGNALS[source], (line, source)
            checked.add(APIM_POLICY_SIGNALS[source][1])
    assert {"apim-validate", "apim-rate"} <= checked


# --- 5. A failed client-certificate verification with no HTTP status (HAProxy error log lines)


@pytest.mark.parametrize("verify", ["FAILED:SSL client certificate not trusted", "FAILED:X509_V_ERR_10", "untrusted"])
def test_client_certificate_failure_without_status_is_authn(verify: str) -> None:
    failure = classify([h("proxy", "haproxy", None, **{"tls.client.verify_result": verify, "failure.origin": "self",
                                                        "failure.reason": "SSL handshake failure"})])
    assert (failure["class"], failure["layer"], signal(failure)) == ("authn", "proxy", "tls-client-verify")
    assert failure["reason"] == verify
    assert (failure.get("hop") or {}).get("line") == 0


def test_hop_without_status_and_without_a_no_status_signal_stays_none() -> None:
    # an error-log line that says nothing about the certificate, and status-less hops whose only evidence is a
    # signal that needs a status (Envoy flags, a parser's class, an authz deny) are not failures
    for hop in (h("proxy", "haproxy", None, **{"failure.reason": "Connection error during SSL handshake",
                                                "failure.origin": "self"}),
                h("mesh", "envoy", None, **{"response.flags": "UF"}),
                h("proxy", "nginx", None, **{"failure.class": "authn", "authz.decision": "deny"})):
        assert classify([hop])["class"] == "none"


def test_client_certificate_failure_with_a_success_status_is_not_a_failure() -> None:
    # optional verification: HAProxy logged the failed check but answered 200
    failure = classify([h("proxy", "haproxy", 200, **{"tls.client.verify_result": "FAILED:X509_V_ERR_10"})])
    assert failure["class"] == "none"


@pytest.mark.parametrize(("name", "fmt"), [("httpslog_clf_errors.log", "haproxy"),
                                           ("template_captures.log", None)])
def test_haproxy_error_lines_rejecting_the_certificate_are_authn(name: str, fmt: str | None) -> None:
    path = FIXTURES / "haproxy" / name
    store = Store()
    try:
        options = options_for(path) if meta_for(path) else IngestOptions(format_names=((name, fmt),))
        ingest_paths([path], options, store)
        recs = analyze_connection(store.con).requests
    finally:
        store.close()
    rejected = [r for r in recs if any(hop["status"] is None for hop in r["hops"])
                and r["failure"]["class"] != "none"]
    cert_lines = {n for n, ln in enumerate(path.read_text().splitlines(), start=1)
                  if ln.endswith(("SSL client certificate not trusted", "SSL client CA chain cannot be verified"))}
    assert cert_lines
    assert {r["failure"]["hop"]["line"] for r in rejected} == cert_lines
    for r in rejected:
        assert (r["failure"]["class"], signal(r["failure"])) == ("authn", "tls-client-verify")


# --- 6. Istio direction from %UPSTREAM_CLUSTER% (1.22+: outbound_.8080_._.svc) as well as outbound|8080||svc

DIRECTIONS = [("outbound|8080||orders.default.svc.cluster.local", "outbound"),
              ("outbound_.8080_._.orders.default.svc.cluster.local", "outbound"),
              ("outbound_.8080_.v1_.orders.default.svc.cluster.local", "outbound"),
              ("inbound|8080||", "inbound"), ("inbound_.8080_._.orders.default.svc.cluster.local", "inbound"),
              ("InboundPassthroughClusterIpv4", None), ("PassthroughCluster", None), ("BlackHoleCluster", None),
              ("outbound", None), ("outboundx|1||a", None), ("-", None), ("", None)]


def test_direction_rule_agrees_between_sql_and_python() -> None:
    from apitrail.trace.formats.envoy import _direction
    from apitrail.trace.normalize.casts import py_cast, sql_cast

    con = duckdb.connect()
    for value, want in DIRECTIONS:
        rec: dict[str, Any] = {}
        _direction(rec, value)
        sql, _bad = sql_cast("v", "direction")
        (got_sql,) = con.execute(f"SELECT {sql} FROM (SELECT ?::VARCHAR AS v) t", [value]).fetchone() or (None,)
        assert (rec.get("hop.direction"), py_cast(value, "direction"), got_sql) == (want, want, want), value


@pytest.mark.parametrize("engine", ["auto", "python"])
def test_istio_upstream_cluster_alt_names_give_the_same_directions(engine: str) -> None:
    def directions(name: str) -> list[Any]:
        store = Store()
        try:
            path = FIXTURES / "istio" / name
            ingest_paths([path], IngestOptions(format_names=((name, "istio"),), engine=engine), store)
            return [r[0] for r in store.con.execute(
                'SELECT "hop.direction" FROM hops ORDER BY "source.line"').fetchall()]
        finally:
            store.close()

    alt = directions("upstream_cluster_alt.log")
    assert "outbound" in alt and "inbound" in alt and None not in alt
    # the same requests with outbound|port||host cluster names: default.log's lines that name a cluster
    assert alt == [d for d in directions("default.log") if d is not None]
