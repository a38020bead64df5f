"""Package hygiene: the public API is what __all__ says, and the version is consistent."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import apitrail


def test_version_matches_pyproject() -> None:
    data = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert apitrail.__version__ == data["project"]["version"]


def test_public_modules_declare_all() -> None:
    for name in ("apitrail", "apitrail.errors", "apitrail.findings", "apitrail.trace.schema"):
        mod = importlib.import_module(name)
        assert hasattr(mod, "__all__"), name
        for symbol in mod.__all__:
            assert hasattr(mod, symbol), f"{name}.__all__ names a missing {symbol}"


def test_errors_share_one_base_and_carry_exit_codes() -> None:
    from apitrail import errors

    for symbol in errors.__all__:
        cls = getattr(errors, symbol)
        assert issubclass(cls, errors.ApitrailError)
        assert cls.exit_code in (1, 2, 3)
