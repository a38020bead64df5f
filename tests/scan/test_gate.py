"""The CI gate through the CLI: exit codes, baselines, inline and config suppressions with expiry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apitrail.cli import app

APP = '''from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session

app = FastAPI()


def get_db():
    yield Session()


@app.post("/items")
def create_item(name: str, db: Session = Depends(get_db)):
    {marker}
    db.add(name)
    db.commit()
'''


def _tree(tmp_path: Path, marker: str = "pass", config: str = "") -> Path:
    root = tmp_path / "svc"
    root.mkdir()
    (root / "app.py").write_text(APP.format(marker=marker), encoding="utf-8")
    if config:
        (root / ".apitrail.toml").write_text(config, encoding="utf-8")
    return root


def _run(*args: str) -> tuple[int, dict, str]:
    res = CliRunner().invoke(app, ["scan", *args, "--format", "json", "--no-cache"])
    data = json.loads(res.stdout) if res.stdout.strip().startswith("{") else {}
    return res.exit_code, data, res.stderr if hasattr(res, "stderr") else res.output


def _rules(data: dict) -> set[str]:
    return {f["rule_id"] for f in data.get("findings", [])}


def test_exit_0_without_fail_on_and_1_at_threshold(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    code, data, _ = _run(str(root))
    assert code == 0 and {"APT-AUTHN-002", "APT-AUDIT-001"} <= _rules(data)
    code, _, _ = _run(str(root), "--fail-on", "high")
    assert code == 1
    code, _, _ = _run(str(root), "--fail-on", "critical")
    assert code == 0


def test_exit_2_on_usage_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "apitrail.cli", "scan", str(tmp_path / "missing")],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 2 and "no such path" in res.stderr
    root = _tree(tmp_path, config='[[suppressions]]\nrule = "bola"\n')  # a suppression without a reason
    res = subprocess.run([sys.executable, "-m", "apitrail.cli", "scan", str(root), "--no-cache"],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 2 and "reason" in res.stderr


def test_exit_3_under_strict_when_a_file_cannot_be_analysed(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "broken.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n@app.get('/x')\ndef x(:\n",
                                    encoding="utf-8")
    code, _, _ = _run(str(root), "--strict")
    assert code == 3


def test_baseline_reports_only_new_findings(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    base = tmp_path / "baseline.json"
    res = CliRunner().invoke(app, ["baseline", "create", str(root), "-o", str(base), "--no-cache"])
    assert res.exit_code == 0, res.output
    data = json.loads(base.read_text())
    assert data["version"] == 1 and data["rules"] and data["results"]
    code, out, _ = _run(str(root), "--baseline", str(base), "--fail-on", "low")
    assert code == 0 and not out["findings"]
    # a new route is a new finding
    (root / "more.py").write_text(APP.replace("/items", "/other").replace("create_item", "other").format(marker="pass"),
                                  encoding="utf-8")
    code, out, _ = _run(str(root), "--baseline", str(base), "--fail-on", "low")
    assert code == 1 and {f["file"] for f in out["findings"]} == {"more.py"}


@pytest.mark.parametrize(("marker", "suppressed", "warning"), [
    ('# apitrail: ignore[APT-AUDIT-001] reason="audited by a db trigger" until=2999-01-01', True, None),
    ('# apitrail: ignore[APT-AUDIT-001] reason="audited by a db trigger" until=2020-01-01', False, "expired"),
    ("# apitrail: ignore[APT-AUDIT-001]", False, "no reason"),
])
def test_inline_suppression(tmp_path: Path, marker: str, suppressed: bool, warning: str | None) -> None:
    root = _tree(tmp_path, marker)
    code, data, _ = _run(str(root))
    assert ("APT-AUDIT-001" in _rules(data)) is not suppressed
    assert any(s["rule_id"] == "APT-AUDIT-001" for s in data["suppressed"]) is suppressed
    if warning:
        assert any(warning in w for w in data["warnings"])


def test_config_suppression_and_policy(tmp_path: Path) -> None:
    cfg = ('[[suppressions]]\nrule = "missing-authn-write"\npath = "app.py"\nreason = "internal network only"\n\n'
           '[policy]\nzero_tolerance = ["db-write-no-audit"]\n')
    root = _tree(tmp_path, config=cfg)
    code, data, _ = _run(str(root))
    assert "APT-AUTHN-002" not in _rules(data)
    assert code == 1  # db-write-no-audit is zero-tolerance: fails even without --fail-on


def test_config_suppression_requires_reason(tmp_path: Path) -> None:
    root = _tree(tmp_path, config='[[suppressions]]\nrule = "bola"\n')
    res = CliRunner().invoke(app, ["scan", str(root), "--format", "json", "--no-cache"])
    assert res.exit_code == 2 or "reason" in str(res.exception)


def test_compliance_view(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    res = CliRunner().invoke(app, ["scan", str(root), "--compliance", "soc2", "--format", "json", "--no-cache"])
    assert res.exit_code == 0, res.output
    rows = {r["control"]: r for r in json.loads(res.stdout)["controls"]}
    assert rows["CC6.1"]["status"] == "fail" and rows["CC6.1"]["routes_examined"] == 1
    assert rows["CC7.2"]["findings"] >= 1


def test_fixture_copy_is_independent(tmp_path: Path) -> None:
    # guard against shared state: the same tree scanned twice gives the same fingerprints
    root = _tree(tmp_path)
    _, a, _ = _run(str(root))
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    _, b, _ = _run(str(copy))
    assert sorted(f["fingerprint"] for f in a["findings"]) == sorted(f["fingerprint"] for f in b["findings"])
