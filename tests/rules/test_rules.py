"""One parametrised test: every fixture line annotated `# ruleid: <rule>` is reported, nothing else is.

Fixtures live in tests/rules/<rule-name>/<framework>_app.py (named so that they do not shadow the framework
package when the folder is scanned as a small app). `# ok: <rule>` marks lines that must not be reported;
`# todoruleid: <rule>` marks known gaps (not asserted).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rules.conftest import RULES_DIR, annotations, findings_for, fixture_files


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_rule_fixture(path: Path) -> None:
    rule = path.parent.name
    notes = annotations(path)
    rel = path.name
    reported = {f.location.line for f in findings_for(rule) if f.rule_name == rule and f.location.file == rel}
    expected = notes.get("ruleid", {}).get(rule, set())
    must_not = notes.get("ok", {}).get(rule, set())
    assert reported & must_not == set(), f"{rule}: reported on ok lines {sorted(reported & must_not)}"
    groups = _groups(expected)
    missed = [min(g) for g in groups if not g & reported]
    assert not missed, f"{rule}: missed lines {missed} (got {sorted(reported)})"
    assert reported - expected == set(), f"{rule}: unexpected lines {sorted(reported - expected)}"


def _groups(lines: set[int]) -> list[set[int]]:
    """Consecutive annotated lines (a decorator span) form one expected finding."""
    out: list[set[int]] = []
    for ln in sorted(lines):
        if out and ln - 1 in out[-1]:
            out[-1].add(ln)
        else:
            out.append({ln})
    return out


def test_fixture_folders_are_rules() -> None:
    from apitrail.scan.rules._registry import all_rules

    names = {r.name for r in all_rules()}
    folders = {p.name for p in RULES_DIR.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders <= names, f"fixture folders without a rule: {sorted(folders - names)}"
