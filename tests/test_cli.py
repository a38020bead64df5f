"""CLI contract: JSON on stdout at any width, one-line errors with exit 2, --strict exit 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

APP = "from fastapi import FastAPI\napp = FastAPI()\n\n@app.get('/ping')\ndef ping():\n    return 'ok'\n"


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "apitrail.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=120)


def test_json_on_stdout_parses_at_columns_40(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(APP)
    proc = run("scan", str(tmp_path), "--format", "json", "--no-cache", env={"COLUMNS": "40"})
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["tool"]["name"] == "apitrail"
    assert {"routes", "findings", "errors"} <= set(data)


def test_bad_format_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = run("scan", str(tmp_path), "--format", "xml")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / ".apitrail.toml").write_text("fail_on = 'catastrophic'\n")
    proc = run("scan", str(tmp_path), "--format", "json")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "fail_on" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    (tmp_path / ".apitrail.toml").write_text("this is = not toml [\n")
    proc = run("scan", str(tmp_path), "--format", "json")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_unknown_config_key_is_rejected(tmp_path: Path) -> None:
    (tmp_path / ".apitrail.toml").write_text("exclude = []\nfial_on = 'high'\n")
    proc = run("scan", str(tmp_path), "--format", "json")
    assert proc.returncode == 2 and "fial_on" in proc.stderr


def test_missing_path_exit_2(tmp_path: Path) -> None:
    proc = run("scan", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "no such path" in proc.stderr


def test_strict_exits_3_on_unparseable_api_code(tmp_path: Path) -> None:
    (tmp_path / "api.py").write_text(APP + "\n@app.get('/y')\ndef y(:\n    pass\n")
    loose = run("scan", str(tmp_path), "--format", "json", "--no-cache")
    assert loose.returncode == 0
    assert json.loads(loose.stdout)["errors"]
    strict = run("scan", str(tmp_path), "--format", "json", "--no-cache", "--strict")
    assert strict.returncode == 3


def test_sarif_and_markdown_render(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(APP)
    sarif = run("scan", str(tmp_path), "--format", "sarif", "--no-cache")
    assert sarif.returncode == 0 and json.loads(sarif.stdout)["version"] == "2.1.0"
    md = run("scan", str(tmp_path), "--format", "markdown", "--no-cache", "-o", str(tmp_path / "out.md"))
    assert md.returncode == 0 and (tmp_path / "out.md").read_text().startswith("# API inventory")
