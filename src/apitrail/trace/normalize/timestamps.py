"""Timestamps of every layer's logs -> timezone-aware UTC datetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = re.compile(r"-?[0-9]{9,19}(?:\.[0-9]+)?")
_FRACTION = re.compile(r"(\.\d{6})\d+")
_CLF = re.compile(r"\d{1,2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2}(?:\.\d+)?(?: [+-]\d{4})?")
_OPENSSL = re.compile(r"[A-Za-z]{3} +\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)? \d{4}(?: GMT| UTC)?")


def from_epoch(num: float | int) -> datetime | None:
    """Epoch seconds, milliseconds, microseconds or nanoseconds (chosen by magnitude)."""
    n = abs(num)
    if n < 1e11:
        micros = round(num * 1_000_000) if isinstance(num, float) else num * 1_000_000
    elif n < 1e14:
        micros = round(num * 1000) if isinstance(num, float) else num * 1000
    elif n < 1e17:
        micros = round(num) if isinstance(num, float) else num
    else:
        micros = int(num) // 1000
    try:
        return _EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        return None


_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                        "Dec"), start=1)}
_CLF_FAST = re.compile(r"(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})")


def _clf_fast(text: str) -> datetime | None:
    """The common CLF form without strptime (which costs ~10x more per line)."""
    m = _CLF_FAST.fullmatch(text)
    if m is None or m.group(2) not in _MONTHS:
        return None
    d, mon, y, hh, mm, ss, sign, oh, om = m.groups()
    try:
        local = datetime(int(y), _MONTHS[mon], int(d), int(hh), int(mm), int(ss), tzinfo=UTC)
    except ValueError:
        return None
    offset = timedelta(hours=int(oh), minutes=int(om))
    return local - offset if sign == "+" else local + offset


def parse_timestamp(value: object) -> datetime | None:
    """datetime, epoch number or digits, ISO 8601, CLF, ``YYYY-MM-DD HH:MM:SS`` (UTC) or OpenSSL form -> UTC."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, (int, float)):
        return from_epoch(value)
    text = str(value).strip()
    if text in ("", "-"):
        return None
    try:
        if _DIGITS.fullmatch(text):
            return from_epoch(float(text) if "." in text else int(text))
        if _CLF.fullmatch(text):
            fast = _clf_fast(text)
            if fast is not None:
                return fast
            fmt = "%d/%b/%Y:%H:%M:%S" + (".%f" if "." in text.split(" ")[0] else "") + (" %z" if " " in text else "")
            dt = datetime.strptime(text, fmt)
            return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
        if _OPENSSL.fullmatch(text):
            core = re.sub(r" +", " ", text).removesuffix(" GMT").removesuffix(" UTC")
            fmt = "%b %d %H:%M:%S.%f %Y" if "." in core else "%b %d %H:%M:%S %Y"
            return datetime.strptime(core, fmt).replace(tzinfo=UTC)
        iso = text.replace("z", "Z")
        iso = _FRACTION.sub(r"\1", iso)
        if len(iso) > 10 and iso[10] in "T ":
            dt = datetime.fromisoformat(iso)
            return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", iso):
            return datetime.fromisoformat(iso).replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
    return None


__all__ = ["from_epoch", "parse_timestamp"]
