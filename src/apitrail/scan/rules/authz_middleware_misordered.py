"""Authorization guard that never runs before the handler.

What it does
------------
Reports Flask/Django-style view functions where an authentication or authorization decorator
(``login_required``, ``jwt_required``, ``token_required``, ``roles_required``, ``permission_required``, ...) is
placed *above* the route registration decorator. Decorators apply bottom-up, so the framework registers the
undecorated function and the guard never runs.

Why is this bad
---------------
The code reads as protected, reviews pass, and the endpoint is public. SOC 2 CC6.1 requires access controls
that actually operate; CC8.1 expects changes to be tested for their intended effect.

Example
-------
```python
@login_required
@app.route("/admin/users")
def admin_users(): ...
```

Use instead
-----------
```python
@app.route("/admin/users")
@login_required
def admin_users(): ...
```

References
----------
- CWE-696: Incorrect Behavior Order
- Flask documentation, "View Decorators"
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from apitrail.findings import Confidence, Finding, Severity
from apitrail.scan.model import AppModel
from apitrail.scan.rules._base import RuleMeta, make_finding

RULE = RuleMeta(
    id="APT-AUTHZ-001",
    name="authz-middleware-misordered",
    title="Authorization guard placed where it never runs",
    category="authz-middleware-misordered",
    severity=Severity.HIGH,
    confidence=Confidence.HIGH,
    remediation={
        "default": "Put the guard below the route decorator (closest to the function) so it wraps the handler "
                   "that the framework registers.",
    },
)

GUARD = re.compile(r"(^|\.)(login_required|auth_required|jwt_required|token_required|roles_required|"
                   r"roles_accepted|permission_required|admin_required|requires_auth|require_login|"
                   r"staff_member_required|superuser_required|fresh_jwt_required|verify_jwt_in_request|"
                   r"require_permission|require_admin|requires)$")


def check(model: AppModel, config: Any = None) -> Iterator[Finding]:
    for route in model.routes:
        if route.framework not in ("flask", "django", "drf", "connexion", "starlette"):
            continue
        for d in route.facts.extra.get("decorators_above_route") or []:
            if GUARD.search(d.get("name", "")):
                yield make_finding(RULE, route.file, d["line"],
                                   f"{route.key}: @{d['name']} is above the route decorator, so it never runs",
                                   route=route, snippet=f"misordered {d['name']}")
                break
