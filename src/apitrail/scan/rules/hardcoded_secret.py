"""Hard-coded secret in code or committed configuration.

What it does
------------
Finds secret literals: provider-shaped keys (AWS, GitHub, Slack, Stripe, Google, SendGrid, OpenAI), PEM private
keys, connection strings with an embedded password, literals assigned to secret-named variables or settings
(``SECRET_KEY``, ``*_PASSWORD``, ``API_KEY``, ``os.getenv("X", "default")`` defaults), seeded credentials
passed in code, and ``KEY=value`` lines in committed ``.env``/YAML/JSON/INI files. Placeholders
(``changethis``, ``<your-key>``, ``${VAR}``), example files and test fixtures are recognised and reported at
``info`` severity only. Only a keyed fingerprint of the value ever appears in the output.

Why is this bad
---------------
Anyone with read access to the repository (or a leaked copy, a container image, a CI log) gets the credential.
Secrets in source cannot be rotated without a deploy and are rarely rotated at all. SOC 2 CC6.1 asks that
credentials to protected assets are restricted, and CC6.7 that they are not transmitted or stored where
unauthorised people can read them.

Example
-------
```python
app.config["SECRET_KEY"] = "s3cr3t-2f9a8e7c"
DATABASE_URL = "postgresql://app:hunter2@db/app"
```

Use instead
-----------
```python
app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
DATABASE_URL = os.environ["DATABASE_URL"]
```
Load secrets from the environment or a secrets manager, and commit only `.env.example` with placeholders.

References
----------
- CWE-798: Use of Hard-coded Credentials
- OWASP API Security Top 10 2023, API8: Security Misconfiguration
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apitrail.findings import Confidence, Finding, Severity
from apitrail.scan.model import AppModel
from apitrail.scan.rules._base import RuleMeta, make_finding

RULE = RuleMeta(
    id="APT-SECRET-001",
    name="hardcoded-secret",
    title="Secret literal committed in code or configuration",
    category="hardcoded-secret",
    severity=Severity.HIGH,
    confidence=Confidence.HIGH,
    remediation={
        "default": "Read the value from the environment or a secrets manager and rotate the exposed credential.",
        "django": "Read it in settings.py with os.environ['NAME'] (or django-environ) and rotate the exposed value.",
        "flask": "Set app.config from os.environ (or app.config.from_prefixed_env()) and rotate the exposed value.",
        "fastapi": "Declare it as a pydantic-settings field without a default (SecretStr) and rotate the exposed value.",
    },
)

_SEVERITY = {"strong": Severity.HIGH, "weak": Severity.MEDIUM, "placeholder": Severity.INFO}
_CONFIDENCE = {"strong": Confidence.HIGH, "weak": Confidence.MEDIUM, "placeholder": Confidence.LOW}


def check(model: AppModel, config: Any = None) -> Iterator[Finding]:
    seen: set[tuple[str, str]] = set()
    for route in model.routes:
        for ev in route.facts.extra.get("literal_credentials") or []:
            key = (route.handler_file, route.handler)
            if key in seen:
                continue
            seen.add(key)
            field_name, fp = ev.detail.split(" ", 1)
            yield make_finding(RULE, ev.file, ev.line,
                               f"{route.key}: request field {field_name} is checked against a hard-coded credential "
                               f"(fingerprint {fp})", route=route, snippet=f"literal-compare {field_name}",
                               severity=Severity.HIGH, confidence=Confidence.MEDIUM)
    placeholders: dict[str, list[dict[str, Any]]] = {}
    for s in model.settings:
        if s.get("kind") == "secret" and s.get("strength") == "placeholder":
            placeholders.setdefault(s["file"], []).append(s)
    for file, items in placeholders.items():
        # placeholders are one informational finding per file, not one per line
        first = min(items, key=lambda s: s["line"])
        names = ", ".join(sorted({s["name"] for s in items}))
        yield make_finding(RULE, file, first["line"], f"{len(items)} placeholder secret value(s) committed ({names}); "
                           "make sure real deployments override them", severity=Severity.INFO,
                           confidence=Confidence.LOW, snippet=f"placeholders {names}")
    for s in model.settings:
        if s.get("kind") != "secret" or s.get("strength") == "placeholder":
            continue
        strength = s.get("strength", "weak")
        if s.get("source") == "generator":
            continue  # a weak generator is a jwt-weak-secret / weak-key problem, not a literal
        msg = (f"{s['name']} is a hard-coded secret ({s['why']}); value fingerprint {s['value_fp'] or 'n/a'}")
        yield make_finding(RULE, s["file"], s["line"], msg, severity=_SEVERITY.get(strength, Severity.MEDIUM),
                           confidence=_CONFIDENCE.get(strength, Confidence.MEDIUM),
                           snippet=f"{s['name']} {s['value_fp']}",
                           evidence=[{"kind": s.get("source", ""), "strength": strength}])
