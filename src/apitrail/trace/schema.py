"""The canonical hop record (a DESIGN.md contract).

One row per log record of one hop: a line holds one record, or several (an OTLP/JSON export, an Azure Event Hubs
``{"records": [...]}`` wrapper), numbered by ``source.record``. Field names follow OpenTelemetry where OTel has one, ECS where only ECS has
one, and the project's own namespace otherwise. ``docs/schema.md`` lists each field with its OTel, ECS and OCSF
equivalent. The DuckDB store uses these names verbatim as column names (quote them: ``"trace.id"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

LAYERS = ("cdn", "edge_lb", "proxy", "gateway", "mesh", "backend", "queue")
DIRECTIONS = ("inbound", "outbound", "produce", "consume")
FAILURE_CLASSES = (
    "none",
    "authn",
    "authz",
    "token_exchange",
    "routing",
    "dependency",
    "rate_limited",
    "client_abort",
    "unknown",
)
TRACE_SOURCES = ("w3c", "b3", "b3single", "xray", "gcp", "otel", "ecs", "mdc", "generated", "absent")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: pa.DataType
    otel: str = ""
    ecs: str = ""
    ocsf: str = ""
    doc: str = ""


_S = pa.string()
_I = pa.int64()
_F = pa.float64()
_TS = pa.timestamp("us", tz="UTC")
_LS = pa.list_(pa.string())

FIELDS: tuple[FieldSpec, ...] = (
    # hop
    FieldSpec("hop.layer", _S, "", "observer.type", "metadata.product.feature.name", "cdn|edge_lb|proxy|gateway|mesh|backend|queue"),
    FieldSpec("hop.product", _S, "", "observer.product", "metadata.product.name", "vendor product, e.g. envoy, kong"),
    FieldSpec("hop.instance", _S, "service.instance.id", "observer.name", "metadata.product.uid", "instance or host that wrote the line"),
    FieldSpec("hop.direction", _S, "", "network.direction", "", "inbound|outbound|produce|consume"),
    # source
    FieldSpec("source.file", _S, "log.file.path", "log.file.path", "metadata.log_name", "file the line came from"),
    FieldSpec("source.line", _I, "", "log.offset", "", "1-based line number in that file"),
    FieldSpec("source.record", _I, "", "", "", "1-based index of the record inside its line (1 when the line "
              "holds one record); (source.file, source.line, source.record) identifies a hop; no OTel, ECS or OCSF "
              "equivalent"),
    FieldSpec("source.format", _S, "", "event.dataset", "metadata.log_provider", "apitrail format name"),
    # request
    FieldSpec("timestamp", _TS, "Timestamp", "@timestamp", "time", "request start (or log time) in UTC"),
    FieldSpec("duration", _F, "", "event.duration", "duration", "seconds"),
    FieldSpec("http.request.method", _S, "http.request.method", "http.request.method", "http_request.http_method"),
    FieldSpec("url.path", _S, "url.path", "url.path", "http_request.url.path"),
    FieldSpec("url.query_fp", _S, "", "", "", "keyed fingerprint of the query string (never the query)"),
    FieldSpec("http.route", _S, "http.route", "", "api.operation"),
    FieldSpec("http.response.status_code", _I, "http.response.status_code", "http.response.status_code", "http_response.code"),
    FieldSpec("upstream.status_codes", _S, "", "", "", "upstream status chain as logged (retries), e.g. '502, 200'"),
    FieldSpec("upstream.address", _S, "", "", "", "upstream host:port chain as logged"),
    FieldSpec("client.address", _S, "client.address", "client.ip", "src_endpoint.ip"),
    FieldSpec("network.peer.address", _S, "network.peer.address", "source.ip", "src_endpoint.ip"),
    FieldSpec("http.request.header.x-forwarded-for", _S, "http.request.header.x-forwarded-for", "", "http_request.x_forwarded_for"),
    FieldSpec("server.address", _S, "server.address", "destination.domain", "dst_endpoint.hostname"),
    FieldSpec("user_agent.original", _S, "user_agent.original", "user_agent.original", "http_request.user_agent"),
    # correlation
    FieldSpec("trace.id", _S, "TraceId", "trace.id", "trace.uid", "32 lower hex"),
    FieldSpec("span.id", _S, "SpanId", "span.id", "span.uid", "16 lower hex"),
    FieldSpec("trace.parent_id", _S, "", "", "", "parent span id when logged"),
    FieldSpec("trace.flags", _S, "TraceFlags", "", ""),
    FieldSpec("trace.source", _S, "", "", "", "w3c|b3|b3single|xray|gcp|otel|ecs|mdc|absent"),
    FieldSpec("trace.invalid_reason", _S, "", "", "", "why a present trace header was rejected"),
    FieldSpec("http.request.id", _S, "", "http.request.id", "http_request.uid"),
    FieldSpec("http.request.id_source", _S, "", "", "", "header or variable the request id came from"),
    FieldSpec("edge.request_id", _S, "", "", "", "CDN request id (Cf-Ray, x-edge-request-id) seen at this hop"),
    FieldSpec("messaging.message.id", _S, "messaging.message.id", "", "", "broker message id (async hops)"),
    FieldSpec("link.trace_ids", _LS, "", "", "", "span links: trace ids this hop continues"),
    # TLS and workload
    FieldSpec("tls.client.subject", _S, "tls.client.subject", "tls.client.x509.subject.distinguished_name", "tls.certificate.subject", "RFC 2253"),
    FieldSpec("tls.client.issuer", _S, "tls.client.issuer", "tls.client.x509.issuer.distinguished_name", "tls.certificate.issuer", "RFC 2253"),
    FieldSpec("tls.client.hash.sha256", _S, "tls.client.hash.sha256", "tls.client.hash.sha256", "tls.certificate.fingerprints", "upper hex"),
    FieldSpec("tls.client.hash.sha1", _S, "tls.client.hash.sha1", "tls.client.hash.sha1", "tls.certificate.fingerprints", "upper hex"),
    FieldSpec("tls.client.serial", _S, "", "tls.client.x509.serial_number", "tls.certificate.serial_number", "upper hex"),
    FieldSpec("tls.client.not_after", _TS, "tls.client.not_after", "tls.client.not_after", "tls.certificate.expiration_time"),
    FieldSpec("tls.client.verify_result", _S, "", "", "", "SUCCESS|FAILED:<reason>|NONE|absent|untrusted|expired|notyetvalid"),
    FieldSpec("tls.protocol.version", _S, "tls.protocol.version", "tls.version", "tls.version"),
    FieldSpec("tls.forwarded_by", _LS, "", "", "", "XFCC By= elements in order (chain of custody)"),
    FieldSpec("workload.id", _S, "", "", "unmapped.workload_id", "SPIFFE id"),
    FieldSpec("workload.id_source", _S, "", "", "", "xfcc.uri|peer_uri_san|jwt_svid|principal"),
    # token
    FieldSpec("token.type", _S, "", "", "authentication_token.type", "jwt|opaque|api_key|basic|none"),
    FieldSpec("token.fingerprint", _S, "", "", "authentication_token.uid", "keyed HMAC fingerprint of the credential"),
    FieldSpec("token.issuer", _S, "", "", "authentication_token.issuer"),
    FieldSpec("token.audience", _LS, "", "", "authentication_token.audience"),
    FieldSpec("token.subject_fp", _S, "", "", "", "keyed fingerprint of sub"),
    FieldSpec("token.client_id", _S, "", "", "", "azp or client_id"),
    FieldSpec("token.scope", _LS, "", "", ""),
    FieldSpec("token.issued_at", _TS, "", "", "authentication_token.created_time"),
    FieldSpec("token.expires_at", _TS, "", "", "authentication_token.expiration_time"),
    FieldSpec("token.id_fp", _S, "", "", "", "keyed fingerprint of jti"),
    FieldSpec("token.cnf_x5t_s256", _S, "", "", "", "RFC 8705 certificate binding, base64url"),
    FieldSpec("token.location", _S, "", "", "", "header|query|cookie"),
    FieldSpec("credential.id", _S, "", "", "", "API key id, cert serial or key id (never the secret)"),
    FieldSpec("credential.kind", _S, "", "", ""),
    FieldSpec("consumer.id", _S, "", "", "actor.app_uid", "gateway consumer / application / subscription id (not a secret)"),
    FieldSpec("enduser.id_fp", _S, "", "", "actor.user.uid", "keyed fingerprint of the end user id"),
    # decisions
    FieldSpec("authn.result", _S, "", "event.outcome", "status", "success|failure|none|not_evaluated"),
    FieldSpec("authn.mechanism", _S, "", "", "auth_protocol", "mtls|jwt|api_key|basic|oauth_introspection|cookie"),
    FieldSpec("authz.decision", _S, "", "event.outcome", "actor.authorizations.decision", "allow|deny|error|not_evaluated"),
    FieldSpec("authz.policy", _S, "", "rule.name", "actor.authorizations.policy.name"),
    FieldSpec("authz.engine", _S, "", "", "", "rbac|ext_authz|opa|apigw_authorizer|kong_plugin|waf"),
    # failure
    FieldSpec("failure.class", _S, "error.type", "event.outcome", "status_id", "none|authn|authz|token_exchange|routing|dependency|rate_limited|client_abort|unknown"),
    FieldSpec("failure.reason", _S, "", "event.reason", "status_detail", "vendor code verbatim"),
    FieldSpec("failure.origin", _S, "", "", "", "self|upstream"),
    FieldSpec("failure.source", _S, "", "", "", "policy or filter that produced the failure, e.g. validate-jwt, authorizer"),
    FieldSpec("response.flags", _S, "", "", "", "Envoy response flags / HAProxy termination state as logged"),
    # raw
    FieldSpec("raw.unmapped", _S, "", "", "unmapped", "JSON of the source fields with secrets fingerprinted"),
    FieldSpec("schema.source_fingerprint", _S, "", "", "", "hash of the sorted source key set (drift detection)"),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
FIELD_BY_NAME: dict[str, FieldSpec] = {f.name: f for f in FIELDS}
HOP_SCHEMA: pa.Schema = pa.schema([pa.field(f.name, f.type) for f in FIELDS])

REJECT_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("source.file", _S),
        pa.field("source.line", _I),
        pa.field("source.format", _S),
        pa.field("reason", _S),
    ]
)

__all__ = [
    "DIRECTIONS",
    "FAILURE_CLASSES",
    "FIELDS",
    "FIELD_BY_NAME",
    "FIELD_NAMES",
    "HOP_SCHEMA",
    "LAYERS",
    "REJECT_SCHEMA",
    "TRACE_SOURCES",
    "FieldSpec",
]


def render_markdown() -> str:
    """``docs/schema.md``, generated from FIELDS (a test keeps the file in sync)."""
    out = [
        "# The canonical hop record",
        "",
        "One row per log record of one hop (`trace/schema.py`, table `hops` of the DuckDB store; quote the dotted",
        'column names: `SELECT "trace.id" FROM hops`). A line holds one record, or several (an OTLP/JSON export, an',
        'Azure Event Hubs `{"records": [...]}` wrapper): its hops share `source.file` and `source.line` and are',
        "numbered by `source.record` from 1 (1 for a line with one record). Field names follow OpenTelemetry where",
        "OTel has one, ECS where only ECS has one, and the project's own namespace otherwise. Lines that are not",
        "records land in `rejects` (`source.file`, `source.line`, `source.format`, `reason`; never a value of the",
        "line). Per-file line accounting is in `ingest_runs` (`lines` = `hop_lines` + `rejects`; `hops` counts",
        "records); raw secrets found in logs are listed in `leaks` (file, line, record, field, kind, keyed",
        "fingerprint; never the value).",
        "",
        "Generated from `schema.FIELDS` (`APITRAIL_UPDATE_SNAPSHOTS=1 pytest tests/trace/test_schema_doc.py`).",
        "",
        "| field | type | OTel | ECS | OCSF | notes |",
        "|---|---|---|---|---|---|",
    ]
    for f in FIELDS:
        cells = [f"`{f.name}`", str(f.type), f"`{f.otel}`" if f.otel else "", f"`{f.ecs}`" if f.ecs else "",
                 f"`{f.ocsf}`" if f.ocsf else "", f.doc.replace("|", "\\|")]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "## rejects", "", "| field | type |", "|---|---|"]
    out += [f"| `{f.name}` | {f.type} |" for f in REJECT_SCHEMA]
    out.append("")
    return "\n".join(out)
