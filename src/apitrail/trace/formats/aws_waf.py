"""AWS WAF logs (web ACL traffic logs, JSON; CloudFront, ALB, API Gateway, AppSync and Cognito sources).

Keys from the AWS WAF log field reference: ``timestamp`` (epoch ms), ``action`` (``ALLOW``, ``BLOCK``, ``COUNT``,
``CAPTCHA``, ``CHALLENGE``), ``terminatingRuleId`` / ``terminatingRuleType``, ``httpSourceName`` (``CF``,
``ALB``, ``APIGW``, ``APPSYNC``, ``COGNITOIDP``) and ``httpSourceId``, ``responseCodeSent`` (only for custom
responses), ``labels``, ``ja3Fingerprint``/``ja4Fingerprint``, and ``httpRequest`` with ``clientIp``, ``country``,
``headers`` (a list of ``{name, value}``), ``uri``, ``args``, ``httpMethod``, ``requestId`` (for CloudFront the
edge request id, i.e. ``x-edge-request-id`` / ``X-Amz-Cf-Id``), ``host`` (else the logged ``Host`` header), ``scheme``,
``httpVersion``. Source: https://docs.aws.amazon.com/waf/latest/developerguide/logging-fields.html

The hop is the WAF in front of the named source, so ``hop.layer`` follows ``httpSourceName`` (CF -> cdn, ALB ->
edge_lb, API Gateway/AppSync/Cognito -> gateway). Decisions: ``BLOCK`` is ``authz.decision = deny`` by engine
``waf`` with the terminating rule as policy and failure reason. Secrets: logged headers can carry
``Authorization`` and cookies (WAF redaction is per field and opt-in), ``args`` can carry query tokens.
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
from apitrail.trace.formats._template_utils import host_of

H = "httpRequest"
VECTOR = Vector(
    kind="json",
    fields=(
        VField("in.timestamp", ("timestamp",)),
        VField("http.request.method", (H, "httpMethod")),
        VField("url.path", (H, "uri")),
        VField("in.query", (H, "args")),
        VField("client.address", (H, "clientIp")),
        VField("server.address", (H, "host")),
        VField("in.request_id", (H, "requestId"), label="waf.requestId"),
        VField("http.response.status_code", ("responseCodeSent",), "int"),
        VField("hop.instance", ("httpSourceId",)),
        VField("authz.policy", ("terminatingRuleId",)),
    ),
    require_any=("webaclId", "httpRequest"),
)

_LAYERS = {"CF": "cdn", "ALB": "edge_lb", "APIGW": "gateway", "APPSYNC": "gateway", "COGNITOIDP": "gateway",
           "APPRUNNER": "gateway", "VERIFIED_ACCESS": "gateway"}
_HEADERS = {"traceparent": "in.traceparent", "tracestate": "in.tracestate", "b3": "in.b3",
            "x-b3-traceid": "in.x-b3-traceid", "x-b3-spanid": "in.x-b3-spanid", "x-amzn-trace-id": "in.x-amzn-trace-id",
            "authorization": "in.authorization", "cookie": "in.cookie", "x-api-key": "in.api_key",
            "user-agent": "user_agent.original", "x-forwarded-for": "http.request.header.x-forwarded-for",
            "x-request-id": "in.request_id", "host": "server.address"}


def _extra(obj: Any, rec: dict[str, Any]) -> None:
    source = str(obj.get("httpSourceName") or "")
    if source in _LAYERS:
        rec["hop.layer"] = _LAYERS[source]
    if source == "CF" and rec.get("in.request_id"):
        rec["in.edge_request_id"] = rec["in.request_id"]
    request = obj.get(H)
    headers = request.get("headers") if isinstance(request, dict) else None
    if isinstance(headers, list):
        for h in headers:
            if isinstance(h, dict) and isinstance(h.get("name"), str) and isinstance(h.get("value"), str):
                target = _HEADERS.get(h["name"].lower())
                if target and target not in rec:
                    rec[target] = h["value"] if target != "server.address" else host_of(h["value"])
                    if target == "in.request_id":
                        rec["in.request_id_source"] = "x-request-id"
    action = str(obj.get("action") or "").upper()
    rec["authz.engine"] = "waf"
    if action in ("BLOCK", "CAPTCHA", "CHALLENGE"):
        rec["authz.decision"] = "deny"
        rec["failure.reason"] = f"{action}:{obj.get('terminatingRuleId') or 'unknown'}"
        rec["failure.origin"] = "self"
        rec["failure.source"] = str(obj.get("terminatingRuleType") or "waf")
        rec.setdefault("http.response.status_code", 403 if action == "BLOCK" else 405 if action == "CAPTCHA" else 202)
    elif action in ("ALLOW", "COUNT"):
        rec["authz.decision"] = "allow"


def _make(options: FormatOptions) -> Parser:
    return parser_from_vector(VECTOR, _extra)


def _detect(lines: list[str]) -> float:
    return json_keys_score(lines, ["webaclId", "httpRequest"], ["action", "terminatingRuleId", "httpSourceName"])


FORMAT = LogFormat(
    name="aws_waf",
    layer="cdn",
    product="aws-waf",
    kind="json",
    doc="AWS WAF web ACL traffic logs (JSON); the hop layer follows the protected resource.",
    detect=_detect,
    make_parser=_make,
)
