"""Django ALLOWED_HOSTS accepts any Host header.

What it does
------------
Flags ``ALLOWED_HOSTS = ['*']`` in Django settings modules (example and test settings are ignored).

Why is this bad
---------------
Django builds absolute URLs (password-reset links, redirects) from the Host header. Accepting any host lets an
attacker poison those links and caches. SOC 2 CC6.6 (boundary protection) and CC8.1 (controlled
configuration) are affected.

Example
-------
```python
ALLOWED_HOSTS = ["*"]
```

Use instead
-----------
```python
ALLOWED_HOSTS = os.environ["DJANGO_ALLOWED_HOSTS"].split(",")
```

References
----------
- CWE-1188: Initialization of a Resource with an Insecure Default
- Django documentation, ALLOWED_HOSTS
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apitrail.findings import Confidence, Finding, Severity
from apitrail.scan.model import AppModel
from apitrail.scan.rules._base import RuleMeta, make_finding

RULE = RuleMeta(
    id="APT-CONF-002",
    name="allowed-hosts-wildcard",
    title="ALLOWED_HOSTS accepts any host",
    category="allowed-hosts-wildcard",
    severity=Severity.MEDIUM,
    confidence=Confidence.HIGH,
    remediation={"default": "List the served host names in ALLOWED_HOSTS (read them from the environment)."},
)


def check(model: AppModel, config: Any = None) -> Iterator[Finding]:
    for s in model.settings:
        if s.get("kind") == "allowed-hosts":
            yield make_finding(RULE, s["file"], s["line"], "ALLOWED_HOSTS contains '*'", framework="django",
                               snippet=s.get("text", ""))
