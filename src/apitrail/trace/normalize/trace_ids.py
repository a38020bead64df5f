"""Trace-id dialects normalised into the W3C form (32 lower hex trace id, 16 lower hex span id).

W3C ``traceparent`` is validated per the spec (version ``ff`` forbidden, lower-case hex only, all-zero ids
forbidden); an invalid header yields ``invalid_reason`` and no id. B3 (single and multi header, 64-bit ids
left-padded), X-Ray ``Root=1-<8 hex>-<24 hex>``, GCP ``X-Cloud-Trace-Context`` and ``projects/P/traces/T``, and
the raw ids of backend dialects are accepted. Null and placeholder ids (``-``, all zeros, OTel Python's ``"0"``)
mean "absent".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEX_LC = re.compile(r"[0-9a-f]+")
_HEX = re.compile(r"[0-9a-fA-F]+")
_TP_00 = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_TP_ANY = re.compile(r"([0-9a-fA-F]{2})-([0-9a-fA-F]{32})-([0-9a-fA-F]{16})-([0-9a-fA-F]{2})(-.*)?")
_XRAY = re.compile(r"1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})")
_GCP_CTX = re.compile(r"([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?")
_GCP_RES = re.compile(r"projects/[^/]+/traces/([0-9a-fA-F]{32})")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str | None = None
    span_id: str | None = None
    parent_id: str | None = None
    flags: str | None = None
    source: str = "absent"
    invalid_reason: str | None = None


ABSENT = TraceContext()


def is_placeholder(value: str | None) -> bool:
    """``-``, empty, ``"0"``, ``null`` and all-zero ids carry no identity."""
    if value is None:
        return True
    v = value.strip().lower()
    return v in ("", "-", "0", "null", "none", "undefined") or set(v) <= {"0", "-"}


def parse_traceparent(value: str) -> TraceContext:
    """W3C Trace Context ``traceparent`` (Level 1/2). Invalid headers keep their reason and no ids."""
    v = value.strip()
    if v in ("", "-"):  # an all-zero header is present but invalid, so not a placeholder here
        return ABSENT
    m = _TP_ANY.fullmatch(v)
    if m is None:
        return TraceContext(source="w3c", invalid_reason="malformed")
    version, trace_id, parent, flags, rest = m.groups()
    if version.lower() == "ff":
        return TraceContext(source="w3c", invalid_reason="version_ff")
    if not (_HEX_LC.fullmatch(version) and _HEX_LC.fullmatch(trace_id) and _HEX_LC.fullmatch(parent)
            and _HEX_LC.fullmatch(flags)):
        return TraceContext(source="w3c", invalid_reason="uppercase_hex")
    if version == "00" and rest:
        return TraceContext(source="w3c", invalid_reason="trailing_data")
    if set(trace_id) == {"0"}:
        return TraceContext(source="w3c", invalid_reason="zero_trace_id")
    if set(parent) == {"0"}:
        return TraceContext(source="w3c", invalid_reason="zero_parent_id")
    return TraceContext(trace_id=trace_id, parent_id=parent, flags=flags, source="w3c")


def _pad_trace(value: str) -> str | None:
    """A 16 or 32 hex id -> 32 lower hex (64-bit ids left-padded); None otherwise."""
    v = value.strip()
    if not _HEX.fullmatch(v) or len(v) not in (16, 32):
        return None
    return v.lower().rjust(32, "0")


def _span(value: str | None) -> str | None:
    if value is None or is_placeholder(value):
        return None
    v = value.strip()
    if _HEX.fullmatch(v) and len(v) == 16:
        return v.lower()
    return None


def parse_b3_single(value: str) -> TraceContext:
    """``b3: {TraceId}-{SpanId}-{SamplingState}-{ParentSpanId}``; ``b3: 0`` / ``1`` / ``d`` carry no ids."""
    v = value.strip()
    if is_placeholder(v) or v in ("1", "d"):
        return ABSENT
    parts = v.split("-")
    if len(parts) < 2 or len(parts) > 4:
        return TraceContext(source="b3single", invalid_reason="malformed")
    trace_id = _pad_trace(parts[0])
    span = _span(parts[1])
    if trace_id is None or span is None:
        return TraceContext(source="b3single", invalid_reason="malformed")
    if set(trace_id) == {"0"}:
        return TraceContext(source="b3single", invalid_reason="zero_trace_id")
    sampled = parts[2] if len(parts) >= 3 else None
    parent = _span(parts[3]) if len(parts) == 4 else None
    flags = {"1": "01", "d": "01", "0": "00"}.get(sampled or "", None)
    return TraceContext(trace_id=trace_id, span_id=span, parent_id=parent, flags=flags, source="b3single")


def parse_b3_multi(trace_id: str | None, span_id: str | None = None, parent_id: str | None = None,
                   sampled: str | None = None) -> TraceContext:
    """``X-B3-TraceId`` (+ SpanId, ParentSpanId, Sampled)."""
    if trace_id is None or is_placeholder(trace_id):
        return ABSENT
    tid = _pad_trace(trace_id)
    if tid is None:
        return TraceContext(source="b3", invalid_reason="malformed")
    flags = {"1": "01", "true": "01", "0": "00", "false": "00"}.get((sampled or "").strip().lower())
    return TraceContext(trace_id=tid, span_id=_span(span_id), parent_id=_span(parent_id), flags=flags, source="b3")


def parse_xray(value: str) -> TraceContext:
    """``Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`` (or the bare root)."""
    v = value.strip()
    if is_placeholder(v):
        return ABSENT
    fields: dict[str, str] = {}
    for part in v.split(";"):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key.strip().lower()] = val.strip()
        elif key.startswith("1-"):
            fields["root"] = key
    root = fields.get("root")
    if root is None:
        return TraceContext(source="xray", invalid_reason="no_root")
    m = _XRAY.fullmatch(root)
    if m is None:
        return TraceContext(source="xray", invalid_reason="malformed")
    trace_id = (m.group(1) + m.group(2)).lower()
    if set(trace_id) == {"0"}:
        return TraceContext(source="xray", invalid_reason="zero_trace_id")
    flags = {"1": "01", "0": "00"}.get(fields.get("sampled", ""))
    return TraceContext(trace_id=trace_id, parent_id=_span(fields.get("parent")), flags=flags, source="xray")


def parse_gcp_context(value: str) -> TraceContext:
    """``X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1`` (span id in decimal)."""
    v = value.strip()
    if is_placeholder(v):
        return ABSENT
    m = _GCP_CTX.fullmatch(v)
    if m is None:
        return TraceContext(source="gcp", invalid_reason="malformed")
    trace_id = m.group(1).lower()
    if set(trace_id) == {"0"}:
        return TraceContext(source="gcp", invalid_reason="zero_trace_id")
    span = None
    if m.group(2):
        n = int(m.group(2))
        span = f"{n:016x}" if 0 < n < 2**64 else None
    flags = {"1": "01", "0": "00"}.get(m.group(3) or "")
    return TraceContext(trace_id=trace_id, parent_id=span, flags=flags, source="gcp")


def parse_gcp_trace(value: str) -> TraceContext:
    """``logging.googleapis.com/trace``: ``projects/P/traces/T`` (a bare 32-hex id is accepted too)."""
    v = value.strip()
    if is_placeholder(v):
        return ABSENT
    m = _GCP_RES.fullmatch(v)
    raw = m.group(1) if m else v
    tid = _pad_trace(raw) if len(raw) == 32 else None
    if tid is None:
        return TraceContext(source="gcp", invalid_reason="malformed")
    if set(tid) == {"0"}:
        return ABSENT
    return TraceContext(trace_id=tid, source="gcp")


# key a backend logged its trace id under -> trace.source
DIALECT_SOURCES = {
    "trace_id": "mdc",
    "traceid": "mdc",
    "x-b3-traceid": "b3",
    "trace.id": "ecs",
    "oteltraceid": "otel",
    "traceid_otlp": "otel",
    "logging.googleapis.com/trace": "gcp",
}


def parse_dialect_id(value: str, key: str | None = None) -> TraceContext:
    """A backend's raw trace id: 32 hex (any case), 16 hex (padded), W3C traceparent, X-Ray or GCP forms."""
    v = value.strip()
    source = DIALECT_SOURCES.get((key or "").lower(), "otel" if key == "otel" else "mdc")
    if key in ("otel", "ecs", "mdc", "gcp", "b3"):
        source = key
    if is_placeholder(v):
        return ABSENT
    if v.startswith("projects/"):
        return parse_gcp_trace(v)
    if v.startswith("Root=") or _XRAY.fullmatch(v):
        return parse_xray(v)
    if _TP_ANY.fullmatch(v):
        ctx = parse_traceparent(v)
        return ctx
    tid = _pad_trace(v)
    if tid is None:
        return TraceContext(source=source, invalid_reason="malformed")
    return TraceContext(trace_id=tid, source=source)


def normalize_span_id(value: str | None) -> str | None:
    """16 hex (any case) -> lower; placeholders and other shapes -> None."""
    return _span(value)


__all__ = [
    "ABSENT",
    "DIALECT_SOURCES",
    "TraceContext",
    "is_placeholder",
    "normalize_span_id",
    "parse_b3_multi",
    "parse_b3_single",
    "parse_dialect_id",
    "parse_gcp_context",
    "parse_gcp_trace",
    "parse_traceparent",
    "parse_xray",
]
