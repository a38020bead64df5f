"""`apitrail demo`: scan the bundled example app and trace the bundled multi-hop logs."""

from __future__ import annotations

import sys
from pathlib import Path


def examples_dir() -> Path:
    """The bundled examples: inside the installed wheel, or at the repository root in a checkout."""
    here = Path(__file__).resolve().parent
    for cand in (here / "examples", here.parent.parent / "examples"):
        if (cand / "app").is_dir():
            return cand
    raise FileNotFoundError("the bundled examples are missing from this installation")


def run_demo(fmt: str = "table") -> None:
    from apitrail.config import ApitrailConfig
    from apitrail.output.scan_writers import render_scan
    from apitrail.scan.engine import ScanOptions
    from apitrail.scan.pipeline import run_scan

    examples = examples_dir()
    app_dir = examples / "app"
    result = run_scan(app_dir, ScanOptions(use_cache=False), ApitrailConfig())
    sys.stdout.write(f"== apitrail scan {app_dir}\n")
    sys.stdout.write(render_scan(result, fmt if fmt in ("table", "json", "markdown") else "table"))
    logs = examples / "logs"
    if logs.is_dir():
        try:
            from apitrail.trace.demo import run_trace_demo
        except ImportError:
            return
        sys.stdout.write(f"\n== apitrail trace {logs}\n")
        run_trace_demo(logs, fmt)
