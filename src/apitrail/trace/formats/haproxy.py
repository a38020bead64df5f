"""HAProxy logs: the HTTP log format (``option httplog``, also the 1.x layout with ``%Tq`` and ``%Tt``), the TCP
log format (``option tcplog``), behind any syslog prefix (RFC 3164 ``Feb  1 18:34:10 host haproxy[42]:``,
an RFC 3339 timestamp, ``<134>`` priorities, RFC 5424) or none (``log stdout format raw``), and any
``log-format`` line compiled from the user's config.

HTTP format (documented as ``%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc
%sq/%bq %hr %hs %{+Q}r``): ``{...}`` capture blocks appear only when ``capture request/response header`` is set.
The accept date has no time zone (it is the proxy's local time); it is passed on as a naive ISO time.

Identity and failure fields:

* ``%tsc`` / ``%ts`` termination state: first character is who ended the session (``C`` client, ``S`` server,
  ``P`` the proxy itself, e.g. ``PR`` = a deny rule answered 403, ``R`` resource, ``I`` internal, ``L`` local
  answer such as stats, ``c``/``s`` client/server timeouts), second the phase (``R`` request, ``Q`` queue,
  ``C`` connect, ``H`` headers, ``D`` data, ``L`` last, ``T`` tarpit); kept verbatim in ``response.flags``;
* ``%b/%s``: ``<NOSRV>`` as server means no server was chosen (routing failure);
* ``%ID`` (``unique-id-format``) is the request id; ``%[req.hdr(traceparent)]`` / ``capture request header``
  carry the trace context; ``%[ssl_c_s_dn]``, ``%[ssl_c_i_dn]``, ``%[ssl_c_sha1,hex]``,
  ``%[ssl_c_der,sha2(256),hex]``, ``%[ssl_c_serial,hex]``, ``%[ssl_c_verify]`` (0 = verified, else the X509
  error code) give the client certificate. Connections rejected by ``tcp-request connection`` are never logged.
* Secrets: ``%CC`` (captured cookie), ``%[req.hdr(authorization)]``, query strings in ``%r``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from apitrail.trace.formats._base import FormatOptions, LogFormat, Reject
from apitrail.trace.formats._template_utils import (
    Applier,
    CompiledTemplate,
    MultiTemplateParser,
    Record,
    apply_request_line,
    apply_target,
    first_match_score,
    header_applier,
    put,
    put_cookie_named,
    put_epoch,
    put_host,
    put_method,
    put_naive_clf_time,
    put_seconds,
    put_status,
    request_id,
    strip_eol,
)

_SYSLOG = re.compile(
    r"(?:<\d{1,3}>)?(?:"
    r"1 \S+ (?P<h5424>\S+) \S+ \S+ \S+ (?:-|\[.*?\]) "  # RFC 5424: VERSION TS HOST APP PROCID MSGID SD
    r"|(?:(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) (?P<host>\S+) )?"
    r"[\w./-]+(?:\[\d+\])?: )"
)


def _verify(rec: Record, value: str) -> None:
    # ssl_c_verify: 0 = the chain verified (or no certificate); anything else is an X509_V_ERR code.
    rec["in.cert_verify"] = "SUCCESS" if value == "0" else f"FAILED:X509_V_ERR_{value}"


_active_time = put_seconds(divisor=1000.0)


def _total_time(rec: Record, value: str) -> None:
    if "duration" not in rec:  # %Ta (active time) wins over %Tt (which includes idle time)
        _active_time(rec, value)


def _query(rec: Record, value: str) -> None:
    value = value[1:] if value.startswith("?") else value
    if value:
        rec["in.query"] = value


_VARIABLES: dict[str, Applier] = {
    "ci": put_host("client.address"),
    "si": put("upstream.address"),
    "s": put("upstream.address"),
    "ST": put_status,
    "r": apply_request_line,
    "HM": put_method,
    "HU": apply_target,
    "HP": apply_target,
    "HPO": put("url.path"),
    "HQ": _query,
    "ID": request_id("haproxy.unique-id"),
    "H": put("hop.instance"),
    "Ta": _active_time,
    "Tt": _total_time,
    "t": put_naive_clf_time,
    "tr": put_naive_clf_time,
    "T": put("in.timestamp"),
    "Tl": put("in.timestamp"),
    "trg": put("in.timestamp"),
    "trl": put("in.timestamp"),
    "Ts": put_epoch,
    "ts": put("response.flags"),
    "tsc": put("response.flags"),
    "CC": put("in.cookie"),
    "sslv": put("tls.protocol.version"),
}

_FETCHES: dict[str, Applier] = {
    "ssl_c_s_dn": put("in.cert_subject"),
    "ssl_c_i_dn": put("in.cert_issuer"),
    "ssl_c_sha1": put("in.cert_fingerprint"),
    "ssl_c_der": put("in.cert_fingerprint"),  # only with a digest converter, checked below
    "ssl_c_serial": put("in.cert_serial"),
    "ssl_c_verify": _verify,
    "ssl_c_notafter": put("in.cert_not_after"),
    "ssl_fc_protocol": put("tls.protocol.version"),
    "unique-id": request_id("haproxy.unique-id"),
    "src": put_host("client.address"),
    "method": put_method,
    "path": put("url.path"),
    "query": put("in.query"),
    "status": put_status,
    "http_auth_bearer": put("in.jwt"),
    "hostname": put("hop.instance"),
}
_SECRET_PARAMS = {"access_token": put("in.jwt"), "api_key": put("in.api_key"), "apikey": put("in.api_key")}


def fetch_applier(expr: str) -> Applier | None:
    """The applier of a ``%[sample,converter,...]`` expression."""
    first, *converters = [p.strip() for p in _split_top(expr)]
    m = re.fullmatch(r"([\w.-]+)(?:\((.*)\))?", first)
    if not m:
        return None
    fetch, arg = m.group(1), (m.group(2) or "").split(",")[0].strip().strip("'\"")
    if fetch in ("req.hdr", "hdr", "req.fhdr", "http_req.hdr", "req.hdr_val") and arg:
        return header_applier(arg)
    if fetch in ("req.cook", "cook") and arg:
        return put_cookie_named(arg)
    if fetch in ("url_param", "urlp") and arg:
        return _SECRET_PARAMS.get(arg.lower())
    if fetch == "ssl_c_der" and not any(c.startswith(("sha2", "sha1", "digest")) for c in converters):
        return None  # the whole certificate, not a thumbprint
    return _FETCHES.get(fetch)


def _split_top(expr: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for c in expr:
        if c == "," and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        depth += c == "("
        depth -= c == ")"
        cur.append(c)
    out.append("".join(cur))
    return out


_NUM = r"[+-]?\d+|-"
_NUMERIC = frozenset({"cp", "fp", "sp", "bp", "pid", "ST", "B", "U", "ac", "fc", "bc", "sc", "rc", "sq", "bq", "lc",
                      "Ta", "Tc", "Td", "Th", "Ti", "Tq", "TR", "Tr", "Tt", "Tu", "Tw", "rt"})
_CLF_TZ = r"\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}"
_SPACEY = frozenset({"r", "hr", "hs", "hrl", "hsl", "CC", "CS", "HU", "HP", "HPO", "HQ"})
_TOKEN = re.compile(r"%(?:\{([^}]*)\})?(?:\[((?:[^\[\]]|\[[^\]]*\])*)\]|([A-Za-z]+))|%%|\\.|[^%\\]+", re.DOTALL)


def compile_log_format(fmt: str, label: str = "") -> CompiledTemplate:
    """Compile a HAProxy ``log-format`` string (the argument, unquoted) into a template."""
    items: list[tuple[str, str, bool]] = []  # ("lit", text, _) or ("var", name, quoted)
    for m in _TOKEN.finditer(fmt):
        text = m.group(0)
        if m.group(2) is not None or m.group(3) is not None:
            flags = m.group(1) or ""
            name = f"[{m.group(2)}]" if m.group(2) is not None else m.group(3)
            items.append(("var", name, "+Q" in flags))
        elif text == "%%":
            items.append(("lit", "%", False))
        elif text.startswith("\\"):
            items.append(("lit", text[1:], False))
        else:
            items.append(("lit", text, False))
    # merge literals
    merged: list[tuple[str, str, bool]] = []
    for kind, text, quoted in items:
        if kind == "lit" and merged and merged[-1][0] == "lit":
            merged[-1] = ("lit", merged[-1][1] + text, False)
        else:
            merged.append((kind, text, quoted))
    if not any(k == "var" for k, _, _ in merged):
        raise ValueError("log-format has no variables")
    parts: list[str] = []
    names: list[str] = []
    appliers: list[Applier | None] = []
    quoted_groups: set[int] = set()
    for i, (kind, text, quoted) in enumerate(merged):
        if kind == "lit":
            parts.append(re.escape(text))
            continue
        after = merged[i + 1][1] if i + 1 < len(merged) and merged[i + 1][0] == "lit" else ""
        at_end = i + 1 == len(merged)
        if quoted:
            pattern = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"|-'
            quoted_groups.add(len(names))
        else:
            pattern = _value_pattern(text, after, at_end)
        parts.append(f"({pattern})")
        names.append(text)
        appliers.append(fetch_applier(text[1:-1]) if text.startswith("[") else _VARIABLES.get(text))
    return CompiledTemplate(re.compile("".join(parts), re.DOTALL), tuple(names), tuple(appliers), label=label,
                            quoted=frozenset(quoted_groups))


def _value_pattern(name: str, after: str, at_end: bool) -> str:
    nxt = after[:1]
    if name in _NUMERIC:
        return _NUM
    if name in ("T", "Tl", "trg", "trl"):
        return _CLF_TZ
    if name in ("ci", "si", "fi", "bi") and nxt == ":":
        return r"\S*?"
    if at_end:
        return ".*"
    if not nxt:
        return ".*?"
    if name in ("hr", "hs") and nxt == " ":
        return r"\{[^}]*\}|"
    if nxt == " ":
        return ".*?" if name in _SPACEY or name.startswith("[") else r"\S*"
    return "[^" + re.escape(nxt) + "]*"


def _unwrap(text: str) -> str:
    """The format string of a ``log-format`` config line (quoted or with escaped spaces), or the bare string."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    chosen = next((ln for ln in reversed(lines) if re.match(r"log-format(?:-sd)?\s", ln)), None)
    if chosen is not None:
        text = re.sub(r"^log-format(?:-sd)?\s+", "", chosen)
    else:
        text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].replace('\\"', '"')
    return text


