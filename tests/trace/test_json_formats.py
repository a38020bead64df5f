"""JSON log formats (Cloudflare, Akamai, Kong, API Gateway, APIM, backend dialects, OTel logs).

Data-driven: every ``tests/fixtures/trace/<format>/*.jsonl`` is ingested (format detected from the file, or
forced by ``<case>.meta.json``) and compared with ``<case>.expected.json``: the canonical hop records, the rejects
with their reasons, and the line accounting. Regenerate with ``APITRAIL_UPDATE_SNAPSHOTS=1`` and review the diff.
The SQL fast path and the Python reference parsers must give the same records on every fixture.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from _trace_helpers import FIXTURES, ingest_case, meta_for, snapshot

from apitrail.trace.formats import all_formats, get_format

MINE = ("cloudflare_http_requests", "akamai_datastream2", "kong", "apigw", "azure_apim", "backend_json", "otel_logs",
        "aws_waf", "apigw_lambda_event", "http_headers_json")
UPDATE = os.environ.get("APITRAIL_UPDATE_SNAPSHOTS") == "1"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "formats"


def _cases() -> list[Path]:
    return [p for name in MINE for p in sorted((FIXTURES / name).glob("*.jsonl"))]


@pytest.mark.parametrize("case", _cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_snapshot(case: Path) -> None:
    got = snapshot(case)
    expected_file = case.with_name(case.stem + ".expected.json")
    if UPDATE or not expected_file.exists():
        expected_file.write_text(json.dumps(got, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
        if not UPDATE:
            pytest.fail(f"snapshot created: {expected_file.name}; review and commit it")
    assert got == json.loads(expected_file.read_text())


@pytest.mark.parametrize("case", _cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_detected_or_forced_format_is_the_folder(case: Path) -> None:
    got = snapshot(case)
    assert got["format"] == (meta_for(case).get("format") or case.parent.name)


@pytest.mark.parametrize("case", _cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_lines_reconcile(case: Path) -> None:
    result, store = ingest_case(case)
    fr = result.files[0]
    assert fr.lines == len(case.read_bytes().splitlines())
    assert fr.reconciled and fr.lines == fr.hop_lines + fr.rejects and fr.hops >= fr.hop_lines
    assert store.execute("SELECT count(*) FROM hops").fetchone()[0] == fr.hops
    assert store.execute('SELECT count(DISTINCT "source.line") FROM hops').fetchone()[0] == fr.hop_lines
    assert store.execute("SELECT count(*) FROM rejects").fetchone()[0] == fr.rejects
    runs = store.execute("SELECT lines, hops, rejects, hop_lines FROM ingest_runs").fetchall()
    assert runs == [(fr.lines, fr.hops, fr.rejects, fr.hop_lines)]
    # records of a line are numbered 1..n: (file, line, record) is a key
    gaps = store.execute('SELECT count(*) FROM (SELECT "source.line", count(*) AS n, min("source.record") AS lo, '
                         'max("source.record") AS hi, count(DISTINCT "source.record") AS d FROM hops '
                         'GROUP BY "source.line") x WHERE lo <> 1 OR hi <> n OR d <> n').fetchone()[0]
    assert gaps == 0


def _normalise_raw(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        r = dict(r)
        raw = r.get("raw.unmapped")
        if isinstance(raw, dict):
            r["raw.unmapped"] = {k: v for k, v in raw.items() if v not in ("", None)}
        out.append(r)
    return out


@pytest.mark.parametrize("case", _cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fast_path_equals_python_reference(case: Path) -> None:
    fast = snapshot(case, engine="auto")
    ref = snapshot(case, engine="python")
    assert _normalise_raw(fast["hops"]) == _normalise_raw(ref["hops"])
    assert fast["rejects"] == ref["rejects"]
    assert fast["counts"] == ref["counts"]


def test_fast_path_is_used() -> None:
    """The vectorised formats settle plain rows in SQL (the Python path only takes what SQL cannot)."""
    result, _ = ingest_case(FIXTURES / "cloudflare_http_requests" / "logsamples.jsonl")
    assert result.files[0].fast_rows == 2
    result, _ = ingest_case(FIXTURES / "backend_json" / "logsamples-ecs-java.jsonl")
    assert result.files[0].fast_rows == 4


@pytest.mark.parametrize("name", MINE)
def test_every_format_has_fixture_doc_and_metadata(name: str) -> None:
    fmt = get_format(name)
    assert fmt.doc and fmt.kind == "json" and fmt.layer and fmt.product
    assert list((FIXTURES / name).glob("*.jsonl")), "no fixture"
    assert (DOCS / f"{name}.md").exists(), "no docs/formats page"
    module = __import__(fmt.make_parser.__module__, fromlist=["x"])
    assert module.__doc__ and len(module.__doc__) > 200


def test_every_fixture_has_a_malformed_line_somewhere() -> None:
    reasons = set()
    for case in _cases():
        reasons.update(r for _, r in snapshot(case)["rejects"])
    assert {"invalid json", "json value is not an object", "blank"} <= reasons


def test_logsamples_are_accepted() -> None:
    """Real samples from /work/shared/logsamples are parsed with zero rejects by the right format."""
    samples = Path(os.environ.get("APITRAIL_LOGSAMPLES", "/work/shared/logsamples"))
    if not samples.exists():
        pytest.skip("shared logsamples not available")
    expected = {
        "cdn-cloudflare-http-requests.jsonl": "cloudflare_http_requests",
        "gateway-kong-log-serializer.jsonl": "kong",
        "backend-java-ecs-logging.jsonl": "backend_json",
        "backend-otel-otlp-json-logs.jsonl": "otel_logs",
        "gateway-aws-apigw-lambda-events.jsonl": "apigw_lambda_event",
        "headers-istio-httpbin-b3-xfcc.jsonl": "http_headers_json",
    }
    for name, fmt in expected.items():
        result, _ = ingest_case(samples / name)
        fr = result.files[0]
        assert fr.format == fmt, name
        assert fr.rejects == 0 and fr.hop_lines == fr.lines <= fr.hops, name


def test_all_registered_json_formats_are_known() -> None:
    names = {f.name for f in all_formats()}
    assert set(MINE) <= names


@pytest.mark.parametrize("name", MINE)
def test_format_docs_in_sync(name: str) -> None:
    from apitrail.trace.formats._base import format_doc_markdown

    page = DOCS / f"{name}.md"
    text = format_doc_markdown(get_format(name))
    if UPDATE:
        page.write_text(text)
    assert page.read_text() == text, "docs/formats page out of date: APITRAIL_UPDATE_SNAPSHOTS=1"
