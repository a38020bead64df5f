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

The components are computed in SQL that runs unchanged on DuckDB and on Spark SQL: one grouping gives each hop
the smallest hop of its keys, which settles every request whose keys do not bridge; only the bridging labels go
through an iterative min-label propagation (with pointer jumping). Retries (``upstream.status_codes`` chains such
as ``502, 200``) and Istio double logging (outbound and inbound sidecar lines sharing ``x-request-id``) simply
become more hops of the same group; late or out-of-order CDN lines need no special case because nothing depends
on file order, only on keys and time windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apitrail.trace.engines._sql import Runner, in_list, lit

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
    return _valid_trimmed(f"trim({expr})", f"lower(trim({expr}))")


def _valid_trimmed(t: str, low: str) -> str:
    """:func:`_valid_key` over the trimmed value ``t`` and its lower-case ``low``. Placeholders shorter than the
    4 characters a key needs are excluded by the length test already; the others are compared one by one
    (a short chain of comparisons, not an IN list, which DuckDB plans as a join)."""
    long_ones = " AND ".join(f"{low} <> {lit(p)}" for p in PLACEHOLDERS if len(p) >= 4)
    return (f"({t} IS NOT NULL AND length({t}) >= 4 AND {long_ones} "
            f"AND replace(replace(replace({t}, '0', ''), '-', ''), ':', '') <> '')")


def _norm_lower(e: str) -> str:
    """The key of a lower-cased, trimmed value: a ``Cf-Ray`` value ``<RayID>-<colo>`` is cut back to the RayID."""
    return f"(CASE WHEN length({e}) = 20 AND substr({e}, 17, 1) = '-' THEN substr({e}, 1, 16) ELSE {e} END)"


KEEP_COLUMNS: tuple[str, ...] = (
    "source.format", "schema.source_fingerprint", "tls.forwarded_by", "network.peer.address", "authn.result",
)
"""Canonical columns carried into the work tables as they are; the identity fields are carried as presence flags
(``blindspots.presence_columns``) and the rest, notably ``raw.unmapped``, is read once."""

HOP_ID_LIMIT = 1 << 62
"""``hop_id`` is ``file base + line * file radix + record``, ordered like (file, line, record) without sorting the
hops: a file's radix is one more than its largest record number, and its base the sum of the ``(last line + 1) *
radix`` spans of the files before it. Past this limit (or with a null or negative line or record) the hops are
numbered by a sort instead."""


def record_sql(d: Any, prefix: str = "") -> str:
    """A hop's record number in its line: ``source.record``, 1 where it is null (hop tables built by hand)."""
    return f"coalesce({prefix}{d.q('source.record')}, 1)"

ERROR_STATUS = ("(coalesce({s}, -1) >= 400 OR coalesce({s}, -1) = 0)")
"""An answer that is an error (or no answer: status 0); only such hops can be a request's failing hop."""


def is_err_sql(d: Any, status: str | None = None) -> str:
    return ERROR_STATUS.format(s=status or d.q("http.response.status_code"))


def _extra_key_values(d: Any) -> tuple[str, list[str]]:
    """(subquery columns over the source, one SQL value per EXTRA_KEYS entry). DuckDB parses ``raw.unmapped``
    once per row, for all the paths of a product family, and only on that family's rows."""
    raw = d.q("raw.unmapped")
    if d.name != "duckdb":
        return "", [d.json_path(raw, path) for _p, path, _kind in EXTRA_KEYS]
    families: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    vals = []
    for p, path, _kind in EXTRA_KEYS:
        paths = families.setdefault(p, [])
        paths.append(path)
        vals.append(f"_xk{list(families).index(p)}[{len(paths)}]")
    cols = ""
    for i, (p, paths) in enumerate(families.items()):
        lits = ", ".join(lit("$" + "".join(f'."{k}"' for k in path), d) for path in paths)
        cols += f", CASE WHEN {product_sql_lazy(p, d)} THEN json_extract_string({raw}, [{lits}]) END AS _xk{i}"
    return cols, vals


