"""Lines taken from the vendors' documentation (Envoy access log usage, HAProxy configuration.txt 8.2, nginx
ngx_http_log_module, Traefik access logs) parse into the documented fields."""

from __future__ import annotations

from typing import Any

from apitrail.trace.formats import get_format
from apitrail.trace.formats._base import FormatOptions


def _parse(fmt: str, line: str, template: str | None = None) -> dict[str, Any]:
    rec = get_format(fmt).make_parser(FormatOptions(template=template))(line)
    assert rec is not None
    return rec


def test_envoy_v3_operator_names_and_long_flags() -> None:
    fmt = ('[%START_TIME%] "%REQUEST_HEADER(:METHOD)% %REQUEST_HEADER(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
           "%RESPONSE_CODE% %RESPONSE_FLAGS_LONG% %RESPONSE_HEADER(X-ENVOY-UPSTREAM-SERVICE-TIME)% "
           '"%REQUEST_HEADER(X-REQUEST-ID)%"')
    rec = _parse("envoy_template", '[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 403 '
                 'UnauthorizedExternalService,RateLimited 100 "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"', fmt)
    assert rec["http.request.method"] == "POST" and rec["url.path"] == "/api/v1/locations"
    assert rec["response.flags"] == "UAEX,RL"
    assert rec["in.request_id"] == "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"


def test_envoy_typed_json_metadata_object() -> None:
    fmt = '{"typed_json_format": {"code": "%RESPONSE_CODE%", "jwt": "%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:p)%"}}'
    rec = _parse("envoy_template", '{"code": 200, "jwt": {"iss": "https://idp.example.com/", "aud": ["a"]}}', fmt)
    assert rec["http.response.status_code"] == 200
    assert rec["in.jwt_claims"] == {"iss": "https://idp.example.com/", "aud": ["a"]}


def test_haproxy_documented_examples() -> None:
    https = ('Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] https-in '
             'static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1" '
             "0/0/0/0/0 1wt.eu/TLSv1.3/TLS_AES_256_GCM_SHA384")
    rec = _parse("haproxy", https)
    assert rec["tls.protocol.version"] == "TLSv1.3" and rec["raw"]["ssl_c_err"] == "0"
    err = _parse("haproxy", "Dec  3 18:27:14 localhost haproxy[6103]: 127.0.0.1:56059 [03/Dec/2012:17:35:10.380] "
                 "frt/f1: SSL client certificate not trusted")
    # no failure.class from the parser: classify's tls-client-verify signal reads the failed verification
    assert err["in.cert_verify"].startswith("FAILED:") and "failure.class" not in err
    assert err["client.address"] == "127.0.0.1"
    tcp_clf = ('10.0.1.2 - - [06/Feb/2009:12:12:51 +0100] "TCP " 000 212 "" "" 33313 0443 "fnt" "bck" "srv1" '
               '0 0 0 5007 100 ---- 0 0 0 0 3 0 0 "" "" ')
    rec = _parse("haproxy", tcp_clf)
    assert "http.request.method" not in rec and rec["duration"] == 5.007


def test_haproxy_config_without_log_format_uses_the_option() -> None:
    cfg = "frontend f\n    option httpslog\n    capture request header X-Request-ID len 64\n"
    rec = _parse("haproxy_template", "10.0.1.2:33317 [06/Feb/2009:12:14:14.655] f b/s 1/0/1/2/4 200 5 - - ---- "
                 '1/1/1/1/0 0/0 {abc-123} "GET / HTTP/1.1" 0/0/0/0/0 api.example.com/TLSv1.3/TLS_AES_128_GCM_SHA256',
                 cfg)
    assert rec["in.request_id"] == "abc-123" and rec["server.address"] == "api.example.com"


def test_nginx_default_escapes_are_undone() -> None:
    rec = _parse("nginx", '10.0.0.1 - - [10/Oct/2024:13:55:36 +0000] "GET /caf\\xC3\\xA9 HTTP/1.1" 200 1 "-" '
                 '"a \\x22b\\x22"')
    assert rec["url.path"] == "/café" and rec["user_agent.original"] == 'a "b"'
    assert rec["raw"]["request"] == "GET /caf\\xC3\\xA9 HTTP/1.1"  # raw keeps the line as logged
