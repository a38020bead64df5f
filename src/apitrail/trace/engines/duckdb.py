"""The DuckDB engine (default): runs the trace SQL on a DuckDB connection (an in-memory one or the store file)."""

from __future__ import annotations

from typing import Any

import duckdb

from apitrail.errors import StoreError
from apitrail.trace.engines._sql import DUCKDB, Dialect


class DuckDBRunner:
    """A :class:`~apitrail.trace.engines._sql.Runner` over a DuckDB connection. Work tables are TEMP tables."""

    dialect: Dialect = DUCKDB

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

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

    def scalar(self, select_sql: str) -> Any:
        try:
            row = self.con.execute(select_sql).fetchone()
        except duckdb.Error as exc:
            raise StoreError(f"trace SQL failed: {exc}") from exc
        return None if row is None else row[0]

    def drop(self, name: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {name}")


def analyze_connection(con: duckdb.DuckDBPyConnection, source: str = "hops", options: Any = None) -> Any:
    """Correlate, classify and find blind spots over the ``hops`` table of ``con``; see engines.analyze."""
    from apitrail.trace.engines._pipeline import analyze

    return analyze(DuckDBRunner(con), source=source, options=options)


__all__ = ["DuckDBRunner", "analyze_connection"]
