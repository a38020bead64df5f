"""Ingest reads files in blocks of whole lines (bounded memory) and reads gzip files; both give the same rows as
reading the file whole, and a truncated gzip keeps the lines before the damage and says so."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apitrail.cli import app
from apitrail.trace.ingest import IngestOptions, check_strict, ingest_paths
from apitrail.trace.store import Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "trace"
runner = CliRunner()
# every fixture format, including CloudFront (a #Fields header: read whole) and one that is stateless
DIRS = ["nginx", "envoy", "kong", "cloudflare_http_requests", "backend_json", "cloudfront", "aws_alb", "haproxy"]


def _snapshot(store: Store) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, ...]]]:
    hops = store.con.execute('SELECT * EXCLUDE ("source.file") FROM hops '
                             'ORDER BY "source.file", "source.line"').fetchall()
    rejects = store.con.execute('SELECT "source.format", "source.line", reason FROM rejects '
                                'ORDER BY "source.file", "source.line"').fetchall()
    leaks = store.con.execute("SELECT line, field, kind, fingerprint FROM leaks ORDER BY ALL").fetchall()
    return hops, rejects, leaks


def _ingest(paths: list[Path], **kw: object) -> tuple[Store, object]:
    store = Store()
    result = ingest_paths(paths, IngestOptions(workers=1, **kw), store)  # type: ignore[arg-type]
    return store, result


@pytest.mark.parametrize("block_bytes", [1, 57, 4096])
def test_blocks_give_the_rows_of_a_whole_read(block_bytes: int) -> None:
    paths = [FIXTURES / d for d in DIRS]
    whole, whole_res = _ingest(paths)
    blocked, blocked_res = _ingest(paths, block_bytes=block_bytes)
    assert _snapshot(blocked) == _snapshot(whole)
    assert [(f.lines, f.hops, f.rejects, f.blank, f.headers) for f in blocked_res.files] == \
        [(f.lines, f.hops, f.rejects, f.blank, f.headers) for f in whole_res.files]
    assert blocked_res.reconciled and blocked_res.total("hops") > 20


def _copy_gzipped(src: Path, dst: Path) -> Path:
    dst.write_bytes(gzip.compress(src.read_bytes()))
    return dst


def test_gzip_file_gives_the_rows_of_the_plain_file(tmp_path: Path) -> None:
    plain = next((FIXTURES / "nginx").glob("*.log"))
    copy = tmp_path / plain.name
    copy.write_bytes(plain.read_bytes())
    (tmp_path / "zipped").mkdir()
    zipped = _copy_gzipped(plain, tmp_path / "zipped" / plain.name)
    a, ra = _ingest([copy], format_names=(("*", "nginx"),))
    b, rb = _ingest([zipped], format_names=(("*", "nginx"),))
    assert _snapshot(a) == _snapshot(b)
    assert rb.files[0].lines == ra.files[0].lines > 0 and rb.files[0].read_error is None


def test_gzip_format_is_detected_from_the_decompressed_lines(tmp_path: Path) -> None:
    src = FIXTURES / "cloudfront" / "standard.log"
    zipped = _copy_gzipped(src, tmp_path / "E2ABCDEF.2024-05-02-09.abcd1234.gz")
    _, res = _ingest([zipped], block_bytes=64)
    assert res.files[0].format == "cloudfront" and res.files[0].hops > 0


def test_truncated_gzip_keeps_the_lines_before_the_damage(tmp_path: Path) -> None:
    line = ('203.0.113.9 - - [02/May/2024:09:00:00 +0000] "GET /api/v1/orders HTTP/1.1" 200 512 "-" '
            '"curl/8.4.0"\n')
    full = gzip.compress((line * 5000).encode())
    cut = tmp_path / "access.log.gz"
    cut.write_bytes(full[: len(full) // 2])
    store, res = _ingest([cut], format_names=(("*", "nginx"),), block_bytes=1024)
    fr = res.files[0]
    assert fr.read_error is not None and "gzip" in fr.read_error
    assert 0 < fr.hops < 5000 and fr.reconciled
    assert check_strict(res, IngestOptions(strict=True)) is not None
    assert check_strict(res, IngestOptions(strict=False)) is None
    out = runner.invoke(app, ["trace", "ingest", str(cut), "--format-name", "*=nginx"])
    assert out.exit_code == 0 and "read stopped after line" in out.output
    assert runner.invoke(app, ["trace", "ingest", str(cut), "--format-name", "*=nginx", "--strict"]).exit_code == 3


def test_a_leading_byte_order_mark_is_not_part_of_the_first_line(tmp_path: Path) -> None:
    src = FIXTURES / "kong" / "logsamples.jsonl"
    plain, marked = tmp_path / "plain.jsonl", tmp_path / "marked.jsonl"
    plain.write_bytes(src.read_bytes())
    marked.write_bytes(b"\xef\xbb\xbf" + src.read_bytes())
    a, ra = _ingest([plain])
    b, rb = _ingest([marked])
    assert rb.files[0].format == "kong" and rb.files[0].rejects == ra.files[0].rejects == 0
    assert _snapshot(a)[0] == _snapshot(b)[0]


def test_pool_rows_collected_across_blocks_equal_inline_parsing(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows the SQL leaves to Python go to the worker pool and are stored after the next block's SQL: the same
    rows, rejects and leaks as parsing them inline, for several files and blocks."""
    from apitrail.trace import ingest

    line = ('203.0.113.{i} - - [02/May/2024:09:00:{s:02d} +0000] "GET /api/v1/orders?access_token=tok{i}abcdef '
            'HTTP/1.1" 200 512 "-" "curl/8.4.0"\n')
    paths = []
    for f in range(2):
        path = tmp_path / f"access{f}.log"
        path.write_text("".join(line.format(i=i, s=i % 60) for i in range(300)) + "garbage line\n\n")
        paths.append(path)
    inline, inline_res = _ingest(paths, format_names=(("*", "nginx"),), block_bytes=4096)
    monkeypatch.setattr(ingest, "POOL_MIN_LINES", 1)
    store = Store()
    pooled_res = ingest_paths(paths, IngestOptions(workers=2, format_names=(("*", "nginx"),), block_bytes=4096),
                              store)
    assert _snapshot(store) == _snapshot(inline)
    assert [(f.lines, f.hops, f.python_rows, f.rejects, f.leaks) for f in pooled_res.files] == \
        [(f.lines, f.hops, f.python_rows, f.rejects, f.leaks) for f in inline_res.files]
    assert pooled_res.files[0].python_rows == 300 and pooled_res.files[0].leaks >= 300


