"""FastAPI/Starlette specifics the fixture harness does not check: where a route is declared, evidence kinds,
tags, partial reasons, and that the Starlette dialect stays out of FastAPI apps."""

from __future__ import annotations

from pathlib import Path

import pytest

from apitrail.scan.engine import ScanOptions, scan
from apitrail.scan.model import Route

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "scan"


def _routes(case: str) -> dict[tuple[str, str], Route]:
    model = scan(FIXTURES / case, ScanOptions(use_cache=False, jobs=1))
    return {(r.method, r.path): r for r in model.routes}


@pytest.fixture(scope="module")
def decorators() -> dict[tuple[str, str], Route]:
    return _routes("fastapi/decorators")


@pytest.fixture(scope="module")
def auth_deps() -> dict[tuple[str, str], Route]:
    return _routes("fastapi/auth_deps")


def _line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


@pytest.mark.parametrize(("key", "needle"), [
    (("GET", "/items/{item_id}"), '@app.get("/items/{item_id:int}")'),
    (("PATCH", "/items/{item_id}"), '@app.patch("/items/{item_id}")'),
    (("GET", "/r/listed"), 'router.add_api_route("/listed"'),
    (("GET", "/called"), 'app.get("/called")(called)'),
])
def test_route_line_is_the_declaration(decorators: dict[tuple[str, str], Route], key: tuple[str, str],
                                       needle: str) -> None:
    r = decorators[key]
    assert r.file == "main.py"
    assert r.line == _line_of(FIXTURES / "fastapi/decorators/main.py", needle)
    assert r.framework == "fastapi"


def test_handler_location(decorators: dict[tuple[str, str], Route]) -> None:
    r = decorators[("PUT", "/items/{item_id}")]
    assert r.handler == "update_item"
    assert r.handler_line == _line_of(FIXTURES / "fastapi/decorators/main.py", "def update_item")


def test_hidden_tag(decorators: dict[tuple[str, str], Route]) -> None:
    assert "hidden" in decorators[("DELETE", "/items/{item_id}")].tags
    assert "hidden" not in decorators[("POST", "/items")].tags


@pytest.mark.parametrize(("key", "kind"), [
    (("GET", "/protected/thing"), "router-dependency"),
    (("POST", "/included/thing"), "include-dependency"),
    (("DELETE", "/admin/users/{user_id}"), "route-dependency"),
    (("GET", "/me"), "parameter-dependency"),
])
def test_evidence_kind(auth_deps: dict[tuple[str, str], Route], key: tuple[str, str], kind: str) -> None:
    kinds = {e.kind for e in auth_deps[key].auth.evidence}
    assert kind in kinds, kinds
    assert all(e.file and e.line > 0 for e in auth_deps[key].auth.evidence)


def test_unknown_names_the_unresolved_dependency(auth_deps: dict[tuple[str, str], Route]) -> None:
    r = auth_deps[("GET", "/partner")]
    assert r.auth.state == "unknown"
    assert any("verify_partner" in e.detail for e in r.auth.evidence)


def test_global_dependency_evidence() -> None:
    routes = _routes("fastapi/global_and_paths")
    assert any(e.kind == "global-dependency" for e in routes[("GET", "/api/v2/orders")].auth.evidence)
    part = routes[("GET", "/sub/things")]
    assert part.partial and "ROUTE_PREFIX" in part.partial_reason


def test_starlette_dialect_skips_fastapi_apps() -> None:
    model = scan(FIXTURES / "fastapi/decorators", ScanOptions(use_cache=False, jobs=1))
    assert {r.framework for r in model.routes} == {"fastapi"}
    model = scan(FIXTURES / "starlette/routes_mounts", ScanOptions(use_cache=False, jobs=1))
    assert {r.framework for r in model.routes} == {"starlette"}
    assert any(e.kind == "middleware" for r in model.routes for e in r.auth.evidence)
