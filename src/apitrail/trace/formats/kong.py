"""Kong Gateway log serializer (``kong.log.serialize``), as written by the file-log / http-log / tcp-log plugins.

One JSON object per request: ``request`` (``method``, ``uri``, ``url``, ``headers``, ``querystring``, ``tls``
with ``version``, ``cipher``, ``client_verify`` = nginx's ``$ssl_client_verify``), ``response`` (``status``,
``headers``), ``latencies`` (ms), ``client_ip``, ``started_at`` (epoch ms), ``upstream_uri``, ``upstream_status``,
``tries`` (retries), ``route``, ``service``, ``consumer``, ``authenticated_entity`` (the credential, in practice
``{"id": ...}``), ``source`` (``kong`` when Kong produced the response itself, ``upstream`` otherwise), and with
tracing plugins ``trace_id`` (a string or a table keyed by propagation format) and ``correlation_id``.

Kong redacts only ``authorization`` and ``proxy-authorization`` request headers (to ``REDACTED``); ``apikey``
headers and query strings and cookies stay raw, so the leak detector runs over every header.
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
        VField("in.timestamp", ("started_at",)),
        VField("http.request.method", ("request", "method")),
        VField("in.url", ("request", "uri")),
        VField("http.response.status_code", ("response", "status"), "int"),
        VField("client.address", ("client_ip",)),
        VField("server.address", ("request", "headers", "host")),
        VField("user_agent.original", ("request", "headers", "user-agent")),
        VField("http.request.header.x-forwarded-for", ("request", "headers", "x-forwarded-for")),
        VField("duration", ("latencies", "request"), "dur_ms"),
        VField("in.upstream_status", ("upstream_status",)),
        VField("http.route", ("route", "paths", "0")),
        VField("in.request_id", ("response", "headers", "x-kong-request-id"), label="x-kong-request-id"),
        VField("in.request_id", ("request", "headers", "x-request-id"), label="x-request-id"),
        VField("in.request_id", ("correlation_id",), label="kong.correlation_id"),
        VField("in.request_id", ("request", "id"), label="kong.request.id"),
        VField("in.traceparent", ("request", "headers", "traceparent")),
        VField("in.trace_id", ("trace_id",), label="trace_id"),
        VField("tls.protocol.version", ("request", "tls", "version")),
        VField("in.cert_verify", ("request", "tls", "client_verify")),
        VField("credential.id", ("authenticated_entity", "id")),
        VField("consumer.id", ("consumer", "username")),
        VField("consumer.id", ("consumer", "id")),
        VField("failure.origin", ("source",), "map", mapping=(("kong", "self"), ("upstream", "upstream"),
                                                             ("exit", "self"), ("error", "self"),
                                                             ("service", "upstream"))),
        VField("in.b3", ("request", "headers", "b3")),
        VField("in.x-b3-traceid", ("request", "headers", "x-b3-traceid")),
        VField("in.x-amzn-trace-id", ("request", "headers", "x-amzn-trace-id")),
        VField("in.authorization", ("request", "headers", "authorization")),
        VField("in.api_key", ("request", "headers", "apikey")),
        VField("in.api_key", ("request", "headers", "x-api-key")),
        VField("in.cookie", ("request", "headers", "cookie")),
    ),
    # credential/consumer need the Python extra (credential.kind, authn.result); trace_id may be a table
    slow_if=(("request", "querystring"), ("authenticated_entity",), ("consumer",), ("tries", "1")),
    require_any=("request", "started_at"),
)


def _extra(obj: Any, rec: dict[str, Any]) -> None:
    tid = obj.get("trace_id")
    if isinstance(tid, dict):  # Kong 3.x: {"w3c": "...", "b3": "...", "datadog": "..."}
        for key in ("w3c", "b3", "aws", "gcp", "jaeger", "ot"):
            if isinstance(tid.get(key), str):
                rec["in.trace_id"], rec["in.trace_id_key"] = tid[key], "trace_id"
                break
    if rec.get("credential.id"):
        rec["credential.kind"] = "kong_credential"
        rec.setdefault("authn.result", "success")
    consumer = obj.get("consumer")
    if isinstance(consumer, dict) and (consumer.get("username") or consumer.get("id")):
        rec["consumer.id"] = str(consumer.get("username") or consumer.get("id"))
    request = obj.get("request")
    qs = request.get("querystring") if isinstance(request, dict) else None
    if isinstance(qs, dict) and qs:
        for key in ("apikey", "api_key", "api-key"):
            if isinstance(qs.get(key), str):
                rec["in.api_key"], rec["in.token_location"] = qs[key], "query"
        if isinstance(qs.get("access_token"), str):
            rec["in.jwt"], rec["in.token_location"] = qs["access_token"], "query"
    tries = obj.get("tries")
    if isinstance(tries, list) and len(tries) > 1 and "in.upstream_status" not in rec:
        codes = [str(t.get("code")) for t in tries if isinstance(t, dict) and t.get("code") is not None]
        last = tries[-1]
        response = obj.get("response")
        status = response.get("status") if isinstance(response, dict) else None
        if isinstance(last, dict) and last.get("code") is None and status is not None:
            codes.append(str(status))  # the last try answered with the final status
        if codes:
            rec["upstream.status_codes"] = ", ".join(codes)


def _make(options: FormatOptions) -> Parser:
    return parser_from_vector(VECTOR, _extra)


def _detect(lines: list[str]) -> float:
    return json_keys_score(lines, ["request/method", "response/status"],
                           ["latencies", "started_at", "client_ip", "upstream_uri", "tries", "route", "service"])


FORMAT = LogFormat(
    name="kong",
    layer="gateway",
    product="kong",
    kind="json",
    doc="Kong Gateway log serializer JSON (file-log, http-log, tcp-log plugins).",
    detect=_detect,
    make_parser=_make,
    vector=VECTOR,
)
