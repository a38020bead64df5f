#!/usr/bin/env python3
"""Scaffold a new rule: the module (metadata + docstring page + check), the fixture folder and the doc page.

    python scripts/add_rule.py APT-XYZ-001 my-bad-pattern --category bola --title "What is wrong"
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MODULE = '''"""{title}.

What it does
------------
TODO: what the rule looks for, in terms of the AppModel facts it reads.

Why is this bad
---------------
TODO: the risk, and why the SOC 2 control ({soc2}) cares.

Example
-------
```python
TODO
```

Use instead
-----------
```python
TODO
```

References
----------
- TODO
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apitrail.findings import Confidence, Finding, Severity
from apitrail.scan.model import AppModel
from apitrail.scan.rules._base import RuleMeta, make_finding

RULE = RuleMeta(
    id="{rule_id}",
    name="{name}",
    title="{title}",
    category="{category}",
    severity=Severity.MEDIUM,
    confidence=Confidence.MEDIUM,
    remediation={{"default": "TODO"}},
)


def check(model: AppModel, config: Any = None) -> Iterator[Finding]:
    for route in model.routes:
        if False:  # TODO: the condition, from route.auth and route.facts
            yield make_finding(RULE, route.file, route.line, f"{{route.key}}: TODO", route=route)
'''

FIXTURE = '''from fastapi import FastAPI

app = FastAPI()


# ruleid: {name}
@app.get("/bad")
def bad():
    return {{}}


# ok: {name}
@app.get("/good")
def good():
    return {{}}
'''


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rule_id")
    ap.add_argument("name")
    ap.add_argument("--category", required=True, help="a category of src/apitrail/controls/catalog.yaml")
    ap.add_argument("--title", required=True)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from apitrail.controls import controls_for

    module = ROOT / "src" / "apitrail" / "scan" / "rules" / f"{args.name.replace('-', '_')}.py"
    fixture = ROOT / "tests" / "rules" / args.name / "fastapi_app.py"
    if module.exists() or fixture.exists():
        print(f"{args.name} already exists", file=sys.stderr)
        return 1
    soc2 = ", ".join(controls_for(args.category)["soc2"]) or "TODO"
    module.write_text(MODULE.format(rule_id=args.rule_id, name=args.name, title=args.title, category=args.category,
                                    soc2=soc2), encoding="utf-8")
    fixture.parent.mkdir(parents=True, exist_ok=True)
    fixture.write_text(FIXTURE.format(name=args.name), encoding="utf-8")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_rule_docs.py")], check=False)
    print(f"created {module.relative_to(ROOT)}, {fixture.relative_to(ROOT)} and docs/rules/{args.name}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
