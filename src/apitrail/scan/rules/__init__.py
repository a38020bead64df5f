"""Scan rules: one module per rule, discovered automatically (see _registry)."""

from __future__ import annotations

from typing import Any

from apitrail.findings import Finding
from apitrail.scan.model import AppModel


def run_rules(model: AppModel, config: Any = None) -> list[Finding]:
    """Run every registered rule on the linked model. Filled in by the rules engine."""
    try:
        from apitrail.scan.rules._registry import run_all
    except ImportError:
        return []
    return run_all(model, config)