def build_hop_table(run: Runner, source: str = "hops", extra: tuple[str, ...] = (), pre_source: str | None = None) -> int:
    """Create ``t_h``: every hop with a stable ``hop_id``, the short columns the later steps use, the canonical
    columns they read (``KEEP_COLUMNS``) and ``extra`` expressions over the source row (``expr AS alias``).

    ``hop_id`` orders hops like (file, line, record) (the group label is the smallest ``hop_id`` of a group). It is
    computed from per-file bases (``HOP_ID_LIMIT``), with no sort of the hops; only when (file, line, record) does
    not identify a hop (a table loaded by hand) is it a ``row_number`` over the sorted hops."""
    d = run.dialect
    q = d.q
    rec = record_sql(d)
    run.create(
        "t_files",
        f"""
        SELECT file, CAST(row_number() OVER (ORDER BY file) AS BIGINT) AS fidx, lo, hi, nulls, rlo, radix,
               CAST(sum(span) OVER (ORDER BY file ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - span AS BIGINT)
                   AS base,
               sum(CAST(span AS DOUBLE)) OVER (ORDER BY file ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS top
        FROM (SELECT x.*, CASE WHEN hi >= 0 AND hi < {1 << 40} AND radix <= {1 << 20}
                               THEN (hi + 1) * radix ELSE 0 END AS span
              FROM (SELECT {q('source.file')} AS file, min({q('source.line')}) AS lo, max({q('source.line')}) AS hi,
                           count(*) - count({q('source.line')}) AS nulls, min({rec}) AS rlo,
                           CAST(max({rec}) AS BIGINT) + 1 AS radix
                    FROM {source} GROUP BY {q('source.file')}) x) y
        """,
    )
    bad = run.scalar(f"SELECT count(*) FROM t_files WHERE file IS NULL OR nulls > 0 OR lo < 0 OR rlo < 0 "
                     f"OR hi >= {1 << 40} OR radix > {1 << 20} OR top >= {float(HOP_ID_LIMIT)}")
    from apitrail.trace.blindspots import presence_columns

    keep = ", ".join([*(f"s.{q(c)}" for c in KEEP_COLUMNS), *presence_columns(d)])
    xcols, vals = _extra_key_values(d)
    keysrc = {"tid": q("trace.id"), "rid": q("http.request.id"), "eid": q("edge.request_id"),
              "mid": q("messaging.message.id"), **{f"xk_{i}": v for i, v in enumerate(vals)}}
    trimmed = "".join(f", trim({v}) AS _t_{n}, lower(trim({v})) AS _l_{n}" for n, v in keysrc.items())

    def valid(n: str) -> str:
        return _valid_trimmed(f"_t_{n}", f"_l_{n}")

    def placeholder(n: str) -> str:
        return f"CASE WHEN _t_{n} IS NOT NULL AND NOT {valid(n)} THEN 1 ELSE 0 END"

    xkeys = [f"CASE WHEN {product_sql_lazy(p, d)} AND {valid(f'xk_{i}')} THEN {_norm_lower(f'_l_xk_{i}')} END AS xk_{i}"
             for i, (p, _path, _kind) in enumerate(EXTRA_KEYS)]
    more = "".join(f", {e}" for e in (*xkeys, *extra))
    rank_case = " ".join(f"WHEN {in_list([k], d)} THEN {v}" for k, v in LAYER_RANK.items())
    inner = (f"SELECT *{trimmed} FROM "
             f"(SELECT *{xcols}{', ' + pre_source if pre_source else ''} FROM {source}) s0")

    def select(hop_id: str, src: str) -> str:
        return f"""
        SELECT {hop_id} AS hop_id, {keep}{more},
               f.fidx, {q('source.line')} AS line, {rec} AS rec,
               coalesce({q('hop.layer')}, 'backend') AS layer,
               coalesce({q('hop.product')}, '') AS product,
               {q('hop.direction')} AS direction,
               {q('hop.instance')} AS instance,
               CASE lower(coalesce({q('hop.layer')}, 'backend')) {rank_case} ELSE 5 END AS layer_rank,
               CASE WHEN {q('hop.direction')} = 'outbound' THEN 0 WHEN {q('hop.direction')} = 'inbound' THEN 1 ELSE 0 END
                   AS dir_rank,
               {d.epoch(q('timestamp'))} AS ts,
               {q('http.response.status_code')} AS status,
               {is_err_sql(d)} AS is_err,
               upper({q('http.request.method')}) AS method,
               {q('url.path')} AS path,
               {q('client.address')} AS client,
               {q('http.request.header.x-forwarded-for')} AS xff,
               CASE WHEN {valid('tid')} THEN _l_tid END AS tid,
               {q('trace.source')} AS tsrc,
               CASE WHEN {valid('rid')} THEN {_norm_lower('_l_rid')} END AS rid,
               CASE WHEN {valid('eid')} THEN {_norm_lower('_l_eid')} END AS eid,
               CASE WHEN {valid('mid')} THEN {_norm_lower('_l_mid')} END AS mid,
               ({placeholder('tid')} + {placeholder('rid')} + {placeholder('eid')}) AS placeholder_keys
        FROM {src}
        """

    if not bad:
        run.create("t_h", select(f"f.base + s.{q('source.line')} * f.radix + {record_sql(d, 's.')}",
                                 f"({inner}) s JOIN t_files f ON s.{q('source.file')} = f.file"))
        bad = run.scalar("SELECT count(*) FROM (SELECT hop_id FROM t_h GROUP BY hop_id HAVING count(*) > 1) x")
    if bad:  # (file, line, record) does not identify a hop: number the hops in that order instead
        run.create("t_h", select(f"row_number() OVER (ORDER BY {q('source.file')}, {q('source.line')}, {rec})",
                                 f"({inner}) s LEFT JOIN t_files f ON s.{q('source.file')} = f.file"))
    return int(run.scalar("SELECT count(*) FROM t_h"))


