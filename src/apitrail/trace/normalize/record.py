"""Intermediate record (see ``formats/_base.py``) -> final hop row with every schema field.

``to_hop`` is the single place where ``in.*`` hints become canonical fields, where raw values are scanned for
secrets, and where ``raw.unmapped`` and ``schema.source_fingerprint`` are built.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa  # noqa: E402,I001 - kept last: only used for type checks

from apitrail.trace.normalize.certs import (
    dn_to_rfc2253,
    normalize_serial,
    normalize_thumbprint,
    normalize_verify,
    parse_xfcc,
)
from apitrail.trace.normalize.timestamps import parse_timestamp
from apitrail.trace.normalize.tokens import claims_to_fields, parse_authorization, parse_jwt
from apitrail.trace.normalize.trace_ids import (
    ABSENT,
    TraceContext,
    is_placeholder,
    normalize_span_id,
    parse_b3_multi,
    parse_b3_single,
    parse_dialect_id,
    parse_gcp_context,
    parse_gcp_trace,
    parse_traceparent,
    parse_xray,
)
from apitrail.trace.schema import FIELD_BY_NAME, FIELD_NAMES
from apitrail.trace.secrets import Leak, find_leaks, fingerprint, prefilter_hit, redact_value

_STRING_FIELDS = frozenset(f.name for f in FIELD_BY_NAME.values() if f.type == pa.string())
_INT_FIELDS = frozenset(f.name for f in FIELD_BY_NAME.values() if f.type == pa.int64())
_FLOAT_FIELDS = frozenset(f.name for f in FIELD_BY_NAME.values() if f.type == pa.float64())
_TS_FIELDS = frozenset(f.name for f in FIELD_BY_NAME.values() if pa.types.is_timestamp(f.type))
_LIST_FIELDS = frozenset(f.name for f in FIELD_BY_NAME.values() if pa.types.is_list(f.type))
# fields whose values are fingerprints or fixed vocabularies: never rescanned
_NO_SCAN = frozenset({"token.fingerprint", "token.subject_fp", "token.id_fp", "url.query_fp", "enduser.id_fp",
                      "raw.unmapped", "schema.source_fingerprint", "trace.id", "span.id", "trace.parent_id",
                      # enumerations set by the parsers ("api_key", "header:authorization"), never logged values
                      "token.type", "token.location", "authn.mechanism", "credential.kind"})


@dataclass(frozen=True)
class HopContext:
    file: str
    format: str
    layer: str
    product: str
    layer_override: str | None = None
    product_override: str | None = None


def source_fingerprint(keys: list[str] | tuple[str, ...]) -> str:
    """Hash of the sorted source key set (drift detection); same formula in the SQL fast path."""
    return hashlib.sha256(",".join(sorted(keys)).encode()).hexdigest()[:16]


def rcd_normalize(value: str) -> str:
    """Envoy RESPONSE_CODE_DETAILS: older builds log spaces, current ones underscores; keep the underscore form."""
    return "_".join(value.strip().split())


# hints whose value is a credential whatever the source field is called
_SECRET_HINTS = {"in.authorization": "authorization", "in.jwt": "jwt", "in.api_key": "api_key",
                 "in.cookie": "cookie"}


def _known_secrets(rec: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for hint, kind in _SECRET_HINTS.items():
        val = rec.get(hint)
        if isinstance(val, str):
            v = val.strip()
            if len(v) >= 4 and v.upper() not in ("REDACTED", "[REDACTED]", "NONE", "NULL") and not v.startswith("fp:"):
                out.append((kind, v))
    return out


def _redact_known(text: str, known: list[tuple[str, str]]) -> str:
    for _, secret in known:
        if secret in text:
            text = text.replace(secret, fingerprint(secret))
    return text


def _redact_json(obj: Any, path: str, known: list[tuple[str, str]]) -> Any:
    if isinstance(obj, dict):
        return {k: _redact_json(v, f"{path}.{k}" if path else str(k), known) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact_json(v, f"{path}.{i}" if path else str(i), known) for i, v in enumerate(obj)]
    if isinstance(obj, str):
        new = _redact_known(obj, known) if known else obj
        return redact_value(path, new)[0]
    if isinstance(obj, (int, float)) and not isinstance(obj, bool) and find_leaks(path, str(obj)):
        return fingerprint(str(obj))
    return obj


def _coerce(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _INT_FIELDS:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value) if value.is_integer() else None
        text = str(value).strip()
        return int(text) if text.lstrip("-").isdigit() and len(text) < 19 else None
    if name in _FLOAT_FIELDS:
        if isinstance(value, bool):
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    if name in _TS_FIELDS:
        return parse_timestamp(value)
    if name in _LIST_FIELDS:
        if isinstance(value, (list, tuple)):
            out = [str(v) for v in value if v is not None]
        else:
            out = [str(value)]
        return out or None
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = str(value)
    return text if text != "" else None


def _trace(rec: dict[str, Any]) -> tuple[TraceContext, str | None]:
    """First valid trace context in order of trust; the first invalid reason is kept either way."""
    candidates: list[TraceContext] = []
    if (v := rec.get("in.traceparent")) is not None:
        candidates.append(parse_traceparent(str(v)))
    if (v := rec.get("in.b3")) is not None:
        candidates.append(parse_b3_single(str(v)))
    if (v := rec.get("in.x-b3-traceid")) is not None:
        candidates.append(parse_b3_multi(str(v), rec.get("in.x-b3-spanid"), rec.get("in.x-b3-parentspanid"),
                                         rec.get("in.x-b3-sampled")))
    if (v := rec.get("in.x-amzn-trace-id")) is not None:
        candidates.append(parse_xray(str(v)))
    if (v := rec.get("in.x-cloud-trace-context")) is not None:
        candidates.append(parse_gcp_context(str(v)))
    if (v := rec.get("in.gcp_trace")) is not None:
        candidates.append(parse_gcp_trace(str(v)))
    if (v := rec.get("in.trace_id")) is not None:
        candidates.append(parse_dialect_id(str(v), rec.get("in.trace_id_key")))
    invalid = next((c for c in candidates if c.invalid_reason), None)
    valid = next((c for c in candidates if c.trace_id), None)
    reason = f"{invalid.source}:{invalid.invalid_reason}" if invalid else None
    if valid is not None:
        return valid, reason
    if invalid is not None:
        return TraceContext(source=invalid.source, invalid_reason=invalid.invalid_reason), reason
    return ABSENT, None


def _split_url(url: str) -> tuple[str | None, str | None]:
    u = url.strip()
    if not u or u == "-":
        return None, None
    if "://" in u:
        parts = urlsplit(u)
        return parts.path or "/", parts.query or None
    path, _, query = u.partition("?")
    return path or None, query or None


def to_hop(rec: dict[str, Any], ctx: HopContext, line: int, record: int = 1) -> tuple[dict[str, Any], list[Leak]]:
    """Normalise one intermediate record (``record``: its 1-based index in its line). Returns the hop row (every
    schema field) and the leaks found in raw."""
    raw: dict[str, Any] = rec.get("raw") or {}
    known = _known_secrets(rec)
    leaks: list[Leak] = []
    # one prefilter pass over every key and value: most lines carry nothing secret-shaped
    parts = [f"{k}\n{v}" for k, v in raw.items()]
    parts.extend(f"{k}\n{v}" for k, v in rec.items() if isinstance(v, str) and k != "raw")
    secretish = bool(known) or prefilter_hit("\n".join(parts))
    clean_keys: set[Any] = set()  # raw fields the detector found nothing in: redaction would not change them
    for key, value in raw.items() if secretish else ():
        if value is None:
            continue
        text = value if isinstance(value, str) else str(value)
        found = find_leaks(str(key), text)
        if not found:
            clean_keys.add(key)
        for kind, secret in known:  # a credential hint seen under a field name the detector cannot know
            start = text.find(secret)
            if start >= 0 and not any(lk.start <= start < lk.end for lk in found):
                found.append(Leak(str(key), kind, start, start + len(secret)))
        leaks.extend(found)

    row: dict[str, Any] = dict.fromkeys(FIELD_NAMES)
    for key, value in rec.items():
        if key in FIELD_BY_NAME:
            row[key] = _coerce(key, value)

    row["hop.layer"] = ctx.layer_override or row["hop.layer"] or ctx.layer
    row["hop.product"] = ctx.product_override or row["hop.product"] or ctx.product
    row["source.file"] = ctx.file
    row["source.line"] = line
    row["source.record"] = record
    row["source.format"] = ctx.format

    if row["timestamp"] is None and rec.get("in.timestamp") is not None:
        row["timestamp"] = parse_timestamp(rec["in.timestamp"])

    # correlation
    tctx, reason = _trace(rec)
    if row["trace.id"] is not None:
        given = parse_dialect_id(str(row["trace.id"]), row["trace.source"])
        row["trace.id"] = given.trace_id
        row["trace.source"] = row["trace.source"] or (given.source if given.trace_id else "absent")
    else:
        row["trace.id"] = tctx.trace_id
        row["trace.source"] = tctx.source if (tctx.trace_id or tctx.invalid_reason) else "absent"
        row["trace.parent_id"] = row["trace.parent_id"] or tctx.parent_id
        row["trace.flags"] = row["trace.flags"] or tctx.flags
        if row["span.id"] is None:
            row["span.id"] = tctx.span_id
    row["trace.invalid_reason"] = row["trace.invalid_reason"] or reason
    if rec.get("in.span_id") is not None and row["span.id"] is None:
        row["span.id"] = normalize_span_id(str(rec["in.span_id"]))
    elif row["span.id"] is not None:
        row["span.id"] = normalize_span_id(str(row["span.id"]))
    if row["trace.parent_id"] is not None:
        row["trace.parent_id"] = normalize_span_id(str(row["trace.parent_id"]))

    rid = rec.get("in.request_id")
    if row["http.request.id"] is None and rid is not None and not is_placeholder(str(rid)):
        row["http.request.id"] = str(rid).strip()
        row["http.request.id_source"] = row["http.request.id_source"] or rec.get("in.request_id_source") or "unknown"
    erid = rec.get("in.edge_request_id")
    if row["edge.request_id"] is None and erid is not None and not is_placeholder(str(erid)):
        row["edge.request_id"] = str(erid).strip()

    # url
    url_query: str | None = None
    if rec.get("in.url") is not None:
        path, url_query = _split_url(str(rec["in.url"]))
        if row["url.path"] is None:
            row["url.path"] = path
    if rec.get("in.query") not in (None, "", "-"):
        url_query = str(rec["in.query"]).lstrip("?")
    if row["url.path"] is not None and "?" in row["url.path"]:  # never keep a query in the path
        row["url.path"], _, q = row["url.path"].partition("?")
        url_query = url_query or q or None
    if url_query and row["url.query_fp"] is None:
        row["url.query_fp"] = fingerprint(url_query)

    # TLS and workload
    if rec.get("in.cert_subject") is not None and row["tls.client.subject"] is None:
        row["tls.client.subject"] = dn_to_rfc2253(str(rec["in.cert_subject"]))
    elif row["tls.client.subject"] is not None:
        row["tls.client.subject"] = dn_to_rfc2253(row["tls.client.subject"])
    if rec.get("in.cert_issuer") is not None and row["tls.client.issuer"] is None:
        row["tls.client.issuer"] = dn_to_rfc2253(str(rec["in.cert_issuer"]))
    elif row["tls.client.issuer"] is not None:
        row["tls.client.issuer"] = dn_to_rfc2253(row["tls.client.issuer"])
    for hint in ("in.cert_fingerprint", "tls.client.hash.sha256", "tls.client.hash.sha1"):
        val = rec.get(hint)
        if val is None:
            continue
        algo = {"tls.client.hash.sha256": "sha256", "tls.client.hash.sha1": "sha1"}.get(hint)
        tp = normalize_thumbprint(str(val), algo)
        if hint != "in.cert_fingerprint":
            row[hint] = None
        if tp is not None:
            row[f"tls.client.hash.{tp.algorithm}"] = row[f"tls.client.hash.{tp.algorithm}"] or tp.hex_upper
    if rec.get("in.cert_serial") is not None and row["tls.client.serial"] is None:
        row["tls.client.serial"] = normalize_serial(str(rec["in.cert_serial"]))
    if rec.get("in.cert_verify") is not None and row["tls.client.verify_result"] is None:
        row["tls.client.verify_result"] = normalize_verify(str(rec["in.cert_verify"]))
    if rec.get("in.cert_not_after") is not None and row["tls.client.not_after"] is None:
        row["tls.client.not_after"] = parse_timestamp(rec["in.cert_not_after"])
    san = rec.get("in.peer_uri_san")
    if san not in (None, "", "-") and row["workload.id"] is None:
        row["workload.id"] = str(san).split(",")[0].strip()
        row["workload.id_source"] = row["workload.id_source"] or "peer_uri_san"
    if rec.get("in.xfcc") not in (None, "", "-"):
        elements = parse_xfcc(str(rec["in.xfcc"]))
        by = [e.by for e in elements if e.by]
        if by and row["tls.forwarded_by"] is None:
            row["tls.forwarded_by"] = by
        if elements:
            last = elements[-1]  # the element appended by the proxy right in front of this hop
            if last.uri and row["workload.id"] is None:
                row["workload.id"] = last.uri
                row["workload.id_source"] = "xfcc.uri"
            if last.hash and row["tls.client.hash.sha256"] is None:
                tp = normalize_thumbprint(last.hash)
                if tp is not None:
                    row[f"tls.client.hash.{tp.algorithm}"] = tp.hex_upper
            if last.subject and row["tls.client.subject"] is None:
                row["tls.client.subject"] = dn_to_rfc2253(last.subject)

    # tokens: the credential itself only ever as a keyed fingerprint
    token: dict[str, Any] = {}
    if rec.get("in.authorization") not in (None, ""):
        token = parse_authorization(str(rec["in.authorization"]))
    if not token and rec.get("in.jwt") not in (None, ""):
        token = parse_jwt(str(rec["in.jwt"]), str(rec.get("in.token_location") or "header"))
    if not token and rec.get("in.api_key") not in (None, "", "-"):
        key = str(rec["in.api_key"])
        if key.strip().upper() not in ("REDACTED", "[REDACTED]"):
            token = {"token.type": "api_key", "token.fingerprint": fingerprint(key.strip()),
                     "token.location": str(rec.get("in.token_location") or "header"), "authn.mechanism": "api_key"}
    if not token and url_query:
        for part in url_query.split("&"):
            k, _, v = part.partition("=")
            if k.lower() in ("access_token", "id_token") and v:
                token = parse_jwt(v, "query")
                break
            if k.lower() in ("apikey", "api_key", "api-key", "key", "subscription-key") and v:
                token = {"token.type": "api_key", "token.fingerprint": fingerprint(v), "token.location": "query",
                         "authn.mechanism": "api_key"}
                break
    if not token and rec.get("in.cookie") not in (None, "", "-"):
        for part in str(rec["in.cookie"]).split(";"):
            _, _, v = part.strip().partition("=")
            if v.startswith("eyJ"):
                token = parse_jwt(v, "cookie")
                break
    claims = rec.get("in.jwt_claims")
    if isinstance(claims, dict) and claims:
        for k, v in claims_to_fields(claims).items():
            token.setdefault(k, v)
        token.setdefault("token.type", "jwt")
    for key, value in token.items():
        if row.get(key) is None:
            row[key] = value

    # failure signals
    rcd = rec.get("in.envoy_rcd")
    if rcd not in (None, "", "-"):
        norm = rcd_normalize(str(rcd))
        if norm == "via_upstream":
            row["failure.origin"] = row["failure.origin"] or "upstream"
        else:
            row["failure.reason"] = row["failure.reason"] or norm
            row["failure.origin"] = row["failure.origin"] or "self"
    if rec.get("in.upstream_status") not in (None, "", "-") and row["upstream.status_codes"] is None:
        row["upstream.status_codes"] = str(rec["in.upstream_status"]).strip()

    # canonical string values must not carry secrets either (a JWT in a path, a key in a user agent)
    for name in _STRING_FIELDS if secretish else ():
        val = row[name]
        if isinstance(val, str) and name not in _NO_SCAN and prefilter_hit(val):
            row[name] = redact_value(name, val)[0]
    for name in _LIST_FIELDS if secretish else ():
        vals = row[name]
        if vals:
            row[name] = [redact_value(name, v)[0] if prefilter_hit(v) else v for v in vals]

    source_obj = rec.get("in.raw_json")
    if isinstance(source_obj, dict):
        red = _redact_json(source_obj, "", known) if secretish else source_obj
        row["raw.unmapped"] = json.dumps(red, separators=(",", ":"), ensure_ascii=False)
        row["schema.source_fingerprint"] = source_fingerprint(list(source_obj.keys()))
    else:
        if secretish:
            clean = {str(k): (v if isinstance(v, str) else str(v)) if not known and k in clean_keys
                     else redact_value(str(k), _redact_known(v if isinstance(v, str) else str(v), known))[0]
                     for k, v in raw.items() if v is not None}
        else:
            clean = {str(k): v if isinstance(v, str) else str(v) for k, v in raw.items() if v is not None}
        row["raw.unmapped"] = json.dumps(clean, separators=(",", ":"), ensure_ascii=False)
        row["schema.source_fingerprint"] = source_fingerprint(list(raw.keys()))
    return row, leaks


def is_datetime(value: Any) -> bool:
    return isinstance(value, datetime)


__all__ = ["HopContext", "rcd_normalize", "source_fingerprint", "to_hop"]
