"""Parsing for the Spark engine: one whole file at a time with the same format code as the DuckDB ingest.

The DuckDB ingest may settle rows on its vectorised fast path; the format contract (``formats/_base.py``) makes
the Python line parser the reference that the fast path must agree with, so Spark workers use that reference
path: format resolution and detection, the format's line parser and ``to_hop`` normalisation (which also
fingerprints secrets). Lines are numbered exactly like the ingest (``fastpath.lines_table``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from apitrail.trace.fastpath import lines_table
from apitrail.trace.ingest import IngestOptions, _parse_lines, decode_log_bytes, resolve_format
from apitrail.trace.normalize.record import HopContext


def parse_bytes(label: str, data: bytes, options: IngestOptions) -> Iterator[dict[str, Any]]:
    """Canonical hop dicts of one file; ``label`` is the path string recorded in ``source.file``."""
    path = Path(label)
    data = decode_log_bytes(data)  # gzip files as they are delivered; a leading byte-order mark dropped
    fmt, fopts, _conf = resolve_format(path, data, options)
    if fmt is None:
        return
    ctx = HopContext(label, fmt.name, fmt.layer, fmt.product, layer_override=fopts.layer,
                     product_override=fopts.product)
    numbered = list(enumerate(lines_table(data).column("line").to_pylist(), start=1))
    result = _parse_lines(fmt, fopts, ctx, numbered, fmt.make_parser(fopts), collect_leaks=False)
    yield from result.hops.to_pylist()


__all__ = ["parse_bytes"]
