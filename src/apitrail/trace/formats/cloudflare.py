"""Cloudflare Logpush ``http_requests`` dataset (JSON, one object per line).

Field names from Cloudflare's Logpush dataset reference (``http_requests``). ``RayID`` is the request id at the
edge; the origin receives it as ``Cf-Ray: <RayID>-<colo>``, so it is both ``http.request.id`` (provenance
``cloudflare.RayID``) and ``edge.request_id``. ``EdgeStartTimestamp`` may be RFC 3339, unix seconds or unix
nanoseconds (the job's ``timestamp_format``).

Identity: ``ClientMTLSAuthStatus`` (``unknown|ok|absent|untrusted|notyetvalid|expired``) and
``ClientMTLSAuthCertFingerprint`` (SHA-256, only on the first request of an mTLS connection), ``ClientSSLProtocol``.
Failure signals: ``EdgeResponseStatus`` vs ``OriginResponseStatus`` (``0`` = no response from the origin),
``SecurityAction`` / ``SecuritySources`` (WAF, rate limiting, API Shield token validation). Secrets: ``Cookies`` and
``RequestHeaders`` (custom fields) may carry session cookies and ``Authorization``; ``ClientRequestURI`` may carry
query tokens.
"""

from __future__ import annotations

from typing import Any

from apitrail.trace.formats._base import (
    FormatOptions,
    LogFormat,
    Parser,
    Vector,
    VField,
    json_keys_score,
    parser_from_vector,
)

VECTOR = Vector(
    kind="json",
    fields=(
        VField("in.timestamp", ("EdgeStartTimestamp",)),
        VField("http.request.method", ("ClientRequestMethod",)),
        VField("in.url", ("ClientRequestURI",)),
        VField("url.path", ("ClientRequestPath",)),
        VField("http.response.status_code", ("EdgeResponseStatus",), "int"),
        VField("upstream.status_codes", ("OriginResponseStatus",)),
        VField("upstream.address", ("OriginIP",)),
        VField("client.address", ("ClientIP",)),
        VField("server.address", ("ClientRequestHost",)),
        VField("user_agent.original", ("ClientRequestUserAgent",)),
        # Logpush custom request-header fields; x-request-id only when there is no RayID
        VField("in.request_id", ("RequestHeaders", "x-request-id"), label="x-request-id"),
        VField("in.traceparent", ("RequestHeaders", "traceparent")),
        VField("in.x-amzn-trace-id", ("RequestHeaders", "x-amzn-trace-id")),
        VField("in.request_id", ("RayID",), label="cloudflare.RayID"),
        VField("in.edge_request_id", ("RayID",)),
        VField("hop.instance", ("EdgeColoCode",)),
        VField("tls.protocol.version", ("ClientSSLProtocol",)),
        VField("in.cert_verify", ("ClientMTLSAuthStatus",)),
        VField("in.cert_fingerprint", ("ClientMTLSAuthCertFingerprint",)),
    ),
    slow_if=(("SecurityAction",), ("SecurityActions",), ("Cookies",)),
    json_objects=(("RequestHeaders", ("traceparent", "x-amzn-trace-id", "x-request-id")),),
    require_any=("RayID", "EdgeStartTimestamp", "ClientRequestHost"),
    prefilter_ignore=('"Cookies":{}', '"RequestHeaders":{}', '"Cookies": {}', '"RequestHeaders": {}'),
)

_BLOCKING = {"block", "challenge", "jschallenge", "managed_challenge", "challengefailed", "jschallengefailed",
             "managedchallengefailed", "drop", "forceconnectionclose"}


def _extra(obj: Any, rec: dict[str, Any]) -> None:
    headers = obj.get("RequestHeaders")
    if isinstance(headers, dict):
        low = {str(k).lower(): v for k, v in headers.items() if isinstance(v, str)}
        for header, hint in (("traceparent", "in.traceparent"), ("tracestate", "in.tracestate"), ("b3", "in.b3"),
                             ("x-b3-traceid", "in.x-b3-traceid"), ("x-b3-spanid", "in.x-b3-spanid"),
                             ("x-amzn-trace-id", "in.x-amzn-trace-id"), ("authorization", "in.authorization"),
                             ("cookie", "in.cookie"), ("x-api-key", "in.api_key")):
            if low.get(header):
                rec[hint] = low[header]
        if low.get("x-request-id") and "in.request_id" not in rec:
            rec["in.request_id"], rec["in.request_id_source"] = low["x-request-id"], "x-request-id"
    action = str(obj.get("SecurityAction") or "").lower()
    if action:
        decision = "deny" if action in _BLOCKING else "allow"
        rec["authz.decision"] = decision
        rec["authz.engine"] = "waf"
        sources = obj.get("SecuritySources")
        if decision == "deny":
            rec["failure.reason"] = f"SecurityAction={action}"
            if isinstance(sources, list) and sources:
                rec["failure.source"] = ",".join(str(s) for s in sources)


def _make(options: FormatOptions) -> Parser:
    return parser_from_vector(VECTOR, _extra)


def _detect(lines: list[str]) -> float:
    return json_keys_score(lines, ["RayID"], ["EdgeStartTimestamp", "ClientRequestHost", "EdgeResponseStatus",
                                              "ClientIP"])


FORMAT = LogFormat(
    name="cloudflare_http_requests",
    layer="cdn",
    product="cloudflare",
    kind="json",
    doc="Cloudflare Logpush http_requests dataset (JSON lines).",
    detect=_detect,
    make_parser=_make,
    vector=VECTOR,
)
