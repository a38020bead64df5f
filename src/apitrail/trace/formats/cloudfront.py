"""Amazon CloudFront standard logs (access logs), legacy and v2: W3C extended format, tab-separated.

A file starts with ``#Version: 1.0`` and ``#Fields: <names>``; the ``#Fields`` header names the columns, so the
parser is stateful per file and follows it (v2 standard logging lets the user pick and reorder fields, and adds
fields such as ``timestamp(ms)``, ``cs-headers``, ``origin-fbl``, ``asn``, ``c-country``...). A file without a
header uses the documented default order of the 33 legacy fields (``date time x-edge-location sc-bytes c-ip
cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type
x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher
x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte
x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end``), or, for a headerless
line of 38 fields, v2's default order (those 33, then ``origin-fbl origin-lbl asn c-country
cache-behavior-path-pattern``: v2's ``plain`` output has no header). ``-`` means no value; user agent, query and
cookie are percent-encoded (spaces as ``%20``, sometimes encoded twice). v2 lets the delivery pick the field
delimiter: a line without a tab that splits on single spaces into the declared number of fields is read that way
(values never contain a raw space). v2 may select real-time field names: ``cs-user-agent``, ``cs-cookie``,
``cs-host`` (the viewer's Host header) and ``timestamp`` (epoch seconds) are mapped too.

Identity and failure fields:

* ``x-edge-request-id`` is the join key: CloudFront sends the same value to the origin as ``X-Amz-Cf-Id``;
* ``x-edge-result-type`` / ``x-edge-detailed-result-type``: ``Error`` with ``OriginDnsError``,
  ``OriginConnectError``, ``OriginReadTimeout``... is a dependency failure, ``ClientGeoBlocked`` or
  ``InvalidRequestCertificate`` an access decision; kept verbatim in ``failure.reason`` when the result type is
  ``Error``, ``LimitExceeded`` or ``CapacityExceeded``; ``sc-status`` ``000`` = the viewer went away;
* ``ssl-protocol`` / ``ssl-cipher``: the only identity fields (viewer mTLS results are in connection logs);
* secrets: ``cs-uri-query`` (``access_token=``, signed-URL ``Signature=``) goes to ``in.query`` and
  ``cs(Cookie)`` to ``in.cookie``, never to plain fields; ``cs-headers`` (v2/real-time) can carry
  ``Authorization`` and is decoded into header hints.

Log files can arrive up to 24 hours late, so time windows for joins with CloudFront must be wide.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

from apitrail.trace.formats._base import FormatOptions, LogFormat, Reject, Vector, VField
from apitrail.trace.formats._template_utils import (
    Applier,
    Record,
    applier_fields,
    header_applier,
    put,
    put_epoch,
    put_host,
    put_seconds,
    put_status,
    put_unquoted,
)

DEFAULT_FIELDS = (
    "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) "
    "cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken "
    "x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status "
    "fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len "
    "sc-range-start sc-range-end"
).split()
# standard logging (v2): the 33 legacy fields, then the fields only v2 offers, in the order AWS delivers them when
# every field is selected (a ``plain`` output has no ``#Fields`` header, so a headerless line is matched on count)
V2_EXTRA_FIELDS = "origin-fbl origin-lbl asn c-country cache-behavior-path-pattern".split()
DEFAULT_V2_FIELDS = DEFAULT_FIELDS + V2_EXTRA_FIELDS
_DEFAULT_BY_COUNT = {len(DEFAULT_FIELDS): tuple(DEFAULT_FIELDS), len(DEFAULT_V2_FIELDS): tuple(DEFAULT_V2_FIELDS)}

_ERROR_RESULTS = frozenset({"Error", "LimitExceeded", "CapacityExceeded"})


def _epoch_ms(rec: Record, value: str) -> None:
    try:
        rec["in.timestamp"] = int(value) / 1000.0
    except ValueError:
        pass


def _headers(rec: Record, value: str) -> None:
    # cs-headers: percent-encoded "Name:value" pairs separated by (encoded) newlines.
    for line in unquote(value).splitlines():
        name, sep, header_value = line.partition(":")
        if sep:
            applier = header_applier(name.strip())
            if applier is not None and header_value.strip():
                applier(rec, header_value.strip())


_FIELDS: dict[str, Applier] = {
    "x-edge-location": put("hop.instance"),
    "c-ip": put("client.address"),
    "cs-method": put("http.request.method"),
    "cs(Host)": put_host("server.address"),
    "x-host-header": put_host("server.address"),
    "cs-uri-stem": put("url.path"),
    "sc-status": put_status,
    "cs(User-Agent)": put_unquoted("user_agent.original"),
    "cs-user-agent": put_unquoted("user_agent.original"),  # the real-time log name (v2 may select it)
    "cs-uri-query": put("in.query"),
    "cs(Cookie)": put("in.cookie"),
    "cs-cookie": put("in.cookie"),
    "cs-host": put_host("server.address"),
    "x-edge-request-id": put("in.edge_request_id"),
    "time-taken": put_seconds(),
    "x-forwarded-for": put("http.request.header.x-forwarded-for"),
    "ssl-protocol": put("tls.protocol.version"),
    "timestamp": put_epoch,
    "timestamp(ms)": _epoch_ms,
    "cs-headers": _headers,
}
# x-host-header must win over cs(Host) (the distribution domain): apply it last.
# cs-host is the real-time log name of the viewer's Host header: it wins over both.
_ORDER_LAST = ("x-host-header", "cs-host")


def _apply_order(names: list[str] | tuple[str, ...]) -> list[str]:
    """The names in the order their appliers run: the _ORDER_LAST ones after the others, in _ORDER_LAST order."""
    return ([n for n in names if n not in _ORDER_LAST]
            + sorted((n for n in names if n in _ORDER_LAST), key=_ORDER_LAST.index))


class _Layout:
    """One column layout (a #Fields header, or a documented default order) compiled to per-index appliers."""

    def __init__(self, names: list[str] | tuple[str, ...]) -> None:
        self.names = tuple(names)
        index = {n: i for i, n in enumerate(names)}
        self.plan = tuple((index[n], _FIELDS[n]) for n in _apply_order(names) if n in _FIELDS)
        self.date_i = index.get("date", -1)
        self.time_i = index.get("time", -1)
        self.result_i = tuple(index[n] for n in ("x-edge-result-type", "x-edge-response-result-type") if n in index)
        self.detail_i = index.get("x-edge-detailed-result-type", -1)


_DEFAULT_LAYOUTS = {count: _Layout(names) for count, names in _DEFAULT_BY_COUNT.items()}


class CloudFrontParser:
    """Per-file parser: follows ``#Fields`` headers; without one, the documented default order (legacy 33 fields,
    or v2's 38) chosen by the line's field count.

    Fields are tab-separated; standard logging v2 lets the delivery use another delimiter, so a line without a tab
    that splits on single spaces into exactly the declared number of fields is read that way (CloudFront
    percent-encodes spaces inside values, so a space can only be a delimiter)."""

    def __init__(self) -> None:
        self.layout: _Layout | None = None  # None until a #Fields header: the default layouts apply

    def set_fields(self, names: list[str]) -> None:
        self.layout = _Layout(names)

    @property
    def names(self) -> tuple[str, ...]:
        return self.layout.names if self.layout is not None else tuple(DEFAULT_FIELDS)

    def __call__(self, line: str) -> Record | None:
        line = line.rstrip("\r\n")
        if line.startswith("#"):
            if line.startswith("#Fields:"):
                names = line[len("#Fields:"):].split()
                if not names:
                    raise Reject("empty #Fields header")
                self.set_fields(names)
            return None
        if not line.strip():
            return None
        values = line.split("\t")
        layout = self.layout
        if layout is None:
            layout = _DEFAULT_LAYOUTS.get(len(values))
            if layout is None and len(values) == 1:
                layout = _DEFAULT_LAYOUTS.get(len(line.split(" ")))
                values = line.split(" ") if layout is not None else values
            if layout is None:
                raise Reject(f"line has {len(values)} tab-separated fields, the default layouts have "
                             f"{len(DEFAULT_FIELDS)} or {len(DEFAULT_V2_FIELDS)}")
        elif len(values) != len(layout.names):
            spaced = line.split(" ") if len(values) == 1 else None
            if spaced is None or len(spaced) != len(layout.names):
                raise Reject(f"line has {len(values)} tab-separated fields, the header names {len(layout.names)}")
            values = spaced
        rec: Record = {"raw": dict(zip(layout.names, values, strict=True))}
        for i, apply in layout.plan:
            v = values[i]
            if v and v != "-":
                apply(rec, v)
        if layout.date_i >= 0 and layout.time_i >= 0 and "in.timestamp" not in rec:
            date, time = values[layout.date_i], values[layout.time_i]
            if not (_DATE.fullmatch(date) and _TIME.fullmatch(time)):
                raise Reject("date/time fields are not in the W3C form")
            rec["in.timestamp"] = f"{date} {time}"
        if layout.detail_i >= 0 and any(values[i] in _ERROR_RESULTS for i in layout.result_i):
            detail = values[layout.detail_i]
            result = next(values[i] for i in layout.result_i if values[i] in _ERROR_RESULTS)
            rec["failure.reason"] = detail if detail not in ("", "-") else result
        return rec


_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_TIME = re.compile(r"\d\d:\d\d:\d\d(?:\.\d+)?")


def _file_vector(options: FormatOptions, data: bytes) -> Vector | None:
    """The SQL fast path of a file with one column layout (its #Fields header, or the default order)."""
    headers = {ln for ln in re.findall(rb"^#Fields:[^\r\n]*", data, re.MULTILINE)}
    if len(headers) > 1:
        return None  # the layout changes inside the file: Python follows it line by line
    if headers:
        names = headers.pop()[len(b"#Fields:"):].decode("utf-8", "replace").split()
    else:  # the default layout of the first data line's field count (other lines do not match: Python)
        first_line = re.search(rb"^[^#\r\n][^\r\n]*", data, re.MULTILINE)
        count = first_line.group(0).count(b"\t") + 1 if first_line else len(DEFAULT_FIELDS)
        names = list(_DEFAULT_BY_COUNT.get(count, DEFAULT_FIELDS))
    if not names or len(set(names)) != len(names):
        return None
    groups = [r"([^\t]*)"] * len(names)
    extract = list(names)
    fields: list[VField] = []
    if "date" in names and "time" in names:
        d = names.index("date")
        if names.index("time") != d + 1:
            return None
        groups[d] = "(" + groups[d]  # one more group around date<TAB>time for the timestamp
        groups[d + 1] += ")"
        extract.insert(d, "_date_time")
        fields.append(VField("in.timestamp", "_date_time", "w3c_datetime"))
    order = _apply_order(names)
    found, slow = applier_fields(order, [_FIELDS.get(n) for n in order])
    fields.extend(found)
    results = tuple(n for n in ("x-edge-result-type", "x-edge-response-result-type") if n in names)
    sql_fields: tuple[tuple[str, str], ...] = ()
    if results and "x-edge-detailed-result-type" in names:
        # as CloudFrontParser: an error result keeps the detailed result type, else the first error result
        errors = ", ".join(f"'{e}'" for e in sorted(_ERROR_RESULTS))
        any_error = " OR ".join(f'r."{n}" IN ({errors})' for n in results)
        first = " ".join(f'WHEN r."{n}" IN ({errors}) THEN r."{n}"' for n in results)
        detail = 'r."x-edge-detailed-result-type"'
        sql_fields = (("failure.reason", f"CASE WHEN {any_error} THEN CASE WHEN {detail} NOT IN ('', '-') "
                                         f"THEN {detail} ELSE CASE {first} END END END"),)
    return Vector(kind="regex", fields=tuple(fields), pattern=r"\t".join(groups), slow_if=tuple(slow),
                  groups=tuple(extract), raw_groups=tuple(names), sql_fields=sql_fields,
                  slow_if_equals=() if sql_fields else tuple((n, tuple(sorted(_ERROR_RESULTS))) for n in results))


def _make_parser(options: FormatOptions) -> Callable[[str], Record | None]:
    return CloudFrontParser()


def _detect(first_lines: list[str]) -> float:
    lines = [x.rstrip("\r\n") for x in first_lines if x.strip()]
    if not lines:
        return 0.0
    if any(x.startswith("#Fields:") and "x-edge-" in x for x in lines):
        return 0.98
    hits = sum(1 for x in lines if len(x.split("\t")) in _DEFAULT_BY_COUNT and _DATE.match(x))
    return 0.9 * hits / len(lines)


FORMAT = LogFormat(
    name="cloudfront",
    layer="cdn",
    product="cloudfront",
    kind="text",
    doc="Amazon CloudFront standard logs (W3C, #Fields-driven; v2 field selection; default order without header).",
    detect=_detect,
    make_parser=_make_parser,
    stateful=True,
    make_file_vector=_file_vector,
    header_prefix=b"#Fields:",
)

__all__ = ["DEFAULT_FIELDS", "DEFAULT_V2_FIELDS", "FORMAT", "CloudFrontParser"]