def product_sql_lazy(products: tuple[str, ...], d: Any) -> str:
    from apitrail.trace.classify import product_sql

    return product_sql(products, d)


KEY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tid", ""), ("rid", "request_id"), ("eid", "edge_id"), ("mid", "message_id"),
    *((f"xk_{i}", kind) for i, (_p, _path, kind) in enumerate(EXTRA_KEYS)),
)
"""The key columns of ``t_h`` and their kind; a trace id's kind is decided by provenance (``build_keys``)."""


def _key_rows(hs: str) -> str:
    """One row per (hop, key column) with a value: ``c`` (index in KEY_COLUMNS), ``kind0``, ``k``, ``real`` (a
    trace id from a trace header), ``fa`` (1 when no earlier column of the hop has the same value, so that
    ``sum(fa)`` counts distinct hops), ``dup`` (an earlier column of the same static kind has the same value) and
    ``teq`` (the hop's trace id has the same value: a duplicate when provenance makes that trace id a request
    id)."""
    parts = []
    for i, (col, kind) in enumerate(KEY_COLUMNS):
        earlier = [c for c, _k in KEY_COLUMNS[:i]]
        fa = " AND ".join(f"NOT coalesce({c} = {col}, false)" for c in earlier) or "true"
        same = [c for c, k in KEY_COLUMNS[1:i] if k == kind]
        dup = " OR ".join(f"coalesce({c} = {col}, false)" for c in same) or "false"
        teq = f"coalesce(tid = {col}, false)" if i and kind == "request_id" else "false"
        real = f"lower(coalesce(tsrc, '')) IN {hs}" if i == 0 else "false"
        parts.append(
            f"SELECT hop_id, {i} AS c, {lit(kind)} AS kind0, {col} AS k, CASE WHEN {real} THEN 1 ELSE 0 END AS real, "
            f"CASE WHEN {fa} THEN 1 ELSE 0 END AS fa, CASE WHEN {dup} THEN 1 ELSE 0 END AS dup, "
            f"CASE WHEN {teq} THEN 1 ELSE 0 END AS teq FROM t_h WHERE {col} IS NOT NULL"
        )
    return " UNION ALL ".join(parts)


def build_keys(run: Runner, opts: CorrelateOptions) -> tuple[int, int]:
    """Create ``t_keys`` (hop_id, kind, k, g1, e, fk): every key of every hop with its kind; ``e`` = 1 on the rows
    that join (the first row of a key on its hop, when the key is on 2..max_fanout hops), ``g1`` the smallest
    hop of the key, ``fk`` = 1 on the first row of a (kind, key) on its hop (so ``sum(fk)`` counts hops).

    Returns (hub keys dropped, placeholder keys split off).
    """
    hs = in_list(HEADER_TRACE_SOURCES, run.dialect)
    rows = _key_rows(hs)
    # NOTE: provenance decides: a "trace id" that is also some hop's request id (or edge id), and never came
    # from a trace header, is a request id logged under a trace key.
    run.create(
        "t_kstat",
        f"""
        SELECT k, sum(fa) AS n, max(CASE WHEN c IN (1, 2) THEN 1 ELSE 0 END) AS idval, max(real) AS realtrace,
               min(hop_id) AS g1
        FROM ({rows}) r GROUP BY k
        """,
    )
    as_rid = "(s.realtrace = 0 AND s.idval = 1)"
    fan = int(opts.max_fanout)
    run.create(
        "t_keys",
        f"""
        SELECT r.hop_id,
               CASE WHEN r.c > 0 THEN r.kind0 WHEN {as_rid} THEN 'request_id' ELSE 'trace_id' END AS kind,
               r.k, s.g1,
               CASE WHEN r.fa = 1 AND s.n >= 2 AND s.n <= {fan} THEN 1 ELSE 0 END AS e,
               CASE WHEN r.dup = 1 OR (r.teq = 1 AND {as_rid}) THEN 0 ELSE 1 END AS fk
        FROM ({rows}) r JOIN t_kstat s ON r.k = s.k
        """,
    )
    hubs = int(run.scalar(f"SELECT count(*) FROM t_kstat WHERE n > {fan}"))
    run.drop("t_kstat")
    placeholders = int(run.scalar("SELECT coalesce(sum(placeholder_keys), 0) FROM t_h"))
    return hubs, placeholders


