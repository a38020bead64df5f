"""Shared helpers for the trace tests: ingest a fixture and turn the store into plain, comparable JSON."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from apitrail.trace.ingest import IngestOptions, IngestResult, ingest_paths, parse_layer_option, parse_log_format_option
from apitrail.trace.store import Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "trace"


def meta_for(case: Path) -> dict[str, Any]:
    meta = case.with_name(case.name.rsplit(".", 1)[0] + ".meta.json")
    return json.loads(meta.read_text()) if meta.exists() else {}


def options_for(case: Path, engine: str = "auto") -> IngestOptions:
    meta = meta_for(case)
    log_formats = ()
    if "log_format" in meta:
        kind, _, template = meta["log_format"].partition(":")
        if template.startswith("@"):
            template = "@" + str(case.parent / template[1:])
        log_formats = (parse_log_format_option(f"{case.name}={kind}:{template}"),)
    layers = (parse_layer_option(f"{case.name}={meta['layer']}"),) if "layer" in meta else ()
    names = ((case.name, meta["format"]),) if "format" in meta else ()
    return IngestOptions(log_formats=log_formats, layers=layers, format_names=names, engine=engine)


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def ingest_case(case: Path, engine: str = "auto") -> tuple[IngestResult, Store]:
    store = Store()
    result = ingest_paths([case], options_for(case, engine), store)
    return result, store


def hop_rows(store: Store) -> list[dict[str, Any]]:
    """Hops in (file, line, record) order, without null fields; ``source.record`` only when it is not 1 (most lines
    hold one record: snapshots show the record of multi-record lines only)."""
    rel = store.con.sql('SELECT * FROM hops ORDER BY "source.file", "source.line", "source.record"')
    rows = rel.to_arrow_table().to_pylist()
    out = []
    for row in rows:
        clean = {k: jsonable(v) for k, v in row.items() if v is not None}
        if clean.get("source.record") == 1:
            del clean["source.record"]
        if "raw.unmapped" in clean:
            clean["raw.unmapped"] = json.loads(clean["raw.unmapped"])
        out.append(clean)
    return out


def reject_rows(store: Store) -> list[list[Any]]:
    return [list(r) for r in store.execute(
        'SELECT "source.line", reason FROM rejects ORDER BY "source.line"').fetchall()]


def snapshot(case: Path, engine: str = "auto") -> dict[str, Any]:
    result, store = ingest_case(case, engine)
    try:
        fr = result.files[0]
        hops = hop_rows(store)
        for h in hops:
            h.pop("source.file", None)
        counts = {"lines": fr.lines, "hops": fr.hops, "rejects": fr.rejects, "headers": fr.headers,
                  "blank": fr.blank}
        if fr.hop_lines != fr.hops:  # lines holding several records
            counts["hop_lines"] = fr.hop_lines
        return {
            "format": fr.format,
            "counts": counts,
            "hops": hops,
            "rejects": reject_rows(store),
        }
    finally:
        store.close()
