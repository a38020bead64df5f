"""Conformance of the gateway formats with their vendors' documented variants that snapshot fixtures do not cover:
API Gateway text templates (CLF, CSV, XML as in the AWS developer guide) and bare variables in JSON templates."""

from __future__ import annotations

from pathlib import Path

from _trace_helpers import hop_rows, reject_rows

from apitrail.trace.formats import get_format
from apitrail.trace.formats._base import FormatOptions
from apitrail.trace.ingest import IngestOptions, ingest_paths, parse_log_format_option
from apitrail.trace.store import Store

CLF = ('$context.identity.sourceIp $context.identity.caller $context.identity.user [$context.requestTime]'
       '"$context.httpMethod $context.resourcePath $context.protocol" $context.status $context.responseLength '
       '$context.requestId $context.error.messageString')
CSV = ('$context.identity.sourceIp,$context.identity.caller,$context.identity.user,$context.requestTime,'
       '$context.httpMethod,$context.resourcePath,$context.protocol,$context.status,$context.responseLength,'
       '$context.requestId,$context.error.responseType')
XML = ('<request id="$context.requestId"> <ip>$context.identity.sourceIp</ip> <caller>$context.identity.caller'
       '</caller> <user>$context.identity.user</user> <requestTime>$context.requestTime</requestTime> <httpMethod>'
       '$context.httpMethod</httpMethod> <resourcePath>$context.resourcePath</resourcePath> <status>$context.status'
       '</status> <protocol>$context.protocol</protocol> <responseLength>$context.responseLength</responseLength>'
       ' </request>')


def _ingest(tmp_path: Path, template: str, lines: list[str]) -> tuple[list[dict[str, object]], list[list[object]]]:
    (tmp_path / "template.txt").write_text(template)
    log = tmp_path / "access.log"
    log.write_text("\n".join(lines) + "\n")
    store = Store()
    spec = parse_log_format_option(f"access.log=apigw:@{tmp_path / 'template.txt'}")
    ingest_paths([log], IngestOptions(log_formats=(spec,)), store)
    return hop_rows(store), reject_rows(store)


def test_clf_template(tmp_path: Path) -> None:
    hops, rejects = _ingest(tmp_path, CLF, [
        '192.0.2.10 - - [09/Apr/2015:12:34:56 +0000]"GET /pets/{petId} HTTP/1.1" 200 132 '
        'c6af9ac6-7b61-11e6-9a41-93e8deadbeef "-"',
        '192.0.2.11 - - [09/Apr/2015:12:35:01 +0000]"POST /pets HTTP/1.1" 403 42 '
        'd1c2f4a0-7b61-11e6-8b2c-1f2e3d4c5b6a "Missing Authentication Token"',
        "not an access log line",
    ])
    assert rejects == [[3, "line does not match the API Gateway template"]]
    assert hops[0]["http.request.id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert hops[0]["http.route"] == "/pets/{petId}" and hops[0]["http.response.status_code"] == 200
    assert hops[0]["timestamp"] == "2015-04-09T12:34:56+00:00" and "failure.reason" not in hops[0]
    assert hops[1]["failure.reason"] == "Missing Authentication Token"


def test_csv_template(tmp_path: Path) -> None:
    hops, rejects = _ingest(tmp_path, CSV, [
        "198.51.100.1,-,-,01/Jun/2024:10:00:00 +0000,GET,/orders/{id},HTTP/1.1,401,26,"
        "8d3b4a2e-1f0c-4c7e-9a51-0e2b7c3d4f51,UNAUTHORIZED",
    ])
    assert rejects == []
    assert hops[0]["client.address"] == "198.51.100.1" and hops[0]["failure.reason"] == "UNAUTHORIZED"
    assert hops[0]["http.request.method"] == "GET" and hops[0]["http.response.status_code"] == 401


def test_xml_template(tmp_path: Path) -> None:
    hops, rejects = _ingest(tmp_path, XML, [
        '<request id="2f9d0b1c-6a5e-4d3c-8b7a-1c2d3e4f5a6b"> <ip>203.0.113.6</ip> <caller>-</caller> <user>-</user>'
        ' <requestTime>01/Jun/2024:10:00:01 +0000</requestTime> <httpMethod>DELETE</httpMethod> <resourcePath>'
        '/orders/{id}</resourcePath> <status>204</status> <protocol>HTTP/1.1</protocol> <responseLength>0'
        '</responseLength> </request>',
    ])
    assert rejects == []
    assert hops[0]["http.request.id"] == "2f9d0b1c-6a5e-4d3c-8b7a-1c2d3e4f5a6b"
    assert hops[0]["http.request.method"] == "DELETE" and hops[0]["http.response.status_code"] == 204


def test_text_template_has_no_fast_path_and_json_template_keeps_it() -> None:
    fmt = get_format("apigw")
    assert fmt.vector_for(FormatOptions(template=CLF)) is None
    bare = '{"requestId": "$context.requestId", "status": $context.status, "msg": $context.error.messageString}'
    vector = fmt.vector_for(FormatOptions(template=bare))
    assert vector is not None and {f.target for f in vector.fields} >= {"in.request_id", "failure.reason"}
