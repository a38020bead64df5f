"""The signal table of docs/trace-classification.md (section 3) is generated from classify.SIGNALS."""

from __future__ import annotations

from pathlib import Path

from apitrail.trace.classify import SIGNALS, SIGNALS_TABLE_HEADER, signals_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "trace-classification.md"


def _doc_table() -> str:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    assert lines.count(SIGNALS_TABLE_HEADER) == 1, f"{DOC.name}: the signal table header is missing or repeated"
    start = end = lines.index(SIGNALS_TABLE_HEADER)
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[start:end]) + "\n"


def test_signal_table_in_sync() -> None:
    assert _doc_table() == signals_markdown(), (
        "docs/trace-classification.md: the signal table differs from classify.SIGNALS; "
        "run `python scripts/gen_trace_docs.py`"
    )


def test_every_signal_has_one_row() -> None:
    rows = signals_markdown().splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == [f"| `{s.id}`" for s in SIGNALS]


def test_new_condition_kinds_are_described() -> None:
    table = signals_markdown()
    row = {line.split("`")[1]: line for line in table.splitlines()[2:]}
    assert "in (ignoring case, `_`, `-`, spaces)" in row["cloudflare-security"]
    assert "(status 400–499 or no status)" in row["tls-client-verify"]
    assert "null `upstream.status_codes / upstream.address` and status 401" in row["nginx-local-401"]
