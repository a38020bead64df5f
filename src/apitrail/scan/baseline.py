"""Baselines: `apitrail baseline create ROOT -o FILE`, and `--baseline FILE` to report only new findings.

A baseline is versioned JSON: ``{"version": 1, "tool": ..., "created": ..., "rules": [{"id", "name"}],
"results": [{"fingerprint", "rule_id", "file", "route"}]}``. Fingerprints do not contain line numbers, so a
baseline survives code moving around. Findings whose rule was not in the baseline's rule set are always new.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import typer

from apitrail import __version__
from apitrail.errors import UsageError

BASELINE_VERSION = 1

app = typer.Typer(help="Create and inspect finding baselines.", no_args_is_help=True)


def to_baseline(result: Any) -> dict[str, Any]:
    rules = [{"id": getattr(r, "id", ""), "name": getattr(r, "name", "")} for r in result.rules]
    return {
        "version": BASELINE_VERSION,
        "tool": {"name": "apitrail", "version": __version__},
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "rules": sorted(rules, key=lambda r: r["id"]),
        "results": sorted(({"fingerprint": f.fingerprint, "rule_id": f.rule_id, "file": f.location.file,
                            "route": f.route} for f in result.findings if not f.suppressed),
                          key=lambda x: (x["file"], x["rule_id"], x["fingerprint"])),
    }


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read baseline {path}: {exc}") from exc
    if not isinstance(data, dict) or "results" not in data:
        raise UsageError(f"{path} is not an apitrail baseline")
    version = data.get("version")
    if version != BASELINE_VERSION:
        raise UsageError(f"{path}: unsupported baseline version {version!r} (this apitrail reads {BASELINE_VERSION})")
    return data


def filter_baseline(result: Any, path: Path) -> None:
    """Keep only findings that are not in the baseline (suppressed ones are kept as they are)."""
    data = load_baseline(path)
    known = {r.get("fingerprint") for r in data.get("results", [])}
    before = len(result.findings)
    result.findings = [f for f in result.findings if f.fingerprint not in known]
    dropped = before - len(result.findings)
    if dropped:
        result.warnings.append(f"baseline {path.name}: {dropped} known finding(s) not reported")


@app.command("create")
def create(
    root: Path = typer.Argument(Path("."), help="Source tree to scan."),
    output: Path = typer.Option(Path(".apitrail-baseline.json"), "--output", "-o", help="Baseline file to write."),
    config_file: Path | None = typer.Option(None, "--config", help="Config file (default: .apitrail.toml or pyproject)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the facts cache."),
) -> None:
    """Scan ROOT and record every current finding, so later scans with --baseline report only new ones."""
    from apitrail.config import load_config
    from apitrail.output.guard import guard
    from apitrail.scan.engine import ScanOptions
    from apitrail.scan.pipeline import run_scan

    if not root.is_dir():
        raise UsageError(f"not a directory: {root}")
    config = load_config(root, config_file)
    options = ScanOptions(use_cache=not no_cache, max_bytes=config.max_file_bytes, excludes=list(config.exclude))
    result = run_scan(root, options, config)
    text = json.dumps(to_baseline(result), indent=2) + "\n"
    guard(text, "baseline")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    typer.echo(f"apitrail: baseline with {len(to_baseline(result)['results'])} finding(s) written to {output}", err=True)
