"""scan -> rules -> suppressions/baseline: the whole `apitrail scan` job as one call."""

from __future__ import annotations

from pathlib import Path

from apitrail.config import ApitrailConfig
from apitrail.output.scan_writers import ScanResult
from apitrail.scan.engine import ScanOptions, scan
from apitrail.scan.rules import run_rules


def run_scan(root: Path, options: ScanOptions, config: ApitrailConfig, baseline: Path | None = None) -> ScanResult:
    model = scan(root, options, config)
    findings = run_rules(model, config)
    result = ScanResult(model=model, findings=findings)
    try:
        from apitrail.scan.rules._registry import all_rules
    except ImportError:
        pass
    else:
        result.rules = list(all_rules())
    try:
        from apitrail.scan.suppress import apply_suppressions
    except ImportError:
        pass
    else:
        apply_suppressions(result, config, root)
    if baseline is not None:
        from apitrail.scan.baseline import filter_baseline

        filter_baseline(result, baseline)
    return result
