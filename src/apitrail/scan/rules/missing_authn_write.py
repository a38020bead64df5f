"""State-changing endpoint reachable without authentication.

What it does
------------
Reports public routes whose handler (or a helper it calls) writes persistent data: ORM
add/save/update/delete/commit, ``INSERT``/``UPDATE``/``DELETE`` SQL, schema drops. GET routes that write are
included. Login, registration, password-reset, token, invitation, webhook and similar endpoints are public by
design and not reported.

Why is this bad
---------------
Anyone can create, change or delete data, with no record of who did it. SOC 2 CC6.1 and CC6.6 require
authenticated access to change protected data; CC8.1 expects changes to go through authorised paths.

Example
-------
```python
@app.route("/createdb")
def populate_db():
    db.drop_all(); db.create_all()
```

Use instead
-----------
```python
@app.route("/createdb", methods=["POST"])
@admin_required
def populate_db(): ...
```

References
----------
- OWASP API Security Top 10 2023, API2 and API5
- CWE-306: Missing Authentication for Critical Function
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apitrail.findings import Confidence, Finding, Severity
from apitrail.scan.model import AppModel
from apitrail.scan.rules._base import RuleMeta, make_finding
from apitrail.scan.rules._routes import SENSITIVE_SEGMENT, effectively_public, public_by_design, route_location

RULE = RuleMeta(
    id="APT-AUTHN-002",
    name="missing-authn-write",
    title="State-changing endpoint without authentication",
    category="missing-authn-write",
    severity=Severity.HIGH,
    confidence=Confidence.MEDIUM,
    remediation={
        "default": "Require authentication on every route that changes data.",
        "fastapi": "Add Depends(get_current_user) (or a router-level dependency) to the route.",
        "starlette": "Protect the route with AuthenticationMiddleware and @requires('authenticated').",
        "flask": "Decorate the view with @login_required or verify the bearer token and abort(401).",
        "connexion": "Add a security requirement to the operation in the OpenAPI spec.",
        "django": "Use @login_required (function views) or LoginRequiredMixin (class views).",
        "drf": "Set permission_classes = [IsAuthenticated] (or stricter) on the view or globally.",
    },
)


def check(model: AppModel, config: Any = None) -> Iterator[Finding]:
    for route in model.routes:
        if not effectively_public(route):
            continue
        writes = route.facts.writes
        if not writes:
            continue
        if public_by_design(route) and not SENSITIVE_SEGMENT.search(route.path):
            continue
        w = writes[0]
        destructive = any(x in w.text.lower() for x in ("drop_all", "delete", "truncate", "drop "))
        yield make_finding(RULE, *route_location(route),
                           f"{route.key} is public and writes data (`{w.text[:70]}`)", route=route,
                           severity=Severity.CRITICAL if destructive else Severity.HIGH,
                           confidence=Confidence.HIGH if route.auth.evidence else Confidence.MEDIUM,
                           snippet=f"{w.api} {w.text}")
