"""Backend application JSON logs in the common dialects, with their trace-id key drift.

The same concept is logged under different keys by different stacks:

=============================================  =====================================  ===============
stack                                          trace / span keys                      ``trace.source``
=============================================  =====================================  ===============
OTel Java agent MDC (logback, log4j), OTel     ``trace_id``, ``span_id``              mdc
JS pino/winston instrumentations
Spring Sleuth / Micrometer Tracing             ``traceId``, ``spanId``                mdc
(logstash encoder, Spring structured logging)
ECS loggers (ecs-logging-*)                    ``trace.id``, ``span.id`` (dotted or   ecs
                                               nested ``{"trace": {"id": ...}}``)
OTel Python ``LoggingInstrumentor``            ``otelTraceID``, ``otelSpanID``        otel
                                               (``"0"`` when there is no span)
Google Cloud structured logging                ``logging.googleapis.com/trace``       gcp
                                               (``projects/P/traces/T``), ``.../spanId``
Serilog (CompactJsonFormatter / JsonFormatter) ``@tr``, ``@sp`` / ``TraceId``,        mdc
and .NET JsonConsoleFormatter                  ``SpanId`` (top level or in ``Scopes``)
AWS Lambda Powertools                          ``xray_trace_id`` (X-Ray), and         xray
                                               ``correlation_id`` (request id)
=============================================  =====================================  ===============

Request fields are read from ECS/OTel names (``http.request.method``, ``url.path``, ``url.original``,
``http.response.status_code``, ``client.ip``, ``user_agent.original``, ``http.request.id``, ``event.duration`` in
ns; dotted or nested), common flat keys (``method``, ``path``, ``status``, ``request_id``), pino-http's ``req``
(``method``, ``url``, ``remoteAddress``, ``headers.x-request-id``, ``headers.traceparent``), ``res.statusCode``
and ``responseTime`` (ms), Cloud Logging's ``httpRequest`` (``requestMethod``, ``requestUrl``, ``status``,
``remoteIp``, ``userAgent``, ``latency`` as ``"0.012s"``), Serilog.AspNetCore's ``RequestMethod``,
``RequestPath``, ``StatusCode``, ``Elapsed`` (ms; top level or in ``Properties``) and ASP.NET Core's hosting
``State`` (``Method``, ``Path``, ``StatusCode``, ``ElapsedMilliseconds``). Timestamps: ``@timestamp``,
``timestamp`` (also Cloud Logging's ``{"seconds", "nanos"}``), ``time``, ``ts``, ``Timestamp``, ``@t``; ISO 8601 or
epoch s/ms/us/ns. ``service.name`` becomes ``hop.product``. A line without any of these keys is rejected rather
than guessed.
"""

from __future__ import annotations

import re
from typing import Any

from apitrail.trace.formats._base import FormatOptions, LogFormat, Parser, Vector, VField, get_path, parser_from_vector

_TRACE_KEYS = (("@tr", "@tr"), ("TraceId", "TraceId"), ("trace_id", "trace_id"), ("traceId", "traceId"),
               ("trace.id", "trace.id"), (("trace", "id"), "trace.id"), ("otelTraceID", "otelTraceID"),
               ("logging.googleapis.com/trace", "logging.googleapis.com/trace"))
_SPAN_KEYS = ("@sp", "SpanId", "span_id", "spanId", "span.id", ("span", "id"), "otelSpanID",
              "logging.googleapis.com/spanId")


def _src(key: str | tuple[str, ...]) -> tuple[str, ...]:
    return key if isinstance(key, tuple) else (key,)


