"""Request headers as a backend received them, one JSON object per line (httpbin's ``/headers`` echo, request dumps).

Shape: ``{"headers": {"Host": ..., "X-B3-Traceid": ..., "X-Forwarded-Client-Cert": ...}}``, optionally with
``method``/``url``/``path``/``origin`` beside it (httpbin's ``/anything``). Header names are case-insensitive.

This is how many teams check what reaches a service behind a mesh or a gateway, and it is the ground truth for
propagation: the trace context (W3C ``traceparent``, B3 multi or single header, X-Ray, GCP), ``x-request-id``, and
the mesh's ``X-Forwarded-Client-Cert`` (chain of ``By=`` identities, ``URI=`` SPIFFE id of the caller, ``Hash=``).
There is no status and usually no timestamp. Secrets: ``Authorization`` and ``Cookie`` headers are fingerprinted by
the core, never stored.
"""

from __future__ import annotations

import json
from typing import Any

from apitrail.trace.formats._base import FormatOptions, LogFormat, Parser, Reject, flatten, json_object_share

# header (lower case) -> intermediate record key
HEADER_HINTS: dict[str, str] = {
    "traceparent": "in.traceparent",
    "tracestate": "in.tracestate",
    "b3": "in.b3",
    "x-b3-traceid": "in.x-b3-traceid",
    "x-b3-spanid": "in.x-b3-spanid",
    "x-b3-parentspanid": "in.x-b3-parentspanid",
    "x-b3-sampled": "in.x-b3-sampled",
    "x-amzn-trace-id": "in.x-amzn-trace-id",
    "x-cloud-trace-context": "in.x-cloud-trace-context",
    "x-forwarded-client-cert": "in.xfcc",
    "authorization": "in.authorization",
    "cookie": "in.cookie",
    "host": "server.address",
    "user-agent": "user_agent.original",
    "x-forwarded-for": "http.request.header.x-forwarded-for",
    "x-amz-cf-id": "in.edge_request_id",
    "cf-ray": "in.edge_request_id",
}


def _parse(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not text:
        return None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise Reject("invalid json") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("headers"), dict):
        raise Reject("no headers object")
    headers = {str(k).lower(): v for k, v in obj["headers"].items() if isinstance(v, (str, int, float))}
    if not headers:
        raise Reject("empty headers object")
    rec: dict[str, Any] = {"hop.direction": "inbound"}
    for name, key in HEADER_HINTS.items():
        if name in headers:
            rec.setdefault(key, str(headers[name]))
    if "x-request-id" in headers:
        rec["in.request_id"] = str(headers["x-request-id"])
        rec["in.request_id_source"] = "x-request-id"
    if isinstance(obj.get("method"), str):
        rec["http.request.method"] = obj["method"]
    url = obj.get("url") if isinstance(obj.get("url"), str) else obj.get("path")
    if isinstance(url, str):
        rec["in.url"] = url
    if isinstance(obj.get("origin"), str):
        rec["client.address"] = obj["origin"].split(",")[0].strip()
    rec["raw"] = flatten(obj)
    return rec


def _make(options: FormatOptions) -> Parser:
    return _parse


def _is_headers_echo(obj: dict[str, Any]) -> bool:
    return isinstance(obj.get("headers"), dict) and len(obj) <= 8 and "requestContext" not in obj \
        and "request" not in obj


def _detect(lines: list[str]) -> float:
    return 0.7 * json_object_share(lines, _is_headers_echo)


FORMAT = LogFormat(
    name="http_headers_json",
    layer="backend",
    product="http-headers",
    kind="json",
    doc="Request headers as a backend received them (httpbin /headers echo, request dumps), one JSON object per line.",
    detect=_detect,
    make_parser=_make,
)
