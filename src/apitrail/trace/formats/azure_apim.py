"""Azure API Management gateway logs: ``GatewayLogs`` resource logs and the Log Analytics table
``ApiManagementGatewayLogs``.

Resource logs (diagnostic settings to storage / Event Hubs) wrap the request under ``properties``: ``time``,
``correlationId``, ``callerIpAddress``, ``durationMs``, ``properties.{method,url,responseCode,backendResponseCode,
backendUrl,apiId,operationId,apimSubscriptionId,clientTlsVersion,requestHeaders,lastError}``. Log Analytics rows
use PascalCase columns: ``TimeGenerated``, ``CorrelationId``, ``CallerIpAddress``, ``Method``, ``Url``,
``ResponseCode``, ``BackendResponseCode``, ``TotalTime``, ``LastErrorReason``, ``LastErrorSource``,
``LastErrorMessage``, ``ApimSubscriptionId``, ``RequestHeaders``. Both shapes map to the same record.

Failure signals: ``lastError.source`` / ``LastErrorSource`` is the policy that failed (``validate-jwt``,
``validate-client-certificate``, ``rate-limit``, ``forward-request``) and ``reason`` its code (``TokenExpired``,
``TokenAudienceNotAllowed``, ...). Secrets: ``RequestHeaders`` may hold ``Ocp-Apim-Subscription-Key`` and
``Authorization`` when they are configured for logging.
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

P = "properties"
VECTOR = Vector(
    kind="json",
    fields=(
        VField("in.timestamp", ("time",)),
        VField("in.timestamp", ("TimeGenerated",)),
        VField("http.request.method", (P, "method")),
        VField("http.request.method", ("Method",)),
        VField("in.url", (P, "url")),
        VField("in.url", ("Url",)),
        VField("http.response.status_code", (P, "responseCode"), "int"),
        VField("http.response.status_code", ("ResponseCode",), "int"),
        VField("upstream.status_codes", (P, "backendResponseCode")),
        VField("upstream.status_codes", ("BackendResponseCode",)),
        VField("upstream.address", (P, "backendUrl")),
        VField("upstream.address", ("BackendUrl",)),
        VField("client.address", ("callerIpAddress",)),
        VField("client.address", ("CallerIpAddress",)),
        VField("duration", ("durationMs",), "dur_ms"),
        VField("duration", ("TotalTime",), "dur_ms"),
        VField("in.request_id", ("correlationId",), label="apim.CorrelationId"),
        VField("in.request_id", ("CorrelationId",), label="apim.CorrelationId"),
        VField("http.route", (P, "operationId")),
        VField("http.route", ("OperationId",)),
        VField("consumer.id", (P, "apimSubscriptionId")),
        VField("consumer.id", ("ApimSubscriptionId",)),
        VField("tls.protocol.version", (P, "clientTlsVersion")),
        VField("tls.protocol.version", ("ClientTlsVersion",)),
        VField("failure.reason", (P, "lastError", "reason")),
        VField("failure.reason", ("LastErrorReason",)),
        VField("failure.source", (P, "lastError", "source")),
        VField("failure.source", ("LastErrorSource",)),
    ),
    slow_if=((P, "requestHeaders"), ("RequestHeaders",), (P, "lastError", "source"), ("LastErrorSource",),
             (P, "userId"), ("UserId",)),
    require_any=("correlationId", "CorrelationId", "category", "TimeGenerated"),
)

_AUTHN_POLICIES = {"validate-jwt", "validate-azure-ad-token", "validate-client-certificate", "authentication-basic",
                   "check-header"}
_AUTHZ_POLICIES = {"ip-filter", "validate-content", "validate-parameters"}


def _extra(obj: Any, rec: dict[str, Any]) -> None:
    props = obj.get(P) if isinstance(obj.get(P), dict) else {}
    headers = props.get("requestHeaders") or obj.get("RequestHeaders")
    if isinstance(headers, dict):
        low = {str(k).lower(): v for k, v in headers.items() if isinstance(v, str)}
        for header, hint in (("traceparent", "in.traceparent"), ("request-id", "in.traceparent"),
                             ("authorization", "in.authorization"), ("ocp-apim-subscription-key", "in.api_key"),
                             ("x-request-id", "in.request_id_hdr")):
            if low.get(header):
                rec[hint] = low[header]
        rec.pop("in.request_id_hdr", None)
    source = str(rec.get("failure.source") or "")
    if source in _AUTHN_POLICIES:
        rec["authn.result"] = "failure"
        rec["authn.mechanism"] = "mtls" if "certificate" in source else "jwt" if "jwt" in source or "token" in source \
            else None
    elif source in _AUTHZ_POLICIES:
        rec["authz.decision"] = "deny"
        rec["authz.engine"] = "apim_policy"
    elif source in ("rate-limit", "rate-limit-by-key", "quota", "quota-by-key"):
        rec["authz.engine"] = "apim_policy"
    if source:
        rec["failure.origin"] = "upstream" if source == "forward-request" else "self"
    user = props.get("userId") or obj.get("UserId")
    if user not in (None, "", "-"):
        from apitrail.trace.secrets import fingerprint

        rec["enduser.id_fp"] = fingerprint(str(user))


def _make(options: FormatOptions) -> Parser:
    return parser_from_vector(VECTOR, _extra)


def _detect(lines: list[str]) -> float:
    resource = json_keys_score(lines, ["correlationId", "properties/method"], ["category", "operationName", "time"])
    table = json_keys_score(lines, ["CorrelationId", "Method"], ["ResponseCode", "TimeGenerated", "ApiId"])
    return max(resource, table)


FORMAT = LogFormat(
    name="azure_apim",
    layer="gateway",
    product="azure-apim",
    kind="json",
    doc="Azure API Management GatewayLogs (resource logs) and ApiManagementGatewayLogs (Log Analytics) rows.",
    detect=_detect,
    make_parser=_make,
    vector=VECTOR,
)
