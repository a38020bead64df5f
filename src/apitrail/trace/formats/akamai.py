"""Akamai DataStream 2 logs in JSON (one object per line).

Keys follow Akamai's DataStream 2 data-set parameters: ``reqId`` (request id at the edge), ``reqTimeSec``
(epoch seconds, possibly with a fraction), ``cliIP``, ``statusCode``, ``reqHost``, ``reqMethod``, ``reqPath``,
``queryStr``, ``UA`` (URL-encoded), ``tlsVersion``, ``errorCode`` (e.g. ``ERR_ACCESS_DENIED|fwd_acl``: the edge
denied the request), ``securityRules``, ``cookie``, ``xForwardedFor``, ``turnAroundTimeMSec``, ``edgeIP``,
``cacheStatus``, ``customField``. Values are strings; ``-`` and ``^`` mean empty.

DataStream 2 also delivers a *Structured* format (space- or tab-delimited values in the order the stream
configuration lists its data set fields): without that configuration the columns cannot be named, so only the JSON
format is read here. JSON logs omit the fields a Structured log would report as ``-`` or null
(https://techdocs.akamai.com/datastream2/docs/log-format-1). ``UA`` is form-encoded (``+`` for spaces, decoded with
``formdecode``); ``turnAroundTimeMSec`` (request fully read to first response byte) is the duration.

Identity: only ``tlsVersion`` (no client-certificate fields). Failure: ``errorCode`` (authz/WAF denials and
origin errors). Secrets: ``cookie`` and ``queryStr`` are logged raw.
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
        VField("in.timestamp", ("reqTimeSec",)),
        VField("http.request.method", ("reqMethod",)),
        VField("url.path", ("reqPath",), "urldecode"),
        VField("in.query", ("queryStr",)),
        VField("http.response.status_code", ("statusCode",), "int"),
        VField("client.address", ("cliIP",)),
        VField("server.address", ("reqHost",)),
        VField("user_agent.original", ("UA",), "formdecode"),
        VField("http.request.header.x-forwarded-for", ("xForwardedFor",)),
        VField("in.request_id", ("reqId",), label="akamai.reqId"),
        VField("in.edge_request_id", ("reqId",)),
        VField("hop.instance", ("edgeIP",)),
        VField("tls.protocol.version", ("tlsVersion",)),
        VField("duration", ("turnAroundTimeMSec",), "dur_ms"),
        VField("failure.reason", ("errorCode",)),
        VField("in.cookie", ("cookie",)),
    ),
    slow_if=(("errorCode",),),
    require_any=("reqId", "cp", "streamId"),
    prefilter_ignore=('"cookie":"^"', '"cookie":"-"', '"cookie":""'),
)


def _extra(obj: Any, rec: dict[str, Any]) -> None:
    code = str(obj.get("errorCode") or "")
    if code.startswith("ERR_ACCESS_DENIED"):
        rec["authz.decision"] = "deny"
        rec["authz.engine"] = "waf" if obj.get("securityRules") not in (None, "", "-", "^") else "edge_acl"
        rec["failure.origin"] = "self"


def _make(options: FormatOptions) -> Parser:
    return parser_from_vector(VECTOR, _extra)


def _detect(lines: list[str]) -> float:
    return json_keys_score(lines, ["reqId", "reqTimeSec"], ["cp", "cliIP", "statusCode", "reqHost", "reqPath"])


FORMAT = LogFormat(
    name="akamai_datastream2",
    layer="cdn",
    product="akamai",
    kind="json",
    doc="Akamai DataStream 2 JSON logs.",
    detect=_detect,
    make_parser=_make,
    vector=VECTOR,
)