VECTOR = Vector(
    kind="json",
    fields=(
        VField("in.timestamp", ("ts",)),
        VField("in.timestamp", ("time",)),
        VField("in.timestamp", ("timestamp",)),
        VField("in.timestamp", ("asctime",)),  # python-json-logger (local time, "2024-05-02 09:00:00,123")
        VField("in.timestamp", ("Timestamp",)),  # .NET JsonConsoleFormatter, Serilog JsonFormatter
        VField("in.timestamp", ("@t",)),  # Serilog CompactJsonFormatter
        VField("in.timestamp", ("@timestamp",)),
        VField("http.request.method", ("method",)),
        VField("http.request.method", ("http_method",)),
        VField("http.request.method", ("http.request.method",)),
        VField("http.request.method", ("http", "request", "method")),
        VField("http.request.method", ("req", "method")),  # pino-http
        VField("http.request.method", ("httpRequest", "requestMethod")),  # Google Cloud structured logging
        VField("http.request.method", ("RequestMethod",)),  # Serilog.AspNetCore request logging
        VField("http.request.method", ("Properties", "RequestMethod")),
        VField("http.request.method", ("State", "Method")),  # ASP.NET Core hosting diagnostics
        VField("url.path", ("RequestPath",)),
        VField("url.path", ("Properties", "RequestPath")),
        VField("url.path", ("State", "Path")),
        VField("in.url", ("req", "url")),
        VField("in.url", ("httpRequest", "requestUrl")),
        VField("in.url", ("url.original",)),
        VField("in.url", ("url", "original")),
        VField("url.path", ("path",)),
        VField("url.path", ("url.path",)),
        VField("url.path", ("url", "path")),
        VField("http.route", ("http.route",)),
        VField("http.route", ("route",)),
        VField("http.response.status_code", ("status",), "int"),
        VField("http.response.status_code", ("status_code",), "int"),
        VField("http.response.status_code", ("http.response.status_code",), "int"),
        VField("http.response.status_code", ("http", "response", "status_code"), "int"),
        VField("http.response.status_code", ("res", "statusCode"), "int"),
        VField("http.response.status_code", ("StatusCode",), "int"),
        VField("http.response.status_code", ("Properties", "StatusCode"), "int"),
        VField("http.response.status_code", ("State", "StatusCode"), "int"),
        VField("http.response.status_code", ("httpRequest", "status"), "int"),
        VField("client.address", ("remote_addr",)),
        VField("client.address", ("client.ip",)),
        VField("client.address", ("client", "ip")),
        VField("client.address", ("client.address",)),
        VField("client.address", ("req", "remoteAddress")),
        VField("client.address", ("httpRequest", "remoteIp")),
        VField("user_agent.original", ("user_agent.original",)),
        VField("user_agent.original", ("user_agent", "original")),
        VField("user_agent.original", ("httpRequest", "userAgent")),
        VField("duration", ("duration_ms",), "dur_ms"),
        VField("duration", ("responseTime",), "dur_ms"),  # pino-http
        VField("duration", ("Elapsed",), "dur_ms"),  # Serilog.AspNetCore
        VField("duration", ("Properties", "Elapsed"), "dur_ms"),
        VField("duration", ("State", "ElapsedMilliseconds"), "dur_ms"),
        VField("duration", ("event.duration",), "dur_us"),  # ECS: nanoseconds; see _extra
        VField("hop.product", ("service.name",)),
        VField("hop.product", ("service", "name")),
        VField("hop.product", ("otelServiceName",)),
        VField("hop.instance", ("host.name",)),
        VField("hop.instance", ("hostname",)),
        VField("in.request_id", ("requestId",), label="requestId"),
        VField("in.request_id", ("request_id",), label="request_id"),
        VField("in.request_id", ("x_request_id",), label="x-request-id"),
        VField("in.request_id", ("http.request.id",), label="http.request.id"),
        VField("in.request_id", ("http", "request", "id"), label="http.request.id"),
        VField("in.request_id", ("req", "headers", "x-request-id"), label="x-request-id"),
        # AWS Lambda Powertools: the correlation id (API Gateway's request id with correlation_id_path)
        VField("in.request_id", ("correlation_id",), label="powertools.correlation_id"),
        VField("in.traceparent", ("req", "headers", "traceparent")),
        VField("in.x-amzn-trace-id", ("xray_trace_id",)),  # AWS Lambda Powertools
        *(VField("in.trace_id", _src(k), label=label) for k, label in _TRACE_KEYS),
        *(VField("in.span_id", _src(k)) for k in _SPAN_KEYS),
    ),
    slow_if=(("event.duration",), ("event", "duration"), ("logging.googleapis.com/trace",), ("traceparent",),
             ("user.id",), ("enduser.id",), ("httpRequest", "latency"), ("timestamp", "seconds"), ("Scopes",)),
    require_any=("@timestamp", "timestamp", "time", "ts", "trace_id", "traceId", "trace.id", "trace",
                 "otelTraceID", "logging.googleapis.com/trace", "message", "msg", "@t", "@tr", "@m", "@mt",
                 "Timestamp", "TraceId", "Message", "MessageTemplate"),
)

