"""NGINX access logs: ``combined`` (and the stock ``main`` with ``$http_x_forwarded_for``), ingress-nginx
``upstreaminfo``, and any ``log_format`` directive compiled from the user's config.

NGINX writes one line per request in the ``log_format`` named by ``access_log`` (``combined`` when none is
named). Values are written as they are, ``-`` for an empty variable, and with ``escape=default`` the characters
``"``, ``\\`` and non-printables become ``\\xHH``; with ``escape=json`` they are JSON-escaped and an empty
variable is written as nothing, so a JSON-shaped ``log_format`` is still a fixed text template and is matched by
the same compiled regex.

Identity and failure fields, by variable:

* client: ``$remote_addr`` (after the realip module: the client; ``$realip_remote_addr`` is the direct peer),
  ``$http_x_forwarded_for``, ``$remote_user`` (Basic-auth user, kept only in raw);
* correlation: ``$request_id`` (32 hex, generated per request; provenance ``nginx.$request_id``, because it
  looks like a trace id), ``$http_x_request_id``, ``$http_traceparent``, ``$http_b3``, ``$otel_trace_id``;
* client certificate: ``$ssl_client_s_dn`` / ``$ssl_client_i_dn`` (RFC 2253 since 1.11.6, slash form in the
  ``_legacy`` variants), ``$ssl_client_fingerprint`` (SHA-1), ``$ssl_client_serial``, ``$ssl_client_verify``
  (``SUCCESS``, ``FAILED:<reason>``, ``NONE``), ``$ssl_client_v_end``, ``$ssl_protocol``;
* failure: ``$status``, ``$upstream_status`` and ``$upstream_addr`` (comma lists across retries, `` : ``
  between internal redirects), a 4xx/5xx without ``$upstream_addr`` was answered by nginx itself;
* secrets: ``$http_authorization``, ``$http_cookie`` / ``$cookie_*``, ``$args`` / ``$request_uri`` (query
  tokens). They go to ``in.*`` hints so the core fingerprints them; the query never lands in ``url.path``.

ingress-nginx's ``upstreaminfo`` adds ``$request_length $request_time [$proxy_upstream_name]
[$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time
$upstream_status $req_id``; older controllers logged ``$remote_addr - [$the_real_ip] - $remote_user`` and had
no alternative upstream, and some lines have no ``$req_id``: all accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache

from apitrail.trace.formats._base import FormatOptions, LogFormat, Reject, Vector
from apitrail.trace.formats._template_utils import (
    Applier,
    CompiledTemplate,
    Record,
    apply_request_line,
    apply_target,
    first_match_score,
    header_applier,
    put,
    put_all,
    put_clf_time,
    put_cookie_named,
    put_epoch,
    put_host,
    put_seconds,
    put_status,
    strip_eol,
    template_vector,
    trace_id,
)

# --------------------------------------------------------------------------------------------- variables


def _own_request_id(rec: Record, value: str) -> None:
    # An incoming X-Request-ID (propagated across hops) wins over the id nginx generated for itself.
    if "in.request_id" not in rec:
        rec["in.request_id"] = value
        rec["in.request_id_source"] = "nginx.$request_id"


_own_request_id._with = ("in.request_id", "in.request_id_source", "nginx.$request_id")  # type: ignore[attr-defined]
_own_request_id._fallback = True  # type: ignore[attr-defined]


_VARIABLES: dict[str, Applier] = {
    "remote_addr": put_host("client.address"),
    "realip_remote_addr": put_host("network.peer.address"),
    "the_real_ip": put_host("client.address"),
    "time_local": put_clf_time,
    "time_iso8601": put("in.timestamp"),
    "msec": put_epoch,
    "request": apply_request_line,
    "request_method": put("http.request.method"),
    "request_uri": apply_target,
    "uri": put("url.path"),
    "document_uri": put("url.path"),
    "args": put("in.query"),
    "query_string": put("in.query"),
    "status": put_status,
    "request_time": put_seconds(),
    "host": put_host("server.address"),
    "server_name": put_host("server.address"),
    "hostname": put("hop.instance"),
    "upstream_addr": put("upstream.address"),
    "upstream_status": put_all(put("upstream.status_codes"), put("in.upstream_status")),
    "request_id": _own_request_id,
    "req_id": _own_request_id,
    "otel_trace_id": trace_id("nginx.$otel_trace_id"),
    "otel_span_id": put("in.span_id"),
    "ssl_client_s_dn": put("in.cert_subject"),
    "ssl_client_s_dn_legacy": put("in.cert_subject"),
    "ssl_client_i_dn": put("in.cert_issuer"),
    "ssl_client_i_dn_legacy": put("in.cert_issuer"),
    "ssl_client_fingerprint": put("in.cert_fingerprint"),
    "ssl_client_serial": put("in.cert_serial"),
    "ssl_client_verify": put("in.cert_verify"),
    "ssl_client_v_end": put("in.cert_not_after"),
    "ssl_protocol": put("tls.protocol.version"),
}

# Query arguments that carry credentials: the value goes to a secret hint, never to a plain field.
_SECRET_ARGS: dict[str, Applier] = {
    "api_key": put("in.api_key"),
    "apikey": put("in.api_key"),
    "key": put("in.api_key"),
    "subscription-key": put("in.api_key"),
    "access_token": put("in.jwt"),
    "id_token": put("in.jwt"),
}


def variable_applier(name: str) -> Applier | None:
    """The applier of one nginx variable (``remote_addr``, ``http_x_request_id``, ``cookie_session``, ...)."""
    name = name.lower()
    if name in _VARIABLES:
        return _VARIABLES[name]
    if name.startswith("http_"):
        return header_applier(name[5:])
    if name.startswith("cookie_"):
        return put_cookie_named(name[7:])
    if name.startswith("arg_"):
        return _SECRET_ARGS.get(name[4:])
    return None


# Values that may contain spaces; unquoted and followed by a space they are matched lazily.
_SPACEY = re.compile(r"request|time_local|http_.*|sent_http_.*|cookie_.*|ssl_client_[si]_dn.*|ssl_client_verify|remote_user")
_LIST = r"-|[^\s,]+(?:(?:, | : )[^\s,]+)*"
_SPECIAL = {
    "time_local": r"\d{1,2}/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}",
    "upstream_addr": _LIST,
    "upstream_status": _LIST,
    "upstream_response_time": _LIST,
    "upstream_connect_time": _LIST,
    "upstream_header_time": _LIST,
    "upstream_response_length": _LIST,
    "upstream_bytes_received": _LIST,
    "upstream_bytes_sent": _LIST,
    "upstream_cache_status": _LIST,
    "status": r"\d{3}|-",
}

_VAR_RE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def compile_log_format(fmt: str, escape: str = "default", label: str = "") -> CompiledTemplate:
    """Compile an nginx ``log_format`` string (already unquoted and concatenated) into a template."""
    pieces: list[tuple[str, str]] = []  # (literal before, variable)
    pos = 0
    for m in _VAR_RE.finditer(fmt):
        pieces.append((fmt[pos:m.start()], (m.group(1) or m.group(2)).lower()))
        pos = m.end()
    tail = fmt[pos:]
    if not pieces:
        raise ValueError("log_format has no variables")
    json_mode = escape == "json"
    parts: list[str] = []
    names: list[str] = []
    appliers: list[Applier | None] = []
    for i, (literal, var) in enumerate(pieces):
        parts.append(re.escape(literal))
        following = pieces[i + 1][0] if i + 1 < len(pieces) else tail
        at_end = i + 1 == len(pieces) and not tail
        parts.append("(" + _value_pattern(var, literal, following, json_mode, at_end) + ")")
        names.append(var)
        appliers.append(variable_applier(var))
    parts.append(re.escape(tail))
    regex = re.compile("".join(parts), re.DOTALL)
    return CompiledTemplate(regex, tuple(names), tuple(appliers), json_escaped=json_mode, label=label)


def _value_pattern(var: str, before: str, after: str, json_mode: bool, at_end: bool) -> str:
    nxt = after[:1]
    quoted = nxt in ('"', "'") and before[-1:] == nxt
    if var in _SPECIAL and not quoted:
        return _SPECIAL[var]
    if at_end:
        return ".*"
    if not nxt:  # two variables back to back: only a lazy match can split them
        return ".*?"
    if json_mode and nxt == '"':
        return r'[^"\\]*+(?:\\.[^"\\]*+)*+'
    if nxt == " " and _SPACEY.fullmatch(var):
        return ".*?"
    return "[^" + re.escape(nxt) + "]*"


# --------------------------------------------------------------------------------------------- config text


def _config_statements(text: str) -> list[list[str]]:
    """Split nginx config text into statements (lists of unquoted tokens); enough for ``log_format``."""
    statements: list[list[str]] = []
    tokens: list[str] = []
    i, n = 0, len(text)
    buf: list[str] = []

    def flush() -> None:
        if buf:
            tokens.append("".join(buf))
            buf.clear()

    while i < n:
        c = text[i]
        if c in "\"'":
            flush()
            quote, i = c, i + 1
            out: list[str] = []
            while i < n and text[i] != quote:
                if text[i] == "\\" and i + 1 < n:
                    nxt = text[i + 1]
                    out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt if nxt in "\"'\\" else "\\" + nxt))
                    i += 2
                    continue
                out.append(text[i])
                i += 1
            tokens.append("".join(out))
            i += 1
            continue
        if c == "#":
            flush()
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c in ";{}":
            flush()
            if tokens:
                statements.append(tokens)
            tokens = []
            i += 1
            continue
        if c.isspace():
            flush()
        else:
            buf.append(c)
        i += 1
    flush()
    if tokens:
        statements.append(tokens)
    return statements


def parse_log_formats(text: str) -> dict[str, tuple[str, str]]:
    """``{name: (escape, format)}`` of every ``log_format`` directive in the config text, in order."""
    found: dict[str, tuple[str, str]] = {}
    for st in _config_statements(text):
        if st[0] != "log_format" or len(st) < 3:
            continue
        name, rest, escape = st[1], st[2:], "default"
        if rest and rest[0].startswith("escape="):
            escape, rest = rest[0].split("=", 1)[1], rest[1:]
        found[name] = (escape, "".join(rest))
    return found


def _access_log_names(text: str) -> list[str]:
    names = []
    for st in _config_statements(text):
        if st[0] == "access_log" and len(st) >= 3 and st[1] != "off":
            names.append(st[2])
    return names


def _resolve(text: str, name: str | None) -> tuple[str, str, str]:
    """``(format, escape, label)`` of user config text: the ``log_format`` named, else the one an ``access_log``
    uses, else the last; or a bare format string."""
    formats = parse_log_formats(text)
    if not formats:
        fmt = text.strip()
        if len(fmt) >= 2 and fmt[0] == fmt[-1] and fmt[0] in "\"'":
            fmt = fmt[1:-1]
        return fmt, "default", "inline"
    chosen = name
    if chosen is None:
        used = [n for n in _access_log_names(text) if n in formats]
        chosen = used[0] if used else list(formats)[-1]
    if chosen not in formats:
        raise ValueError("log_format name not found in the config")
    escape, fmt = formats[chosen]
    return fmt, escape, chosen


def compile_template(text: str, name: str | None = None) -> CompiledTemplate:
    """Compile user config text: a config with ``log_format`` directives (the one named, else the one an
    ``access_log`` uses, else the last), or a bare format string."""
    fmt, escape, label = _resolve(text, name)
    return compile_log_format(fmt, escape, label=label)


def _escape_default(text: str, name: str | None) -> bool:
    """Whether the chosen format writes values with ``escape=default`` (not ``json``, not ``none``)."""
    try:
        return _resolve(text, name)[1] not in ("json", "none")
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------- escape=default

_HEX = re.compile(r"\\x([0-9A-Fa-f]{2})")


def unescape(value: str) -> str:
    """Undo ``escape=default``: ``"``, ``\\`` and bytes above 126 were written as ``\\xHH`` (UTF-8 text as its
    bytes). Control characters (below 32, and 127) stay escaped: no field should carry them."""
    if "\\x" not in value:
        return value
    out = bytearray()
    pos = 0
    for m in _HEX.finditer(value):
        out += value[pos:m.start()].encode()
        byte = int(m.group(1), 16)
        out += m.group(0).encode() if byte < 32 or byte == 127 else bytes((byte,))
        pos = m.end()
    out += value[pos:].encode()
    return out.decode("utf-8", "backslashreplace")


def _unescaping(apply: Applier | None) -> Applier | None:
    if apply is None:
        return None

    def unescaped(rec: Record, value: str) -> None:
        apply(rec, unescape(value))

    return unescaped


def _decoding(template: CompiledTemplate) -> CompiledTemplate:
    """The same template whose appliers see unescaped values (``raw`` keeps the line as logged)."""
    return CompiledTemplate(template.regex, template.names, tuple(_unescaping(a) for a in template.appliers),
                            finish=template.finish, label=template.label, quoted=template.quoted)


def _slow_on_escapes(vector: Vector | None) -> Vector | None:
    # the SQL does not unescape: a line with an escape goes to the Python parser
    if vector is None:
        return None
    return replace(vector, slow_line_contains=(*vector.slow_line_contains, "\\x"))


# --------------------------------------------------------------------------------------------- built-ins

_Q = r'"([^"]*)"'
_COMBINED = CompiledTemplate(
    re.compile(
        r"(\S+) - (\S+) \[([^\]]+)\] " + _Q + r" (\d{3}) (\d+|-)"
        r"(?: (\d+\.\d+))?"
        r"(?: " + _Q + " " + _Q + r"(?: " + _Q + r")?)?"
        r"(?: (.*))?"
    ),
    ("remote_addr", "remote_user", "time_local", "request", "status", "body_bytes_sent", "request_time",
     "http_referer", "http_user_agent", "http_x_forwarded_for", "trailing"),
    (_VARIABLES["remote_addr"], None, put_clf_time, apply_request_line, put_status, None, put_seconds(),
     None, put("user_agent.original"), put("http.request.header.x-forwarded-for"), None),
    label="combined",
)


# The same line for RE2 (the SQL fast path), with marker groups ``( )`` that capture a space exactly when their
# optional part took part: referer and user agent can be logged empty, so their own captures cannot tell.
_COMBINED_RE2 = (r'(\S+) - (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+|-)(?: (\d+\.\d+))?'
                 r'(?:( )"([^"]*)" "([^"]*)"(?:( )"([^"]*)")?)?(?:( )(.*))?')
_COMBINED_RE2_NAMES = ("remote_addr", "remote_user", "time_local", "request", "status", "body_bytes_sent",
                       "request_time", "_took_part_referer", "http_referer", "http_user_agent", "_took_part_xff",
                       "http_x_forwarded_for", "_took_part_trailing", "trailing")
_COMBINED_MARKERS = {"http_referer": "_took_part_referer", "http_user_agent": "_took_part_referer",
                     "http_x_forwarded_for": "_took_part_xff", "trailing": "_took_part_trailing"}


@lru_cache(maxsize=1)
def _combined_vector() -> Vector | None:
    return _slow_on_escapes(template_vector(_COMBINED, _COMBINED_RE2, _COMBINED_RE2_NAMES, _COMBINED_MARKERS))


def _ingress_finish(rec: Record) -> None:
    raw = rec["raw"]
    assert isinstance(raw, dict)
    if raw.get("the_real_ip") not in (None, "-", "") and raw.get("remote_addr") not in (None, "-"):
        rec["network.peer.address"] = raw["remote_addr"]


_UPSTREAMINFO = CompiledTemplate(
    re.compile(
        r"(\S+) - (?:\[([^\]]*)\] - )?(\S+) \[([^\]]+)\] " + _Q + r" (\d{3}) (\d+|-) " + _Q + " " + _Q
        + r" (\d+|-) ([\d.]+|-) \[([^\]]*)\](?: \[([^\]]*)\])? (" + _LIST + ") (" + _LIST + ") (" + _LIST
        + ") (" + _LIST + r")(?: (\S+))?"
    ),
    ("remote_addr", "the_real_ip", "remote_user", "time_local", "request", "status", "body_bytes_sent",
     "http_referer", "http_user_agent", "request_length", "request_time", "proxy_upstream_name",
     "proxy_alternative_upstream_name", "upstream_addr", "upstream_response_length", "upstream_response_time",
     "upstream_status", "req_id"),
    (_VARIABLES["remote_addr"], _VARIABLES["the_real_ip"], None, put_clf_time, apply_request_line, put_status,
     None, None, put("user_agent.original"), None, put_seconds(), None, None, _VARIABLES["upstream_addr"], None,
     None, _VARIABLES["upstream_status"], _VARIABLES["req_id"]),
    finish=_ingress_finish,
    label="upstreaminfo",
)


def _line_parser(template: CompiledTemplate, what: str, escaped: bool = True) -> Callable[[str], Record | None]:
    parse = template.parse
    parse_escaped = _decoding(template).parse if escaped else parse

    def parse_line(line: str) -> Record | None:
        line = strip_eol(line)
        if not line.strip():
            return None
        rec = parse_escaped(line) if "\\x" in line else parse(line)
        if rec is None:
            raise Reject(f"line does not match the nginx {what} format")
        return rec

    return parse_line


def _make_nginx(options: FormatOptions) -> Callable[[str], Record | None]:
    return _line_parser(_COMBINED, "combined")


def _make_template(options: FormatOptions) -> Callable[[str], Record | None]:
    """Parser of the user's ``log_format`` (``--log-format GLOB=nginx:@nginx.conf``); combined without one."""
    if not options.template:
        return _make_nginx(options)
    try:
        template = compile_template(options.template, options.settings.get("log_format_name"))
    except ValueError as exc:
        raise Reject(f"cannot compile the nginx log_format: {exc}") from exc
    escaped = _escape_default(options.template, options.settings.get("log_format_name"))
    return _line_parser(template, f"log_format {template.label!r}", escaped)


