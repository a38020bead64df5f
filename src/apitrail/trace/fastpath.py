"""The vectorised fast path: compile a format's :class:`Vector` into one DuckDB query over a file's lines.

Rows the SQL cannot settle with certainty go back to the Python parser (the reference): a secret-shaped value
anywhere in the line (``secrets.PREFILTER``), a ``slow_if`` source, an ``in.*`` hint SQL does not normalise, a
value that does not fit its cast, a trace header that is not a plain valid W3C/hex id. Everything else is
normalised in SQL with the same rules as ``normalize/record.py``; a test compares both paths on every fixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from apitrail.trace.formats._base import Vector
from apitrail.trace.normalize.casts import sql_cast
from apitrail.trace.normalize.record import HopContext, source_fingerprint
from apitrail.trace.normalize.trace_ids import DIALECT_SOURCES
from apitrail.trace.schema import FIELD_BY_NAME, FIELDS
from apitrail.trace.secrets import PREFILTER, field_kind
from apitrail.trace.store import q, sql_type

# in.* hints the SQL normalises itself; any other hint present sends the row to Python
_SQL_HINTS = frozenset({"in.timestamp", "in.trace_id", "in.trace_id_key", "in.traceparent", "in.span_id",
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


def _placeholder(e: str) -> str:
    return f"({e} IS NULL OR lower(trim({e})) IN ('', '-', '0', 'null', 'none', 'undefined') " \
           f"OR regexp_full_match(trim({e}), '[0-]*'))"


def _present(e: str) -> str:
    return f"({e} IS NOT NULL AND {e} NOT IN ('', '-'))"


_ISO = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?"
_CLF = r"[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}"


def _ts(e: str) -> tuple[str, str]:
    """(value, unsure) for a timestamp source; the forms SQL does not know go to Python."""
    t = f"trim({e})"
    micros = (f"CASE WHEN length({t}) <= 11 THEN CAST({t} AS BIGINT) * 1000000 "
              f"WHEN length({t}) <= 14 THEN CAST({t} AS BIGINT) * 1000 "
              f"WHEN length({t}) <= 17 THEN CAST({t} AS BIGINT) ELSE CAST({t} AS BIGINT) // 1000 END")
    value = (f"CASE WHEN NOT {_present(e)} THEN NULL "
             f"WHEN regexp_full_match({t}, '[0-9]{{10,19}}') THEN CAST(make_timestamp({micros}) AS TIMESTAMPTZ) "
             f"WHEN regexp_full_match({t}, '{_ISO}') THEN CAST(regexp_replace({t}, '(\\.[0-9]{{6}})[0-9]+', '\\1') "
             f"AS TIMESTAMPTZ) "
             f"WHEN regexp_full_match({t}, '{_CLF}') THEN strptime({t}, '%d/%b/%Y:%H:%M:%S %z') END")
    unsure = (f"({_present(e)} AND NOT (regexp_full_match({t}, '[0-9]{{10,19}}') "
              f"OR regexp_full_match({t}, '{_ISO}') OR regexp_full_match({t}, '{_CLF}')))")
    return value, unsure


def _span(e: str) -> str:
    return f"CASE WHEN regexp_full_match(trim({e}), '[0-9a-fA-F]{{16}}') THEN lower(trim({e})) END"


@dataclass
class FastResult:
    fast_rows: int
    rejects: list[tuple[int, str]]
    slow: list[tuple[int, str]]
    rejected_lines: list[tuple[int, str]] = field(default_factory=list)  # for the leak scan


def lines_table(data: bytes) -> pa.Table:
    """Zero-copy split of a file's bytes into (n, line) with numpy; the last empty line after a final EOL dropped."""
    if not data:
        return pa.table({"n": pa.array([], pa.int64()), "line": pa.array([], pa.string())})
    if not data.endswith(b"\n"):
        data += b"\n"
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    offsets = np.empty(len(nl) + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = nl + 1
    # offsets include the '\n'; strip it (and a '\r') in SQL
    arr = pa.LargeStringArray.from_buffers(len(nl), pa.py_buffer(offsets), pa.py_buffer(data))
    return pa.table({"n": pa.array(np.arange(1, len(nl) + 1, dtype=np.int64)), "line": arr})


def run(con: duckdb.DuckDBPyConnection, lines: pa.Table, vector: Vector, ctx: HopContext) -> FastResult:
    """Insert the settled rows into ``hops``; return rejects and the rows Python must parse."""
    con.register("_ft_lines", lines)
    srcs: list[tuple[str, ...] | str] = []
    for f in vector.fields:
        if f.source not in srcs:
            srcs.append(f.source)
    for s in vector.slow_if:
        if s not in srcs:
            srcs.append(s)
    req_idx: list[int] = []
    for k in vector.require_any:
        if vector.kind == "json" and (k,) not in srcs:
            srcs.append((k,))
        if vector.kind == "json":
            req_idx.append(srcs.index((k,)) + 1)

    def src(s: tuple[str, ...] | str) -> str:
        if vector.kind == "json":
            return f"j[{srcs.index(s) + 1}]"
        name = s if isinstance(s, str) else s[0]
        return f"nullif(r.{q(name)}, '')"

    # every arrow line ends with "\n" (lines_table); slicing is ~5x cheaper than rtrim in DuckDB
    clean = "CASE WHEN suffix(line, chr(13) || chr(10)) THEN line[:-3] ELSE line[:-2] END"
    if vector.kind == "json":
        paths = "[" + ", ".join(lit(json_path(s)) for s in srcs) + "]"
        ok = "json_valid(l) AND ltrim(l)[1] = '{'"
        bad = (f"CASE WHEN regexp_full_match(l, '{_PY_BLANK}') THEN 'blank' WHEN NOT json_valid(l) THEN 'invalid json' "
               "WHEN ltrim(l)[1] <> '{' THEN 'json value is not an object' END")
        extract = f"json_extract_string(CASE WHEN {ok} THEN l ELSE '{{}}' END, {paths}) AS j"
        match = "true"
    else:
        assert vector.pattern is not None
        groups = [s if isinstance(s, str) else s[0] for s in srcs]
        names = "[" + ", ".join(lit(g) for g in groups) + "]"
        bad = f"CASE WHEN regexp_full_match(l, '{_PY_BLANK}') THEN 'blank' END"
        extract = f"regexp_extract(l, {lit(vector.pattern)}, {names}) AS r"
        match = f"regexp_full_match(l, {lit(vector.pattern)})"
    scanned = "l"
    for snippet in vector.prefilter_ignore:
        scanned = f"replace({scanned}, {lit(snippet)}, '')"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _ft_x AS
        SELECT n, l, {bad} AS bad, {extract}, {match} AS matched, regexp_matches({scanned}, {lit(PREFILTER)}) AS secretish
        FROM (SELECT n, {clean} AS l FROM _ft_lines)""")

    # target -> candidate source expressions (last non-null wins, as in parser_from_vector)
    vals: dict[str, str] = {}
    labels: dict[str, str] = {}
    unsure: list[str] = ["NOT matched"]
    if req_idx:
        unsure_req = " AND ".join(f"j[{i}] IS NULL" for i in req_idx)
        con.execute(f"UPDATE _ft_x SET bad = 'json object lacks the format''s keys' WHERE bad IS NULL AND {unsure_req}")
    for s in vector.slow_if:
        e = src(s)
        unsure.append(f"({e} IS NOT NULL AND {e} NOT IN ('', '-', '^', '{{}}', '[]'))")
    if vector.kind == "regex":  # a regex line has no key names for the prefilter: secret-named groups decide
        for s in srcs:
            if field_kind(s if isinstance(s, str) else s[0]) is not None:
                unsure.append(_present(src(s)))
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
            v, u = _ts(e)
            unsure.append(u)
        elif tgt.startswith("in.") or f.cast == "json":
            v = f"CASE WHEN {e} <> '' THEN {e} END" if f.cast == "json" else sql_cast(e, f.cast, f.mapping)[0]
            if f.cast != "json":
                unsure.append(sql_cast(e, f.cast, f.mapping)[1])
        else:
            v, u = sql_cast(e, f.cast, f.mapping)
            unsure.append(u)
            if spec is not None and spec.type == pa.string() and f.cast in ("int", "float", "dur_s", "dur_ms",
                                                                             "dur_us"):
                v = f"CAST({v} AS VARCHAR)"
                unsure.append(_present(e))  # Python prints numbers differently; let it decide
        if f.label is not None and tgt in ("in.request_id", "in.trace_id"):
            prev = labels.get(tgt, "NULL")
            labels[tgt] = f"CASE WHEN {v} IS NOT NULL THEN {lit(f.label)} ELSE {prev} END"
        vals[tgt] = f"coalesce({v}, {vals[tgt]})" if tgt in vals else v

    consts = dict(vector.constants)
    for k, v in consts.items():
        if k.startswith("in.") and k not in _SQL_HINTS:
            return _all_slow(con, lines)
        if k in FIELD_BY_NAME:
            vals[k] = lit(v)

    # materialise every extracted value once; the expressions below reference the columns
    colnames = {t: f"_v{i}" for i, t in enumerate(vals)}
    extra_cols = "".join(f", {expr} AS {colnames[t]}" for t, expr in vals.items())
    keys_col = ", CASE WHEN bad IS NULL THEN json_keys(l) END AS _ks" if vector.kind == "json" else ""
    keys_col += ", hash(_ks) AS _ksh" if vector.kind == "json" else ""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _ft_v AS SELECT *{extra_cols}{keys_col} FROM _ft_x")
    vals = {t: colnames[t] for t in vals}

    col: dict[str, str] = {}
    for spec in FIELDS:
        col[spec.name] = f"CAST({vals[spec.name]} AS {sql_type(spec.type)})" if spec.name in vals else "NULL"
    col["hop.layer"] = lit(ctx.layer_override) if ctx.layer_override else \
        f"coalesce({vals.get('hop.layer', 'NULL')}, {lit(ctx.layer)})"
    col["hop.product"] = lit(ctx.product_override) if ctx.product_override else \
        f"coalesce({vals.get('hop.product', 'NULL')}, {lit(ctx.product)})"
    col["source.file"] = lit(ctx.file)
    col["source.line"] = "n"
    col["source.format"] = lit(ctx.format)

    # timestamp: canonical first, then in.timestamp (both went through _ts)
    ts_parts = [vals[t] for t in ("timestamp", "in.timestamp") if t in vals]
    col["timestamp"] = f"coalesce({', '.join(ts_parts)})" if ts_parts else "NULL"

    # trace: a plain valid traceparent, else a plain hex dialect id; everything else goes to Python
    tp = vals.get("in.traceparent")
    tid = vals.get("in.trace_id")
    key = consts.get("in.trace_id_key")
    dialect_source = DIALECT_SOURCES.get(str(key or "").lower(), "mdc")
    if key in ("otel", "ecs", "mdc", "gcp", "b3"):
        dialect_source = str(key)
    tp_ok = (f"(regexp_full_match(trim({tp}), '00-[0-9a-f]{{32}}-[0-9a-f]{{16}}-[0-9a-f]{{2}}') "
             f"AND NOT regexp_full_match(trim({tp}), '00-0{{32}}-.*') "
             f"AND NOT regexp_full_match(trim({tp}), '00-[0-9a-f]{{32}}-0{{16}}-.*'))") if tp else "false"
    if tp:
        unsure.append(f"({tp} IS NOT NULL AND NOT {tp_ok})")
    tid_ok = f"regexp_full_match(trim({tid}), '[0-9a-fA-F]{{32}}|[0-9a-fA-F]{{16}}')" if tid else "false"
    if tid:
        unsure.append(f"(NOT {_placeholder(tid)} AND NOT {tid_ok})")
    tid_val = f"lpad(lower(trim({tid})), 32, '0')" if tid else "NULL"
    tp = tp or "NULL"
    tid = tid or None
    col["trace.id"] = (f"CASE WHEN {tp_ok} THEN substr(trim({tp}), 4, 32) "
                       f"WHEN {tid_ok} AND NOT {_placeholder(tid) if tid else 'true'} THEN {tid_val} END")
    src_sql = lit(dialect_source)
    if "in.trace_id" in labels:
        cases = " ".join(f"WHEN lower(_k) = {lit(k)} THEN {lit(v)}" for k, v in DIALECT_SOURCES.items())
        known = " ".join(f"WHEN _k = {lit(k)} THEN {lit(k)}" for k in ("otel", "ecs", "mdc", "gcp", "b3"))
        src_sql = (f"(SELECT CASE {known} {cases} ELSE 'mdc' END FROM (SELECT coalesce({labels['in.trace_id']}, "
                   f"{lit(key)}) AS _k))")
    col["trace.source"] = (f"CASE WHEN {tp_ok} THEN 'w3c' WHEN {tid_ok} AND NOT "
                           f"{_placeholder(tid) if tid else 'true'} THEN {src_sql} ELSE 'absent' END")
    col["trace.parent_id"] = f"CASE WHEN {tp_ok} THEN substr(trim({tp}), 37, 16) END"
    if "trace.parent_id" in vals:
        col["trace.parent_id"] = f"coalesce({_span(vals['trace.parent_id'])}, {col['trace.parent_id']})"
    col["trace.flags"] = f"coalesce({vals.get('trace.flags', 'NULL')}, CASE WHEN {tp_ok} THEN substr(trim({tp}), 54, 2) END)"
    span_parts = [_span(vals[t]) for t in ("span.id", "in.span_id") if t in vals]
    col["span.id"] = f"coalesce({', '.join(span_parts)})" if span_parts else "NULL"

    rid, rsrc = vals.get("http.request.id"), vals.get("http.request.id_source")
    irid = vals.get("in.request_id")
    isrc_sql = lit(consts.get("in.request_id_source"))
    if "in.request_id" in labels:
        isrc_sql = f"coalesce({labels['in.request_id']}, {isrc_sql})"
    if irid:
        col["http.request.id"] = (f"CASE WHEN {rid or 'NULL'} IS NOT NULL THEN {rid or 'NULL'} "
                                  f"WHEN NOT {_placeholder(irid)} THEN trim({irid}) END")
        col["http.request.id_source"] = (f"CASE WHEN {rid or 'NULL'} IS NOT NULL THEN {rsrc or 'NULL'} "
                                         f"WHEN NOT {_placeholder(irid)} THEN coalesce({rsrc or 'NULL'}, "
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
        norm = f"regexp_replace(trim({rcd}), ' +', '_', 'g')"
        col["failure.reason"] = (f"coalesce({vals.get('failure.reason', 'NULL')}, CASE WHEN {_present(rcd)} "
                                 f"AND {norm} <> 'via_upstream' THEN {norm} END)")
        col["failure.origin"] = (f"coalesce({vals.get('failure.origin', 'NULL')}, CASE WHEN {_present(rcd)} THEN "
                                 f"CASE WHEN {norm} = 'via_upstream' THEN 'upstream' ELSE 'self' END END)")
    if (cv := vals.get("in.cert_verify")) is not None:
        up = f"upper(trim({cv}))"
        unsure.append(f"({_present(cv)} AND {up} NOT IN ('SUCCESS', 'OK', '0', 'NONE', 'ABSENT', 'UNTRUSTED', "
                      f"'EXPIRED', 'NOTYETVALID', 'UNKNOWN'))")
        col["tls.client.verify_result"] = (
            f"coalesce({vals.get('tls.client.verify_result', 'NULL')}, CASE WHEN {up} IN ('SUCCESS', 'OK', '0') "
            f"THEN 'SUCCESS' WHEN {up} = 'NONE' THEN 'NONE' WHEN {up} = 'ABSENT' THEN 'absent' "
            f"WHEN {up} IN ('UNTRUSTED', 'EXPIRED', 'NOTYETVALID', 'UNKNOWN') THEN lower(trim({cv})) END)")

    if vector.kind == "json":
        col["raw.unmapped"] = "l"
        col["schema.source_fingerprint"] = "_fp.fp"
    else:
        groups = [s if isinstance(s, str) else s[0] for s in srcs]
        col["raw.unmapped"] = "to_json(r)"
        col["schema.source_fingerprint"] = lit(source_fingerprint(groups))

    slow_cond = " OR ".join(f"coalesce({u}, false)" for u in unsure if u != "false")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _ft_c AS
        SELECT *, CASE WHEN bad IS NOT NULL THEN 'reject' WHEN secretish OR {slow_cond} THEN 'slow'
        ELSE 'fast' END AS route FROM _ft_v""")
    join = ""
    if vector.kind == "json":
        # one fingerprint per distinct key set, joined back on the key set's hash (a list join is slow)
        keysets = con.execute("SELECT _ksh, any_value(_ks) FROM _ft_c WHERE route = 'fast' GROUP BY _ksh").fetchall()
        fp_tbl = pa.table({"ksh": pa.array([k[0] for k in keysets], pa.uint64()),
                           "fp": pa.array([source_fingerprint(k[1]) for k in keysets], pa.string())})
        con.register("_ft_fp", fp_tbl)
        join = "JOIN _ft_fp AS _fp ON _fp.ksh = _ft_c._ksh"
    select = ", ".join(f"{expr} AS {q(name)}" for name, expr in col.items())
    con.execute(f"INSERT INTO hops BY NAME SELECT {select} FROM _ft_c {join} WHERE route = 'fast'")
    fast = con.execute("SELECT count(*) FROM _ft_c WHERE route = 'fast'").fetchone()
    rejects = con.execute("SELECT n, bad, l FROM _ft_c WHERE route = 'reject' ORDER BY n").fetchall()
    slow = con.execute("SELECT n, l FROM _ft_c WHERE route = 'slow' ORDER BY n").fetchall()
    for t in ("_ft_x", "_ft_v", "_ft_c"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    con.unregister("_ft_lines")
    if vector.kind == "json":
        con.unregister("_ft_fp")
    return FastResult(int(fast[0]) if fast else 0, [(int(n), str(r)) for n, r, _ in rejects],
                      [(int(n), str(ln)) for n, ln in slow],
                      [(int(n), str(ln)) for n, r, ln in rejects if r != "blank"])


def _all_slow(con: duckdb.DuckDBPyConnection, lines: pa.Table) -> FastResult:
    rows = con.execute("SELECT n, line FROM _ft_lines ORDER BY n").fetchall()
    con.unregister("_ft_lines")
    return FastResult(0, [], [(int(n), str(ln)) for n, ln in rows])


__all__ = ["FastResult", "json_path", "lines_table", "run"]
