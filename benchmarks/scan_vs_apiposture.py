#!/usr/bin/env python3
"""Benchmark: apitrail scan vs the free ApiPosture 1.0.20 on the same tree, side by side.

Runs on demand (never in CI). ApiPosture is installed into a venv of its own (default
``benchmarks/.venv-apiposture``; created on first use with ``pip install apiposture==1.0.20``).

For each tool it runs N rounds, alternating the tools inside each round so machine noise hits both alike, and
prints the median wall time, the min/max, the peak RSS (children's ru_maxrss) and the ratio apitrail/peer.
apitrail is measured twice: cold (``--no-cache``... and an empty cache dir) and warm (a rescan with the cache
filled by the previous run), the warm/cold ratio is printed too.

    python benchmarks/scan_vs_apiposture.py PATH [--rounds 5] [--venv DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PEER_VERSION = "1.0.20"


def ensure_peer(venv: Path) -> Path:
    exe = venv / "bin" / "apiposture"
    if exe.exists():
        return exe
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", f"apiposture=={PEER_VERSION}"], check=True)
    return exe


def compile_apitrail() -> str:
    """Write apitrail's bytecode, as installing a wheel does (pip compiles every module; the peer's venv has its
    .pyc files). An editable install under PYTHONDONTWRITEBYTECODE=1 would otherwise compile every module from
    source on every run, which is not what users run."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("apitrail")
    if spec is None or not spec.submodule_search_locations:
        return "apitrail not importable here: bytecode not compiled"
    pkg = Path(next(iter(spec.submodule_search_locations)))
    ok = compileall.compile_dir(str(pkg), quiet=1)
    return f"bytecode compiled for {pkg}" if ok else f"bytecode compile reported errors for {pkg}"


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run cmd in a fresh python helper so that its peak RSS is its own."""
    helper = (
        "import resource,subprocess,sys,time,json\n"
        "t=time.perf_counter();p=subprocess.run(sys.argv[1:],capture_output=True,text=True)\n"
        "w=time.perf_counter()-t\n"
        "print(json.dumps({'wall':w,'rss_kib':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
        "'rc':p.returncode,'out_len':len(p.stdout)}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", helper, *cmd], capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--venv", type=Path, default=Path(__file__).resolve().parent / ".venv-apiposture")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-compile", action="store_true",
                    help="do not write apitrail's bytecode first (measures compiling from source on every run)")
    args = ap.parse_args()
    peer = ensure_peer(args.venv)
    bytecode = "bytecode not compiled (--no-compile)" if args.no_compile else compile_apitrail()
    apitrail = shutil.which("apitrail") or sys.executable + " -m apitrail.cli"
    apitrail_cmd = apitrail.split() + ["scan", str(args.path), "--format", "json"]
    out_dir = Path(tempfile.mkdtemp(prefix="apitrail-bench-"))
    runs: dict[str, list[dict[str, float]]] = {"apitrail_cold": [], "apitrail_warm": [], "apiposture": []}
    for i in range(args.rounds):
        cache = out_dir / f"cache-{i}"
        env = {**os.environ, "APITRAIL_CACHE_DIR": str(cache)}
        runs["apitrail_cold"].append(measure(apitrail_cmd, env))
        runs["apitrail_warm"].append(measure(apitrail_cmd, env))
        runs["apiposture"].append(measure([str(peer), "scan", str(args.path), "-o", "json", "-f",
                                           str(out_dir / "peer.json")]))
        shutil.rmtree(cache, ignore_errors=True)
    # counts from one run of each
    ours = json.loads(subprocess.run(apitrail_cmd + ["--no-cache"], capture_output=True, text=True).stdout)
    peer_data = json.loads((out_dir / "peer.json").read_text()) if (out_dir / "peer.json").exists() else {}
    peer_routes = len(peer_data.get("endpoints", peer_data.get("results", {}).get("endpoints", [])) or [])
    summary: dict[str, object] = {"path": str(args.path), "rounds": args.rounds, "cpus": os.cpu_count()}
    for name, rs in runs.items():
        walls = [r["wall"] for r in rs]
        summary[name] = {"median_s": round(statistics.median(walls), 3), "min_s": round(min(walls), 3),
                         "max_s": round(max(walls), 3),
                         "peak_rss_mib": round(max(r["rss_kib"] for r in rs) / 1024, 1)}
    cold = summary["apitrail_cold"]["median_s"]  # type: ignore[index]
    warm = summary["apitrail_warm"]["median_s"]  # type: ignore[index]
    peer_med = summary["apiposture"]["median_s"]  # type: ignore[index]
    summary["ratio_cold_vs_apiposture"] = round(cold / peer_med, 3)
    summary["ratio_warm_vs_cold"] = round(warm / cold, 3)
    summary["routes"] = {"apitrail": len(ours.get("routes", [])), "apiposture": peer_routes}
    summary["bytecode"] = bytecode
    print(f"tree: {args.path}  rounds: {args.rounds}  cpus: {os.cpu_count()}  ({bytecode})")
    print(f"{'tool':<16}{'median s':>10}{'min':>8}{'max':>8}{'peak RSS MiB':>14}")
    for name in runs:
        s = summary[name]
        print(f"{name:<16}{s['median_s']:>10.3f}{s['min_s']:>8.3f}{s['max_s']:>8.3f}{s['peak_rss_mib']:>14.1f}")  # type: ignore[index]
    print(f"cold/apiposture = {summary['ratio_cold_vs_apiposture']}  warm/cold = {summary['ratio_warm_vs_cold']}  "
          f"routes: apitrail {summary['routes']['apitrail']} vs apiposture {peer_routes}")  # type: ignore[index]
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
