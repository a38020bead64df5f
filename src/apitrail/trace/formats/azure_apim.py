"""Azure API Management gateway logs: ``GatewayLogs`` resource logs and the Log Analytics table
``ApiManagementGatewayLogs`` (schema: https://learn.microsoft.com/azure/api-management/gateway-log-schema-reference,
and the table reference https://learn.microsoft.com/azure/azure-monitor/reference/tables/apimanagementgatewaylogs).

Shapes, all mapped to the same record:

- resource logs as diagnostic settings write them to storage (one JSON object per line) and Event Hubs (a
  ``{"records": [...]}`` wrapper): top level ``time``, ``correlationId``, ``callerIpAddress``, ``durationMs``,
  ``category`` (``GatewayLogs``), ``resourceId``, and the request under ``properties`` -- camelCase in the 2020
  schema (``method``, ``url``, ``responseCode``, ``backendResponseCode``, ``backendUrl``, ``apiId``,
  ``operationId``, ``apimSubscriptionId``, ``clientTlsVersion``, ``requestHeaders``, ``userId``, ``lastError``
  {``source``, ``reason``, ``message``, ``section``, ``scope``, ``elapsed``}) or PascalCase as today's reference
  lists them (``Method``, ``Url``, ``ResponseCode``, ..., ``LastErrorSource``, ``LastErrorReason``). A wrapper line
  gives one hop per object of ``records``, numbered in order by ``source.record`` (entries that are not objects
  are skipped); each hop's ``raw.unmapped`` is its own record, so a secret is reported on the record that holds
  it;
- ``ApiManagementGatewayLogs`` rows (resource-specific mode, exported as JSON): ``TimeGenerated``,
  ``CorrelationId``, ``CallerIpAddress``, ``Method``, ``Url``, ``ResponseCode``, ``BackendResponseCode``,
  ``BackendUrl``, ``TotalTime`` (ms), ``OperationId``, ``ApimSubscriptionId``, ``UserId``, ``ClientTlsVersion``,
  ``LastErrorSource``, ``LastErrorReason``, ``LastErrorMessage``, ``LastErrorSection``, ``RequestHeaders``,
  ``TraceRecords``, ``_ResourceId``;
- ``AzureDiagnostics`` rows (legacy mode): the properties as columns with a type suffix (``method_s``,
  ``url_s``, ``responseCode_d``, ``backendResponseCode_d``, ``lastError_source_s``, ``lastError_reason_s``,
  ``apimSubscriptionId_s``, ``operationId_s``, ``clientTlsVersion_s``) next to ``CorrelationId``,
  ``CallerIPAddress``, ``DurationMs``.

``CorrelationId`` is the request id; ``OperationId`` the route; the subscription id the consumer; the resource
id the instance. Failure signals: ``LastErrorSource`` is the policy or handler that failed (``validate-jwt``,
``validate-client-certificate``, ``ip-filter``, ``rate-limit``/``quota`` (by key), ``forward-request``,
``configuration``) and ``LastErrorReason`` its code (``TokenExpired``, ``TokenAudienceNotAllowed``,
``OperationNotFound``, ...). Trace context: a logged ``traceparent`` request header, else Application Insights'
legacy ``Request-Id``. Secrets: ``RequestHeaders`` may hold ``Ocp-Apim-Subscription-Key`` and ``Authorization``
when they are configured for logging.
"""

from __future__ import annotations

import json
from typing import Any

from apitrail.trace.formats._base import (
    FormatOptions,
    LineParser,
    LogFormat,
    Reject,
    Vector,
    VField,
    json_keys_score,
    loads_object,
    parser_from_vector,
)

P = "properties"

# (target, cast, label, source names): each name is read at the top level (Log Analytics rows, AzureDiagnostics
# columns with their type suffix) and under ``properties`` (resource logs in camelCase, the 2020 schema, or in
# the PascalCase of today's schema reference); the last present one wins
_MAP: tuple[tuple[str, str, str | None, tuple[str, ...], tuple[str, ...]], ...] = (
    ("in.timestamp", "str", None, ("time", "TimeGenerated"), ()),
    ("http.request.method", "str", None, ("Method", "method_s", "Method_s"), ("method", "Method")),
    ("in.url", "str", None, ("Url", "url_s", "Url_s"), ("url", "Url")),
    ("http.response.status_code", "int", None, ("ResponseCode", "responseCode_d", "ResponseCode_d"),
     ("responseCode", "ResponseCode")),
    ("upstream.status_codes", "str", None, ("BackendResponseCode", "backendResponseCode_d", "BackendResponseCode_d"),
     ("backendResponseCode", "BackendResponseCode")),
    ("upstream.address", "str", None, ("BackendUrl", "backendUrl_s", "BackendUrl_s"), ("backendUrl", "BackendUrl")),
    ("client.address", "str", None, ("callerIpAddress", "CallerIpAddress", "CallerIPAddress"), ()),
    ("duration", "dur_ms", None, ("durationMs", "DurationMs", "TotalTime"), ()),
    ("in.request_id", "str", "apim.CorrelationId", ("correlationId", "CorrelationId"), ()),
    ("http.route", "str", None, ("OperationId", "operationId_s", "OperationId_s"), ("operationId", "OperationId")),
    ("consumer.id", "str", None, ("ApimSubscriptionId", "apimSubscriptionId_s", "ApimSubscriptionId_s"),
     ("apimSubscriptionId", "ApimSubscriptionId")),
    ("tls.protocol.version", "str", None, ("ClientTlsVersion", "clientTlsVersion_s", "ClientTlsVersion_s"),
     ("clientTlsVersion", "ClientTlsVersion")),
    ("failure.reason", "str", None, ("LastErrorReason", "lastError_reason_s", "LastErrorReason_s"),
     ("LastErrorReason",)),
    ("failure.source", "str", None, ("LastErrorSource", "lastError_source_s", "LastErrorSource_s"),
     ("LastErrorSource",)),
    ("hop.instance", "str", None, ("resourceId", "_ResourceId", "ResourceId"), ()),
)


