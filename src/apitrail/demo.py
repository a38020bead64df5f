"""`apitrail demo`: scan the bundled example app and trace the bundled multi-hop logs."""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent / "examples"


def run_demo(fmt: str = "table") -> None:
    from apitrail.config import ApitrailConfig
    from apitrail.output.scan_writers import render_scan
    from apitrail.scan.engine import ScanOptions
    from apitrail.scan.pipeline import run_scan

    app_dir = EXAMPLES / "app"
    result = run_scan(app_dir, ScanOptions(use_cache=False), ApitrailConfig())
    sys.stdout.write(f"== apitrail scan {app_dir}\n")
    sys.stdout.write(render_scan(result, fmt if fmt in ("table", "json", "markdown") else "table"))
    logs = EXAMPLES / "logs"
    if logs.is_dir():
        try:
            from apitrail.trace.demo import run_trace_demo
        except ImportError:
            return
        sys.stdout.write(f"\n== apitrail trace {logs}\n")
        run_trace_demo(logs, fmt)