def propagate(run: Runner, edges: str, opts: CorrelateOptions) -> int:
    """Min-label propagation over a bipartite node-key edge table (hop_id, k); leaves (hop_id, g) in ``t_lbl``.

    Every label is the id of a node of the same component, so a node also takes its label's label (pointer
    jumping): long chains settle in a logarithmic number of rounds. Returns the iterations used.
    """
    run.create("t_lbl", f"SELECT DISTINCT hop_id, hop_id AS g FROM {edges}")
    iterations = 0
    for iterations in range(1, opts.max_iterations + 1):  # noqa: B007
        run.create(
            "t_klbl",
            f"SELECT e.k, min(l.g) AS g FROM {edges} e JOIN t_lbl l ON e.hop_id = l.hop_id GROUP BY e.k",
        )
        run.create(
            "t_lbl_next",
            f"""
            SELECT l.hop_id, least(l.g, coalesce(m.g, l.g), coalesce(j.g, l.g)) AS g
            FROM t_lbl l LEFT JOIN (
                SELECT e.hop_id, min(kl.g) AS g FROM {edges} e JOIN t_klbl kl ON e.k = kl.k GROUP BY e.hop_id
            ) m ON l.hop_id = m.hop_id
            LEFT JOIN t_lbl j ON l.g = j.hop_id
            """,
        )
        changed = int(
            run.scalar("SELECT count(*) FROM t_lbl_next n JOIN t_lbl o ON n.hop_id = o.hop_id WHERE n.g <> o.g")
        )
        run.create("t_lbl", "SELECT hop_id, g FROM t_lbl_next")
        if changed == 0:
            break
    for t in ("t_klbl", "t_lbl_next"):
        run.drop(t)
    return iterations


def components(run: Runner, opts: CorrelateOptions) -> int:
    """Create ``t_comp`` (hop_id, g): g is the smallest hop of the hop's connected component over ``t_keys``.

    One grouping settles most of it: ``l1`` = the smallest ``g1`` over a hop's keys. A hop whose keys have
    different ``g1`` bridges components of that first pass; only those bridges, as edges between labels
    (``l1`` - ``g1``), go through the iterative propagation, and every hop then takes its label's final label.
    Returns the iterations used.
    """
    run.create(
        "t_l1",
        "SELECT hop_id, min(g1) AS l1, max(g1) AS mx FROM t_keys WHERE e = 1 GROUP BY hop_id",
    )
    run.create(
        "t_ledge",
        """
        SELECT DISTINCT l.l1 AS a, k.g1 AS b FROM t_keys k JOIN t_l1 l ON k.hop_id = l.hop_id
        WHERE l.l1 <> l.mx AND k.e = 1 AND k.g1 <> l.l1
        """,
    )
    iterations = 0
    bridged = int(run.scalar("SELECT count(*) FROM t_ledge"))
    if bridged:
        # label b joins label a through key b; every label is also its own key, so both ends meet
        run.create("t_lkeys", "SELECT a AS hop_id, b AS k FROM t_ledge UNION ALL SELECT DISTINCT b AS hop_id, b AS k FROM t_ledge")
        iterations = propagate(run, "t_lkeys", opts)
        final = "coalesce(lb.g, l.l1, h.hop_id)"
        join = "LEFT JOIN t_lbl lb ON l.l1 = lb.hop_id"
    else:
        final, join = "coalesce(l.l1, h.hop_id)", ""
    run.create(
        "t_comp",
        f"""
        SELECT h.hop_id, {final} AS g, false AS heur, h.layer_rank, h.ts, h.dir_rank
        FROM t_h h LEFT JOIN t_l1 l ON h.hop_id = l.hop_id {join}
        """,
    )
    return iterations


