"""JWT accepted without verifying its signature.

What it does
------------
Flags ``jwt.decode`` calls (PyJWT, python-jose) that turn verification off (``options={"verify_signature":
False}`` directly or through a constant, ``verify=False``), accept ``alg: none``, take the algorithm from the
token's own header, decode without a key, or read claims with ``get_unverified_claims``.

Why is this bad
---------------
A token whose signature is not checked is just JSON the client wrote: anyone can claim to be any user or an
admin. SOC 2 CC6.1 (logical access) and CC6.6 (protection against external threats) rely on the identity in
the token being authentic.

Example
-------
```python
payload = jwt.decode(token, SECRET_KEY, algorithms=["HS256"], options={"verify_signature": False})
```

Use instead
-----------
```python
payload = jwt.decode(token, SECRET_KEY, algorithms=["HS256"])  # a fixed allow-list, never from the header
```

References
----------
- CWE-347: Improper Verification of Cryptographic Signature
- RFC 8725, sections 2.1 and 3.1
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apitrail.findings import Confidence, Finding, Severity
from apitrail.scan.model import AppModel
from apitrail.scan.rules._base import RuleMeta, make_finding

RULE = RuleMeta(
    id="APT-JWT-001",
    name="jwt-unverified",
    title="JWT signature not verified",
    category="jwt-unverified",
    severity=Severity.CRITICAL,
    confidence=Confidence.HIGH,
    remediation={
        "default": "Call jwt.decode(token, key, algorithms=[\"HS256\"]) with a fixed algorithm list and without "
                   "verify_signature=False; never pick the algorithm or key from the token header.",
        "django": "Use djangorestframework-simplejwt's JWTAuthentication, which verifies signatures, instead of "
                  "decoding tokens by hand.",
        "fastapi": "Verify the token in the auth dependency with jwt.decode(token, key, algorithms=[...]) and "
                   "raise HTTPException(401) on failure.",
    },
)


def check(model: AppModel, config: Any = None) -> Iterator[Finding]:
    for s in model.settings:
        if s.get("kind") != "jwt" or s.get("op") not in ("decode", "get_unverified_claims", "decode_complete"):
            continue
        if "test" in s["file"].split("/")[0]:
            continue
        why = ""
        if s.get("verify_false"):
            why = "signature verification is turned off"
        elif s.get("alg_none"):
            why = "the 'none' algorithm is accepted"
        elif s.get("alg_from_token"):
            why = "the algorithm is taken from the token header"
        elif s.get("unverified_api"):
            why = "claims are read without verification"
        elif s.get("no_key"):
            why = "no key is given, so the signature cannot be verified"
        if not why:
            continue
        yield make_finding(RULE, s["file"], s["line"], f"JWT decoded in {s['func']} but {why}",
                           snippet=f"{s['func']} {why}")