_KEYS = {"@timestamp", "timestamp", "time", "ts", "level", "log.level", "message", "msg", "logger", "logger_name",
         "log.logger", "thread_name", "service.name", "@t", "@m", "@mt", "@l", "Timestamp", "Level", "LogLevel",
         "Message", "MessageTemplate", "Category", "severity", "hostname", "pid"}
_TRACEISH = {"trace_id", "traceId", "trace.id", "otelTraceID", "logging.googleapis.com/trace", "span_id", "spanId",
             "span.id", "transaction.id", "otelSpanID", "trace", "@tr", "@sp", "TraceId", "SpanId", "xray_trace_id"}


_GCP_LATENCY = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)s\s*")


def _extra(obj: Any, rec: dict[str, Any]) -> None:
    ns = get_path(obj, ("event.duration",))
    if ns is None:
        ns = get_path(obj, ("event", "duration"))
    if ns is not None:
        try:
            rec["duration"] = float(ns) / 1e9
        except (TypeError, ValueError):
            rec.pop("duration", None)
    latency = get_path(obj, ("httpRequest", "latency"))  # Cloud Logging's Duration as JSON: "0.123s"
    if isinstance(latency, str) and (m := _GCP_LATENCY.fullmatch(latency)):
        rec["duration"] = float(m.group(1))
    ts = obj.get("timestamp")
    if isinstance(ts, dict) and isinstance(ts.get("seconds"), (int, str)):  # {"seconds": ..., "nanos": ...}
        try:
            rec["in.timestamp"] = int(ts["seconds"]) * 1_000_000_000 + int(ts.get("nanos") or 0)
        except ValueError:
            rec.pop("in.timestamp", None)
    scopes = obj.get("Scopes")  # .NET JsonConsoleFormatter with IncludeScopes: ASP.NET Core's request scopes
    if isinstance(scopes, list):
        for scope in scopes:
            if not isinstance(scope, dict):
                continue
            if isinstance(scope.get("TraceId"), str) and "in.trace_id" not in rec:
                rec["in.trace_id"], rec["in.trace_id_key"] = scope["TraceId"], "TraceId"
            if isinstance(scope.get("SpanId"), str) and "in.span_id" not in rec:
                rec["in.span_id"] = scope["SpanId"]
            if isinstance(scope.get("RequestPath"), str) and "url.path" not in rec:
                rec["url.path"] = scope["RequestPath"]
    if isinstance(obj.get("traceparent"), str):
        rec["in.traceparent"] = obj["traceparent"]
    for key in ("user.id", "enduser.id"):
        if obj.get(key) not in (None, ""):
            from apitrail.trace.secrets import fingerprint

            rec["enduser.id_fp"] = fingerprint(str(obj[key]))


def _make(options: FormatOptions) -> Parser:
    return parser_from_vector(VECTOR, _extra)


def _detect(lines: list[str]) -> float:
    import json

    hits = 0.0
    total = 0
    for line in lines[:20]:
        try:
            obj = json.loads(line)
        except ValueError:
            total += 1
            continue
        total += 1
        if isinstance(obj, dict):
            keys = set(obj)
            if keys & _TRACEISH:
                hits += 1
            elif len(keys & _KEYS) >= 2:
                hits += 0.8
    # generic on purpose: a vendor-specific JSON format with a better match wins
    return 0.6 * hits / total if total else 0.0


FORMAT = LogFormat(
    name="backend_json",
    layer="backend",
    product="backend-app",
    kind="json",
    doc="Backend JSON logs: OTel MDC, Spring/logstash, ECS, OTel Python and GCP trace-id dialects.",
    detect=_detect,
    make_parser=_make,
    vector=VECTOR,
)
