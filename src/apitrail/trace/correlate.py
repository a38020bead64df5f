"""Correlation: build request groups as connected components over join keys (DESIGN.md "Join").

Keys, in order of trust:

1. ``trace_id``: the W3C trace id (already normalised from B3, X-Ray and GCP by the parsers);
2. ``edge_id`` / ``request_id``: per-edge ids. CDN RayID / ``x-edge-request-id`` meet the origin's ``Cf-Ray`` /
   ``X-Amz-Cf-Id`` through ``edge.request_id``; ``x-request-id``, gateway request ids and the backend header that
   carries them meet through ``http.request.id`` (with its provenance in ``http.request.id_source``);
   ``messaging.message.id`` links produce and consume hops;
3. ``heuristic``: time window (clock skew) + client + method + path, only for hops no id could place, only when
   the match is unique both ways, and always labelled ``join: "heuristic"``.

Null and placeholder keys (``-``, all zeros, OTel Python's ``"0"``) are split off first, and so are "hub" keys shared
by more hops than any one request can have (a constant id from a misconfigured logger would otherwise glue
thousands of requests into one group). Keys are compared by value across kinds: ids are random, so a collision
between kinds means the same value was propagated (e.g. a backend that logs ``X-Request-Id`` *as* ``trace_id``).
Provenance still decides what a value *is*: a "trace id" that other hops logged as a request id, and never came
from a trace header, counts as a request id (so it neither labels the join ``trace_id`` nor raises
``propagation_break``).

The components come from an iterative min-label propagation in SQL (hop -> key -> hop), which runs unchanged on
DuckDB and on Spark SQL. Retries (``upstream.status_codes`` chains such as ``502, 200``) and Istio double logging
(outbound and inbound sidecar lines sharing ``x-request-id``) simply become more hops of the same group; late or
out-of-order CDN lines need no special case because nothing depends on file order, only on keys and time windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apitrail.trace.engines._sql import Runner, in_list

LAYER_RANK: dict[str, int] = {"cdn": 0, "edge_lb": 1, "proxy": 2, "gateway": 3, "mesh": 4, "backend": 5, "queue": 6}
"""Depth of a layer in the request path; the failing hop is the deepest one that produced the final status."""

PLACEHOLDERS: tuple[str, ...] = ("-", "", "0", "null", "none", "nil", "undefined", "unknown", "n/a", "(null)")
"""Key values that mean "no id" (compared lower-cased). All-zero and all-dash values are caught separately."""

HEADER_TRACE_SOURCES: tuple[str, ...] = ("w3c", "b3", "b3single", "xray", "gcp", "otel")
"""Trace-id provenances that come from a trace header or a tracer, so the value certainly is a trace id."""

EXTRA_KEYS: tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...] = (
    (("kong",), ("request", "headers", "x-request-id"), "request_id"),
    (("kong",), ("request", "headers", "x-amz-cf-id"), "edge_id"),
    (("kong",), ("request", "headers", "cf-ray"), "edge_id"),
)
"""Second ids a source logs besides the one in ``http.request.id`` (product family, JSON path in ``raw.unmapped``,
kind). Kong logs its own request id *and* the ``x-request-id`` the proxy in front of it sent."""

JOIN_KINDS: tuple[str, ...] = ("trace_id", "request_id", "heuristic", "none")
"""Values of the ``join`` member of the trace output."""


@dataclass(frozen=True)
class CorrelateOptions:
    skew_seconds: float = 5.0
    """Clock skew tolerated between layers by the heuristic join (seconds)."""
    max_fanout: int = 64
    """A key shared by more hops than this is a hub (placeholder-like) and is not used for joins."""
    heuristic: bool = True
    max_iterations: int = 40


@dataclass
class CorrelationStats:
    hops: int = 0
    groups: int = 0
    iterations: int = 0
    heuristic_edges: int = 0
    hub_keys: int = 0
    placeholder_keys: int = 0
    notes: list[str] = field(default_factory=list)


def _valid_key(expr: str) -> str:
    """SQL predicate: the expression is a usable join key (not null, not a placeholder, not all zeros)."""
    return (
        f"({expr} IS NOT NULL AND lower(trim({expr})) NOT IN {in_list(PLACEHOLDERS)} "
        f"AND replace(replace(replace(trim({expr}), '0', ''), '-', ''), ':', '') <> '' AND length(trim({expr})) >= 4)"
    )


def _norm_key(expr: str) -> str:
    """Lower-case, trimmed; a ``Cf-Ray`` value ``<RayID>-<colo>`` is cut back to the RayID."""
    e = f"lower(trim({expr}))"
    return f"(CASE WHEN length({e}) = 20 AND substr({e}, 17, 1) = '-' THEN substr({e}, 1, 16) ELSE {e} END)"


def _present_key(expr: str) -> str:
    """SQL predicate: a value is present but is a placeholder (counted, reported as split off)."""
    return f"({expr} IS NOT NULL AND NOT {_valid_key(expr)})"


KEEP_COLUMNS: tuple[str, ...] = (
    "hop.product", "source.format", "trace.source", "trace.invalid_reason", "schema.source_fingerprint",
    "tls.forwarded_by", "network.peer.address", "authn.result", "authz.decision", "token.fingerprint", "token.issuer",
    "token.audience", "token.subject_fp", "token.client_id", "token.scope", "enduser.id_fp", "workload.id",
    "tls.client.subject", "tls.client.hash.sha256", "trace.id", "http.request.id",
)
"""Canonical columns carried into the work tables (the rest, notably ``raw.unmapped``, is read once)."""


def build_hop_table(run: Runner, source: str = "hops", extra: tuple[str, ...] = (), pre_source: str | None = None) -> int:
    """Create ``t_h``: every hop with a stable ``hop_id``, the short columns the later steps use, the canonical
    columns they read (``KEEP_COLUMNS``) and ``extra`` expressions over the source row (``expr AS alias``)."""
    d = run.dialect
    q = d.q
    keep = ", ".join(f"s.{q(c)}" for c in KEEP_COLUMNS)
    if pre_source:  # DuckDB: the paths were extracted with the signal keys in one JSON parse (_rx)
        from apitrail.trace.classify import raw_extract_offset

        off = raw_extract_offset(d)
        vals = [f"s._rx[{off + i + 1}]" for i in range(len(EXTRA_KEYS))]
    else:
        vals = [d.json_path(q("raw.unmapped"), path) for _p, path, _kind in EXTRA_KEYS]
    xkeys = [f"CASE WHEN {product_sql_lazy(p, d)} AND {_valid_key(v)} THEN {_norm_key(v)} END AS xk_{i}"
             for i, ((p, _path, _kind), v) in enumerate(zip(EXTRA_KEYS, vals, strict=True))]
    more = "".join(f", {e}" for e in (*xkeys, *extra))
    rank_case = " ".join(f"WHEN {in_list([k], d)} THEN {v}" for k, v in LAYER_RANK.items())
    run.create(
        "t_h",
        f"""
        SELECT row_number() OVER (ORDER BY {q('source.file')}, {q('source.line')}) AS hop_id, {keep}{more},
               {q('source.file')} AS file, {q('source.line')} AS line,
               coalesce({q('hop.layer')}, 'backend') AS layer,
               coalesce({q('hop.product')}, '') AS product,
               {q('hop.direction')} AS direction,
               {q('hop.instance')} AS instance,
               CASE lower(coalesce({q('hop.layer')}, 'backend')) {rank_case} ELSE 5 END AS layer_rank,
               CASE WHEN {q('hop.direction')} = 'outbound' THEN 0 WHEN {q('hop.direction')} = 'inbound' THEN 1 ELSE 0 END
                   AS dir_rank,
               {d.epoch(q('timestamp'))} AS ts,
               {q('timestamp')} AS ts_raw,
               {q('http.response.status_code')} AS status,
               upper({q('http.request.method')}) AS method,
               {q('url.path')} AS path,
               {q('client.address')} AS client,
               {q('http.request.header.x-forwarded-for')} AS xff,
               CASE WHEN {_valid_key(q('trace.id'))} THEN lower(trim({q('trace.id')})) END AS tid,
               {q('trace.source')} AS tsrc,
               CASE WHEN {_valid_key(q('http.request.id'))} THEN {_norm_key(q('http.request.id'))} END AS rid,
               CASE WHEN {_valid_key(q('edge.request_id'))} THEN {_norm_key(q('edge.request_id'))} END AS eid,
               CASE WHEN {_valid_key(q('messaging.message.id'))} THEN {_norm_key(q('messaging.message.id'))} END AS mid,
               (CASE WHEN {_present_key(q('trace.id'))} THEN 1 ELSE 0 END
                + CASE WHEN {_present_key(q('http.request.id'))} THEN 1 ELSE 0 END
                + CASE WHEN {_present_key(q('edge.request_id'))} THEN 1 ELSE 0 END) AS placeholder_keys
        FROM {f"(SELECT *, {pre_source} FROM {source})" if pre_source else source} s
        """,
    )
    return int(run.scalar("SELECT count(*) FROM t_h"))


def product_sql_lazy(products: tuple[str, ...], d: Any) -> str:
    from apitrail.trace.classify import product_sql

    return product_sql(products, d)


def _extra_key_sql(i: int, kind: str) -> str:
    return f" UNION ALL SELECT hop_id, '{kind}' AS kind, xk_{i} AS k FROM t_h WHERE xk_{i} IS NOT NULL"


def build_keys(run: Runner, opts: CorrelateOptions) -> tuple[int, int]:
    """Create ``t_keys`` (hop_id, kind, k) and ``t_edges`` (the keys that join 2..max_fanout hops).

    Returns (hub keys dropped, placeholder keys split off).
    """
    hs = in_list(HEADER_TRACE_SOURCES, run.dialect)
    run.create(
        "t_idvals",
        """
        SELECT rid AS k FROM t_h WHERE rid IS NOT NULL
        UNION SELECT eid AS k FROM t_h WHERE eid IS NOT NULL
        """,
    )
    run.create(
        "t_realtrace",
        f"SELECT DISTINCT tid AS k FROM t_h WHERE tid IS NOT NULL AND lower(coalesce(tsrc, '')) IN {hs}",
    )
    # NOTE: provenance decides: a "trace id" that is also some hop's request id, and never came from a trace
    # header, is a request id logged under a trace key.
    run.create(
        "t_keys",
        """
        SELECT h.hop_id,
               CASE WHEN r.k IS NULL AND i.k IS NOT NULL THEN 'request_id' ELSE 'trace_id' END AS kind,
               h.tid AS k
        FROM t_h h
        LEFT JOIN t_idvals i ON h.tid = i.k
        LEFT JOIN t_realtrace r ON h.tid = r.k
        WHERE h.tid IS NOT NULL
        UNION ALL SELECT hop_id, 'request_id' AS kind, rid AS k FROM t_h WHERE rid IS NOT NULL
        UNION ALL SELECT hop_id, 'edge_id' AS kind, eid AS k FROM t_h WHERE eid IS NOT NULL
        UNION ALL SELECT hop_id, 'message_id' AS kind, mid AS k FROM t_h WHERE mid IS NOT NULL
        """ + "".join(_extra_key_sql(i, kind) for i, (_p, _path, kind) in enumerate(EXTRA_KEYS)),
    )
    run.create(
        "t_keycount",
        "SELECT k, count(DISTINCT hop_id) AS n FROM t_keys GROUP BY k",
    )
    run.create(
        "t_edges",
        f"""
        SELECT DISTINCT kk.hop_id, kk.k FROM t_keys kk JOIN t_keycount c ON kk.k = c.k
        WHERE c.n >= 2 AND c.n <= {int(opts.max_fanout)}
        """,
    )
    hubs = int(run.scalar(f"SELECT count(*) FROM t_keycount WHERE n > {int(opts.max_fanout)}"))
    placeholders = int(run.scalar("SELECT coalesce(sum(placeholder_keys), 0) FROM t_h"))
    return hubs, placeholders


def propagate(run: Runner, edges: str, labels_in: str | None, opts: CorrelateOptions) -> int:
    """Min-label propagation over a bipartite hop-key edge table; leaves the result in ``t_lbl``.

    ``labels_in`` optionally seeds the labels (hop_id, g) from an earlier run. Returns the iterations used.
    """
    seed = (
        f"""SELECT e.hop_id, min(coalesce(s.g, e.hop_id)) AS g
            FROM (SELECT DISTINCT hop_id FROM {edges}) e LEFT JOIN {labels_in} s ON e.hop_id = s.hop_id
            GROUP BY e.hop_id"""
        if labels_in
        else f"SELECT DISTINCT hop_id, hop_id AS g FROM {edges}"
    )
    run.create("t_lbl", seed)
    iterations = 0
    for iterations in range(1, opts.max_iterations + 1):  # noqa: B007
        run.create(
            "t_klbl",
            f"SELECT e.k, min(l.g) AS g FROM {edges} e JOIN t_lbl l ON e.hop_id = l.hop_id GROUP BY e.k",
        )
        run.create(
            "t_lbl_next",
            f"""
            SELECT l.hop_id, least(l.g, coalesce(m.g, l.g)) AS g
            FROM t_lbl l LEFT JOIN (
                SELECT e.hop_id, min(kl.g) AS g FROM {edges} e JOIN t_klbl kl ON e.k = kl.k GROUP BY e.hop_id
            ) m ON l.hop_id = m.hop_id
            """,
        )
        changed = int(
            run.scalar("SELECT count(*) FROM t_lbl_next n JOIN t_lbl o ON n.hop_id = o.hop_id WHERE n.g <> o.g")
        )
        run.create("t_lbl", "SELECT hop_id, g FROM t_lbl_next")
        if changed == 0:
            break
    return iterations


def heuristic_edges(run: Runner, opts: CorrelateOptions) -> int:
    """Create ``t_hedges``: unique (time window + client + method + path) matches for hops no id placed.

    A lone hop A (a component of one) joins the component of hop B when B is in another layer, same method and
    path, within ``skew_seconds``, the client matches (same address, or A's client in B's X-Forwarded-For and
    the reverse), B's component has no hop of A's layer/product/direction yet, and the match is unique both ways.
    """
    w = float(opts.skew_seconds)
    run.create(
        "t_comp",
        """
        SELECT h.hop_id, coalesce(l.g, h.hop_id) AS g FROM t_h h LEFT JOIN t_lbl l ON h.hop_id = l.hop_id
        """,
    )
    run.create("t_compsize", "SELECT g, count(*) AS n FROM t_comp GROUP BY g")
    run.create(
        "t_lone",
        """
        SELECT h.* , c.g FROM t_h h JOIN t_comp c ON h.hop_id = c.hop_id JOIN t_compsize s ON c.g = s.g
        WHERE s.n = 1 AND h.method IS NOT NULL AND h.path IS NOT NULL AND h.ts IS NOT NULL
        """,
    )
    # Time buckets of width w turn the window join into an equi-join on (method, path, bucket).
    run.create(
        "t_hcand",
        f"""
        SELECT a.hop_id AS a_id, a.layer AS a_layer, a.product AS a_product, coalesce(a.direction, '') AS a_dir,
               b.hop_id AS b_id, cb.g AS b_g
        FROM t_lone a
        JOIN (SELECT h.*, CAST(floor(h.ts / {w}) AS BIGINT) + o.d AS bucket
              FROM t_h h CROSS JOIN (SELECT -1 AS d UNION ALL SELECT 0 UNION ALL SELECT 1) o
              WHERE h.ts IS NOT NULL AND h.method IS NOT NULL) b
          ON a.method = b.method AND a.path = b.path AND CAST(floor(a.ts / {w}) AS BIGINT) = b.bucket
        JOIN t_comp cb ON b.hop_id = cb.hop_id
        WHERE cb.g <> a.g AND a.layer <> b.layer AND abs(a.ts - b.ts) <= {w}
          AND (a.client = b.client
               OR (b.xff IS NOT NULL AND a.client IS NOT NULL AND instr(b.xff, a.client) > 0)
               OR (a.xff IS NOT NULL AND b.client IS NOT NULL AND instr(a.xff, b.client) > 0))
        """,
    )
    run.create(
        "t_hcand2",
        """
        SELECT DISTINCT c.a_id, c.a_layer, c.a_product, c.a_dir, c.b_g FROM t_hcand c
        WHERE NOT EXISTS (
            SELECT 1 FROM t_comp x JOIN t_h y ON x.hop_id = y.hop_id
            WHERE x.g = c.b_g AND y.layer = c.a_layer AND y.product = c.a_product
              AND coalesce(y.direction, '') = c.a_dir)
        """,
    )
    run.create(
        "t_hedges",
        """
        SELECT c.a_id, c.b_g FROM t_hcand2 c
        WHERE c.a_id IN (SELECT a_id FROM t_hcand2 GROUP BY a_id HAVING count(*) = 1)
          AND NOT EXISTS (SELECT 1 FROM t_hcand2 o
                          WHERE o.b_g = c.b_g AND o.a_layer = c.a_layer AND o.a_product = c.a_product
                            AND o.a_dir = c.a_dir AND o.a_id <> c.a_id)
        """,
    )
    return int(run.scalar("SELECT count(*) FROM t_hedges"))


def correlate(run: Runner, source: str = "hops", opts: CorrelateOptions | None = None,
              extra: tuple[str, ...] = (), pre_source: str | None = None) -> CorrelationStats:
    """Run the whole join; leaves ``t_hg`` (hop_id, g, heur) and ``t_group`` (g, size, join_kind, request_key)."""
    opts = opts or CorrelateOptions()
    stats = CorrelationStats()
    stats.hops = build_hop_table(run, source, extra, pre_source)
    stats.hub_keys, stats.placeholder_keys = build_keys(run, opts)
    stats.iterations = propagate(run, "t_edges", None, opts)
    if opts.heuristic:
        stats.heuristic_edges = heuristic_edges(run, opts)
    if stats.heuristic_edges:
        # Each heuristic match becomes a private pseudo-key joining the lone hop to its component's label.
        run.create(
            "t_edges2",
            """
            SELECT hop_id, k FROM t_edges
            UNION ALL SELECT a_id AS hop_id, concat('heuristic:', CAST(a_id AS STRING)) AS k FROM t_hedges
            UNION ALL SELECT b_g AS hop_id, concat('heuristic:', CAST(a_id AS STRING)) AS k FROM t_hedges
            """,
        )
        run.create("t_lbl_seed", "SELECT hop_id, g FROM t_lbl")
        stats.iterations += propagate(run, "t_edges2", "t_lbl_seed", opts)
    run.create(
        "t_hg",
        """
        SELECT h.hop_id, coalesce(l.g, h.hop_id) AS g,
               CASE WHEN he.a_id IS NOT NULL THEN true ELSE false END AS heur
        FROM t_h h LEFT JOIN t_lbl l ON h.hop_id = l.hop_id
        LEFT JOIN (SELECT DISTINCT a_id FROM t_hedges) he ON h.hop_id = he.a_id
        """
        if opts.heuristic
        else "SELECT h.hop_id, coalesce(l.g, h.hop_id) AS g, false AS heur "
        "FROM t_h h LEFT JOIN t_lbl l ON h.hop_id = l.hop_id",
    )
    _group_table(run)
    stats.groups = int(run.scalar("SELECT count(*) FROM t_group"))
    if stats.hub_keys:
        stats.notes.append(f"{stats.hub_keys} key value(s) shared by more than {opts.max_fanout} hops were not used")
    return stats


def _group_table(run: Runner) -> None:
    """Per group: size, join label and the request key (the best key: trace id, then request id, then edge id)."""
    run.create(
        "t_gkeys",
        """
        SELECT hg.g, k.kind, k.k, count(DISTINCT k.hop_id) AS n,
               CASE k.kind WHEN 'trace_id' THEN 0 WHEN 'request_id' THEN 1 WHEN 'edge_id' THEN 2 ELSE 3 END AS kr
        FROM t_keys k JOIN t_hg hg ON k.hop_id = hg.hop_id
        GROUP BY hg.g, k.kind, k.k
        """,
    )
    run.create(
        "t_gkey",
        """
        SELECT g, k AS request_key FROM (
            SELECT g, k, row_number() OVER (PARTITION BY g ORDER BY kr, n DESC, k) AS rn FROM t_gkeys) x
        WHERE rn = 1
        """,
    )
    run.create(
        "t_group",
        """
        SELECT a.g, a.size,
               CASE WHEN a.size = 1 THEN 'none'
                    WHEN a.heur THEN 'heuristic'
                    WHEN coalesce(t.ntrace, 0) = 1 AND coalesce(t.nhops, 0) = a.size THEN 'trace_id'
                    ELSE 'request_id' END AS join_kind,
               coalesce(gk.request_key, concat('hop:', a.first_file, ':', CAST(a.first_line AS STRING))) AS request_key
        FROM (SELECT hg.g, count(*) AS size, bool_or(hg.heur) AS heur,
                     min_by(h.file, h.hop_id) AS first_file, min_by(h.line, h.hop_id) AS first_line
              FROM t_hg hg JOIN t_h h ON hg.hop_id = h.hop_id GROUP BY hg.g) a
        LEFT JOIN (SELECT hg.g, count(DISTINCT k.k) AS ntrace, count(DISTINCT k.hop_id) AS nhops
                   FROM t_keys k JOIN t_hg hg ON k.hop_id = hg.hop_id WHERE k.kind = 'trace_id' GROUP BY hg.g) t
          ON a.g = t.g
        LEFT JOIN t_gkey gk ON a.g = gk.g
        """,
    )


__all__ = [
    "HEADER_TRACE_SOURCES",
    "JOIN_KINDS",
    "LAYER_RANK",
    "PLACEHOLDERS",
    "CorrelateOptions",
    "CorrelationStats",
    "correlate",
]
