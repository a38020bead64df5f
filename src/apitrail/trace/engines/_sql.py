"""SQL dialects and runners shared by the DuckDB and Spark engines.

The correlation, classification and blind-spot steps are written once as SQL text. The few functions that
differ between DuckDB and Spark SQL (identifier quoting, epoch seconds, JSON extraction, list helpers) go
through a :class:`Dialect`, so both engines run the same logical plan and give the same answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Dialect:
    """The handful of spellings that differ between DuckDB and Spark SQL."""

    name: str  # "duckdb" | "spark"

    def q(self, column: str) -> str:
        """Quote a canonical dotted column name (``trace.id``)."""
        if self.name == "spark":
            return f"`{column}`"
        return f'"{column}"'

    def epoch(self, expr: str) -> str:
        """Seconds since the epoch (with fraction) of a timestamp expression."""
        if self.name == "spark":
            return f"CAST({expr} AS DOUBLE)"
        return f"epoch({expr})"

    def json_str(self, expr: str, key: str) -> str:
        """One top-level string member of a JSON text column (``raw.unmapped``)."""
        if self.name == "spark":
            return f"get_json_object({expr}, '$.{key}')"
        return f"json_extract_string({expr}, '$.\"{key}\"')"

    def json_path(self, expr: str, keys: tuple[str, ...]) -> str:
        """A nested string member of a JSON text column; keys may contain dots and dashes."""
        if self.name == "spark":
            path = "$" + "".join(f"['{k}']" for k in keys)
            return f"get_json_object({expr}, {lit(path, self)})"
        path = "$" + "".join(f'."{k}"' for k in keys)
        return f"json_extract_string({expr}, {lit(path, self)})"

    def list_len(self, expr: str) -> str:
        if self.name == "spark":
            # NOTE: size(NULL) is -1 in Spark unless ANSI mode; clamp so both engines give 0.
            return f"greatest(coalesce(size({expr}), 0), 0)"
        return f"coalesce(len({expr}), 0)"

    def list_contains(self, arr: str, value: str) -> str:
        if self.name == "spark":
            return f"coalesce(array_contains({arr}, {value}), false)"
        return f"coalesce(list_contains({arr}, {value}), false)"

    def regex(self, expr: str, pattern: str) -> str:
        """Boolean: the expression matches the (RE2/Java-compatible) pattern somewhere; false when null."""
        if self.name == "spark":
            return f"coalesce({expr} RLIKE {lit(pattern, self)}, false)"
        return f"coalesce(regexp_matches({expr}, {lit(pattern, self)}), false)"

    def struct_min(self, exprs: tuple[str, ...], pick: int) -> str:
        """Aggregate: member ``pick`` of the row with the smallest (exprs...), compared left to right."""
        names = [f"f{i}" for i in range(len(exprs))]
        if self.name == "spark":
            packed = ", ".join(f"'{n}', {e}" for n, e in zip(names, exprs, strict=True))
            return f"min(named_struct({packed})).{names[pick]}"
        packed = ", ".join(f"'{n}': {e}" for n, e in zip(names, exprs, strict=True))
        return f"min({{{packed}}}).{names[pick]}"

    def sorted_list(self, expr: str) -> str:
        """Aggregate: the values of a string expression as a list in ascending (binary) order."""
        if self.name == "spark":
            return f"sort_array(collect_list({expr}))"
        # NOTE: not list(x ORDER BY x): DuckDB's ordered aggregates do not spill (out of memory at 10M hops)
        return f"list_sort(list({expr}))"

    def to_str(self, expr: str) -> str:
        if self.name == "spark":
            return f"CAST({expr} AS STRING)"
        return f"CAST({expr} AS VARCHAR)"

    def list_first(self, arr: str) -> str:
        if self.name == "spark":
            return f"element_at({arr}, 1)"
        return f"{arr}[1]"


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")


def lit(value: str, dialect: Dialect = DUCKDB) -> str:
    """A SQL string literal. Spark treats backslash as an escape inside literals; DuckDB does not."""
    if dialect.name == "spark":
        value = value.replace("\\", "\\\\")
    return "'" + value.replace("'", "''") + "'"


def in_list(values: Iterable[str], dialect: Dialect = DUCKDB) -> str:
    return "(" + ", ".join(lit(v, dialect) for v in values) + ")"


class Runner(Protocol):
    """What the pipeline needs from an engine: create a named table from a SELECT, fetch rows, stream rows."""

    dialect: Dialect

    def create(self, name: str, select_sql: str) -> None: ...

    def rows(self, select_sql: str) -> list[dict[str, Any]]: ...

    def scalar(self, select_sql: str) -> Any: ...

    def stream(self, select_sql: str, batch_rows: int) -> Iterator[dict[str, list[Any]]]:
        """The rows of a query in its order, as column lists of about ``batch_rows`` rows, without holding the
        whole result in memory."""
        ...

    def drop(self, name: str) -> None: ...


__all__ = ["DUCKDB", "SPARK", "Dialect", "Runner", "in_list", "lit"]
