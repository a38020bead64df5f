"""Framework plugins: turn linked language facts into Routes with an AuthRequirement.

A plugin is a class with a `name`, a `language`, `detect(project)` and `routes(project)`. Every module under
`apitrail.scan.frameworks` that defines a module-level `FRAMEWORK` instance (or `FRAMEWORKS` list) is
discovered automatically, so there is no second list to keep in sync.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

from apitrail.scan.lang.python import PyModule
from apitrail.scan.lang.python_auth import AuthAnalyzer
from apitrail.scan.lang.python_index import PythonIndex
from apitrail.scan.model import Route, ScanError


@dataclass
class ConfigFile:
    """A non-code file (settings, .env, OpenAPI specs): kept as text for the frameworks and rules."""

    rel: str
    text: str


@dataclass
class Project:
    """Everything pass 1 produced, for the linkers."""

    root: str
    python: list[PyModule] = field(default_factory=list)
    configs: list[ConfigFile] = field(default_factory=list)
    other: dict[str, list[Any]] = field(default_factory=dict)  # language -> facts, for other language plugins
    errors: list[ScanError] = field(default_factory=list)  # plugins report files they could not use (bad specs)
    _index: PythonIndex | None = None
    _auth: AuthAnalyzer | None = None

    @property
    def index(self) -> PythonIndex:
        if self._index is None:
            self._index = PythonIndex(self.python)
        return self._index

    @property
    def auth(self) -> AuthAnalyzer:
        if self._auth is None:
            self._auth = AuthAnalyzer(self.index)
        return self._auth

    def python_importing(self, *packages: str) -> list[PyModule]:
        """Modules that import any of the given top-level packages (a cheap prefilter), in project order."""
        tops = self.__dict__.get("_import_tops")
        if tops is None or len(tops) != len(self.python):
            # every plugin's detect asks this: the top-level packages of each module are collected once
            tops = [frozenset(ref.module.split(".")[0] for ref in m.imports.values()) for m in self.python]
            self.__dict__["_import_tops"] = tops
        wanted = frozenset(packages)
        return [m for m, t in zip(self.python, tops, strict=True) if not wanted.isdisjoint(t)]


class FrameworkPlugin:
    name: ClassVar[str] = ""
    language: ClassVar[str] = "python"

    def detect(self, project: Project) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def routes(self, project: Project) -> list[Route]:  # pragma: no cover - abstract
        raise NotImplementedError


@cache
def all_frameworks() -> tuple[FrameworkPlugin, ...]:
    """Discover framework plugins in this package (sorted by name, deterministic)."""
    import apitrail.scan.frameworks as pkg

    found: list[FrameworkPlugin] = []
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        mod = importlib.import_module(info.name)
        one = getattr(mod, "FRAMEWORK", None)
        many = getattr(mod, "FRAMEWORKS", None) or []
        for p in ([one] if one is not None else []) + list(many):
            if isinstance(p, FrameworkPlugin) and p not in found:
                found.append(p)
    return tuple(sorted(found, key=lambda p: p.name))
