"""docs/schema.md is generated from schema.FIELDS; the store uses the same names as columns."""

from __future__ import annotations

import os
from pathlib import Path

from apitrail.trace.schema import FIELD_NAMES, FIELDS, render_markdown
from apitrail.trace.store import Store

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def test_schema_doc_in_sync() -> None:
    text = render_markdown()
    if os.environ.get("APITRAIL_UPDATE_SNAPSHOTS") == "1":
        DOC.write_text(text)
    assert DOC.read_text() == text


def test_every_field_documented_once() -> None:
    text = DOC.read_text().split("## rejects")[0]
    for name in FIELD_NAMES:
        assert sum(1 for line in text.splitlines() if line.startswith(f"| `{name}` |")) == 1, name
    assert len(set(FIELD_NAMES)) == len(FIELDS)


def test_store_columns_are_the_schema() -> None:
    store = Store()
    cols = [r[0] for r in store.execute("DESCRIBE hops").fetchall()]
    assert cols == list(FIELD_NAMES)
    assert {r[0] for r in store.execute("SHOW TABLES").fetchall()} >= {"hops", "rejects", "leaks", "ingest_runs"}
