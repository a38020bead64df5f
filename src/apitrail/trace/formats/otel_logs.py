"""OpenTelemetry log records in JSON: OTLP/JSON exports (``resourceLogs``) and flat log records.

OTLP/JSON (the protobuf JSON mapping, as written by the collector's file exporter): ``resourceLogs[].resource
.attributes[]`` and ``scopeLogs[].logRecords[]`` with ``timeUnixNano``, ``traceId``, ``spanId``, ``flags``,
``severityText``, ``body``, and ``attributes[]`` as ``{"key": ..., "value": {"stringValue" | "intValue" | ...}}``.
Trace and span ids are hex (OTLP/JSON writes them in either case; both are accepted and lower-cased).
HTTP attributes follow the OTel semantic conventions (``http.request.method``, ``url.path``,
``http.response.status_code``, ``client.address``, ``http.route``, ``user_agent.original``, ``server.address``).

A line is one hop: an export line holding several log records yields the first record that carries HTTP or
trace data (else the first record); the record count is kept in ``raw``. Flat records (the log data model's
``Timestamp``, ``TraceId``, ``SpanId``, ``Attributes``, ``Resource``; either case) map the same way.
"""

from __future__ import annotations

from typing import Any

from apitrail.trace.formats._base import FormatOptions, LogFormat, Parser, Reject, flatten, loads_object

_HTTP_KEYS = {
    "http.request.method": "http.request.method",
    "http.method": "http.request.method",
    "url.path": "url.path",
    "http.target": "in.url",
    "http.route": "http.route",
    "http.response.status_code": "http.response.status_code",
    "http.status_code": "http.response.status_code",
    "client.address": "client.address",
    "net.peer.ip": "network.peer.address",
    "network.peer.address": "network.peer.address",
    "server.address": "server.address",
    "user_agent.original": "user_agent.original",
    "http.request.header.x-request-id": "in.request_id",
    "http.request.header.traceparent": "in.traceparent",
    "http.request.header.authorization": "in.authorization",
    "enduser.id": "in.enduser",
}


def _any_value(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    for key in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        try:
            return int(v["intValue"])
        except (TypeError, ValueError):
            return v["intValue"]
    if "arrayValue" in v:
        return [_any_value(x) for x in (v["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in v:
        return {kv.get("key"): _any_value(kv.get("value")) for kv in (v["kvlistValue"] or {}).get("values", [])
                if isinstance(kv, dict)}
    return None


def _attrs(items: Any) -> dict[str, Any]:
    if isinstance(items, dict):  # flat records use a plain object
        return items
    out: dict[str, Any] = {}
    if isinstance(items, list):
        for kv in items:
            if isinstance(kv, dict) and isinstance(kv.get("key"), str):
                out[kv["key"]] = _any_value(kv.get("value"))
    return out


def _pick(*values: Any) -> Any:
    return next((v for v in values if v not in (None, "")), None)


def _record(lr: dict[str, Any], resource: dict[str, Any], rec: dict[str, Any]) -> None:
    attrs = _attrs(_pick(lr.get("attributes"), lr.get("Attributes")) or [])
    ts = _pick(lr.get("timeUnixNano"), lr.get("observedTimeUnixNano"), lr.get("Timestamp"), lr.get("timestamp"),
               lr.get("ObservedTimestamp"))
    if ts is not None:
        rec["in.timestamp"] = int(ts) if isinstance(ts, str) and ts.isdigit() else ts
    tid = _pick(lr.get("traceId"), lr.get("TraceId"), lr.get("trace_id"))
    if isinstance(tid, str):
        rec["in.trace_id"], rec["in.trace_id_key"] = tid, "otel"
    sid = _pick(lr.get("spanId"), lr.get("SpanId"), lr.get("span_id"))
    if isinstance(sid, str):
        rec["in.span_id"] = sid
    for key, target in _HTTP_KEYS.items():
        if attrs.get(key) not in (None, ""):
            rec[target] = attrs[key]
    if "in.request_id" in rec:
        rec["in.request_id_source"] = "x-request-id"
    if rec.get("http.response.status_code") is not None:
        try:
            rec["http.response.status_code"] = int(rec["http.response.status_code"])
        except (TypeError, ValueError):
            rec.pop("http.response.status_code")
    enduser = rec.pop("in.enduser", None)
    if enduser is not None:
        from apitrail.trace.secrets import fingerprint

        rec["enduser.id_fp"] = fingerprint(str(enduser))
    if resource.get("service.name"):
        rec["hop.product"] = str(resource["service.name"])
    if resource.get("service.instance.id") or resource.get("host.name"):
        rec["hop.instance"] = str(resource.get("service.instance.id") or resource.get("host.name"))


def _parse(line: str) -> dict[str, Any] | None:
    obj = loads_object(line)
    rec: dict[str, Any] = {"raw": flatten(obj), "in.raw_json": obj}
    if "resourceLogs" in obj:
        rls = obj["resourceLogs"]
        if not isinstance(rls, list):
            raise Reject("resourceLogs is not a list")
        candidates: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for rl in rls:
            if not isinstance(rl, dict):
                continue
            resource = _attrs((rl.get("resource") or {}).get("attributes") if isinstance(rl.get("resource"), dict)
                              else [])
            for sl in rl.get("scopeLogs") or rl.get("instrumentationLibraryLogs") or []:
                if isinstance(sl, dict):
                    for lr in sl.get("logRecords") or []:
                        if isinstance(lr, dict):
                            candidates.append((lr, resource))
        if not candidates:
            raise Reject("OTLP export without log records")
        best = next((c for c in candidates if c[0].get("traceId") or _attrs(c[0].get("attributes") or [])
                     .keys() & _HTTP_KEYS.keys()), candidates[0])
        _record(best[0], best[1], rec)
        rec["raw"]["otlp.log_record_count"] = str(len(candidates))
        return rec
    if any(k in obj for k in ("TraceId", "traceId", "SeverityText", "severityText", "timeUnixNano", "Body", "body")):
        resource = _attrs(_pick(obj.get("Resource"), obj.get("resource")) or {})
        if isinstance(resource.get("attributes"), list):
            resource = _attrs(resource["attributes"])
        _record(obj, resource, rec)
        return rec
    raise Reject("not an OpenTelemetry log record")


def _make(options: FormatOptions) -> Parser:
    return _parse


def _detect(lines: list[str]) -> float:
    import json

    score = 0.0
    n = 0
    for line in lines[:10]:
        n += 1
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            if "resourceLogs" in obj:
                score += 1.0
            elif ("TraceId" in obj or "traceId" in obj) and ("SeverityText" in obj or "severityText" in obj
                                                              or "Body" in obj or "body" in obj):
                score += 0.9
    return score / n if n else 0.0


FORMAT = LogFormat(
    name="otel_logs",
    layer="backend",
    product="otel",
    kind="json",
    doc="OpenTelemetry log records as OTLP/JSON (resourceLogs) or flat JSON records.",
    detect=_detect,
    make_parser=_make,
)
