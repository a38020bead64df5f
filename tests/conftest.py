from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests on a fixed example sequence (reproducible); local runs keep exploring
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# CI checks the repository out with shared/ beside it: point the log-sample tests there when it exists
_SHARED_SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "logsamples"
if _SHARED_SAMPLES.is_dir():
    os.environ.setdefault("APITRAIL_LOGSAMPLES", str(_SHARED_SAMPLES))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test session uses its own facts cache and fingerprint key: no state leaks between runs."""
    cache = tmp_path_factory.getbasetemp() / "apitrail-cache"
    monkeypatch.setenv("APITRAIL_CACHE_DIR", str(cache))
    monkeypatch.setenv("APITRAIL_FP_KEY", os.environ.get("APITRAIL_FP_KEY", "test-key-not-secret-0123456789abcdef"))
