"""Score the trace analysis against the multi-hop scenario ground truth (tests/fixtures/trace/scenarios/*/truth.yaml).

    python benchmarks/score_trace.py [SCENARIO_DIR ...] [--engine duckdb|spark] [--json]

Per truth request, the predicted request group is the one that contains the request's first hop line.

* class accuracy: the group's ``failure.class`` equals the truth class;
* hop accuracy: the group's failing hop (file:line) equals the truth failing hop (both absent for ``none``);

Hop references are ``file:line``, or ``file:line#record`` for a record after the first of a line that holds several
(``source.record``; ``#1`` may be written and means the same as no suffix).

* join exactness: the group's hop set equals the truth hop set exactly *and* the ``join`` label matches;
* blind spots: micro precision and recall of the blind-spot strings the truth lists (``missing_identity`` strings
  are compared in full).

Targets (issue 6): class >= 0.95, hop >= 0.9, join >= 0.98.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "tests" / "fixtures" / "trace" / "scenarios"
TARGETS = {"class_accuracy": 0.95, "hop_accuracy": 0.9, "join_exactness": 0.98}


@dataclass
class Score:
    requests: int = 0
    class_ok: int = 0
    hop_ok: int = 0
    join_ok: int = 0
    spots_tp: int = 0
    spots_fp: int = 0
    spots_fn: int = 0
    misses: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: Score) -> None:
        for name in ("requests", "class_ok", "hop_ok", "join_ok", "spots_tp", "spots_fp", "spots_fn"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.misses.extend(other.misses)

    def metrics(self) -> dict[str, float]:
        n = max(self.requests, 1)
        tp, fp, fn = self.spots_tp, self.spots_fp, self.spots_fn
        return {
            "requests": self.requests,
            "class_accuracy": round(self.class_ok / n, 4),
            "hop_accuracy": round(self.hop_ok / n, 4),
            "join_exactness": round(self.join_ok / n, 4),
            "blind_spot_precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
            "blind_spot_recall": round(tp / (tp + fn), 4) if tp + fn else 1.0,
        }


def scenario_dirs(paths: list[str] | None = None) -> list[Path]:
    if paths:
        return [Path(p) for p in paths]
    return sorted(p.parent for p in SCENARIOS.glob("*/truth.yaml"))


def load_truth(directory: Path) -> dict[str, Any]:
    return yaml.safe_load((directory / "truth.yaml").read_text())


def log_files(directory: Path) -> list[Path]:
    """The scenario's log files (truth, builders and log-format config files excluded)."""
    skip_suffix = (".yaml", ".py", ".conf", ".format", ".json", ".md")
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith(("_", "."))
                  and not p.name.endswith(skip_suffix))


def analyze_scenario(directory: Path, engine: str = "duckdb") -> list[dict[str, Any]]:
    """Ingest and analyze one scenario; returns the trace output records with file paths relative to it."""
    from apitrail.trace.analyze_cli import analyze_paths

    truth = load_truth(directory)
    ing = truth.get("ingest") or {}
    log_format = [spec.replace(":@", f":@{directory}/") for spec in ing.get("log_format") or []]
    records, _ = analyze_paths([str(p) for p in log_files(directory)], log_format=log_format,
                               layer=list(ing.get("layer") or []), format_name=list(ing.get("format_name") or []),
                               engine=engine)
    prefix = str(directory) + "/"
    for r in records:
        for h in r["hops"]:
            h["source"]["file"] = h["source"]["file"].removeprefix(prefix)
        hop = r["failure"].get("hop")
        if hop:
            hop["file"] = hop["file"].removeprefix(prefix)
    return records


def hop_ref(source: dict[str, Any]) -> str:
    """``file:line``, or ``file:line#record`` for the 2nd and later records of a line (as ``trace explain`` takes)."""
    rec = int(source.get("record") or 1)
    return f"{source['file']}:{source['line']}" + (f"#{rec}" if rec > 1 else "")


def norm_ref(ref: str) -> str:
    """A truth hop reference in the form :func:`hop_ref` gives (``file:line#1`` is ``file:line``)."""
    base, sep, rec = ref.rpartition("#")
    return base if sep and rec.strip() == "1" and ":" in base else ref


def score_records(truth: dict[str, Any], records: list[dict[str, Any]]) -> Score:
    score = Score()
    by_hop: dict[str, dict[str, Any]] = {}
    for r in records:
        for h in r["hops"]:
            by_hop[hop_ref(h["source"])] = r
    for t in truth["requests"]:
        score.requests += 1
        want_hops = sorted(norm_ref(h) for h in t["hops"])
        group = by_hop.get(norm_ref(t["hops"][0]))
        if group is None:
            score.misses.append({"id": t["id"], "problem": "first hop not found in the output"})
            score.spots_fn += len(t.get("blind_spots") or [])
            continue
        got_hops = sorted(hop_ref(h["source"]) for h in group["hops"])
        fail = group["failure"]
        got_fail = hop_ref(fail["hop"]) if fail.get("hop") else None
        want_fail = norm_ref(t["failing"]["hop"]) if t.get("failing") else None
        problems = []
        if fail["class"] == t["class"]:
            score.class_ok += 1
        else:
            problems.append(f"class {fail['class']} != {t['class']}")
        if got_fail == want_fail:
            score.hop_ok += 1
        else:
            problems.append(f"failing hop {got_fail} != {want_fail}")
        if got_hops == want_hops and group["join"] == t["join"]:
            score.join_ok += 1
        else:
            problems.append(f"join {group['join']} {got_hops} != {t['join']} {want_hops}")
        want_spots, got_spots = set(t.get("blind_spots") or []), set(group["blind_spots"])
        score.spots_tp += len(want_spots & got_spots)
        score.spots_fp += len(got_spots - want_spots)
        score.spots_fn += len(want_spots - got_spots)
        if want_spots != got_spots:
            problems.append(f"blind spots {sorted(got_spots)} != {sorted(want_spots)}")
        if problems:
            score.misses.append({"id": t["id"], "problems": problems})
    return score


def score_all(dirs: list[Path] | None = None, engine: str = "duckdb") -> tuple[Score, dict[str, Score]]:
    total = Score()
    per: dict[str, Score] = {}
    for d in dirs or scenario_dirs():
        s = score_records(load_truth(d), analyze_scenario(d, engine))
        per[d.name] = s
        total.add(s)
    return total, per


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="*")
    ap.add_argument("--engine", default="duckdb", choices=("duckdb", "spark"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    total, per = score_all([Path(d) for d in args.dirs] or None, args.engine)
    out = {"total": total.metrics(), "targets": TARGETS,
           "scenarios": {k: v.metrics() for k, v in per.items()}, "misses": total.misses}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for name, s in per.items():
            print(f"{name:28s} {s.metrics()}")
        print(f"{'TOTAL':28s} {total.metrics()}")
        for m in total.misses:
            print("  miss:", m)
    ok = all(out["total"][k] >= v for k, v in TARGETS.items())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
