"""AWS Classic Load Balancer access logs.

Space-separated, in the documented order: ``time elb client:port backend:port request_processing_time
backend_processing_time response_processing_time elb_status_code backend_status_code received_bytes sent_bytes
"request" "user_agent" ssl_cipher ssl_protocol``. TCP/SSL listeners log ``-`` for the HTTP fields and
``"- - - "`` as request. A backend of ``-`` means the request was never sent to an instance (no healthy
backend, or the client closed first); the ``-1`` processing times say the same. No trace or request id is logged:
classic load balancers are joined by time, client and path only (a heuristic join).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from apitrail.trace.formats._base import FormatOptions, LogFormat, Reject
from apitrail.trace.formats._template_utils import Applier, Record, apply_request_line, put, put_host, put_status
from apitrail.trace.formats.aws_alb import IndexedFields, _seconds_sum, detect_with


def _upstream_status(rec: Record, value: str) -> None:
    rec["upstream.status_codes"] = value
    rec["in.upstream_status"] = value


CLB_FIELDS: tuple[tuple[str, Applier | None], ...] = (
    ("time", put("in.timestamp")),
    ("elb", put("hop.instance")),
    ("client:port", put_host("client.address")),
    ("backend:port", put("upstream.address")),
    ("request_processing_time", None),
    ("backend_processing_time", None),
    ("response_processing_time", None),
    ("elb_status_code", put_status),
    ("backend_status_code", _upstream_status),
    ("received_bytes", None),
    ("sent_bytes", None),
    ("request", apply_request_line),
    ("user_agent", put("user_agent.original")),
    ("ssl_cipher", None),
    ("ssl_protocol", put("tls.protocol.version")),
)

_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")


def _finish(rec: Record) -> None:
    raw = rec["raw"]
    assert isinstance(raw, dict)
    if not _ISO.fullmatch(raw.get("time") or ""):
        raise Reject("first field is not an ISO 8601 UTC time")
    duration = _seconds_sum(raw, ("request_processing_time", "backend_processing_time", "response_processing_time"))
    if duration is not None:
        rec["duration"] = duration


CLB = IndexedFields(CLB_FIELDS, 11, "CLB", _finish, frozenset({"request", "user_agent"}))


def _make_parser(options: FormatOptions) -> Callable[[str], Record | None]:
    return CLB.parse


def _detect(first_lines: list[str]) -> float:
    return detect_with(CLB, first_lines, 0.9)


FORMATS = (
    LogFormat(
        name="aws_clb",
        layer="edge_lb",
        product="aws-clb",
        kind="text",
        doc="AWS Classic Load Balancer access logs.",
        detect=_detect,
        make_parser=_make_parser,
    ),
)

__all__ = ["CLB", "FORMATS"]
