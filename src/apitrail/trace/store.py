"""The DuckDB store: ``hops`` (HOP_SCHEMA, dotted column names, quote them), ``rejects`` (REJECT_SCHEMA),
``leaks`` (file, line, field, kind, fingerprint, record; never the value) and ``ingest_runs`` (per-file line
accounting). The DDL follows the schemas; a store written before a column existed gets it on open (``_migrate``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from apitrail.errors import ConfigError, StoreError
from apitrail.trace.schema import HOP_SCHEMA, REJECT_SCHEMA

LEAK_SCHEMA = pa.schema([("file", pa.string()), ("line", pa.int64()), ("field", pa.string()),
                         ("kind", pa.string()), ("fingerprint", pa.string()), ("record", pa.int64())])


def sql_type(t: pa.DataType) -> str:
    if t == pa.string():
        return "VARCHAR"
    if t == pa.int64():
        return "BIGINT"
    if t == pa.float64():
        return "DOUBLE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    if pa.types.is_list(t):
        return sql_type(t.value_type) + "[]"
    raise ValueError(f"no SQL type for {t}")


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _ddl(table: str, schema: pa.Schema) -> str:
    cols = ", ".join(f"{q(f.name)} {sql_type(f.type)}" for f in schema)
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


INGEST_RUNS_DDL = """CREATE TABLE IF NOT EXISTS ingest_runs (
    run_id VARCHAR, started_at TIMESTAMPTZ, file VARCHAR, format VARCHAR, confidence DOUBLE, layer VARCHAR,
    lines BIGINT, hops BIGINT, rejects BIGINT, headers BIGINT, blank BIGINT, fast_rows BIGINT, python_rows BIGINT,
    leaks BIGINT, reject_rate DOUBLE, seconds DOUBLE, hop_lines BIGINT)"""

# columns added after stores were first written: (table, column, SQL type, value of the rows already there)
_ADDED_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("hops", "source.record", "BIGINT", "1"),  # every older hop is the only record of its line
    ("leaks", "record", "BIGINT", "1"),
    ("ingest_runs", "hop_lines", "BIGINT", "hops"),
)


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Add the columns a store written by an older version lacks (new stores have them from the DDL)."""
    for table, column, typ, old in _ADDED_COLUMNS:
        have = con.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() "
                           "AND table_name = ? AND column_name = ?",
                           [table, column]).fetchone()
        if have and have[0]:
            continue
        con.execute(f"ALTER TABLE {table} ADD COLUMN {q(column)} {typ}")
        con.execute(f"UPDATE {table} SET {q(column)} = {old}")


class Store:
    """A DuckDB connection with the trace tables. ``path=None`` keeps everything in memory."""

    def __init__(self, path: str | Path | None = None, con: duckdb.DuckDBPyConnection | None = None,
                 memory_limit: str | None = None) -> None:
        limit = memory_limit or os.environ.get("APITRAIL_MEMORY_LIMIT")
        self._spill: tempfile.TemporaryDirectory[str] | None = None
        try:
            self.con = con if con is not None else duckdb.connect(str(path) if path else ":memory:")
            self.con.execute("SET TimeZone='UTC'")
            self.con.execute("SET enable_progress_bar = false")  # it draws on stdout, where JSONL may be going
            if limit:  # DuckDB spills sorts, joins and aggregates past the limit to its temp directory
                try:
                    self.con.execute("SET memory_limit = ?", [limit])
                except duckdb.Error as exc:
                    raise ConfigError(f"memory limit {limit!r} (APITRAIL_MEMORY_LIMIT) is not a size such as "
                                     "2GB or 512MB") from exc
                if not path:
                    self._spill = tempfile.TemporaryDirectory(prefix="apitrail-spill-")
                    self.con.execute("SET temp_directory = ?", [self._spill.name])
            self.con.execute(_ddl("hops", HOP_SCHEMA))
            self.con.execute(_ddl("rejects", REJECT_SCHEMA))
            self.con.execute(_ddl("leaks", LEAK_SCHEMA))
            self.con.execute(INGEST_RUNS_DDL)
            _migrate(self.con)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open the trace store {path or ':memory:'}: {exc}") from exc
        self.path = path

    def forget_file(self, file: str) -> None:
        """Drop earlier rows of a file so that re-ingesting it is idempotent."""
        try:
            for table, col in (("hops", '"source.file"'), ("rejects", '"source.file"'), ("leaks", "file"),
                               ("ingest_runs", "file")):
                self.con.execute(f"DELETE FROM {table} WHERE {col} = ?", [file])
        except duckdb.Error as exc:
            raise StoreError(f"store delete failed: {exc}") from exc

    def append(self, table: str, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        try:
            self.con.register("_apitrail_append", data)
            self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _apitrail_append")
            self.con.unregister("_apitrail_append")
        except duckdb.Error as exc:
            raise StoreError(f"store insert into {table} failed: {exc}") from exc

    def execute(self, sql: str, params: list[Any] | None = None) -> duckdb.DuckDBPyConnection:
        try:
            return self.con.execute(sql, params or [])
        except duckdb.Error as exc:
            raise StoreError(f"store query failed: {exc}") from exc

    def close(self) -> None:
        self.con.close()
        if self._spill is not None:
            self._spill.cleanup()


__all__ = ["LEAK_SCHEMA", "Store", "q", "sql_type"]
