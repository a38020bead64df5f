"""Scan result writers: json (the DESIGN.md contract), sarif 2.1.0, markdown inventory, rich table."""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from apitrail import __version__
from apitrail.findings import Finding, Severity
from apitrail.scan.model import AppModel

FORMATS = ("table", "json", "sarif", "markdown")
DOCS_BASE = "https://github.com/apitrail/apitrail/blob/main/docs/rules"


@dataclass
class ScanResult:
    model: AppModel
    findings: list[Finding] = field(default_factory=list)
    rules: list[Any] = field(default_factory=list)  # rule metadata objects, for SARIF
    warnings: list[str] = field(default_factory=list)

    def active_findings(self) -> list[Finding]:
        return [f for f in self.findings if not f.suppressed]


def to_json_dict(result: ScanResult) -> dict[str, Any]:
    m = result.model
    return {
        "tool": {"name": "apitrail", "version": __version__},
        "root": m.root,
        "summary": {
            "files_scanned": m.files_scanned,
            "loc": m.loc,
            "routes": len(m.routes),
            "findings": len(result.active_findings()),
            "suppressed": sum(1 for f in result.findings if f.suppressed),
            "frameworks": m.frameworks,
            "auth_states": dict(Counter(r.auth.state for r in m.routes)),
            "skipped": dict(sorted(m.skipped.items())),
        },
        "routes": [r.to_dict() for r in m.routes],
        "findings": [f.to_dict() for f in result.findings if not f.suppressed],
        "suppressed": [f.to_dict() for f in result.findings if f.suppressed],
        "errors": [e.to_dict() for e in m.errors],
        "warnings": list(result.warnings),
    }


def render_json(result: ScanResult) -> str:
    return json.dumps(to_json_dict(result), indent=2, ensure_ascii=False) + "\n"


_SARIF_LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
                Severity.LOW: "note", Severity.INFO: "note"}
_SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5",
                      Severity.LOW: "3.0", Severity.INFO: "1.0"}


def _sarif_rule(meta: Any) -> dict[str, Any]:
    rid = getattr(meta, "id", str(meta))
    name = getattr(meta, "name", rid)
    title = getattr(meta, "title", name)
    sev = getattr(meta, "severity", Severity.MEDIUM)
    controls = getattr(meta, "controls", None)
    controls_dict = controls() if callable(controls) else (controls or {})
    doc = getattr(meta, "doc_url", "") or f"{DOCS_BASE}/{name}.md"
    help_text = getattr(meta, "help_text", "") or title
    tags = ["security"] + [f"{k}:{v}" for k, vals in sorted(controls_dict.items()) for v in vals]
    return {
        "id": rid,
        "name": name,
        "shortDescription": {"text": title},
        "fullDescription": {"text": getattr(meta, "description", "") or title},
        "help": {"text": help_text, "markdown": f"{help_text}\n\nSee [{name}]({doc})."},
        "helpUri": doc,
        "defaultConfiguration": {"level": _SARIF_LEVEL.get(sev, "warning")},
        "properties": {"tags": tags, "security-severity": _SECURITY_SEVERITY.get(sev, "5.5"), "controls": controls_dict},
    }


