"""CORS allows any origin (or reflects it) for credentialed requests.

What it does
------------
Reads CORS configuration: Starlette/FastAPI ``CORSMiddleware`` (``allow_origins`` resolved through settings
to its default, ``allow_origin_regex``), flask-cors ``CORS(...)`` and django-cors-headers
``CORS_ALLOW_ALL_ORIGINS``. A wildcard or an unanchored/unescaped origin regex together with credentials is
high severity (Starlette and flask-cors then reflect the caller's Origin); a wildcard without credentials is
low severity.

Why is this bad
---------------
With credentials allowed for any origin, any website a user visits can call the API with the user's cookies and
read the answers. SOC 2 CC6.6 (boundary protection) and CC6.7 (restricting transmission of information) are
undermined when the browser's same-origin boundary is switched off.

Example
-------
```python
app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=True)
```

Use instead
-----------
```python
app.add_middleware(CORSMiddleware, allow_origins=["https://app.example.com"], allow_credentials=True)
```

References
----------
- CWE-942: Permissive Cross-domain Policy with Untrusted Domains
- OWASP API Security Top 10 2023, API8: Security Misconfiguration
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apitrail.findings import Confidence, Finding, Severity
from apitrail.scan.model import AppModel
from apitrail.scan.rules._base import RuleMeta, make_finding

RULE = RuleMeta(
    id="APT-CORS-001",
    name="cors-permissive",
    title="Permissive CORS policy",
    category="cors-permissive",
    severity=Severity.HIGH,
    confidence=Confidence.HIGH,
    remediation={
        "default": "List the exact trusted origins; never combine a wildcard or a loose regex with credentials.",
        "starlette": "Pass allow_origins=[...exact origins...] to CORSMiddleware; anchor and escape allow_origin_regex "
                     "(r'^https://([a-z]+\\.)?example\\.com$').",
        "fastapi": "Pass allow_origins=[...exact origins...] to CORSMiddleware; anchor and escape allow_origin_regex.",
        "flask": "Call CORS(app, origins=[...exact origins...]) and only then supports_credentials=True.",
        "django": "Set CORS_ALLOWED_ORIGINS to the exact origins instead of CORS_ALLOW_ALL_ORIGINS = True.",
    },
)


def check(model: AppModel, config: Any = None) -> Iterator[Finding]:
    for s in model.settings:
        if s.get("kind") != "cors":
            continue
        fw = s.get("framework", "")
        if s.get("credentials"):
            what = "a wildcard origin" if s.get("wildcard") else "a loose origin regex"
            yield make_finding(RULE, s["file"], s["line"],
                               f"CORS allows {what} together with credentials: any site can make authenticated "
                               "requests and read the responses", framework=fw, snippet=s.get("text", ""))
        elif s.get("wildcard") or s.get("reflected"):
            yield make_finding(RULE, s["file"], s["line"],
                               "CORS allows any origin (without credentials)", framework=fw,
                               severity=Severity.LOW, confidence=Confidence.MEDIUM, snippet=s.get("text", ""))
