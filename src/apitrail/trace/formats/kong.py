"""Kong Gateway log serializer (``kong.log.serialize``), as written by the file-log / http-log / tcp-log plugins.

One JSON object per request (https://developer.konghq.com/plugins/file-log/ "Log format", and the PDK reference of
``kong.log.serialize``): ``request`` (``id`` (3.5+, the value Kong sends upstream and returns as
``X-Kong-Request-Id``), ``method``, ``uri``, ``url``, ``headers`` (lower-cased names; a header sent several times
is a list, folded here as ``a, b``), ``querystring``, ``tls`` with ``version``, ``cipher``, ``client_verify`` =
nginx's ``$ssl_client_verify`` or the mtls-auth verdict ``FAILED:<reason>``), ``response`` (``status``,
``headers``), ``latencies`` (ms: ``request``, ``kong``, ``proxy``, 3.7+ ``receive``), ``client_ip``,
``started_at`` (epoch ms), ``upstream_uri``, ``upstream_status`` (nginx's ``$upstream_status``, ``"502, 200"``
after a retry; empty when Kong answered itself), ``tries`` (balancer attempts), ``route``, ``service``,
``consumer``, ``authenticated_entity`` (the credential: ``id``, ``consumer_id``), ``workspace`` /
``workspace_name``, ``source`` (3.x: ``kong`` when Kong produced the response itself, ``upstream`` otherwise),
and with tracing plugins ``trace_id``: in 3.x a table keyed by propagation format (``w3c``, ``b3``, ``aws``,
``gcp``, ``jaeger``, ``ot``, ``datadog``; the first of w3c, b3, aws, gcp, jaeger, ot is taken and its format is
the ``trace.source``), a plain string before. The correlation-id plugin adds ``correlation_id``.

The stream subsystem (tcp/tls/udp routes) writes ``session`` (``status``, ``tls``, ``received``, ``sent``)
and ``upstream`` instead of ``request``/``response``, and ``latencies.session``; ``session.status`` is the
hop's status code (200, or 400/403/500/502/503 as nginx stream's ``$status``).

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
    get_path,
    json_keys_score,
    parser_from_vector,
)

_HEADERS = ("host", "user-agent", "x-forwarded-for", "x-request-id", "traceparent", "b3", "x-b3-traceid",
            "x-amzn-trace-id", "authorization", "apikey", "x-api-key", "cookie")
_HEADER_SOURCES = (*(("request", "headers", h) for h in _HEADERS), ("response", "headers", "x-kong-request-id"))

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
        # stream subsystem (tcp-log/file-log on a tcp/tls route): ``session`` instead of request/response
        VField("http.response.status_code", ("session", "status"), "int"),
        VField("tls.protocol.version", ("session", "tls", "version")),
        VField("in.cert_verify", ("session", "tls", "client_verify")),
        VField("duration", ("latencies", "session"), "dur_ms"),
    ),
    # credential/consumer need the Python extra (credential.kind, authn.result); trace_id may be a table; a header
    # sent several times is logged as a list (its second element present): Python joins it
    slow_if=(("request", "querystring"), ("authenticated_entity",), ("consumer",), ("tries", "1"),
             *((*src, "1") for src in _HEADER_SOURCES)),
    require_any=("request", "started_at", "session"),
)


# Kong 3.x ``trace_id`` table key -> trace.source (``datadog`` is a 64-bit decimal id: not a W3C trace id)
_TRACE_FORMATS = (("w3c", "w3c"), ("b3", "b3"), ("aws", "xray"), ("gcp", "gcp"), ("jaeger", "mdc"), ("ot", "mdc"))


def _joined_headers(obj: dict[str, Any]) -> dict[str, Any] | None:
    """``obj`` with every list-valued header joined as HTTP folds a repeated header (``a, b``); None if none."""
    changed = False
    out = dict(obj)
    for part in ("request", "response"):
        sub = obj.get(part)
        if not isinstance(sub, dict):
            continue
        headers = sub.get("headers")
        if isinstance(headers, dict) and any(isinstance(v, list) for v in headers.values()):
            joined = {k: ", ".join(str(x) for x in v if x is not None) if isinstance(v, list) else v
                      for k, v in headers.items()}
            out[part] = {**sub, "headers": joined}
            changed = True
    return out if changed else None


def _extra(obj: Any, rec: dict[str, Any]) -> None:
    folded = _joined_headers(obj)
    if folded is not None:
        from apitrail.trace.normalize.casts import py_cast  # local: normalize imports the formats package
  # the same mapping over the folded headers (same precedence as the vector)
        for f in VECTOR.fields:
            if f.source[:2] in (("request", "headers"), ("response", "headers")):
                value = py_cast(get_path(folded, f.source), f.cast, f.mapping)
                if value is not None:
                    rec[f.target] = value
        for f in VECTOR.fields:  # the request-id precedence: the last present candidate wins
            if f.target == "in.request_id":
                value = py_cast(get_path(folded, f.source), f.cast, f.mapping)
                if value is not None:
                    rec["in.request_id"], rec["in.request_id_source"] = value, f.label
    tid = obj.get("trace_id")
    if isinstance(tid, dict):  # Kong 3.x tracing plugins: {"w3c": "<32 hex>", "b3": "...", "datadog": "..."}
        rec.pop("in.trace_id", None)
        rec.pop("in.trace_id_key", None)
        for key, source in _TRACE_FORMATS:
            if isinstance(tid.get(key), str) and tid[key].strip():
                rec["trace.id"], rec["trace.source"] = tid[key].strip(), source
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
    http = json_keys_score(lines, ["request/method", "response/status"],
                           ["latencies", "started_at", "client_ip", "upstream_uri", "tries", "route", "service"])
    stream = json_keys_score(lines, ["session/status", "started_at", "latencies/session"],
                             ["client_ip", "tries", "route", "service", "upstream"])
    return max(http, stream)


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
