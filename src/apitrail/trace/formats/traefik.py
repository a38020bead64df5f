"""Traefik access logs: the JSON format (``accessLog.format: json``) and the CLF-style text format (default).

JSON (v2/v3 keys; v1 keys accepted): ``StartUTC``, ``Duration`` (nanoseconds), ``RouterName`` (v1
``FrontendName``), ``ServiceName``, ``ServiceURL``/``ServiceAddr`` (v1 ``BackendURL``/``BackendAddr``),
``ClientHost``, ``ClientUsername``, ``RequestHost``, ``RequestMethod``, ``RequestPath`` (path and query),
``RequestProtocol``, ``OriginStatus``, ``DownstreamStatus``, ``RetryAttempts``, ``TLSVersion``, ``TLSCipher``,
``TLSClientSubject``, ``TraceId``/``SpanId`` (renamed ``trace_id``/``span_id`` in v3), and one key per logged
header: ``request_<Header>``, ``origin_<Header>``, ``downstream_<Header>`` (each header kept, dropped or
``REDACTED`` by ``accessLog.fields.headers``).

CLF text: ``<ClientHost> - <ClientUsername> [<StartUTC>] "<RequestMethod> <RequestPath> <RequestProtocol>"
<DownstreamStatus> <DownstreamContentSize> "<Referer>" "<User-Agent>" <RequestCount> "<RouterName>"
"<ServiceURL>" <Duration>ms``; an empty value is written ``-`` without quotes.

Identity and failure fields: ``OriginStatus`` is absent when Traefik answered itself (a middleware such as
ForwardAuth, BasicAuth or IPAllowList denied, or no router matched: a 404 without ``RouterName`` is a routing
failure); ``DownstreamStatus`` is what the client got. ``request_X-Request-Id``, ``request_Traceparent``,
``request_X-Amz-Cf-Id`` / ``request_Cf-Ray`` (CDN -> proxy join keys), ``request_X-Forwarded-Client-Cert`` and
``TLSClientSubject`` carry correlation and identity; ``request_Authorization`` and ``request_Cookie`` are secrets
(unless redacted) and only reach ``in.*`` hints.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from apitrail.trace.formats._base import FormatOptions, LogFormat, Reject, flatten, json_keys_score, loads_object
from apitrail.trace.formats._template_utils import (
    Applier,
    CompiledTemplate,
    Record,
    apply_target,
    first_match_score,
    header_applier,
    host_of,
    put,
    put_host,
    put_method,
    put_seconds,
    put_status,
    strip_eol,
    trace_id,
)


def _origin_status(rec: Record, value: str) -> None:
    if value != "0":  # 0: no origin answered
        rec["upstream.status_codes"] = value
        rec["in.upstream_status"] = value


def _timestamp_if_absent(rec: Record, value: str) -> None:
    rec.setdefault("in.timestamp", value)


_JSON_KEYS: dict[str, Applier] = {
    "StartUTC": put("in.timestamp"),
    "StartLocal": _timestamp_if_absent,
    "time": _timestamp_if_absent,
    "Duration": put_seconds(divisor=1e9),
    "RouterName": put("http.route"),
    "FrontendName": put("http.route"),
    "ServiceAddr": put("upstream.address"),
    "BackendAddr": put("upstream.address"),
    "ClientHost": put("client.address"),
    "RequestHost": put_host("server.address"),
    "RequestMethod": put_method,
    "RequestPath": apply_target,
    "DownstreamStatus": put_status,
    "OriginStatus": _origin_status,
    "TLSVersion": put("tls.protocol.version"),
    "TLSClientSubject": put("in.cert_subject"),
    "TraceId": trace_id("traefik.TraceId"),
    "trace_id": trace_id("traefik.trace_id"),
    "SpanId": put("in.span_id"),
    "span_id": put("in.span_id"),
}


# StartUTC before the keys that only fill a gap (StartLocal, time)
_JSON_ORDER = tuple(sorted(_JSON_KEYS.items(), key=lambda kv: kv[0] != "StartUTC"))
_HEADER_CACHE: dict[str, Applier | None] = {}


def _request_header(key: str) -> Applier | None:
    if key not in _HEADER_CACHE:
        _HEADER_CACHE[key] = header_applier(key[8:])
    return _HEADER_CACHE[key]


def _parse_json(line: str) -> Record | None:
    line = line.strip()
    if not line:
        return None
    obj = loads_object(line)
    if not any(k in obj for k in ("DownstreamStatus", "RequestMethod", "RequestPath", "OriginStatus")):
        raise Reject("JSON object has no Traefik access log keys")
    raw = flatten(obj)
    rec: Record = {"raw": raw, "in.raw_json": obj}
    get = raw.get
    for key, applier in _JSON_ORDER:
        value = get(key)
        if value and value != "-":
            applier(rec, value)
    for key, value in raw.items():
        if key.startswith("request_") and value and value != "-" and value != "REDACTED":
            header = _request_header(key)
            if header is not None:
                header(rec, value)
    if "upstream.address" not in rec:
        # ServiceURL is a string in some releases and a marshalled url.URL object ({"Scheme", "Host", ...}) in others
        url = get("ServiceURL") or get("ServiceURL.Host") or get("BackendURL") or get("BackendURL.Host")
        if url and url != "-":
            rec["upstream.address"] = url
    if "client.address" not in rec:  # ClientHost dropped by accessLog.fields.names: ClientAddr is host:port
        addr = get("ClientAddr")
        if addr and addr != "-":
            rec["client.address"] = host_of(addr)
    return rec


_CLF = CompiledTemplate(
    re.compile(
        r'(\S+) - (\S+) \[([^\]]+)\] "(\S+) (.*?) (\S+)" (\d+|-) (\d+|-) ("[^"]*"|-) ("[^"]*"|-) (\d+|-) '
        r'("[^"]*"|-) ("[^"]*"|-) (\d+)ms'
    ),
    ("ClientHost", "ClientUsername", "StartUTC", "RequestMethod", "RequestPath", "RequestProtocol",
     "DownstreamStatus", "DownstreamContentSize", "request_Referer", "request_User-Agent", "RequestCount",
     "RouterName", "ServiceURL", "Duration"),
    (put("client.address"), None, put("in.timestamp"), put_method, apply_target, None, put_status, None, None,
     put("user_agent.original"), None, put("http.route"), put("upstream.address"), put_seconds(divisor=1000.0)),
    quoted=frozenset({8, 9, 11, 12}),
    label="traefik-clf",
)


def _parse_clf(line: str) -> Record | None:
    line = strip_eol(line)
    rec = _CLF.parse(line)
    if rec is None:
        if not line.strip():
            return None
        raise Reject("line does not match the Traefik CLF format")
    return rec


def _make_json(options: FormatOptions) -> Callable[[str], Record | None]:
    return _parse_json


def _make_clf(options: FormatOptions) -> Callable[[str], Record | None]:
    return _parse_clf


def _detect_json(first_lines: list[str]) -> float:
    return 0.95 * json_keys_score(first_lines, ("DownstreamStatus",), ("RouterName", "StartUTC", "ClientHost"))


def _detect_clf(first_lines: list[str]) -> float:
    return 0.9 * first_match_score([_CLF], [strip_eol(x) for x in first_lines])


FORMATS = (
    LogFormat(
        name="traefik_json",
        layer="proxy",
        product="traefik",
        kind="json",
        doc="Traefik JSON access log (v1 to v3 keys, request_<Header> fields).",
        detect=_detect_json,
        make_parser=_make_json,
    ),
    LogFormat(
        name="traefik_clf",
        layer="proxy",
        product="traefik",
        kind="text",
        doc="Traefik CLF-style text access log (router, service URL and duration appended).",
        detect=_detect_clf,
        make_parser=_make_clf,
    ),
)

__all__ = ["FORMATS"]
