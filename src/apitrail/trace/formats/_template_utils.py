"""Shared pieces of the text-format parsers: value appliers, request-line splitting and compiled templates.

A text format (built in or compiled from a user template) is one anchored regex whose groups are the source
fields of the line, plus one *applier* per group that turns the logged string into keys of the intermediate
record (canonical field names, or ``in.*`` hints that the normalisation core finishes). Appliers only run on
values that are present (not ``-`` and not empty), so ``-`` never reaches the record. ``raw`` keeps every source
field verbatim (strings as logged; ``None`` for an optional field the line did not have).

The per-line cost is one ``fullmatch`` plus a loop over the groups; nothing here parses dates (the core does,
from the ``in.timestamp`` string) and nothing decodes a value that no field needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote

from apitrail.trace.formats._base import Vector, VField

Record = dict[str, object]
Applier = Callable[[Record, str], None]

NIL = frozenset(("-", ""))

_MONTHS = {m: i + 1 for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"))}


def nil(value: str | None) -> str | None:
    """``None`` for an absent or placeholder value (``-`` or empty), else the value."""
    if value is None or value in NIL:
        return None
    return value


# --------------------------------------------------------------------------------------------- appliers


def put(key: str) -> Applier:
    """Store the value as logged under ``key``."""

    def apply(rec: Record, value: str) -> None:
        rec[key] = value

    apply._put_key = key  # type: ignore[attr-defined]  # lets generated parsers inline the store
    return apply


def put_unquoted(key: str) -> Applier:
    """Store a percent-encoded value (CloudFront user agent, ...) decoded once."""

    def apply(rec: Record, value: str) -> None:
        rec[key] = unquote(value) if "%" in value else value

    apply._unquoted_key = key  # type: ignore[attr-defined]
    return apply


def put_int(key: str) -> Applier:
    def apply(rec: Record, value: str) -> None:
        try:
            rec[key] = int(value)
        except ValueError:
            pass

    return apply


def put_seconds(key: str = "duration", divisor: float = 1.0) -> Applier:
    """Store a duration in seconds; ``divisor`` converts the logged unit (1000 for ms, 1e9 for ns)."""

    def apply(rec: Record, value: str) -> None:
        try:
            number = float(value)
        except ValueError:
            return
        if number >= 0:  # HAProxy/ALB log -1 for "not measured"
            rec[key] = number / divisor if divisor != 1.0 else number

    apply._seconds = (key, divisor)  # type: ignore[attr-defined]  # lets template_vector map it to SQL
    return apply


def put_all(*appliers: Applier) -> Applier:
    def apply(rec: Record, value: str) -> None:
        for one in appliers:
            one(rec, value)

    apply._parts = appliers  # type: ignore[attr-defined]
    return apply


def put_with(key: str, source_key: str, source: str) -> Applier:
    """Store a value together with a provenance hint (``in.request_id`` + ``in.request_id_source``)."""

    def apply(rec: Record, value: str) -> None:
        rec[key] = value
        rec[source_key] = source

    apply._with = (key, source_key, source)  # type: ignore[attr-defined]
    return apply


def request_id(source: str) -> Applier:
    return put_with("in.request_id", "in.request_id_source", source)


def trace_id(source: str) -> Applier:
    return put_with("in.trace_id", "in.trace_id_key", source)


def host_of(address: str) -> str:
    """``10.0.0.1:80`` -> ``10.0.0.1``; ``[fe80::1]:443`` -> ``fe80::1``; a bare IPv6 address is kept."""
    if address.startswith("["):
        end = address.find("]")
        return address[1:end] if end > 0 else address
    if address.count(":") == 1:
        return address.split(":", 1)[0]
    return address


def put_host(key: str) -> Applier:
    def apply(rec: Record, value: str) -> None:
        rec[key] = host_of(value)

    apply._host_key = key  # type: ignore[attr-defined]
    return apply


def apply_target(rec: Record, target: str) -> None:
    """A request target (origin or absolute form) into ``url.path`` and ``in.query`` (the query is secret-prone)."""
    if target[:1] != "/" and "://" in target[:12]:
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        authority = rest if slash < 0 else rest[:slash]
        target = "/" if slash < 0 else rest[slash:]
        if authority and "server.address" not in rec:
            rec["server.address"] = host_of(authority.rsplit("@", 1)[-1])
    path, sep, query = target.partition("?")
    if path:
        rec["url.path"] = path
    if sep and query:
        rec["in.query"] = query


def apply_request_line(rec: Record, line: str) -> None:
    """``GET /a?b=c HTTP/1.1`` -> method, path, query. A line that is not a request (a TLS hello on a plain
    port, ``-``) leaves method and path unset rather than guessing."""
    parts = line.split(" ")
    if len(parts) >= 2 and parts[0].isalpha() and parts[0].isupper():
        rec["http.request.method"] = parts[0]
        # A target with spaces (nginx logs it as sent) is rejoined; the protocol stays in raw.
        apply_target(rec, " ".join(parts[1:-1]) if len(parts) > 3 else parts[1])


apply_target._cast = "target_path"  # type: ignore[attr-defined]
apply_request_line._cast = "reqline"  # type: ignore[attr-defined]


def put_method(rec: Record, value: str) -> None:
    rec["http.request.method"] = value


put_method._put_key = "http.request.method"  # type: ignore[attr-defined]


def put_status(rec: Record, value: str) -> None:
    if value.isdigit():
        rec["http.response.status_code"] = int(value)


put_status._int_key = "http.response.status_code"  # type: ignore[attr-defined]


def put_cookie_named(name: str) -> Applier:
    def apply(rec: Record, value: str) -> None:
        rec["in.cookie"] = f"{name}={value}"

    return apply


# --------------------------------------------------------------------------------------------- time helpers


def clf_to_iso(value: str) -> str:
    """``01/Feb/2018:18:34:10.200`` (HAProxy accept date, no zone) -> ``2018-02-01T18:34:10.200``.

    By slicing: no strptime on the hot path. Unknown shapes are returned unchanged for the core to judge.
    """
    if len(value) >= 20 and value[2] == "/" and value[6] == "/" and value[11] == ":":
        month = _MONTHS.get(value[3:6])
        if month is not None:
            return f"{value[7:11]}-{month:02d}-{value[0:2]}T{value[12:]}"
    return value


put_clf_time = put("in.timestamp")  # the core parses CLF times (with zone) itself


def put_naive_clf_time(rec: Record, value: str) -> None:
    rec["in.timestamp"] = clf_to_iso(value)


def put_epoch(rec: Record, value: str) -> None:
    try:
        rec["in.timestamp"] = float(value)
    except ValueError:
        rec["in.timestamp"] = value


# --------------------------------------------------------------------------------------------- header table

# Request headers that matter for identity and correlation, by lower-case name (dashes), shared by every
# format that can log arbitrary request headers (nginx $http_*, Envoy %REQ(...)%, HAProxy req.hdr(), Traefik).
HEADER_APPLIERS: dict[str, Applier] = {
    "x-request-id": request_id("x-request-id"),
    "x-correlation-id": request_id("x-correlation-id"),
    "request-id": request_id("request-id"),
    "x-amzn-requestid": request_id("x-amzn-requestid"),
    "x-kong-request-id": request_id("x-kong-request-id"),
    "traceparent": put("in.traceparent"),
    "tracestate": put("in.tracestate"),
    "b3": put("in.b3"),
    "x-b3-traceid": put("in.x-b3-traceid"),
    "x-b3-spanid": put("in.x-b3-spanid"),
    "x-b3-parentspanid": put("in.x-b3-parentspanid"),
    "x-b3-sampled": put("in.x-b3-sampled"),
    "x-amzn-trace-id": put("in.x-amzn-trace-id"),
    "x-cloud-trace-context": put("in.x-cloud-trace-context"),
    "x-forwarded-client-cert": put("in.xfcc"),
    "authorization": put("in.authorization"),
    "proxy-authorization": put("in.authorization"),
    "cookie": put("in.cookie"),
    "x-api-key": put("in.api_key"),
    "apikey": put("in.api_key"),
    "api-key": put("in.api_key"),
    "ocp-apim-subscription-key": put("in.api_key"),
    "x-amz-cf-id": put("in.edge_request_id"),
    "cf-ray": put("in.edge_request_id"),
    "x-edge-request-id": put("in.edge_request_id"),
    "x-forwarded-for": put("http.request.header.x-forwarded-for"),
    "user-agent": put("user_agent.original"),
    "host": put_host("server.address"),
    ":authority": put_host("server.address"),
    "x-jwt-assertion": put("in.jwt"),
}


def header_applier(name: str) -> Applier | None:
    return HEADER_APPLIERS.get(name.lower().replace("_", "-"))


# --------------------------------------------------------------------------------------------- templates


@dataclass
class CompiledTemplate:
    """One anchored regex plus, per group, the source field name and its applier.

    ``parse`` is generated Python (like ``collections.namedtuple``): one function per template with the group
    unpacking, the ``raw`` dict literal and the plain stores inlined, which halves the per-line cost compared with
    a generic loop over appliers.
    """

    regex: re.Pattern[str]
    names: tuple[str, ...]
    appliers: tuple[Applier | None, ...]
    json_escaped: bool = False
    finish: Callable[[Record], None] | None = None
    label: str = ""
    quoted: frozenset[int] = frozenset()  # groups that may be logged as "..." (HAProxy %{+Q}): quotes stripped
    # an RE2 form of ``regex`` for the SQL fast path, exact on lines with ``re2_quotes`` double quotes (the
    # template's own): Envoy's quoted values may contain quotes, which only Python's lookahead can split
    re2_pattern: str | None = None
    re2_quotes: int | None = None
    parse: Callable[[str], Record | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.regex.groups != len(self.names) or len(self.names) != len(self.appliers):
            raise ValueError("template groups, names and appliers disagree")
        self.parse = _generate_parser(self)


def _generate_parser(t: CompiledTemplate) -> Callable[[str], Record | None]:
    """Build ``parse(line) -> record | None`` for one template (see CompiledTemplate)."""
    env: dict[str, object] = {"_match": t.regex.fullmatch, "_finish": t.finish, "_unesc": _json_unescape}
    n = len(t.names)
    gs = [f"g{i}" for i in range(n)]
    body = ["def parse(line):", "    m = _match(line)", "    if m is None:", "        return None"]
    body.append("    vals = m.groups()")
    body.append(f"    {', '.join(gs)}, = vals")
    for i in sorted(t.quoted):
        g = gs[i]
        body.append(f"    if {g} and {g}[0] == '\"':")
        body.append(f"        {g} = {g}[1:-1]")
        body.append(f"        if '\\\\' in {g}: {g} = {g}.replace('\\\\\"', '\"')")
    if t.json_escaped:
        for g in gs:
            body.append(f"    if {g} and '\\\\' in {g}: {g} = _unesc({g})")
    # raw holds strings only: groups in optional parts of the regex are stored only when the line had them
    maybe_none = _optional_groups(t.regex)
    raw_items = ", ".join(f"{name!r}: {g}" for i, (name, g) in enumerate(zip(t.names, gs, strict=True))
                          if i + 1 not in maybe_none)
    body.append(f"    raw = {{{raw_items}}}")
    for i, (name, g) in enumerate(zip(t.names, gs, strict=True)):
        if i + 1 in maybe_none:
            body.append(f"    if {g} is not None: raw[{name!r}] = {g}")
    body.append("    rec = {'raw': raw}")
    for i, (g, apply) in enumerate(zip(gs, t.appliers, strict=True)):
        if apply is None:
            continue
        key = getattr(apply, "_put_key", None)
        int_key = getattr(apply, "_int_key", None)
        if key is not None:
            body.append(f"    if {g} and {g} != '-': rec[{key!r}] = {g}")
        elif int_key is not None:
            body.append(f"    if {g} and {g}.isdigit(): rec[{int_key!r}] = int({g})")
        else:
            env[f"_a{i}"] = apply
            body.append(f"    if {g} and {g} != '-': _a{i}(rec, {g})")
    if t.finish is not None:
        body.append("    _finish(rec)")
    body.append("    return rec")
    exec("\n".join(body), env)  # noqa: S102 - code built from field indices and repr()'d names only
    fn = env["parse"]
    assert callable(fn)
    return fn  # type: ignore[no-any-return]


def _optional_groups(regex: re.Pattern[str]) -> frozenset[int]:
    """Numbers of the groups that may not participate in a match (inside ``?``/``*``, an alternative or a
    lookaround), from the parsed pattern."""
    import re._parser as sre_parse  # noqa: PLC0415 - stdlib, only needed when a template is compiled

    found: set[int] = set()

    def walk(items: object, optional: bool) -> None:
        for op, av in items:  # type: ignore[attr-defined]
            name = str(op)
            if name == "SUBPATTERN":
                group, _, _, sub = av
                if group is not None and optional:
                    found.add(group)
                walk(sub, optional)
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                low, _, sub = av
                walk(sub, optional or low == 0)
            elif name == "BRANCH":
                for sub in av[1]:
                    walk(sub, True)
            elif name == "ATOMIC_GROUP":
                walk(av, optional)
            elif name in ("ASSERT", "ASSERT_NOT"):
                walk(av[1], True)
            elif name == "GROUPREF_EXISTS":
                walk(av[1], True)
                if av[2] is not None:
                    walk(av[2], True)

    walk(sre_parse.parse(regex.pattern, regex.flags), False)
    return frozenset(found)


def _group_min_widths(regex: re.Pattern[str]) -> dict[int, int]:
    """The shortest text each capture group can match (0: the group may capture an empty string)."""
    import re._parser as sre_parse  # noqa: PLC0415

    widths: dict[int, int] = {}

    def walk(items: object) -> None:
        for op, av in items:  # type: ignore[attr-defined]
            name = str(op)
            if name == "SUBPATTERN":
                group, _, _, sub = av
                if group is not None:
                    widths[group] = sub.getwidth()[0]
                walk(sub)
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                walk(av[2])
            elif name == "BRANCH":
                for sub in av[1]:
                    walk(sub)
            elif name == "ATOMIC_GROUP":
                walk(av)
            elif name in ("ASSERT", "ASSERT_NOT"):
                walk(av[1])

    walk(sre_parse.parse(regex.pattern, regex.flags))
    return widths


@lru_cache(maxsize=256)
def _re2_compatible(pattern: str) -> bool:
    import duckdb  # noqa: PLC0415 - the SQL fast path's engine

    try:
        duckdb.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()  # the default in-memory connection
    except duckdb.Error:
        return False
    return True


def applier_fields(names: Sequence[str], appliers: Sequence[Applier | None]) -> tuple[list[VField], list[str]]:
    """Fast-path fields for the appliers of named values (in application order), and the names whose applier
    has no SQL form (a row where one of them is present goes to Python)."""
    fields: list[VField] = []
    slow: list[str] = []
    for name, apply in zip(names, appliers, strict=True):
        with_ = getattr(apply, "_with", None)
        if getattr(apply, "_fallback", False) and with_ is not None:
            fields.insert(0, VField(with_[0], name, "text", label=with_[2]))
            continue
        if apply is None:
            continue
        key = getattr(apply, "_put_key", None)
        cast = getattr(apply, "_cast", None)
        seconds = getattr(apply, "_seconds", None)
        parts = getattr(apply, "_parts", ())
        if key is not None:
            fields.append(VField(key, name, "text"))
        elif parts and all(getattr(one, "_put_key", None) for one in parts):
            fields.extend(VField(one._put_key, name, "text") for one in parts)
        elif getattr(apply, "_int_key", None) is not None:
            fields.append(VField(apply._int_key, name, "digits"))  # type: ignore[attr-defined]
        elif getattr(apply, "_unquoted_key", None) is not None:
            fields.append(VField(apply._unquoted_key, name, "text_urldecode"))  # type: ignore[attr-defined]
        elif getattr(apply, "_host_key", None) is not None:
            fields.append(VField(apply._host_key, name, "host"))  # type: ignore[attr-defined]
        elif seconds is not None and seconds[1] in (1.0, 1000.0):
            fields.append(VField(seconds[0], name, "seconds" if seconds[1] == 1.0 else "seconds_ms"))
        elif with_ is not None and with_[1] in ("in.request_id_source", "in.trace_id_key"):
            fields.append(VField(with_[0], name, "text", label=with_[2]))
        elif cast == "reqline":
            fields.append(VField("http.request.method", name, "reqline_method"))
            fields.append(VField("url.path", name, "reqline_path"))
        elif cast == "target_path":
            fields.append(VField("url.path", name, "target_path"))
        elif cast == "direction":
            fields.append(VField("hop.direction", name, "direction"))
        elif getattr(apply, "_jwt_claim", None) == "iss":  # other claims need Python's token mapping
            fields.append(VField("token.issuer", name, "claim_text"))
            fields.append(VField("token.type", name, "claim_jwt"))
        else:
            slow.append(name)
    return fields, slow


def template_vector(t: CompiledTemplate, re2_pattern: str | None = None,
                    re2_names: Sequence[str] = (), markers: Mapping[str, str] | None = None,
                    siblings: Sequence[CompiledTemplate] = ()) -> Vector | None:
    """The SQL fast-path declaration of a compiled template, or None when the SQL cannot reproduce its parser.

    Each group's applier maps to a field with a cast that the SQL implements the same way (``casts.py``); a group
    whose applier has no SQL form sends its rows to Python when it is present. An applier marked ``_fallback``
    sets its id only when no other group did (nginx's own ``$request_id``): it gets the lowest priority. An optional group that can capture an empty string needs a marker group (``markers``, in an
    equivalent ``re2_pattern`` whose groups are ``re2_names``) that captures text exactly when it took part.
    ``siblings`` are the other variants a multi-template parser tries: a line that one of them also matches goes
    to Python, which picks the variant. Lines with non-ASCII text, JSON escapes or a secret-shaped value always go
    to Python.
    """
    if t.finish is not None or t.quoted or len(set(t.names)) != len(t.names):
        return None
    pattern = re2_pattern or t.re2_pattern or t.regex.pattern.replace("*+", "*").replace("++", "+").replace("?+", "?")
    names = tuple(re2_names) or t.names
    if not _re2_compatible(pattern):
        return None
    fields, slow = applier_fields(t.names, t.appliers)
    widths = _group_min_widths(t.regex)
    markers = markers or {}
    optional: list[tuple[str, str]] = []
    for g in sorted(_optional_groups(t.regex)):
        name = t.names[g - 1]
        if name in markers:
            optional.append((name, markers[name]))
        elif widths.get(g, 0) > 0:
            optional.append((name, name))
        else:
            return None  # an empty capture there is ambiguous (absent or empty): Python decides every line
        if g == 1:
            return None
    # a literal of the template that looks secret-ish ('"cookie_session": "', 'token=') would flag every line:
    # it is left out of the line prefilter, and the value that follows it always goes to Python when present
    ignore: list[str] = []
    for literal, group in _literals_before_groups(t.regex):
        if literal and _secretish(literal):
            ignore.append(literal)
            if group is not None:
                slow.append(t.names[group - 1])
    others = tuple(o.re2_pattern or o.regex.pattern for o in siblings)
    if not all(_re2_compatible(o) for o in others):
        return None
    return Vector(kind="regex", fields=tuple(fields), pattern=pattern, slow_if=tuple(dict.fromkeys(slow)),
                  groups=names, raw_groups=t.names, optional_groups=tuple(optional),
                  slow_line_contains=("\\",) if t.json_escaped else (), prefilter_ignore=tuple(ignore),
                  quote_count=t.re2_quotes, exclusive_of=others)


def _secretish(text: str) -> bool:
    from apitrail.trace.secrets import prefilter_hit  # noqa: PLC0415 - secrets imports the formats package

    return prefilter_hit(text)


def _literals_before_groups(regex: re.Pattern[str]) -> list[tuple[str, int | None]]:
    """The literal text right before each top-level group (and after the last one, with None)."""
    import re._parser as sre_parse  # noqa: PLC0415

    out: list[tuple[str, int | None]] = []
    buf: list[str] = []
    for op, av in sre_parse.parse(regex.pattern, regex.flags):
        name = str(op)
        if name == "LITERAL":
            buf.append(chr(av))
            continue
        if name == "SUBPATTERN" and av[0] is not None:
            out.append(("".join(buf), av[0]))
        elif buf:
            out.append(("".join(buf), None))
        buf = []
    if buf:
        out.append(("".join(buf), None))
    return out


def _json_unescape(value: str) -> str:
    try:
        out = json.loads('"' + value + '"')
    except ValueError:
        return value
    return out if isinstance(out, str) else value


class MultiTemplateParser:
    """Try several known variants of a format; the last variant that matched is tried first (files are uniform,
    so this costs one regex per line in practice)."""

    def __init__(self, templates: Sequence[CompiledTemplate]) -> None:
        self._templates = list(templates)

    def __call__(self, line: str) -> Record | None:
        templates = self._templates
        for i, template in enumerate(templates):
            rec = template.parse(line)
            if rec is not None:
                if i:
                    templates.insert(0, templates.pop(i))
                return rec
        return None


def first_match_score(templates: Iterable[CompiledTemplate], lines: list[str]) -> float:
    """Share of non-blank lines that one of the templates matches fully."""
    body = [ln for ln in lines if ln.strip()]
    if not body:
        return 0.0
    compiled = list(templates)
    hits = sum(1 for ln in body if any(t.regex.fullmatch(ln) for t in compiled))
    return hits / len(body)


def strip_eol(line: str) -> str:
    return line.rstrip("\r\n")


__all__ = [
    "HEADER_APPLIERS",
    "NIL",
    "Applier",
    "CompiledTemplate",
    "MultiTemplateParser",
    "Record",
    "apply_request_line",
    "apply_target",
    "clf_to_iso",
    "first_match_score",
    "header_applier",
    "host_of",
    "nil",
    "put",
    "put_all",
    "put_clf_time",
    "put_cookie_named",
    "put_epoch",
    "put_host",
    "put_int",
    "put_method",
    "put_naive_clf_time",
    "put_seconds",
    "put_status",
    "put_unquoted",
    "put_with",
    "request_id",
    "applier_fields",
    "strip_eol",
    "template_vector",
    "trace_id",
]
