"""`apitrail scan --compliance soc2|iso27001`: per control, the routes examined, the findings and a status."""

from __future__ import annotations

import io
import json
from typing import Any

from apitrail.controls import catalog, categories_for_control

ROUTE_CATEGORIES = frozenset({"missing-authn", "missing-authn-write", "bola", "bfla", "authz-middleware-misordered",
                              "db-write-no-audit", "plaintext-password-compare"})


def compliance_rows(result: Any, which: str) -> list[dict[str, Any]]:
    controls = catalog()["controls"].get(which, {})
    active = result.active_findings()
    rows = []
    for cid, title in controls.items():
        cats = categories_for_control(which, cid)
        found = [f for f in active if f.category in cats]
        examined = len(result.model.routes) if set(cats) & ROUTE_CATEGORIES else 0
        rows.append({
            "control": cid, "title": title, "categories": cats, "routes_examined": examined,
            "findings": len(found),
            "by_severity": {s: sum(1 for f in found if str(f.severity) == s) for s in
                            ("critical", "high", "medium", "low", "info") if any(str(f.severity) == s for f in found)},
            "status": "not-assessed" if not cats else ("fail" if found else "pass"),
            "examples": [f"{f.rule_id} {f.location.file}:{f.location.line}" for f in found[:5]],
        })
    return rows


def render_compliance(result: Any, which: str, fmt: str) -> str:
    rows = compliance_rows(result, which)
    label = {"soc2": "SOC 2 Trust Services Criteria", "iso27001": "ISO/IEC 27001:2022 Annex A"}.get(which, which)
    if fmt in ("json", "sarif"):
        return json.dumps({"framework": which, "root": result.model.root, "controls": rows}, indent=2) + "\n"
    out = io.StringIO()
    if fmt == "markdown":
        out.write(f"# {label}: {result.model.root}\n\n| Control | Title | Routes examined | Findings | Status |\n"
                  "|---|---|---|---|---|\n")
        for r in rows:
            out.write(f"| {r['control']} | {r['title']} | {r['routes_examined']} | {r['findings']} | {r['status']} |\n")
        return out.getvalue()
    out.write(f"{label}\n")
    for r in rows:
        out.write(f"{r['control']:<8} {r['status']:<13} routes={r['routes_examined']:<5} findings={r['findings']:<4} "
                  f"{r['title'][:70]}\n")
        for ex in r["examples"]:
            out.write(f"           {ex}\n")
    return out.getvalue()


__all__ = ["compliance_rows", "render_compliance"]
