"""AWS API Gateway access logs in JSON, built from ``$context`` variables; plus the ``$context`` template compiler.

API Gateway writes whatever the stage's access-log format says: a template in which ``$context.<variable>``
placeholders are replaced per request. Key names are the user's choice, so this module maps *variables*, not
keys: a user template (``--log-format 'apigw-*.json=apigw:@template.json'``) is compiled into a Vector whose
sources are the template's key paths and whose targets follow the variable table below. Without a template the
common key names of AWS's documented examples (``requestId``, ``ip``, ``requestTime``, ``httpMethod``,
``resourcePath``, ``routeKey``, ``status``, ...) and keys named after the variable (``authorizerError``,
``error.responseType``) are used.

Identity and failure variables (REST and HTTP APIs): ``$context.authorizer.*`` (``error``, ``principalId``,
``claims.<claim>``, ``integrationStatus``, Lambda authorizer context keys), ``$context.authenticate.{error,status}``,
``$context.authorize.{error,status}``, ``$context.identity.clientCert.*`` (mTLS subject/issuer/serial/validity),
``$context.identity.apiKeyId``, ``$context.error.responseType`` (gateway response type: ``ACCESS_DENIED``,
``UNAUTHORIZED``, ``EXPIRED_TOKEN``, ``MISSING_AUTHENTICATION_TOKEN``, ``INTEGRATION_FAILURE``, ...),
``$context.integration.error`` / ``$context.integrationErrorMessage``, ``$context.xrayTraceId``.
``$context.error.message`` / ``error.messageString`` (the gateway response's text) is the reason of last resort,
``$context.wafResponseCode`` ``WAF_BLOCK`` a WAF denial. ``$context.awsEndpointRequestId`` (the integration's own
request id) is kept in ``raw`` only: it is no CDN edge id.
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-variables-for-access-logging.html,
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging-variables.html)

Templates: a JSON template (variables quoted or bare, as in ``"status": $context.status``) compiles into the
vectorised mapping; a text template (CLF, CSV, XML, as in AWS's examples) compiles into an anchored regex, each
value running up to the next literal character, parsed by Python only.
Secrets: ``$context.identity.apiKey`` (a raw API key) and claims such as ``email``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from apitrail.trace.formats._base import (
    FormatOptions,
    LogFormat,
    Parser,
    Reject,
    Vector,
    VField,
    get_path,
    json_keys_score,
    json_object_share,
    parser_from_vector,
)

_STATUS_AUTHZ = (("200", "allow"), ("401", "deny"), ("403", "deny"), ("500", "error"), ("-1", "not_evaluated"))
_STATUS_AUTHN = (("200", "success"), ("401", "failure"), ("403", "failure"), ("500", "failure"),
                 ("-1", "not_evaluated"))

# $context variable -> (target, cast, label/mapping). Order in a compiled vector follows this table's priority:
# later entries win when several variables feed one target.
VARIABLES: dict[str, tuple[str, str, Any]] = {
    "requestTime": ("in.timestamp", "str", None),
    "requestTimeEpoch": ("in.timestamp", "str", None),
    "httpMethod": ("http.request.method", "str", None),
    "path": ("url.path", "str", None),
    "resourcePath": ("http.route", "str", None),
    "routeKey": ("http.route", "str", None),
    "status": ("http.response.status_code", "int", None),
    "identity.sourceIp": ("client.address", "str", None),
    "identity.userAgent": ("user_agent.original", "str", None),
    "domainName": ("server.address", "str", None),
    "responseLatency": ("duration", "dur_ms", None),
    "integrationStatus": ("in.upstream_status", "str", None),
    "integration.integrationStatus": ("in.upstream_status", "str", None),
    "integration.status": ("in.upstream_status", "str", None),
    "extendedRequestId": ("in.request_id", "str", "apigw.extendedRequestId"),
    "requestId": ("in.request_id", "str", "apigw.requestId"),
    "xrayTraceId": ("in.x-amzn-trace-id", "str", None),
    "identity.apiKeyId": ("credential.id", "str", None),
    "identity.apiKey": ("in.api_key", "str", None),
    "identity.clientCert.subjectDN": ("in.cert_subject", "str", None),
    "identity.clientCert.issuerDN": ("in.cert_issuer", "str", None),
    "identity.clientCert.serialNumber": ("in.cert_serial", "str", None),
    "identity.clientCert.validity.notAfter": ("in.cert_not_after", "str", None),
    "authenticate.status": ("authn.result", "map", _STATUS_AUTHN),
    "authorize.status": ("authz.decision", "map", _STATUS_AUTHZ),
    "authorizer.status": ("authz.decision", "map", _STATUS_AUTHZ),
    # WAF_ALLOW only says the WAF let the request through: no authorization verdict
    "wafResponseCode": ("authz.decision", "map", (("WAF_BLOCK", "deny"),)),
    "error.message": ("failure.reason", "str", None),
    "error.messageString": ("failure.reason", "str", None),
    "integration.error": ("failure.reason", "str", None),
    "integrationErrorMessage": ("failure.reason", "str", None),
    "authorizer.error": ("failure.reason", "str", None),
    "authenticate.error": ("failure.reason", "str", None),
    "authorize.error": ("failure.reason", "str", None),
    "error.responseType": ("failure.reason", "str", None),
    "authorizer.principalId": ("in.principal", "str", None),
    "waf.error": ("raw", "str", None),
}
_PRIORITY = {name: i for i, name in enumerate(VARIABLES)}

# key names of AWS's documented examples and common variants -> variable
DEFAULT_TEMPLATE: dict[str, str] = {
    "requestTime": "$context.requestTime",
    "requestTimeEpoch": "$context.requestTimeEpoch",
    "httpMethod": "$context.httpMethod",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "resourcePath": "$context.resourcePath",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "ip": "$context.identity.sourceIp",
    "sourceIp": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "domainName": "$context.domainName",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus",
    "extendedRequestId": "$context.extendedRequestId",
    "requestId": "$context.requestId",
    "xrayTraceId": "$context.xrayTraceId",
    "apiKeyId": "$context.identity.apiKeyId",
    "authenticateStatus": "$context.authenticate.status",
    "authorizeStatus": "$context.authorize.status",
    "authorizerStatus": "$context.authorizer.status",
    "integrationError": "$context.integration.error",
    "integrationErrorMessage": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "authenticateError": "$context.authenticate.error",
    "authorizeError": "$context.authorize.error",
    "errorResponseType": "$context.error.responseType",
    "responseType": "$context.error.responseType",
    "principalId": "$context.authorizer.principalId",
    "errorMessage": "$context.error.message",
    "wafResponseCode": "$context.wafResponseCode",
}

_VAR = re.compile(r"\$context\.([A-Za-z0-9_.\-]+)")
_REQUIRED = ("requestId", "extendedRequestId", "httpMethod", "status", "requestTime", "routeKey", "resourcePath")


def _walk(obj: Any, path: tuple[str, ...], out: list[tuple[tuple[str, ...], str]]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _walk(v, (*path, str(k)), out)
    elif isinstance(obj, str):
        m = _VAR.fullmatch(obj.strip())
        if m:
            out.append((path, m.group(1)))


_BARE_VAR = re.compile(r'(?<!["A-Za-z0-9_.])(\$context\.[A-Za-z0-9_.\-]*[A-Za-z0-9_\-])')


def _template_json(text: str) -> Any:
    """The template as JSON, or None when it is a text (CLF, CSV, XML...) template."""
    text = text.strip()
    if not text.startswith("{"):
        return None
    # as written; with the quotes the CLI/CloudFormation escape; with bare variables ("status": $context.status,
    # "msg": $context.error.messageString) quoted
    for candidate in (text, text.replace('\\"', '"')):
        for quoted in (candidate, _BARE_VAR.sub(r'"\1"', candidate)):
            try:
                return json.loads(quoted)
            except ValueError:
                continue
    return None


def compile_template(text: str) -> Vector:
    """A JSON ``$context`` access-log template -> Vector. Raises Reject on a template that is not JSON."""
    obj = _template_json(text)
    if obj is None:
        raise Reject("the API Gateway template is not a JSON object")
    if not isinstance(obj, dict):
        raise Reject("the API Gateway template is not a JSON object")
    pairs: list[tuple[tuple[str, ...], str]] = []
    _walk(obj, (), pairs)
    if not pairs:
        raise Reject("the API Gateway template has no $context variables")
    return _vector(pairs)


def compile_text_template(text: str) -> tuple[re.Pattern[str], list[str]]:
    """A text template (CLF, CSV, XML, ...) -> an anchored regex whose groups ``g0..gN`` hold the variables (in
    order). A value runs up to the first character of the literal that follows it (to the end of the line for the
    last one). Raises Reject without variables."""
    text = text.strip()
    variables: list[str] = []
    parts: list[str] = []
    pos = 0
    matches = [m for m in _VAR.finditer(text)]
    if not matches:
        raise Reject("the API Gateway template has no $context variables")
    for i, m in enumerate(matches):
        var = m.group(1).rstrip(".")
        end = m.start(1) + len(var)
        parts.append(re.escape(text[pos:m.start()]))
        nxt_end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        follow = text[end:nxt_end]
        if follow:
            stop = re.escape(follow[0])
            parts.append(f"(?P<g{i}>[^{stop}]*)")
        elif i + 1 < len(matches):
            parts.append(f"(?P<g{i}>.*?)")
        else:
            parts.append(f"(?P<g{i}>.*)")
        variables.append(var)
        pos = end
    parts.append(re.escape(text[pos:]))
    return re.compile("".join(parts)), variables


def _vector(pairs: list[tuple[tuple[str, ...], str]]) -> Vector:
    fields: list[VField] = []
    slow: list[tuple[str, ...]] = []
    for path, var in sorted(pairs, key=lambda p: _PRIORITY.get(p[1], -1)):
        if var.startswith("authorizer.claims."):
            slow.append(path)
            continue
        spec = VARIABLES.get(var)
        if spec is None:
            if var.startswith(("authorizer.", "identity.")):
                slow.append(path)  # Lambda authorizer context, caller identity: Python looks for secrets
            continue
        target, cast, extra = spec
        if target == "raw":
            continue
        if target == "in.principal":
            slow.append(path)
            continue
        if cast == "map":
            fields.append(VField(target, path, "map", mapping=extra))
        else:
            fields.append(VField(target, path, cast, label=extra if target == "in.request_id" else None))
    decisions = any(f.target in ("authz.decision", "authn.result", "failure.reason", "credential.id") for f in fields)
    if decisions:  # authz.engine / credential.kind are set by the Python extra
        slow.extend(f.source for f in fields if f.target in ("authz.decision", "credential.id")
                    and isinstance(f.source, tuple))
    return Vector(kind="json", fields=tuple(fields), slow_if=tuple(slow),
                  require_any=tuple(dict.fromkeys(p[0][0] for p in pairs)))


DEFAULT_VECTOR = _vector([((k,), v.removeprefix("$context.")) for k, v in DEFAULT_TEMPLATE.items()])


# values that carry nothing (an empty list or object included: no principal, no claim)
_ABSENT: tuple[object, ...] = (None, "", "-", [], {})


def _claims_extra(pairs: list[tuple[tuple[str, ...], str]]) -> Any:
    claim_paths = [(v.removeprefix("authorizer.claims."), p) for p, v in pairs if v.startswith("authorizer.claims.")]
    principal = [p for p, v in pairs if v == "authorizer.principalId"]
    api_keys = [p for p, v in pairs if v == "identity.apiKey"]
    waf = [p for p, v in pairs if v == "wafResponseCode"]

    def extra(obj: Any, rec: dict[str, Any]) -> None:
        claims = {}
        for claim, path in claim_paths:
            val = get_path(obj, path)
            if val not in _ABSENT:
                claims[claim] = val
        if claims:
            rec["in.jwt_claims"] = claims
        for path in principal:
            val = get_path(obj, path)
            if val not in _ABSENT:
                from apitrail.trace.secrets import fingerprint

                rec["enduser.id_fp"] = fingerprint(str(val))
        for path in api_keys:
            if get_path(obj, path) not in _ABSENT:
                rec["in.token_location"] = "header"
        if rec.get("credential.id"):
            rec["credential.kind"] = "apigw_api_key"
        if any(get_path(obj, path) == "WAF_BLOCK" for path in waf):
            rec["authz.decision"], rec["authz.engine"] = "deny", "waf"
        if rec.get("authz.decision"):
            rec.setdefault("authz.engine", "apigw_authorizer")

    return extra


def _template_pairs(options: FormatOptions) -> list[tuple[tuple[str, ...], str]]:
    if options.template:
        pairs: list[tuple[tuple[str, ...], str]] = []
        _walk(_template_json(options.template), (), pairs)
        return pairs
    return [((k,), v.removeprefix("$context.")) for k, v in DEFAULT_TEMPLATE.items()]


def _make_vector(options: FormatOptions) -> Vector | None:
    if not options.template:
        return DEFAULT_VECTOR
    if _template_json(options.template) is None and _VAR.search(options.template):
        return None  # a text template: the Python parser only
    return compile_template(options.template)


def _make_text(template: str) -> Parser:
    rx, variables = compile_text_template(template)
    pairs: list[tuple[tuple[str, ...], str]] = [((var,), var) for var in dict.fromkeys(variables)]
    json_parser = parser_from_vector(_vector(pairs), _claims_extra(pairs))

    def parse(line: str) -> dict[str, Any] | None:
        text = line.rstrip("\r\n")
        if not text.strip():
            return None
        m = rx.fullmatch(text)
        if m is None:
            raise Reject("line does not match the API Gateway template")
        obj: dict[str, str] = {}
        for i, var in enumerate(variables):
            value = m.group(f"g{i}")
            if var == "error.messageString" and len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            obj.setdefault(var, value)
        return json_parser(json.dumps(obj))

    return parse


def _make(options: FormatOptions) -> Parser:
    vector = _make_vector(options)
    if vector is None and options.template:
        return _make_text(options.template)
    if vector is None:
        raise Reject("no API Gateway template")
    try:
        pairs = _template_pairs(options)
    except ValueError:
        pairs = []
    base = parser_from_vector(vector, _claims_extra(pairs))
    return base


_APIGW_ONLY_KEYS = ("ip", "requestTime", "requestTimeEpoch", "httpMethod", "routeKey", "resourcePath", "responseLength",
                    "extendedRequestId", "integrationLatency", "integrationStatus", "domainName", "apiId", "stage",
                    "caller", "user", "protocol")
# keys of application logging frameworks (logback/logstash, ECS, structlog): a backend line, not a gateway line
_APP_LOG_KEYS = frozenset({"@version", "logger_name", "logger", "thread_name", "level", "level_value", "log.level",
                           "severity", "levelname", "lineno", "exc_info", "stack_trace"})


def _detect(lines: list[str]) -> float:
    score = max(json_keys_score(lines, [a, b], ["ip", "protocol", "responseLength", "requestTime"])
                for a, b in (("requestId", "httpMethod"), ("requestId", "routeKey"), ("requestId", "status"),
                             ("extendedRequestId", "status")))
    if score == 0.0:
        return 0.0
    # `requestId` + `status` alone is common in application logs: ask for a $context-only key, and no
    # logging-framework keys
    return 0.9 * score * json_object_share(lines, _is_context_log, count_malformed=False)


def _is_context_log(obj: dict[str, Any]) -> bool:
    return any(k in obj for k in _APIGW_ONLY_KEYS) and not (set(obj) & _APP_LOG_KEYS)


FORMAT = LogFormat(
    name="apigw",
    layer="gateway",
    product="aws-apigateway",
    kind="json",
    doc="AWS API Gateway JSON access logs from $context variables; a user template compiles into the mapping.",
    detect=_detect,
    make_parser=_make,
    make_vector=_make_vector,
)
