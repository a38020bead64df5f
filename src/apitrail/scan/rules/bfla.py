"""Privileged operation reachable by any authenticated user (BFLA).

What it does
------------
Reports authenticated routes that perform a privileged function without a role or permission check: admin
routes (an ``admin`` path segment) with no role requirement; routes whose "role check" reads the role from the
request body instead of the caller; and routes that write a model that is not owned by users (menu items,
settings, catalogue data) while every other route writing that model requires a privileged role.

Why is this bad
---------------
Authentication says who the caller is, not what they may do. Without a function-level check any customer can
call staff or admin operations (OWASP API5:2023). SOC 2 CC6.3 requires access to be granted by role and least
privilege; CC6.2 requires privileges to be authorised before use.

Example
-------
```python
@router.delete("/menu/{item_id}")
def delete_menu_item(item_id: int, user: User = Depends(get_current_user)): ...
```

Use instead
-----------
```python
@router.delete("/menu/{item_id}", dependencies=[Depends(RoleChecker(["employee", "chef"]))])
def delete_menu_item(item_id: int): ...
```

References
----------
- OWASP API Security Top 10 2023, API5: Broken Function Level Authorization
- CWE-285: Improper Authorization
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from apitrail.findings import Confidence, Finding, Severity
from apitrail.scan.model import AppModel, Route
from apitrail.scan.rules._base import RuleMeta, make_finding
from apitrail.scan.rules._routes import is_privileged, model_of, owned, route_location

RULE = RuleMeta(
    id="APT-BFLA-001",
    name="bfla",
    title="Privileged operation without a role or permission check",
    category="bfla",
    severity=Severity.HIGH,
    confidence=Confidence.MEDIUM,
    remediation={
        "default": "Require a privileged role for this operation, decided from the caller's identity on the server.",
        "fastapi": "Add a role dependency (dependencies=[Depends(require_role('admin'))]) that checks current_user's "
                   "role and raises HTTPException(403).",
        "starlette": "Wrap the endpoint with @requires('admin') (starlette.authentication) or check request.user.",
        "flask": "Decorate the view with a role check (e.g. @roles_required('admin')) that aborts with 403.",
        "connexion": "Check the role from the verified token (token_info) in the handler or via x-scopes.",
        "django": "Use @permission_required / PermissionRequiredMixin or user.is_staff checks.",
        "drf": "Set permission_classes = [IsAdminUser] (or a DjangoModelPermissions subclass) on the view.",
    },
)

ADMIN_PATH = re.compile(r"(^|/)(admin|administration|superuser|staff|manage|management)(/|$)", re.I)


def check(model: AppModel, config: Any = None) -> Iterator[Finding]:
    # models written only behind privileged roles elsewhere in the app
    privileged_writers: dict[str, int] = {}
    unprivileged_writers: dict[str, int] = {}
    for r in model.routes:
        if not r.facts.writes:
            continue
        bucket = privileged_writers if is_privileged(r) else unprivileged_writers
        for m in _written_models(r):
            bucket[m] = bucket.get(m, 0) + 1
    for route in model.routes:
        if route.auth.state not in ("authenticated", "role") or is_privileged(route):
            continue
        f = _finding(route, privileged_writers, unprivileged_writers)
        if f is not None:
            yield f


def _written_models(route: Route) -> set[str]:
    """Models a writing route works on: its ORM writes, or the objects it loads from request ids."""
    if not route.facts.writes:
        return set()
    out = {model_of(a) for a in route.facts.accesses if model_of(a) and a.kind == "write"}
    # the object the route acts on: the one its last path parameter loads
    params = re.findall(r"\{([A-Za-z_]\w*)", route.path)
    if params:
        loads = [a for a in route.facts.accesses if model_of(a) and params[-1] in a.inputs]
        # prefer the lookup by primary key (`Model.id == item_id`, `.get(Model, item_id)`) over related lookups
        by_pk = [a for a in loads if re.search(r"\.(id|pk)\s*==|\b(id|pk)\s*=|\.get\(", a.text)]
        if by_pk or loads:
            out.add(model_of((by_pk or loads)[0]))
    return out


def _finding(route: Route, privileged_writers: dict[str, int], unprivileged_writers: dict[str, int]) -> Finding | None:
    facts = route.facts
    client_checks = [e for e in facts.extra.get("client_role_checks") or [] if e.kind == "role-from-client"]
    if client_checks and facts.writes and route.auth.state == "authenticated" and not facts.ownership_checks:
        ev = client_checks[0]
        return make_finding(RULE, route.handler_file or route.file, route.handler_line or route.line,
                            f"{route.key}: the role check compares a value from the request body "
                            f"(`{ev.detail[:60]}`), not the caller's role", route=route,
                            snippet="role-from-client")
    if ADMIN_PATH.search(route.path) and route.auth.state == "authenticated":
        return make_finding(RULE, *route_location(route),
                            f"{route.key}: admin route that any authenticated user can call (no role check)",
                            route=route, snippet="admin-path")
    if not facts.writes or route.method not in ("PUT", "PATCH", "DELETE"):
        return None  # POST on an object runs an action or creates a child; it does not change the object itself
    for a in facts.accesses:
        m = model_of(a)
        # the only unprivileged route that changes a model that privileged routes guard
        if m and m in _written_models(route) and owned(route, a) is False and privileged_writers.get(m, 0) >= 1 and \
                unprivileged_writers.get(m, 0) == 1 and any(i in route.facts.path_params for i in a.inputs):
            return make_finding(RULE, *route_location(route),
                                f"{route.key}: writes {m}, which other routes only let privileged roles change, "
                                "without a role check", route=route, snippet=f"unprivileged-write {m}",
                                confidence=Confidence.MEDIUM, severity=Severity.HIGH)
    return None
