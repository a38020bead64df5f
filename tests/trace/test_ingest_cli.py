"""`apitrail trace ingest|leaks` and the default command: options, exit codes, stored accounting."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from apitrail.cli import app
from apitrail.errors import LogFormatError, UsageError
from apitrail.trace.cli import DEFAULT_COMMAND
from apitrail.trace.cli import app as trace_app
from apitrail.trace.ingest import IngestOptions, ingest_paths, parse_layer_option, parse_log_format_option
from apitrail.trace.store import Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "trace"
runner = CliRunner()


def test_ingest_directory_into_store(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    kong, cloudflare = tmp_path / "kong", tmp_path / "cloudflare"  # two-line samples; the fixture folders grow
    for folder, src in ((kong, FIXTURES / "kong"), (cloudflare, FIXTURES / "cloudflare_http_requests")):
        folder.mkdir()
        (folder / "logsamples.jsonl").write_bytes((src / "logsamples.jsonl").read_bytes())
    res = runner.invoke(app, ["trace", "ingest", str(kong), str(cloudflare), "--store", str(db)])
    assert res.exit_code == 0, res.output
    assert "reconciled" in res.output and "NOT reconciled" not in res.output
    con = duckdb.connect(str(db))
    runs = con.execute("SELECT format, lines, hops, rejects FROM ingest_runs WHERE file LIKE '%.jsonl' "
                       "ORDER BY file").fetchall()
    assert ("cloudflare_http_requests", 2, 2, 0) in runs and ("kong", 2, 2, 0) in runs
    assert con.execute('SELECT count(*) FROM hops WHERE "hop.product" = \'kong\'').fetchone()[0] == 2
    con.close()
    # re-ingesting the same files replaces their rows (idempotent)
    res = runner.invoke(app, ["trace", "ingest", str(kong), "--store", str(db)])
    assert res.exit_code == 0, res.output
    con = duckdb.connect(str(db))
    assert con.execute('SELECT count(*) FROM hops WHERE "hop.product" = \'kong\'').fetchone()[0] == 2
    con.close()


def test_strict_exits_3_over_the_reject_rate(tmp_path: Path) -> None:
    log = tmp_path / "mixed.jsonl"
    good = (FIXTURES / "kong" / "logsamples.jsonl").read_text().splitlines()[0]
    log.write_text(good + "\n{broken\n{broken\n\n")
    res = runner.invoke(app, ["trace", "ingest", str(log), "--format-name", "mixed.jsonl=kong", "--strict"])
    assert res.exit_code == 3
    res = runner.invoke(app, ["trace", "ingest", str(log), "--format-name", "mixed.jsonl=kong", "--strict",
                              "--max-reject-rate", "0.9"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("args", [
    ["--layer", "x.log=nowhere"],
    ["--layer", "nolayer"],
    ["--log-format", "x.log=nosuchkind:abc"],
    ["--log-format", "garbage"],
    ["--format-name", "x=nosuchformat"],
    ["--max-reject-rate", "2"],
])
def test_bad_options_exit_2(args: list[str], tmp_path: Path) -> None:
    from apitrail import cli as root

    f = tmp_path / "x.log"
    f.write_text("x\n")
    import sys

    argv = sys.argv
    sys.argv = ["apitrail", "trace", "ingest", str(f), *args]
    try:
        with pytest.raises(SystemExit) as exc:
            root.main()
        assert exc.value.code == 2
    finally:
        sys.argv = argv


def test_option_parsers() -> None:
    spec = parse_log_format_option("apigw-*.json=apigw:" + json.dumps({"requestId": "$context.requestId"}))
    assert spec.glob == "apigw-*.json" and spec.kind == "apigw"
    assert parse_log_format_option("apigw:{}").glob == "*"
    assert parse_layer_option("*.log=mesh") == ("*.log", "mesh")
    with pytest.raises(UsageError):
        parse_layer_option("*.log=space")
    with pytest.raises(LogFormatError):
        parse_log_format_option("x=apigw:@/nonexistent/template.json")


def test_bad_template_is_a_log_format_error(tmp_path: Path) -> None:
    f = tmp_path / "apigw.jsonl"
    f.write_text('{"requestId":"1"}\n')
    opts = IngestOptions(log_formats=(parse_log_format_option("apigw.jsonl=apigw:not json"),))
    with pytest.raises(LogFormatError):
        ingest_paths([f], opts, Store())


def test_layer_override_and_unknown_files(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text((FIXTURES / "kong" / "logsamples.jsonl").read_text())
    (tmp_path / "notes.txt").write_text("hello\n\nworld\n")
    store = Store()
    result = ingest_paths([tmp_path], IngestOptions(layers=(parse_layer_option("a.jsonl=edge_lb"),)), store)
    by_name = {Path(f.file).name: f for f in result.files}
    assert by_name["a.jsonl"].layer == "edge_lb"
    assert store.execute('SELECT DISTINCT "hop.layer" FROM hops').fetchall() == [("edge_lb",)]
    notes = by_name["notes.txt"]
    assert notes.format is None and notes.rejects == 3 and notes.blank == 1 and notes.reconciled
    assert store.execute("SELECT reason FROM rejects ORDER BY \"source.line\"").fetchall() == [
        ("unknown format",), ("blank",), ("unknown format",)]


def test_default_command_dispatch() -> None:
    if any(c.name == DEFAULT_COMMAND for c in trace_app.registered_commands):
        pytest.skip("part 2 registered its own run command; its tests cover it")

    @trace_app.command(DEFAULT_COMMAND)
    def _run(paths: list[str]) -> None:  # stands in for part 2's analysis summary
        print("RUN", *paths)

    try:
        res = runner.invoke(app, ["trace", "some.log", "other.log"])
        assert res.exit_code == 0 and "RUN some.log other.log" in res.output
        res = runner.invoke(app, ["trace", "ingest", "--help"])
        assert res.exit_code == 0 and "--log-format" in res.output
    finally:
        trace_app.registered_commands[:] = [c for c in trace_app.registered_commands if c.name != DEFAULT_COMMAND]
