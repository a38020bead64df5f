"""AWS Network Load Balancer access logs (TLS listeners only; NLB logs nothing for plain TCP/UDP).

Space-separated, in the documented order (version 2.0): ``type version time elb listener client:port
destination:port connection_time tls_handshake_time received_bytes sent_bytes incoming_tls_alert
chosen_cert_arn chosen_cert_serial tls_cipher tls_protocol_version tls_named_group domain_name
alpn_fe_protocol alpn_be_protocol alpn_client_preference_list tls_connection_creation_time``.

One line per TLS *connection*, not per request: there is no method, path or status. What matters: the client
address, SNI (``domain_name``), TLS version, ``incoming_tls_alert`` (a TLS alert from the client, e.g. it did
not trust the certificate: kept in ``failure.reason``), ``tls_handshake_time`` ``-`` when the handshake did not
finish. Times are in milliseconds. ``tls_connection_creation_time`` is when the connection started.
"""

from __future__ import annotations

from collections.abc import Callable

from apitrail.trace.formats._base import FormatOptions, LogFormat, Reject
from apitrail.trace.formats._template_utils import Applier, Record, put, put_host, put_seconds
from apitrail.trace.formats.aws_alb import IndexedFields, detect_with

NLB_FIELDS: tuple[tuple[str, Applier | None], ...] = (
    ("type", None),
    ("version", None),
    ("time", put("in.timestamp")),
    ("elb", put("hop.instance")),
    ("listener", None),
    ("client:port", put_host("client.address")),
    ("destination:port", put("upstream.address")),
    ("connection_time", put_seconds(divisor=1000.0)),
    ("tls_handshake_time", None),
    ("received_bytes", None),
    ("sent_bytes", None),
    ("incoming_tls_alert", put("failure.reason")),
    ("chosen_cert_arn", None),
    ("chosen_cert_serial", None),
    ("tls_cipher", None),
    ("tls_protocol_version", put("tls.protocol.version")),
    ("tls_named_group", None),
    ("domain_name", put("server.address")),
    ("alpn_fe_protocol", None),
    ("alpn_be_protocol", None),
    ("alpn_client_preference_list", None),
    ("tls_connection_creation_time", put("in.timestamp")),
)


def _finish(rec: Record) -> None:
    raw = rec["raw"]
    assert isinstance(raw, dict)
    if raw.get("type") != "tls":
        raise Reject("first field is not the NLB log type tls")


NLB = IndexedFields(NLB_FIELDS, 16, "NLB", _finish)


def _make_parser(options: FormatOptions) -> Callable[[str], Record | None]:
    return NLB.parse


def _detect(first_lines: list[str]) -> float:
    return detect_with(NLB, first_lines, 0.95)


FORMATS = (
    LogFormat(
        name="aws_nlb",
        layer="edge_lb",
        product="aws-nlb",
        kind="text",
        doc="AWS Network Load Balancer TLS access logs (one line per TLS connection).",
        detect=_detect,
        make_parser=_make_parser,
    ),
)

__all__ = ["FORMATS", "NLB"]
