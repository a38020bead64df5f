"""The engine-neutral trace pipeline: correlate -> classify -> blind spots, then the trace output records.

Every decision is made in SQL by the runner's engine. This module shapes the results into the trace output
contract (DESIGN.md) so that DuckDB and Spark give byte-identical JSONL. The output is streamed: the engine sorts
the hops by request group (``t_out`` numbers the groups in output order) and Python builds the records of one
batch of hops at a time, so memory does not grow with the number of hops. The summary is aggregated in SQL.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apitrail.trace.blindspots import BlindSpotOptions, BlindSpotReport, find_blind_spots
from apitrail.trace.classify import classify, hop_columns, raw_extract_sql
from apitrail.trace.correlate import CorrelateOptions, CorrelationStats, correlate
from apitrail.trace.engines._sql import Runner, lit

BATCH_ROWS = 50_000
"""Hop rows fetched from the engine per batch (a batch's records are built, written and dropped together)."""

HOP_OUT = ("depth", "file", "line", "rec", "layer", "product", "direction", "status", "ts", "sig", "hop_class",
           "hop_reason", "hop_self", "heur", "method", "path")
"""``t_hc`` columns the trace output reads."""

GROUP_OUT = ("request_key", "join_kind", "class", "reason", "fail_depth", "masked_by_depth", "accept_depth", "spots")
"""``t_out`` columns of a request group, carried on the group's first hop row only."""


DONE_TABLES = ("t_h", "t_hg", "t_keys", "t_files", "t_l1", "t_ledge", "t_lone", "t_gkey", "t_gtrace", "t_filetrace",
               "t_fpstat", "t_fpdrift", "t_tsmode", "t_sig", "t_hcand", "t_hcand2", "t_hcomp", "t_hedges",
               "t_egress")
"""Work tables of correlate, classify and blind spots that the output does not read: dropped before it, so that
the engine's memory goes to the output sort (``t_hc``, ``t_group``, ``t_gc`` and ``t_bs`` stay)."""


@dataclass(frozen=True)
class AnalyzeOptions:
    correlate: CorrelateOptions = field(default_factory=CorrelateOptions)
    blind_spots: BlindSpotOptions = field(default_factory=BlindSpotOptions)


class AnalysisResult:
    """The analysed store: records are streamed from the engine's work tables, in output order.

    The tables live as long as the engine session (for DuckDB, the store connection): call :meth:`materialize`
    before closing it to keep the records and the summary in memory (small inputs, tests)."""

    def __init__(self, run: Runner | None, stats: CorrelationStats, blind: BlindSpotReport,
                 requests: list[dict[str, Any]] | None = None) -> None:
        self.run = run
        self.stats = stats
        self.blind = blind
        self._requests = requests
        self._summary: dict[str, Any] | None = None

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every record in memory: for small inputs and tests; writers use :meth:`iter_batches`."""
        if self._requests is None:
            self._requests = [r for batch in self.iter_batches() for r in batch]
        return self._requests

    def materialize(self) -> AnalysisResult:
        """Fetch the records and the summary now, so they outlive the engine session."""
        self.summary()
        _ = self.requests
        return self

    def _runner(self) -> Runner:
        if self.run is None:
            raise RuntimeError("the analysis tables are gone: materialize() the result before closing the store")
        return self.run

    def iter_batches(self, batch_rows: int = BATCH_ROWS, only: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """The records in output order, a list per batch of about ``batch_rows`` hops (``only``: one group by
        its position ``ord`` in the output)."""
        if self._requests is not None and only is None:
            for i in range(0, len(self._requests), max(1, batch_rows // 4)):
                yield self._requests[i:i + max(1, batch_rows // 4)]
            return
        hop_cols = ", ".join(f"h.{c}" for c in HOP_OUT)
        group_cols = ", ".join(f"CASE WHEN h.depth = 1 THEN o.{c} END AS {c}" for c in GROUP_OUT)
        where = "" if only is None else f"WHERE o.ord = {int(only)}"
        sql = (f"SELECT o.ord, {hop_cols}, {group_cols} FROM t_hc h JOIN t_out o ON h.g = o.g {where} "
               "ORDER BY o.ord, h.depth")
        group: dict[str, Any] | None = None
        hops: list[dict[str, Any]] = []
        for cols in self._runner().stream(sql, batch_rows):
            out: list[dict[str, Any]] = []
            gvals = [cols[c] for c in GROUP_OUT]
            for i, row in enumerate(zip(*(cols[c] for c in HOP_OUT), strict=True)):
                h = dict(zip(HOP_OUT, row, strict=True))
                if h["depth"] == 1:
                    if group is not None:
                        out.append(record(group, hops))
                    group = {c: v[i] for c, v in zip(GROUP_OUT, gvals, strict=True)}
                    hops = []
                hops.append(h)
            if out:
                yield out
        if group is not None:
            yield [record(group, hops)]

    def jsonl_lines(self) -> list[str]:
        return [jsonl_line(r) for r in self.requests]

    def find(self, key: str) -> dict[str, Any] | None:
        """A request by its key (case-insensitive, unique prefix allowed) or by one of its hops ``file:line`` (or
        ``file:line#record``, see :func:`hop_ref`): the first match in output order, as :func:`find_request` over
        all records."""
        if self._requests is not None:
            return find_request(self._requests, key)
        run = self._runner()
        d = run.dialect
        k = key.strip().lower()
        ord_ = run.scalar(f"SELECT min(ord) FROM t_out WHERE lower(request_key) = {lit(k, d)}")
        if ord_ is None:
            ref = (f"concat(h.file, ':', {d.to_str('h.line')}, "
                   f"CASE WHEN h.rec > 1 THEN concat('#', {d.to_str('h.rec')}) ELSE '' END)")
            ord_ = run.scalar(
                f"SELECT min(o.ord) FROM t_hc h JOIN t_out o ON h.g = o.g WHERE {ref} = {lit(key, d)} "
                f"OR right({ref}, {len(key) + 1}) = {lit('/' + key, d)}")
        if ord_ is None and k:
            n, first = (run.rows(f"SELECT count(*) AS n, min(ord) AS o FROM t_out "
                                 f"WHERE substr(lower(request_key), 1, {len(k)}) = {lit(k, d)}")[0].values())
            ord_ = first if n == 1 else None
        if ord_ is None:
            return None
        return next((r for batch in self.iter_batches(only=int(ord_)) for r in batch), None)

    def summary(self) -> dict[str, Any]:
        """Requests, classes per layer, top reasons, blind spots and identity coverage (aggregated in SQL; ties
        in the rankings go to the first request in output order, as a counter over the records would)."""
        if self._summary is not None:
            return self._summary
        if self._requests is not None:
            return summarize(self._requests, self.stats, self.blind)
        run = self._runner()
        cls = "coalesce(nullif(class, ''), 'unknown')"
        joins = run.rows("SELECT join_kind AS k, count(*) AS n FROM t_out GROUP BY join_kind")
        classes = run.rows(f"SELECT {cls} AS k, count(*) AS n FROM t_out GROUP BY {cls}")
        per_layer = run.rows(f"SELECT coalesce(nullif(fail_layer, ''), '?') AS layer, {cls} AS k, count(*) AS n FROM t_out "
                             f"WHERE {cls} <> 'none' GROUP BY coalesce(nullif(fail_layer, ''), '?'), {cls}")
        reasons = run.rows(
            f"SELECT concat(fail_layer, ': ', reason) AS k, count(*) AS n, min(ord) AS first FROM t_out "
            f"WHERE {cls} <> 'none' AND fail_depth IS NOT NULL AND reason IS NOT NULL AND reason <> '' "
            f"GROUP BY concat(fail_layer, ': ', reason) ORDER BY n DESC, first LIMIT 10")
        spots = run.rows("SELECT b.spot AS k, count(*) AS n, min(o.ord) AS first FROM t_bs b "
                         "JOIN t_out o ON b.g = o.g GROUP BY b.spot ORDER BY n DESC, first, k")
        per: dict[str, dict[str, int]] = defaultdict(dict)
        for r in per_layer:
            per[r["layer"]][r["k"]] = int(r["n"])
        self._summary = {
            "hops": self.stats.hops,
            "requests": int(run.scalar("SELECT count(*) FROM t_out")),
            "joins": {r["k"]: int(r["n"]) for r in sorted(joins, key=lambda r: r["k"])},
            "classes": {r["k"]: int(r["n"]) for r in sorted(classes, key=lambda r: r["k"])},
            "classes_per_layer": {k: dict(sorted(v.items())) for k, v in sorted(per.items())},
            "top_reasons": [(r["k"], int(r["n"])) for r in reasons],
            "blind_spots": {r["k"]: int(r["n"]) for r in spots},
            "identity_coverage": self.blind.coverage,
            "notes": self.blind.notes + self.stats.notes,
            "gateway_ids": self.blind.gateway_ids,
        }
        return self._summary


def summarize(records: list[dict[str, Any]], stats: CorrelationStats, blind: BlindSpotReport) -> dict[str, Any]:
    """The summary of records in memory: the reference the SQL aggregation of :meth:`AnalysisResult.summary`
    must agree with."""
    from collections import Counter

    classes: Counter[str] = Counter()
    per_layer: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: Counter[str] = Counter()
    spots: Counter[str] = Counter()
    joins: Counter[str] = Counter()
    for r in records:
        f = r["failure"]
        classes[f["class"]] += 1
        joins[r["join"]] += 1
        if f["class"] != "none":
            per_layer[f.get("layer") or "?"][f["class"]] += 1
            if f.get("reason"):
                reasons[f"{f.get('layer')}: {f['reason']}"] += 1
        for s in r["blind_spots"]:
            spots[s] += 1
    return {
        "hops": stats.hops,
        "requests": len(records),
        "joins": dict(sorted(joins.items())),
        "classes": dict(sorted(classes.items())),
        "classes_per_layer": {k: dict(sorted(v.items())) for k, v in sorted(per_layer.items())},
        "top_reasons": reasons.most_common(10),
        "blind_spots": dict(spots.most_common()),
        "identity_coverage": blind.coverage,
        "notes": blind.notes + stats.notes,
        "gateway_ids": blind.gateway_ids,
    }


def jsonl_line(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=False, separators=(",", ":"), ensure_ascii=False)


def source_out(file: str, line: Any, rec: Any) -> dict[str, Any]:
    """The ``source`` object of a hop in the trace output: ``{"file", "line"}``, and ``"record"`` only for the 2nd
    and later records of a line (absent means record 1, so single-record output is unchanged)."""
    src: dict[str, Any] = {"file": file, "line": int(line)}
    if rec is not None and int(rec) > 1:
        src["record"] = int(rec)
    return src


def hop_ref(source: dict[str, Any]) -> str:
    """A hop's reference ``file:line``, or ``file:line#record`` for the 2nd and later records of a line."""
    rec = int(source.get("record") or 1)
    return f"{source['file']}:{source['line']}" + (f"#{rec}" if rec > 1 else "")


def find_request(records: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """A request by its key (case-insensitive, unique prefix allowed) or by one of its hops ``file:line`` (or
    ``file:line#record``)."""
    k = key.strip().lower()
    exact = [r for r in records if r["request_key"].lower() == k]
    if exact:
        return exact[0]
    for r in records:
        for h in r["hops"]:
            ref = hop_ref(h["source"])
            if ref == key or ref.endswith("/" + key):
                return r
    prefix = [r for r in records if r["request_key"].lower().startswith(k)]
    return prefix[0] if len(prefix) == 1 else None


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(float(ts), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def analyze(run: Runner, source: str = "hops", options: AnalyzeOptions | None = None) -> AnalysisResult:
    """Run the whole pipeline over ``source`` (a table with the canonical hop columns); the records are read
    from the result as a stream."""
    options = options or AnalyzeOptions()
    stats = correlate(run, source, options.correlate, hop_columns(run.dialect),
                      raw_extract_sql(run.dialect))
    classify(run)
    blind = find_blind_spots(run, options.blind_spots)
    for t in DONE_TABLES:
        run.drop(t)
    d = run.dialect
    run.create("t_ofirst", "SELECT g, ts, file, line, rec FROM t_hc WHERE depth = 1")
    run.create("t_ospots", f"SELECT g, {d.sorted_list('spot')} AS spots FROM t_bs GROUP BY g")
    # NOTE: the output order is (first hop's time, file, line, record); g only breaks ties, which (file, line,
    # record) never leaves, so the order does not depend on the engine.
    run.create(
        "t_out",
        """
        SELECT gr.g, gr.join_kind, gr.request_key, gc.class, gc.reason, gc.fail_depth, gc.masked_by_depth,
               gc.accept_depth, s.spots, fh.layer AS fail_layer,
               row_number() OVER (ORDER BY h1.ts ASC NULLS LAST, h1.file ASC, h1.line ASC, h1.rec ASC, gr.g ASC)
                   AS ord
        FROM t_group gr
        JOIN t_gc gc ON gr.g = gc.g
        JOIN t_ofirst h1 ON h1.g = gr.g
        LEFT JOIN t_hc fh ON fh.g = gr.g AND fh.depth = gc.fail_depth
        LEFT JOIN t_ospots s ON s.g = gr.g
        """,
    )
    run.drop("t_ofirst")
    run.drop("t_ospots")
    return AnalysisResult(run, stats, blind)


def assemble(
    hop_rows: list[dict[str, Any]], group_rows: list[dict[str, Any]], spot_rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Shape whole engine result sets into trace output records, all in memory: the reference that the streamed
    :meth:`AnalysisResult.iter_batches` must agree with. Group labels (``g``) are engine-internal, never shown."""
    hops_by_g: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for h in hop_rows:
        hops_by_g[h["g"]].append(h)
    spots_by_g: dict[Any, set[str]] = defaultdict(set)
    for s in spot_rows:
        spots_by_g[s["g"]].add(s["spot"])
    out: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for g in group_rows:
        hops = sorted(hops_by_g[g["g"]], key=lambda h: int(h["depth"]))
        rec = record({**g, "spots": sorted(spots_by_g.get(g["g"], ()))}, hops)
        first = hops[0]
        out.append(((first["ts"] if first["ts"] is not None else float("inf"), first["file"], int(first["line"]),
                     int(first.get("rec") or 1)), rec))
    out.sort(key=lambda x: x[0])
    return [r for _, r in out]


def record(g: dict[str, Any], hops: list[dict[str, Any]]) -> dict[str, Any]:
    """One trace output record from its group row and its hop rows in depth order."""
    by_depth = {int(h["depth"]): h for h in hops}
    failure: dict[str, Any] = {"class": g["class"] or "unknown", "layer": None, "reason": None}
    if g["fail_depth"] is not None:
        f = by_depth[int(g["fail_depth"])]
        failure.update(
            layer=f["layer"],
            product=f["product"] or None,
            reason=g["reason"],
            status=f["status"],
            hop=source_out(f["file"], f["line"], f.get("rec")),
            evidence=_evidence(g, f, by_depth),
        )
    return {
        "request_key": g["request_key"],
        "join": g["join_kind"],
        "hops": [_hop_out(h) for h in hops],
        "failure": failure,
        "blind_spots": list(g["spots"] or ()),
    }
def _hop_out(h: dict[str, Any]) -> dict[str, Any]:
    hop: dict[str, Any] = {
        "layer": h["layer"],
        "product": h["product"] or None,
        "status": None if h["status"] is None else int(h["status"]),
        "source": source_out(h["file"], h["line"], h.get("rec")),
    }
    if h["direction"]:
        hop["direction"] = h["direction"]
    if h["method"]:
        hop["method"] = h["method"]
    if h["path"]:
        hop["path"] = h["path"]
    if h["ts"] is not None:
        hop["timestamp"] = _iso(h["ts"])
    if h["hop_class"] and h["hop_class"] != "none" and h["status"] is not None and (
        int(h["status"]) >= 400 or int(h["status"]) == 0
    ):
        hop["class"] = h["hop_class"]
        if h["hop_reason"]:
            hop["reason"] = h["hop_reason"]
    if h["heur"]:
        hop["join"] = "heuristic"
    return hop


def _ref(h: dict[str, Any]) -> str:
    return hop_ref(source_out(h["file"], h["line"], h.get("rec")))


def _evidence(g: dict[str, Any], f: dict[str, Any], by_depth: dict[int, dict[str, Any]]) -> list[str]:
    where = _ref(f)
    ev = [f"{f['sig'] or 'no-signal'}: {f['layer']}/{f['product'] or '?'} status={f['status']}"
          f"{' reason=' + str(f['hop_reason']) if f['hop_reason'] else ''} "
          f"({'produced the status itself' if f['hop_self'] else 'deepest error hop'}) at {where}"]
    if g["masked_by_depth"] is not None:
        m = by_depth[int(g["masked_by_depth"])]
        ev.append(f"masked: surfaced as {m['status']} at {m['layer']}/{m['product'] or '?'} "
                  f"{_ref(m)}")
    if g["class"] == "token_exchange" and g["accept_depth"] is not None:
        a = by_depth[int(g["accept_depth"])]
        ev.append(f"token accepted upstream at {a['layer']}/{a['product'] or '?'} {_ref(a)}")
    return ev


__all__ = ["AnalysisResult", "AnalyzeOptions", "analyze", "assemble", "find_request", "hop_ref", "jsonl_line",
           "record", "source_out", "summarize"]
