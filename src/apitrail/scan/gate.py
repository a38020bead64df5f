"""The CI gate: which findings fail the run (DESIGN.md exit codes).

0 = done, nothing at or over --fail-on; 1 = findings at or over --fail-on; 3 = incomplete under --strict.
"""

from __future__ import annotations

from apitrail.config import ApitrailConfig
from apitrail.findings import Finding, Severity


def failing_findings(findings: list[Finding], fail_on: str | None, config: ApitrailConfig) -> list[Finding]:
    """Active findings that fail the gate: zero-tolerance rules always, warn rules never, others by severity."""
    threshold = Severity.parse(fail_on) if fail_on else None
    zero = set(config.policy.zero_tolerance)
    warn = set(config.policy.warn)
    out = []
    for f in findings:
        if f.suppressed:
            continue
        ids = {f.rule_id, f.rule_name, f.category}
        if ids & zero:
            out.append(f)
        elif ids & warn:
            continue
        elif threshold is not None and f.severity >= threshold:
            out.append(f)
    return out
