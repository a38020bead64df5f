"""Failure classification, table-driven (DESIGN.md "Classify"; reference section 5).

Two steps, both SQL generated from the tables below, so DuckDB and Spark run the same text:

1. **Per hop.** ``SIGNALS`` is an ordered table of vendor signals -> class. The first signal whose conditions hold
   gives the hop its class, its verbatim vendor reason (the value of the signal's reason field), a tag
   (``audience``/``scope`` for token-exchange candidates, ``next_hop`` for TLS failures towards the upstream) and
   whether the hop *produced its status itself*. ``RELAY`` lists the markers of a hop that only relayed its
   upstream's answer (Envoy ``via_upstream``, Kong ``source=upstream``, Traefik with an ``OriginStatus``,
   Cloudflare ``OriginResponseStatus`` equal to the edge status ...). Status-only fallbacks come last and never
   claim to be self-produced, so deeper evidence wins.
2. **Per request group.** Hops are ordered by depth: first the hops that handled the request's entry path (the
   outermost hop's path), then those of internal calls (another path: a service's outbound sidecar, the callee's
   inbound sidecar and the callee come after the caller); within each, by layer (``LAYER_RANK``, with the
   proxy/gateway order taken from the data, see :func:`layer_rank_sql`), then time, then direction. The final status is the
   outermost hop's. If it is not an error the class is ``none``. Otherwise the failing hop is the shallowest
   error hop that produced its status itself (the walk down a chain of relays), else the deepest error hop. A
   backend is always taken to have produced its status; when a deeper hop produced an error itself, that hop is
   the failing hop (the backend passed on its callee's or its outbound sidecar's answer).
   Cross-hop patterns then apply:

   * **masked failure**: the failing hop is a 5xx dependency/unknown failure but a deeper hop failed authn,
     authz or token exchange: the deeper hop is the failing hop (an authn failure downstream that surfaces
     as a 5xx upstream is authn at the downstream hop);
   * **token exchange**: the failing hop rejected on audience or scope (Envoy
     ``jwt_authn_access_denied{Audiences_in_Jwt_are_not_allowed}``, ``insufficient_scope``,
     ``TokenAudienceNotAllowed``) after a shallower hop accepted the token: ``token_exchange``.

Field references in conditions are canonical hop fields (``failure.reason``) or ``raw:<Key>`` for a member of
``raw.unmapped``; ``a|b`` takes the first non-null. Vendor products are matched by family (``envoy`` matches
``envoy``, ``istio-envoy`` ...) against ``hop.product`` and ``source.format``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from apitrail.trace.engines._sql import Dialect, Runner, in_list, lit

Cond = tuple[Any, ...]  # (op, field, values...) or ("or", Cond, Cond, ...)


@dataclass(frozen=True)
class Signal:
    """One row of the classification table: when ``when`` holds (all conditions), the hop gets ``cls``."""

    id: str
    cls: str
    when: tuple[Cond, ...]
    products: tuple[str, ...] = ()
    reason: str = ""
    tag: str = ""
    self_produced: bool = True
    doc: str = ""


ENVOY = ("envoy", "istio")
KONG = ("kong",)
NGINX = ("nginx",)
HAPROXY = ("haproxy",)
TRAEFIK = ("traefik",)
CLOUDFLARE = ("cloudflare",)
CLOUDFRONT = ("cloudfront",)
AKAMAI = ("akamai",)
APIGW = ("apigw", "api_gateway", "apigateway", "api-gateway")
APIM = ("apim", "azure")
ALB = ("alb", "elb")
AWS_WAF = ("aws-waf", "aws_waf")

RCD = "failure.reason|raw:response_code_details|raw:RESPONSE_CODE_DETAILS"
FLAGS = "response.flags|raw:response_flags|raw:RESPONSE_FLAGS"
TRANSPORT = (
    "raw:upstream_transport_failure_reason|raw:UPSTREAM_TRANSPORT_FAILURE_REASON|failure.reason"
)
KONG_SOURCE = "failure.origin|raw:source"
APIGW_TYPE = "failure.reason|raw:error.responseType|raw:responseType|raw:errorResponseType"
CF_ORIGIN = "upstream.status_codes|raw:OriginResponseStatus"
CF_SECURITY = "raw:SecurityAction|raw:SecurityActions|raw:WAFAction"
CF_SOURCES = "failure.source|raw:SecuritySources|raw:SecuritySource|raw:FirewallMatchesSources"
CF_BLOCKING = ("block", "drop", "challenge", "challengeFailed", "jschallenge", "jschallengeFailed", "managedChallenge",
               "managedChallengeFailed", "connectionClose", "forceConnectionClose")
"""Cloudflare security actions that stop a request (Logpush ``SecurityAction``, camel-cased; the rules API spells
them snake-cased, ``managed_challenge``, ``js_challenge``: compared with ``loose_in``). Solved or bypassed
challenges, ``allow``, ``skip``, ``log`` and ``unknown`` let it through."""
CLOUDFRONT_DETAIL = "failure.reason|raw:x-edge-detailed-result-type|raw:x_edge_detailed_result_type"
APIM_SOURCE = "failure.source|raw:LastErrorSource|raw:lastErrorSource|raw:lastError_source_s"
"""The policy that failed: the parser's ``failure.source`` (it reads ``properties.lastError.source`` and the Log
Analytics column spellings too), else a top-level key."""
APIM_REASON = "failure.reason|raw:LastErrorReason"
AKAMAI_ERR = "failure.reason|raw:errorCode"
ALB_ERR = "failure.reason|raw:error_reason|raw:classification_reason"
TRAEFIK_ORIGIN = "upstream.status_codes|raw:OriginStatus"
WAF_RULE_TYPE = "failure.source|raw:terminatingRuleType"
WAF_ACTION = "raw:action|failure.reason"

E4 = ("status", "400", "499")
E5 = ("status", "500", "599")
NO_STATUS = ("nostatus",)
"""The hop logged no HTTP status (a connection-level record: an HAProxy error line, a failed TLS handshake). Only
signals with this condition classify such a hop, and then it counts as an error hop."""

SIGNALS: tuple[Signal, ...] = (
    # --- Envoy / Istio: RESPONSE_CODE_DETAILS and RESPONSE_FLAGS
    Signal("envoy-jwt-audience", "authz", (("has", RCD, "audiences_in_jwt_are_not_allowed"),), ENVOY, RCD, "audience",
           doc="jwt_authn returns 403 only for this status; a token-exchange candidate"),
    Signal("envoy-jwt", "authn", (("has", RCD, "jwt_authn_access_denied"),), ENVOY, RCD),
    Signal("envoy-jwt-requirement", "authn", (("has", RCD, "failed_jwt_authentication"),), ENVOY, RCD),
    Signal("envoy-rbac", "authz", (("has", RCD, "rbac_access_denied"),), ENVOY, RCD),
    Signal("envoy-ext-authz-error", "dependency", (("has", RCD, "ext_authz_error"),), ENVOY, RCD),
    Signal("envoy-ext-authz", "authz", (("or", ("has", RCD, "ext_authz_denied"), ("flag", FLAGS, "UAEX")),), ENVOY,
           f"{FLAGS}|{RCD}"),
    Signal("envoy-tls-upstream", "authn",
           (("flag", FLAGS, "UF"), ("or", ("has", TRANSPORT, "certificate_verify_failed"),
                                    ("has", TRANSPORT, "certificate_verify"), ("has", TRANSPORT, "tls_error"),
                                    ("has", TRANSPORT, "ssl_error"), ("has", TRANSPORT, "handshake"),
                                    ("has", RCD, "certificate_verify_failed"), ("has", RCD, "tls_error"))),
           ENVOY, TRANSPORT, "next_hop",
           doc="UF with a TLS verify failure towards the upstream: identity failure of the next hop"),
    Signal("envoy-rate-limited", "rate_limited", (("flag", FLAGS, "RL"),), ENVOY, FLAGS),
    Signal("envoy-rate-limit-service", "dependency", (("flag", FLAGS, "RLSE"),), ENVOY, FLAGS),
    Signal("envoy-no-route", "routing",
           (("or", ("flag", FLAGS, "NR"), ("flag", FLAGS, "NC"), ("flag", FLAGS, "NFCF"), ("has", RCD, "route_not_found"),
             ("has", RCD, "cluster_not_found")),), ENVOY, f"{FLAGS}|{RCD}"),
    Signal("envoy-downstream-abort", "client_abort",
           (("or", ("flag", FLAGS, "DC"), ("has", RCD, "downstream_remote_disconnect")),), ENVOY, f"{FLAGS}|{RCD}"),
    Signal("envoy-upstream", "dependency",
           (("or", *(("flag", FLAGS, f) for f in ("UH", "UF", "UT", "URX", "UC", "UR", "UO", "UPE", "DF", "LH", "SI",
                                                  "DT", "OM", "LR")),
             ("has", RCD, "upstream_reset"), ("has", RCD, "no_healthy_upstream"), ("has", RCD, "response_timeout"),
             ("has", RCD, "upstream_response_timeout")),), ENVOY, f"{FLAGS}|{RCD}"),
    # --- Kong: `source` tells who produced the response
    Signal("kong-authn", "authn", (("in", KONG_SOURCE, "kong", "self", "error", "exit"), ("status", "401", "401")),
           KONG, KONG_SOURCE),
    Signal("kong-authz", "authz", (("in", KONG_SOURCE, "kong", "self", "error", "exit"), ("status", "403", "403")),
           KONG, KONG_SOURCE),
    Signal("kong-no-route", "routing", (("in", KONG_SOURCE, "kong", "self", "error", "exit"), ("status", "404", "404")),
           KONG, KONG_SOURCE),
    Signal("kong-rate-limited", "rate_limited",
           (("in", KONG_SOURCE, "kong", "self", "error", "exit"), ("status", "429", "429")), KONG, KONG_SOURCE),
    Signal("kong-upstream-failure", "dependency", (("in", KONG_SOURCE, "kong", "self", "error", "exit"), E5), KONG,
           KONG_SOURCE, doc="Kong itself answered 5xx: it could not reach or hear from the upstream"),
    # --- AWS API Gateway: $context.error.responseType
    Signal("apigw-missing-token-unknown-path", "routing",
           (("eq", APIGW_TYPE, "MISSING_AUTHENTICATION_TOKEN"), ("null", "http.route|raw:resourcePath|raw:routeKey"),),
           APIGW, APIGW_TYPE,
           doc="REST APIs answer an unknown path with 403 Missing Authentication Token: routing, not auth"),
    Signal("apigw-missing-token", "authn", (("eq", APIGW_TYPE, "MISSING_AUTHENTICATION_TOKEN"),), APIGW, APIGW_TYPE),
    Signal("apigw-authn", "authn",
           (("in", APIGW_TYPE, "UNAUTHORIZED", "EXPIRED_TOKEN", "INVALID_SIGNATURE", "INVALID_API_KEY"),), APIGW,
           APIGW_TYPE),
    Signal("apigw-authz", "authz", (("in", APIGW_TYPE, "ACCESS_DENIED", "WAF_FILTERED"),), APIGW, APIGW_TYPE),
    Signal("apigw-routing", "routing", (("in", APIGW_TYPE, "RESOURCE_NOT_FOUND"),), APIGW, APIGW_TYPE),
    Signal("apigw-throttled", "rate_limited", (("in", APIGW_TYPE, "THROTTLED", "QUOTA_EXCEEDED"),), APIGW, APIGW_TYPE),
    Signal("apigw-integration", "dependency",
           (("in", APIGW_TYPE, "INTEGRATION_FAILURE", "INTEGRATION_TIMEOUT", "AUTHORIZER_FAILURE",
             "AUTHORIZER_CONFIGURATION_ERROR"),), APIGW, APIGW_TYPE),
    # --- Azure APIM: LastErrorSource / LastErrorReason
    Signal("apim-audience", "authz", (("has", APIM_REASON, "audiencenotallowed"),), APIM, APIM_REASON, "audience"),
    Signal("apim-validate", "authn",
           (("in", APIM_SOURCE, "validate-jwt", "validate-client-certificate", "validate-azure-ad-token",
             "authentication-certificate"),), APIM, APIM_REASON),
    Signal("apim-rate", "rate_limited", (("in", APIM_SOURCE, "rate-limit", "rate-limit-by-key", "quota",
                                          "quota-by-key"),), APIM, APIM_REASON),
    Signal("apim-ip-filter", "authz", (("in", APIM_SOURCE, "ip-filter", "check-header"),), APIM, APIM_REASON),
    Signal("apim-forward", "dependency", (("in", APIM_SOURCE, "forward-request"),), APIM, APIM_REASON),
    Signal("apim-no-operation", "routing", (("or", ("has", APIM_REASON, "operationnotfound"),
                                                     ("has", APIM_REASON, "apinotfound")),), APIM, APIM_REASON),
    # --- HAProxy: termination state
    Signal("haproxy-no-server", "routing", (("has", "upstream.address|raw:server_name", "<nosrv>"),), HAPROXY,
           FLAGS, doc="no server was chosen: a routing failure whatever the status"),
    Signal("haproxy-proxy-deny-401", "authn", (("first", FLAGS, "P"), ("status", "401", "401")), HAPROXY, FLAGS),
    Signal("haproxy-proxy-deny-429", "rate_limited", (("first", FLAGS, "P"), ("status", "429", "429")), HAPROXY, FLAGS),
    Signal("haproxy-proxy-deny", "authz", (("first", FLAGS, "P"), ("status", "403", "403")), HAPROXY, FLAGS),
    Signal("haproxy-client-abort", "client_abort", (("first", FLAGS, "C"),), HAPROXY, FLAGS),
    Signal("haproxy-server", "dependency", (("first", FLAGS, "S"),), HAPROXY, FLAGS),
    Signal("haproxy-resource", "dependency", (("first", FLAGS, "R", "I"),), HAPROXY, FLAGS),
    # --- Traefik: OriginStatus absent means Traefik answered itself
    Signal("traefik-no-router", "routing", (("null", TRAEFIK_ORIGIN), ("status", "404", "404")), TRAEFIK,
           "raw:RouterName|http.response.status_code"),
    Signal("traefik-authn", "authn", (("null", TRAEFIK_ORIGIN), ("status", "401", "401")), TRAEFIK,
           "http.response.status_code"),
    Signal("traefik-authz", "authz", (("null", TRAEFIK_ORIGIN), ("status", "403", "403")), TRAEFIK,
           "http.response.status_code"),
    Signal("traefik-rate", "rate_limited", (("null", TRAEFIK_ORIGIN), ("status", "429", "429")), TRAEFIK,
           "http.response.status_code"),
    Signal("traefik-upstream", "dependency", (("null", TRAEFIK_ORIGIN), E5), TRAEFIK, "http.response.status_code"),
    # --- Cloudflare
    Signal("cloudflare-mtls", "authn",
           (("in", "tls.client.verify_result|raw:ClientMTLSAuthStatus", "absent", "untrusted", "notyetvalid",
             "expired"), E4), CLOUDFLARE, "tls.client.verify_result|raw:ClientMTLSAuthStatus"),
    Signal("cloudflare-rate", "rate_limited", (("has", CF_SOURCES, "ratelimit"),), CLOUDFLARE, CF_SOURCES),
    Signal("cloudflare-security", "authz",
           (("or", ("loose_in", CF_SECURITY, *CF_BLOCKING), ("has", CF_SECURITY, "block"),
             ("in", "authz.decision", "deny")),), CLOUDFLARE, f"{CF_SOURCES}|{CF_SECURITY}",
           doc="a block, a served or failed challenge, a drop or a closed connection stopped the request"),
    Signal("cloudflare-origin-unreachable", "dependency", (("in", CF_ORIGIN, "0"), E5), CLOUDFLARE, CF_ORIGIN,
           doc="OriginResponseStatus 0: no response from the origin"),
    Signal("cloudflare-client-abort", "client_abort", (("status", "499", "499"),), CLOUDFLARE,
           "http.response.status_code"),
    # --- CloudFront: x-edge-detailed-result-type
    Signal("cloudfront-origin", "dependency", (("prefix", CLOUDFRONT_DETAIL, "origin"),), CLOUDFRONT, CLOUDFRONT_DETAIL),
    Signal("cloudfront-client", "client_abort",
           (("or", ("prefix", CLOUDFRONT_DETAIL, "clienthungup"), ("prefix", CLOUDFRONT_DETAIL, "clientcommerror"),
             ("status", "0", "0")),), CLOUDFRONT, CLOUDFRONT_DETAIL),
    Signal("cloudfront-geo", "authz", (("prefix", CLOUDFRONT_DETAIL, "clientgeoblocked"),), CLOUDFRONT,
           CLOUDFRONT_DETAIL),
    Signal("cloudfront-limit", "rate_limited",
           (("in", CLOUDFRONT_DETAIL, "limitexceeded", "capacityexceeded"),), CLOUDFRONT, CLOUDFRONT_DETAIL),
    # --- Akamai DataStream 2: errorCode
    Signal("akamai-denied", "authz", (("has", AKAMAI_ERR, "err_access_denied"),), AKAMAI, AKAMAI_ERR),
    Signal("akamai-origin", "dependency",
           (("or", ("has", AKAMAI_ERR, "err_connect"), ("has", AKAMAI_ERR, "err_read_timeout"),
             ("has", AKAMAI_ERR, "err_dns"), ("has", AKAMAI_ERR, "err_zero_size_object")),), AKAMAI, AKAMAI_ERR),
    # --- AWS WAF: terminatingRuleType / action
    Signal("aws-waf-rate-based", "rate_limited", (("eq", WAF_RULE_TYPE, "RATE_BASED"), ("prefix", WAF_ACTION, "block")),
           AWS_WAF, "failure.reason|raw:terminatingRuleId",
           doc="a rate-based rule blocked the request: rate limiting, not an authorization decision"),
    # --- AWS ALB
    Signal("alb-auth", "authn", (("prefix", ALB_ERR, "auth"),), ALB, ALB_ERR),
    Signal("alb-waf", "dependency", (("prefix", ALB_ERR, "waf"),), ALB, ALB_ERR,
           doc="WAFConnectionError, WAFConnectionTimeout, WAFResponseReadTimeout, WAFServiceError, WAFMemoryExceeded, "
               "WAFUnhandledException: the load balancer could not get a verdict from AWS WAF"),
    Signal("alb-target", "dependency", (("or", ("prefix", ALB_ERR, "target"), ("prefix", ALB_ERR, "lambda")),), ALB,
           ALB_ERR),
    Signal("alb-client-abort", "client_abort", (("status", "460", "460"),), ALB, "http.response.status_code"),
    # --- NGINX (and nginx-ingress): no upstream means nginx answered itself
    Signal("nginx-client-cert", "authn", (("status", "495", "496"),), NGINX, "tls.client.verify_result"),
    Signal("nginx-client-abort", "client_abort", (("status", "499", "499"),), NGINX, "http.response.status_code"),
    Signal("nginx-local-401", "authn", (("null", "upstream.status_codes|upstream.address"), ("status", "401", "401")),
           NGINX, "http.response.status_code"),
    Signal("nginx-local-403", "authz", (("null", "upstream.status_codes|upstream.address"), ("status", "403", "403")),
           NGINX, "http.response.status_code"),
    Signal("nginx-local-404", "routing",
           (("null", "upstream.status_codes|upstream.address"), ("status", "404", "404")), NGINX,
           "http.response.status_code"),
    Signal("nginx-local-421", "routing", (("status", "421", "421"),), NGINX, "http.response.status_code"),
    Signal("nginx-limit", "rate_limited", (("null", "upstream.status_codes|upstream.address"), ("status", "429", "429")),
           NGINX, "http.response.status_code"),
    Signal("nginx-no-upstream-5xx", "dependency", (("null", "upstream.status_codes|upstream.address"), E5), NGINX,
           "http.response.status_code"),
    # --- generic decision fields set by any parser
    Signal("tls-client-verify", "authn",
           (("or", ("prefix", "tls.client.verify_result", "failed"),
             ("in", "tls.client.verify_result", "untrusted", "expired", "notyetvalid")), ("or", E4, NO_STATUS)), (),
           "tls.client.verify_result",
           doc="also with no status: a handshake that rejected the client certificate never reached HTTP"),
    Signal("authn-failure", "authn", (("eq", "authn.result", "failure"), E4), (), "failure.reason|authn.mechanism"),
    Signal("audience-mismatch", "authz",
           (("or", ("has", "failure.reason|raw:error|raw:message|raw:msg", "insufficient_scope"),
             ("has", "failure.reason|raw:error|raw:message|raw:msg", "invalid_audience"),
             ("has", "failure.reason|raw:error|raw:message|raw:msg", "audience")), ("status", "401", "403")), (),
           "failure.reason|raw:error|raw:message|raw:msg", "audience"),
    Signal("sts-invalid-target", "token_exchange",
           (("has", "failure.reason|raw:error|raw:message|raw:msg", "invalid_target"),), (),
           "failure.reason|raw:error|raw:message|raw:msg"),
    Signal("authz-deny", "authz", (("eq", "authz.decision", "deny"), E4), (), "authz.policy|failure.reason"),
    # --- parser-provided class, then status-only fallbacks (never claim the status as self-produced)
    Signal("parser-class", "@failure.class",
           (("notnull", "failure.class"), ("notin", "failure.class", "none", "unknown")), (), "failure.reason",
           self_produced=False),
    Signal("status-401", "authn", (("status", "401", "401"),), (), "failure.reason|http.response.status_code",
           self_produced=False),
    Signal("status-407", "authn", (("status", "407", "407"),), (), "failure.reason|http.response.status_code",
           self_produced=False),
    Signal("status-403", "authz", (("status", "403", "403"),), (), "failure.reason|http.response.status_code",
           self_produced=False),
    Signal("status-404", "routing", (("status", "404", "405"),), (), "failure.reason|http.response.status_code",
           self_produced=False),
    Signal("status-429", "rate_limited", (("status", "429", "429"),), (), "failure.reason|http.response.status_code",
           self_produced=False),
    Signal("status-client-abort", "client_abort", (("or", ("status", "499", "499"), ("status", "0", "0")),), (),
           "failure.reason|http.response.status_code", self_produced=False),
    Signal("status-5xx", "dependency", (E5,), (), "failure.reason|http.response.status_code", self_produced=False),
)
"""The classification table, first match wins. ``@failure.class`` takes the class the parser already set."""

RELAY: tuple[tuple[tuple[str, ...], tuple[Cond, ...]], ...] = (
    ((), (("eq", "failure.origin", "upstream"),)),
    (ENVOY, (("eq", RCD, "via_upstream"),)),
    (KONG, (("in", KONG_SOURCE, "upstream", "service"),)),
    (TRAEFIK, (("notnull", TRAEFIK_ORIGIN),)),
    (NGINX, (("notnull", "upstream.status_codes"), ("notin", "upstream.status_codes", "-"))),
    (HAPROXY, (("first", FLAGS, "-"),)),
    (CLOUDFLARE, (("notnull", CF_ORIGIN), ("notin", CF_ORIGIN, "0"))),
)
"""Markers that a hop relayed its upstream's status (checked before the signals' self_produced flag)."""

AUTH_CLASSES = ("authn", "authz", "token_exchange")
TOKEN_TAGS = ("audience", "scope")


SIGNALS_TABLE_HEADER = "| id | products | conditions | class | tag | self-produced |"
"""Header row of the signal table in docs/trace-classification.md (``scripts/gen_trace_docs.py``)."""


def _md_ref(ref: str) -> str:
    return "`" + ref.replace("|", " / ") + "`"


def cond_markdown(c: Cond) -> str:
    """A condition as the signal table in docs/trace-classification.md spells it."""
    op = c[0]
    if op == "or":
        return "(" + " or ".join(cond_markdown(tuple(x)) for x in c[1:]) + ")"
    if op == "status":
        return f"status {c[1]}" if c[1] == c[2] else f"status {c[1]}\u2013{c[2]}"
    if op == "nostatus":
        return "no status"
    name = "in (ignoring case, `_`, `-`, spaces)" if op == "loose_in" else op
    return " ".join([name, _md_ref(c[1]), *(f"`{v}`" for v in c[2:])])


def signals_markdown(signals: tuple[Signal, ...] = SIGNALS) -> str:
    """The signal table of docs/trace-classification.md, section 3, rendered from ``SIGNALS`` (header included,
    one row per signal in match order, newline-terminated)."""
    lines = [SIGNALS_TABLE_HEADER, "|---|---|---|---|---|---|"]
    for s in signals:
        conds = " and ".join(cond_markdown(c) for c in s.when)
        lines.append(f"| `{s.id}` | {', '.join(s.products) or 'any'} | {conds} | **{s.cls}** | {s.tag} | "
                     f"{'yes' if s.self_produced else 'no'} |")
    return "\n".join(lines) + "\n"


def field_expr(ref: str, d: Dialect, raw: Any = None, col: Any = None) -> str:
    """SQL for a field reference: canonical name, ``raw:<Key>``, or alternatives ``a|b``; always a string.

    ``raw`` optionally maps a ``raw.unmapped`` key to SQL (DuckDB extracts all keys in one JSON parse), and
    ``col`` a canonical column (DuckDB packs the signal inputs of error hops in one list)."""
    parts = []
    for alt in ref.split("|"):
        if alt.startswith("raw:"):
            parts.append(raw(alt[4:]) if raw is not None else d.json_str(d.q("raw.unmapped"), alt[4:]))
        else:
            parts.append(col(alt) if col is not None else f"CAST({d.q(alt)} AS STRING)")
    inner = parts[0] if len(parts) == 1 else "coalesce(" + ", ".join(parts) + ")"
    # Empty strings and "-" are how logs spell "absent".
    return f"(CASE WHEN trim({inner}) IN ('', '-') THEN NULL ELSE {inner} END)"


def _norm(expr: str) -> str:
    return f"replace(lower({expr}), ' ', '_')"


def _loose(expr: str) -> str:
    return f"replace(replace(replace(lower({expr}), '_', ''), '-', ''), ' ', '')"


def _loose_value(value: str) -> str:
    return value.lower().replace("_", "").replace("-", "").replace(" ", "")


def cond_sql(c: Cond, d: Dialect, fx: Any = None) -> str:
    """SQL for one condition; ``fx`` maps a field reference to SQL (default: :func:`field_expr`)."""
    op = c[0]
    if op == "or":
        return "(" + " OR ".join(cond_sql(tuple(x), d, fx) for x in c[1:]) + ")"
    if op == "status":
        lo, hi = int(c[1]), int(c[2])
        return f"(status BETWEEN {lo} AND {hi})"
    if op == "nostatus":
        return "(status IS NULL)"
    f = fx(c[1]) if fx is not None else field_expr(c[1], d)
    if op == "has":
        return f"coalesce(instr({_norm(f)}, {lit(c[2].lower().replace(' ', '_'), d)}) > 0, false)"
    if op == "eq":
        return f"coalesce(lower({f}) = {lit(c[2].lower(), d)}, false)"
    if op == "in":
        return f"coalesce(lower({f}) IN {in_list([v.lower() for v in c[2:]], d)}, false)"
    if op == "loose_in":
        # like "in", but "_", "-" and spaces do not count: managedChallenge = managed_challenge = managed-challenge
        return f"coalesce({_loose(f)} IN {in_list(sorted({_loose_value(v) for v in c[2:]}), d)}, false)"
    if op == "notin":
        return f"coalesce(lower({f}) NOT IN {in_list([v.lower() for v in c[2:]], d)}, true)"
    if op == "prefix":
        v = c[2].lower()
        return f"coalesce(substr(lower({f}), 1, {len(v)}) = {lit(v, d)}, false)"
    if op == "first":
        return f"coalesce(upper(substr({f}, 1, 1)) IN {in_list([x.upper() for x in c[2:]], d)}, false)"
    if op == "flag":
        # Envoy flags are a comma list ("UF,URX"); tolerate spaces.
        return f"coalesce(instr(concat(',', replace(upper({f}), ' ', ''), ','), {lit(',' + c[2].upper() + ',', d)}) > 0, false)"
    if op == "null":
        return f"({f} IS NULL)"
    if op == "notnull":
        return f"({f} IS NOT NULL)"
    raise ValueError(f"unknown condition op {op!r}")


def product_sql(products: tuple[str, ...], d: Dialect, px: Any = None) -> str:
    if not products:
        return "true"
    if px is not None:
        return str(px(products))
    hay = f"lower(concat(coalesce({d.q('hop.product')}, ''), ' ', coalesce({d.q('source.format')}, '')))"
    return "(" + " OR ".join(f"instr({hay}, {lit(p, d)}) > 0" for p in products) + ")"


def signal_sql(s: Signal, d: Dialect, fx: Any = None, px: Any = None) -> str:
    return "(" + " AND ".join([product_sql(s.products, d, px), *(cond_sql(c, d, fx) for c in s.when)]) + ")"


def hop_class_select(d: Dialect, signals: tuple[Signal, ...] = SIGNALS) -> tuple[str, str, str]:
    """Three SELECT lists for one hop, applied in stages so the generated code stays small (Spark compiles each
    stage to Java): every field reference and product family once (``fx_i``, ``px_i``); then the index of the
    first matching signal and the relay marker; then sig, hop_class, hop_reason, tag and hop_self."""
    fields: dict[str, str] = {}
    families: dict[tuple[str, ...], str] = {}

    def fx(ref: str) -> str:
        return fields.setdefault(ref, f"fx_{len(fields)}")

    def px(products: tuple[str, ...]) -> str:
        return families.setdefault(products, f"px_{len(families)}")

    idx = "CASE " + " ".join(f"WHEN {signal_sql(s, d, fx, px)} THEN {i}" for i, s in enumerate(signals)) + " END"
    # a hop with no status is classified only by the signals that say they apply to one (NO_STATUS)
    bare = [(i, s) for i, s in enumerate(signals) if _allows_no_status(s)]
    if bare:
        bare_idx = "CASE " + " ".join(f"WHEN {signal_sql(s, d, fx, px)} THEN {i}" for i, s in bare) + " END"
        idx = f"CASE WHEN status IS NULL THEN {bare_idx} ELSE {idx} END"
    relay = " OR ".join(
        "(" + " AND ".join([product_sql(p, d, px), *(cond_sql(c, d, fx) for c in conds)]) + ")" for p, conds in RELAY
    )
    first = f"{idx} AS sig_idx, ({relay}) AS relays"

    def by_idx(value: Any, default: str) -> str:
        return "CASE sig_idx " + " ".join(f"WHEN {i} THEN {value(s)}" for i, s in enumerate(signals)) + \
            f" ELSE {default} END"

    sig = by_idx(lambda s: lit(s.id, d), "NULL")
    cls = by_idx(lambda s: fx("failure.class") if s.cls.startswith("@") else lit(s.cls, d), "'none'")
    reason = by_idx(lambda s: fx(s.reason or "failure.reason"), "NULL")
    tag = by_idx(lambda s: lit(s.tag, d), "''")
    self_sig = by_idx(lambda s: "true" if s.self_produced else "false", "false")
    hop_self = f"CASE WHEN layer = 'backend' THEN true WHEN relays THEN false ELSE {self_sig} END"
    second = f"{sig} AS sig, {cls} AS hop_class, {reason} AS hop_reason, {tag} AS tag, {hop_self} AS hop_self"
    canon = signal_columns(signals)
    raw_keys: dict[str, int] = {}

    def raw(key: str) -> str:
        return f"_rx[{len(canon) + raw_keys.setdefault(key, len(raw_keys) + 1)}]"

    def col(name: str) -> str:
        return f"_rx[{canon.index(name) + 1}]"

    if d.name == "duckdb":
        # NOTE: one list per error hop holds every signal input: the canonical columns, then every raw key,
        # from one JSON parse per row (json_extract_string with a list of paths) instead of one parse per key;
        # the pipeline provides _rx (see raw_extract_sql). A null list costs a hop without an error nothing.
        pre = ", ".join([*(f"{field_expr(ref, d, raw, col)} AS {alias}" for ref, alias in fields.items()),
                         *(f"{product_sql(p, d)} AS {alias}" for p, alias in families.items())])
        pre += f" /*rx:{json.dumps(list(raw_keys))}*/"
    else:
        pre = ", ".join([*(f"{field_expr(ref, d)} AS {alias}" for ref, alias in fields.items()),
                         *(f"{product_sql(p, d)} AS {alias}" for p, alias in families.items())])
    return pre, first, second


def _allows_no_status(s: Signal) -> bool:
    def walk(c: Cond) -> bool:
        return c[0] == "nostatus" or (c[0] == "or" and any(walk(tuple(x)) for x in c[1:]))

    return any(walk(c) for c in s.when)


def classified_sql(d: Dialect) -> str:
    """The hops that are classified: error hops, and hops with no status at all (a no-status signal may say they
    failed, see ``NO_STATUS``)."""
    from apitrail.trace.correlate import is_err_sql

    return f"({is_err_sql(d)} OR {d.q('http.response.status_code')} IS NULL)"


def signal_columns(signals: tuple[Signal, ...] = SIGNALS) -> tuple[str, ...]:
    """Canonical columns the signals and relay markers read (besides ``raw.unmapped`` and the product)."""
    refs: set[str] = set()

    def walk(c: Cond) -> None:
        if c[0] == "or":
            for x in c[1:]:
                walk(tuple(x))
        elif c[0] not in ("status", "nostatus"):
            refs.update(c[1].split("|"))

    for s in signals:
        for c in s.when:
            walk(c)
        refs.update((s.reason or "failure.reason").split("|"))
        if s.cls.startswith("@"):
            refs.add("failure.class")
    for _p, conds in RELAY:
        for c in conds:
            walk(c)
    return tuple(sorted(r for r in refs if not r.startswith("raw:")))


def _raw_keys(d: Dialect) -> list[str]:
    pre, _, _ = hop_class_select(d)
    return list(json.loads(pre.rsplit("/*rx:", 1)[1].rstrip("*/"))) if d.name == "duckdb" else []


def raw_extract_sql(d: Dialect) -> str | None:
    """DuckDB: ``_rx``, the list of every ``raw.unmapped`` key the signals read, in one JSON parse; only on
    the hops that are classified (:func:`classified_sql`, see :func:`hop_columns`)."""
    if d.name != "duckdb":
        return None
    paths = [lit(f'$."{k}"', d) for k in _raw_keys(d)]
    cols = [f"CAST({d.q(c)} AS VARCHAR)" for c in signal_columns()]
    return (f"CASE WHEN {classified_sql(d)} THEN list_concat([{', '.join(cols)}], "
            f"json_extract_string({d.q('raw.unmapped')}, [{', '.join(paths)}])) END AS _rx")


def hop_columns(d: Dialect) -> tuple[str, ...]:
    """Expressions over the source hop row that classification reads; the pipeline computes them once into
    ``t_h`` (see :func:`apitrail.trace.correlate.build_hop_table`), so the wide ``raw.unmapped`` is read once.

    Only a hop that answered with an error (or logged no status and failed, see ``NO_STATUS``) can be a
    request's failing hop, and only a failing hop's class, reason and self-production are ever shown, so the
    signal inputs are kept for those hops only (:func:`classified_sql`, null on the others): ``_rx`` on DuckDB (from :func:`raw_extract_sql`), ``raw.unmapped`` itself on Spark."""
    from apitrail.trace.correlate import KEEP_COLUMNS

    q = d.q
    err = classified_sql(d)
    raw = q("raw.unmapped")
    jwt_meta = d.regex(raw, 'jwt_authn:[^"]*:(iss|sub)[^"]*":"[^"-]')
    if d.name == "duckdb":
        cols = ["_rx"]
    else:
        cols = [f"CASE WHEN {err} THEN {q(c)} END AS {q(c)}" for c in signal_columns() if c not in KEEP_COLUMNS]
        cols.append(f"CASE WHEN {err} THEN {raw} END AS {raw}")
    cols.append(f"(CASE WHEN instr(coalesce({raw}, ''), 'jwt_authn') > 0 THEN {jwt_meta} ELSE false END) AS jwt_meta")
    token = ", ".join(q(c) for c in ("token.fingerprint", "token.issuer", "token.subject_fp", "token.client_id"))
    cols.append(f"coalesce({token}) IS NOT NULL AS token_seen")
    return tuple(cols)


def classify(run: Runner) -> None:
    """Create ``t_hc`` (per hop: group, depth, class, reason, self) and ``t_gc`` (per group: failing hop and class).

    Needs ``t_h`` (built with :func:`hop_columns` as extra columns), ``t_keys`` and ``t_hg`` from
    :func:`apitrail.trace.correlate.correlate`. Signals are evaluated on error hops and hops with no status
    only; the class of a hop that did not answer with an error is ``none``, and a hop with no status that a
    ``NO_STATUS`` signal classified counts as an error hop.
    """
    d = run.dialect
    q = d.q
    # A hop accepted the token when it says so, or when it logged the token's identity and did not itself
    # answer with an error (it passed the request on). Envoy's jwt_authn issuer in dynamic metadata counts.
    token_ok = (
        f"(lower(coalesce(h.{q('authn.result')}, '')) = 'success' OR "
        f"((h.token_seen OR h.jwt_meta) "
        f"AND lower(coalesce(h.{q('authn.result')}, '')) <> 'failure' AND NOT (h.is_err AND coalesce(s.hop_self, false))))"
    )
    pre, first, second = hop_class_select(d)
    # Each stage is its own (small) table: Spark compiles each stage to Java, and the code must stay small.
    run.create("t_sig0", f"SELECT hop_id, status, layer, {pre} FROM "
                         f"(SELECT h.*, h.product AS {q('hop.product')} FROM t_h h "
                         f"WHERE h.is_err OR h.status IS NULL) x")
    run.create("t_sig1", f"SELECT x.*, {first} FROM t_sig0 x")
    run.create("t_sig", f"SELECT hop_id, {second} FROM t_sig1 x")
    run.drop("t_sig0")
    run.drop("t_sig1")
    rank = layer_rank_sql(run)
    run.create(
        "t_hd",
        f"""
        SELECT hop_id, g, heur,
               row_number() OVER (PARTITION BY g ORDER BY tier, rk, ts ASC NULLS LAST, dir_rank, hop_id) AS depth
        FROM (SELECT y.*, CASE WHEN y.path IS NULL OR y.entry_path IS NULL OR y.path = y.entry_path THEN 0 ELSE 1 END
                          AS tier
              FROM (SELECT x.*, first_value(x.path) OVER (PARTITION BY x.g ORDER BY x.rk, x.ts ASC NULLS LAST,
                                                          x.dir_rank, x.hop_id) AS entry_path
                    FROM (SELECT hg.*, {rank.replace("layer_rank", "hg.layer_rank")} AS rk, h.path FROM t_hg hg JOIN t_h h ON hg.hop_id = h.hop_id) x) y) z
        """,
    )
    from apitrail.trace.blindspots import IDENTITY_FIELDS, has

    # a hop with no status that a signal classified failed before it could answer: an error hop
    hc = {"is_err": "(h.is_err OR (h.status IS NULL AND s.sig IS NOT NULL)) AS is_err"}
    cols = ", ".join([*(hc.get(c, f"h.{c}") for c in HC_COLUMNS), *(f"h.{q(c)}" for c in HC_CANONICAL),
                      *(f"h.{has(c)}" for c in (*IDENTITY_FIELDS, "trace.invalid_reason"))])
    run.create(
        "t_hc",
        f"""
        SELECT h.hop_id, x.g, x.heur, x.depth, fl.file, {cols}, t.k AS tk,
               s.sig, coalesce(s.hop_class, 'none') AS hop_class, s.hop_reason, coalesce(s.tag, '') AS tag,
               coalesce(s.hop_self, false) AS hop_self, {token_ok} AS token_ok
        FROM t_h h JOIN t_hd x ON h.hop_id = x.hop_id
        LEFT JOIN t_files fl ON h.fidx = fl.fidx
        LEFT JOIN t_sig s ON h.hop_id = s.hop_id
        LEFT JOIN (SELECT hop_id, k FROM t_keys WHERE kind = 'trace_id') t ON h.hop_id = t.hop_id
        """,
    )
    run.drop("t_hd")
    auth = in_list(AUTH_CLASSES, d)
    run.create(
        "t_gc0",
        f"""
        SELECT g,
               min_by(status, depth) AS final_status,
               min_by(is_err, depth) AS final_err,
               min(CASE WHEN hop_self AND is_err THEN depth END) AS self_depth,
               max(CASE WHEN is_err THEN depth END) AS deepest_err,
               max(CASE WHEN is_err AND hop_class IN {auth} THEN depth END) AS deepest_auth,
               max(CASE WHEN is_err AND hop_self AND hop_class NOT IN ('none', 'client_abort')
                        THEN depth END) AS deepest_self_err,
               max(depth) AS max_depth,
               min(CASE WHEN token_ok THEN depth END) AS accept_depth
        FROM t_hc GROUP BY g
        """,
    )
    # The failing hop, and every hop the cross-hop patterns look at, is an error hop of an error request.
    run.create(
        "t_hce",
        "SELECT g, depth, hop_id, hop_class, status, layer, sig, hop_reason, tag FROM t_hc WHERE is_err",
    )
    # The failing hop: the first hop (outermost first) that produced an error itself, else the deepest error hop.
    # Then the cross-hop patterns: a 5xx whose cause is an auth failure further down is that auth failure
    # (masked), and an application 5xx caused by a deeper application's error is that deeper error.
    masked = ("c.hop_class IN ('dependency', 'unknown') AND coalesce(c.status, 0) >= 500 "
              "AND a.deepest_auth > a.cand_depth")
    chained = ("c.layer = 'backend' AND c.hop_class NOT IN ('none', 'client_abort') "
               "AND a.deepest_self_err > a.cand_depth")
    run.create(
        "t_gc1",
        f"""
        SELECT a.*, c.hop_class AS cand_class, c.status AS cand_status,
               CASE WHEN NOT a.final_err THEN NULL
                    WHEN {masked} THEN a.deepest_auth
                    WHEN {chained} THEN a.deepest_self_err
                    ELSE a.cand_depth END AS fail_depth,
               CASE WHEN a.final_err AND ({masked} OR {chained}) THEN a.cand_depth END AS masked_by_depth
        FROM (SELECT x.*, coalesce(x.self_depth, x.deepest_err, x.max_depth) AS cand_depth FROM t_gc0 x) a
        LEFT JOIN t_hce c ON c.g = a.g AND c.depth = a.cand_depth
        """,
    )
    tags = in_list(TOKEN_TAGS, d)
    run.create(
        "t_gc",
        f"""
        SELECT b.g, b.final_status, b.fail_depth, b.masked_by_depth, f.sig, f.hop_reason AS reason, f.tag,
               f.layer AS fail_layer, f.hop_id AS fail_hop_id, b.accept_depth,
               CASE WHEN b.fail_depth IS NULL THEN 'none'
                    WHEN f.tag IN {tags} AND b.accept_depth < b.fail_depth THEN 'token_exchange'
                    ELSE coalesce(f.hop_class, 'unknown') END AS class
        FROM t_gc1 b
        LEFT JOIN t_hce f ON f.g = b.g AND f.depth = b.fail_depth
        """,
    )
    for t in ("t_gc0", "t_gc1", "t_hce"):
        run.drop(t)


SWAPPABLE_LAYERS: tuple[tuple[str, str], ...] = (("proxy", "gateway"),)
"""Pairs of layers whose order varies between deployments (NGINX in front of the gateway, or behind it on a VPC
link); the data decides (:func:`layer_rank_sql`)."""


def layer_rank_sql(run: Runner) -> str:
    """The depth order of layers as SQL over ``t_hg.layer_rank``: ``LAYER_RANK``, except that a swappable pair is
    reversed when the joined requests say so. Every request that reaches the inner layer passed the outer one,
    while the outer one answers some requests alone: so when groups with both layers are common, groups with the
    default outer layer alone (here: proxy without gateway) are rare, and groups with the default inner layer
    alone (gateway without proxy) are at least three times as common, the gateway is in front of the proxy.
    Only groups of two or more hops count (a lone hop may just be a join that failed)."""
    from apitrail.trace.correlate import LAYER_RANK

    swaps: dict[int, int] = {}
    for outer, inner in SWAPPABLE_LAYERS:
        ro, ri = LAYER_RANK[outer], LAYER_RANK[inner]
        row = run.rows(
            f"""
            SELECT coalesce(sum(CASE WHEN o = 1 AND i = 1 THEN 1 ELSE 0 END), 0) AS n_both,
                   coalesce(sum(CASE WHEN o = 1 AND i = 0 THEN 1 ELSE 0 END), 0) AS n_outer,
                   coalesce(sum(CASE WHEN o = 0 AND i = 1 THEN 1 ELSE 0 END), 0) AS n_inner
            FROM (SELECT g, max(CASE WHEN layer_rank = {ro} THEN 1 ELSE 0 END) AS o,
                         max(CASE WHEN layer_rank = {ri} THEN 1 ELSE 0 END) AS i
                  FROM t_hg GROUP BY g HAVING count(*) >= 2) x
            """
        )[0]
        both, only_outer, only_inner = int(row["n_both"]), int(row["n_outer"]), int(row["n_inner"])
        if both >= 3 and only_inner >= 3 * max(only_outer, 1):
            swaps[ro], swaps[ri] = ri, ro
    if not swaps:
        return "layer_rank"
    return "CASE layer_rank " + " ".join(f"WHEN {a} THEN {b}" for a, b in sorted(swaps.items())) + " ELSE layer_rank END"


HC_COLUMNS: tuple[str, ...] = ("fidx", "line", "rec", "layer", "product", "direction", "instance", "status", "is_err",
                               "ts", "method", "path", "client", "tsrc")
"""Short ``t_h`` columns carried into ``t_hc`` (trace output, classification, blind spots)."""

HC_CANONICAL: tuple[str, ...] = ("schema.source_fingerprint", "tls.forwarded_by", "network.peer.address")
"""Canonical ``t_h`` columns the blind spots read per group, besides the identity presence flags (identity
coverage reads ``t_h``)."""


__all__ = ["AUTH_CLASSES", "RELAY", "SIGNALS", "Signal", "classify", "cond_sql", "field_expr", "hop_class_select",
           "hop_columns", "raw_extract_sql", "signal_columns", "signals_markdown"]
