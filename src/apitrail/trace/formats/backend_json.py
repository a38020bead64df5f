"""Backend application JSON logs in the common dialects, with their trace-id key drift.

The same concept is logged under different keys by different stacks:

=============================================  =====================================  ===============
stack                                          trace / span keys                      ``trace.source``
=============================================  =====================================  ===============
OTel Java agent MDC (logback, log4j)           ``trace_id``, ``span_id``              mdc
Spring Sleuth / Micrometer (logstash encoder)  ``traceId``, ``spanId``                mdc
ECS loggers (ecs-logging-*)                    ``trace.id``, ``span.id`` (dotted or   ecs
                                               nested), ``transaction.id``
OTel Python ``LoggingInstrumentor``            ``otelTraceID``, ``otelSpanID``        otel
                                               (``"0"`` when there is no span)
Google Cloud structured logging                ``logging.googleapis.com/trace``       gcp
                                               (``projects/P/traces/T``), ``.../spanId``
=============================================  =====================================  ===============

Request fields are read from ECS/OTel names (``http.request.method``, ``url.path``,
``http.response.status_code``, ``client.ip``) and common flat keys (``method``, ``path``, ``status``,
``request_id``). Timestamps: ``@timestamp``, ``timestamp``, ``time``, ``ts``. ``service.name`` becomes
``hop.product``. A line without any of these keys is rejected rather than guessed.
"""

from __future__ import annotations

from typing import Any

from apitrail.trace.formats._base import FormatOptions, LogFormat, Parser, Vector, VField, get_path, parser_from_vector

_TRACE_KEYS = (("trace_id", "trace_id"), ("traceId", "traceId"), ("trace.id", "trace.id"), (("trace", "id"), "trace.id"),
               ("otelTraceID", "otelTraceID"), ("logging.googleapis.com/trace", "logging.googleapis.com/trace"))
_SPAN_KEYS = ("span_id", "spanId", "span.id", ("span", "id"), "otelSpanID", "logging.googleapis.com/spanId")


def _src(key: str | tuple[str, ...]) -> tuple[str, ...]:
    return key if isinstance(key, tuple) else (key,)


VECTOR = Vector(
    kind="json",
    fields=(
        VField("in.timestamp", ("ts",)),
        VField("in.timestamp", ("time",)),
        VField("in.timestamp", ("timestamp",)),
        VField("in.timestamp", ("asctime",)),  # python-json-logger (local time, "2024-05-02 09:00:00,123")
        VField("in.timestamp", ("@timestamp",)),
        VField("http.request.method", ("method",)),
        VField("http.request.method", ("http_method",)),
        VField("http.request.method", ("http.request.method",)),
        VField("http.request.method", ("http", "request", "method")),
        VField("url.path", ("path",)),
        VField("url.path", ("url.path",)),
        VField("url.path", ("url", "path")),
        VField("http.route", ("http.route",)),
        VField("http.route", ("route",)),
        VField("http.response.status_code", ("status",), "int"),
        VField("http.response.status_code", ("status_code",), "int"),
        VField("http.response.status_code", ("http.response.status_code",), "int"),
        VField("http.response.status_code", ("http", "response", "status_code"), "int"),
        VField("client.address", ("remote_addr",)),
        VField("client.address", ("client.ip",)),
        VField("client.address", ("client", "ip")),
        VField("client.address", ("client.address",)),
        VField("user_agent.original", ("user_agent.original",)),
        VField("duration", ("duration_ms",), "dur_ms"),
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
        *(VField("in.trace_id", _src(k), label=label) for k, label in _TRACE_KEYS),
        *(VField("in.span_id", _src(k)) for k in _SPAN_KEYS),
    ),
    slow_if=(("event.duration",), ("logging.googleapis.com/trace",), ("traceparent",), ("user.id",),
             ("enduser.id",)),
    require_any=("@timestamp", "timestamp", "time", "ts", "trace_id", "traceId", "trace.id", "trace",
                 "otelTraceID", "logging.googleapis.com/trace", "message", "msg"),
)

_KEYS = {"@timestamp", "timestamp", "time", "ts", "level", "log.level", "message", "msg", "logger", "logger_name",
         "log.logger", "thread_name", "service.name"}
_TRACEISH = {"trace_id", "traceId", "trace.id", "otelTraceID", "logging.googleapis.com/trace", "span_id", "spanId",
             "span.id", "transaction.id", "otelSpanID"}


def _extra(obj: Any, rec: dict[str, Any]) -> None:
    ns = get_path(obj, ("event.duration",))
    if ns is not None:
        try:
            rec["duration"] = float(ns) / 1e9
        except (TypeError, ValueError):
            rec.pop("duration", None)
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
