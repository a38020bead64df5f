"""OpenTelemetry log records in JSON: OTLP/JSON exports (``resourceLogs``) and flat log records.

OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding; the collector's file exporter writes
one ``ExportLogsServiceRequest`` per line): ``resourceLogs[].resource.attributes[]`` and
``scopeLogs[].logRecords[]`` (``instrumentationLibraryLogs`` in old exporters) with ``timeUnixNano`` (int64 as a
decimal string; ``0`` means unknown and ``observedTimeUnixNano`` is used), ``traceId``, ``spanId``, ``flags`` (the
low 8 bits are the W3C trace flags), ``severityText``, ``body``, and ``attributes[]`` as ``{"key": ..., "value":
{"stringValue" | "intValue" (a string) | "doubleValue" | "boolValue" | "bytesValue" | "arrayValue" |
"kvlistValue"}}``. Trace and span ids are hex in OTLP/JSON (either case; lower-cased); ids written in the plain
protobuf JSON mapping's base64 (24/12 characters) are decoded. HTTP attributes follow the semantic conventions
(``http.request.method``, ``url.path``, ``url.full``, ``url.query``, ``http.route``,
``http.response.status_code``, ``client.address``, ``network.peer.address``, ``user_agent.original``,
``server.address``, ``http.request.header.<name>`` -- a string array, repeated values joined) and their older
names (``http.method``, ``http.target``, ``http.url``, ``http.status_code``, ``http.client_ip``,
``http.user_agent``, ``net.peer.ip``, ``net.sock.peer.addr``).

An export line holding several log records (a batch: every ``logRecords[]`` of every ``scopeLogs[]`` of every
``resourceLogs[]``) gives one hop per log record, numbered in that order by ``source.record``; each record carries
its resource's attributes (``service.name``, ``service.instance.id``/``host.name``). A record's ``raw`` (and
``raw.unmapped``) is the log record itself with its ``resource`` and ``scope`` beside it, so a secret in one record
is reported and fingerprinted on that record's hop. Entries of ``logRecords`` that are not objects are skipped.
Flat records (the log data model's
``Timestamp``, ``TraceId``, ``SpanId``, ``TraceFlags``, ``Attributes``, ``Resource``; either case) map the same way.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from apitrail.trace.formats._base import FormatOptions, LineParser, LogFormat, Reject, flatten, loads_object

_HEX = re.compile(r"[0-9a-fA-F]*")

_HTTP_KEYS = {
    "http.request.method": "http.request.method",
    "http.method": "http.request.method",
    "url.path": "url.path",
    "http.target": "in.url",
    "url.full": "in.url",
    "http.url": "in.url",
    "url.query": "in.query",
    "http.client_ip": "client.address",
    "http.user_agent": "user_agent.original",
    "net.sock.peer.addr": "network.peer.address",
    "http.request.header.x-forwarded-for": "http.request.header.x-forwarded-for",
    "http.request.header.x-amzn-trace-id": "in.x-amzn-trace-id",
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


def _id_hex(value: Any, size: int) -> Any:
    """OTLP/JSON writes ids as hex; a protobuf JSON mapping that did not follow OTLP writes base64 (24 or 12
    characters for 16 or 8 bytes): decoded to hex. Anything else is kept for the core to judge."""
    if isinstance(value, str) and len(value) == (24 if size == 16 else 12) and not _HEX.fullmatch(value):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return value
        if len(raw) == size:
            return raw.hex()
    return value


def _first(value: Any) -> Any:
    """Semantic-convention header attributes are string arrays: the values of a repeated header, joined."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value if v is not None) or None
    return value


def _record(lr: dict[str, Any], resource: dict[str, Any], rec: dict[str, Any]) -> None:
    attrs = _attrs(_pick(lr.get("attributes"), lr.get("Attributes")) or [])
    # timeUnixNano 0 means "unknown": the observed time is then the record's time
    ts = _pick(*(v for v in (lr.get("timeUnixNano"), lr.get("observedTimeUnixNano"), lr.get("Timestamp"),
                             lr.get("timestamp"), lr.get("ObservedTimestamp")) if v not in (0, "0")))
    if ts is not None:
        rec["in.timestamp"] = int(ts) if isinstance(ts, str) and ts.isdigit() else ts
    tid = _id_hex(_pick(lr.get("traceId"), lr.get("TraceId"), lr.get("trace_id")), 16)
    if isinstance(tid, str):
        rec["in.trace_id"], rec["in.trace_id_key"] = tid, "otel"
    sid = _id_hex(_pick(lr.get("spanId"), lr.get("SpanId"), lr.get("span_id")), 8)
    if isinstance(sid, str):
        rec["in.span_id"] = sid
    flags = _pick(lr.get("flags"), lr.get("TraceFlags"))
    if isinstance(flags, int) and not isinstance(flags, bool) and 0 <= flags and isinstance(tid, str):
        rec["trace.flags"] = f"{flags & 0xFF:02x}"  # the W3C trace flags are the low 8 bits
    for key, target in _HTTP_KEYS.items():
        value = _first(attrs.get(key))
        if value not in (None, ""):
            rec[target] = value
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


def _export_records(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Every log record of an ``ExportLogsServiceRequest``, in document order, each with its resource."""
    rls = obj["resourceLogs"]
    if not isinstance(rls, list):
        raise Reject("resourceLogs is not a list")
    out: list[dict[str, Any]] = []
    for rl in rls:
        if not isinstance(rl, dict):
            continue
        res_obj = rl.get("resource")
        resource = _attrs(res_obj.get("attributes") if isinstance(res_obj, dict) else [])
        for sl in rl.get("scopeLogs") or rl.get("instrumentationLibraryLogs") or []:
            if not isinstance(sl, dict):
                continue
            lrs = sl.get("logRecords")
            for lr in lrs if isinstance(lrs, list) else []:
                if not isinstance(lr, dict):
                    continue
                # the record as its own source object: resource and scope beside its fields
                src: dict[str, Any] = dict(lr)
                if res_obj is not None:
                    src["resource"] = res_obj
                if sl.get("scope") is not None:
                    src["scope"] = sl["scope"]
                rec: dict[str, Any] = {"raw": flatten(src), "in.raw_json": src}
                _record(lr, resource, rec)
                out.append(rec)
    if not out:
        raise Reject("OTLP export without log records")
    return out


def _parse(line: str) -> dict[str, Any] | list[dict[str, Any]] | None:
    obj = loads_object(line)
    if "resourceLogs" in obj:
        records = _export_records(obj)
        return records if len(records) > 1 else records[0]
    rec: dict[str, Any] = {"raw": flatten(obj), "in.raw_json": obj}
    if any(k in obj for k in ("TraceId", "traceId", "SeverityText", "severityText", "timeUnixNano", "Body", "body")):
        resource = _attrs(_pick(obj.get("Resource"), obj.get("resource")) or {})
        if isinstance(resource.get("attributes"), list):
            resource = _attrs(resource["attributes"])
        _record(obj, resource, rec)
        return rec
    raise Reject("not an OpenTelemetry log record")


def _make(options: FormatOptions) -> LineParser:
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
