"""The DuckDB engine (default): runs the trace SQL on a DuckDB connection (an in-memory one or the store file)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from apitrail.errors import StoreError
from apitrail.trace.engines._sql import DUCKDB, Dialect
from apitrail.trace.schema import HOP_SCHEMA


class DuckDBRunner:
    """A :class:`~apitrail.trace.engines._sql.Runner` over a DuckDB connection. Work tables are TEMP tables."""

    dialect: Dialect = DUCKDB

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        # NOTE: DuckDB draws its progress bar on stdout, which is where `--format jsonl` without -o writes
        con.execute("SET enable_progress_bar = false")

    def create(self, name: str, select_sql: str) -> None:
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {select_sql}")
        except duckdb.Error as exc:
            raise StoreError(f"trace SQL failed while building {name}: {exc}") from exc

    def rows(self, select_sql: str) -> list[dict[str, Any]]:
        try:
            cur = self.con.execute(select_sql)
            cols = [c[0] for c in cur.description or []]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        except duckdb.Error as exc:
            raise StoreError(f"trace SQL failed: {exc}") from exc

    def stream(self, select_sql: str, batch_rows: int) -> Iterator[dict[str, list[Any]]]:
        # NOTE: a relation's Arrow reader runs the query as a stream; con.execute() would materialise the result.
        try:
            reader = self.con.sql(select_sql).to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            raise StoreError(f"trace SQL failed: {exc}") from exc
        try:
            for batch in reader:
                yield {name: col.to_pylist() for name, col in zip(batch.schema.names, batch.columns, strict=True)}
        except duckdb.Error as exc:
            raise StoreError(f"trace SQL failed: {exc}") from exc
        finally:
            reader.close()  # a reader left open would keep the connection busy

    def scalar(self, select_sql: str) -> Any:
        try:
            rows = self.con.execute(select_sql).fetchall()  # fetched to the end: the connection is free again
        except duckdb.Error as exc:
            raise StoreError(f"trace SQL failed: {exc}") from exc
        return rows[0][0] if rows else None

    def drop(self, name: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {name}")


def hop_table(rows: list[dict[str, Any]]) -> pa.Table:
    """A pyarrow table in ``HOP_SCHEMA`` from hop dicts keyed by canonical field names (missing keys are null).

    Timestamps may be given as ISO strings. Unknown keys are an error (they would be silently lost otherwise).
    """
    names = set(HOP_SCHEMA.names)
    for r in rows:
        extra = set(r) - names
        if extra:
            raise ValueError(f"not canonical hop fields: {sorted(extra)}")
    cols = {}
    for f in HOP_SCHEMA:
        vals = [r.get(f.name) for r in rows]
        if pa.types.is_timestamp(f.type):
            vals = [datetime.fromisoformat(v.replace("Z", "+00:00")) if isinstance(v, str) else v for v in vals]
        cols[f.name] = pa.array(vals, type=f.type)
    return pa.table(cols, schema=HOP_SCHEMA)


def load_hops(con: duckdb.DuckDBPyConnection, table: pa.Table | list[dict[str, Any]], name: str = "hops") -> None:
    """Create (or replace) the table ``name`` with the canonical hop columns from an Arrow table or dicts."""
    data = hop_table(table) if isinstance(table, list) else table
    con.register("_apitrail_hops_in", data)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _apitrail_hops_in")
    finally:
        con.unregister("_apitrail_hops_in")


def analyze_connection(con: duckdb.DuckDBPyConnection, source: str = "hops", options: Any = None) -> Any:
    """Correlate, classify and find blind spots over the ``hops`` table of ``con``; see engines.analyze."""
    from apitrail.trace.engines._pipeline import analyze

    return analyze(DuckDBRunner(con), source=source, options=options)


__all__ = ["DuckDBRunner", "analyze_connection", "hop_table", "load_hops"]
