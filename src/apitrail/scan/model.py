"""The AppModel: what the linker knows about an application, and what rules read.

Extractors produce per-file facts (plain, picklable data); the linker turns them into Routes with an
AuthRequirement and HandlerFacts. Rules read only this model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

AuthState = Literal["public", "authenticated", "role", "unknown"]
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Evidence:
    """One reason for an auth verdict: where it was found and what it is."""

    file: str
    line: int
    kind: str  # global-default, router-dependency, dependency, middleware, decorator, inline-check, permission-class, ...
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AuthRequirement:
    state: AuthState = "unknown"
    roles: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "roles": list(self.roles), "evidence": [e.to_dict() for e in self.evidence]}


@dataclass
class DataAccess:
    """A read or write of persistent data inside a handler (or a helper it calls)."""

    line: int
    kind: Literal["read", "write"]
    api: str  # e.g. "session.get", "Model.objects.filter", "raw-sql"
    text: str  # the call expression, trimmed
    uses_request_input: bool = False  # a path/query/body value flows into it
    inputs: list[str] = field(default_factory=list)  # which request names flow in
    owner_scoped: bool = False  # filtered by the caller's identity (user/tenant/owner)
    file: str = ""


@dataclass
class HandlerFacts:
    """What the body of a route handler does, for the rules."""

    path_params: list[str] = field(default_factory=list)
    query_params: list[str] = field(default_factory=list)
    body_params: list[str] = field(default_factory=list)
    accesses: list[DataAccess] = field(default_factory=list)
    ownership_checks: list[Evidence] = field(default_factory=list)  # owner compare after fetch, policy call
    role_checks: list[Evidence] = field(default_factory=list)
    audit_calls: list[Evidence] = field(default_factory=list)
    password_compares: list[Evidence] = field(default_factory=list)
    jwt_calls: list[Evidence] = field(default_factory=list)
    inline_auth: list[Evidence] = field(default_factory=list)  # abort(401), token validator calls
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def writes(self) -> list[DataAccess]:
        return [a for a in self.accesses if a.kind == "write"]


@dataclass
class Route:
    method: str
    path: str
    file: str
    line: int
    handler: str
    framework: str
    auth: AuthRequirement = field(default_factory=AuthRequirement)
    partial: bool = False  # path or method computed and only partly known
    partial_reason: str = ""
    handler_file: str = ""
    handler_line: int = 0
    facts: HandlerFacts = field(default_factory=HandlerFacts)
    tags: list[str] = field(default_factory=list)  # e.g. hidden (include_in_schema=False), deprecated

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "path": self.path,
            "file": self.file,
            "line": self.line,
            "handler": self.handler,
            "framework": self.framework,
            "auth": self.auth.to_dict(),
        }
        if self.partial:
            out["partial"] = True
            out["partial_reason"] = self.partial_reason
        if self.tags:
            out["tags"] = list(self.tags)
        return out


@dataclass
class ScanError:
    file: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason}


@dataclass
class AppModel:
    root: str
    routes: list[Route] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    files_scanned: int = 0
    loc: int = 0
    frameworks: list[str] = field(default_factory=list)
    # free-form facts for rules that are not about one route (settings, CORS config, secrets)
    settings: list[dict[str, Any]] = field(default_factory=list)
    modules: dict[str, Any] = field(default_factory=dict)  # path -> language facts (e.g. PyModule)
