"""The vectorised fast path: compile a format's :class:`Vector` into one DuckDB query over a file's lines.

Rows the SQL cannot settle with certainty go back to the Python parser (the reference): a secret-shaped value
anywhere in the line (``secrets.PREFILTER``), a ``slow_if`` source, an ``in.*`` hint SQL does not normalise, a
value that does not fit its cast, a trace header that is not a plain valid W3C/hex id. Everything else is
normalised in SQL with the same rules as ``normalize/record.py``; a test compares both paths on every fixture.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from apitrail.trace.formats._base import Vector
from apitrail.trace.normalize.casts import sql_cast
from apitrail.trace.normalize.record import HopContext, source_fingerprint
from apitrail.trace.normalize.trace_ids import DIALECT_SOURCES
from apitrail.trace.schema import FIELD_BY_NAME, FIELDS
from apitrail.trace.secrets import PREFILTER, field_kind
from apitrail.trace.store import q, sql_type

# in.* hints the SQL normalises itself; any other hint present sends the row to Python
_SQL_HINTS = frozenset({"in.timestamp", "in.trace_id", "in.trace_id_key", "in.traceparent", "in.span_id",
                        "in.x-amzn-trace-id",
                        "in.request_id", "in.request_id_source", "in.edge_request_id", "in.url",
                        "in.upstream_status", "in.envoy_rcd", "in.cert_verify", "in.token_location"})
# canonical fields whose Python normalisation SQL does not repeat
_PY_CANONICAL = frozenset({"tls.client.subject", "tls.client.issuer", "tls.client.hash.sha256",
                           "tls.client.hash.sha1", "tls.client.serial", "trace.id", "trace.source",
                           "trace.invalid_reason", "url.query_fp", "raw.unmapped", "schema.source_fingerprint",
                           "source.file", "source.line", "source.format"})

# what Python's str.strip() removes (str.isspace), so both paths agree on a "blank" line
_PY_BLANK = (r"[\s\x{0b}\x{0c}\x{1c}-\x{1f}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}"
             r"\x{205f}\x{3000}]*")


def lit(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def json_path(path: tuple[str, ...] | str) -> str:
    keys = (path,) if isinstance(path, str) else path
    parts = ["$"]
    for k in keys:
        if k.isdigit():
            parts.append(f"[{k}]")
        else:
            parts.append('."' + k.replace('"', '\\"') + '"')
    return "".join(parts)


def _one_of(e: str, values: tuple[str, ...]) -> str:
    """``e IN (...)`` as an OR chain: DuckDB plans a long IN list as a hash join, far slower per row."""
    return "(" + " OR ".join(f"{e} = {lit(v)}" for v in values) + ")"


def _placeholder(e: str) -> str:
    t = f"trim({e})"
    full = (f"({_one_of(f'lower({t})', ('', '-', '0', 'null', 'none', 'undefined'))} "
            f"OR ((ord({t}) = 45 OR ord({t}) = 48) AND regexp_full_match({t}, '[0-]*')))")
    # gated on the first character: a printable ASCII one that no placeholder starts with settles it (CASE, not
    # OR/AND: DuckDB evaluates every operand of those in a projection)
    first = f"ord({e})"
    return (f"CASE WHEN {e} IS NULL THEN true WHEN {first} > 32 AND {first} < 127 AND NOT "
            "(" + " OR ".join(f"{first} = {c}" for c in b"-0NUnu") + f") THEN false ELSE {full} END")


def _present(e: str) -> str:
    return f"({e} IS NOT NULL AND {e} NOT IN ('', '-'))"


_ISO = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}([.,][0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?"
_CLF = r"[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}"


def _ts_shape(e: str) -> str:
    """0 absent, 1 epoch digits, 2 ISO 8601, 3 CLF, 9 a form SQL does not know (Python decides)."""
    t = f"trim({e})"
    return (f"CASE WHEN NOT {_present(e)} THEN 0 WHEN regexp_full_match({t}, '{_ISO}') THEN 2 "
            f"WHEN regexp_full_match({t}, '{_CLF}') THEN 3 WHEN regexp_full_match({t}, '[0-9]{{10,19}}') THEN 1 "
            "ELSE 9 END")


def _ts_value(e: str, shape: str) -> str:
    t = f"trim({e})"
    micros = (f"CASE WHEN length({t}) <= 11 THEN TRY_CAST({t} AS BIGINT) * 1000000 "
              f"WHEN length({t}) <= 14 THEN TRY_CAST({t} AS BIGINT) * 1000 "
              f"WHEN length({t}) <= 17 THEN TRY_CAST({t} AS BIGINT) ELSE TRY_CAST({t} AS BIGINT) // 1000 END")
    dot = f"replace({t}, ',', '.')"  # Python logging's asctime writes a comma before the milliseconds
    iso = (f"CASE WHEN length({t}) > 26 THEN regexp_replace({dot}, '(\\.[0-9]{{6}})[0-9]+', '\\1') ELSE {dot} END")
    # TRY forms: a well-shaped value out of range (month 13) is NULL here and goes to Python
    return (f"CASE {shape} WHEN 1 THEN try(CAST(make_timestamp({micros}) AS TIMESTAMPTZ)) "
            f"WHEN 2 THEN TRY_CAST({iso} AS TIMESTAMPTZ) WHEN 3 THEN try_strptime({t}, '%d/%b/%Y:%H:%M:%S %z') END")


def _dialect(key: object) -> str:
    """The trace.source of a dialect id logged under ``key`` (as ``trace_ids.parse_dialect_id`` decides)."""
    if key in ("otel", "ecs", "mdc", "gcp", "b3"):
        return str(key)
    return DIALECT_SOURCES.get(str(key or "").lower(), "mdc")


def _span(e: str) -> str:
    return f"CASE WHEN regexp_full_match(trim({e}), '[0-9a-fA-F]{{16}}') THEN lower(trim({e})) END"


class FastPathError(Exception):
    """The SQL could not process a file; nothing of it was inserted, and Python parses it instead."""


@dataclass
class FastResult:
    fast_rows: int
    rejects: list[tuple[int, str]]
    slow: list[tuple[int, str]]
    rejected_lines: list[tuple[int, str]] = field(default_factory=list)  # for the leak scan


def lines_table(data: bytes, first: int = 1) -> pa.Table:
    """Zero-copy split of a file's bytes (or of a block of whole lines, numbered from ``first``) into (n, line)
    with numpy; the last empty line after a final EOL dropped. Invalid UTF-8 is replaced, never fatal."""
    if not data:
        return pa.table({"n": pa.array([], pa.int64()), "line": pa.array([], pa.string())})
    if not data.endswith(b"\n"):
        data += b"\n"
    try:
        if not data.isascii():  # (a check at memory speed; decoding is the slow, exact test)
            data.decode("utf-8")
    except UnicodeDecodeError:  # bytes that are not UTF-8 (a Latin-1 log): U+FFFD, as Python's errors="replace"
        data = data.decode("utf-8", "replace").encode("utf-8")
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    offsets = np.empty(len(nl) + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = nl + 1
    # offsets include the '\n'; strip it (and a '\r') in SQL
    arr = pa.LargeStringArray.from_buffers(len(nl), pa.py_buffer(offsets), pa.py_buffer(data))
    return pa.table({"n": pa.array(np.arange(first, first + len(nl), dtype=np.int64)), "line": arr})


# rows per pyarrow task of the row-flag scan (RE2 in pyarrow releases the GIL: one task per core)
_FLAG_CHUNK = 65_536


# JSON that DuckDB's reader accepts and Python's json module rejects (a trailing comma, INF/nan literals), or
# reads differently (NaN, Infinity, surrogate escapes): such a line goes to Python. A match inside a string only
# costs a slow row.
_LENIENT_JSON = r",\s*[}\]]|[:\[,]\s*-?(inf|nan)|\\u[dD][89a-fA-F]"


def _row_flags(lines: pa.Table, vector: Vector) -> pa.Array:
    """Per line: True when it must go to Python whatever the SQL says (a secret-shaped substring; for a regex
    format a non-ASCII byte: Python's ``\\d``/``\\s`` are Unicode-aware, RE2's are not; for JSON, syntax only
    DuckDB accepts)."""
    col = lines.column("line").combine_chunks() if lines.num_rows else pa.array([], pa.large_string())

    ignore = "|".join(re.escape(snippet) for snippet in vector.prefilter_ignore)
    pattern = PREFILTER + "|" + _LENIENT_JSON if vector.kind == "json" else PREFILTER  # PREFILTER starts with (?i)

    def scan(part: pa.Array) -> pa.Array:
        # the snippets removed in one regex pass (one literal pass each is several times slower on long lines)
        # (replaced by a neutral "0": removing them could leave a trailing comma that _LENIENT_JSON flags)
        scanned = pc.replace_substring_regex(part, ignore, "0") if ignore else part
        hit = pc.match_substring_regex(scanned, pattern)
        if vector.kind == "regex":
            hit = pc.or_(hit, pc.invert(pc.string_is_ascii(part)))
        return hit

    parts = [col.slice(i, _FLAG_CHUNK) for i in range(0, len(col), _FLAG_CHUNK)] or [col]
    workers = min(len(parts), os.cpu_count() or 1)
    if workers <= 1:
        results = [scan(p) for p in parts]
    else:
        with ThreadPoolExecutor(workers) as ex:
            results = list(ex.map(scan, parts))
    return pa.concat_arrays(results) if len(results) > 1 else results[0]


class _Layers:
    """Stacked projections: each computed column is evaluated once per row and referenced by name above it
    (DuckDB does not share a repeated sub-expression across CASE branches)."""

    def __init__(self, depth: int) -> None:
        self.cols: list[list[tuple[str, str]]] = [[] for _ in range(depth)]
        self.count = 0

    def add(self, level: int, expr: str) -> str:
        for name, existing in self.cols[level]:
            if existing == expr:
                return name
        self.count += 1
        name = f"_c{self.count}"
        self.cols[level].append((name, expr))
        return name

    def sql(self, base: str) -> str:
        out = base
        for level in self.cols:
            if level:
                out = f"SELECT *, {', '.join(f'{e} AS {n}' for n, e in level)} FROM ({out})"
        return out


def _group_select(vector: Vector, ctx: HopContext, base: str, fingerprint_sql: str | None) -> tuple[str, list[str]]:
    """``SELECT n, l, route, <hop columns>`` over ``base`` (rows with n, l, secretish and the extract column), and
    the hop columns it sets."""
    srcs: list[tuple[str, ...] | str] = []
    for f in vector.fields:
        if f.source not in srcs:
            srcs.append(f.source)
    for s in vector.slow_if:
        if s not in srcs:
            srcs.append(s)
    for obj_key, _ in vector.json_objects:
        if (obj_key,) not in srcs:
            srcs.append((obj_key,))
    required = [(k,) for k in vector.require_any] if vector.kind == "json" else []
    for s in required:
        if s not in srcs:
            srcs.append(s)

    def src(s: tuple[str, ...] | str) -> str:
        if vector.kind == "json":
            return f"j[{srcs.index(s) + 1}]"
        name = s if isinstance(s, str) else s[0]
        # an applier never sees "-" or "" (see _template_utils): both are absent here
        return f"CASE WHEN r.{q(name)} NOT IN ('', '-') THEN r.{q(name)} END"

    if vector.kind == "json":
        paths = "[" + ", ".join(lit(json_path(s)) for s in srcs) + "]" if srcs else "['$.__none__']"
        extract = f"json_extract_string(l, {paths}) AS j"
    else:
        assert vector.pattern is not None
        names = "[" + ", ".join(lit(g) for g in ["_all", *vector.groups]) + "]"  # _all: the whole match
        extract = f"regexp_extract(l, {lit('(?s)^(' + vector.pattern + ')$')}, {names}) AS r"
    fp_col = f", {fingerprint_sql} AS _fp" if fingerprint_sql else ""
    # 0: reshaped sources, 1: timestamp shapes, 2: per-field values, 3: per-target values, 4-6: checks on them
    # (a column referenced in the same SELECT would be inlined, and computed again, by DuckDB's lateral alias)
    layers = _Layers(7)
    unsure: list[str] = []
    if vector.kind == "regex":
        unsure.append("r._all = ''")  # the line does not match the format
    for s in vector.slow_if:
        e = src(s)
        unsure.append(f"({e} IS NOT NULL AND NOT {_one_of(e, ('', '-', '^', '{}', '[]'))})")
    if vector.kind == "regex":  # a regex line has no key names for the prefilter: secret-named groups decide
        for s in srcs:
            if field_kind(s if isinstance(s, str) else s[0]) is not None:
                unsure.append(_present(src(s)))
    for obj_key, members in vector.json_objects:
        obj = src((obj_key,))  # the object's own JSON text: the checks parse it, not the whole line
        checks = [f"NOT list_has_all([{', '.join(lit(m) for m in members)}], json_keys({obj}))"]
        for m in members:
            mtype = f"json_type({obj}, {lit(json_path((m,)))})"
            checks.append(f"({mtype} <> 'VARCHAR' AND {mtype} <> 'NULL')")
        unsure.append(f"({obj} IS NOT NULL AND {obj} <> '{{}}' AND ({' OR '.join(checks)}))")
    for snippet in vector.slow_line_contains:
        unsure.append(f"contains(l, {lit(snippet)})")
    if vector.quote_count is not None:
        unsure.append(f"length(l) - length(replace(l, '\"', '')) <> {vector.quote_count}")
    for group, values in vector.slow_if_equals:
        unsure.append(_one_of(f"r.{q(group)}", values))
    for other in vector.exclusive_of:
        unsure.append(f"regexp_full_match(l, {lit('(?s)' + other)})")

    # target -> candidate value columns (last non-null wins, as in parser_from_vector)
    line = "l" if vector.kind == "json" else None
    vals: dict[str, str] = {}
    labels: dict[str, str] = {}
    trace_labels: list[tuple[str, str]] = []
    for f in vector.fields:
        e = src(f.source)
        tgt = f.target
        if tgt.startswith("in.") and tgt not in _SQL_HINTS:
            unsure.append(f"({e} IS NOT NULL AND {e} <> '')")
            continue
        spec = FIELD_BY_NAME.get(tgt)
        if spec is not None and (tgt in _PY_CANONICAL or pa.types.is_list(spec.type)
                                 or (pa.types.is_timestamp(spec.type) and tgt != "timestamp")):
            unsure.append(_present(e))
            continue
        if tgt in ("in.timestamp", "timestamp"):
            if f.cast not in ("str", "text"):  # a reshaping cast first (CloudFront's date<TAB>time)
                cast_value, cast_unsure = sql_cast(e, f.cast, f.mapping, line)
                unsure.append(cast_unsure)
                e = layers.add(0, cast_value)
            shape = layers.add(1, _ts_shape(e))
            v = layers.add(2, _ts_value(e, shape))
            unsure.append(f"({shape} = 9 OR ({shape} > 0 AND {v} IS NULL))")
        elif tgt.startswith("in.") or f.cast == "json":
            v = f"CASE WHEN {e} <> '' THEN {e} END" if f.cast == "json" else sql_cast(e, f.cast, f.mapping, line)[0]
            if f.cast != "json":
                unsure.append(sql_cast(e, f.cast, f.mapping, line)[1])
        else:
            v, u = sql_cast(e, f.cast, f.mapping, line)
            unsure.append(u)
            if spec is not None and spec.type == pa.string() and f.cast in ("int", "float", "dur_s", "dur_ms",
                                                                             "dur_us"):
                v = f"CAST({v} AS VARCHAR)"
                unsure.append(_present(e))  # Python prints numbers differently; let it decide
        v = layers.add(2, v)
        if f.label is not None and tgt == "in.trace_id":
            trace_labels.append((v, f.label))
        if f.label is not None and tgt in ("in.request_id", "in.trace_id"):
            prev = labels.get(tgt, "NULL")
            labels[tgt] = f"CASE WHEN {v} IS NOT NULL THEN {lit(f.label)} ELSE {prev} END"
        vals[tgt] = f"coalesce({v}, {vals[tgt]})" if tgt in vals else v

    for target, expr in vector.sql_fields:
        vals[target] = layers.add(2, expr)
    consts = dict(vector.constants)
    for k, v in consts.items():
        if k in FIELD_BY_NAME:
            vals[k] = lit(v)
    vals = {t: (layers.add(3, e) if not e.startswith("'") and e != "NULL" else e) for t, e in vals.items()}
    labels = {t: layers.add(3, e) for t, e in labels.items()}

    col: dict[str, str] = {}
    for spec in FIELDS:
        if spec.name in vals:
            typed = f"TRY_CAST({vals[spec.name]} AS {sql_type(spec.type)})"
            col[spec.name] = typed
            if spec.type != pa.string():  # a value that does not fit the field's type: Python decides
                unsure.append(f"({vals[spec.name]} IS NOT NULL AND {typed} IS NULL)")
    col["hop.layer"] = lit(ctx.layer_override) if ctx.layer_override else \
        f"coalesce({vals.get('hop.layer', 'NULL')}, {lit(ctx.layer)})"
    col["hop.product"] = lit(ctx.product_override) if ctx.product_override else \
        f"coalesce({vals.get('hop.product', 'NULL')}, {lit(ctx.product)})"
    col["source.file"] = lit(ctx.file)
    col["source.line"] = "n"
    col["source.record"] = "1"  # the fast path takes single-record lines only (the Python path numbers them 1)
    col["source.format"] = lit(ctx.format)

    ts_parts = [vals[t] for t in ("timestamp", "in.timestamp") if t in vals]
    col["timestamp"] = f"coalesce({', '.join(ts_parts)})" if ts_parts else "NULL"

    # trace: a plain valid traceparent, else a plain hex dialect id; everything else goes to Python
    tp = vals.get("in.traceparent")
    tid = vals.get("in.trace_id")
    key = consts.get("in.trace_id_key")
    dialect_source = DIALECT_SOURCES.get(str(key or "").lower(), "mdc")
    if key in ("otel", "ecs", "mdc", "gcp", "b3"):
        dialect_source = str(key)
    tp_ok = "false"
    if tp:
        tpt = layers.add(4, f"trim({tp})")
        tp_ok = layers.add(5, f"coalesce(regexp_full_match({tpt}, '00-[0-9a-f]{{32}}-[0-9a-f]{{16}}-[0-9a-f]{{2}}') "
                              f"AND NOT starts_with({tpt}, '00-00000000000000000000000000000000-') "
                              f"AND substr({tpt}, 37, 16) <> '0000000000000000', false)")
        unsure.append(f"({tp} IS NOT NULL AND NOT {tp_ok})")
    tid_ok = "false"
    if tid:
        tidt = layers.add(4, f"trim({tid})")
        tid_ph = layers.add(4, _placeholder(tid))
        tid_ok = layers.add(5, f"coalesce(regexp_full_match({tidt}, '[0-9a-fA-F]{{32}}|[0-9a-fA-F]{{16}}') "
                               f"AND NOT {tid_ph}, false)")
        unsure.append(f"(NOT {tid_ph} AND NOT {tid_ok})")
    # X-Ray: the bare root (API Gateway's $context.xrayTraceId) or "Root=<root>" alone; Parent/Sampled to Python
    xr = vals.get("in.x-amzn-trace-id")
    xray_ok, xray_val = "false", "NULL"
    if xr:
        xrt = layers.add(4, f"CASE WHEN starts_with(trim({xr}), 'Root=') THEN substr(trim({xr}), 6) ELSE trim({xr}) END")
        xray_val = layers.add(5, f"lower(substr({xrt}, 3, 8) || substr({xrt}, 12, 24))")
        xray_ok = layers.add(6, f"coalesce(regexp_full_match({xrt}, '1-[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{24}}') "
                                f"AND {xray_val} <> '00000000000000000000000000000000', false)")
        unsure.append(f"(NOT {_placeholder(xr)} AND NOT {xray_ok})")
    tid_val = f"lpad(lower(trim({tid})), 32, '0')" if tid else "NULL"
    tpv = layers.add(4, f"trim({tp})") if tp else "NULL"
    col["trace.id"] = (f"CASE WHEN {tp_ok} THEN substr({tpv}, 4, 32) WHEN {xray_ok} THEN {xray_val} "
                       f"WHEN {tid_ok} THEN {tid_val} END")
    src_sql = lit(dialect_source)
    if trace_labels:  # the label of the last present trace source decides its dialect
        whens = " ".join(f"WHEN {v} IS NOT NULL THEN {lit(_dialect(label))}" for v, label in reversed(trace_labels))
        src_sql = f"CASE {whens} ELSE {lit(_dialect(key))} END"
    col["trace.source"] = (f"CASE WHEN {tp_ok} THEN 'w3c' WHEN {xray_ok} THEN 'xray' WHEN {tid_ok} THEN {src_sql} "
                           "ELSE 'absent' END")
    col["trace.parent_id"] = f"CASE WHEN {tp_ok} THEN substr({tpv}, 37, 16) END"
    if "trace.parent_id" in vals:
        col["trace.parent_id"] = f"coalesce({_span(vals['trace.parent_id'])}, {col['trace.parent_id']})"
    col["trace.flags"] = f"coalesce({vals.get('trace.flags', 'NULL')}, CASE WHEN {tp_ok} THEN substr({tpv}, 54, 2) END)"
    span_parts = [_span(vals[t]) for t in ("span.id", "in.span_id") if t in vals]
    col["span.id"] = f"coalesce({', '.join(span_parts)})" if span_parts else "NULL"

    rid, rsrc = vals.get("http.request.id"), vals.get("http.request.id_source")
    irid = vals.get("in.request_id")
    isrc_sql = lit(consts.get("in.request_id_source"))
    if "in.request_id" in labels:
        isrc_sql = f"coalesce({labels['in.request_id']}, {isrc_sql})"
    if irid:
        iph = layers.add(4, _placeholder(irid))
        col["http.request.id"] = (f"CASE WHEN {rid or 'NULL'} IS NOT NULL THEN {rid or 'NULL'} "
                                  f"WHEN NOT {iph} THEN trim({irid}) END")
        col["http.request.id_source"] = (f"CASE WHEN {rid or 'NULL'} IS NOT NULL THEN {rsrc or 'NULL'} "
                                         f"WHEN NOT {iph} THEN coalesce({rsrc or 'NULL'}, "
                                         f"{isrc_sql}, 'unknown') ELSE {rsrc or 'NULL'} END")
    if (erid := vals.get("in.edge_request_id")) is not None:
        col["edge.request_id"] = (f"coalesce({vals.get('edge.request_id', 'NULL')}, "
                                  f"CASE WHEN NOT {_placeholder(erid)} THEN trim({erid}) END)")

    # url: a query needs a keyed fingerprint (Python)
    path = vals.get("url.path")
    url = vals.get("in.url")
    if path:
        unsure.append(f"coalesce(contains({path}, '?'), false)")
    if url:
        absolute = f"regexp_full_match({url}, '[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*(/[^?#]*)?')"
        unsure.append(f"({_present(url)} AND (NOT (starts_with({url}, '/') OR {absolute}) OR contains({url}, '?') "
                      f"OR contains({url}, '#')))")
        upath = (f"CASE WHEN starts_with({url}, '/') THEN {url} ELSE coalesce(nullif(regexp_extract({url}, "
                 f"'^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*(/[^?#]*)?', 1), ''), '/') END")
        col["url.path"] = f"coalesce({path or 'NULL'}, CASE WHEN {_present(url)} THEN {upath} END)"

    if (us := vals.get("in.upstream_status")) is not None:
        col["upstream.status_codes"] = f"coalesce({vals.get('upstream.status_codes', 'NULL')}, " \
                                       f"CASE WHEN {_present(us)} THEN trim({us}) END)"
    if (rcd := vals.get("in.envoy_rcd")) is not None:
        unsure.append(f"({rcd} IS NOT NULL AND NOT regexp_full_match({rcd}, '[\\x20-\\x7e]*'))")
        norm = layers.add(4, f"regexp_replace(trim({rcd}), ' +', '_', 'g')")
        col["failure.reason"] = (f"coalesce({vals.get('failure.reason', 'NULL')}, CASE WHEN {_present(rcd)} "
                                 f"AND {norm} <> 'via_upstream' THEN {norm} END)")
        col["failure.origin"] = (f"coalesce({vals.get('failure.origin', 'NULL')}, CASE WHEN {_present(rcd)} THEN "
                                 f"CASE WHEN {norm} = 'via_upstream' THEN 'upstream' ELSE 'self' END END)")
    if (cv := vals.get("in.cert_verify")) is not None:
        up = layers.add(4, f"upper(trim({cv}))")
        known_results = ('SUCCESS', 'OK', '0', 'NONE', 'ABSENT', 'UNTRUSTED', 'EXPIRED', 'NOTYETVALID', 'UNKNOWN')
        unsure.append(f"({_present(cv)} AND NOT {_one_of(up, known_results)})")
        col["tls.client.verify_result"] = (
            f"coalesce({vals.get('tls.client.verify_result', 'NULL')}, CASE WHEN {_one_of(up, ('SUCCESS', 'OK', '0'))} "
            f"THEN 'SUCCESS' WHEN {up} = 'NONE' THEN 'NONE' WHEN {up} = 'ABSENT' THEN 'absent' "
            f"WHEN {_one_of(up, ('UNTRUSTED', 'EXPIRED', 'NOTYETVALID', 'UNKNOWN'))} THEN lower(trim({cv})) END)")

    if vector.kind == "json":
        col["raw.unmapped"] = "l"
        col["schema.source_fingerprint"] = "_fp" if fingerprint_sql else "NULL"
    else:
        # raw as Python writes it: every group as logged, minus the optional ones that did not take part
        took_part = {g: layers.add(2, f"r.{q(marker)} <> ''") for g, marker in vector.optional_groups}
        pieces = []
        for i, g in enumerate(vector.raw_groups):
            piece = lit(("," if i else "") + json.dumps(g, ensure_ascii=False) + ":") + f" || to_json(r.{q(g)})"
            pieces.append(f"CASE WHEN {took_part[g]} THEN {piece} ELSE '' END" if g in took_part else piece)
        col["raw.unmapped"] = "concat('{', " + ", ".join(pieces) + ", '}')"
        # the key set (and so the fingerprint) depends on which optional groups took part
        optional = list(took_part)
        fps = []
        for mask in range(2 ** len(optional)):
            gone = {g for bit, g in enumerate(optional) if not mask >> bit & 1}
            fps.append(source_fingerprint([g for g in vector.raw_groups if g not in gone]))
        index = " + ".join(f"(CASE WHEN {took_part[g]} THEN {2 ** bit} ELSE 0 END)" for bit, g in enumerate(optional))
        col["schema.source_fingerprint"] = (
            f"CASE {index} " + " ".join(f"WHEN {i} THEN {lit(f)}" for i, f in enumerate(fps)) + " END"
            if optional else lit(fps[0]))
    slow_cond = " OR ".join(f"coalesce({u}, false)" for u in unsure if u != "false") or "false"
    finals = ", ".join(f"{expr} AS {q(name)}" for name, expr in col.items())
    body = layers.sql(f"SELECT n, l, secretish, {extract}{fp_col} FROM {base}")
    lacking = " AND ".join(f"{src(k)} IS NULL" for k in required)
    reject = f"WHEN {lacking} THEN 'reject' " if lacking else ""
    return (f"SELECT n, CASE {reject}WHEN secretish OR {slow_cond} THEN 'slow' ELSE 'fast' END AS route, "
            f"{finals} FROM ({body})", list(col))


# a blank line starts with whitespace (or is empty): the regex runs only on those
_BLANK = f"(l = '' OR (ord(l) NOT BETWEEN 33 AND 126 AND regexp_full_match(l, '{_PY_BLANK}')))"
_LINES = "(SELECT n, line AS l, secretish FROM _ft_lines)"
_BATCH_ROWS = 16_384
_LACKS_KEYS = "json object lacks the format's keys"
_MAX_GROUPS = 16  # distinct relevant key sets compiled separately; the rest share the full vector


class _LineText:
    """The text of lines by number, as the SQL's ``l`` (trailing EOL characters removed): the few rows SQL does
    not settle are read back from the Arrow table rather than carried through the query."""

    def __init__(self, lines: pa.Table) -> None:
        self.first = int(lines.column("n")[0].as_py()) if lines.num_rows else 1
        self.column = lines.column("line")

    def __call__(self, numbers: list[int]) -> list[str]:
        if not numbers:
            return []
        taken = self.column.take(pa.array(np.asarray(numbers, dtype=np.int64) - self.first))
        return [str(t).rstrip("\r\n") for t in taken.to_pylist()]


def run(con: duckdb.DuckDBPyConnection, lines: pa.Table, vector: Vector, ctx: HopContext) -> FastResult:
    """Insert the settled rows into ``hops``; return rejects and the rows Python must parse.

    The SQL runs on ``con`` itself, inside the caller's transaction. A DuckDB error raises :class:`FastPathError`
    and leaves that transaction aborted: the caller rolls back and parses the file in Python (``ingest`` does)."""
    if any(k.startswith("in.") and k not in _SQL_HINTS for k in vector.constants):
        return FastResult(0, [], [(int(n), str(ln)) for n, ln in zip(lines.column("n").to_pylist(),
                                                                      lines.column("line").to_pylist(), strict=True)])
    text = _LineText(lines)
    # the line without its EOL, as Python's rstrip("\r\n") (an offsets-only Arrow kernel: slicing in SQL costs more)
    trimmed = pc.ascii_rtrim(lines.column("line"), characters="\r\n")
    flagged = pa.table({"n": lines.column("n"), "line": trimmed, "secretish": _row_flags(lines, vector)})
    tables: list[str] = []
    registered = False
    try:
        con.execute("SET TimeZone='UTC'")
        # the order of the fast path's rows (its temp tables, its inserts into hops) is part of no contract:
        # without it every DuckDB thread writes its own rows (15% on 300k nginx or JSON lines)
        con.execute("SET preserve_insertion_order = false")
        # several record batches: DuckDB scans an Arrow table in parallel by batch (a temp table of fewer than
        # 122,880 rows is one row group, scanned by one thread)
        con.register("_ft_lines", pa.Table.from_batches(flagged.to_batches(max_chunksize=_BATCH_ROWS)))
        registered = True
        rejects: list[tuple[int, str]] = []
        unsettled: list[int] = []
        if vector.kind == "json":
            # one pass parses every line for its key set; the key-set hash then rides along as an Arrow column,
            # so the group queries below filter on it without parsing the line again
            keyed = con.sql(f"""SELECT n, CASE WHEN k IS NOT NULL THEN hash(k) END AS _ksh,
                CASE WHEN k IS NOT NULL THEN NULL WHEN {_BLANK} THEN 'blank' ELSE 'python' END AS bad FROM (
                SELECT n, l, CASE WHEN l[1] = '{{' OR ltrim(l)[1] = '{{' THEN try(json_keys(l)) END AS k
                FROM {_LINES})""").to_arrow_table()
            if not keyed.column("n").equals(flagged.column("n")):  # the scan kept the line order; if not, sort
                keyed = keyed.sort_by("n")
            con.unregister("_ft_lines")
            registered = False
            flagged = flagged.append_column("_ksh", keyed.column("_ksh"))
            con.register("_ft_lines", pa.Table.from_batches(flagged.to_batches(max_chunksize=_BATCH_ROWS)))
            registered = True
            selects = _json_group_selects(con, vector, ctx, text, rejects, unsettled)
            # anything but a plain object goes to Python, whose reason is the reference
            bad = keyed.filter(pc.is_valid(keyed.column("bad")))
            for n, b in zip(bad.column("n").to_pylist(), bad.column("bad").to_pylist(), strict=True):
                if b == "blank":
                    rejects.append((int(n), "blank"))
                else:
                    unsettled.append(int(n))
        else:
            selects = [_group_select(vector, ctx, f"{_LINES} WHERE NOT {_BLANK}", None)]
            rejects.extend((int(n), "blank") for (n,) in
                           con.execute(f"SELECT n FROM {_LINES} WHERE {_BLANK}").fetchall())
        fast = 0
        for i, (select, cols) in enumerate(selects):
            name = f"_ft_c{i}"
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {select}")
            tables.append(name)
            names = ", ".join(q(c) for c in cols)
            inserted = con.execute(f"INSERT INTO hops ({names}) SELECT {names} FROM {name} WHERE route = 'fast'")
            fast += int((inserted.fetchone() or (0,))[0])
            for n, route in con.execute(f"SELECT n, route FROM {name} WHERE route <> 'fast'").fetchall():
                if route == "slow":
                    unsettled.append(int(n))
                else:
                    rejects.append((int(n), _LACKS_KEYS))
        for table in tables:
            con.execute(f"DROP TABLE {table}")
    except duckdb.Error as exc:
        raise FastPathError(str(exc).splitlines()[0]) from exc
    finally:
        if registered:
            try:
                con.unregister("_ft_lines")
            except duckdb.Error:  # an aborted transaction: the caller rolls back, which drops it
                pass
        try:
            restore_row_order(con)
        except duckdb.Error:  # an aborted transaction: the caller restores it after its rollback
            pass
    rejects.sort()
    unsettled.sort()
    rejected = [n for n, r in rejects if r != "blank"]
    return FastResult(fast, rejects, list(zip(unsettled, text(unsettled), strict=True)),
                      list(zip(rejected, text(rejected), strict=True)))


def restore_row_order(con: duckdb.DuckDBPyConnection) -> None:
    """DuckDB keeps insertion order again, as the analysis's ordered work tables need."""
    con.execute("SET preserve_insertion_order = true")


