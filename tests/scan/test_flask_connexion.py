"""connexion: a route points at its operation in the spec, and its handler at the function operationId names."""

from __future__ import annotations

from pathlib import Path

from apitrail.scan.engine import ScanOptions, scan

CASES = Path(__file__).resolve().parent.parent / "fixtures" / "scan" / "connexion"


def test_route_points_at_spec_and_handler() -> None:
    model = scan(CASES / "spec_bound", ScanOptions(use_cache=False, jobs=1))
    spec = (CASES / "spec_bound" / "api" / "petstore.yaml").read_text().splitlines()
    delete = next(r for r in model.routes if r.method == "DELETE")
    assert delete.file == "api/petstore.yaml"
    assert spec[delete.line - 1].strip() == "delete:"
    assert delete.handler_file == "svc/pets.py"
    handler_src = (CASES / "spec_bound" / "svc" / "pets.py").read_text().splitlines()
    assert handler_src[delete.handler_line - 1].startswith("def delete_pet")
    assert {e.kind for e in delete.auth.evidence} >= {"inline-check"}


def test_spec_outside_walked_configs_is_read_from_disk() -> None:
    # spec/ is skipped by the walker as a test folder; add_api names it, so the plugin reads it
    model = scan(CASES / "resty_swagger_json", ScanOptions(use_cache=False, jobs=1))
    spec_routes = [r for r in model.routes if r.framework == "connexion"]
    assert len(spec_routes) == 3
    assert {r.file for r in spec_routes} == {"spec/swagger.json"}
    # the connexion app also serves a plain Flask route
    assert [r.path for r in model.routes if r.framework == "flask"] == ["/healthz"]