def _vector_nginx(options: FormatOptions) -> Vector | None:
    return _combined_vector()


@lru_cache(maxsize=32)
def _template_vector_for(text: str, name: str | None) -> Vector | None:
    try:
        template = compile_template(text, name)
    except ValueError:
        return None
    vector = template_vector(template)
    return _slow_on_escapes(vector) if _escape_default(text, name) else vector


def _vector_template(options: FormatOptions) -> Vector | None:
    if not options.template:
        return _combined_vector()
    return _template_vector_for(options.template, options.settings.get("log_format_name"))


def _make_ingress(options: FormatOptions) -> Callable[[str], Record | None]:
    return _line_parser(_UPSTREAMINFO, "ingress upstreaminfo")


def _detect_combined(first_lines: list[str]) -> float:
    return 0.8 * first_match_score([_COMBINED], [strip_eol(x) for x in first_lines])


def _detect_ingress(first_lines: list[str]) -> float:
    return 0.95 * first_match_score([_UPSTREAMINFO], [strip_eol(x) for x in first_lines])


FORMATS = (
    LogFormat(
        name="nginx",
        layer="proxy",
        product="nginx",
        kind="text",
        doc="NGINX combined access log (also common, and main with $http_x_forwarded_for).",
        detect=_detect_combined,
        make_parser=_make_nginx,
        make_vector=_vector_nginx,
    ),
    LogFormat(
        name="nginx_template",
        layer="proxy",
        product="nginx",
        kind="text",
        doc="NGINX access log in a user log_format directive (config text), compiled to one regex.",
        detect=lambda first_lines: 0.0,
        make_parser=_make_template,
        template_kind="nginx",
        make_vector=_vector_template,
    ),
    LogFormat(
        name="nginx_ingress",
        layer="proxy",
        product="ingress-nginx",
        kind="text",
        doc="ingress-nginx upstreaminfo access log (upstream chains and $req_id).",
        detect=_detect_ingress,
        make_parser=_make_ingress,
    ),
)

__all__ = ["FORMATS", "compile_log_format", "compile_template", "parse_log_formats", "variable_applier"]
