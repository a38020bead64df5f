#!/usr/bin/env python3
"""Regenerate the signal table of docs/trace-classification.md (section 3) from ``apitrail.trace.classify.SIGNALS``.

Only the table is rewritten: from its header row up to the first line that is not a table row (a blank line);
the prose around it is kept. Run with --check to fail when the committed table is out of date (the test suite
does this).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "trace-classification.md"


def render(text: str) -> str:
    """``text`` (the doc) with its signal table replaced by :func:`signals_markdown`."""
    from apitrail.trace.classify import SIGNALS_TABLE_HEADER, signals_markdown

    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == SIGNALS_TABLE_HEADER]
    if len(starts) != 1:
        raise SystemExit(f"{DOC.relative_to(ROOT)}: expected one signal table header {SIGNALS_TABLE_HEADER!r}, "
                         f"found {len(starts)}")
    start = end = starts[0]
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    table = signals_markdown()
    if end < len(lines) and lines[end].strip():
        table += "\n"  # keep a blank line between the table and the prose after it
    return "".join(lines[:start]) + table + "".join(lines[end:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="fail if the table is out of date")
    args = ap.parse_args(argv)
    current = DOC.read_text(encoding="utf-8")
    text = render(current)
    if text == current:
        return 0
    if args.check:
        print(f"out of date: {DOC.relative_to(ROOT)} (run python scripts/gen_trace_docs.py)", file=sys.stderr)
        return 1
    DOC.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