def compile_template(text: str) -> CompiledTemplate:
    return compile_log_format(_unwrap(text), "user")


# --------------------------------------------------------------------------------------------- built-ins

_HTTP = CompiledTemplate(
    re.compile(
        r"(\S+?):(\d+) \[([^\]]+)\] (\S+) ([^/\s]+)/(\S+) (-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/(\+?-?\d+) (-?\d+) (\+?\d+) "
        r"(\S+) (\S+) (\S{4}) (\d+)/(\d+)/(\d+)/(\d+)/(\+?\d+) (\d+)/(\d+)"
        r'(?: \{([^}]*)\})?(?: \{([^}]*)\})? "([^"\\]*+(?:\\.[^"\\]*+)*+)"?(?: (.*))?'
    ),
    ("client_ip", "client_port", "accept_date", "frontend_name", "backend_name", "server_name", "TR", "Tw", "Tc",
     "Tr", "Ta", "status_code", "bytes_read", "captured_request_cookie", "captured_response_cookie",
     "termination_state", "actconn", "feconn", "beconn", "srv_conn", "retries", "srv_queue", "backend_queue",
     "captured_request_headers", "captured_response_headers", "http_request", "trailing"),
    (put_host("client.address"), None, put_naive_clf_time, None, None, put("upstream.address"), None, None, None, None,
     _active_time, put_status, None, put("in.cookie"), None, put("response.flags"), None, None, None, None, None,
     None, None, None, None, apply_request_line, None),
    label="httplog",
)
_TCP = CompiledTemplate(
    re.compile(
        r"(\S+?):(\d+) \[([^\]]+)\] (\S+) ([^/\s]+)/(\S+) (-?\d+)/(-?\d+)/(\+?-?\d+) (\+?\d+) (\S{2}) "
        r"(\d+)/(\d+)/(\d+)/(\d+)/(\+?\d+) (\d+)/(\d+)"
    ),
    ("client_ip", "client_port", "accept_date", "frontend_name", "backend_name", "server_name", "Tw", "Tc", "Tt",
     "bytes_read", "termination_state", "actconn", "feconn", "beconn", "srv_conn", "retries", "srv_queue",
     "backend_queue"),
    (put_host("client.address"), None, put_naive_clf_time, None, None, put("upstream.address"), None, None, _total_time,
     None, put("response.flags"), None, None, None, None, None, None, None),
    label="tcplog",
)


