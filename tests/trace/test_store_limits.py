"""The store's memory limit: DuckDB spills past it (bounded memory on big ingests), and a bad value is one error."""

from __future__ import annotations

from pathlib import Path

import pytest

from apitrail.errors import ConfigError
from apitrail.trace.store import Store


def test_memory_limit_is_applied_and_spills_to_a_private_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APITRAIL_MEMORY_LIMIT", raising=False)
    store = Store(memory_limit="256MB")
    limit = store.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    spill = Path(store.execute("SELECT current_setting('temp_directory')").fetchone()[0])
    assert limit.replace(" ", "").upper().startswith(("244", "256"))  # DuckDB reports MiB
    assert spill.name.startswith("apitrail-spill-") and spill.is_dir()
    store.close()
    assert not spill.exists()


def test_memory_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APITRAIL_MEMORY_LIMIT", "300MB")
    store = Store()
    assert store.execute("SELECT current_setting('memory_limit')").fetchone()[0].startswith(("286", "300"))
    store.close()


def test_a_bad_memory_limit_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APITRAIL_MEMORY_LIMIT", "lots")
    with pytest.raises(ConfigError, match="APITRAIL_MEMORY_LIMIT"):
        Store()
