"""Object id from the request reaches a data access without an ownership check (BOLA / IDOR).

What it does
------------
For every authenticated route, follows path, query and body values through assignments and into helpers
(across files) until they reach a data access: SQLAlchemy (``session.get``, ``query().filter()``,
``select().where()``), the Django ORM (``Model.objects.get/filter``, ``get_object_or_404``),
Tortoise/Peewee-style managers (``Model.get(id=...)``), repositories and raw SQL. It reports the route when
that access is not scoped by the caller's identity (``owner=request.user``, ``user_id == current_user.id``,
a tenant/organisation filter), no owner comparison or policy/permission call follows the fetch, the route is
not restricted to a privileged role, and the model has an owner (a user/owner/tenant/org field, or it is the
user model itself).

Why is this bad
---------------
Any logged-in user can read or change another user's objects by changing an id in the URL or the body: the
most common API vulnerability (OWASP API1:2023). SOC 2 CC6.1 and CC6.3 require access to be restricted to the
data a user is authorised for, which an object-level check enforces.

Example
-------
```python
@router.get("/orders/{order_id}")
def get_order(order_id: int, user: User = Depends(get_current_user), db: Session = Depends(get_db)):
    return db.query(Order).filter(Order.id == order_id).first()
```

Use instead
-----------
```python
    order = db.query(Order).filter(Order.id == order_id, Order.user_id == user.id).first()
    if order is None:
        raise HTTPException(status_code=404)
```

References
----------
- OWASP API Security Top 10 2023, API1: Broken Object Level Authorization
- CWE-639: Authorization Bypass Through User-Controlled Key
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apitrail.findings import Confidence, Finding, Severity
from apitrail.scan.model import AppModel, DataAccess, Route
from apitrail.scan.rules._base import RuleMeta, make_finding
from apitrail.scan.rules._routes import has_identity, is_privileged, owned, public_by_design

RULE = RuleMeta(
    id="APT-BOLA-001",
    name="bola",
    title="Object id from the request used without an ownership check",
    category="bola",
    severity=Severity.HIGH,
    confidence=Confidence.MEDIUM,
    remediation={
        "default": "Scope the query by the caller (owner/tenant filter) or compare the object's owner with the "
                   "caller after the fetch and answer 404.",
        "fastapi": "Filter by the current user from the auth dependency (Model.owner_id == current_user.id), or add "
                   "a dependency that loads the object and raises HTTPException(404) when it is not the caller's.",
        "starlette": "Filter by request.user (or the authenticated identity in request.scope) when loading the object.",
        "flask": "Filter by the logged-in user (Model.query.filter_by(id=id, user_id=current_user.id)) or abort(404) "
                 "when obj.user_id != current_user.id.",
        "connexion": "Use the token subject (token_info['sub']) in the query instead of an id taken from the request.",
        "django": "Use get_object_or_404(Model, pk=pk, owner=request.user) or a queryset restricted to the user.",
        "drf": "Override get_queryset() to filter by self.request.user, or add an object permission "
               "(has_object_permission) and call self.get_object().",
    },
)

_UNOWNED_WRITES = ("delete", "remove", "update", "destroy", "set", "patch")


def _candidate(route: Route, a: DataAccess) -> bool:
    if not a.uses_request_input or a.owner_scoped:
        return False
    if not any(not i.startswith("~") for i in a.inputs):
        return False  # request data reaches the query, but it does not pick an object (a name, a filter)
    if route.method == "POST" and not any(i in route.facts.path_params for i in a.inputs):
        return False  # a create that looks up body values (uniqueness, references) does not expose an object
    is_owned = owned(route, a)
    if is_owned is True:
        return True
    if is_owned is None and a.api in ("repository",) and a.kind == "write":
        # a repository write on an object the request selected: only deletes/updates of one object
        return any(v in a.text.split("(")[0].lower() for v in _UNOWNED_WRITES)
    if is_owned is None and a.api == "raw-sql":
        return bool(route.facts.path_params)
    return False


def check(model: AppModel, config: Any = None) -> Iterator[Finding]:
    for route in model.routes:
        facts = route.facts
        if not facts.accesses or not has_identity(route):
            continue
        if route.auth.state == "public" and not facts.extra.get("identity"):
            continue
        if route.auth.state == "public" and public_by_design(route):
            continue
        if is_privileged(route):
            continue
        cands = [a for a in facts.accesses if _candidate(route, a)]
        if not cands:
            continue
        first = cands[0]
        # an owner comparison only protects what it follows; a policy call protects the whole handler
        if any(ev.kind != "owner-compare" or ev.file != first.file or ev.line >= first.line
               for ev in facts.ownership_checks):
            continue
        a = cands[0]
        what = ", ".join(i for i in a.inputs if not i.startswith("~")) or "a request value"
        yield make_finding(
            RULE, a.file or route.handler_file or route.file, a.line,
            f"{route.key}: {what} selects the object in `{a.text[:80]}` with no owner/tenant scoping and no "
            "ownership check",
            route=route, snippet=f"{a.api} {a.text}",
            evidence=[{"file": x.file, "line": x.line, "kind": x.kind, "api": x.api} for x in cands[:5]])
