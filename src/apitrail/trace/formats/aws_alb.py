"""AWS Application Load Balancer access logs (also the shared tokenizer of the CLB and NLB formats).

One line per request, space-separated, strings in double quotes, ``-`` for an absent value, fields in the
documented order: ``type time elb client:port target:port request_processing_time target_processing_time
response_processing_time elb_status_code target_status_code received_bytes sent_bytes "request" "user_agent"
ssl_cipher ssl_protocol target_group_arn "trace_id" "domain_name" "chosen_cert_arn" matched_rule_priority
request_creation_time "actions_executed" "redirect_url" "error_reason" "target:port_list"
"target_status_code_list" "classification" "classification_reason" conn_trace_id``, then the fields of listener
rule transforms (``"transformed_host" "transformed_uri" "request_transform_status"``: the host and URI the target
received after a host-header or URL rewrite; kept in raw, ``url.path`` stays the client's). AWS says to ignore
unexpected trailing fields, so anything after them is kept in raw as ``trailing``; older lines with fewer fields
(from 16) are accepted too. Source: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-access-logs.html

Identity and failure fields:

* ``trace_id`` is the ``X-Amzn-Trace-Id`` value (``Root=1-<8 hex time>-<24 hex>``; ``Self=`` when the ALB
  generated it): the join key towards targets that log the header (the core turns ``Root`` into a W3C id);
* ``conn_trace_id`` (``TID_...``) joins the access log with the ALB *connection* log, where mTLS verification
  lives (``leaf_client_cert_subject``, ``tls_verify_status``); with mTLS passthrough the certificate reaches the
  target in ``X-Amzn-Mtls-Clientcert``;
* failure: ``elb_status_code`` vs ``target_status_code`` (``-`` = the target never answered), ``error_reason``
  (authenticate action: ``AuthInvalidCookie``, ``AuthInvalidIdToken``, ``AuthMissingCodeParam``,
  ``AuthTokenEpRequestFailed``...; Lambda targets: ``LambdaAccessDenied``, ``LambdaUnhandled``,
  ``LambdaInvalidResponse``...; AWS WAF calls: ``WAFConnectionError``, ``WAFConnectionTimeout``...; kept verbatim
  in ``failure.reason``), ``actions_executed`` (``waf``, ``authenticate``, ``forward``, ``fixed-response``,
  ``redirect``, ``waf-failed``...): ``waf`` as the *final* action means AWS WAF rejected the request (403 or the
  rule's custom response code) and is ``authz.decision = deny`` by engine ``waf``; ``classification`` /
  ``classification_reason`` (desync mitigation) stay in raw;
* time: ``request_creation_time`` is when the request arrived (used as the timestamp), ``time`` when the response
  was sent; the duration is the sum of the three processing times that are not ``-1``;
* secrets: the query string of ``request`` (to ``in.query``).

The ALB *connection* log (``timestamp client_ip client_port listener_port tls_protocol tls_cipher
tls_handshake_latency leaf_client_cert_subject leaf_client_cert_validity leaf_client_cert_serial_number
tls_verify_status conn_trace_id``) is another log: its lines are rejected here with a reason that says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from apitrail.trace.formats._base import FormatOptions, LogFormat, Reject
from apitrail.trace.formats._template_utils import (
    Applier,
    CompiledTemplate,
    Record,
    apply_request_line,
    host_of,
    put,
    put_host,
    put_status,
    strip_eol,
)

# a run of non-space characters in which quoted strings may contain spaces (unrolled: no per-character alternation)
_TOKEN = re.compile(r'(?=[^\s])[^\s"]*+(?:"[^"]*+"?[^\s"]*+)*+')


def tokens(line: str) -> list[str]:
    """Split on spaces outside double quotes; a token that is one quoted string loses its quotes."""
    out = []
    for t in _TOKEN.findall(line):
        if t[0] == '"' and t[-1] == '"' and t.count('"') == 2:
            t = t[1:-1]
        out.append(t)
    return out


def _upstream_status(rec: Record, value: str) -> None:
    rec["upstream.status_codes"] = value
    rec["in.upstream_status"] = value


def _upstream_list(rec: Record, value: str) -> None:
    if value != "-":
        rec["upstream.address"] = value.replace(" ", ", ")


def _server_if_absent(rec: Record, value: str) -> None:
    rec.setdefault("server.address", value)


ALB_FIELDS: tuple[tuple[str, Applier | None], ...] = (
    ("type", None),
    ("time", put("in.timestamp")),
    ("elb", put("hop.instance")),
    ("client:port", put_host("client.address")),
    ("target:port", put("upstream.address")),
    ("request_processing_time", None),
    ("target_processing_time", None),
    ("response_processing_time", None),
    ("elb_status_code", put_status),
    ("target_status_code", _upstream_status),
    ("received_bytes", None),
    ("sent_bytes", None),
    ("request", apply_request_line),
    ("user_agent", put("user_agent.original")),
    ("ssl_cipher", None),
    ("ssl_protocol", put("tls.protocol.version")),
    ("target_group_arn", None),
    ("trace_id", put("in.x-amzn-trace-id")),
    ("domain_name", _server_if_absent),
    ("chosen_cert_arn", None),
    ("matched_rule_priority", None),
    ("request_creation_time", put("in.timestamp")),
    ("actions_executed", None),
    ("redirect_url", None),
    ("error_reason", put("failure.reason")),
    ("target:port_list", _upstream_list),
    ("target_status_code_list", None),
    ("classification", None),
    ("classification_reason", None),
    ("conn_trace_id", None),
    ("transformed_host", None),
    ("transformed_uri", None),
    ("request_transform_status", None),
)


_QUOTED = r'("[^"\\]*+(?:\\.[^"\\]*+)*+"|-)'


class IndexedFields:
    """A space-separated log whose fields are known by position (ELB family), compiled to one regex: the first
    ``min_fields`` fields are required, later ones optional in order, anything after them lands in ``raw.trailing``
    (AWS adds fields at the end over time)."""

    def __init__(self, fields: Sequence[tuple[str, Applier | None]], min_fields: int, what: str,
                 finish: Callable[[Record], None] | None = None, quoted: frozenset[str] = frozenset()) -> None:
        self.what = what
        pats = [_QUOTED if name in quoted else r"(\S+)" for name, _ in fields]
        tail = r"(?: (.*))?"
        for pat in reversed(pats[min_fields:]):
            tail = f"(?: {pat}{tail})?"
        regex = re.compile(" ".join(pats[:min_fields]) + tail, re.DOTALL)
        names = tuple(n for n, _ in fields) + ("trailing",)
        appliers = tuple(a for _, a in fields) + (None,)
        quoted_groups = frozenset(i for i, (name, _) in enumerate(fields) if name in quoted)
        self.template = CompiledTemplate(regex, names, appliers, finish=finish, label=what, quoted=quoted_groups)

    def parse(self, line: str) -> Record | None:
        line = strip_eol(line)
        rec = self.template.parse(line)
        if rec is None:
            if not line.strip():
                return None
            raise Reject(f"line does not match the {self.what} access log format")
        return rec

    def valid(self, line: str) -> bool:
        try:
            return self.parse(line) is not None
        except Reject:
            return False


def _seconds_sum(raw: dict[str, str], keys: Sequence[str]) -> float | None:
    total, seen = 0.0, False
    for k in keys:
        v = raw.get(k)
        try:
            f = float(v) if v is not None else -1.0
        except ValueError:
            f = -1.0
        if f >= 0:
            total += f
            seen = True
    return total if seen else None


def _alb_finish(rec: Record) -> None:
    raw = rec["raw"]
    assert isinstance(raw, dict)
    if raw.get("type") not in _ALB_TYPES:
        raise Reject("first field is not an ALB listener type")
    if not _ISO_Z.fullmatch(raw.get("time", "")):
        raise Reject("time field is not an ISO 8601 UTC time")
    duration = _seconds_sum(raw, ("request_processing_time", "target_processing_time", "response_processing_time"))
    if duration is not None:
        rec["duration"] = duration
    actions = (raw.get("actions_executed") or "").split(",")
    # "waf" as the final action: AWS WAF rejected the request (403, or the rule's custom response code) and the
    # ALB never forwarded it; "waf-failed" only says the call to WAF failed (the ALB then fails open or closed)
    if actions[-1] == "waf":
        rec["authz.decision"] = "deny"
        rec["authz.engine"] = "waf"
        rec["failure.origin"] = "self"


_ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")
_ALB_TYPES = frozenset({"http", "https", "h2", "grpcs", "ws", "wss"})
ALB = IndexedFields(ALB_FIELDS, 16, "ALB", _alb_finish, frozenset({
    "request", "user_agent", "trace_id", "domain_name", "chosen_cert_arn", "actions_executed", "redirect_url",
    "error_reason", "target:port_list", "target_status_code_list", "classification", "classification_reason",
    "transformed_host", "transformed_uri", "request_transform_status"}))


# an ALB *connection* log line (timestamp client_ip client_port listener_port tls_protocol tls_cipher
# tls_handshake_latency leaf_client_cert_subject leaf_client_cert_validity leaf_client_cert_serial_number
# tls_verify_status conn_trace_id): another log, joined to this one by conn_trace_id
_CONNECTION_LOG = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z \S+ \d+ \d+ .* TID_\S+\s*")


def _parse(line: str) -> Record | None:
    try:
        return ALB.parse(line)
    except Reject:
        if _CONNECTION_LOG.fullmatch(line):
            raise Reject("an ALB connection log line, not an access log line") from None
        raise


def _make_parser(options: FormatOptions) -> Callable[[str], Record | None]:
    return _parse


def detect_with(fields: IndexedFields, first_lines: list[str], weight: float) -> float:
    body = [x for x in first_lines if x.strip()]
    if not body:
        return 0.0
    return weight * sum(1 for x in body if fields.valid(x)) / len(body)


def _detect(first_lines: list[str]) -> float:
    return detect_with(ALB, first_lines, 0.95)


FORMATS = (
    LogFormat(
        name="aws_alb",
        layer="edge_lb",
        product="aws-alb",
        kind="text",
        doc="AWS Application Load Balancer access logs (X-Amzn-Trace-Id, error_reason, actions_executed).",
        detect=_detect,
        make_parser=_make_parser,
    ),
)

__all__ = ["ALB", "ALB_FIELDS", "FORMATS", "IndexedFields", "detect_with", "host_of", "tokens"]
