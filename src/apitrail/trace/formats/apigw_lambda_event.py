"""AWS API Gateway proxy-integration events, as a Lambda backend receives (and often logs) them.

Not an access log: the JSON event API Gateway hands to the backend, one per line. Two documented shapes:

- payload 1.0 (REST APIs): ``httpMethod``, ``path``, ``headers``, ``queryStringParameters``,
  ``requestContext.requestId``, ``requestContext.requestTimeEpoch`` (ms), ``requestContext.identity.sourceIp``,
  ``requestContext.identity.clientCert`` (mTLS) and ``requestContext.authorizer`` (``principalId``, ``claims``);
- payload 2.0 (HTTP APIs, ``"version": "2.0"``): ``requestContext.http.method/path/sourceIp``,
  ``requestContext.timeEpoch``, ``rawQueryString``, ``cookies``, ``requestContext.authorizer.jwt.claims/scopes`` and
  ``requestContext.authentication.clientCert`` (``subjectDN``, ``issuerDN``, ``serialNumber``, ``validity``).

Identity: the authorizer's verdict travels with the event (JWT claims, scopes, principal), as does the client
certificate of an mTLS custom domain. Correlation: ``requestContext.requestId`` is the gateway's request id,
``X-Amzn-Trace-Id`` the X-Ray trace, ``X-Amz-Cf-Id`` the CloudFront edge id of the hop before. Secrets: headers
carry ``Authorization`` and cookies raw; the core fingerprints them. There is no status code: the event is the
request.
"""

from __future__ import annotations

import json
from typing import Any

from apitrail.trace.formats._base import (
    FormatOptions,
    LogFormat,
    Parser,
    Reject,
    flatten,
    get_path,
    json_object_share,
)


def _headers(obj: dict[str, Any]) -> dict[str, str]:
    raw = obj.get("headers")
    if not isinstance(raw, dict):
        return {}
    return {str(k).lower(): str(v) for k, v in raw.items() if isinstance(v, (str, int, float))}


def _parse(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not text:
        return None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise Reject("invalid json") from None
    if not isinstance(obj, dict):
        raise Reject("not a JSON object")
    ctx = obj.get("requestContext")
    if not isinstance(ctx, dict):
        raise Reject("no requestContext: not an API Gateway proxy event")
    v2 = str(obj.get("version", "")) == "2.0"
    headers = _headers(obj)
    rec: dict[str, Any] = {"hop.direction": "inbound"}
    if v2:
        rec["http.request.method"] = get_path(ctx, ("http", "method"))
        rec["url.path"] = get_path(ctx, ("http", "path")) or obj.get("rawPath")
        rec["client.address"] = get_path(ctx, ("http", "sourceIp"))
        rec["user_agent.original"] = get_path(ctx, ("http", "userAgent"))
        rec["in.timestamp"] = ctx.get("timeEpoch")
        rec["http.route"] = obj.get("routeKey")
        if obj.get("rawQueryString"):
            rec["in.query"] = str(obj["rawQueryString"])
        cookies = obj.get("cookies")
        if isinstance(cookies, list) and cookies:
            rec["in.cookie"] = "; ".join(str(c) for c in cookies)
        cert = get_path(ctx, ("authentication", "clientCert"))
        jwt = get_path(ctx, ("authorizer", "jwt"))
        if isinstance(jwt, dict):
            raw_claims = jwt.get("claims")
            claims: dict[str, Any] = dict(raw_claims) if isinstance(raw_claims, dict) else {}
            scopes = jwt.get("scopes")
            if isinstance(scopes, list) and "scope" not in claims:
                claims = {**claims, "scope": " ".join(str(s) for s in scopes)}
            rec["in.jwt_claims"] = claims
            rec["authn.mechanism"] = "jwt"
            rec["authn.result"] = "success"
            rec["authz.engine"] = "apigw_authorizer"
    else:
        rec["http.request.method"] = obj.get("httpMethod")
        rec["url.path"] = obj.get("path")
        rec["http.route"] = obj.get("resource")
        rec["client.address"] = get_path(ctx, ("identity", "sourceIp"))
        rec["user_agent.original"] = get_path(ctx, ("identity", "userAgent")) or headers.get("user-agent")
        rec["in.timestamp"] = ctx.get("requestTimeEpoch")
        qs = obj.get("queryStringParameters")
        if isinstance(qs, dict) and qs:
            rec["in.query"] = "&".join(f"{k}={v}" for k, v in qs.items())
        if headers.get("cookie"):
            rec["in.cookie"] = headers["cookie"]
        cert = get_path(ctx, ("identity", "clientCert"))
        authorizer = ctx.get("authorizer")
        if isinstance(authorizer, dict) and authorizer:
            v1_claims = authorizer.get("claims")
            if isinstance(v1_claims, dict):
                rec["in.jwt_claims"] = v1_claims
                rec["authn.mechanism"] = "jwt"
            rec["authn.result"] = "success"
            rec["authz.engine"] = "apigw_authorizer"
            if authorizer.get("principalId"):
                rec["credential.id"] = str(authorizer["principalId"])
                rec["credential.kind"] = "apigw_principal"
    if isinstance(cert, dict):
        rec["in.cert_subject"] = cert.get("subjectDN")
        rec["in.cert_issuer"] = cert.get("issuerDN")
        rec["in.cert_serial"] = cert.get("serialNumber")
        rec["in.cert_not_after"] = get_path(cert, ("validity", "notAfter"))
        rec["authn.mechanism"] = rec.get("authn.mechanism") or "mtls"
    rec["server.address"] = ctx.get("domainName") or headers.get("host")
    if ctx.get("requestId"):
        rec["in.request_id"] = str(ctx["requestId"])
        rec["in.request_id_source"] = "apigw.requestContext.requestId"
    if headers.get("x-amzn-trace-id"):
        rec["in.x-amzn-trace-id"] = headers["x-amzn-trace-id"]
    if headers.get("traceparent"):
        rec["in.traceparent"] = headers["traceparent"]
    if headers.get("x-amz-cf-id"):
        rec["in.edge_request_id"] = headers["x-amz-cf-id"]
    if headers.get("x-forwarded-for"):
        rec["http.request.header.x-forwarded-for"] = headers["x-forwarded-for"]
    if headers.get("authorization"):
        rec["in.authorization"] = headers["authorization"]
    if not rec.get("http.request.method") and not rec.get("url.path"):
        raise Reject("proxy event without method or path")
    rec["raw"] = flatten(obj)
    return {k: v for k, v in rec.items() if v is not None}


def _make(options: FormatOptions) -> Parser:
    return _parse


def _is_proxy_event(obj: dict[str, Any]) -> bool:
    return get_path(obj, ("requestContext", "requestId")) is not None and (
        "httpMethod" in obj or get_path(obj, ("requestContext", "http", "method")) is not None)


def _detect(lines: list[str]) -> float:
    return 0.85 * json_object_share(lines, _is_proxy_event)


FORMAT = LogFormat(
    name="apigw_lambda_event",
    layer="backend",
    product="aws-lambda",
    kind="json",
    doc="AWS API Gateway proxy-integration events (payload 1.0 and 2.0) as received by a Lambda backend.",
    detect=_detect,
    make_parser=_make,
)