def _json_group_selects(con: duckdb.DuckDBPyConnection, vector: Vector, ctx: HopContext, text: _LineText,
                        rejects: list[tuple[int, str]], unsettled: list[int]) -> list[tuple[str, list[str]]]:
    """One SELECT per distinct set of the vector's top-level keys present (most files have one or two): each
    extracts only the paths its rows can have. Key sets without a required key are rejected here; key lists
    with a duplicate go to Python (DuckDB reads the first of duplicate keys, Python the last)."""
    heads = {(f.source if isinstance(f.source, str) else f.source[0]) for f in vector.fields}
    heads |= {(s if isinstance(s, str) else s[0]) for s in vector.slow_if}
    heads |= {key for key, _ in vector.json_objects}
    firsts = con.execute("SELECT _ksh, min(n) FROM _ft_lines WHERE _ksh IS NOT NULL GROUP BY _ksh").fetchall()
    keysets: dict[int, list[str]] = {}
    if firsts:  # the key list of one line per key set, parsed by DuckDB as the hash was
        found = con.execute("SELECT json_keys(unnest(?))", [text([int(n) for _, n in firsts])]).fetchall()
        keysets = {int(h): [str(k) for k in row[0]] for (h, _), row in zip(firsts, found, strict=True)}
    groups: dict[frozenset[str], list[int]] = {}
    lacking: list[int] = []
    duplicated = [h for h, keys in keysets.items() if len(set(keys)) != len(keys)]
    for h in duplicated:
        del keysets[h]
    if duplicated:
        rows = con.execute(f"SELECT n FROM _ft_lines WHERE _ksh IN ({', '.join(map(str, duplicated))})").fetchall()
        unsettled.extend(int(n) for (n,) in rows)
    for h, keys in keysets.items():
        if vector.require_any and not any(k in keys for k in vector.require_any):
            lacking.append(h)
            continue
        groups.setdefault(frozenset(k for k in keys if k in heads), []).append(h)
    ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))
    gid: dict[int, int] = {}
    for i, (_, hs) in enumerate(ordered):
        for h in hs:
            gid[h] = min(i, _MAX_GROUPS)
    for h in lacking:
        gid[h] = -1
    if lacking:
        rows = con.execute(f"SELECT n FROM _ft_lines WHERE _ksh IN ({', '.join(str(h) for h in lacking)})").fetchall()
        rejects.extend((int(n), _LACKS_KEYS) for (n,) in rows)
    selects = []
    for i, (present, _) in enumerate(ordered[:_MAX_GROUPS + 1]):
        if i == _MAX_GROUPS:
            reduced = vector
        else:
            def keep(s: tuple[str, ...] | str) -> bool:
                return (s if isinstance(s, str) else s[0]) in present  # noqa: B023

            reduced = replace(vector, fields=tuple(f for f in vector.fields if keep(f.source)),
                              slow_if=tuple(s for s in vector.slow_if if keep(s)),
                              json_objects=tuple(o for o in vector.json_objects if o[0] in present))
        hashes = [h for h, g in gid.items() if g == min(i, _MAX_GROUPS)]
        if len(keysets) == 1 and not lacking and not duplicated:  # one key set in the file: every object is here
            fp = lit(source_fingerprint(keysets[hashes[0]]))
            base = "(SELECT n, line AS l, secretish FROM _ft_lines WHERE _ksh IS NOT NULL)"
        else:
            fp = ("CASE _ksh " + " ".join(f"WHEN {h} THEN {lit(source_fingerprint(keysets[h]))}" for h in hashes)
                  + " END")
            base = (f"(SELECT n, line AS l, secretish, _ksh FROM _ft_lines "
                    f"WHERE _ksh IN ({', '.join(str(h) for h in hashes)}))")
        selects.append(_group_select(reduced, ctx, base, fp))
    return selects


__all__ = ["FastPathError", "FastResult", "json_path", "lines_table", "run"]
