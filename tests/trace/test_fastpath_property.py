"""The SQL fast path and the Python reference give the same hop records on mutated fixture lines, for every
format that declares a Vector (discovered from the registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _trace_helpers import hop_rows, reject_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parsers_property import log_lines

from apitrail.trace.formats import all_formats
from apitrail.trace.formats._base import FormatOptions
from apitrail.trace.ingest import IngestOptions, ingest_paths
from apitrail.trace.store import Store

VECTORISED = [f for f in all_formats() if f.template_kind is None and f.vector_for(FormatOptions()) is not None]


def _rows(path: Path, name: str, engine: str) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    store = Store()
    ingest_paths([path], IngestOptions(format_names=((path.name, name),), engine=engine), store)
    rows = hop_rows(store)
    for r in rows:
        raw = r.get("raw.unmapped")
        if isinstance(raw, dict):
            r["raw.unmapped"] = {k: v for k, v in raw.items() if v not in ("", None)}
    return rows, reject_rows(store)


@pytest.mark.parametrize("fmt", VECTORISED, ids=lambda f: f.name)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(lines=st.lists(log_lines().filter(lambda s: "\n" not in s and "\r" not in s), min_size=1, max_size=6))
def test_fast_path_equals_reference(fmt: Any, lines: list[str], tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("fp") / "input.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _rows(path, fmt.name, "auto") == _rows(path, fmt.name, "python")