def heuristic_edges(run: Runner, opts: CorrelateOptions) -> int:
    """Create ``t_hedges``: unique (time window + client + method + path) matches for hops no id placed.

    A lone hop A (a component of one) joins the component of hop B when B is in another layer, same method and
    path, within ``skew_seconds``, the client matches (same address, or A's client in B's X-Forwarded-For and
    the reverse), B's component has no hop of A's layer/product/direction yet, and the match is unique both ways.
    """
    w = float(opts.skew_seconds)
    # A hop with a joining key is in a component of two or more; the others are alone.
    run.create(
        "t_lone",
        """
        SELECT h.hop_id, h.hop_id AS g, h.layer, h.product, h.direction, h.method, h.path, h.ts, h.client, h.xff,
               h.status
        FROM t_h h LEFT JOIN t_l1 l ON h.hop_id = l.hop_id
        WHERE l.hop_id IS NULL AND h.method IS NOT NULL AND h.path IS NOT NULL AND h.ts IS NOT NULL
        """,
    )
    if not int(run.scalar("SELECT count(*) FROM t_lone")):
        run.create("t_hedges", "SELECT hop_id AS a_id, g AS b_g FROM t_lone WHERE 1 = 0")
        return 0
    # Behind a CDN the origin sees the CDN's address, not the viewer's: the addresses a CDN connects from are
    # learned from the id-joined groups (the client of a non-CDN hop that shares an id with a CDN hop and differs
    # from the viewer's). A hop whose client is such an address may match a CDN hop without a client match, when
    # the two also agree on the status.
    run.create(
        "t_egress",
        """
        SELECT DISTINCT y.client AS addr
        FROM t_comp cx JOIN t_h x ON cx.hop_id = x.hop_id
        JOIN t_comp cy ON cy.g = cx.g AND cy.hop_id <> cx.hop_id
        JOIN t_h y ON cy.hop_id = y.hop_id
        WHERE x.layer = 'cdn' AND y.layer <> 'cdn' AND y.client IS NOT NULL
          AND (x.client IS NULL OR y.client <> x.client)
        """,
    )
    # Time buckets of width w turn the window join into an equi-join on (method, path, bucket).
    run.create(
        "t_hcand",
        f"""
        SELECT a.hop_id AS a_id, a.layer AS a_layer, a.product AS a_product, coalesce(a.direction, '') AS a_dir,
               b.hop_id AS b_id, cb.g AS b_g
        FROM (SELECT l.*, ea.addr IS NOT NULL AS a_egress FROM t_lone l LEFT JOIN t_egress ea ON l.client = ea.addr) a
        JOIN (SELECT h.hop_id, h.layer, h.method, h.path, h.ts, h.client, h.xff, h.status,
                     eb.addr IS NOT NULL AS b_egress,
                     CAST(floor(h.ts / {w}) AS BIGINT) + o.d AS bucket
              FROM t_h h CROSS JOIN (SELECT -1 AS d UNION ALL SELECT 0 UNION ALL SELECT 1) o
              LEFT JOIN t_egress eb ON h.client = eb.addr
              WHERE h.ts IS NOT NULL AND h.method IS NOT NULL) b
          ON a.method = b.method AND a.path = b.path AND CAST(floor(a.ts / {w}) AS BIGINT) = b.bucket
        JOIN t_comp cb ON b.hop_id = cb.hop_id
        WHERE cb.g <> a.g AND a.layer <> b.layer AND abs(a.ts - b.ts) <= {w}
          AND (a.client = b.client
               OR (b.xff IS NOT NULL AND a.client IS NOT NULL AND instr(b.xff, a.client) > 0)
               OR (a.xff IS NOT NULL AND b.client IS NOT NULL AND instr(a.xff, b.client) > 0)
               OR (a.status = b.status AND ((b.layer = 'cdn' AND a.a_egress) OR (a.layer = 'cdn' AND b.b_egress))))
        """,
    )
    # what the candidate components already hold (layer, product, direction)
    run.create(
        "t_hcomp",
        """
        SELECT DISTINCT x.g, y.layer, y.product, coalesce(y.direction, '') AS dir
        FROM t_comp x JOIN t_h y ON x.hop_id = y.hop_id
        WHERE x.g IN (SELECT b_g FROM t_hcand)
        """,
    )
    run.create(
        "t_hcand2",
        """
        SELECT DISTINCT c.a_id, c.a_layer, c.a_product, c.a_dir, c.b_g FROM t_hcand c
        LEFT JOIN t_hcomp x ON x.g = c.b_g AND x.layer = c.a_layer AND x.product = c.a_product AND x.dir = c.a_dir
        WHERE x.g IS NULL
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
    """Run the whole join; leaves ``t_h``, ``t_keys``, ``t_hg`` (hop_id, g, heur, and the depth order columns
    layer_rank, ts, dir_rank) and ``t_group`` (g, size, join_kind, request_key)."""
    opts = opts or CorrelateOptions()
    stats = CorrelationStats()
    stats.hops = build_hop_table(run, source, extra, pre_source)
    stats.hub_keys, stats.placeholder_keys = build_keys(run, opts)
    stats.iterations = components(run, opts)
    if opts.heuristic:
        stats.heuristic_edges = heuristic_edges(run, opts)
    if stats.heuristic_edges:
        # Each match joins the lone hop's label to its component's label, through a private pseudo-key.
        run.create(
            "t_hkeys",
            """
            SELECT a_id AS hop_id, concat('heuristic:', CAST(a_id AS STRING)) AS k FROM t_hedges
            UNION ALL SELECT b_g AS hop_id, concat('heuristic:', CAST(a_id AS STRING)) AS k FROM t_hedges
            """,
        )
        stats.iterations += propagate(run, "t_hkeys", opts)
        run.create(
            "t_hg",
            """
            SELECT c.hop_id, coalesce(l.g, c.g) AS g, he.a_id IS NOT NULL AS heur, c.layer_rank, c.ts, c.dir_rank
            FROM t_comp c LEFT JOIN t_lbl l ON c.g = l.hop_id
            LEFT JOIN (SELECT DISTINCT a_id FROM t_hedges) he ON c.hop_id = he.a_id
            """,
        )
    else:
        run.create("t_hg", "SELECT * FROM t_comp")
    run.drop("t_comp")
    _group_table(run)
    stats.groups = int(run.scalar("SELECT count(*) FROM t_group"))
    if stats.hub_keys:
        stats.notes.append(f"{stats.hub_keys} key value(s) shared by more than {opts.max_fanout} hops were not used")
    return stats


def _group_table(run: Runner) -> None:
    """Per group: size, join label and the request key (the best key: trace id, then request id, then edge id;
    then the key on most of the group's hops; then the smallest)."""
    best = run.dialect.struct_min(("kr", "-n", "k"), 2)
    run.create(
        "t_gkey",
        f"""
        SELECT g, {best} AS request_key,
               sum(CASE WHEN kind = 'trace_id' THEN 1 ELSE 0 END) AS ntrace,
               sum(CASE WHEN kind = 'trace_id' THEN n ELSE 0 END) AS nhops
        FROM (SELECT hg.g, k.kind, k.k, sum(k.fk) AS n,
                     CASE k.kind WHEN 'trace_id' THEN 0 WHEN 'request_id' THEN 1 WHEN 'edge_id' THEN 2 ELSE 3 END AS kr
              FROM t_keys k JOIN t_hg hg ON k.hop_id = hg.hop_id
              GROUP BY hg.g, k.kind, k.k) x
        GROUP BY g
        """,
    )
    run.create(
        "t_group",
        """
        SELECT a.g, a.size,
               CASE WHEN a.size = 1 THEN 'none'
                    WHEN a.heur THEN 'heuristic'
                    WHEN coalesce(gk.ntrace, 0) = 1 AND coalesce(gk.nhops, 0) = a.size THEN 'trace_id'
                    ELSE 'request_id' END AS join_kind,
               coalesce(gk.request_key, concat('hop:', f.file, ':', CAST(h.line AS STRING),
                                               CASE WHEN h.rec > 1 THEN concat('#', CAST(h.rec AS STRING)) ELSE '' END))
                   AS request_key
        FROM (SELECT g, count(*) AS size, bool_or(heur) AS heur, min(hop_id) AS first_hop FROM t_hg GROUP BY g) a
        LEFT JOIN t_gkey gk ON a.g = gk.g
        LEFT JOIN t_h h ON h.hop_id = a.first_hop
        LEFT JOIN t_files f ON h.fidx = f.fidx
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
