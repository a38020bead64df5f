"""Secret safety: planted tokens are all found by ``trace leaks`` and their bytes appear in no output
(JSONL, JSON, the DuckDB tables, the terminal, the reject records). The planted logs are written at test time
from the templates below, so no token-shaped string sits in a fixture file.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from apitrail.cli import app
from apitrail.errors import SecretLeakError
from apitrail.output.guard import guard
from apitrail.trace.secrets import SECRET_FIELDS, find_leaks, fingerprint, prefilter_hit, redact_value


def _b64(s: str) -> str:
    return base64.urlsafe_b64encode(s.encode()).rstrip(b"=").decode()


def _jwt(header: str, claims: str, sig: str) -> str:
    return ".".join((_b64(header), _b64(claims), sig))


JWT1 = _jwt('{"alg":"HS256"}', '{"sub":"planted-1","iss":"https://idp.test"}', "Zm9vYmFyYmF6cXV4MQ")
JWT2 = _jwt('{"alg":"RS256"}', '{"sub":"planted-2","aud":"api"}', "YmF6cXV4Zm9vYmFyMg")
JWT3 = _jwt('{"alg":"ES256"}', '{"sub":"planted-3"}', "cXV4Zm9vYmFyYmF6Mw")
AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"
PEM_BODY = "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu"
PEM = "-----BEGIN RSA PRIVATE KEY-----" + PEM_BODY + "-----END RSA PRIVATE KEY-----"
PLANTED = {
    "kong_apikey": "kpkPlantedApiKey0123456789",
    "kong_cookie": "s3ss10nPlantedCookieValue42",
    "cf_cookie": "cfPlantedSessionCookie77",
    "akamai_cookie": "akPlantedCookieZx81Lq0p",
    "akamai_query": "akPlantedOpaqueToken99",
    "apim_key": "0123456789abcdef0123456789abcd99",
    "apigw_key": "apigwPlantedKeyValue0123456789",
    "reject_bearer": "rejPlantedBearerToken0123456789",
    "sigv4": "deadbeefcafebabe0123456789abcdef0123456789abcdef0123456789abcdef",
    "jwt1": JWT1, "jwt2": JWT2, "jwt3": JWT3, "aws": AWS_KEY, "pem": PEM_BODY,
}


def _write_logs(d: Path) -> dict[str, Path]:
    kong = {"request": {"method": "GET", "uri": "/orders?access_token=" + JWT1, "url": "http://gw/orders",
                        "querystring": {"access_token": JWT1},
                        "headers": {"host": "gw", "apikey": PLANTED["kong_apikey"],
                                    "cookie": "session=" + PLANTED["kong_cookie"],
                                    "authorization": "REDACTED"}},
            "response": {"status": 200, "headers": {}}, "client_ip": "10.0.0.1", "started_at": 1700000000000,
            "latencies": {"request": 5}}
    cf = {"RayID": "7a1f7ad4df2f870b", "EdgeStartTimestamp": "2023-03-03T05:29:06Z", "ClientIP": "192.0.2.1",
          "ClientRequestHost": "www.example.com", "ClientRequestMethod": "GET", "ClientRequestURI": "/a",
          "EdgeResponseStatus": 200, "RequestHeaders": {"authorization": "Bearer " + JWT2},
          "Cookies": {"__session": PLANTED["cf_cookie"]}}
    akamai = {"version": 1, "cp": "1", "reqId": "abc123", "reqTimeSec": "1700000000", "cliIP": "192.0.2.2",
              "statusCode": "200", "reqHost": "h", "reqMethod": "GET", "reqPath": "/p",
              "queryStr": "access_token=" + PLANTED["akamai_query"] + "&x=1",
              "cookie": "sid=" + PLANTED["akamai_cookie"]}
    apim = {"TimeGenerated": "2024-05-02T09:13:01.5550000Z", "CorrelationId": "c-1", "Method": "GET",
            "Url": "https://apim/orders", "ResponseCode": 200,
            "RequestHeaders": {"Ocp-Apim-Subscription-Key": PLANTED["apim_key"]}}
    backend = [{"@timestamp": "2024-05-02T09:13:05.000Z", "message": "boto failed for " + AWS_KEY,
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"},
               {"@timestamp": "2024-05-02T09:13:06.000Z", "message": "loaded key " + PEM, "trace_id": "-"}]
    files = {
        "kong.jsonl": json.dumps(kong) + "\n",
        "cloudflare.jsonl": json.dumps(cf) + "\n",
        "akamai.jsonl": json.dumps(akamai) + "\n",
        "apim.jsonl": json.dumps(apim) + "\n",
        "backend.jsonl": "\n".join(json.dumps(b) for b in backend) + "\n"
                         + '{"message": "broken Authorization: Bearer ' + PLANTED["reject_bearer"] + '"\n',
        "nginx.log": (
            '192.0.2.9 - - [02/May/2024:09:13:01 +0000] "GET /cb?state=1&id_token=' + JWT3
            + ' HTTP/1.1" 200 12 "-" "curl/8"\n'
            '192.0.2.9 - - [02/May/2024:09:13:02 +0000] "GET /f?X-Amz-Credential=AKIDEXAMPLE&X-Amz-Signature='
            + PLANTED["sigv4"] + ' HTTP/1.1" 200 12 "-" "curl/8"\n'),
    }
    out = {}
    for name, text in files.items():
        (d / name).write_text(text)
        out[name] = d / name
    (d / "apigw-template.json").write_text(json.dumps({"requestId": "$context.requestId",
                                                      "status": "$context.status",
                                                      "key": "$context.identity.apiKey"}))
    (d / "apigw-1.jsonl").write_text(json.dumps({"requestId": "r-1", "status": "200",
                                                "key": PLANTED["apigw_key"]}) + "\n")
    return out


@pytest.fixture()
def planted(tmp_path: Path) -> Path:
    d = tmp_path / "logs"
    d.mkdir()
    _write_logs(d)
    return d


def _assert_clean(text: str, where: str) -> None:
    for name, value in PLANTED.items():
        assert value not in text, f"{name} leaked into {where}"


def test_leaks_finds_every_planted_token_and_never_prints_it(planted: Path, tmp_path: Path) -> None:
    out = tmp_path / "leaks.jsonl"
    res = CliRunner().invoke(app, ["trace", "leaks", str(planted), "--format", "jsonl", "-o", str(out),
                                   "--log-format", "apigw-*.jsonl=apigw:@" + str(planted / "apigw-template.json")])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    _assert_clean(text + res.output, "trace leaks output")
    records = [json.loads(line) for line in text.splitlines()]
    assert all(set(r) == {"file", "line", "field", "kind", "fingerprint"} for r in records)
    fps = {r["fingerprint"] for r in records}
    for name in ("jwt1", "jwt2", "jwt3", "aws", "akamai_query", "apim_key", "apigw_key", "kong_apikey", "sigv4"):
        assert fingerprint(PLANTED[name]) in fps, f"{name} not found"
    for name, value in (("kong_cookie", "session="), ("akamai_cookie", "sid=")):
        assert fingerprint(value + PLANTED[name]) in fps, f"{name} not found"
    assert fingerprint(PLANTED["cf_cookie"]) in fps
    kinds = {r["kind"] for r in records}
    assert {"jwt", "aws_access_key", "private_key", "cookie", "aws_sigv4", "query_token"} <= kinds
    # the malformed line is rejected, and its bearer token is still reported (from the line itself)
    assert any(r["file"].endswith("backend.jsonl") and r["line"] == 3 for r in records)


def test_no_output_contains_planted_bytes(planted: Path, tmp_path: Path) -> None:
    db = tmp_path / "trace.duckdb"
    res = CliRunner().invoke(app, ["trace", "ingest", str(planted), "--store", str(db),
                                   "--log-format", "apigw-*.jsonl=apigw:@" + str(planted / "apigw-template.json")])
    assert res.exit_code == 0, res.output
    _assert_clean(res.output, "terminal")
    import duckdb

    con = duckdb.connect(str(db))
    for table in ("hops", "rejects", "leaks", "ingest_runs"):
        rel = con.sql(f"SELECT * FROM {table}")
        rows = rel.to_arrow_table().to_pylist()
        dumped = json.dumps(rows, default=str)
        _assert_clean(dumped, f"table {table}")
        guard(dumped, table)  # the guard agrees: nothing token-shaped remains
    assert con.execute("SELECT count(*) FROM hops").fetchone()[0] >= 8
    reasons = [r[0] for r in con.execute("SELECT reason FROM rejects").fetchall()]
    assert "invalid json" in reasons
    con.close()


def test_guard_fails_closed() -> None:
    for bad in (JWT1, "Authorization: Bearer " + PLANTED["reject_bearer"], AWS_KEY, PEM,
                "/x?access_token=abcdef123456", "Basic " + base64.b64encode(b"user:pass").decode()):
        with pytest.raises(SecretLeakError) as exc:
            guard(bad)
        assert bad not in str(exc.value)
    assert guard("token.fingerprint fp:AAAAAAAAAAAAAAAAAAAAAA and /x?access_token=fp:AAAAAAAAAAAAAAAAAAAAAA") != ""
    assert guard(b"plain bytes") == b"plain bytes"


def test_fingerprint_is_keyed_and_stable(monkeypatch: pytest.MonkeyPatch) -> None:
    from apitrail.trace import secrets

    a = fingerprint("secret-value")
    assert a.startswith("fp:") and len(a) == 25 and fingerprint("secret-value") == a
    monkeypatch.setenv("APITRAIL_FP_KEY", "another-key")
    secrets.reset_key_cache()
    try:
        assert fingerprint("secret-value") != a
    finally:
        monkeypatch.undo()
        secrets.reset_key_cache()


def test_key_file_created_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from apitrail.trace import secrets

    monkeypatch.delenv("APITRAIL_FP_KEY", raising=False)
    monkeypatch.setattr(secrets, "_key_path", lambda: tmp_path / "cfg" / "fp.key")
    secrets.reset_key_cache()
    try:
        fp = fingerprint("x")
        key_file = tmp_path / "cfg" / "fp.key"
        assert key_file.exists() and (key_file.stat().st_mode & 0o777) == 0o600
        assert key_file.read_text() not in fp
    finally:
        secrets.reset_key_cache()


_FRAGMENTS = st.sampled_from(["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig", "Bearer abcdef1234567890xyz",
                              "Basic dXNlcjpwYXNzd29yZA==", "access_token=abc123", "X-Amz-Signature=ff00ff",
                              AWS_KEY, PEM, "sk_live_0123456789abcdefgh", "AIza" + "A" * 35, "xoxb-1234567890-abc",
                              "ghp_" + "a" * 36, "glpat-" + "b" * 20, "AccountKey=" + "c" * 44, "apikey=zzz999"])


@settings(max_examples=300, deadline=None)
@given(field=st.one_of(st.sampled_from(sorted(SECRET_FIELDS)), st.text(max_size=12)),
       value=st.lists(st.one_of(st.text(max_size=20), _FRAGMENTS), max_size=4).map("".join))
def test_prefilter_is_a_superset_of_the_detector(field: str, value: str) -> None:
    """The SQL fast path only skips the detector when the prefilter misses; it must never miss a leak."""
    if find_leaks(field, value):
        assert prefilter_hit(json.dumps({field: value}))


@settings(max_examples=200, deadline=None)
@given(field=st.text(max_size=12), value=st.lists(st.one_of(st.text(max_size=20), _FRAGMENTS), max_size=4)
       .map("".join))
def test_redacted_values_pass_the_guard(field: str, value: str) -> None:
    red, _ = redact_value(field, value)
    guard(red)


def _shapes_whole_text(text: str) -> set[str]:
    """The guard's reference: the detector over the whole text at once (what shapes_in computes line by line)."""
    from apitrail.trace.secrets import _CODE_WORD

    kinds = set()
    for leak in find_leaks("", text):
        value = text[leak.start:leak.end]
        if leak.kind == "query_token" and _CODE_WORD.fullmatch(value) and len(value) < 24 \
                and not any(c.isdigit() for c in value):
            continue
        kinds.add(leak.kind)
    return kinds


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(st.one_of(st.sampled_from(sorted(PLANTED.values()) + [PEM, "password=password)", "\n", " ",
                                                                            '"', "&", "?token=abc123", "Bearer "]),
                                 st.text(max_size=20)), max_size=12))
def test_line_by_line_guard_scan_finds_what_the_whole_text_scan_finds(pieces: list[str]) -> None:
    from apitrail.trace.secrets import shapes_in

    text = "".join(pieces)
    windowed, whole = set(shapes_in(text)), _shapes_whole_text(text)
    # no miss, and no alarm the whole-text scan would not raise; the kinds may differ where a value is seen from
    # two windows ("Bearer" wrapped before an AWS key: one merged bearer span in the whole text, both kinds here)
    assert whole <= windowed
    assert bool(windowed) == bool(whole)
