"""Normalisation unit tests from the specs: W3C Trace Context, B3, X-Ray, GCP, DNs, thumbprints, XFCC, RCD."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from apitrail.trace.normalize.certs import (
    dn_to_rfc2253,
    normalize_serial,
    normalize_thumbprint,
    normalize_verify,
    parse_xfcc,
    thumbprint_b64url,
)
from apitrail.trace.normalize.record import HopContext, rcd_normalize, to_hop
from apitrail.trace.normalize.timestamps import parse_timestamp
from apitrail.trace.normalize.tokens import jwt_claims, parse_authorization
from apitrail.trace.normalize.trace_ids import (
    is_placeholder,
    parse_b3_multi,
    parse_b3_single,
    parse_dialect_id,
    parse_gcp_context,
    parse_gcp_trace,
    parse_traceparent,
    parse_xray,
)
from apitrail.trace.secrets import fingerprint

LOGSAMPLES = Path(os.environ.get("APITRAIL_LOGSAMPLES", "/work/shared/logsamples"))


# --- W3C traceparent (spec/20-http_request_header_format.md)
@pytest.mark.parametrize(("header", "trace_id", "parent", "flags"), [
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736",
     "00f067aa0ba902b7", "01"),
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", "0af7651916cd43dd8448eb211c80319c",
     "b7ad6b7169203331", "00"),
    ("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03-future", "0af7651916cd43dd8448eb211c80319c",
     "b7ad6b7169203331", "03"),  # higher version: trailing fields are ignored
])
def test_traceparent_valid(header: str, trace_id: str, parent: str, flags: str) -> None:
    ctx = parse_traceparent(header)
    assert (ctx.trace_id, ctx.parent_id, ctx.flags, ctx.source, ctx.invalid_reason) == (trace_id, parent, flags,
                                                                                       "w3c", None)


@pytest.mark.parametrize(("header", "reason"), [
    ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "version_ff"),
    ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "uppercase_hex"),
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01", "uppercase_hex"),
    ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "zero_trace_id"),
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "zero_parent_id"),
    ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "malformed"),
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "trailing_data"),
    ("garbage", "malformed"),
])
def test_traceparent_invalid_keeps_reason(header: str, reason: str) -> None:
    ctx = parse_traceparent(header)
    assert ctx.trace_id is None
    assert ctx.invalid_reason == reason


def test_w3c_spec_examples_from_logsamples() -> None:
    path = LOGSAMPLES / "headers-w3c-traceparent.txt"
    if not path.exists():
        pytest.skip("logsamples not available")
    for line in path.read_text().splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "traceparent":
            ctx = parse_traceparent(value)
            assert ctx.trace_id is not None and len(ctx.trace_id) == 32, line


# --- B3 (openzipkin/b3-propagation)
def test_b3_single_and_multi_agree() -> None:
    single = parse_b3_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")
    multi = parse_b3_multi("80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1", "05e3ac9a4f6e3b90", "1")
    assert single.trace_id == multi.trace_id == "80f198ee56343ba864fe8b2a57d3eff7"
    assert single.span_id == multi.span_id == "e457b5a2e4d86bd1"
    assert single.parent_id == multi.parent_id == "05e3ac9a4f6e3b90"
    assert single.source == "b3single" and multi.source == "b3"


def test_b3_64bit_ids_are_left_padded() -> None:
    assert parse_b3_multi("463ac35c9f6413ad").trace_id == "0000000000000000463ac35c9f6413ad"
    assert parse_b3_single("463ac35c9f6413ad-72485a3953bb6124").trace_id == "0000000000000000463ac35c9f6413ad"


@pytest.mark.parametrize("value", ["0", "1", "d"])
def test_b3_sampling_only_headers_carry_no_ids(value: str) -> None:
    assert parse_b3_single(value).trace_id is None


def test_b3_samples_from_logsamples() -> None:
    path = LOGSAMPLES / "headers-b3-propagation.txt"
    if not path.exists():
        pytest.skip("logsamples not available")
    found = 0
    for line in path.read_text().splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "b3" and "-" in value:
            assert parse_b3_single(value).trace_id is not None, line
            found += 1
        if name.strip().lower() == "x-b3-traceid":
            assert parse_b3_multi(value).trace_id is not None, line
            found += 1
    assert found >= 2


# --- X-Ray, GCP
def test_xray_root_to_w3c() -> None:
    ctx = parse_xray("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    assert ctx.trace_id == "5759e988bd862e3fe1be46a994272793"
    assert ctx.parent_id == "53995c3f42cd8ad8" and ctx.flags == "01" and ctx.source == "xray"
    assert parse_xray("1-58337281-1d84f3d73c47ec4e58577259").trace_id == "583372811d84f3d73c47ec4e58577259"
    assert parse_xray("Root=1-58337281-zz").invalid_reason == "malformed"


def test_gcp_forms() -> None:
    ctx = parse_gcp_context("105445aa7843bc8bf206b12000100000/1;o=1")
    assert ctx.trace_id == "105445aa7843bc8bf206b12000100000" and ctx.parent_id == "0000000000000001"
    assert ctx.flags == "01"
    assert parse_gcp_trace("projects/my-proj/traces/06796866738c859f2f19b7cfb3214824").trace_id == \
        "06796866738c859f2f19b7cfb3214824"


@pytest.mark.parametrize("value", ["-", "", "0", "00000000000000000000000000000000", "null"])
def test_placeholders_are_absent(value: str) -> None:
    assert is_placeholder(value)
    assert parse_dialect_id(value, "otelTraceID").trace_id is None
    assert parse_dialect_id(value, "otelTraceID").invalid_reason is None


def test_dialect_ids_and_sources() -> None:
    assert parse_dialect_id("5B8EFFF798038103D269B633813FC60C", "otel").trace_id == "5b8efff798038103d269b633813fc60c"
    assert parse_dialect_id("2869b25b5469590610fea49ac04af7da", "trace.id").source == "ecs"
    assert parse_dialect_id("2869b25b5469590610fea49ac04af7da", "otelTraceID").source == "otel"
    assert parse_dialect_id("2869b25b5469590610fea49ac04af7da", "traceId").source == "mdc"
    assert parse_dialect_id("Root=1-5759e988-bd862e3fe1be46a994272793", "trace_id").source == "xray"
    assert parse_dialect_id("not-a-trace", "trace_id").invalid_reason == "malformed"


# --- DNs, thumbprints, serials, verify results
@pytest.mark.parametrize(("dn", "expected"), [
    ("/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client", "CN=Test Client,OU=Lyft,L=San Francisco,ST=CA,C=US"),
    ("CN=myclient, OU=Documentation Team, DC=example, DC=com", "CN=myclient,OU=Documentation Team,DC=example,DC=com"),
    ("/CN=a,b/O=x", "O=x,CN=a\\,b"),
    ('"CN=quoted,O=Org"', "CN=quoted,O=Org"),
    ("-", None),
])
def test_dn_to_rfc2253(dn: str, expected: str | None) -> None:
    assert dn_to_rfc2253(dn) == expected


def test_thumbprint_forms_agree() -> None:
    hex_lower = "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688"
    colon = ":".join(hex_lower[i:i + 2] for i in range(0, 64, 2)).upper()
    b64url = base64.urlsafe_b64encode(bytes.fromhex(hex_lower)).rstrip(b"=").decode()
    for form in (hex_lower, colon, b64url, "sha256:" + hex_lower):
        tp = normalize_thumbprint(form)
        assert tp is not None and tp.algorithm == "sha256" and tp.hex_upper == hex_lower.upper(), form
    assert thumbprint_b64url(hex_lower.upper()) == b64url
    sha1 = normalize_thumbprint("A9:4A:8F:E5:CC:B1:9B:A6:1C:4C:08:73:D3:91:E9:87:98:2F:BB:D3")
    assert sha1 is not None and sha1.algorithm == "sha1"
    assert normalize_thumbprint("deadbeef") is None
    assert normalize_thumbprint(hex_lower, "sha1") is None


def test_serial_and_verify() -> None:
    assert normalize_serial("7c:4e:3a:10:01") == "7C4E3A1001"
    assert normalize_serial("0x1f") == "1F"
    assert normalize_verify("SUCCESS") == "SUCCESS"
    assert normalize_verify("FAILED:certificate has expired") == "FAILED:certificate has expired"
    assert normalize_verify("NONE") == "NONE"
    assert normalize_verify("0") == "SUCCESS"
    assert normalize_verify("10") == "FAILED:certificate has expired"
    assert normalize_verify("untrusted") == "untrusted"
    assert normalize_verify("ok") == "SUCCESS"


# --- XFCC (Envoy headers.rst examples)
def test_xfcc_single_and_chain() -> None:
    one = parse_xfcc('By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;'
                     'Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com')
    assert len(one) == 1 and one[0].by == "http://frontend.lyft.com" and one[0].uri == "http://testclient.lyft.com"
    assert one[0].subject == "/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client"
    two = parse_xfcc('By=http://frontend.lyft.com;Hash=468e;URI=http://testclient.lyft.com,'
                     'By=http://backend.lyft.com;Hash=9ba6;URI=http://frontend.lyft.com')
    assert [e.by for e in two] == ["http://frontend.lyft.com", "http://backend.lyft.com"]
    dns = parse_xfcc('By=http://frontend.lyft.com;Hash=468e;URI=http://testclient.lyft.com;DNS=lyft.com;DNS=www.lyft.com')
    assert dns[0].dns == ["lyft.com", "www.lyft.com"]
    old = parse_xfcc("By=spiffe://a;SAN=spiffe://b")
    assert old[0].uri == "spiffe://b"


def test_xfcc_samples_from_logsamples() -> None:
    path = LOGSAMPLES / "headers-envoy-xfcc-xff.txt"
    if not path.exists():
        pytest.skip("logsamples not available")
    elements = [parse_xfcc(line.partition(":")[2]) for line in path.read_text().splitlines()
                if line.lower().startswith("x-forwarded-client-cert")]
    assert elements and all(els and all(e.by for e in els) for els in elements)


def test_xfcc_in_a_hop_gives_chain_and_workload() -> None:
    xfcc = ('By=spiffe://cluster.local/ns/default/sa/default;Hash=61ef4d6b2aa3e1fbdc0bd85a5b3b9fe5ba1f1ec75c1b0d4ea2abf1c6b2d0d3a7;'
            'Subject="";URI=spiffe://cluster.local/ns/default/sa/sleep')
    row, _ = to_hop({"in.xfcc": xfcc, "raw": {}}, HopContext("f", "x", "mesh", "envoy"), 1)
    assert row["tls.forwarded_by"] == ["spiffe://cluster.local/ns/default/sa/default"]
    assert row["workload.id"] == "spiffe://cluster.local/ns/default/sa/sleep"
    assert row["workload.id_source"] == "xfcc.uri"
    assert row["tls.client.hash.sha256"] == "61EF4D6B2AA3E1FBDC0BD85A5B3B9FE5BA1F1EC75C1B0D4EA2ABF1C6B2D0D3A7"


# --- Envoy RCD
@pytest.mark.parametrize(("raw", "norm"), [
    ("jwt_authn_access_denied{Audiences in Jwt are not allowed}", "jwt_authn_access_denied{Audiences_in_Jwt_are_not_allowed}"),
    ("jwt_authn_access_denied{Jwt_is_expired}", "jwt_authn_access_denied{Jwt_is_expired}"),
    ("rbac_access_denied_matched_policy[none]", "rbac_access_denied_matched_policy[none]"),
])
def test_rcd_spaces_and_underscores(raw: str, norm: str) -> None:
    assert rcd_normalize(raw) == norm
    row, _ = to_hop({"in.envoy_rcd": raw, "raw": {}}, HopContext("f", "x", "proxy", "envoy"), 1)
    assert row["failure.reason"] == norm and row["failure.origin"] == "self"
    row, _ = to_hop({"in.envoy_rcd": "via_upstream", "raw": {}}, HopContext("f", "x", "proxy", "envoy"), 1)
    assert row["failure.reason"] is None and row["failure.origin"] == "upstream"


# --- JWT claims seen in logs
def _jwt(claims: str) -> str:
    def enc(s: str) -> str:
        return base64.urlsafe_b64encode(s.encode()).rstrip(b"=").decode()

    header = enc('{"alg":"RS256","typ":"JWT"}')
    return f"{header}.{enc(claims)}.c2lnbmF0dXJl"


def test_jwt_claims_kept_token_never_stored() -> None:
    token = _jwt('{"iss":"https://idp.example.com","aud":["orders","billing"],"exp":1700003600,"iat":1700000000,'
                 '"azp":"web-app","scope":"orders:read orders:write","sub":"user-1","jti":"abc-123",'
                 '"cnf":{"x5t#S256":"bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}')
    assert jwt_claims(token)["iss"] == "https://idp.example.com"
    fields = parse_authorization("Bearer " + token)
    assert fields["token.type"] == "jwt" and fields["token.location"] == "header"
    assert fields["token.issuer"] == "https://idp.example.com"
    assert fields["token.audience"] == ["orders", "billing"]
    assert fields["token.client_id"] == "web-app"
    assert fields["token.scope"] == ["orders:read", "orders:write"]
    assert fields["token.expires_at"] == datetime(2023, 11, 14, 23, 13, 20, tzinfo=UTC)
    assert fields["token.cnf_x5t_s256"] == "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
    assert fields["token.subject_fp"] == fingerprint("user-1") and fields["token.id_fp"] == fingerprint("abc-123")
    assert fields["token.fingerprint"] == fingerprint(token)
    assert not any(token in str(v) or "user-1" == v for v in fields.values())


def test_scp_list_and_basic() -> None:
    token = _jwt('{"iss":"i","scp":["a","b"],"client_id":"c"}')
    fields = parse_authorization("Bearer " + token)
    assert fields["token.scope"] == ["a", "b"] and fields["token.client_id"] == "c"
    basic = parse_authorization("Basic " + base64.b64encode(b"alice:secret").decode())
    assert basic["token.type"] == "basic" and basic["enduser.id_fp"] == fingerprint("alice")


# --- timestamps
@pytest.mark.parametrize(("value", "expected"), [
    ("10/Oct/2000:13:55:36 -0700", datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC)),
    ("2019-12-04 21:02:31", datetime(2019, 12, 4, 21, 2, 31, tzinfo=UTC)),
    ("2023-03-03T05:29:06Z", datetime(2023, 3, 3, 5, 29, 6, tzinfo=UTC)),
    ("2024-05-02T09:12:44.1234567Z", datetime(2024, 5, 2, 9, 12, 44, 123456, tzinfo=UTC)),
    (1614232668342, datetime(2021, 2, 25, 5, 57, 48, 342000, tzinfo=UTC)),
    ("1573840000", datetime(2019, 11, 15, 17, 46, 40, tzinfo=UTC)),
    ("1544712660300000000", datetime(2018, 12, 13, 14, 51, 0, 300000, tzinfo=UTC)),
    ("Jun  1 12:00:00 2030 GMT", datetime(2030, 6, 1, 12, 0, tzinfo=UTC)),
    ("not a time", None),
])
def test_timestamps_to_utc(value: object, expected: datetime | None) -> None:
    assert parse_timestamp(value) == expected
