"""Both engines give identical trace output on the scenario fixtures (DuckDB ingest + SQL vs Spark mapPartitions
parsing + Spark SQL). Skipped, with the reason, when PySpark or Java is missing; CI installs both."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from apitrail.errors import EngineError, StoreError
from apitrail.trace.engines._sql import DUCKDB, SPARK, lit

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "fixtures" / "trace" / "scenarios"

HAVE_SPARK = importlib.util.find_spec("pyspark") is not None
HAVE_JAVA = shutil.which("java") is not None


def _inputs() -> tuple[list[str], list[str], list[str], list[str]]:
    """All scenario log files, analysed together, with the union of their ingest options."""
    import yaml

    files: list[str] = []
    log_format: list[str] = []
    layer: list[str] = []
    format_name: list[str] = []
    for truth in sorted(SCENARIOS.glob("*/truth.yaml")):
        d = truth.parent
        ing = yaml.safe_load(truth.read_text()).get("ingest") or {}
        log_format += [s.replace(":@", f":@{d}/") for s in ing.get("log_format") or []]
        layer += list(ing.get("layer") or [])
        format_name += list(ing.get("format_name") or [])
        files += sorted(str(p) for p in d.iterdir() if p.is_file() and not p.name.startswith(("_", "."))
                        and not p.name.endswith((".yaml", ".py", ".conf", ".format", ".json", ".md")))
    return files, log_format, layer, format_name


@pytest.mark.skipif(not HAVE_SPARK, reason="pyspark is not installed (pip install 'apitrail[spark]')")
@pytest.mark.skipif(not HAVE_JAVA, reason="no java on PATH: Spark needs a JVM (Java 17)")
def test_duckdb_and_spark_give_identical_jsonl() -> None:
    from apitrail.trace.analyze_cli import analyze_paths

    files, log_format, layer, format_name = _inputs()
    _, duck = analyze_paths(files, log_format, layer, format_name, engine="duckdb")
    _, spark = analyze_paths(files, log_format, layer, format_name, engine="spark", spark_master="local[2]")
    a, b = duck.jsonl_lines(), spark.jsonl_lines()
    assert len(a) > 50
    diff = [(x, y) for x, y in zip(a, b, strict=False) if x != y]
    assert len(a) == len(b) and not diff, diff[:2]
    assert duck.summary() == spark.summary()


@pytest.mark.skipif(not HAVE_SPARK, reason="pyspark is not installed (pip install 'apitrail[spark]')")
@pytest.mark.skipif(not HAVE_JAVA, reason="no java on PATH: Spark needs a JVM (Java 17)")
def test_multi_record_lines_identical_on_both_engines() -> None:
    """Lines holding several records (OTLP export batches, Event Hubs wrappers): the same hops, numbered by
    source.record, and the same output on both engines."""
    from apitrail.trace.analyze_cli import analyze_paths

    fixtures = ROOT / "tests" / "fixtures" / "trace"
    files = [str(fixtures / "otel_logs" / "otlp-batches.jsonl"), str(fixtures / "otel_logs" / "http-records.jsonl"),
             str(fixtures / "azure_apim" / "eventhubs-batches.jsonl")]
    _, duck = analyze_paths(files, engine="duckdb")
    _, spark = analyze_paths(files, engine="spark", spark_master="local[2]")
    a, b = duck.jsonl_lines(), spark.jsonl_lines()
    assert sum('"record":' in line for line in a) >= 5
    assert a == b
    assert duck.summary() == spark.summary()


def test_dialect_spellings() -> None:
    assert DUCKDB.q("trace.id") == '"trace.id"' and SPARK.q("trace.id") == "`trace.id`"
    assert lit("a'b") == "'a''b'"
    assert lit("a\\b", SPARK) == "'a\\\\b'" and lit("a\\b", DUCKDB) == "'a\\b'"
    assert "get_json_object" in SPARK.json_path("x", ("request", "headers", "x-request-id"))
    assert "json_extract_string" in DUCKDB.json_path("x", ("a",))


def test_duckdb_errors_are_wrapped() -> None:
    import duckdb

    from apitrail.trace.engines.duckdb import DuckDBRunner

    run = DuckDBRunner(duckdb.connect())
    with pytest.raises(StoreError):
        run.create("t_x", "SELECT * FROM no_such_table")
    with pytest.raises(StoreError):
        run.rows("SELECT nope FROM")


@pytest.mark.skipif(HAVE_SPARK, reason="only meaningful without pyspark")
def test_spark_engine_without_pyspark_is_a_clear_error() -> None:
    from apitrail.trace.engines.spark import get_session

    with pytest.raises(EngineError):
        get_session()
