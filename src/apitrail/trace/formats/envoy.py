"""Envoy and Istio access logs: the Envoy default TEXT format, the Istio sidecar default TEXT formats (current and
older releases), any Envoy format string, and Envoy JSON access logs (``json_format``).

An Envoy access log line is its format string with every command operator (``%REQ(X-REQUEST-ID)%``,
``%RESPONSE_FLAGS%``, ``%START_TIME(%s)%``, ``%REQ(USER-AGENT):40%`` truncated to 40 characters, ...) replaced by
its value, ``-`` when the value is empty. The text formatter does not escape quotes, so a quoted operator is
matched up to the next ``"``. The compiler here turns a format string into an anchored regex with one group per
operator, so the built-in formats are just the documented format strings compiled at import.

Identity and failure fields, by operator:

* correlation: ``%REQ(X-REQUEST-ID)%`` (Envoy generates it at the edge and forwards it; Istio's two sidecar lines
  of one request share it), ``%TRACE_ID%`` (set even on local replies, where ``%REQ(TRACEPARENT)%`` is empty),
  ``%REQ(TRACEPARENT)%``, ``%REQ(X-B3-TRACEID)%``, ``%REQ(X-FORWARDED-CLIENT-CERT)%`` (XFCC chain of custody);
* peer identity: ``%DOWNSTREAM_PEER_URI_SAN%`` (SPIFFE id), ``%DOWNSTREAM_PEER_SUBJECT%``/``ISSUER%``,
  ``%DOWNSTREAM_PEER_FINGERPRINT_256%`` (hex SHA-256), ``%DOWNSTREAM_PEER_SERIAL%``, ``%DOWNSTREAM_TLS_VERSION%``;
* failure: ``%RESPONSE_FLAGS%`` (``UAEX`` ext_authz denied, ``NR`` no route, ``UF``/``UH``/``URX`` upstream
  failures, ``RL`` rate limited, ...), ``%RESPONSE_CODE_DETAILS%`` (``via_upstream`` when the upstream answered;
  ``jwt_authn_access_denied{...}``, ``rbac_access_denied_matched_policy[...]``, ``ext_authz_denied`` when Envoy
  answered itself), ``%UPSTREAM_TRANSPORT_FAILURE_REASON%`` (a TLS failure towards the next hop: an identity
  failure of that hop, not a plain dependency failure), ``%CONNECTION_TERMINATION_DETAILS%``;
* direction (Istio): ``%UPSTREAM_CLUSTER%`` starts with ``outbound|`` on the client sidecar and ``inbound|`` on
  the server sidecar; the same request is logged once by each.

Istio's default text format changed over releases: 1.3-1.4 logged ``"%DYNAMIC_METADATA(istio.mixer:status)%"``
after the flags (with ``%ROUTE_NAME%`` from 1.4), 1.5-1.7 added ``"%UPSTREAM_TRANSPORT_FAILURE_REASON%"``, and
1.8+ logs ``%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%"``. All
variants and the Envoy default are tried per file (the variant that matched last is tried first).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache

from apitrail.trace.formats._base import FormatOptions, LogFormat, Reject, Vector, flatten, get_path, loads_object
from apitrail.trace.formats._template_utils import (
    Applier,
    CompiledTemplate,
    MultiTemplateParser,
    Record,
    apply_target,
    header_applier,
    put,
    put_epoch,
    put_host,
    put_method,
    put_seconds,
    put_status,
    strip_eol,
    template_vector,
    trace_id,
)
from apitrail.trace.normalize.casts import py_cast

ENVOY_DEFAULT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
    "%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "
    '"%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"'
)
_ISTIO_HEAD = '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
_ISTIO_TAIL = (
    "%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "
    '"%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" '
    "%UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME%"
)
ISTIO_DEFAULT = (
    _ISTIO_HEAD + '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" '
    + _ISTIO_TAIL + " %ROUTE_NAME%"
)
ISTIO_1_5 = (
    _ISTIO_HEAD + '"%DYNAMIC_METADATA(istio.mixer:status)%" "%UPSTREAM_TRANSPORT_FAILURE_REASON%" '
    + _ISTIO_TAIL + " %ROUTE_NAME%"
)
ISTIO_1_4 = _ISTIO_HEAD + '"%DYNAMIC_METADATA(istio.mixer:status)%" ' + _ISTIO_TAIL + " %ROUTE_NAME%"
ISTIO_1_3 = _ISTIO_HEAD + '"%DYNAMIC_METADATA(istio.mixer:status)%" ' + _ISTIO_TAIL

# Istio's default JSON encoding (meshConfig.accessLogEncoding: JSON) keys -> the operator each one holds.
ISTIO_JSON_KEYS: dict[str, str] = {
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "response_code": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%",
    "response_code_details": "%RESPONSE_CODE_DETAILS%",
    "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
    "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "user_agent": "%REQ(USER-AGENT)%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%",
    "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "requested_server_name": "%REQUESTED_SERVER_NAME%",
    "route_name": "%ROUTE_NAME%",
    # Common additions in Istio/Envoy docs and Telemetry API examples.
    "traceparent": "%REQ(TRACEPARENT)%",
    "trace_id": "%TRACE_ID%",
    "x_request_id": "%REQ(X-REQUEST-ID)%",
    "peer_uri_san": "%DOWNSTREAM_PEER_URI_SAN%",
    "downstream_peer_uri_san": "%DOWNSTREAM_PEER_URI_SAN%",
}

# --------------------------------------------------------------------------------------------- operators


def _direction(rec: Record, value: str) -> None:
    # the SQL path's direction cast and this share one rule (casts.py)
    direction = py_cast(value, "direction")
    if direction is not None:
        rec["hop.direction"] = direction


_direction._cast = "direction"  # type: ignore[attr-defined]  # the SQL fast path's cast of the same rule


def _start_time(arg: str | None) -> Applier:
    # %START_TIME(%s)% and %START_TIME(%s.%3f)% are epoch seconds; any other strftime layout goes to the core as is.
    if arg and arg.startswith("%s"):
        return put_epoch
    return put("in.timestamp")


# Envoy's long response-flag names (``%RESPONSE_FLAGS_LONG%``) -> the short codes the classifier knows.
RESPONSE_FLAGS_LONG: dict[str, str] = {
    "FailedLocalHealthCheck": "LH", "NoHealthyUpstream": "UH", "UpstreamRequestTimeout": "UT", "LocalReset": "LR",
    "UpstreamRemoteReset": "UR", "UpstreamConnectionFailure": "UF", "UpstreamConnectionTermination": "UC",
    "UpstreamOverflow": "UO", "NoRouteFound": "NR", "DelayInjected": "DI", "FaultInjected": "FI",
    "RateLimited": "RL", "UnauthorizedExternalService": "UAEX", "RateLimitServiceError": "RLSE",
    "DownstreamConnectionTermination": "DC", "UpstreamRetryLimitExceeded": "URX", "StreamIdleTimeout": "SI",
    "InvalidEnvoyRequestHeaders": "IH", "DownstreamProtocolError": "DPE", "UpstreamMaxStreamDurationReached": "UMSDR",
    "ResponseFromCacheFilter": "RFCF", "NoFilterConfigFound": "NFCF", "DurationTimeout": "DT",
    "UpstreamProtocolError": "UPE", "NoClusterFound": "NC", "OverloadManagerTerminated": "OM",
    "DnsResolutionFailed": "DF", "DropOverload": "DO", "DownstreamRemoteReset": "DR",
}


def _long_flags(rec: Record, value: str) -> None:
    # a name Envoy does not document (a custom flag) is kept as logged
    rec["response.flags"] = ",".join(RESPONSE_FLAGS_LONG.get(f, f) for f in value.split(","))


def _downstream_tls_failure(rec: Record, value: str) -> None:
    # the TLS handshake with the client failed (listener access logs): the reason, unless an upstream one is set
    rec.setdefault("failure.reason", value)


# Envoy 1.3x renamed REQ/RESP/TRAILER (the old names stay as aliases): one name for the rules below
_ALIASES = {"REQUEST_HEADER": "REQ", "RESPONSE_HEADER": "RESP", "RESPONSE_TRAILER": "TRAILER"}


def _canonical_op(op: str) -> str:
    return _ALIASES.get(op, op)


_OPERATORS: dict[str, Applier] = {
    "RESPONSE_CODE": put_status,
    "RESPONSE_FLAGS": put("response.flags"),
    "RESPONSE_FLAGS_LONG": _long_flags,
    "DOWNSTREAM_TRANSPORT_FAILURE_REASON": _downstream_tls_failure,
    "RESPONSE_CODE_DETAILS": put("in.envoy_rcd"),
    "UPSTREAM_TRANSPORT_FAILURE_REASON": put("failure.reason"),
    "DURATION": put_seconds(divisor=1000.0),
    "UPSTREAM_HOST": put("upstream.address"),
    "UPSTREAM_REMOTE_ADDRESS": put("upstream.address"),
    "UPSTREAM_CLUSTER": _direction,
    "UPSTREAM_CLUSTER_RAW": _direction,  # Istio 1.22+ default format
    "DOWNSTREAM_REMOTE_ADDRESS": put_host("client.address"),
    "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": put("client.address"),
    "DOWNSTREAM_DIRECT_REMOTE_ADDRESS": put_host("network.peer.address"),
    "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT": put("network.peer.address"),
    "DOWNSTREAM_PEER_SUBJECT": put("in.cert_subject"),
    "DOWNSTREAM_PEER_ISSUER": put("in.cert_issuer"),
    "DOWNSTREAM_PEER_URI_SAN": put("in.peer_uri_san"),
    "DOWNSTREAM_PEER_FINGERPRINT_256": put("in.cert_fingerprint"),
    "DOWNSTREAM_PEER_FINGERPRINT_1": put("in.cert_fingerprint"),
    "DOWNSTREAM_PEER_SERIAL": put("in.cert_serial"),
    "PATH": apply_target,  # %PATH(WQ:ORIG)%, Envoy 1.29+
    "DOWNSTREAM_TLS_VERSION": put("tls.protocol.version"),
    "TRACE_ID": trace_id("envoy.%TRACE_ID%"),
    "SPAN_ID": put("in.span_id"),
    "HOSTNAME": put("hop.instance"),
    "ROUTE_NAME": put("http.route"),
}

_PSEUDO: dict[str, Applier] = {
    ":method": put_method,
    ":path": apply_target,
    "x-envoy-original-path": apply_target,
    ":authority": put_host("server.address"),
    "host": put_host("server.address"),
    "x-envoy-external-address": put("client.address"),
}


def _jwt_claims(rec: Record, value: str) -> None:
    # jwt_authn payload_in_metadata logged through %DYNAMIC_METADATA(envoy.filters.http.jwt_authn:<key>)%
    try:
        claims = json.loads(value)
    except ValueError:
        return
    if isinstance(claims, dict):
        rec["in.jwt_claims"] = claims


def _jwt_claim(claim: str) -> Applier:
    """One claim of the jwt_authn payload, ``%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:<payload>:<claim>)%``:
    Envoy logs a string bare (or JSON-quoted by some builds), lists and numbers as JSON."""

    def apply(rec: Record, value: str) -> None:
        parsed: object = value
        if value[:1] in '[{"' or value.isdigit():
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = value
        claims = rec.setdefault("in.jwt_claims", {})
        if isinstance(claims, dict):
            claims[claim] = parsed

    apply._jwt_claim = claim  # type: ignore[attr-defined]  # the fast path maps the issuer itself
    return apply


def _cert_time(arg: str | None) -> Applier:
    # %DOWNSTREAM_PEER_CERT_V_END% takes START_TIME's layouts: %s is epoch seconds, others go to the core as is
    if arg and arg.startswith("%s"):
        def apply(rec: Record, value: str) -> None:
            try:
                rec["in.cert_not_after"] = float(value)
            except ValueError:
                rec["in.cert_not_after"] = value

        return apply
    return put("in.cert_not_after")


def operator_applier(op: str, arg: str | None) -> Applier | None:
    """The applier of one command operator (``REQ`` with its header argument, ``RESPONSE_FLAGS``, ...)."""
    op = _canonical_op(op)
    if op == "DOWNSTREAM_PEER_CERT_V_END":
        return _cert_time(arg)
    if op == "DYNAMIC_METADATA" and arg and arg.startswith("envoy.filters.http.jwt_authn:"):
        keys = arg.split(":")
        if len(keys) == 2:
            return _jwt_claims
        if len(keys) == 3 and keys[2]:
            return _jwt_claim(keys[2])
        return None
    if op in ("REQ", "REQ_WITHOUT_QUERY") and arg:
        header = arg.split("?", 1)[0].strip().lower()
        return _PSEUDO.get(header) or header_applier(header)
    if op in ("START_TIME", "START_TIME_LOCAL"):
        return _start_time(arg)
    return _OPERATORS.get(op)


_OP_RE = re.compile(r"%([A-Z][A-Z0-9_]*)(?:\(((?:[^()]|\([^()]*\))*)\))?(?::(\d+))?%")
# Values that may contain spaces; matched lazily when not quoted.
_SPACEY = frozenset({"UPSTREAM_TRANSPORT_FAILURE_REASON", "DOWNSTREAM_TRANSPORT_FAILURE_REASON",
                     "CONNECTION_TERMINATION_DETAILS", "DOWNSTREAM_PEER_SUBJECT", "DOWNSTREAM_PEER_ISSUER",
                     "DOWNSTREAM_LOCAL_SUBJECT", "UPSTREAM_PEER_SUBJECT", "UPSTREAM_PEER_ISSUER", "REQ", "RESP",
                     "TRAILER", "START_TIME", "START_TIME_LOCAL", "DOWNSTREAM_PEER_CERT_V_START",
                     "DOWNSTREAM_PEER_CERT_V_END", "UPSTREAM_PEER_CERT_V_START", "UPSTREAM_PEER_CERT_V_END",
                     "DYNAMIC_METADATA", "CLUSTER_METADATA", "UPSTREAM_METADATA", "FILTER_STATE",
                     "UPSTREAM_FILTER_STATE", "LOCAL_REPLY_BODY", "ENVIRONMENT"})
_NUMERIC = frozenset({"RESPONSE_CODE", "DURATION", "BYTES_RECEIVED", "BYTES_SENT", "REQUEST_DURATION",
                      "REQUEST_TX_DURATION", "RESPONSE_DURATION", "RESPONSE_TX_DURATION",
                      "UPSTREAM_REQUEST_ATTEMPT_COUNT",
                      "REQUEST_HEADERS_BYTES", "RESPONSE_HEADERS_BYTES", "RESPONSE_TRAILERS_BYTES",
                      "UPSTREAM_WIRE_BYTES_SENT", "UPSTREAM_WIRE_BYTES_RECEIVED"})
_NO_SPACE_HEADERS = frozenset({"x-envoy-original-path", "x-request-id", "traceparent", "tracestate", "b3", "x-b3-traceid",
                               "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "host", "content-length"})


def _raw_name(op: str, arg: str | None, trunc: str | None) -> str:
    return op + (f"({arg})" if arg is not None else "") + (f":{trunc}" if trunc else "")


def compile_format_string(fmt: str, label: str = "") -> CompiledTemplate:
    """Compile an Envoy text format string into a template (raw field names are the operators as written)."""
    fmt = _unwrap(fmt)
    parts: list[str] = []
    re2_parts: list[str] = []
    quotes = 0
    names: list[str] = []
    appliers: list[Applier | None] = []
    matches = list(_OP_RE.finditer(fmt))
    if not matches:
        raise ValueError("format string has no command operators")
    pos = 0
    seen: dict[str, int] = {}
    for i, m in enumerate(matches):
        literal = fmt[pos:m.start()]
        parts.append(re.escape(literal))
        re2_parts.append(re.escape(literal))
        quotes += literal.count('"')
        op, arg, trunc = m.group(1), m.group(2), m.group(3)
        after = fmt[m.end():matches[i + 1].start()] if i + 1 < len(matches) else fmt[m.end():]
        at_end = i + 1 == len(matches) and not after
        value = _value_pattern(op, arg, literal, after, at_end)
        parts.append("(" + value + ")")
        # RE2 has no lookahead: on a line whose only quotes are the format's own, "[^"]*" is the same field
        re2_parts.append("(" + ('[^"]*' if value.startswith('(?:[^"]++') else value) + ")")
        name = _raw_name(op, arg, trunc)
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
        appliers.append(operator_applier(op, arg))
        pos = m.end()
    parts.append(re.escape(fmt[pos:]))
    re2_parts.append(re.escape(fmt[pos:]))
    quotes += fmt[pos:].count('"')
    return CompiledTemplate(re.compile("".join(parts), re.DOTALL), tuple(names), tuple(appliers), label=label,
                            re2_pattern="".join(re2_parts), re2_quotes=quotes)


def _spacey(op: str, arg: str | None) -> bool:
    op = _canonical_op(op)
    if op not in _SPACEY:
        return False
    if op == "REQ" and arg:
        header = arg.split("?", 1)[0].strip().lower()
        return not (header.startswith(":") or header in _NO_SPACE_HEADERS)
    return True


def _value_pattern(op: str, arg: str | None, before: str, after: str, at_end: bool) -> str:
    nxt = after[:1]
    op = _canonical_op(op)
    if nxt == '"' and before[-1:] == '"':
        # Envoy does not escape quotes (XFCC's Subject="..." is common): a quote only closes the field when
        # the rest of the format follows it.
        rest = after[1:4]
        # possessive: the field ends at the first quote that the format's next literal follows, no backtracking
        return '(?:[^"]++|"(?!' + (re.escape(rest) if rest else "$") + "))*+"
    if op in _NUMERIC or (op == "RESP" and (arg or "").upper() == "X-ENVOY-UPSTREAM-SERVICE-TIME"):
        return r"\d+|-"
    if op in ("START_TIME", "START_TIME_LOCAL", "DOWNSTREAM_PEER_CERT_V_END") and nxt == "]":
        return r"[^\]]*"
    if at_end:  # a last value without spaces must not swallow what a lazy field before it left over
        return ".*" if _spacey(op, arg) else r"\S*"
    if not nxt:
        return ".*?"
    if nxt == " ":
        return ".*?" if _spacey(op, arg) else r"\S*"
    return "[^" + re.escape(nxt) + "]*"


def _unwrap(text: str) -> str:
    """Accept the format as pasted from YAML (``format: "..."``, ``inline_string: '...'``) or bare."""
    text = text.strip()
    m = re.match(r"^(?:(?:format|text_format|inline_string|text_format_source|log_format)\s*:\s*)+(.*)$", text,
                 re.DOTALL)
    if m:
        text = m.group(1).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        quote, text = text[0], text[1:-1]
        if quote == '"':
            text = text.replace('\\"', '"').replace("\\n", "\n")
    if text.endswith("\\n"):
        text = text[:-2]
    return text.rstrip("\n")


BUILTIN_ENVOY = compile_format_string(ENVOY_DEFAULT, "envoy-default")
BUILTIN_ISTIO = tuple(
    compile_format_string(f, label)
    for f, label in ((ISTIO_DEFAULT, "istio-1.8+"), (ISTIO_1_5, "istio-1.5"), (ISTIO_1_4, "istio-1.4"),
                     (ISTIO_1_3, "istio-1.3"))
)

# --------------------------------------------------------------------------------------------- JSON


def _flatten(obj: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _json_value(value: object) -> str | None:
    """A logged JSON value as the text operator would have written it: ``typed_json_format`` renders numbers,
    booleans and (for metadata and filter state) objects and lists; ``null``, ``""`` and ``"-"`` are absent."""
    if value is None or value == "" or value == "-":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False) if value else None
    return str(value)


class JsonKeyMap:
    """Key -> applier for Envoy JSON logs; a value that mixes text and operators is matched with a sub-template."""

    def __init__(self, json_format: Mapping[str, object]) -> None:
        self.appliers: dict[str, Applier] = {}
        self.templates: dict[str, CompiledTemplate] = {}
        for key, spec in _flatten(json_format).items():
            if not isinstance(spec, str):
                continue
            ops = list(_OP_RE.finditer(spec))
            if len(ops) == 1 and ops[0].span() == (0, len(spec)):
                applier = operator_applier(ops[0].group(1), ops[0].group(2))
                if applier is not None:
                    self.appliers[key] = applier
            elif ops:
                self.templates[key] = compile_format_string(spec, key)

    def parse(self, line: str) -> Record | None:
        line = line.strip()
        if not line:
            return None
        obj = loads_object(line)
        raw = flatten(obj)
        rec: Record = {"raw": raw, "in.raw_json": obj}
        for key, applier in self.appliers.items():
            value = _json_value(get_path(obj, tuple(key.split("."))))
            if value is not None:
                applier(rec, value)
        for key, template in self.templates.items():
            value = raw.get(key)
            if value and value != "-":
                sub = template.parse(value)
                if sub is not None:
                    sub.pop("raw", None)
                    rec.update(sub)
        if len(rec) == 2:
            raise Reject("JSON object has none of the configured access log keys")
        return rec


def _json_format_from(text: str) -> dict[str, object]:
    text = text.strip()
    try:
        obj = json.loads(text)
    except ValueError:
        import yaml  # the format may be pasted from an Envoy/Istio YAML config

        obj = yaml.safe_load(text)
    if isinstance(obj, dict):
        for key in ("json_format", "jsonFormat"):
            if isinstance(obj.get(key), dict):
                return obj[key]  # type: ignore[no-any-return]
        for value in obj.values():
            if isinstance(value, dict):
                try:
                    return _json_format_from(json.dumps(value))
                except ValueError:
                    continue
        if any(isinstance(v, str) and "%" in v for v in obj.values()):
            return obj
    raise ValueError("no json_format mapping found")


# --------------------------------------------------------------------------------------------- formats


def _text_parser(templates: tuple[CompiledTemplate, ...], what: str) -> Callable[[str], Record | None]:
    parse = MultiTemplateParser(templates)

    def parse_line(line: str) -> Record | None:
        line = strip_eol(line)
        rec = parse(line)
        if rec is None:
            if not line.strip():
                return None
            raise Reject(f"line does not match the {what} format")
        return rec

    return parse_line


@lru_cache(maxsize=1)
def _builtin_vectors() -> tuple[Vector | None, Vector | None]:
    return (template_vector(BUILTIN_ENVOY, siblings=BUILTIN_ISTIO),
            template_vector(BUILTIN_ISTIO[0], siblings=(*BUILTIN_ISTIO[1:], BUILTIN_ENVOY)))


@lru_cache(maxsize=32)
def _user_vector(text: str) -> Vector | None:
    try:
        return template_vector(compile_format_string(text, "user"))
    except ValueError:
        return None


def _vector_template(options: FormatOptions) -> Vector | None:
    if not options.template:
        return _builtin_vectors()[0]
    if _looks_like_json_format(options.template):
        return None
    return _user_vector(options.template)


def _make_envoy(options: FormatOptions) -> Callable[[str], Record | None]:
    return _text_parser((BUILTIN_ENVOY, *BUILTIN_ISTIO), "Envoy default")


def _make_istio(options: FormatOptions) -> Callable[[str], Record | None]:
    return _text_parser((*BUILTIN_ISTIO, BUILTIN_ENVOY), "Istio default")


def _make_json(options: FormatOptions) -> Callable[[str], Record | None]:
    return JsonKeyMap(ISTIO_JSON_KEYS).parse


def _looks_like_json_format(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith("{") or "json_format" in stripped or "jsonFormat" in stripped


def _make_template(options: FormatOptions) -> Callable[[str], Record | None]:
    """Parser of the user's Envoy format (``--log-format GLOB=envoy:@fmt``): a text format string, or a
    ``json_format`` mapping (JSON or YAML) for JSON access logs. Without a template: the default text formats."""
    text = options.template
    if not text:
        return _make_envoy(options)
    if _looks_like_json_format(text):
        try:
            return JsonKeyMap(_json_format_from(text)).parse
        except ValueError as exc:
            raise Reject(f"cannot read the Envoy json_format: {exc}") from exc
    try:
        template = compile_format_string(text, "user")
    except ValueError as exc:
        raise Reject(f"cannot compile the Envoy format string: {exc}") from exc
    return _text_parser((template,), "Envoy format string")


def _weighted_score(primary: tuple[CompiledTemplate, ...], secondary: tuple[CompiledTemplate, ...],
                    first_lines: list[str]) -> float:
    """Lines of the primary variants count 1, lines of the sibling variants 0.9 (files mix edge and sidecar)."""
    body = [strip_eol(x) for x in first_lines if x.strip()]
    if not body:
        return 0.0
    total = 0.0
    for line in body:
        if any(t.regex.fullmatch(line) for t in primary):
            total += 1.0
        elif any(t.regex.fullmatch(line) for t in secondary):
            total += 0.9
    return total / len(body)


def _detect_envoy(first_lines: list[str]) -> float:
    return 0.9 * _weighted_score((BUILTIN_ENVOY,), BUILTIN_ISTIO, first_lines)


def _detect_istio(first_lines: list[str]) -> float:
    return 0.95 * _weighted_score(BUILTIN_ISTIO, (BUILTIN_ENVOY,), first_lines)


def _detect_json(first_lines: list[str]) -> float:
    body = [x.strip() for x in first_lines if x.strip()]
    if not body:
        return 0.0
    hits = 0
    for line in body:
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "response_code" in obj and ("response_flags" in obj or "upstream_cluster" in obj):
            hits += 1
    return 0.9 * hits / len(body)


FORMATS = (
    LogFormat(
        name="envoy",
        layer="proxy",
        product="envoy",
        kind="text",
        doc="Envoy access log in the default text format.",
        detect=_detect_envoy,
        make_parser=_make_envoy,
        make_vector=lambda options: _builtin_vectors()[0],
    ),
    LogFormat(
        name="istio",
        layer="mesh",
        product="istio",
        kind="text",
        doc="Istio sidecar/gateway default text access log (1.3 to current); direction from the cluster name.",
        detect=_detect_istio,
        make_parser=_make_istio,
        make_vector=lambda options: _builtin_vectors()[1],
    ),
    LogFormat(
        name="envoy_json",
        layer="mesh",
        product="envoy",
        kind="json",
        doc="Envoy/Istio JSON access log with Istio's default keys (a user json_format goes to envoy_template).",
        detect=_detect_json,
        make_parser=_make_json,
    ),
    LogFormat(
        name="envoy_template",
        layer="proxy",
        product="envoy",
        kind="text",
        doc="Envoy access log in a user format string or json_format mapping, compiled to a regex or a key map.",
        detect=lambda first_lines: 0.0,
        make_parser=_make_template,
        template_kind="envoy",
        make_vector=_vector_template,
    ),
)

__all__ = ["ENVOY_DEFAULT", "FORMATS", "ISTIO_DEFAULT", "ISTIO_JSON_KEYS", "compile_format_string", "operator_applier"]
