"""scan -> rules -> suppressions/baseline: the whole `apitrail scan` job as one call."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from apitrail.config import ApitrailConfig
from apitrail.output.scan_writers import ScanResult
from apitrail.scan.engine import (
    ScanOptions,
    cyclic_gc_paused,
    discover,
    load_result,
    scan,
    store_result,
    tree_key,
)
from apitrail.scan.rules import run_rules
from apitrail.scan.walk import WalkResult


def run_scan(root: Path, options: ScanOptions, config: ApitrailConfig, baseline: Path | None = None) -> ScanResult:
    with cyclic_gc_paused(freeze_after=True):
        return _run_scan(root, options, config, baseline)


def _run_scan(root: Path, options: ScanOptions, config: ApitrailConfig, baseline: Path | None) -> ScanResult:
    walked = discover(root, options)
    key = ""
    if options.use_cache:
        # an unchanged tree (same contents, config and version) reuses the previous result whole
        # today's date is in the key: suppressions expire by date
        key = tree_key(walked, f"{config.model_dump_json()}\0{dt.date.today().isoformat()}")
        cached = load_result(options.cache_dir, key)
        if isinstance(cached, ScanResult):
            cached.model.root = str(root.resolve())
            if baseline is not None:
                from apitrail.scan.baseline import filter_baseline

                filter_baseline(cached, baseline)
            return cached
    result = _run_uncached(root, options, config, walked)
    if key:
        project = result.model.modules
        result.model.modules = {}
        store_result(options.cache_dir, key, result)
        result.model.modules = project
    if baseline is not None:
        from apitrail.scan.baseline import filter_baseline

        filter_baseline(result, baseline)
    return result


def _run_uncached(root: Path, options: ScanOptions, config: ApitrailConfig, walked: WalkResult) -> ScanResult:
    model = scan(root, options, config, walked)
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
    return result
