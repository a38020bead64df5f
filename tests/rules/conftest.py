"""Shared helpers for the rule fixtures: scan a fixture folder once and read its inline annotations."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from apitrail.config import ApitrailConfig
from apitrail.findings import Finding
from apitrail.scan.engine import ScanOptions, scan
from apitrail.scan.rules import run_rules

RULES_DIR = Path(__file__).parent
ANNOTATION = re.compile(r"#\s*(ruleid|ok|todoruleid|todook):\s*([\w-]+)")


@cache
def findings_for(folder: str) -> tuple[Finding, ...]:
    model = scan(RULES_DIR / folder, ScanOptions(use_cache=False, jobs=1), ApitrailConfig())
    return tuple(run_rules(model, ApitrailConfig()))


def annotations(path: Path) -> dict[str, dict[str, set[int]]]:
    """{kind: {rule_name: {line}}}: a comment on its own line points at the next code line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: dict[str, dict[str, set[int]]] = {}
    for i, text in enumerate(lines, 1):
        m = ANNOTATION.search(text)
        if not m:
            continue
        target = i
        if text.strip().startswith("#"):
            target = next((j for j in range(i + 1, len(lines) + 1)
                           if lines[j - 1].strip() and not lines[j - 1].strip().startswith("#")), i)
        span = {target}
        # a decorated definition: the decorator lines through the `def` line are one target
        j = target
        while j <= len(lines) and lines[j - 1].lstrip().startswith("@"):
            j += 1
            span.add(j)
        out.setdefault(m.group(1), {}).setdefault(m.group(2), set()).update(span)
    return out


def fixture_files() -> list[Path]:
    return sorted(p for p in RULES_DIR.glob("*/*") if p.is_file() and (p.suffix == ".py" or p.name.startswith(".env"))
                  and p.name not in ("__init__.py", "conftest.py"))
