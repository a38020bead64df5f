"""Flask-family rule evaluation: converters, prefix joins, computed rules (module constants, format, helpers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from apitrail.scan.engine import ScanOptions, scan
from apitrail.scan.frameworks.python._flask_paths import PathEvaluator, flask_rule_to_path, join_rule, normalise
from apitrail.scan.lang.python import extract_module
from apitrail.scan.lang.python_index import PythonIndex


@pytest.mark.parametrize(("rule", "path"), [
    ("/users/<int:user_id>", "/users/{user_id}"),
    ("/files/<path:rest>", "/files/{rest}"),
    ("/x/<name>", "/x/{name}"),
    ("/r/<regex('[a-z]+'):slug>/e", "/r/{slug}/e"),
    ("/plain", "/plain"),
])
def test_converters_become_braces(rule: str, path: str) -> None:
    assert flask_rule_to_path(rule) == path


@pytest.mark.parametrize(("prefix", "rule", "joined"), [
    ("/api/", "/items", "/api/items"),
    ("/api", "items", "/api/items"),
    ("", "/items", "/items"),
    ("/api", "", "/api"),
])
def test_join_like_blueprint_setup_state(prefix: str, rule: str, joined: str) -> None:
    assert join_rule(prefix, rule) == joined


def test_normalise_adds_slash_and_collapses() -> None:
    assert normalise("a//b/<int:id>") == "/a/b/{id}"


SRC = b'''
import settings

BASE = "/api"
VERSION = "v3"

def scoped(rule):
    if settings.MULTI:
        return "/<org>{}".format(rule)
    return rule

R1 = BASE + "/items"
R2 = f"{BASE}/{VERSION}/x"
R3 = "/a/%s/b" % VERSION
R4 = scoped("/q")
R5 = compute()
'''


@pytest.mark.parametrize(("name", "text", "partial"), [
    ("R1", "/api/items", False),
    ("R2", "/api/v3/x", False),
    ("R3", "/a/v3/b", False),
    ("R4", "/q", True),   # conditional prefix: the default is kept, the alternative goes to the reason
    ("R5", "{?}", True),  # unknown: never an empty rule
])
def test_rule_expressions_are_evaluated(tmp_path: Path, name: str, text: str, partial: bool) -> None:
    f = tmp_path / "routes.py"
    f.write_bytes(SRC)
    mod = extract_module(SRC, "routes.py")
    mod.src.abs_path = str(f)
    for fn in mod.functions.values():
        fn.src = mod.src
    ev = PathEvaluator(PythonIndex([mod]))
    assign = mod.module_assign(name)
    assert assign is not None
    got = ev.eval(mod, assign.value)
    assert (got.text, got.partial) == (text, partial)
    if name == "R4":
        assert "/<org>/q" in got.reason


def test_decorator_order_note_is_evidence() -> None:
    case = Path(__file__).resolve().parent.parent / "fixtures" / "scan" / "flask" / "blueprints_factory"
    model = scan(case, ScanOptions(use_cache=False, jobs=1))
    dash = next(r for r in model.routes if r.path == "/dashboard")
    assert dash.auth.state == "public"
    assert [e.kind for e in dash.auth.evidence] == ["decorator-order"]
    assert dash.handler_line > dash.line  # declared at the decorator, handler below
