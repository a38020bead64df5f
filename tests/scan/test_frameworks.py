"""Data-driven framework tests: every folder tests/fixtures/scan/<framework>/<case>/ is a small app with an
`expected.json`:

    {"routes": [{"method": "GET", "path": "/items/{id}", "auth": "authenticated", "roles": ["admin"]?,
                 "handler": "read_item"?, "partial": true?}],
     "absent": [{"method": "GET", "path": "/"}],        # routes that must NOT be reported
     "exact": true,                                       # default: the route set must match exactly
     "errors": ["broken.py"]?}                            # files that must be listed in errors

Routes compare on (METHOD, path) and then auth state (and roles/handler when given).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apitrail.scan.engine import ScanOptions, scan

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "scan"
CASES = sorted(p.parent for p in FIXTURES.glob("*/*/expected.json"))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_framework_fixture(case: Path) -> None:
    expected = json.loads((case / "expected.json").read_text())
    model = scan(case, ScanOptions(use_cache=False, jobs=1))
    got = {(r.method, r.path): r for r in model.routes}
    want = {(e["method"], e["path"]): e for e in expected.get("routes", [])}
    missing = sorted(set(want) - set(got))
    assert not missing, f"routes not found: {missing}; got {sorted(got)}"
    if expected.get("exact", True):
        extra = sorted(set(got) - set(want))
        assert not extra, f"unexpected routes: {extra}"
    for key, e in want.items():
        r = got[key]
        assert r.auth.state == e["auth"], f"{key}: auth {r.auth.state} != {e['auth']} (evidence {r.auth.evidence})"
        if r.auth.state != "unknown":
            assert r.auth.evidence or r.auth.state == "public", f"{key}: auth verdict without evidence"
        if "roles" in e:
            assert sorted(r.auth.roles) == sorted(e["roles"]), f"{key}: roles {r.auth.roles}"
        if "handler" in e:
            assert r.handler == e["handler"], f"{key}: handler {r.handler}"
        if "partial" in e:
            assert r.partial == e["partial"], f"{key}: partial {r.partial}"
    for a in expected.get("absent", []):
        assert (a["method"], a["path"]) not in got, f"route must not be reported: {a}"
    for path in expected.get("errors", []):
        assert any(err.file == path for err in model.errors), f"{path} not in errors: {model.errors}"


def test_every_framework_has_fixtures() -> None:
    from apitrail.scan.frameworks._base import all_frameworks

    names = {p.name for p in all_frameworks()}
    with_fixtures = {c.parent.name for c in CASES}
    assert names <= with_fixtures, f"frameworks without fixtures: {sorted(names - with_fixtures)}"
