"""File discovery: gitignore, vendored/venv/tests skipping, symlink safety, size cap, binary and non-UTF-8."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from apitrail.scan.engine import ScanOptions, scan
from apitrail.scan.walk import walk

APP = "from fastapi import FastAPI\napp = FastAPI()\n\n@app.get('/ping')\ndef ping():\n    return 'ok'\n"


def _write(root: Path, rel: str, text: str | bytes) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def test_nested_venv_is_not_scanned(tmp_path: Path) -> None:
    _write(tmp_path, "app/main.py", APP)
    _write(tmp_path, "app/.venv/pyvenv.cfg", "home = /usr/bin\n")
    _write(tmp_path, "app/.venv/lib/python3.11/site-packages/evil/routes.py", APP)
    _write(tmp_path, "services/x/myenv/pyvenv.cfg", "home = /usr/bin\n")
    _write(tmp_path, "services/x/myenv/lib/pkg/mod.py", APP)
    rels = [f.rel for f in walk(tmp_path).files]
    assert "app/main.py" in rels
    assert not any(".venv" in r or "myenv" in r for r in rels)


@pytest.mark.parametrize("folder", ["node_modules/pkg", "vendor/lib", "migrations", "dist", "__pycache__"])
def test_vendored_and_generated_dirs_are_skipped(tmp_path: Path, folder: str) -> None:
    _write(tmp_path, f"{folder}/routes.py", APP)
    _write(tmp_path, "main.py", APP)
    result = walk(tmp_path)
    assert [f.rel for f in result.files if f.language == "python"] == ["main.py"]
    assert sum(result.skipped.values()) >= 1


def test_gitignore_is_honoured_at_every_level(tmp_path: Path) -> None:
    _write(tmp_path, ".gitignore", "generated_*.py\n/build_out/\n")
    _write(tmp_path, "pkg/.gitignore", "local.py\n!keep.py\n")
    _write(tmp_path, "generated_api.py", APP)
    _write(tmp_path, "build_out/x.py", APP)
    _write(tmp_path, "pkg/local.py", APP)
    _write(tmp_path, "pkg/keep.py", APP)
    _write(tmp_path, "pkg/sub/generated_x.py", APP)
    rels = {f.rel for f in walk(tmp_path).files if f.language == "python"}
    assert rels == {"pkg/keep.py"}


def test_symlink_loop_terminates(tmp_path: Path) -> None:
    _write(tmp_path, "a/main.py", APP)
    os.symlink(tmp_path / "a", tmp_path / "a" / "loop")
    os.symlink(tmp_path, tmp_path / "a" / "root_loop")
    result = walk(tmp_path)
    assert [f.rel for f in result.files if f.language == "python"] == ["a/main.py"]


def test_symlink_outside_root_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    root = tmp_path / "root"
    _write(outside, "secret_routes.py", APP)
    _write(root, "main.py", APP)
    os.symlink(outside, root / "link")
    result = walk(root)
    assert [f.rel for f in result.files if f.language == "python"] == ["main.py"]
    assert result.skipped["symlink-outside-root"] == 1


def test_size_cap_binary_and_non_utf8_are_counted(tmp_path: Path) -> None:
    _write(tmp_path, "main.py", APP)
    _write(tmp_path, "big.py", "x = 1\n" * 100_000)
    _write(tmp_path, "blob.py", b"\x00\x01\x02binary")
    _write(tmp_path, "latin.py", "s = 'caf\xe9'\n".encode("latin-1"))
    model = scan(tmp_path, ScanOptions(use_cache=False, jobs=1, max_bytes=100_000))
    assert model.skipped.get("too-large") == 1
    assert model.skipped.get("binary") == 1
    assert model.skipped.get("not-utf8") == 1
    assert [r.path for r in model.routes] == ["/ping"] or model.routes == []  # routes need the FastAPI plugin


def test_tests_are_skipped_by_default(tmp_path: Path) -> None:
    _write(tmp_path, "main.py", APP)
    _write(tmp_path, "tests/test_api.py", APP)
    _write(tmp_path, "pkg/test_thing.py", APP)
    _write(tmp_path, "pkg/conftest.py", APP)
    default = {f.rel for f in walk(tmp_path).files}
    assert default == {"main.py"}
    everything = {f.rel for f in walk(tmp_path, include_tests=True).files}
    assert {"tests/test_api.py", "pkg/test_thing.py", "pkg/conftest.py"} <= everything
