"""Debug mode switched on in committed settings.

What it does
------------
Flags ``DEBUG = True`` in Django settings modules, ``FastAPI(debug=True)``/``Flask(...)``/``Starlette(debug=True)``
and ``app.config['DEBUG'] = True`` at module level. Example and test settings are ignored.

Why is this bad
---------------
Debug mode shows stack traces, settings and sometimes an interactive console to anyone who triggers an error.
SOC 2 CC8.1 expects configuration changes to production to be controlled; CC7.2 expects errors to be monitored,
not displayed to attackers.

Example
-------
```python
DEBUG = True
```

Use instead
-----------
```python
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
```

References
----------
- CWE-489: Active Debug Code
- Django deployment checklist (DEBUG)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apitrail.findings import Confidence, Finding, Severity
from apitrail.scan.model import AppModel
from apitrail.scan.rules._base import RuleMeta, make_finding

RULE = RuleMeta(
    id="APT-CONF-001",
    name="debug-mode-enabled",
    title="Debug mode enabled in committed settings",
    category="debug-mode",
    severity=Severity.MEDIUM,
    confidence=Confidence.MEDIUM,
    remediation={
        "default": "Read the debug flag from the environment and default it to off.",
        "django": "Set DEBUG = env('DJANGO_DEBUG', default=False) and keep a separate development settings module.",
        "flask": "Do not set DEBUG in code; use FLASK_DEBUG only in development.",
        "fastapi": "Do not pass debug=True to FastAPI() outside development.",
    },
)


def check(model: AppModel, config: Any = None) -> Iterator[Finding]:
    for s in model.settings:
        if s.get("kind") == "debug":
            yield make_finding(RULE, s["file"], s["line"], f"Debug mode is on: {s.get('text', '')}",
                               framework=s.get("framework", ""), snippet=s.get("text", ""))