def _fields() -> tuple[VField, ...]:
    out: list[VField] = []
    for target, cast, label, top, nested in _MAP:
        out.extend(VField(target, (name,), cast, label=label) for name in top)
        out.extend(VField(target, (P, name), cast, label=label) for name in nested)
        if target == "failure.reason":
            out.append(VField(target, (P, "lastError", "reason")))
        if target == "failure.source":
            out.append(VField(target, (P, "lastError", "source")))
    return tuple(out)


VECTOR = Vector(
    kind="json",
    fields=_fields(),
    slow_if=((P, "requestHeaders"), ("RequestHeaders",), (P, "RequestHeaders"), (P, "lastError", "source"),
             ("LastErrorSource",), (P, "LastErrorSource"), ("lastError_source_s",), ("LastErrorSource_s",),
             (P, "userId"), ("UserId",), (P, "UserId"), ("records",)),
    require_any=("correlationId", "CorrelationId", "category", "Category", "TimeGenerated", "records"),
    # an empty wrapper is a reject in Python; the SQL would take "[]" as an absent value and make an empty hop
    slow_line_contains=('"records":[]', '"records": []'),
)

_AUTHN_POLICIES = {"validate-jwt", "validate-azure-ad-token", "validate-client-certificate", "authentication-basic",
                   "check-header"}
_AUTHZ_POLICIES = {"ip-filter", "validate-content", "validate-parameters"}


def _extra(obj: Any, rec: dict[str, Any]) -> None:
    props = obj.get(P) if isinstance(obj.get(P), dict) else {}
    headers = props.get("requestHeaders") or props.get("RequestHeaders") or obj.get("RequestHeaders")
    if isinstance(headers, str) and headers.startswith("{"):  # a dynamic column exported as JSON text
        try:
            headers = json.loads(headers)
        except ValueError:
            headers = None
    if isinstance(headers, dict):
        low = {str(k).lower(): v for k, v in headers.items() if isinstance(v, str)}
        # W3C traceparent first; Application Insights' legacy Request-Id only when it is all there is
        for header, hint in (("traceparent", "in.traceparent"), ("authorization", "in.authorization"),
                             ("ocp-apim-subscription-key", "in.api_key")):
            if low.get(header):
                rec[hint] = low[header]
        if "in.traceparent" not in rec and low.get("request-id"):
            rec["in.traceparent"] = low["request-id"]
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
    user = props.get("userId") or props.get("UserId") or obj.get("UserId")
    if user not in (None, "", "-"):
        from apitrail.trace.secrets import fingerprint

        rec["enduser.id_fp"] = fingerprint(str(user))


def _make(options: FormatOptions) -> LineParser:
    base = parser_from_vector(VECTOR, _extra)

    def parse(line: str) -> dict[str, Any] | list[dict[str, Any]] | None:
        obj = loads_object(line)
        records = obj.get("records")
        if records is None:
            return base(line)
        # the Event Hubs / storage wrapper {"records": [...]}: one hop per gateway record, in order
        if not isinstance(records, list) or not any(isinstance(r, dict) for r in records):
            raise Reject("records is not a list of objects")
        out: list[dict[str, Any]] = []
        for r in records:
            if not isinstance(r, dict):
                continue
            rec = base(json.dumps(r))
            if rec is not None:
                out.append(rec)
        return out[0] if len(out) == 1 else out

    return parse


def _detect(lines: list[str]) -> float:
    resource = max(json_keys_score(lines, ["correlationId", f"{P}/{m}"], ["category", "operationName", "time"])
                   for m in ("method", "Method"))
    wrapped = max(json_keys_score(lines, ["records/0/correlationId", f"records/0/{P}/{m}"], ["records/0/category"])
                  for m in ("method", "Method"))
    table = json_keys_score(lines, ["CorrelationId", "Method"], ["ResponseCode", "TimeGenerated", "ApiId"])
    diagnostics = max(json_keys_score(lines, ["CorrelationId", m], ["Category", "TimeGenerated", "ResourceProvider"])
                      for m in ("method_s", "Method_s"))
    return max(resource, wrapped, table, diagnostics)


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
