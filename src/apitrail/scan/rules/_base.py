"""What every rule module shares: the metadata dataclass, finding construction and remediation lookup.

A rule module defines ``RULE = RuleMeta(...)`` and a pure ``check(model, config) -> Iterator[Finding]``; its
docstring is the rule's documentation page (fixed headings, see STYLE.md). Control mappings come from the
bundled catalogue (``apitrail.controls``) unless the rule overrides them, so there is one source of truth.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from apitrail.controls import controls_for
from apitrail.findings import Confidence, Finding, Location, Severity
from apitrail.scan.model import AppModel, Route

DOCS_BASE = "https://github.com/apitrail/apitrail/blob/main/docs/rules"
DOC_HEADINGS = ("What it does", "Why is this bad", "Example", "Use instead", "References")

CheckFn = Callable[[AppModel, Any], Iterator[Finding]]


@dataclass(frozen=True)
class RuleMeta:
    """Rule metadata. ``id`` is stable and never renamed or reused; ``name`` names the bad pattern."""

    id: str
    name: str
    title: str
    category: str
    severity: Severity
    confidence: Confidence
    since: str = "0.1.0"
    cwe: tuple[str, ...] = ()
    soc2: tuple[str, ...] = ()
    iso27001: tuple[str, ...] = ()
    owasp_api: tuple[str, ...] = ()
    remediation: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        mapped = controls_for(self.category)
        for key, attr in (("cwe", "cwe"), ("soc2", "soc2"), ("iso27001", "iso27001"), ("owasp_api", "owasp_api")):
            if not getattr(self, attr):
                object.__setattr__(self, attr, tuple(mapped[key]))

    def controls(self) -> dict[str, list[str]]:
        return {"soc2": list(self.soc2), "iso27001": list(self.iso27001), "owasp_api": list(self.owasp_api),
                "cwe": list(self.cwe)}

    @property
    def doc_url(self) -> str:
        return f"{DOCS_BASE}/{self.name}.md"

    @property
    def module(self) -> Any:
        return sys.modules.get(_MODULE_OF.get(self.id, ""))

    @property
    def doc(self) -> str:
        mod = self.module
        return (getattr(mod, "__doc__", "") or "").strip()

    def section(self, heading: str) -> str:
        """One section of the docstring (text under `heading` up to the next fixed heading)."""
        text = self.doc
        m = re.search(rf"^{re.escape(heading)}[^\n]*\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", text, re.S | re.M)
        return m.group(1).strip() if m else ""

    @property
    def description(self) -> str:
        return " ".join(self.section("What it does").split()) or self.title

    @property
    def help_text(self) -> str:
        why = " ".join(self.section("Why is this bad").split())
        ctl = ", ".join(v for vals in self.controls().values() for v in vals)
        return f"{self.description} {why} Controls: {ctl}.".strip()

    def remediation_for(self, framework: str) -> str:
        fw = (framework or "").lower()
        return self.remediation.get(fw) or self.remediation.get("default", "")


_MODULE_OF: dict[str, str] = {}


def register_module(meta: RuleMeta, module_name: str) -> None:
    _MODULE_OF[meta.id] = module_name


def make_finding(meta: RuleMeta, file: str, line: int, message: str, *, route: Route | None = None,
                 severity: Severity | None = None, confidence: Confidence | None = None, snippet: str = "",
                 evidence: list[dict[str, Any]] | None = None, framework: str = "") -> Finding:
    """A Finding with the rule's controls and framework-specific remediation; `snippet` feeds the fingerprint."""
    fw = framework or (route.framework if route is not None else "")
    return Finding(
        rule_id=meta.id,
        category=meta.category,
        severity=severity if severity is not None else meta.severity,
        confidence=confidence if confidence is not None else meta.confidence,
        location=Location(file, max(1, line)),
        message=message,
        route=route.key if route is not None else "",
        handler=route.handler if route is not None else "",
        framework=fw,
        snippet=snippet or (f"{route.key} {route.handler}" if route is not None else message),
        controls=meta.controls(),
        remediation=meta.remediation_for(fw),
        evidence=evidence or [],
        rule_name=meta.name,
    )


def is_effectively_public(route: Route) -> bool:
    return route.auth.state == "public"


def handler_key(route: Route) -> tuple[str, str]:
    return (route.handler_file or route.file, route.handler)


__all__ = ["DOC_HEADINGS", "RuleMeta", "make_finding", "register_module"]
