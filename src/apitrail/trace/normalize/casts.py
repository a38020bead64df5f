"""Value casts shared by the Python parsers and the DuckDB fast path (one table, two implementations).

Each cast has a Python side (``py_cast``) and an SQL side (``sql_cast``) that must agree; the SQL side also returns
an "unsure" condition: rows where the value is present but the SQL cannot settle it go to the Python parser.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import unquote, unquote_plus

from apitrail.trace.formats._template_utils import apply_request_line, apply_target, host_of

# values that mean "not logged" in access logs
NULL_TOKENS = ("", "-", "^")  # "^" is Akamai DataStream's null
_INT = re.compile(r"-?[0-9]{1,18}")
_W3C_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\t[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?")
_FLOAT = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,9})?")


OUTBOUND: tuple[str, ...] = ("outbound|", "outbound_")
INBOUND: tuple[str, ...] = ("inbound|", "inbound_")
"""Istio cluster-name prefixes that give the sidecar's direction: ``outbound|8080||svc`` (``%UPSTREAM_CLUSTER_RAW%``,
and ``%UPSTREAM_CLUSTER%`` before 1.22) and the stat-prefix spelling ``outbound_.8080_._.svc`` that
``%UPSTREAM_CLUSTER%`` logs from Istio 1.22."""


def _to_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, float):
        return repr(value)  # as DuckDB's json_extract_string prints a JSON double (0.0, 1.5)
    return str(value)


def py_cast(value: Any, cast: str, mapping: tuple[tuple[str, str], ...] = ()) -> Any:
    """Cast a source value; ``None`` for null tokens and for values that do not fit."""
    if value is None:
        return None
    if cast == "json":
        return _to_str(value)
    text = _to_str(value)
    if text is None or text in NULL_TOKENS:
        return None
    if cast == "str":
        return text
    if cast == "map":
        return dict(mapping).get(text)
    if cast == "urldecode":
        return unquote(text)
    if cast == "formdecode":
        return unquote_plus(text)
    if cast == "lower":
        return text.lower()
    if cast == "upper":
        return text.upper()
    if cast == "text":
        return text
    if cast == "digits":
        return int(text) if text.isdigit() else None
    if cast == "host":
        return host_of(text)
    if cast in ("seconds", "seconds_ms"):
        try:
            seconds = float(text)
        except ValueError:
            return None
        if seconds < 0:
            return None
        return seconds / 1000.0 if cast == "seconds_ms" else seconds
    if cast == "text_urldecode":
        return unquote(text) if "%" in text else text
    if cast == "w3c_datetime":  # CloudFront date<TAB>time
        return text.replace("\t", " ") if _W3C_DATETIME.fullmatch(text) else None
    if cast == "direction":
        return "outbound" if text.startswith(OUTBOUND) else "inbound" if text.startswith(INBOUND) else None
    if cast == "claim_text":  # one JWT claim logged bare (Envoy jwt_authn metadata); JSON-shaped: not here
        return None if text[:1] in '[{"' or text.isdigit() else text
    if cast == "claim_jwt":  # a logged claim makes the hop's token a JWT
        return "jwt"
    if cast in ("reqline_method", "reqline_path", "target_path"):
        rec: dict[str, object] = {}
        if cast == "target_path":
            apply_target(rec, text)
        else:
            apply_request_line(rec, text)
        return rec.get("http.request.method" if cast == "reqline_method" else "url.path")
    if cast == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return int(text) if _INT.fullmatch(text) else None
    if cast in ("float", "dur_s", "dur_ms", "dur_us"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            num = float(value)
        elif _FLOAT.fullmatch(text):
            num = float(text)
        else:
            return None
        if math.isnan(num) or math.isinf(num):
            return None
        if cast == "dur_ms":
            return num / 1000.0
        if cast == "dur_us":
            return num / 1_000_000.0
        return num
    raise ValueError(f"unknown cast {cast!r}")


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_cast(expr: str, cast: str, mapping: tuple[tuple[str, str], ...] = (),
             line: str | None = None) -> tuple[str, str]:
    """``(value_sql, unsure_sql)`` for a VARCHAR expression (NULL when missing). ``line`` is the JSON text the value
    came from: a number-shaped value found there in quotes is a string, printed the same by both sides."""
    present = f"({expr} IS NOT NULL AND {expr} NOT IN ('', '-', '^'))"
    # a JSON double printed by DuckDB and by Python's repr differ for large/small magnitudes: let Python decide
    # gated on the first character ('-', '.', a digit) and the number shape, then (JSON) on the value not being
    # quoted in the line: the search of the whole line runs only on the rare values shaped like such numbers
    # (CASE, not AND: DuckDB evaluates every operand of an AND in a projection; CASE evaluates a branch only
    # for the rows that reach it)
    shaped = (f"regexp_full_match({expr}, '-?([0-9]{{16,}}(\\.[0-9]*)?|0\\.0000[0-9]*|[0-9.]+[eE][-+]?[0-9]+)')")
    if line:
        shaped = f"CASE WHEN {shaped} THEN NOT contains({line}, '\"' || {expr} || '\"') ELSE false END"
    floaty = f"CASE WHEN ord({expr}) BETWEEN 45 AND 57 AND ord({expr}) <> 47 THEN {shaped} END"
    if cast == "json":
        return expr, "false"
    if cast == "map":
        whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in mapping)
        return (f"CASE {expr} {whens} END" if whens else "NULL"), floaty
    if cast == "formdecode":
        return (f"CASE WHEN {present} THEN url_decode(replace({expr}, '+', ' ')) END",
                f"({present} AND regexp_matches({expr}, '%([^0-9A-Fa-f]|.[^0-9A-Fa-f]|.?$)'))")
    if cast == "urldecode":
        # '+' and malformed escapes are left to Python (DuckDB and urllib may differ there)
        return (f"CASE WHEN {present} THEN url_decode({expr}) END",
                f"({present} AND (contains({expr}, '+') OR regexp_matches({expr}, '%([^0-9A-Fa-f]|.[^0-9A-Fa-f]|.?$)')))")
    if cast == "str":
        return f"CASE WHEN {present} THEN {expr} END", floaty
    if cast == "lower":
        return f"CASE WHEN {present} THEN lower({expr}) END", floaty
    if cast == "upper":
        return f"CASE WHEN {present} THEN upper({expr}) END", floaty
    if cast == "text":  # a text format's group: "" and "-" are already NULL
        return expr, "false"
    if cast == "digits":
        return (f"CASE WHEN regexp_full_match({expr}, '[0-9]{{1,18}}') THEN CAST({expr} AS BIGINT) END",
                f"coalesce(regexp_full_match({expr}, '[0-9]{{19,}}'), false)")
    if cast == "host":
        return (f"CASE WHEN starts_with({expr}, '[') THEN CASE WHEN strpos({expr}, ']') > 1 THEN "
                f"substr({expr}, 2, strpos({expr}, ']') - 2) ELSE {expr} END "
                f"WHEN length({expr}) - length(replace({expr}, ':', '')) = 1 THEN split_part({expr}, ':', 1) "
                f"ELSE {expr} END", "false")
    if cast in ("seconds", "seconds_ms"):  # a non-negative duration (HAProxy/ALB log -1: not measured)
        ok = f"regexp_full_match({expr}, '[0-9]{{1,15}}(\\.[0-9]{{1,9}})?')"
        div = " / 1000.0" if cast == "seconds_ms" else ""
        return f"CASE WHEN {ok} THEN CAST({expr} AS DOUBLE){div} END", f"({expr} IS NOT NULL AND NOT {ok})"
    if cast in ("reqline_method", "reqline_path", "target_path"):
        return _sql_request_part(expr, cast)
    if cast == "text_urldecode":  # decoded only when it has an escape; '+' and malformed escapes go to Python
        return (f"CASE WHEN contains({expr}, '%') THEN url_decode({expr}) ELSE {expr} END",
                f"(contains({expr}, '%') AND (contains({expr}, '+') "
                f"OR regexp_matches({expr}, '%([^0-9A-Fa-f]|.[^0-9A-Fa-f]|.?$)')))")
    if cast == "w3c_datetime":
        ok = f"regexp_full_match({expr}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}\t[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}(\\.[0-9]+)?')"
        return f"CASE WHEN {ok} THEN replace({expr}, chr(9), ' ') END", f"({expr} IS NOT NULL AND NOT {ok})"
    if cast == "claim_text":
        shaped = f"(ord({expr}) = 91 OR ord({expr}) = 123 OR ord({expr}) = 34 OR regexp_full_match({expr}, '[0-9]+'))"
        return f"CASE WHEN NOT {shaped} THEN {expr} END", f"coalesce({shaped}, false)"
    if cast == "claim_jwt":
        return f"CASE WHEN {expr} IS NOT NULL THEN 'jwt' END", "false"
    if cast == "direction":  # Istio's cluster name: outbound|8080||svc, inbound|8080||, outbound_.8080_._.svc
        def starts(prefixes: tuple[str, ...]) -> str:
            return " OR ".join(f"starts_with({expr}, {_lit(p)})" for p in prefixes)

        return (f"CASE WHEN {starts(OUTBOUND)} THEN 'outbound' WHEN {starts(INBOUND)} THEN 'inbound' END", "false")
    if cast == "int":
        ok = f"regexp_full_match({expr}, '-?[0-9]{{1,18}}')"
        return f"CASE WHEN {present} AND {ok} THEN CAST({expr} AS BIGINT) END", f"({present} AND NOT {ok})"
    if cast in ("float", "dur_s", "dur_ms", "dur_us"):
        ok = f"regexp_full_match({expr}, '-?[0-9]{{1,15}}(\\.[0-9]{{1,9}})?')"
        div = {"float": "", "dur_s": "", "dur_ms": " / 1000.0", "dur_us": " / 1000000.0"}[cast]
        return f"CASE WHEN {present} AND {ok} THEN CAST({expr} AS DOUBLE){div} END", f"({present} AND NOT {ok})"
    raise ValueError(f"unknown cast {cast!r}")


def _sql_request_part(expr: str, cast: str) -> tuple[str, str]:
    """Method or path of a request line (``GET /a HTTP/1.1``), or the path of a bare target, as
    ``apply_request_line`` / ``apply_target`` find them; a query, an absolute-form target or a target with spaces
    is left to Python."""
    if cast == "target_path":
        target, method_ok, spaced = expr, "true", "false"
    else:
        parts = f"string_split({expr}, ' ')"
        method_ok = f"(len({parts}) >= 2 AND regexp_full_match({parts}[1], '[A-Z]+'))"
        if cast == "reqline_method":
            return f"CASE WHEN {method_ok} THEN {parts}[1] END", "false"
        target, spaced = f"{parts}[2]", f"len({parts}) > 3"
    tricky = (f"(contains({target}, '?') OR (NOT starts_with({target}, '/') "
              f"AND contains(left({target}, 12), '://')))")
    value = f"CASE WHEN {method_ok} AND NOT {spaced} AND NOT {tricky} AND {target} <> '' THEN {target} END"
    return value, f"coalesce({method_ok} AND ({spaced} OR {tricky}), false)"


__all__ = ["NULL_TOKENS", "py_cast", "sql_cast"]
