"""JWT signing key is hard-coded or guessable.

What it does
------------
Follows the key argument of ``jwt.encode``/``jwt.decode`` (PyJWT, python-jose) to its definition: a string
literal, a settings attribute, or a Flask ``app.config['SECRET_KEY']`` value. It also flags JWT secret
settings generated with the non-cryptographic ``random`` module or from a short digit string.

Why is this bad
---------------
With the HMAC key anyone can mint valid tokens for any user and role. A short or guessable key is
brute-forced offline from a single token. SOC 2 CC6.1 and CC6.7 require credentials and keys that protect
access to be secret and strong.

Example
-------
```python
app.config["SECRET_KEY"] = "random"
token = jwt.encode(payload, app.config.get("SECRET_KEY"), algorithm="HS256")
```

Use instead
-----------
```python
app.config["SECRET_KEY"] = os.environ["JWT_SECRET"]  # 32+ random bytes, secrets.token_urlsafe(32)
```

References
----------
- CWE-321: Use of Hard-coded Cryptographic Key; CWE-1391: Use of Weak Credentials
- RFC 8725 (JSON Web Token Best Current Practices), section 3.5
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apitrail.findings import Confidence, Finding, Severity
from apitrail.scan.model import AppModel
from apitrail.scan.rules._base import RuleMeta, make_finding

RULE = RuleMeta(
    id="APT-JWT-002",
    name="jwt-weak-secret",
    title="JWT signing key is hard-coded or guessable",
    category="jwt-weak-secret",
    severity=Severity.HIGH,
    confidence=Confidence.HIGH,
    remediation={
        "default": "Load a random key of at least 256 bits (secrets.token_urlsafe(32)) from the environment or a "
                   "secrets manager, or sign with an asymmetric key (RS256/ES256).",
    },
)


def check(model: AppModel, config: Any = None) -> Iterator[Finding]:
    # one finding per key: at the signing call when there is one, else at the first decode
    per_key: dict[str, dict[str, Any]] = {}
    for s in sorted((s for s in model.settings if s.get("kind") == "jwt" and s.get("key_literal")),
                    key=lambda s: (s["op"] != "encode", s["file"], s["line"])):
        per_key.setdefault(s["key_literal"]["fp"], s)
    for s in model.settings:
        if s.get("kind") == "jwt" and s.get("key_literal") and per_key.get(s["key_literal"]["fp"]) is s:
            lit = s["key_literal"]
            if lit.get("strength") == "placeholder" and "test" in s["file"]:
                continue
            yield make_finding(RULE, s["file"], s["line"],
                               f"JWT {s['op']} uses a hard-coded key (fingerprint {lit['fp']}) in {s['func']}",
                               snippet=f"{s['func']} {s['op']} {lit['fp']}",
                               severity=Severity.HIGH if lit.get("strength") != "strong" else Severity.MEDIUM)
        elif s.get("kind") == "secret" and s.get("source") == "generator":
            yield make_finding(RULE, s["file"], s["line"],
                               f"{s['name']} is generated with a weak random generator: it can be brute-forced",
                               snippet=f"{s['name']} generator")
