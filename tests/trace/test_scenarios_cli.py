"""The analysis commands end to end on one scenario: `apitrail trace PATH --format jsonl`, `explain`, `export`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from apitrail.cli import app

SCEN = Path(__file__).resolve().parents[1] / "fixtures" / "trace" / "scenarios" / "cloudflare-istio"
OPTS = ["--log-format", f"gateway.log=envoy:@{SCEN}/envoy-gateway.format", "--layer", "gateway.log=gateway",
        "--format-name", "orders.jsonl=backend_json", "--format-name", "payments.jsonl=backend_json"]
LOGS = [str(p) for p in sorted(SCEN.iterdir()) if p.suffix in (".log", ".jsonl")]
runner = CliRunner()


def test_jsonl_follows_the_trace_output_contract(tmp_path: Path) -> None:
    out = tmp_path / "requests.jsonl"
    res = runner.invoke(app, ["trace", *LOGS, *OPTS, "--format", "jsonl", "-o", str(out)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 23
    for rec in lines:
        assert set(rec) == {"request_key", "join", "hops", "failure", "blind_spots"}
        assert {"class", "layer", "reason"} <= set(rec["failure"])
        for h in rec["hops"]:
            assert {"layer", "product", "status", "source"} <= set(h)
            assert set(h["source"]) == {"file", "line"}
    audience = [r for r in lines if r["failure"]["class"] == "token_exchange"]
    assert audience and "Audiences_in_Jwt_are_not_allowed" in audience[0]["failure"]["reason"]


def test_summary_table_and_json() -> None:
    res = runner.invoke(app, ["trace", *LOGS, *OPTS])
    assert res.exit_code == 0, res.output
    assert "23 requests" in res.output and "identity coverage" in res.output
    res = runner.invoke(app, ["trace", "run", *LOGS, *OPTS, "--format", "json"])
    summary = json.loads(res.output)
    assert summary["requests"] == 23 and summary["classes"]["none"] >= 1


def test_explain_draws_the_timeline() -> None:
    res = runner.invoke(app, ["trace", "explain", "sidecar-orders.log:7", *LOGS, *OPTS])
    assert res.exit_code == 0, res.output
    assert "verdict" in res.output and "class: authn" in res.output and "envoy-tls-upstream" in res.output
    res = runner.invoke(app, ["trace", "explain", "no-such-request", *LOGS, *OPTS])
    assert res.exit_code != 0


@pytest.mark.parametrize("kind", ["parquet", "ocsf-api", "ocsf-http"])
def test_exports(kind: str, tmp_path: Path) -> None:
    out = tmp_path / f"out.{kind}"
    res = runner.invoke(app, ["trace", "export", *LOGS, *OPTS, "--to", kind, "-o", str(out)])
    assert res.exit_code == 0, res.output
    if kind == "parquet":
        t = pq.read_table(out)
        assert t.num_rows > 23 and "failure_class" in t.column_names
    else:
        events = [json.loads(x) for x in out.read_text().splitlines()]
        uid = 6003 if kind == "ocsf-api" else 4002
        assert events and all(e["class_uid"] == uid for e in events)
        if kind == "ocsf-api":
            denied = [e for e in events if any(a["decision"] == "Deny" for a in e["actor"]["authorizations"])]
            assert denied
