"""Sensitive read endpoint reachable without authentication.

What it does
------------
Reports public routes (the linker found no authentication on the route, its routers, middleware or global
defaults) whose handler does something sensitive: it returns environment variables or system details, it
sits under a debug/admin/internal/metrics/config/export path *and* reads data or state, or it is hidden from
the API schema (``include_in_schema=False``) while it lists records that belong to users. Login, token,
health and other public-by-design endpoints are not reported.

Why is this bad
---------------
Anyone on the network can call it: debug and admin endpoints leak credentials and personal data, and hiding
an endpoint from the docs is not access control. SOC 2 CC6.1 requires logical access controls on protected
information; CC6.6 requires protection against access from outside the system boundary.

Example
-------
```python
@router.get("/debug", include_in_schema=False)
def debug_info():
    return {"env": dict(os.environ)}
```

Use instead
-----------
```python
@router.get("/debug", dependencies=[Depends(require_admin)])
def debug_info(): ...
```
or remove the endpoint from production builds.

References
----------
- OWASP API Security Top 10 2023, API2: Broken Authentication; API9: Improper Inventory Management
- CWE-306: Missing Authentication for Critical Function
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apitrail.findings import Confidence, Finding, Severity
from apitrail.scan.model import AppModel, Route
from apitrail.scan.rules._base import RuleMeta, make_finding
from apitrail.scan.rules._routes import SENSITIVE_SEGMENT, effectively_public, owned, public_by_design, route_location

RULE = RuleMeta(
    id="APT-AUTHN-001",
    name="missing-authn",
    title="Sensitive endpoint without authentication",
    category="missing-authn",
    severity=Severity.HIGH,
    confidence=Confidence.MEDIUM,
    remediation={
        "default": "Require authentication (and an admin role for debug/admin data), or remove the endpoint.",
        "fastapi": "Add dependencies=[Depends(get_current_admin)] to the route or its APIRouter; "
                   "include_in_schema=False does not protect it.",
        "starlette": "Add AuthenticationMiddleware and @requires('authenticated') (or an admin scope).",
        "flask": "Decorate the view with @login_required (flask-login) or a token check that aborts with 401.",
        "connexion": "Declare a security requirement for the operation in the OpenAPI spec (x-bearerInfoFunc).",
        "django": "Wrap the view with @login_required / @staff_member_required, or LoginRequiredMixin.",
        "drf": "Set permission_classes = [IsAdminUser] (or IsAuthenticated) on the view.",
    },
)


def _why(route: Route) -> str:
    f = route.facts
    if f.extra.get("env_exposure"):
        return "returns environment variables or system details"
    reads = [a for a in f.accesses if a.kind == "read"]
    if SENSITIVE_SEGMENT.search(route.path) and (reads or f.writes):
        return "is a debug/admin/internal endpoint that reads application data"
    if "hidden" in route.tags and any(owned(route, a) for a in reads):
        return "is hidden from the API schema but lists records that belong to users"
    return ""


def check(model: AppModel, config: Any = None) -> Iterator[Finding]:
    for route in model.routes:
        if not effectively_public(route) or route.facts.writes:
            continue  # writes are missing-authn-write
        if route.method not in ("GET", "HEAD", "ANY"):
            continue
        why = _why(route)
        if not why or (public_by_design(route) and not route.facts.extra.get("env_exposure")):
            continue
        yield make_finding(RULE, *route_location(route), f"{route.key} is public and {why}", route=route,
                           snippet=why, severity=Severity.HIGH,
                           confidence=Confidence.HIGH if route.auth.evidence or "hidden" in route.tags else Confidence.MEDIUM)
