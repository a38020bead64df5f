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


def _cert_error(rec: Record, value: str) -> None:
    # ssl_c_err / ssl_c_ca_err (option httpslog): 0 = no error; a code is an X509_V_ERR the handshake ignored
    # (crt-ignore-err / ca-ignore-err), so only a failure is recorded: 0 does not prove a certificate was sent
    if value.isdigit() and value != "0" and "in.cert_verify" not in rec:
        rec["in.cert_verify"] = f"FAILED:X509_V_ERR_{value}"


def _sni(rec: Record, value: str) -> None:
    rec.setdefault("server.address", value)


def _hex_decode(value: str) -> str:
    """HAProxy writes unsafe characters of captured headers and the request line as ``#XX``."""
    if "#" not in value:
        return value
    return re.sub(r"#([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)


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
    "ssl_c_err": _cert_error,
    "ssl_c_ca_err": _cert_error,
    "ssl_fc_sni": _sni,
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
                      "Ta", "Tc", "Td", "Th", "Ti", "Tq", "TR", "Tr", "Tt", "Tu", "Tw", "rt", "ms"})
# written as raw text: never quoted, even under %{+Q}o (dates, termination states)
_RAWTEXT = frozenset({"t", "tr", "T", "Tl", "trg", "trl", "ts", "tsc"})
_CLF_TZ = r"\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}"
_SPACEY = frozenset({"r", "hr", "hs", "hrl", "hsl", "CC", "CS", "HU", "HP", "HPO", "HQ"})
# items that write nothing at all when empty (no capture configured): HAProxy then drops the separator after them
_EMPTYABLE = frozenset({"hr", "hs", "hrl", "hsl"})
_QUOTED = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_TOKEN = re.compile(r"%(?:\(([^)]*)\))?(?:\{([^}]*)\})?(?:\[((?:[^\[\]]|\[[^\]]*\])*)\]|([A-Za-z]+))|%%|\\.|[^%\\]+",
                    re.DOTALL)

# The documented built-in formats (configuration.txt 8.2.2-8.2.4), also the values of the HAPROXY_*_LOG_FMT variables.
HTTP_LOG_FMT = ("%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq "
                "%hr %hs %{+Q}r")
HTTPS_LOG_FMT = (HTTP_LOG_FMT + " %[fc_err]/%[ssl_fc_err,hex]/%[ssl_c_err]/%[ssl_c_ca_err]/%[ssl_fc_is_resumed] "
                 "%[ssl_fc_sni]/%sslv/%sslc")
HTTP_CLF_LOG_FMT = ('%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc '
                    "%bc %sc %rc %sq %bq %CC %CS %hrl %hsl")
TCP_LOG_FMT = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"
TCP_CLF_LOG_FMT = ('%{Q}o %{-Q}ci - - [%T] "TCP " 000 %B "" "" %cp %ms %ft %b %s %Th %Tw %Tc %Tt %U %ts-- %ac %fc '
                   '%bc %sc %rc %sq %bq "" "" ')
_FMT_VARIABLES = {"HAPROXY_HTTP_LOG_FMT": HTTP_LOG_FMT, "HAPROXY_HTTPS_LOG_FMT": HTTPS_LOG_FMT,
                  "HAPROXY_HTTP_CLF_LOG_FMT": HTTP_CLF_LOG_FMT, "HAPROXY_TCP_LOG_FMT": TCP_LOG_FMT,
                  "HAPROXY_TCP_CLF_LOG_FMT": TCP_CLF_LOG_FMT}


def _flags(current: frozenset[str], spec: str) -> frozenset[str]:
    """Apply ``{+Q,-X,E}`` item flags to the flags in force (a flag without a sign is enabled)."""
    out = set(current)
    for flag in (f.strip() for f in spec.split(",")):
        if flag.startswith("-"):
            out.discard(flag[1:])
        elif flag:
            out.add(flag.lstrip("+"))
    return frozenset(out)


