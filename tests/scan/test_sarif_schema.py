"""`apitrail scan --format sarif` validates against the OASIS SARIF 2.1.0 JSON schema, with rule metadata."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from typer.testing import CliRunner

from apitrail.cli import app

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURES = Path(__file__).resolve().parents[1] / "rules"


def _sarif(root: Path) -> dict:
    result = CliRunner().invoke(app, ["scan", str(root), "--format", "sarif", "--no-cache"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_sarif_validates_against_schema() -> None:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    doc = _sarif(FIXTURES / "bola")
    jsonschema.validate(doc, schema)
    assert doc["runs"][0]["results"], "the fixture app has findings"


def test_sarif_rule_metadata_has_help_and_controls() -> None:
    doc = _sarif(FIXTURES / "bola")
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    bola = rules["APT-BOLA-001"]
    assert bola["helpUri"].endswith("/docs/rules/bola.md")
    assert "CC6.1" in bola["help"]["text"]
    assert bola["properties"]["controls"]["owasp_api"] == ["API1:2023"]
    result = doc["runs"][0]["results"][0]
    assert result["properties"]["controls"]["cwe"]
    assert result["partialFingerprints"]["apitrail/v1"]
