"""Suppressions: inline comments and config entries, each with a reason and an optional expiry.

Inline, on the finding's line or the line above it::

    # apitrail: ignore[APT-BOLA-001] reason="tenant checked in gateway" until=2027-01-31

A suppression without a reason is not honoured (warning). An expired one is not honoured either: the finding
is active again and a warning names the expired entry. Config entries (``[[tool.apitrail.suppressions]]``)
require a reason by schema and may also carry ``until``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from pathlib import Path
from typing import Any

INLINE = re.compile(r"#\s*apitrail:\s*ignore\[([^\]]+)\](.*)$")
REASON = re.compile(r"reason\s*=\s*\"([^\"]*)\"|reason\s*=\s*'([^']*)'")
UNTIL = re.compile(r"until\s*=\s*(\d{4}-\d{2}-\d{2})")


def _matches(rule_ref: str, finding: Any) -> bool:
    ref = rule_ref.strip()
    return ref in ("*", "all") or ref in (finding.rule_id, finding.rule_name, finding.category)


def _inline(root: Path, finding: Any, cache: dict[str, list[str]]) -> tuple[str, str, dt.date | None] | None:
    """(rules, reason, until) of an inline suppression on the finding's line or the line above."""
    rel = finding.location.file
    if rel not in cache:
        try:
            cache[rel] = (root / rel).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            cache[rel] = []
    lines = cache[rel]
    for ln in (finding.location.line, finding.location.line - 1):
        if 1 <= ln <= len(lines):
            m = INLINE.search(lines[ln - 1])
            if m:
                rest = m.group(2)
                r = REASON.search(rest)
                u = UNTIL.search(rest)
                until = dt.date.fromisoformat(u.group(1)) if u else None
                return m.group(1), (r.group(1) or r.group(2) or "") if r else "", until
    return None


def apply_suppressions(result: Any, config: Any, root: Path, today: dt.date | None = None) -> None:
    """Mark suppressed findings (reason in `finding.suppressed`) and add warnings for invalid or expired ones."""
    today = today or dt.date.today()
    cache: dict[str, list[str]] = {}
    for f in result.findings:
        hit = _inline(root, f, cache)
        if hit is not None:
            rules, reason, until = hit
            if any(_matches(r, f) for r in rules.split(",")):
                where = f"{f.location.file}:{f.location.line}"
                if not reason.strip():
                    result.warnings.append(f"{where}: suppression of {f.rule_id} has no reason; not honoured")
                elif until is not None and until < today:
                    result.warnings.append(f"{where}: suppression of {f.rule_id} expired on {until.isoformat()}; "
                                           "finding is active again")
                else:
                    f.suppressed = f"inline: {reason}"
                    continue
        for s in getattr(config, "suppressions", []) or []:
            if not _matches(s.rule, f):
                continue
            if not fnmatch.fnmatch(f.location.file, s.path):
                continue
            if s.route and not fnmatch.fnmatch(f.route, s.route):
                continue
            if s.until is not None and s.until < today:
                result.warnings.append(f"config suppression of {s.rule} for {s.path} expired on "
                                       f"{s.until.isoformat()}; finding {f.location.file}:{f.location.line} is active")
                continue
            f.suppressed = f"config: {s.reason}"
            break


__all__ = ["apply_suppressions"]