def _captures_applier(names: tuple[str | None, ...], listed: bool) -> Applier | None:
    """``%hr`` (``{a|b}``) or ``%hrl`` (``"a" "b"``): each captured request header to its identity hint."""
    appliers = [header_applier(n) if n else None for n in names]
    if not any(appliers):
        return None

    def apply(rec: Record, value: str) -> None:
        if listed:
            values = re.findall(r'"([^"]*)"', value) if value.startswith('"') else value.split(" ")
        else:
            values = value.strip("{}").split("|")
        for one, applier in zip(values, appliers, strict=False):
            if applier is not None and one and one != "-":
                applier(rec, _hex_decode(one))

    return apply


def compile_log_format(fmt: str, label: str = "", request_captures: tuple[str | None, ...] = ()) -> CompiledTemplate:
    """Compile a HAProxy ``log-format`` string (the argument, unquoted) into a template. ``request_captures`` are
    the header names of the frontend's ``capture request header`` lines, in order (they fill ``%hr``)."""
    items: list[tuple[str, str, bool]] = []  # ("lit", text, _) or ("var", name, quoted)
    in_force: frozenset[str] = frozenset()
    for m in _TOKEN.finditer(fmt):
        text = m.group(0)
        if m.group(3) is not None or m.group(4) is not None:
            name = f"[{m.group(3)}]" if m.group(3) is not None else m.group(4)
            if name == "o":  # %o: its flags apply to every item after it
                in_force = _flags(in_force, m.group(2) or "")
                continue
            flags = _flags(in_force, m.group(2) or "")
            if flags & {"json", "cbor", "bin"}:
                raise ValueError("json/cbor encoded log formats are not supported")
            items.append(("var", name, "Q" in flags))
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
    skip_space = False  # the separator after an empty-able item is inside its optional part
    # from here on only empty-able items and separators: the line may end before them (trailing blanks trimmed)
    tail = len(merged)
    while tail > 0 and (merged[tail - 1][1] in _EMPTYABLE if merged[tail - 1][0] == "var"
                        else not merged[tail - 1][1].strip(" ")):
        tail -= 1
    for i, (kind, text, quoted) in enumerate(merged):
        if kind == "lit":
            if skip_space:
                text, skip_space = text[1:], False
            if i == 0:  # HAProxy writes no separator before the first item
                text = text.lstrip(" ")
            if i + 1 >= tail and text.endswith(" "):  # a trailing separator may be trimmed by the log chain
                parts.append(re.escape(text.rstrip(" ")) + " *")
            else:
                parts.append(re.escape(text))
            continue
        after = merged[i + 1][1] if i + 1 < len(merged) and merged[i + 1][0] == "lit" else ""
        at_end = i + 1 == len(merged)
        quoted = quoted and text not in _NUMERIC and text not in _RAWTEXT
        if text in _EMPTYABLE:
            pattern = _list_pattern(text, quoted, len(request_captures) if text.startswith("hr") else 0, at_end)
            if text in ("hr", "hs") and quoted:
                quoted_groups.add(len(names))
            if after.startswith(" "):
                parts.append(f"(?:({pattern}) ?)?" if i >= tail else f"(?:({pattern}) )?")
                skip_space = True
            else:
                parts.append(f"({pattern})?")
        elif quoted:
            unquoted = _value_pattern(text, after, at_end)
            # a sample fetch's type is not known here: strings are quoted, numbers are not
            pattern = f"{_QUOTED}|{unquoted}" if text.startswith("[") else f"{_QUOTED}|-"
            quoted_groups.add(len(names))
            parts.append(f"({pattern})")
        else:
            parts.append(f"({_value_pattern(text, after, at_end)})")
        names.append(text)
        if text in ("hr", "hrl"):
            appliers.append(_captures_applier(request_captures, text == "hrl"))
        else:
            appliers.append(fetch_applier(text[1:-1]) if text.startswith("[") else _VARIABLES.get(text))
    return CompiledTemplate(re.compile("".join(parts), re.DOTALL), tuple(names), tuple(appliers), label=label,
                            quoted=frozenset(quoted_groups))


