"""Keyed fingerprints and the raw-secret leak detector.

Fingerprint = ``"fp:" + base64url(HMAC-SHA256(key, value))[:22]`` (128 bits). The key is per installation: env
``APITRAIL_FP_KEY``, else ``<user config dir>/apitrail/fp.key`` created with 0600 permissions. The key is never
printed. A plain hash of a low-entropy secret would be a brute-force oracle; a keyed one still allows equality
joins across hops inside one installation.

The leak detector looks at one raw field (its path and value) and reports every secret-shaped span: JWTs,
``Authorization`` values, token-bearing query keys, AWS SigV4 parameters, cookies, subscription/API keys, PEM
private keys and cloud access keys. It returns spans, so callers fingerprint or replace them; nothing here
returns or logs the secret itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets as _stdlib_secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from apitrail.errors import ConfigError
from apitrail.secret_patterns import PROVIDER_KEYS

FP_PREFIX = "fp:"
_FP_RE = re.compile(r"fp:[A-Za-z0-9_-]{22}")
ENV_KEY = "APITRAIL_FP_KEY"


def _key_path() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("apitrail")) / "fp.key"


@lru_cache(maxsize=1)
def _key() -> bytes:
    env = os.environ.get(ENV_KEY)
    if env:
        return env.encode()
    path = _key_path()
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot read the fingerprint key file {path}: {exc.strerror}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    key = _stdlib_secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def reset_key_cache() -> None:
    """Forget the cached key (tests switch ``APITRAIL_FP_KEY``)."""
    _key.cache_clear()


def fingerprint(value: str | bytes) -> str:
    """Keyed fingerprint of a credential (never a plain hash)."""
    data = value.encode() if isinstance(value, str) else value
    digest = hmac.new(_key(), data, hashlib.sha256).digest()
    return FP_PREFIX + base64.urlsafe_b64encode(digest).decode()[:22]


def is_fingerprint(value: str) -> bool:
    return bool(_FP_RE.fullmatch(value))


# ------------------------------------------------------------------------------------------------ leak detection

# field names (any path segment, lower case) whose values are credentials
SECRET_FIELDS = frozenset({
    "authorization", "proxy-authorization", "http_authorization", "http_proxy_authorization",
    "cookie", "cookies", "set-cookie", "http_cookie", "cs(cookie)",
    "x-api-key", "api-key", "apikey", "api_key", "x-apikey", "http_x_api_key", "http_apikey",
    "ocp-apim-subscription-key", "http_ocp_apim_subscription_key", "subscription-key",
    "access_token", "id_token", "refresh_token", "client_secret", "password", "passwd",
    "x-amz-security-token", "x-auth-token", "x-access-token", "private_key", "token",
})

# values that mean "not there" or "already masked"
_PLACEHOLDERS = frozenset({"", "-", "redacted", "[redacted]", "<redacted>", "***", "****", "*****", "xxx",
                           "null", "none", "{}", "[]", "masked", "[filtered]", "filtered", "true", "false", "0"})

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{12,}=*)")
_BASIC = re.compile(r"(?i)\bbasic\s+([A-Za-z0-9+/]{6,}={0,2})")
_QUERY = re.compile(
    r"(?i)(?:^|[?&;\s\"'{,])(access_token|id_token|refresh_token|apikey|api_key|api-key|client_secret|password"
    r"|x-amz-signature|x-amz-credential|x-amz-security-token|awsaccesskeyid|signature|sig|token"
    r"|subscription-key)=([^&\s\"';,\\]+)"
)
_PEM = re.compile(
    r"-----BEGIN(?: |%20|\+)(?:[A-Z]+(?: |%20|\+))?PRIVATE(?: |%20|\+)KEY-----"
    r"(?:[\s\S]*?-----END(?: |%20|\+)(?:[A-Z]+(?: |%20|\+))?PRIVATE(?: |%20|\+)KEY-----)?"
)
# the leak kinds keep their historical names; the shapes are shared with the scan (apitrail.secret_patterns)
_LEAK_KIND = {"aws-access-key": "aws_access_key", "google-api-key": "gcp_api_key", "github-token": "github_token",
              "slack-token": "slack_token", "stripe-key": "stripe_key", "gitlab-token": "gitlab_token",
              "azure-storage-key": "azure_storage_key"}
_CLOUD = tuple((_LEAK_KIND[kind], rx) for kind, rx in PROVIDER_KEYS if kind in _LEAK_KIND)
_AWS_QUERY_KEYS = frozenset({"x-amz-signature", "x-amz-credential", "x-amz-security-token", "awsaccesskeyid"})

# A case-insensitive superset of everything above, for the SQL fast path (RE2 syntax). A test checks that any
# value with a leak also matches this prefilter; a matching row simply takes the Python path.
PREFILTER = (
    r"(?i)(eyj|bearer|basic|token|api[-_]?key|apikey|x-amz-|awsaccesskeyid|cookie|ocp-apim|subscription[-_]key"
    r"|private|akia|asia|aiza|gh[pousr]_|github_pat|xox[abprs]-|k_live_|glpat-|accountkey|authorization"
    r"|password|passwd|secret|signature|sig=)"
)
# Python side: lower-case first and search without (?i), an order of magnitude faster with this many branches
_PREFILTER_RE = re.compile(PREFILTER.removeprefix("(?i)"))


@dataclass(frozen=True)
class Leak:
    field: str
    kind: str
    start: int
    end: int

    def secret(self, value: str) -> str:
        return value[self.start:self.end]


@lru_cache(maxsize=4096)
def _field_kind(field: str) -> str | None:
    segs = [s.lower() for s in re.split(r"[.\[\]/]", field) if s]
    if not segs:
        return None
    for seg in reversed(segs):
        name = seg.removeprefix("http_") if seg.startswith("http_") and seg not in SECRET_FIELDS else seg
        name = name.replace("_", "-") if name.replace("_", "-") in SECRET_FIELDS else name
        if seg in SECRET_FIELDS or name in SECRET_FIELDS:
            if "cookie" in seg:
                return "cookie"
            if "authorization" in seg:
                return "authorization"
            if "subscription" in seg:
                return "subscription_key"
            if "key" in seg:
                return "api_key"
            if "password" in seg or "passwd" in seg or "secret" in seg:
                return "password"
            return "token"
    return None


def _basic_ok(token: str) -> bool:
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=False)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


def find_leaks(field: str, value: str) -> list[Leak]:
    """Every secret-shaped span in one raw field value (field-name rules plus value shapes)."""
    if not value or (_field_kind(field) is None and not _PREFILTER_RE.search(value.lower())):
        return []  # the cheap test first: most values of most fields
    if value.strip().lower() in _PLACEHOLDERS or is_fingerprint(value.strip()):
        return []
    leaks: list[Leak] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int) -> None:
        if end <= start:
            return
        span = value[start:end]
        if span.strip().lower() in _PLACEHOLDERS or is_fingerprint(span):
            return
        for i, (s, e) in enumerate(taken):
            if start < e and s < end:  # overlapping shapes (a JWT inside a bearer value): one span, the union
                taken[i] = (min(s, start), max(e, end))
                leaks[i] = Leak(field, leaks[i].kind, taken[i][0], taken[i][1])
                return
        taken.append((start, end))
        leaks.append(Leak(field, kind, start, end))

    for m in _PEM.finditer(value):
        add("private_key", m.start(), m.end())
    for m in _JWT.finditer(value):
        add("jwt", m.start(), m.end())
    for m in _BEARER.finditer(value):
        tok = m.group(1)
        if any(c.isdigit() for c in tok) or len(tok) >= 20:
            add("bearer_token", m.start(1), m.end(1))
    for m in _BASIC.finditer(value):
        if _basic_ok(m.group(1)):
            add("basic_credentials", m.start(1), m.end(1))
    for m in _QUERY.finditer(value):
        key = m.group(1).lower()
        add("aws_sigv4" if key in _AWS_QUERY_KEYS else "query_token", m.start(2), m.end(2))
    for kind, rx in _CLOUD:
        for m in rx.finditer(value):
            g = 1 if rx.groups else 0
            add(kind, m.start(g), m.end(g))
    fkind = _field_kind(field)
    if fkind is not None and not leaks:
        stripped = value.strip()
        start = value.index(stripped)
        add(fkind, start, start + len(stripped))
    return leaks


def scan_fields(raw: dict[str, str]) -> Iterator[Leak]:
    for field, value in raw.items():
        if isinstance(value, str):
            yield from find_leaks(field, value)


def redact_value(field: str, value: str) -> tuple[str, list[Leak]]:
    """Replace every secret span of ``value`` by its keyed fingerprint."""
    leaks = find_leaks(field, value)
    if not leaks:
        return value, []
    out = value
    found = leaks
    for _ in range(4):  # a replacement can expose a new shape (adjacent tokens): repeat to a fixpoint
        cur = out
        for leak in sorted(found, key=lambda lk: lk.start, reverse=True):
            out = out[:leak.start] + fingerprint(cur[leak.start:leak.end]) + out[leak.end:]
        found = find_leaks(field, out)
        if not found:
            break
    return out, leaks


def field_kind(field: str) -> str | None:
    """The secret kind a field is named after (``authorization``, ``cookie``, ``api_key``...), else None."""
    return _field_kind(field)


def prefilter_hit(text: str) -> bool:
    return bool(_PREFILTER_RE.search(text.lower()))


_CODE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\)*")


_OWN_TOKEN_FIELD = re.compile(r"token(?=\.(?:issuer|audience|subject_fp|client_id|scope|fingerprint|type|location|"
                              r"expires_at|issued_at|cnf_x5t_s256|id_fp)\b)")


def shapes_in(text: str) -> Iterable[str]:
    """Kinds of value-shaped secrets (no field context) in a whole output text; used by the output guard.

    A ``key=value`` pair whose value is a short code identifier (``password=password)`` quoted from source in
    scan evidence) is not a credential; every other shape is.
    """
    low = text.lower()
    # apitrail's own field names (token.issuer, missing_identity:mesh:token.scope) are masked, same length, so
    # they do not send every output line through the full scan
    masked = _OWN_TOKEN_FIELD.sub("xxxxx", low)
    if not _PREFILTER_RE.search(masked):
        return
    if "-----begin" in low:  # the one shape that spans lines
        for _ in _PEM.finditer(text):
            yield "private_key"
    # every other shape starts on a line with a prefilter hit and ends on it or on the next non-blank line
    # ("Bearer" wrapped at the end of a table row): scan only those windows
    starts = {low.rfind("\n", 0, m.start()) + 1 for m in _PREFILTER_RE.finditer(masked)}
    for start in sorted(starts):
        end = text.find("\n", start)
        while 0 <= end < len(text) - 1:
            nxt = text.find("\n", end + 1)
            following = text[end + 1:] if nxt < 0 else text[end + 1:nxt]
            end = nxt
            if following.strip():
                break
        line = text[start:] if end < 0 else text[start:end]
        for leak in find_leaks("", line):
            if leak.kind == "query_token":
                value = line[leak.start:leak.end]
                if _CODE_WORD.fullmatch(value) and len(value) < 24 and not any(c.isdigit() for c in value):
                    continue
            yield leak.kind


__all__ = [
    "ENV_KEY",
    "FP_PREFIX",
    "PREFILTER",
    "SECRET_FIELDS",
    "Leak",
    "find_leaks",
    "field_kind",
    "fingerprint",
    "is_fingerprint",
    "prefilter_hit",
    "redact_value",
    "reset_key_cache",
    "scan_fields",
    "shapes_in",
]
