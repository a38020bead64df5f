"""Blind spots: what the logs of a request cannot show, or show inconsistently.

Per request group (SQL over ``t_hc``, the classified hops):

* ``propagation_break``: the group has a trace id at some hop, and a deeper hop logs a different trace id (a trace
  restart) or none although its source file logs trace ids on other lines (so the field exists and was empty).
  Values that provenance says are request ids do not count as trace ids.
* ``invalid_traceparent``: a hop carried a trace header that failed validation (``trace.invalid_reason``).
* ``gateway_bypass``: the data has gateway records, and a request (a hop with a method, path or status) reached a
  backend (or a mesh inbound sidecar) without any gateway record in its group; or a hop's XFCC chain
  (``tls.forwarded_by``) lacks every gateway ``By=`` identity; or a backend's peer address is outside the
  configured gateway sources.
* ``missing_identity:<layer>:<field>``: a shallower hop of the same request logged the identity field, this
  deeper hop (gateway, mesh or backend) did not. The per-layer null rates are in the summary (identity coverage).
* ``schema_drift``: the hop's key-set fingerprint (``schema.source_fingerprint``) belongs to a later "era" of its
  source file (one key set stops, another starts, each seen at least twice: a deploy changed the keys), or its trace id arrives in a different encoding/key family (``trace.source``) than the rest of
  its file. Teams that consistently use different keys for the same concept (``traceId`` vs ``otelTraceID``)
  are reported once per layer in the summary notes, not on every request.

Per data set: ``BY_DESIGN`` notes on what a layer never logs, shown when that product is present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apitrail.trace.classify import product_sql
from apitrail.trace.engines._sql import Dialect, Runner, in_list, lit

IDENTITY_FIELDS: tuple[str, ...] = (
    "token.issuer",
    "token.audience",
    "token.subject_fp",
    "token.client_id",
    "token.scope",
    "enduser.id_fp",
    "workload.id",
    "tls.client.subject",
)
"""Identity fields whose loss between hops is reported as ``missing_identity``."""

COVERAGE_FIELDS: tuple[str, ...] = (
    "trace.id",
    "http.request.id",
    "token.fingerprint",
    *IDENTITY_FIELDS,
    "tls.client.hash.sha256",
    "authn.result",
    "authz.decision",
)
"""Fields whose null rate per layer is the identity coverage table of the summary."""

LIST_FIELDS = frozenset({"token.audience", "token.scope", "link.trace_ids", "tls.forwarded_by"})
IDENTITY_LAYERS = ("gateway", "mesh", "backend")

BY_DESIGN: tuple[tuple[tuple[str, ...], str], ...] = (
    (("cloudfront",), "CloudFront: viewer mTLS failures appear only in connection logs, never in access logs; "
                      "standard logs carry no trace id and arrive up to 24 h late"),
    (("cloudflare",), "Cloudflare: ClientMTLSAuthCertFingerprint is only populated on the first request of an mTLS "
                      "connection; Logpush has no client-certificate subject or issuer"),
    (("akamai",), "Akamai DataStream 2: no mTLS client-certificate fields; identity is only tlsVersion"),
    (("haproxy",), "HAProxy: `tcp-request connection` rejects are not logged at all"),
    (("envoy", "istio"), "Envoy/Istio: downstream TLS handshake failures produce no access-log line; the Istio "
                         "default TEXT format has no trace id and no peer identity"),
    (("nginx",), "NGINX: no authn/authz detail unless auth_request variables are logged; $request_id is 32 hex "
                 "like a trace id"),
    (("kong",), "Kong: authenticated_entity carries only the credential id; only authorization and "
                "proxy-authorization headers are redacted"),
    (("apigw", "api_gateway", "apigateway"), "AWS API Gateway (REST): an unknown path is answered 403 "
                                             "MISSING_AUTHENTICATION_TOKEN, which looks like an auth failure"),
    (("traefik",), "Traefik: requests Traefik answers itself have no OriginStatus"),
)


@dataclass(frozen=True)
class BlindSpotOptions:
    gateway_ids: tuple[str, ...] = ()
    """XFCC ``By=`` identities (SPIFFE ids) of the gateway; inferred from the data when empty."""
    gateway_sources: tuple[str, ...] = ()
    """Addresses the gateway connects from; a backend peer outside them is a bypass (checked only when given)."""


@dataclass
class BlindSpotReport:
    coverage: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gateway_ids: list[str] = field(default_factory=list)
    trace_sources: dict[str, dict[str, int]] = field(default_factory=dict)


def has(name: str) -> str:
    """The ``t_h`` column that says whether a hop logged the canonical field ``name``."""
    return "has_" + "".join(ch if ch.isalnum() else "_" for ch in name)


def presence_columns(d: Dialect) -> tuple[str, ...]:
    """Presence flags over the source hop row (identity fields, coverage fields, a failed trace header): the
    blind spots only ask whether a field is there, so the work tables carry a flag, not the value."""
    cols = [f"{_present(d.q(n), n, d)} AS {has(n)}" for n in COVERAGE_FIELDS]
    cols.append(f"{d.q('trace.invalid_reason')} IS NOT NULL AS {has('trace.invalid_reason')}")
    return tuple(cols)


def _present(expr: str, name: str, d: Dialect) -> str:
    if name in LIST_FIELDS:
        return f"({d.list_len(expr)} > 0)"
    return f"({expr} IS NOT NULL AND CAST({expr} AS STRING) NOT IN ('', '-'))"


def find_blind_spots(run: Runner, opts: BlindSpotOptions | None = None) -> BlindSpotReport:
    """Create ``t_bs`` (g, spot): one row per blind spot of a request group. Needs ``t_hc`` (with ``tk``, the
    hop's trace-id key) and ``t_h``."""
    opts = opts or BlindSpotOptions()
    d = run.dialect
    q = d.q
    report = BlindSpotReport()
    has_gateway = bool(run.scalar("SELECT count(*) FROM t_hc WHERE layer = 'gateway'"))

    gateway_ids = list(opts.gateway_ids)
    if not gateway_ids and has_gateway:
        explode = "explode" if d.name == "spark" else "unnest"
        rows = run.rows(
            f"""
            SELECT b AS by_id, count(*) AS n FROM (
                SELECT {explode}(x.{q('tls.forwarded_by')}) AS b FROM t_hc x
                WHERE {d.list_len(f"x.{q('tls.forwarded_by')}")} > 0
                  AND x.g IN (SELECT g FROM t_hc WHERE layer = 'gateway')) y
            GROUP BY b ORDER BY n DESC, b
            """
        )
        gateway_ids = [r["by_id"] for r in rows if r["by_id"]]
    report.gateway_ids = gateway_ids

    # The group's trace id: the one seen first (outermost), then on most hops, then the smallest.
    main = d.struct_min(("fd", "-n", "tk"), 2)
    run.create(
        "t_gtrace",
        f"""
        SELECT g, {main} AS main_tid, min(fd) AS first_depth FROM (
            SELECT g, tk, min(depth) AS fd, count(*) AS n FROM t_hc WHERE tk IS NOT NULL GROUP BY g, tk) x
        GROUP BY g
        """,
    )
    run.create("t_filetrace", "SELECT fidx, count(tk) AS n FROM t_hc GROUP BY fidx")
    parts: list[str] = [
        """SELECT c.g, 'propagation_break' AS spot FROM t_hc c
            JOIN t_gtrace gt ON c.g = gt.g
            JOIN t_filetrace ft ON c.fidx = ft.fidx
            WHERE c.depth > gt.first_depth
              AND ((c.tk IS NOT NULL AND c.tk <> gt.main_tid)
                   OR (c.tk IS NULL AND ft.n > 0))""",
        f"SELECT g, 'invalid_traceparent' AS spot FROM t_hc WHERE {has('trace.invalid_reason')}",
    ]
    if has_gateway:
        parts.append(
            # a request (method, path or status logged) reached the backend; an application's own log record
            # without one (a batch job's line) bypassed nothing
            """SELECT g, 'gateway_bypass' AS spot FROM t_hc GROUP BY g
               HAVING bool_or((layer = 'backend' OR (layer = 'mesh' AND coalesce(direction, '') = 'inbound'))
                              AND (method IS NOT NULL OR path IS NOT NULL OR status IS NOT NULL))
                  AND NOT bool_or(layer = 'gateway')"""
        )
    if gateway_ids:
        contains_any = " OR ".join(d.list_contains(f"{q('tls.forwarded_by')}", lit(i, d)) for i in gateway_ids)
        parts.append(
            f"""SELECT g, 'gateway_bypass' AS spot FROM t_hc
                WHERE layer IN ('backend', 'mesh') AND {d.list_len(q('tls.forwarded_by'))} > 0 AND NOT ({contains_any})"""
        )
    if opts.gateway_sources:
        src = in_list(opts.gateway_sources, d)
        parts.append(
            f"""SELECT g, 'gateway_bypass' AS spot FROM t_hc
                WHERE layer = 'backend' AND coalesce({q('network.peer.address')}, client) IS NOT NULL
                  AND coalesce({q('network.peer.address')}, client) NOT IN {src}"""
        )
    # missing identity: per group, the first depth where each identity field is present; then the deeper hops
    # of the identity layers that lack it (one pass over the hops for all fields)
    layers = in_list(IDENTITY_LAYERS, d)
    pres = {name: f"c.{has(name)}" for name in IDENTITY_FIELDS}
    fds = ", ".join(f"min(CASE WHEN {p} THEN c.depth END) AS fd_{i}" for i, p in enumerate(pres.values()))
    run.create(
        "t_idfd",
        f"SELECT * FROM (SELECT c.g, {fds} FROM t_hc c GROUP BY c.g) x WHERE "
        + " OR ".join(f"fd_{i} IS NOT NULL" for i in range(len(pres))),
    )
    lacks = [f"(c.depth > f.fd_{i} AND NOT {p})" for i, p in enumerate(pres.values())]
    run.create(
        "t_idmiss",
        f"""SELECT c.g, c.layer, {', '.join(f'{x} AS m_{i}' for i, x in enumerate(lacks))}
            FROM t_hc c JOIN t_idfd f ON c.g = f.g
            WHERE c.layer IN {layers} AND ({' OR '.join(lacks)})""",
    )
    for i, name in enumerate(IDENTITY_FIELDS):
        parts.append(f"SELECT g, concat('missing_identity:', layer, ':', {lit(name, d)}) AS spot FROM t_idmiss "
                     f"WHERE m_{i}")
    # A source's key set drifts when one key-set fingerprint stops and another starts (a deploy), not when
    # optional keys come and go line by line: look for two "eras" A then B, each seen at least twice.
    fp = q("schema.source_fingerprint")
    run.create(
        "t_fpstat",
        f"""SELECT file, {fp} AS fp, count(*) AS n, min(line) AS first_line, max(line) AS last_line FROM t_hc
            WHERE {fp} IS NOT NULL GROUP BY file, {fp}""",
    )
    run.create(
        "t_fpdrift",
        """SELECT DISTINCT b.file, b.fp FROM t_fpstat b JOIN t_fpstat a ON a.file = b.file AND a.fp <> b.fp
           WHERE a.last_line < b.first_line AND a.n >= 2 AND b.n >= 2""",
    )
    run.create(
        "t_tsmode",
        """
        SELECT file, ts_src FROM (
            SELECT file, lower(tsrc) AS ts_src,
                   row_number() OVER (PARTITION BY file ORDER BY count(*) DESC, lower(tsrc)) AS rn
            FROM t_hc WHERE tsrc IS NOT NULL AND lower(tsrc) <> 'absent' GROUP BY file, lower(tsrc)) x
        WHERE rn = 1
        """,
    )
    parts.append(
        f"""SELECT c.g, 'schema_drift' AS spot FROM t_hc c
            LEFT JOIN t_fpdrift m ON c.file = m.file AND c.{fp} = m.fp
            LEFT JOIN t_tsmode t ON c.file = t.file
            WHERE m.fp IS NOT NULL
               OR (c.tsrc IS NOT NULL AND lower(c.tsrc) <> 'absent' AND lower(c.tsrc) <> t.ts_src)"""
    )
    run.create("t_bs", "SELECT DISTINCT g, spot FROM (" + " UNION ALL ".join(parts) + ") u")
    for t in ("t_idfd", "t_idmiss"):
        run.drop(t)

    cov_cols = ", ".join(
        f"avg(CASE WHEN {has(n)} THEN 1.0 ELSE 0.0 END) AS {q(n)}"
        for n in COVERAGE_FIELDS
    )
    for row in run.rows(f"SELECT layer, count(*) AS hops, {cov_cols} FROM t_h GROUP BY layer ORDER BY layer"):
        report.coverage.append(
            {"layer": row["layer"], "hops": int(row["hops"]),
             "present": {n: round(float(row[n]), 4) for n in COVERAGE_FIELDS}}
        )
    for row in run.rows(
        """SELECT layer, lower(tsrc) AS ts_src, count(*) AS n FROM t_h
           WHERE tsrc IS NOT NULL AND lower(tsrc) <> 'absent' GROUP BY layer, lower(tsrc) ORDER BY layer, ts_src"""
    ):
        report.trace_sources.setdefault(row["layer"], {})[row["ts_src"]] = int(row["n"])
    for layer, sources in report.trace_sources.items():
        if len(sources) > 1:
            report.notes.append(f"schema drift: {layer} hops carry the trace id in {len(sources)} encodings/key "
                                f"families ({', '.join(sorted(sources))})")
    # which BY_DESIGN products are present, over the few distinct (product, format) pairs
    seen = ", ".join(f"max(CASE WHEN {product_sql(products, d)} THEN 1 ELSE 0 END) AS p_{i}"
                     for i, (products, _note) in enumerate(BY_DESIGN))
    present = run.rows(f"SELECT {seen} FROM "
                       f"(SELECT DISTINCT product AS {q('hop.product')}, {q('source.format')} FROM t_h) x")
    for i, (_products, note) in enumerate(BY_DESIGN):
        if present and present[0][f"p_{i}"]:
            report.notes.append(note)
    return report


__all__ = ["BY_DESIGN", "COVERAGE_FIELDS", "IDENTITY_FIELDS", "BlindSpotOptions", "BlindSpotReport",
           "find_blind_spots"]