def _list_pattern(name: str, quoted: bool, count: int, at_end: bool) -> str:
    if name in ("hr", "hs"):
        return r'"?\{[^}]*\}"?'
    if quoted:
        item = r'"[^"]*"'
    else:
        item = r"\S+"
    if count:
        return item + f"(?: {item}){{{count - 1}}}"
    return f"{item}(?: {item})*" if quoted or at_end else item


def _value_pattern(name: str, after: str, at_end: bool) -> str:
    nxt = after[:1]
    if name in _NUMERIC:
        return _NUM
    if name in ("T", "Tl", "trg", "trl"):
        return _CLF_TZ
    if name == "ts":
        return r"\S\S"
    if name == "tsc":
        return r"\S{4}"
    if name in ("ci", "si", "fi", "bi") and nxt == ":":
        return r"\S*?"
    if at_end:
        return ".*"
    if not nxt:
        return ".*?"
    if nxt == " ":
        return ".*?" if name in _SPACEY or name.startswith("[") else r"\S*"
    return "[^" + re.escape(nxt) + "]*"


def _config_arg(rest: str) -> str:
    """The first argument of a config line as HAProxy reads it: quoted parts concatenated, ``\\`` escapes kept for
    the format compiler (which reads them as literals), a blank or ``#`` outside quotes ends it."""
    out: list[str] = []
    quote = ""
    i, n = 0, len(rest)
    while i < n:
        c = rest[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"' and i + 1 < n:
                out.append(rest[i:i + 2])
                i += 1
            elif c == "\\":
                out.append("\\\\")
            else:
                out.append(c)
        elif c in "\"'":
            quote = c
        elif c == "\\" and i + 1 < n:
            out.append(rest[i:i + 2])
            i += 1
        elif c.isspace() or c == "#":
            break
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _expand(fmt: str) -> str:
    """``${HAPROXY_HTTP_LOG_FMT}`` and friends (HAProxy 2.9+) -> the documented format strings."""
    return re.sub(r"\$\{(HAPROXY_\w+_LOG_FMT)\}|\$(HAPROXY_\w+_LOG_FMT)",
                  lambda m: _FMT_VARIABLES.get(m.group(1) or m.group(2), m.group(0)), fmt)


_OPTION_FORMATS = {("httplog",): HTTP_LOG_FMT, ("httplog", "clf"): HTTP_CLF_LOG_FMT, ("httpslog",): HTTPS_LOG_FMT,
                   ("tcplog",): TCP_LOG_FMT, ("tcplog", "clf"): TCP_CLF_LOG_FMT}


def _unwrap(text: str) -> tuple[str, tuple[str | None, ...]]:
    """The format string of a config (the last ``log-format`` or ``option httplog|httpslog|tcplog [clf]``, which
    override each other) with the request header captures it declares, or a bare format string."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    chosen: str | None = None
    captures: list[str | None] = []
    for ln in lines:
        words = ln.split()
        if words[0] == "log-format" and len(words) > 1:
            chosen = _config_arg(ln[len("log-format"):].lstrip())
        elif words[0] == "option" and tuple(words[1:3]) in _OPTION_FORMATS:
            chosen = _OPTION_FORMATS[tuple(words[1:3])]
        elif words[0] == "option" and tuple(words[1:2]) in _OPTION_FORMATS:
            chosen = _OPTION_FORMATS[tuple(words[1:2])]
        elif words[:3] == ["capture", "request", "header"] and len(words) > 3:
            captures.append(words[3])
        elif words[:2] == ["http-request", "capture"] and len(words) > 2:
            m = re.fullmatch(r"(?:req\.)?hdr\(([^,)]+)[^)]*\)", words[2])
            captures.append(m.group(1) if m else None)
    if chosen is None:
        bare = text.strip()
        if len(bare) >= 2 and bare[0] == bare[-1] and bare[0] in "\"'":
            bare = bare[1:-1].replace('\\"', '"')
        return _expand(bare), ()
    return _expand(chosen), tuple(captures)


def compile_template(text: str) -> CompiledTemplate:
    fmt, captures = _unwrap(text)
    return compile_log_format(fmt, "user", captures)


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
    finish=lambda rec: _https_tail(rec),
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


# option httpslog appends "%[fc_err]/%[ssl_fc_err,hex]/%[ssl_c_err]/%[ssl_c_ca_err]/%[ssl_fc_is_resumed]
# %[ssl_fc_sni]/%sslv/%sslc" to the HTTP format: read from the HTTP line's trailing text
_HTTPS_TAIL = re.compile(r"(-?\d+|-)/([0-9A-Fa-f]+|-)/(\d+|-)/(\d+|-)/(\d+|-) ([^/\s]*)/([^/\s]*)/(\S*)")
_HTTPS_NAMES = ("fc_err", "ssl_fc_err", "ssl_c_err", "ssl_c_ca_err", "ssl_fc_is_resumed", "ssl_fc_sni", "sslv", "sslc")


def _https_tail(rec: Record) -> None:
    raw = rec["raw"]
    assert isinstance(raw, dict)
    m = _HTTPS_TAIL.fullmatch(raw.get("trailing") or "")
    if m is None:
        return
    raw.update(zip(_HTTPS_NAMES, m.groups(), strict=True))
    for value in (m.group(3), m.group(4)):
        _cert_error(rec, value)
    if m.group(6) not in ("", "-"):
        _sni(rec, m.group(6))
    if m.group(7) not in ("", "-"):
        rec["tls.protocol.version"] = m.group(7)


_HTTP_CLF = compile_log_format(HTTP_CLF_LOG_FMT, "httplog-clf")
_TCP_CLF = compile_log_format(TCP_CLF_LOG_FMT, "tcplog-clf")

# Error log format (8.2.5): a connection that failed before a stream existed (SSL handshake, PROXY protocol), e.g.
# "127.0.0.1:56059 [03/Dec/2012:17:35:10.380] frt/f1: Connection error during SSL handshake"
_CERT_REJECTED = ("SSL client certificate not trusted", "SSL client CA chain cannot be verified")


def _error_message(rec: Record, value: str) -> None:
    rec["failure.reason"] = value
    rec["failure.origin"] = "self"
    if value in _CERT_REJECTED:  # verify required and the client's certificate failed (classify: tls-client-verify)
        rec["in.cert_verify"] = "FAILED:" + value


_ERROR = CompiledTemplate(
    re.compile(r"(\S+?):(\d+) \[([^\]]+)\] ([^/\s]+)/([^:\s]*): (\S.*)"),
    ("client_ip", "client_port", "accept_date", "frontend_name", "bind_name", "message"),
    (put_host("client.address"), None, put_naive_clf_time, None, None, _error_message),
    label="error",
)
# tried in this order on every line (not most-recent-first): a TCP CLF line is also an HTTP CLF line whose request
# is "TCP " and status 000, so the TCP variant must always be tried first
_BUILTINS = (_HTTP, _TCP, _TCP_CLF, _HTTP_CLF, _ERROR)


def _first_match(templates: tuple[CompiledTemplate, ...]) -> Callable[[str], Record | None]:
    parsers = tuple(t.parse for t in templates)

    def parse(line: str) -> Record | None:
        for one in parsers:
            rec = one(line)
            if rec is not None:
                return rec
        return None

    return parse


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
    return _line_parser(_first_match(_BUILTINS), "HTTP/TCP log")


def _make_template(options: FormatOptions) -> Callable[[str], Record | None]:
    """Parser of the user's ``log-format`` line (``--log-format GLOB=haproxy:@haproxy.cfg``)."""
    if not options.template:
        return _make_parser(options)
    try:
        template = compile_template(options.template)
    except ValueError as exc:
        raise Reject(f"cannot compile the HAProxy log-format: {exc}") from exc
    # connection errors (8.2.5) are logged in their own format whatever the log-format says
    return _line_parser(MultiTemplateParser((template, _ERROR)), "log-format")


def _detect(first_lines: list[str]) -> float:
    bodies = []
    for line in first_lines:
        line = strip_eol(line)
        m = _SYSLOG.match(line)
        bodies.append(line[m.end():] if m else line)
    return 0.9 * first_match_score(_BUILTINS, bodies)


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
