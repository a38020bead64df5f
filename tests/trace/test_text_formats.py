"""Text log formats (nginx, Envoy/Istio, HAProxy, Traefik, CloudFront, AWS ELB) and the user-template compilers.

Data-driven: every ``tests/fixtures/trace/<folder>/*.log`` is parsed with the format named by its optional
``<case>.meta.json`` (default: the folder name) and compared with ``<case>.expected.jsonl``, one entry per line
(record, header, or reject reason). Regenerate snapshots with ``APITRAIL_UPDATE_SNAPSHOTS=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apitrail.trace.formats import all_formats, detect_format, get_format, get_template_format, registry_errors
from apitrail.trace.formats._base import FormatOptions, LogFormat, Reject
from apitrail.trace.formats.envoy import compile_format_string
from apitrail.trace.formats.haproxy import compile_template as haproxy_template
from apitrail.trace.formats.nginx import compile_template as nginx_template
from apitrail.trace.formats.nginx import parse_log_formats
from apitrail.trace.schema import FIELD_NAMES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "trace"
LOGSAMPLES = Path(os.environ.get("APITRAIL_LOGSAMPLES", "/work/shared/logsamples"))
FOLDERS = ("nginx", "envoy", "istio", "haproxy", "traefik", "cloudfront", "aws_alb", "aws_clb", "aws_nlb")
MINE = ("nginx", "nginx_ingress", "nginx_template", "envoy", "istio", "envoy_json", "envoy_template", "haproxy",
        "haproxy_template", "traefik_json", "traefik_clf", "cloudfront", "aws_alb", "aws_clb", "aws_nlb")
UPDATE = os.environ.get("APITRAIL_UPDATE_SNAPSHOTS") == "1"
CANONICAL = frozenset(FIELD_NAMES)


def _case_files() -> list[Path]:
    return [log for folder in FOLDERS for log in sorted((FIXTURES / folder).glob("*.log"))]


def _load(log: Path) -> tuple[LogFormat, FormatOptions]:
    meta_path = log.with_suffix(".meta.json")
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    fmt = get_format(meta.get("format", log.parent.name))
    template = (log.parent / meta["template"]).read_text() if "template" in meta else None
    return fmt, FormatOptions(template=template)


def _run(log: Path) -> list[dict[str, Any]]:
    fmt, options = _load(log)
    parse = fmt.make_parser(options)
    out: list[dict[str, Any]] = []
    for n, line in enumerate(log.read_text(encoding="utf-8").splitlines(keepends=True), 1):
        try:
            rec = parse(line)
        except Reject as exc:
            out.append({"line": n, "reject": exc.reason})
            continue
        out.append({"line": n, "header": True} if rec is None else {"line": n, "record": rec})
    return out


def _dump(entries: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(e, sort_keys=True, ensure_ascii=False, default=str) + "\n" for e in entries)


@pytest.mark.parametrize("log", _case_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture_snapshot(log: Path) -> None:
    expected_path = log.with_suffix(".expected.jsonl")
    got = _dump(_run(log))
    if UPDATE or not expected_path.exists():
        expected_path.write_text(got, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"snapshot {expected_path.name} was missing; written, review it")
    assert got == expected_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("log", _case_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_records_follow_the_contract(log: Path) -> None:
    for entry in _run(log):
        rec = entry.get("record")
        if rec is None:
            continue
        raw = rec["raw"]
        assert raw and all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()), entry["line"]
        for key, value in rec.items():
            assert key == "raw" or key in CANONICAL or key.startswith("in."), key
            assert value != "-" and value != "", (entry["line"], key)
            if key == "url.path":
                assert "?" not in str(value), "the query must never reach url.path"
        if "http.response.status_code" in rec:
            assert isinstance(rec["http.response.status_code"], int)
        if "duration" in rec:
            assert isinstance(rec["duration"], float) and rec["duration"] >= 0


@pytest.mark.parametrize("log", [p for p in _case_files() if p.stem.startswith("malformed")],
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_malformed_lines_are_rejected(log: Path) -> None:
    lines = log.read_text(encoding="utf-8").splitlines()
    for entry, line in zip(_run(log), lines, strict=True):
        if line.startswith("#"):
            assert entry.get("header"), entry
        else:
            assert "reject" in entry, entry


def test_every_folder_has_positive_and_negative_cases() -> None:
    for folder in FOLDERS:
        entries = [e for log in sorted((FIXTURES / folder).glob("*.log")) for e in _run(log)]
        assert any("record" in e for e in entries), folder
        assert any("reject" in e for e in entries), folder


def test_reject_reasons_never_quote_the_line() -> None:
    for log in _case_files():
        lines = log.read_text(encoding="utf-8").splitlines()
        for entry in _run(log):
            if "reject" not in entry:
                continue
            # values, not vocabulary: plain lower-case words ("access", "server") may appear in any reason
            words = {w for w in re.split(r"[\s\"\[\]{}=,:]+", lines[entry["line"] - 1])
                     if len(w) >= 5 and not (w.isalpha() and w.islower())}
            assert not words & set(re.split(r"[\s\"\[\]{}=,:]+", entry["reject"])), (log.name, entry)


# --------------------------------------------------------------------------------------------- logsamples

# file -> (format, data lines, header lines). Every real sample line must parse: zero rejects.
LOGSAMPLE_EXPECTATIONS = {
    "cdn-aws-cloudfront-standard.log": ("cloudfront", 6, 2),  # #Version and #Fields are headers
    "ingress-nginx-ingress-controller-upstreaminfo.log": ("nginx_ingress", 8, 0),
    "lb-aws-alb-access.log": ("aws_alb", 2, 0),
    "lb-aws-clb-access.log": ("aws_clb", 2, 0),
    "lb-aws-nlb-tls-access.log": ("aws_nlb", 1, 0),
    "lb-haproxy-syslog-http-tcp.log": ("haproxy", 5, 0),
    "mesh-istio-sidecar-default-text.log": ("istio", 2, 0),
    "mesh-istio-sidecar-gateway-failures.log": ("istio", 3, 0),
    "proxy-envoy-default-text.log": ("envoy", 1, 0),
    "proxy-envoy-istio-legacy-text.log": ("istio", 4, 0),  # 2 sidecar lines + 2 Envoy default edge lines
    "proxy-nginx-combined.log": ("nginx", 4, 0),
    "proxy-traefik-clf.log": ("traefik_clf", 2, 0),
}


@pytest.mark.skipif(not LOGSAMPLES.is_dir(), reason="shared logsamples not available")
@pytest.mark.parametrize("name", sorted(LOGSAMPLE_EXPECTATIONS))
def test_logsamples_parse_without_rejects(name: str) -> None:
    fmt_name, data, headers = LOGSAMPLE_EXPECTATIONS[name]
    lines = (LOGSAMPLES / name).read_text(encoding="utf-8").splitlines(keepends=True)
    detected, score = detect_format(lines[:20])
    assert detected is not None and detected.name == fmt_name, (detected, score)
    parse = get_format(fmt_name).make_parser(FormatOptions())
    ok = hdr = 0
    for line in lines:
        rec = parse(line)  # a Reject here fails the test
        if rec is None:
            hdr += 1
        else:
            ok += 1
    assert (ok, hdr) == (data, headers)


@pytest.mark.skipif(not LOGSAMPLES.is_dir(), reason="shared logsamples not available")
def test_logsample_identity_fields() -> None:
    def first(name: str, fmt: str) -> list[dict[str, Any]]:
        parse = get_format(fmt).make_parser(FormatOptions())
        return [r for r in map(parse, (LOGSAMPLES / name).read_text().splitlines()) if r]

    istio = first("mesh-istio-sidecar-default-text.log", "istio")
    assert [r["hop.direction"] for r in istio] == ["outbound", "inbound"]
    assert {r["in.request_id"] for r in istio} == {"84961386-6d84-929d-98bd-c5aee93b5c88"}
    failures = first("mesh-istio-sidecar-gateway-failures.log", "istio")
    assert [r["response.flags"] for r in failures] == ["UF,URX", "UF,URX", "UAEX"]
    assert failures[0]["failure.reason"] == "TLS error: Secret is not supplied by SDS"
    alb = first("lb-aws-alb-access.log", "aws_alb")
    assert alb[1]["client.address"] == "fe80::202:b3ff:fe1e:8329"
    assert alb[0]["in.x-amzn-trace-id"] == "Root=1-58337281-1d84f3d73c47ec4e58577259"
    cf = first("cdn-aws-cloudfront-standard.log", "cloudfront")
    assert [r.get("failure.reason") for r in cf][-3:] == ["OriginDnsError"] * 3
    ingress = first("ingress-nginx-ingress-controller-upstreaminfo.log", "nginx_ingress")
    assert ingress[3]["upstream.status_codes"] == "200, -"
    haproxy = first("lb-haproxy-syslog-http-tcp.log", "haproxy")
    assert [r["response.flags"] for r in haproxy] == ["--VN", "LR--", "----", "CD", "--"]


# --------------------------------------------------------------------------------------------- compilers


def test_registry_has_my_formats_and_template_kinds() -> None:
    assert registry_errors() == ()
    names = {f.name for f in all_formats()}
    assert set(MINE) <= names
    assert get_template_format("nginx").name == "nginx_template"
    assert get_template_format("envoy").name == "envoy_template"
    assert get_template_format("haproxy").name == "haproxy_template"


def test_nginx_config_parsing() -> None:
    conf = """
    # log_format commented 'not $this';
    log_format  a  '$remote_addr "$request" '   # trailing comment
                   "$status \\"$http_x_request_id\\"";
    log_format b escape=json '{"s":$status}';
    """
    formats = parse_log_formats(conf)
    assert formats == {"a": ("default", '$remote_addr "$request" $status "$http_x_request_id"'),
                       "b": ("json", '{"s":$status}')}
    rec = nginx_template(conf, "a").parse('10.0.0.1 "GET /x?y=1 HTTP/1.1" 200 "abc"')
    assert rec is not None and rec["in.request_id"] == "abc" and rec["url.path"] == "/x" and rec["in.query"] == "y=1"
    # a bare format string, and the last directive when no access_log names one
    assert nginx_template("'$remote_addr $status'").parse("10.0.0.1 200") is not None
    assert nginx_template(conf).label == "b"


def test_envoy_format_string_operators() -> None:
    t = compile_format_string('%REQ(X-REQUEST-ID):8% %RESPONSE_CODE% %START_TIME(%s)% "%REQ(USER-AGENT)%"\n')
    rec = t.parse('abcdefgh 200 1728568536 "curl/8 (x)"')
    assert rec is not None
    assert rec["in.request_id"] == "abcdefgh" and rec["in.timestamp"] == 1728568536.0
    assert rec["raw"]["REQ(X-REQUEST-ID):8"] == "abcdefgh"
    with pytest.raises(ValueError):
        compile_format_string("no operators here")
    # jwt_authn payload_in_metadata and Istio 1.22's %UPSTREAM_CLUSTER_RAW%
    t = compile_format_string("%RESPONSE_CODE% %DYNAMIC_METADATA(envoy.filters.http.jwt_authn:payload)% "
                              "%UPSTREAM_CLUSTER_RAW%")
    rec = t.parse('403 {"iss": "https://idp.example.com", "aud": "orders"} inbound|8080||')
    assert rec is not None
    assert rec["in.jwt_claims"] == {"iss": "https://idp.example.com", "aud": "orders"}
    assert rec["hop.direction"] == "inbound"


def test_haproxy_log_format_with_escaped_spaces() -> None:
    t = haproxy_template(r"log-format %ci:%cp\ [%tr]\ %ST\ %{+Q}r\ %[ssl_c_verify]")
    rec = t.parse('[2001:db8::1]:443 [10/Oct/2024:13:55:36.120] 403 "GET / HTTP/1.1" 21')
    assert rec is not None
    assert rec["http.response.status_code"] == 403 and rec["in.cert_verify"] == "FAILED:X509_V_ERR_21"
    assert rec["in.timestamp"] == "2024-10-10T13:55:36.120"
    rec = t.parse("::1:80 [10/Oct/2024:13:55:36.120] 200 - 0")
    assert rec is not None and rec["client.address"] == "::1" and rec["in.cert_verify"] == "SUCCESS"


def test_template_formats_without_template_fall_back_to_defaults() -> None:
    line = '10.0.0.1 - - [10/Oct/2024:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "curl"'
    assert get_format("nginx_template").make_parser(FormatOptions())(line) is not None


def test_broken_templates_are_rejected_with_a_reason() -> None:
    for name, text in (("nginx_template", "log_format x 'no variables';"),
                       ("envoy_template", "plain text"),
                       ("haproxy_template", 'log-format "no variables"')):
        with pytest.raises(Reject):
            get_format(name).make_parser(FormatOptions(template=text))


# --------------------------------------------------------------------------------------------- properties


def _seed_lines() -> list[str]:
    return [ln for log in _case_files() for ln in log.read_text(encoding="utf-8").splitlines() if ln][:400]


_SEEDS = _seed_lines()


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    line = draw(st.sampled_from(_SEEDS))
    i = draw(st.integers(0, len(line)))
    j = draw(st.integers(i, min(len(line), i + 20)))
    return line[:i] + draw(st.text(max_size=12)) + line[j:]


@pytest.mark.parametrize("name", MINE)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.one_of(st.text(max_size=300), _mutated()))
def test_arbitrary_lines_parse_or_reject(name: str, line: str) -> None:
    parse = get_format(name).make_parser(FormatOptions())
    try:
        rec = parse(line)
    except Reject as exc:
        assert exc.reason and (line.strip() not in exc.reason or len(line.strip()) < 16)
        return
    if rec is not None:
        assert all(isinstance(v, str) for v in rec["raw"].values())


_TEMPLATE_CASES = [p for p in _case_files() if p.with_suffix(".meta.json").exists()
                   and "template" in json.loads(p.with_suffix(".meta.json").read_text())]


@pytest.mark.parametrize("log", _TEMPLATE_CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
@settings(max_examples=100, deadline=200, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_templates_parse_or_reject_quickly(log: Path, data: st.DataObject) -> None:
    # deadline=200 ms: a regex that backtracks catastrophically on a damaged line fails here
    lines = [ln for ln in log.read_text(encoding="utf-8").splitlines() if ln]
    line = data.draw(st.sampled_from(lines))
    i = data.draw(st.integers(0, len(line)))
    line = line[:i] + data.draw(st.text(max_size=8)) + line[i + data.draw(st.integers(0, 30)):] * 2
    fmt, options = _load(log)
    parse = fmt.make_parser(options)
    try:
        parse(line)
    except Reject:
        pass
