"""Meta-tests over the rule registry: unique ids and names, docs headings, catalogue controls, fixtures, docs sync."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from apitrail.controls import catalog
from apitrail.scan.rules._base import DOC_HEADINGS
from apitrail.scan.rules._registry import all_rules
from tests.rules.conftest import RULES_DIR, annotations

ROOT = Path(__file__).resolve().parents[2]


def test_ids_and_names_are_unique_and_well_formed() -> None:
    rules = all_rules()
    assert len({r.id for r in rules}) == len(rules)
    assert len({r.name for r in rules}) == len(rules)
    for r in rules:
        assert r.id.startswith("APT-") and r.id.upper() == r.id
        assert r.name == r.name.lower() and " " not in r.name and "_" not in r.name


def test_docstring_has_every_heading_and_controls_are_catalogued() -> None:
    cat = catalog()
    for r in all_rules():
        for heading in DOC_HEADINGS:
            assert r.section(heading), f"{r.id}: docstring lacks '{heading}'"
        assert r.category in cat["categories"], r.category
        for fw in ("soc2", "iso27001", "owasp_api"):
            for control in getattr(r, fw):
                assert control in cat["controls"][fw], f"{r.id}: {control} not in the catalogue"
        assert r.soc2 and r.cwe
        assert "SOC 2" in r.section("Why is this bad"), f"{r.id}: 'Why is this bad' must name the SOC 2 control"


def test_every_rule_has_positive_and_negative_fixtures() -> None:
    for r in all_rules():
        folder = RULES_DIR / r.name
        assert folder.is_dir(), f"{r.name}: no fixture folder"
        pos = neg = 0
        for f in folder.iterdir():
            if f.is_file():
                notes = annotations(f)
                pos += len(notes.get("ruleid", {}).get(r.name, ()))
                neg += len(notes.get("ok", {}).get(r.name, ()))
        assert pos and neg, f"{r.name}: needs at least one `# ruleid:` and one `# ok:` line"


def test_rule_docs_are_in_sync() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_rule_docs.py"), "--check"],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    for r in all_rules():
        assert (ROOT / "docs" / "rules" / f"{r.name}.md").is_file()
