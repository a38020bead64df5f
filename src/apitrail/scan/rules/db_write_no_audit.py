"""Database write on a request path with no audit log of who did it.

What it does
------------
For every route whose handler (or a helper it calls) writes persistent data, looks for an audit or security
log call on the same path: ``audit*``, ``record_event``, ``log_event``, ``event_service.log_*``, a logger whose
name contains ``audit`` or ``security``, plus the functions and loggers listed in ``[tool.apitrail.audit]``
(``functions``, ``loggers``). Projects that audit every write globally (django-simple-history,
django-auditlog, django-reversion, pghistory, SQLAlchemy-Continuum, a change-logging signal receiver) are
treated as audited. One finding per route, at the first write.

Why is this bad
---------------
Without an audit trail nobody can tell who changed or deleted a record, detect abuse, or answer an incident
review. SOC 2 CC7.2 requires monitoring for anomalies and CC7.3 evaluation of security events; both need the
events to be recorded.

Example
-------
```python
def delete_user(username):
    User.query.filter_by(username=username).delete()
    db.session.commit()
```

Use instead
-----------
```python
    audit_log.info("user.delete", extra={"actor": current_user.id, "target": username})
```
Configure which calls count as audit:
```toml
[tool.apitrail.audit]
functions = ["record_action"]
loggers = ["myapp.audit"]
```

References
----------
- CWE-778: Insufficient Logging
- OWASP Logging Cheat Sheet
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from apitrail.findings import Confidence, Finding, Severity
from apitrail.scan.model import AppModel, Route
from apitrail.scan.rules._base import RuleMeta, make_finding

RULE = RuleMeta(
    id="APT-AUDIT-001",
    name="db-write-no-audit",
    title="Database write without an audit log",
    category="db-write-no-audit",
    severity=Severity.LOW,
    confidence=Confidence.MEDIUM,
    remediation={
        "default": "Record an audit event (actor, action, object, time) for each write, or configure the "
                   "project's audit helper in [tool.apitrail.audit].",
        "django": "Use django-simple-history/django-auditlog, or log an audit event in the view or a post_save signal.",
        "drf": "Log an audit event in perform_create/perform_update/perform_destroy (or use django-auditlog).",
        "fastapi": "Write an audit record in the service layer (actor from the auth dependency), or add a SQLAlchemy "
                   "after_flush listener that records changes.",
        "flask": "Log an audit event with the actor (current_user) next to db.session.commit().",
    },
)


def _audited(route: Route, config: Any) -> bool:
    f = route.facts
    if f.audit_calls:
        return True
    audit = getattr(config, "audit", None)
    funcs = list(getattr(audit, "functions", []) or [])
    loggers = list(getattr(audit, "loggers", []) or [])
    names = f.extra.get("call_names") or []
    for fn in funcs:
        if any(n == fn or n.endswith("." + fn) for n in names):
            return True
    for lg in loggers:
        if any(x == lg or x.endswith(lg) for x in f.extra.get("loggers") or []):
            return True
        if any(re.search(rf"getLogger\(['\"]{re.escape(lg)}", n) for n in names):
            return True
    return False


def check(model: AppModel, config: Any = None) -> Iterator[Finding]:
    if any(s.get("kind") == "audit-framework" for s in model.settings):
        return
    seen: set[tuple[str, str]] = set()
    for route in model.routes:
        writes = route.facts.writes
        if not writes or _audited(route, config):
            continue
        key = (route.handler_file or route.file, route.handler)
        if key in seen:
            continue  # one handler served on several methods (GET+POST) is one problem
        seen.add(key)
        w = writes[0]
        yield make_finding(RULE, w.file or route.handler_file or route.file, w.line,
                           f"{route.key} writes data (`{w.text[:70]}`) without an audit log call", route=route,
                           snippet=f"{w.api} {w.text}")
