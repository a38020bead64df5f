"""The trace half of `apitrail demo`: analyse the bundled multi-hop logs in an in-memory DuckDB store."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _format_specs(logs: Path) -> list[str]:
    """User formats the example declares in `formats.txt` (one `GLOB=KIND:@CONFIG` per line, paths relative)."""
    spec_file = logs / "formats.txt"
    if not spec_file.is_file():
        return []
    specs = []
    for line in spec_file.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        glob, _, rest = line.partition("=")
        kind, _, config = rest.partition(":@")
        specs.append(f"{glob}={kind}:@{logs / config}" if config else line)
    return specs


def run_trace_demo(logs: Path, fmt: str = "table") -> None:
    from apitrail.output.guard import guard
    from apitrail.trace.analyze_cli import analyze_paths, render_summary

    files = sorted(str(p) for p in logs.iterdir() if p.suffix in (".log", ".jsonl", ".json"))
    records, result = analyze_paths(files, log_format=_format_specs(logs))
    if fmt == "json":
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    else:
        text = render_summary(result)
    sys.stdout.write(guard(text, "demo output"))
