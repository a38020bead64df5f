"""Rule discovery: every module in this package that defines ``RULE`` and ``check`` is a rule.

There is no second list to keep in sync (detect-secrets style); meta-tests check unique ids, docs and fixtures.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType
from typing import Any

from apitrail.findings import Finding
from apitrail.scan.model import AppModel
from apitrail.scan.rules._base import RuleMeta, register_module


@cache
def _rule_modules() -> tuple[ModuleType, ...]:
    import apitrail.scan.rules as pkg

    found = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        meta = getattr(mod, "RULE", None)
        if isinstance(meta, RuleMeta) and callable(getattr(mod, "check", None)):
            register_module(meta, mod.__name__)
            found.append(mod)
    return tuple(found)


def all_rules() -> list[RuleMeta]:
    return [m.RULE for m in _rule_modules()]


def rule_module(rule: str) -> ModuleType | None:
    for m in _rule_modules():
        if rule in (m.RULE.id, m.RULE.name):
            return m
    return None


def _disabled(config: Any) -> set[str]:
    policy = getattr(config, "policy", None)
    return set(getattr(policy, "disable", []) or [])


def run_all(model: AppModel, config: Any = None) -> list[Finding]:
    """Run every enabled rule; a failing rule is reported in model.errors, never raised."""
    from apitrail.scan.model import ScanError

    disabled = _disabled(config)
    out: list[Finding] = []
    for mod in _rule_modules():
        meta: RuleMeta = mod.RULE
        if {meta.id, meta.name, meta.category} & disabled:
            continue
        try:
            out.extend(mod.check(model, config))
        except Exception as exc:  # noqa: BLE001 - one broken rule must not hide the others
            model.errors.append(ScanError("<rules>", f"{meta.id} failed: {type(exc).__name__}: {exc}"))
    # one finding per problem: the same fingerprint twice is one finding
    seen: set[str] = set()
    unique = []
    for f in sorted(out, key=lambda f: (f.location.file, f.location.line, f.rule_id)):
        if f.fingerprint in seen:
            continue
        seen.add(f.fingerprint)
        unique.append(f)
    return unique


__all__ = ["all_rules", "rule_module", "run_all"]
