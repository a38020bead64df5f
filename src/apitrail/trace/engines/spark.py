"""The Spark engine (``--engine spark``): the same logical plan as DuckDB, for volumes past one machine.

* Parsing runs in ``mapPartitions`` over ``(path, text)`` pairs with the very same format code as the DuckDB
  ingest (detection, the format's line parser, normalisation, secret fingerprinting), so a line means the same
  thing on both engines. Each file is parsed sequentially inside one task because some formats are stateful
  (CloudFront's ``#Fields`` header).
* The join, classification and blind-spot steps are the same SQL text as DuckDB's (``engines/_sql.py`` turns
  the few dialect differences), run through ``spark.sql``. Work tables are temp views over locally
  checkpointed DataFrames, so the iterative label propagation does not grow an unbounded lineage.

PySpark is an optional dependency (``pip install 'apitrail[spark]'``); every PySpark error is wrapped in
:class:`~apitrail.errors.EngineError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from apitrail.errors import EngineError
from apitrail.trace.engines._sql import SPARK, Dialect
from apitrail.trace.schema import HOP_SCHEMA


def _require_pyspark() -> Any:
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise EngineError("--engine spark needs pyspark: pip install 'apitrail[spark]'") from exc
    return SparkSession


def get_session(master: str | None = None, app_name: str = "apitrail-trace") -> Any:
    """A SparkSession (an existing one under spark-submit, else a local one) pinned to UTC."""
    import os

    session_cls = _require_pyspark()
    if master is None and "PYSPARK_GATEWAY_PORT" not in os.environ:
        master = "local[*]"  # not under spark-submit: run in-process
    try:
        builder = session_cls.builder.appName(app_name)
        if master:
            builder = builder.master(master)
        builder = (
            builder.config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.ansi.enabled", "false")
        )
        if master is not None and master.startswith("local"):
            # small local runs are dominated by per-task overhead; clusters keep their own setting
            builder = builder.config("spark.sql.shuffle.partitions", "2")
        spark = builder.getOrCreate()
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        spark.sparkContext.setLogLevel("ERROR")
        return spark
    except Exception as exc:  # noqa: BLE001 - py4j/JVM errors have no common base we can import
        raise EngineError(f"could not start Spark: {exc}") from exc


def spark_schema() -> Any:
    """HOP_SCHEMA as a Spark StructType (dotted names kept verbatim)."""
    from pyspark.sql import types as T

    def conv(t: pa.DataType) -> Any:
        if pa.types.is_string(t):
            return T.StringType()
        if pa.types.is_int64(t):
            return T.LongType()
        if pa.types.is_floating(t):
            return T.DoubleType()
        if pa.types.is_timestamp(t):
            return T.TimestampType()
        if pa.types.is_list(t):
            return T.ArrayType(conv(t.value_type))
        if pa.types.is_boolean(t):
            return T.BooleanType()
        raise EngineError(f"no Spark type for {t}")

    return T.StructType([T.StructField(f.name, conv(f.type), True) for f in HOP_SCHEMA])


class SparkRunner:
    """A :class:`~apitrail.trace.engines._sql.Runner` over a SparkSession: tables are checkpointed temp views."""

    dialect: Dialect = SPARK

    def __init__(self, spark: Any) -> None:
        self.spark = spark
        self._frames: dict[str, Any] = {}

    def create(self, name: str, select_sql: str) -> None:
        try:
            df = self.spark.sql(select_sql)
            # NOTE: every work table is materialised: lazily cached views that self-join across replaced views
            # trip Spark's attribute binding ("key not found: hop_id#n").
            df = df.localCheckpoint(eager=True)
            df.createOrReplaceTempView(name)
            self._frames[name] = df
        except Exception as exc:  # noqa: BLE001
            raise EngineError(f"Spark SQL failed while building {name}: {exc}") from exc

    def rows(self, select_sql: str) -> list[dict[str, Any]]:
        try:
            return [r.asDict() for r in self.spark.sql(select_sql).collect()]
        except Exception as exc:  # noqa: BLE001
            raise EngineError(f"Spark SQL failed: {exc}") from exc

    def stream(self, select_sql: str, batch_rows: int) -> Iterator[dict[str, list[Any]]]:
        """Rows a partition at a time (``toLocalIterator`` keeps a sorted result's order)."""
        try:
            df = self.spark.sql(select_sql)
            names = df.columns
            chunk: list[Any] = []
            for row in df.toLocalIterator():
                chunk.append(row)
                if len(chunk) >= batch_rows:
                    yield {n: [r[i] for r in chunk] for i, n in enumerate(names)}
                    chunk = []
            if chunk:
                yield {n: [r[i] for r in chunk] for i, n in enumerate(names)}
        except Exception as exc:  # noqa: BLE001
            raise EngineError(f"Spark SQL failed: {exc}") from exc

    def scalar(self, select_sql: str) -> Any:
        rows = self.rows(select_sql)
        if not rows:
            return None
        return next(iter(rows[0].values()))

    def drop(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        self._frames.pop(name, None)


def hops_dataframe_from_arrow(spark: Any, table: pa.Table) -> Any:
    """A Spark DataFrame of hops from an Arrow table in HOP_SCHEMA (used by tests and small inputs)."""
    rows = table.to_pylist()
    return spark.createDataFrame([tuple(r[n] for n in HOP_SCHEMA.names) for r in rows], schema=spark_schema())


def _parse_partition(items: Iterable[tuple[str, bytes]], labels: dict[str, str], options: Any) -> Iterator[Any]:
    """mapPartitions body: parse whole files with the shared format code; yields canonical hop tuples."""
    from apitrail.trace.engines._parse import parse_bytes

    names = HOP_SCHEMA.names
    for uri, data in items:
        label = labels.get(_local(uri), _local(uri))
        for rec in parse_bytes(label, bytes(data), options):
            yield tuple(rec.get(n) for n in names)


def parse_with_spark(spark: Any, files: list[str], options: Any) -> Any:
    """Parse log files into a DataFrame of hops in mapPartitions (the same format code as the DuckDB ingest).

    ``files`` are the path strings to record in ``source.file`` (as the DuckDB ingest records them);
    ``options`` is an :class:`apitrail.trace.ingest.IngestOptions`.
    """
    import os

    labels = {os.path.abspath(f): f for f in files}
    try:
        sc = spark.sparkContext
        uris = ",".join("file://" + os.path.abspath(f) if "://" not in f else f for f in files)
        rdd = sc.binaryFiles(uris, minPartitions=max(1, min(len(files), 64)))
        parsed = rdd.mapPartitions(lambda it: _parse_partition(it, labels, options))
        return spark.createDataFrame(parsed, schema=spark_schema())
    except Exception as exc:  # noqa: BLE001
        raise EngineError(f"Spark parsing failed: {exc}") from exc


def _local(uri: str) -> str:
    if uri.startswith("file://"):
        return uri[7:]
    return uri[5:] if uri.startswith("file:") else uri


def analyze_dataframe(spark: Any, hops_df: Any, options: Any = None) -> Any:
    """Correlate, classify and find blind spots over a hops DataFrame; returns an AnalysisResult."""
    from apitrail.trace.engines._pipeline import analyze

    hops_df.createOrReplaceTempView("hops")
    return analyze(SparkRunner(spark), source="hops", options=options)


__all__ = ["SparkRunner", "analyze_dataframe", "get_session", "hops_dataframe_from_arrow", "parse_with_spark",
           "spark_schema"]
