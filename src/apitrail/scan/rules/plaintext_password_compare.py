"""Password compared in plaintext.

What it does
------------
Reports ``==``/``!=`` comparisons between a stored password attribute and request data or a literal, in route
handlers and the helpers they call, and SQL queries that match a password column against a parameter
(``WHERE password = ...``). Comparisons with a hash call, confirmation fields and ``None`` checks are ignored.

Why is this bad
---------------
Comparing plaintext means passwords are stored in plaintext (or reversibly), so a database leak exposes every
user's password, and ``==`` leaks timing. SOC 2 CC6.1 requires credentials to be protected; CC6.7 restricts
their exposure.

Example
-------
```python
if user and request_data.get("password") == user.password:
```

Use instead
-----------
```python
if user and bcrypt.checkpw(request_data["password"].encode(), user.password_hash):
```

References
----------
- CWE-256: Plaintext Storage of a Password
- OWASP Password Storage Cheat Sheet
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apitrail.findings import Confidence, Finding, Severity
from apitrail.scan.model import AppModel
from apitrail.scan.rules._base import RuleMeta, make_finding

RULE = RuleMeta(
    id="APT-PWD-001",
    name="plaintext-password-compare",
    title="Password compared in plaintext",
    category="plaintext-password-compare",
    severity=Severity.HIGH,
    confidence=Confidence.HIGH,
    remediation={
        "default": "Store a salted slow hash (argon2/bcrypt/scrypt) and verify with the library's verify function.",
        "django": "Use user.check_password(raw) / django.contrib.auth.authenticate().",
        "flask": "Use werkzeug.security.check_password_hash(user.password_hash, password).",
        "fastapi": "Use passlib/pwdlib CryptContext.verify(plain, hashed).",
    },
)


def check(model: AppModel, config: Any = None) -> Iterator[Finding]:
    seen: set[tuple[str, str]] = set()
    for route in model.routes:
        for ev in route.facts.password_compares:
            key = (route.handler_file, route.handler)
            if key in seen:
                continue
            seen.add(key)
            yield make_finding(RULE, ev.file, ev.line, f"{route.key}: password compared in plaintext "
                               f"(`{ev.detail[:80]}`)", route=route, snippet=ev.detail)
    for s in model.settings:
        if s.get("kind") == "password-compare-sql":
            yield make_finding(RULE, s["file"], s["line"], "SQL query matches the password column in plaintext",
                               snippet=s.get("text", ""))