def test_decode_log_bytes_for_in_memory_callers() -> None:
    from apitrail.errors import LogFormatError
    from apitrail.trace.ingest import decode_log_bytes

    text = b"line one\nline two\n"
    assert decode_log_bytes(gzip.compress(text)) == text
    assert decode_log_bytes(b"\xef\xbb\xbf" + text) == text
    assert decode_log_bytes(text) == text
    with pytest.raises(LogFormatError):
        decode_log_bytes(gzip.compress(text)[:12])


def test_cloudfront_header_in_force_carries_into_later_blocks(tmp_path: Path) -> None:
    """The #Fields line of an earlier block still declares the columns of the next ones; a layout change
    mid-file is followed line by line (by Python for the block that changes it)."""
    one = "#Version: 1.0\n#Fields: date time c-ip sc-status cs-uri-stem\n"
    rows_one = "".join(f"2024-05-02\t09:00:{i:02d}\t10.0.0.{i}\t200\t/a/{i}\n" for i in range(40))
    two = "#Fields: date time sc-status c-ip cs-uri-stem\n"
    rows_two = "".join(f"2024-05-02\t10:00:{i:02d}\t404\t10.0.1.{i}\t/b/{i}\n" for i in range(40))
    path = tmp_path / "E2ABC.2024-05-02-09.log"
    path.write_text(one + rows_one + two + rows_two)
    fast, fast_res = _ingest([path], format_names=(("*", "cloudfront"),), block_bytes=256)
    ref, _ = _ingest([path], format_names=(("*", "cloudfront"),), engine="python")
    assert _snapshot(fast) == _snapshot(ref)
    fr = fast_res.files[0]
    assert fr.hops == 80 and fr.fast_rows > 40  # blocks after each header settle in SQL
    statuses = [r[0] for r in fast.con.execute('SELECT "http.response.status_code" FROM hops '
                                                'ORDER BY "source.line"').fetchall()]
    assert statuses == [200] * 40 + [404] * 40