def render_sarif(result: ScanResult) -> str:
    rules_meta = {getattr(r, "id", ""): r for r in result.rules}
    used = sorted({f.rule_id for f in result.findings})
    rules = [_sarif_rule(rules_meta[rid]) if rid in rules_meta else _sarif_rule(rid) for rid in used]
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = []
    for f in result.findings:
        res: dict[str, Any] = {
            "ruleId": f.rule_id,
            "ruleIndex": index[f.rule_id],
            "level": _SARIF_LEVEL.get(f.severity, "warning"),
            "message": {"text": f.message + (f" Remediation: {f.remediation}" if f.remediation else "")},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.location.file, "uriBaseId": "SRCROOT"},
                                                "region": {"startLine": max(1, f.location.line),
                                                           "startColumn": max(1, f.location.column)}}}],
            "partialFingerprints": {"apitrail/v1": f.fingerprint},
            "properties": {"category": f.category, "confidence": str(f.confidence), "route": f.route,
                           "controls": f.controls},
        }
        if f.suppressed:
            res["suppressions"] = [{"kind": "inSource", "justification": f.suppressed}]
        results.append(res)
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "apitrail", "version": __version__, "semanticVersion": __version__,
                                "informationUri": "https://github.com/apitrail/apitrail", "rules": rules}},
            "originalUriBaseIds": {"SRCROOT": {"uri": "file://" + result.model.root.rstrip("/") + "/"}},
            "results": results,
            "invocations": [{"executionSuccessful": not result.model.errors,
                             "toolExecutionNotifications": [
                                 {"level": "warning", "message": {"text": e.reason},
                                  "locations": [{"physicalLocation": {"artifactLocation": {"uri": e.file}}}]}
                                 for e in result.model.errors]}],
        }],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: ScanResult) -> str:
    m = result.model
    out = io.StringIO()
    out.write(f"# API inventory: {m.root}\n\n")
    states = Counter(r.auth.state for r in m.routes)
    out.write(f"{len(m.routes)} routes in {m.files_scanned} files ({', '.join(m.frameworks) or 'no framework'}); "
              f"auth: {', '.join(f'{k} {v}' for k, v in sorted(states.items())) or 'n/a'}; "
              f"{len(result.active_findings())} findings.\n\n")
    out.write("| Method | Path | Auth | Roles | Handler | Location | Evidence |\n|---|---|---|---|---|---|---|\n")
    for r in m.routes:
        ev = "; ".join(f"{e.kind} {e.file}:{e.line}" for e in r.auth.evidence[:3])
        out.write(f"| {r.method} | `{_md_escape(r.path)}` | {r.auth.state} | {', '.join(r.auth.roles)} | "
                  f"`{_md_escape(r.handler)}` | {r.file}:{r.line} | {_md_escape(ev)} |\n")
    if result.findings:
        out.write("\n## Findings\n\n| Severity | Rule | Location | Route | Message | Controls |\n|---|---|---|---|---|---|\n")
        for f in sorted(result.active_findings(), key=lambda f: (-f.severity, f.location.file, f.location.line)):
            ctl = ", ".join(v for vals in f.controls.values() for v in vals)
            out.write(f"| {f.severity} | {f.rule_id} | {f.location.file}:{f.location.line} | {_md_escape(f.route)} | "
                      f"{_md_escape(f.message)} | {ctl} |\n")
    if m.errors:
        out.write("\n## Files not analysed\n\n")
        for e in m.errors:
            out.write(f"- `{e.file}`: {e.reason}\n")
    return out.getvalue()


def render_table(result: ScanResult, width: int | None = None) -> str:
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    console = Console(file=buf, width=width or 160, force_terminal=False, color_system=None, soft_wrap=False)
    m = result.model
    t = Table(title=f"Routes ({len(m.routes)})", show_lines=False, expand=False)
    for col in ("Method", "Path", "Auth", "Handler", "Location"):
        t.add_column(col, overflow="fold")
    for r in m.routes:
        auth = r.auth.state + (f" [{', '.join(r.auth.roles)}]" if r.auth.roles else "")
        t.add_row(r.method, r.path, auth, r.handler, f"{r.file}:{r.line}")
    console.print(t)
    active = result.active_findings()
    if active:
        ft = Table(title=f"Findings ({len(active)})")
        for col in ("Severity", "Rule", "Location", "Route", "Message"):
            ft.add_column(col, overflow="fold")
        for f in sorted(active, key=lambda f: (-f.severity, f.location.file, f.location.line)):
            ft.add_row(str(f.severity), f.rule_id, f"{f.location.file}:{f.location.line}", f.route, f.message)
        console.print(ft)
    states = Counter(r.auth.state for r in m.routes)
    console.print(f"{m.files_scanned} files, {m.loc} LOC, frameworks: {', '.join(m.frameworks) or '-'}; "
                  f"auth: {dict(states)}; findings: {len(active)}; errors: {len(m.errors)}; "
                  f"skipped: {sum(m.skipped.values())}")
    for e in m.errors[:20]:
        console.print(f"  not analysed: {e.file}: {e.reason}")
    return buf.getvalue()


def render_scan(result: ScanResult, fmt: str, width: int | None = None) -> str:
    if fmt == "json":
        return render_json(result)
    if fmt == "sarif":
        return render_sarif(result)
    if fmt == "markdown":
        return render_markdown(result)
    if fmt == "table":
        return render_table(result, width)
    raise ValueError(f"unknown format {fmt!r}")