def _line_parser(parse: Callable[[str], Record | None], what: str) -> Callable[[str], Record | None]:
    syslog = _SYSLOG.match

    def parse_line(line: str) -> Record | None:
        line = strip_eol(line)
        m = syslog(line)
        body = line[m.end():] if m else line
        rec = parse(body)
        if rec is None and m:  # the "prefix" may have been part of a raw (un-prefixed) line
            rec = parse(line)
            m = None
        if rec is None:
            if not line.strip():
                return None
            raise Reject(f"line does not match the HAProxy {what} format")
        if m:
            host = m.group("host") or m.group("h5424")
            if host and "hop.instance" not in rec:
                rec["hop.instance"] = host
        return rec

    return parse_line


def _make_parser(options: FormatOptions) -> Callable[[str], Record | None]:
    return _line_parser(MultiTemplateParser((_HTTP, _TCP)), "HTTP/TCP log")


def _make_template(options: FormatOptions) -> Callable[[str], Record | None]:
    """Parser of the user's ``log-format`` line (``--log-format GLOB=haproxy:@haproxy.cfg``)."""
    if not options.template:
        return _make_parser(options)
    try:
        template = compile_template(options.template)
    except ValueError as exc:
        raise Reject(f"cannot compile the HAProxy log-format: {exc}") from exc
    return _line_parser(template.parse, "log-format")


def _detect(first_lines: list[str]) -> float:
    bodies = []
    for line in first_lines:
        line = strip_eol(line)
        m = _SYSLOG.match(line)
        bodies.append(line[m.end():] if m else line)
    return 0.9 * first_match_score((_HTTP, _TCP), bodies)


FORMATS = (
    LogFormat(
        name="haproxy",
        layer="proxy",
        product="haproxy",
        kind="text",
        doc="HAProxy HTTP and TCP logs (option httplog / tcplog), syslog prefix optional.",
        detect=_detect,
        make_parser=_make_parser,
    ),
    LogFormat(
        name="haproxy_template",
        layer="proxy",
        product="haproxy",
        kind="text",
        doc="HAProxy log in a user log-format line (config text), compiled to one regex.",
        detect=lambda first_lines: 0.0,
        make_parser=_make_template,
        template_kind="haproxy",
    ),
)

__all__ = ["FORMATS", "compile_log_format", "compile_template", "fetch_applier"]
