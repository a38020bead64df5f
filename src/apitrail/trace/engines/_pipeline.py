"""The engine-neutral trace pipeline: correlate -> classify -> blind spots, then the trace output records.

Every decision is made in SQL by the runner's engine. This module only fetches the small result tables and
shapes them into the trace output contract (DESIGN.md), sorted deterministically, so that DuckDB and Spark give
byte-identical JSONL.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apitrail.trace.blindspots import BlindSpotOptions, BlindSpotReport, find_blind_spots
from apitrail.trace.classify import classify, hop_columns, raw_extract_sql
from apitrail.trace.correlate import CorrelateOptions, CorrelationStats, correlate
from apitrail.trace.engines._sql import Runner


@dataclass(frozen=True)
class AnalyzeOptions:
    correlate: CorrelateOptions = field(default_factory=CorrelateOptions)
    blind_spots: BlindSpotOptions = field(default_factory=BlindSpotOptions)


@dataclass
class AnalysisResult:
    requests: list[dict[str, Any]]
    stats: CorrelationStats
    blind: BlindSpotReport

    def jsonl_lines(self) -> list[str]:
        return [json.dumps(r, sort_keys=False, separators=(",", ":"), ensure_ascii=False) for r in self.requests]

    def summary(self) -> dict[str, Any]:
        """Requests, classes per layer, top reasons, blind spots and identity coverage."""
        classes: Counter[str] = Counter()
        per_layer: dict[str, Counter[str]] = defaultdict(Counter)
        reasons: Counter[str] = Counter()
        spots: Counter[str] = Counter()
        joins: Counter[str] = Counter()
        for r in self.requests:
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
            "hops": self.stats.hops,
            "requests": len(self.requests),
            "joins": dict(sorted(joins.items())),
            "classes": dict(sorted(classes.items())),
            "classes_per_layer": {k: dict(sorted(v.items())) for k, v in sorted(per_layer.items())},
            "top_reasons": reasons.most_common(10),
            "blind_spots": dict(spots.most_common()),
            "identity_coverage": self.blind.coverage,
            "notes": self.blind.notes + self.stats.notes,
            "gateway_ids": self.blind.gateway_ids,
        }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(float(ts), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def analyze(run: Runner, source: str = "hops", options: AnalyzeOptions | None = None) -> AnalysisResult:
    """Run the whole pipeline over ``source`` (a table with the canonical hop columns)."""
    options = options or AnalyzeOptions()
    stats = correlate(run, source, options.correlate, hop_columns(run.dialect),
                      raw_extract_sql(run.dialect))
    classify(run)
    blind = find_blind_spots(run, options.blind_spots)
    hop_rows = run.rows(
        """
        SELECT g, depth, file, line, layer, product, direction, instance, status, ts, sig, hop_class, hop_reason,
               hop_self, heur, token_ok, method, path
        FROM t_hc
        """
    )
    group_rows = run.rows(
        """
        SELECT gr.g, gr.size, gr.join_kind, gr.request_key, gc.class, gc.reason, gc.fail_depth, gc.masked_by_depth,
               gc.accept_depth, gc.sig, gc.tag, gc.final_status
        FROM t_group gr JOIN t_gc gc ON gr.g = gc.g
        """
    )
    spot_rows = run.rows("SELECT g, spot FROM t_bs")
    return AnalysisResult(assemble(hop_rows, group_rows, spot_rows), stats, blind)


def assemble(
    hop_rows: list[dict[str, Any]], group_rows: list[dict[str, Any]], spot_rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Shape engine rows into trace output records. Group labels (``g``) are engine-internal and never shown."""
    hops_by_g: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for h in hop_rows:
        hops_by_g[h["g"]].append(h)
    spots_by_g: dict[Any, set[str]] = defaultdict(set)
    for s in spot_rows:
        spots_by_g[s["g"]].add(s["spot"])
    out: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for g in group_rows:
        hops = sorted(hops_by_g[g["g"]], key=lambda h: int(h["depth"]))
        by_depth = {int(h["depth"]): h for h in hops}
        failure: dict[str, Any] = {"class": g["class"] or "unknown", "layer": None, "reason": None}
        if g["fail_depth"] is not None:
            f = by_depth[int(g["fail_depth"])]
            failure.update(
                layer=f["layer"],
                product=f["product"] or None,
                reason=g["reason"],
                status=f["status"],
                hop={"file": f["file"], "line": int(f["line"])},
                evidence=_evidence(g, f, by_depth),
            )
        record = {
            "request_key": g["request_key"],
            "join": g["join_kind"],
            "hops": [_hop_out(h) for h in hops],
            "failure": failure,
            "blind_spots": sorted(spots_by_g.get(g["g"], ())),
        }
        first = hops[0]
        order = (first["ts"] if first["ts"] is not None else float("inf"), first["file"], int(first["line"]))
        out.append((order, record))
    out.sort(key=lambda x: x[0])
    return [r for _, r in out]


def _hop_out(h: dict[str, Any]) -> dict[str, Any]:
    hop: dict[str, Any] = {
        "layer": h["layer"],
        "product": h["product"] or None,
        "status": None if h["status"] is None else int(h["status"]),
        "source": {"file": h["file"], "line": int(h["line"])},
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


def _evidence(g: dict[str, Any], f: dict[str, Any], by_depth: dict[int, dict[str, Any]]) -> list[str]:
    where = f"{f['file']}:{int(f['line'])}"
    ev = [f"{f['sig'] or 'no-signal'}: {f['layer']}/{f['product'] or '?'} status={f['status']}"
          f"{' reason=' + str(f['hop_reason']) if f['hop_reason'] else ''} "
          f"({'produced the status itself' if f['hop_self'] else 'deepest error hop'}) at {where}"]
    if g["masked_by_depth"] is not None:
        m = by_depth[int(g["masked_by_depth"])]
        ev.append(f"masked: surfaced as {m['status']} at {m['layer']}/{m['product'] or '?'} "
                  f"{m['file']}:{int(m['line'])}")
    if g["class"] == "token_exchange" and g["accept_depth"] is not None:
        a = by_depth[int(g["accept_depth"])]
        ev.append(f"token accepted upstream at {a['layer']}/{a['product'] or '?'} {a['file']}:{int(a['line'])}")
    return ev


__all__ = ["AnalysisResult", "AnalyzeOptions", "analyze", "assemble"]
