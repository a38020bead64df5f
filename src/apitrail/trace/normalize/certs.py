"""Client-certificate identity: DNs, thumbprints, verify results and Envoy's x-forwarded-client-cert.

Certificates are public: thumbprints are kept in clear (upper hex, OTel style), subject/issuer as RFC 2253.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

_HEXCOLON = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2})+")
_HEX = re.compile(r"[0-9a-fA-F]+")
_B64 = re.compile(r"[A-Za-z0-9_\-+/]+=*")
_RDN_SPLIT = re.compile(r"(?<!\\),")


def _escape_rfc2253(value: str) -> str:
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=' or (ch == "#" and i == 0) or (ch == " " and i in (0, len(value) - 1)):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def dn_to_rfc2253(dn: str | None) -> str | None:
    """OpenSSL slash form (``/C=US/ST=CA/CN=x``, most significant first) or RFC 2253 -> RFC 2253.

    RFC 2253 lists the most specific RDN first, so the slash form is reversed. Spacing around ``,`` and ``=`` is
    removed; attribute values are otherwise kept as logged.
    """
    if dn is None:
        return None
    text = dn.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1].strip()
    if text in ("", "-"):
        return None
    if text.startswith("/"):
        parts = [p for p in re.split(r"(?<!\\)/", text[1:]) if p]
        rdns: list[str] = []
        for part in parts:
            key, sep, val = part.partition("=")
            if not sep:
                if rdns:  # a '/' inside a value: glue back to the previous RDN
                    rdns[-1] += "/" + part
                continue
            rdns.append(f"{key.strip()}={_escape_rfc2253(val.strip())}")
        return ",".join(reversed(rdns)) or None
    rdns = []
    for part in _RDN_SPLIT.split(text):
        key, sep, val = part.partition("=")
        if not sep:
            if rdns:
                rdns[-1] += "," + part
            continue
        rdns.append(f"{key.strip()}={val.strip()}")
    return ",".join(rdns) or None


@dataclass(frozen=True)
class Thumbprint:
    algorithm: str  # "sha256" | "sha1"
    hex_upper: str


def normalize_thumbprint(value: str | None, algorithm: str | None = None) -> Thumbprint | None:
    """SHA-1 or SHA-256 thumbprint in hex, colon-hex or base64(url) -> upper hex with its algorithm."""
    if value is None:
        return None
    v = value.strip()
    if v in ("", "-"):
        return None
    for prefix in ("sha256:", "sha1:", "SHA256:", "SHA1:", "sha-256:", "sha-1:"):
        if v.startswith(prefix):
            algorithm = algorithm or prefix.rstrip(":").replace("-", "").lower()
            v = v[len(prefix):]
    raw: bytes | None = None
    if _HEXCOLON.fullmatch(v):
        raw = bytes.fromhex(v.replace(":", ""))
    elif _HEX.fullmatch(v) and len(v) in (40, 64):
        raw = bytes.fromhex(v)
    elif _B64.fullmatch(v):
        s = v.rstrip("=").replace("+", "-").replace("/", "_")
        try:
            raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        except (binascii.Error, ValueError):
            raw = None
    if raw is None:
        return None
    length_alg = {20: "sha1", 32: "sha256"}.get(len(raw))
    if length_alg is None or (algorithm is not None and algorithm != length_alg):
        return None
    return Thumbprint(length_alg, raw.hex().upper())


def thumbprint_b64url(hex_upper: str) -> str:
    """Upper hex -> unpadded base64url (the RFC 8705 ``x5t#S256`` form)."""
    return base64.urlsafe_b64encode(bytes.fromhex(hex_upper)).rstrip(b"=").decode()


def normalize_serial(value: str | None) -> str | None:
    """Hex (optionally colon-separated or 0x-prefixed) -> upper hex; decimal-only long values are kept as hex."""
    if value is None:
        return None
    v = value.strip()
    if v in ("", "-"):
        return None
    if v.lower().startswith("0x"):
        v = v[2:]
    v = v.replace(":", "")
    if _HEX.fullmatch(v):
        return v.upper()
    return None


# HAProxy ssl_c_verify numbers -> OpenSSL verify names used in nginx's FAILED:<reason>
_X509_ERRORS = {
    "2": "unable to get issuer certificate",
    "9": "certificate is not yet valid",
    "10": "certificate has expired",
    "18": "self signed certificate",
    "19": "self signed certificate in certificate chain",
    "20": "unable to get local issuer certificate",
    "21": "unable to verify the first certificate",
    "23": "certificate revoked",
}


def normalize_verify(value: str | None) -> str | None:
    """nginx ``SUCCESS|FAILED:<reason>|NONE``, HAProxy ``ssl_c_verify`` numbers, Kong and Cloudflare statuses."""
    if value is None:
        return None
    v = value.strip()
    if v in ("", "-"):
        return None
    up = v.upper()
    if up in ("SUCCESS", "OK", "0"):
        return "SUCCESS"
    if up in ("NONE", "ABSENT"):
        return "NONE" if up == "NONE" else "absent"
    if up.startswith("FAILED"):
        return "FAILED:" + v[6:].lstrip(":") if len(v) > 6 else "FAILED"
    if v.isdigit():
        return "FAILED:" + _X509_ERRORS.get(v, f"x509 error {v}")
    low = v.lower()
    if low in ("untrusted", "expired", "notyetvalid", "unknown"):
        return low
    return v


@dataclass
class XfccElement:
    by: str | None = None
    hash: str | None = None
    subject: str | None = None
    uri: str | None = None
    dns: list[str] = field(default_factory=list)
    has_cert: bool = False


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    escaped = False
    for ch in text:
        if escaped:
            buf.append(ch)
            escaped = False
        elif ch == "\\":
            buf.append(ch)
            escaped = True
        elif ch == '"':
            quoted = not quoted
            buf.append(ch)
        elif ch == sep and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def _unquote_value(val: str) -> str:
    val = val.strip()
    if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
        val = val[1:-1].replace('\\"', '"')
    return val


def parse_xfcc(value: str | None) -> list[XfccElement]:
    """``x-forwarded-client-cert``: comma-separated elements (one per proxy), each ``;``-separated ``key=value``.

    Keys are case-insensitive; values are double-quoted when they hold ``,;=``. ``SAN=`` (old Envoy) is read as
    ``URI=``. ``Cert``/``Chain`` are only noted (the PEM itself is not kept).
    """
    if value is None or value.strip() in ("", "-"):
        return []
    elements: list[XfccElement] = []
    for chunk in _split_outside_quotes(value.strip(), ","):
        if not chunk.strip():
            continue
        el = XfccElement()
        for pair in _split_outside_quotes(chunk, ";"):
            key, sep, val = pair.partition("=")
            if not sep:
                continue
            k = key.strip().lower()
            v = _unquote_value(val)
            if k == "by":
                el.by = v or None
            elif k == "hash":
                el.hash = v or None
            elif k == "subject":
                el.subject = v or None
            elif k in ("uri", "san"):
                el.uri = v or None
            elif k == "dns":
                if v:
                    el.dns.append(v)
            elif k in ("cert", "chain"):
                el.has_cert = el.has_cert or bool(v)
        elements.append(el)
    return elements


def url_decode_pem(value: str) -> str:
    return unquote(value)


__all__ = [
    "Thumbprint",
    "XfccElement",
    "dn_to_rfc2253",
    "normalize_serial",
    "normalize_thumbprint",
    "normalize_verify",
    "parse_xfcc",
    "thumbprint_b64url",
]
