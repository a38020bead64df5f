"""Cloudflare Logpush ``http_requests`` dataset (JSON, one object per line).

Field names from Cloudflare's Logpush dataset reference
(https://developers.cloudflare.com/logs/reference/log-fields/zone/http_requests/). ``RayID`` is the request id at
the edge; the origin receives it as ``Cf-Ray: <RayID>-<colo>``, so it is both ``http.request.id`` (provenance
``cloudflare.RayID``) and ``edge.request_id``. ``EdgeStartTimestamp`` (else ``EdgeEndTimestamp``) is the time; its
form follows the job's ``timestamp_format`` output option: ``unixnano`` (the default, an integer), ``unix``
(integer seconds) or ``rfc3339`` (a string, possibly with a fraction).

Identity: ``ClientMTLSAuthStatus`` (``unknown|ok|absent|untrusted|notyetvalid|expired``) and
``ClientMTLSAuthCertFingerprint`` (SHA-256, only on the first request of an mTLS connection), ``ClientSSLProtocol``
(``none`` = no TLS: not mapped). ``JA3Hash``/``JA4``, bot and WAF scores stay in ``raw``.

Failure signals: ``EdgeResponseStatus`` vs ``OriginResponseStatus`` (``0`` = no response from the origin), and the
security decision, from ``SecurityAction`` (the terminating action), else the ``SecurityActions`` list, else the
legacy ``FirewallMatchesActions`` list. Actions are logged camel-cased (``block``, ``managedChallenge``,
``jschallenge``, ``challengeFailed``, ``forceConnectionClose``...): a block, a served or failed challenge, a drop or
a closed connection is ``authz.decision = deny`` (``failure.reason`` ``<key>=<action as logged>``,
``failure.source`` the ``SecuritySources``, e.g. ``firewallCustom``, ``rateLimit``, ``apiShieldTokenValidation``;
``authz.policy`` the ``SecurityRuleID``); ``unknown`` and ``log`` decide nothing; any other action (``skip``,
``allow``, a solved challenge...) is ``allow``. The legacy ``WAFAction`` is not read (present as ``unknown`` on
every row of older jobs).

Secrets: the ``Cookies`` custom field (``{name: value}``, rebuilt as a ``Cookie`` header in ``in.cookie``) and
``RequestHeaders`` (custom fields, lower-case header names) may carry session cookies and ``Authorization``;
``ClientRequestURI`` may carry query tokens.
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

_TLS_VERSIONS = tuple((v, v) for v in ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"))

VECTOR = Vector(
    kind="json",
    fields=(
        # EdgeStartTimestamp wins (the last present candidate); EdgeEndTimestamp when the job does not log it
        VField("in.timestamp", ("EdgeEndTimestamp",)),
        VField("in.timestamp", ("EdgeStartTimestamp",)),
        VField("http.request.method", ("ClientRequestMethod",)),
        VField("in.url", ("ClientRequestURI",)),
        VField("url.path", ("ClientRequestPath",)),
        VField("http.response.status_code", ("EdgeResponseStatus",), "int"),
        VField("upstream.status_codes", ("OriginResponseStatus",)),
        VField("upstream.address", ("OriginIP",)),
        VField("client.address", ("ClientIP",)),
        VField("server.address", ("ClientRequestHost",)),
        VField("user_agent.original", ("ClientRequestUserAgent",)),
        # Logpush custom request-header fields; x-request-id only when there is no RayID
        VField("in.request_id", ("RequestHeaders", "x-request-id"), label="x-request-id"),
        VField("in.traceparent", ("RequestHeaders", "traceparent")),
        VField("in.x-amzn-trace-id", ("RequestHeaders", "x-amzn-trace-id")),
        VField("in.request_id", ("RayID",), label="cloudflare.RayID"),
        VField("in.edge_request_id", ("RayID",)),
        VField("hop.instance", ("EdgeColoCode",)),
        # "none" = the request did not use TLS: only the documented protocol names are kept
        VField("tls.protocol.version", ("ClientSSLProtocol",), "map", mapping=_TLS_VERSIONS),
        VField("in.cert_verify", ("ClientMTLSAuthStatus",)),
        VField("in.cert_fingerprint", ("ClientMTLSAuthCertFingerprint",)),
    ),
    slow_if=(("SecurityAction",), ("SecurityActions",), ("FirewallMatchesActions",), ("Cookies",)),
    json_objects=(("RequestHeaders", ("traceparent", "x-amzn-trace-id", "x-request-id")),),
    require_any=("RayID", "EdgeStartTimestamp", "ClientRequestHost"),
    prefilter_ignore=('"Cookies":{}', '"RequestHeaders":{}', '"Cookies": {}', '"RequestHeaders": {}'),
)

# Security actions, compared lower-cased without "_" (Logpush logs them camel-cased: "managedChallenge",
# "forceConnectionClose", "jschallengeFailed"...). A challenge served (not yet solved) or failed stopped the request.
_BLOCKING = frozenset({"block", "challenge", "jschallenge", "managedchallenge", "challengefailed",
                       "jschallengefailed", "managedchallengefailed", "drop", "connectionclose",
                       "forceconnectionclose"})
# no decision: nothing matched ("unknown"), or a rule only logged the request
_NO_DECISION = frozenset({"", "unknown", "log"})


def _action(value: Any) -> str:
    return str(value or "").replace("_", "").lower()


def _security(obj: Any) -> tuple[str, str, str] | None:
    """(decision, action as logged, its key) from SecurityAction (the terminating action), else the SecurityActions list,
    else the legacy FirewallMatchesActions list; None when no security product decided anything."""
    action = obj.get("SecurityAction")
    if _action(action) not in _NO_DECISION:
        return ("deny" if _action(action) in _BLOCKING else "allow"), str(action), "SecurityAction"
    for key in ("SecurityActions", "FirewallMatchesActions"):
        actions = obj.get(key)
        if isinstance(actions, list) and actions:
            blocking = [str(a) for a in actions if _action(a) in _BLOCKING]
            if blocking:
                return "deny", blocking[-1], key
            decided = [str(a) for a in actions if _action(a) not in _NO_DECISION]
            if decided:
                return "allow", decided[-1], key
    return None


def _extra(obj: Any, rec: dict[str, Any]) -> None:
    headers = obj.get("RequestHeaders")
    if isinstance(headers, dict):
        low = {str(k).lower(): v for k, v in headers.items() if isinstance(v, str)}
        for header, hint in (("traceparent", "in.traceparent"), ("tracestate", "in.tracestate"), ("b3", "in.b3"),
                             ("x-b3-traceid", "in.x-b3-traceid"), ("x-b3-spanid", "in.x-b3-spanid"),
                             ("x-amzn-trace-id", "in.x-amzn-trace-id"), ("authorization", "in.authorization"),
                             ("cookie", "in.cookie"), ("x-api-key", "in.api_key")):
            if low.get(header):
                rec[hint] = low[header]
        if low.get("x-request-id") and "in.request_id" not in rec:
            rec["in.request_id"], rec["in.request_id_source"] = low["x-request-id"], "x-request-id"
    cookies = obj.get("Cookies")
    if isinstance(cookies, dict) and cookies and "in.cookie" not in rec:
        # Logpush custom field: {cookie name: value}; rebuilt as a Cookie header so the core finds tokens in it
        pairs = [f"{k}={v}" for k, v in cookies.items() if isinstance(v, str) and v]
        if pairs:
            rec["in.cookie"] = "; ".join(pairs)
    found = _security(obj)
    if found is not None:
        decision, action, key = found
        rec["authz.decision"] = decision
        rec["authz.engine"] = "waf"
        rule = obj.get("SecurityRuleID")
        if isinstance(rule, str) and rule:
            rec["authz.policy"] = rule
        if decision == "deny":
            rec["failure.reason"] = f"{key}={action}"
            sources = obj.get("SecuritySources") or obj.get("FirewallMatchesSources")
            if isinstance(sources, list) and sources:
                rec["failure.source"] = ",".join(str(s) for s in sources)


def _make(options: FormatOptions) -> Parser:
    return parser_from_vector(VECTOR, _extra)


def _detect(lines: list[str]) -> float:
    return json_keys_score(lines, ["RayID"], ["EdgeStartTimestamp", "ClientRequestHost", "EdgeResponseStatus",
                                              "ClientIP"])


FORMAT = LogFormat(
    name="cloudflare_http_requests",
    layer="cdn",
    product="cloudflare",
    kind="json",
    doc="Cloudflare Logpush http_requests dataset (JSON lines).",
    detect=_detect,
    make_parser=_make,
    vector=VECTOR,
)
