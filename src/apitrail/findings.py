"""Finding, Severity, Location and the stable fingerprint.

The fingerprint survives line moves and reformatting: it is made of the rule id, the file, the endpoint
(method and path) and a whitespace-normalised snippet, never the line number.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls[value.strip().upper()]
        except KeyError as exc:
            raise ValueError(f"unknown severity {value!r} (use one of: {', '.join(s.name.lower() for s in cls)})") from exc

    def __str__(self) -> str:
        return self.name.lower()


class Confidence(enum.IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Location:
    file: str
    line: int
    column: int = 1
    end_line: int | None = None


def normalise_snippet(snippet: str) -> str:
    return re.sub(r"\s+", " ", snippet).strip()


def fingerprint(rule_id: str, file: str, route: str, snippet: str) -> str:
    material = "\x1f".join([rule_id, file, route, normalise_snippet(snippet)])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


@dataclass
class Finding:
    rule_id: str
    category: str
    severity: Severity
    confidence: Confidence
    location: Location
    message: str
    route: str = ""  # "METHOD /path"
    handler: str = ""
    framework: str = ""
    snippet: str = ""  # never a secret value: rules redact before building a finding
    controls: dict[str, list[str]] = field(default_factory=dict)
    remediation: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    fingerprint: str = ""
    suppressed: str = ""  # reason when suppressed inline or by config
    rule_name: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = fingerprint(self.rule_id, self.location.file, self.route, self.snippet or self.message)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule_id": self.rule_id,
            "rule_name": self.rule_name,
            "category": self.category,
            "severity": str(self.severity),
            "confidence": str(self.confidence),
            "file": self.location.file,
            "line": self.location.line,
            "route": self.route,
            "handler": self.handler,
            "framework": self.framework,
            "message": self.message,
            "controls": self.controls,
            "remediation": self.remediation,
            "evidence": self.evidence,
            "fingerprint": self.fingerprint,
        }
        if self.suppressed:
            out["suppressed"] = self.suppressed
        return out


__all__ = ["Confidence", "Finding", "Location", "Severity", "fingerprint", "normalise_snippet"]
