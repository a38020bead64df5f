"""The log-format contract: what a format module declares and what its line parser returns.

A format is one module in ``apitrail/trace/formats/`` with a module-level ``FORMAT`` (or a ``FORMATS`` list) of
:class:`LogFormat`. The registry in ``formats/__init__.py`` discovers them; there is no second list.

Line parser
-----------
``LogFormat.make_parser(options)`` returns a per-file line parser ``parse(line: str) -> dict | list[dict] | None``:

* returns an *intermediate record* (below) for a data line;
* returns a list of intermediate records for a line that carries several (an OTLP/JSON export's log records, an
  Event Hubs ``{"records": [...]}`` wrapper): each becomes a hop with the line's ``source.line`` and its 1-based
  position in the list as ``source.record`` (a single record is record 1). An empty list is a reject (``"no
  records"``); a record the core cannot normalise rejects the whole line, so a line is always all hops or one
  reject;
* returns ``None`` for a header or comment line (the core stores it in ``rejects`` with reason ``"header"``);
* raises :class:`Reject` for a malformed line (``reason`` is short and never contains a value of the line).

Any other exception is a bug; the core turns it into a reject ``"parser error: <ExceptionType>"`` and the
Hypothesis test over the registry fails on it. A parser may keep state across lines of one file (CloudFront's
``#Fields`` header); such formats set ``stateful=True`` and the core then parses each file sequentially.

Intermediate record
-------------------
Keys are either canonical field names of ``trace/schema.py`` for values already in final form
(``http.request.method``, ``url.path``, ``http.response.status_code`` int, ``client.address``, ``duration`` seconds
float, ``hop.instance``, ``response.flags``, ``failure.reason``, ``authz.decision``, ...), or ``in.*`` hints the core
normalises (``trace/normalize/record.py``):

==========================  ==========================================================================================
``in.timestamp``            datetime, epoch s/ms/us/ns (number or digits), ISO 8601, CLF ``10/Oct/2000:13:55:36 -0700``,
                            or CloudFront date+time joined ``"2019-12-04 21:02:31"`` (UTC)
``in.traceparent``          raw W3C ``traceparent`` (validated per the spec; ``trace.invalid_reason`` kept)
``in.tracestate``           raw ``tracestate`` (only counted, never parsed when traceparent is invalid)
``in.b3``                   single ``b3`` header
``in.x-b3-traceid`` ...     B3 multi header: ``in.x-b3-traceid``, ``in.x-b3-spanid``, ``in.x-b3-parentspanid``,
                            ``in.x-b3-sampled``
``in.x-amzn-trace-id``      X-Ray ``Root=1-5759e988-bd862e3fe1be46a994272793;Parent=...;Sampled=1`` (or bare ``1-...``)
``in.x-cloud-trace-context``GCP ``TRACE/SPAN;o=1``
``in.gcp_trace``            ``projects/P/traces/T``
``in.trace_id``             a backend dialect's raw trace id; ``in.trace_id_key`` names the key it came from
                            (``trace_id`` -> mdc, ``traceId`` -> mdc, ``trace.id`` -> ecs, ``otelTraceID`` -> otel, ...)
``in.span_id``              raw span id of this hop
``in.request_id``           request id; ``in.request_id_source`` = header or variable name it came from
``in.edge_request_id``      CDN request id (Cf-Ray, x-edge-request-id, X-Amz-Cf-Id)
``in.xfcc``                 raw ``x-forwarded-client-cert``
``in.cert_subject``         client cert subject, RFC 2253 or OpenSSL ``/C=US/CN=x``; ``in.cert_issuer`` likewise
``in.cert_fingerprint``     SHA-1 or SHA-256 thumbprint: hex, colon-hex or base64url
``in.cert_serial``          serial (hex or decimal digits as logged)
``in.cert_verify``          raw nginx ``$ssl_client_verify`` / HAProxy ``ssl_c_verify`` / Cloudflare mTLS status
``in.cert_not_after``       cert expiry (any ``in.timestamp`` form, or OpenSSL ``Jun  1 12:00:00 2030 GMT``)
``in.peer_uri_san``         SPIFFE id from the peer certificate
``in.authorization``        raw ``Authorization`` header value
``in.jwt``                  a raw compact JWT; ``in.jwt_claims`` = dict of claims a gateway logged
``in.api_key``              raw API key; ``in.cookie`` raw Cookie header
``in.query``                raw query string; ``in.url`` raw URL or request target, possibly with a query
``in.envoy_rcd``            Envoy ``%RESPONSE_CODE_DETAILS%`` (spaces or underscores)
``in.upstream_status``      upstream status chain, e.g. ``"502, 504 : 200"``
``in.raw_json``             (JSON formats) the parsed source object; ``raw.unmapped`` is built from it
``raw``                     REQUIRED: dict of EVERY source field of the line, name -> value as string (nested JSON
                            flattened with dots). The leak detector runs over it; it is never stored as is.
==========================  ==========================================================================================

Vectorised fast path
--------------------
A format may declare ``vector``: a :class:`Vector` (JSON paths or one RE2/Python-compatible regex with named groups,
and a table of :class:`VField` ``target <- source [cast]``). The core compiles it into one DuckDB ``SELECT`` over the
file's lines. Rows the SQL cannot settle with certainty (a secret-shaped value, a non-trivial trace header, a
``slow_if`` source present, a value that does not fit its cast) are sent to the Python line parser, which is always
the reference. ``parser_from_vector`` builds that Python parser from the same declaration, so the two paths cannot
drift; ``extra`` adds the per-format logic SQL does not do.

``raw.unmapped`` holds the whole source record with every secret-shaped value replaced by its keyed fingerprint:
the parsed object for JSON formats (the original line on the fast path, which only takes secret-free lines), the
``raw`` dict for text formats. Keeping mapped fields too costs space but means nothing is lost to a mapping bug.
``schema.source_fingerprint`` hashes the sorted top-level keys (JSON) or the ``raw`` keys (text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Parser = Callable[[str], "dict[str, Any] | None"]
"""A parser of single-record lines (every vector format's, see :func:`parser_from_vector`)."""
LineParser = Callable[[str], "dict[str, Any] | list[dict[str, Any]] | None"]
"""What ``make_parser`` returns: a line parser that may give several records for one line."""


class Reject(Exception):
    """A line that does not fit the format. ``reason`` is short and never quotes the line's values."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FormatOptions:
    """Per-file options: a user template (for template formats) and overrides."""

    template: str | None = None
    layer: str | None = None
    product: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)


# Casts shared by the SQL fast path and the Python parser (trace/normalize/casts.py implements both sides).
CASTS = ("str", "int", "float", "dur_s", "dur_ms", "dur_us", "upper", "lower", "json", "map", "urldecode", "formdecode")


@dataclass(frozen=True)
class VField:
    """``target`` (canonical field or ``in.*`` hint) <- ``source`` (JSON path as a tuple of keys, or a regex group)."""

    target: str
    source: tuple[str, ...] | str
    cast: str = "str"
    # for in.request_id / in.trace_id: the provenance recorded when this candidate wins (request id source,
    # trace-id key); several candidates may target the same hint, the last present one wins
    label: str | None = None
    # cast "map": source value -> output value; values not listed give None
    mapping: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Vector:
    """A vectorisable declaration: ``kind`` is ``"json"`` (sources are key paths) or ``"regex"`` (group names)."""

    kind: str
    fields: tuple[VField, ...]
    pattern: str | None = None
    # sources whose presence (non-null, non-empty) sends the row to the Python parser
    slow_if: tuple[tuple[str, ...] | str, ...] = ()
    # canonical fields with a constant value for every row (e.g. "http.request.id_source")
    constants: Mapping[str, Any] = field(default_factory=dict)
    # a JSON object must contain at least one of these top-level keys, else the row is rejected
    require_any: tuple[str, ...] = ()
    # literal snippets removed from the line before the secret prefilter (e.g. an always-present empty
    # ``"Cookies":{}`` whose key name alone would send every row to Python); a non-empty value must be in slow_if
    prefilter_ignore: tuple[str, ...] = ()
    # regex: every capture group name in pattern order; the ones raw keeps (in order); and the optional raw groups
    # with the group whose non-empty capture shows the optional part took part (itself, or a marker group)
    groups: tuple[str, ...] = ()
    raw_groups: tuple[str, ...] = ()
    optional_groups: tuple[tuple[str, str], ...] = ()
    # literal snippets whose presence anywhere in the line sends the row to Python (a JSON-escaped value, ...)
    slow_line_contains: tuple[str, ...] = ()
    # regex: the pattern is exact only on lines with this many double quotes; others go to Python
    quote_count: int | None = None
    # regex: a line that one of these patterns also matches goes to Python (it chooses between variants)
    exclusive_of: tuple[str, ...] = ()
    # regex: (group, values): a row where the group has one of the values goes to Python
    slow_if_equals: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # json: (object key, member names): the members the fields read from that object; a row whose object has
    # another member, or a member that is not a string, goes to Python (which reads it case-insensitively)
    json_objects: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # regex: (canonical field, SQL over r."<group>") for a rule across groups that no cast expresses; the format's
    # parity test holds it to the Python parser
    sql_fields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LogFormat:
    """One log source format."""

    name: str
    layer: str
    product: str
    kind: str  # "text" | "json" | "csv"
    doc: str
    detect: Callable[[list[str]], float]
    make_parser: Callable[[FormatOptions], LineParser]
    vector: Vector | None = None
    # for template formats: the KIND of ``--log-format GLOB=KIND:...`` this format compiles (nginx, envoy, apigw...)
    template_kind: str | None = None
    # a template format builds its vector from the template: (options) -> Vector | None
    make_vector: Callable[[FormatOptions], Vector | None] | None = None
    # a format whose columns a file declares itself (CloudFront's #Fields): (options, file bytes) -> Vector | None;
    # files are read in blocks: it gets a block, after the last line of earlier blocks that starts with
    # ``header_prefix`` (the declaration still in force)
    make_file_vector: Callable[[FormatOptions, bytes], Vector | None] | None = None
    header_prefix: bytes | None = None
    stateful: bool = False

    def vector_for(self, options: FormatOptions) -> Vector | None:
        if self.make_vector is not None:
            return self.make_vector(options)
        return self.vector


# ---------------------------------------------------------------------------------------------------------------
# Helpers for format modules


def flatten(obj: Any, prefix: str = "", out: dict[str, str] | None = None) -> dict[str, str]:
    """Flatten a JSON value into ``{"a.b.0.c": "value"}`` (every leaf as a string; null leaves are skipped)."""
    if out is None:
        out = {}
    if isinstance(obj, dict):
        if not obj and prefix:
            return out
        for k, v in obj.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            flatten(v, f"{prefix}.{i}" if prefix else str(i), out)
    elif obj is None:
        pass
    elif isinstance(obj, bool):
        out[prefix] = "true" if obj else "false"
    else:
        out[prefix] = str(obj)
    return out


def get_path(obj: Any, path: tuple[str, ...] | str) -> Any:
    """Follow a key path in parsed JSON; ``None`` when any step is missing."""
    if isinstance(path, str):
        path = (path,)
    cur = obj
    for key in path:
        if isinstance(cur, dict):
            cur = cur.get(key)
        elif isinstance(cur, list) and key.isdigit():
            idx = int(key)
            cur = cur[idx] if idx < len(cur) else None
        else:
            return None
        if cur is None:
            return None
    return cur


def loads_object(line: str) -> dict[str, Any]:
    """Parse one JSON line that must be an object, or raise Reject."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        raise Reject("invalid json") from None
    if not isinstance(obj, dict):
        raise Reject("json value is not an object")
    return obj


def json_keys_score(first_lines: list[str], required: Iterable[str], optional: Iterable[str] = ()) -> float:
    """Detection helper for JSON formats: share of the first objects carrying the required keys (+ optional bonus)."""
    required = tuple(required)
    optional = tuple(optional)
    objs: list[dict[str, Any]] = []
    misses = 0
    for line in first_lines[:20]:
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            misses += 1  # a malformed line lowers the score but does not hide the format
            continue
        if isinstance(obj, dict):
            objs.append(obj)
        else:
            misses += 1
    if not objs:
        return 0.0
    hits = 0.0
    for obj in objs:
        if all(get_path(obj, tuple(k.split("/"))) is not None for k in required):
            bonus = sum(1 for k in optional if get_path(obj, tuple(k.split("/"))) is not None)
            hits += 0.8 + 0.2 * (bonus / len(optional) if optional else 1.0)
    return hits / (len(objs) + misses)


def json_object_share(first_lines: list[str], predicate: Callable[[dict[str, Any]], bool],
                      count_malformed: bool = True) -> float:
    """Detection helper for JSON formats: share of the first non-blank lines that are objects the predicate
    accepts (malformed lines count against the share unless count_malformed is False)."""
    hits = total = 0
    for line in first_lines[:20]:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            total += count_malformed
            continue
        total += 1
        if isinstance(obj, dict) and predicate(obj):
            hits += 1
    return hits / total if total else 0.0


def regex_score(first_lines: list[str], pattern: re.Pattern[str]) -> float:
    """Detection helper for text formats: share of the first non-comment lines the regex matches."""
    lines = [ln for ln in first_lines[:20] if ln.strip() and not ln.startswith("#")]
    if not lines:
        return 0.0
    return sum(1 for ln in lines if pattern.match(ln.rstrip("\r\n"))) / len(lines)


LABEL_KEYS = {"in.request_id": "in.request_id_source", "in.trace_id": "in.trace_id_key"}


def _put(rec: dict[str, Any], f: VField, val: Any) -> None:
    if val is None:
        return
    rec[f.target] = val
    if f.label is not None and f.target in LABEL_KEYS:
        rec[LABEL_KEYS[f.target]] = f.label


def parser_from_vector(
    vector: Vector,
    extra: Callable[[Any, dict[str, Any]], None] | None = None,
) -> Parser:
    """The reference Python parser for a :class:`Vector` declaration.

    ``extra(source, record)`` receives the parsed object (JSON) or the ``re.Match`` (regex) and may add keys.
    """
    from apitrail.trace.normalize.casts import py_cast  # local: normalize imports this module

    if vector.kind == "json":

        def parse_json(line: str) -> dict[str, Any] | None:
            obj = loads_object(line)
            if vector.require_any and not any(obj.get(k) is not None for k in vector.require_any):
                raise Reject("json object lacks the format's keys")
            rec: dict[str, Any] = {}
            for f in vector.fields:
                _put(rec, f, py_cast(get_path(obj, f.source), f.cast, f.mapping))
            rec.update(vector.constants)
            rec["raw"] = flatten(obj)
            rec["in.raw_json"] = obj
            if extra is not None:
                extra(obj, rec)
            return rec

        return parse_json

    if vector.kind == "regex":
        if not vector.pattern:
            raise ValueError("regex vector without a pattern")
        rx = re.compile(vector.pattern)

        def parse_regex(line: str) -> dict[str, Any] | None:
            m = rx.fullmatch(line.rstrip("\r\n"))
            if m is None:
                raise Reject("line does not match the format")
            # every group, "" when it did not take part (the SQL fast path sees the same)
            groups = {k: (v if v is not None else "") for k, v in m.groupdict().items()}
            rec: dict[str, Any] = {}
            for f in vector.fields:
                src = f.source if isinstance(f.source, str) else f.source[0]
                _put(rec, f, py_cast(groups.get(src), f.cast, f.mapping))
            rec.update(vector.constants)
            rec["raw"] = groups
            if extra is not None:
                extra(m, rec)
            return rec

        return parse_regex

    raise ValueError(f"unknown vector kind {vector.kind!r}")


__all__ = [
    "CASTS",
    "FormatOptions",
    "LineParser",
    "LogFormat",
    "Parser",
    "Reject",
    "VField",
    "Vector",
    "flatten",
    "get_path",
    "json_keys_score",
    "loads_object",
    "parser_from_vector",
    "regex_score",
]


def format_doc_markdown(fmt: LogFormat) -> str:
    """The ``docs/formats/<name>.md`` page of a format: its module docstring and its field table."""
    import importlib

    module = importlib.import_module(fmt.make_parser.__module__)
    lines = [f"# {fmt.name}", "", f"*{fmt.doc}*", "",
             f"- layer: `{fmt.layer}`", f"- product: `{fmt.product}`", f"- kind: `{fmt.kind}`",
             f"- user template: `--log-format 'GLOB={fmt.template_kind or fmt.name}:@FILE'`"
             if fmt.make_vector is not None or fmt.template_kind else "- user template: no",
             f"- fast path: {'vectorised (DuckDB SQL), unsettled rows in Python' if (fmt.vector or fmt.make_vector) else 'Python parser'}",
             "", "## Format", "", (module.__doc__ or "").strip(), ""]
    vector = fmt.vector_for(FormatOptions())
    if vector is not None:
        lines += ["## Field mapping", "", "| source | canonical field / hint | cast |", "|---|---|---|"]
        for f in vector.fields:
            src = ".".join(f.source) if isinstance(f.source, tuple) else f.source
            note = f" (`{f.label}`)" if f.label else ""
            cast = f.cast + (" " + ", ".join(f"{a}->{b}" for a, b in f.mapping) if f.mapping else "")
            lines.append(f"| `{src}` | `{f.target}`{note} | {cast} |")
        if vector.slow_if:
            srcs = ", ".join("`" + (".".join(s) if isinstance(s, tuple) else s) + "`" for s in vector.slow_if)
            lines += ["", f"Rows with any of {srcs} go through the Python parser (extra logic or secrets)."]
        lines.append("")
    lines += ["## Fixtures", "", f"`tests/fixtures/trace/{fmt.name}/` (snapshots: `*.expected.json`).", ""]
    return "\n".join(lines)
