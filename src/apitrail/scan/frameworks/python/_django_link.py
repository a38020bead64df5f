"""Shared linking state for the Django and DRF plugins: settings, the URL walk, routers and their registrations.

The walk runs once per project (memoised on the Project object); each plugin then returns the routes it owns.
Cost is linear in the number of URL patterns and router registrations; class MROs and permission verdicts are
memoised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apitrail.scan.frameworks._base import Project
from apitrail.scan.frameworks.python._django_settings import UNKNOWN, DjangoSettings, SettingValue, load_settings
from apitrail.scan.frameworks.python._django_urls import RouterRef, UrlWalker
from apitrail.scan.frameworks.python._drf_perms import PermissionAnalyzer
from apitrail.scan.lang.python import ClassDef, Expr, PyModule
from apitrail.scan.model import AuthRequirement, Evidence, Route

if TYPE_CHECKING:
    from apitrail.scan.frameworks.python.django import Django


@dataclass
class Registration:
    prefix: Expr
    viewset: Expr
    kwargs: dict[str, Expr]
    module: PyModule
    line: int


@dataclass
class Linker:
    project: Project
    plugin: Django
    settings: DjangoSettings = field(default_factory=DjangoSettings)
    registrations: dict[tuple[str, str], list[Registration]] = field(default_factory=dict)
    router_attrs: dict[tuple[str, str], dict[str, Expr]] = field(default_factory=dict)
    _mro: dict[tuple[str, str], list[tuple[PyModule, ClassDef | None, str]]] = field(default_factory=dict)
    _perms: PermissionAnalyzer | None = None
    _router_memo: dict[tuple[str, str], RouterRef | None] = field(default_factory=dict)
    cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def index(self) -> Any:
        return self.project.index

    @property
    def perms(self) -> PermissionAnalyzer:
        if self._perms is None:
            self._perms = PermissionAnalyzer(self.index, self.settings.get)
        return self._perms

    def mro(self, mod: PyModule, cls: ClassDef) -> list[tuple[PyModule, ClassDef | None, str]]:
        key = (mod.path, cls.qualname)
        hit = self._mro.get(key)
        if hit is None:
            hit = []
            seen: set[str] = set()
            for m, c, q in self.index.class_mro(mod, cls):
                if q in seen:
                    continue
                seen.add(q)
                hit.append((m, c, q))
            self._mro[key] = hit
        return hit

    def setting_str(self, mod: PyModule, name: str) -> str | None:
        """Value of ``settings.X`` used in a URLconf (a configurable prefix evaluates to its default)."""
        head, _, attr = name.rpartition(".")
        if not head:
            return None
        q = self.index.qualified_name(mod, head)
        if not (q.endswith("settings")):
            return None
        sv = self.settings.get(attr)
        if sv is not None and isinstance(sv.value, str):
            return sv.value
        return None

    def setting(self, name: str) -> SettingValue | None:
        return self.settings.get(name)

    # -- routers ----------------------------------------------------------------------------------------
    def router_for(self, mod: PyModule, e: Expr) -> RouterRef | None:
        """The router a name refers to, if its constructor's class is a DRF router (or a project subclass)."""
        if not e.name:
            return None
        key = (mod.path, e.name)
        if key in self._router_memo:
            return self._router_memo[key]
        self._router_memo[key] = None
        sym = self.index.resolve(mod, e.name)
        ref: RouterRef | None = None
        if sym is not None and sym.kind == "assign" and sym.assign is not None:
            val = sym.assign.value
            if val.kind == "other" and len(val.args) == 3:
                # router = DefaultRouter() if settings.DEBUG else SimpleRouter(): the else branch (production)
                alts = [val.args[2], val.args[0]]
                val = next((a for a in alts if a.kind == "call" and self.plugin.is_router_class(self, sym.module, a)),
                           val)
            if val.kind == "call" and self.plugin.is_router_class(self, sym.module, val):
                ref = RouterRef(sym.module, sym.name, val, sym.assign.line)
        elif sym is None and "." not in e.name:
            # router created inside a function (get_urls()): function-level constructor assignment
            for a in mod.assigns:
                if a.target == e.name and a.value.kind == "call" and self.plugin.is_router_class(self, mod, a.value):
                    ref = RouterRef(mod, e.name, a.value, a.line)
        self._router_memo[key] = ref
        return ref

    def _index_registrations(self) -> None:
        for m in self.project.python:
            for call, _scope in m.calls:
                if call.last != "register" or not call.base or len(call.args) < 2:
                    continue
                sym = self.index.resolve(m, call.base)
                key = (sym.module.path, sym.name) if sym is not None and sym.kind == "assign" else (m.path, call.base)
                self.registrations.setdefault(key, []).append(
                    Registration(call.args[0], call.args[1], dict(call.kwargs), m, call.line))
            for a in m.assigns:
                if a.scope == "<module>" and a.target.count(".") == 1 and a.target[0].islower():
                    base, attr = a.target.split(".")
                    if attr in ("APIRootView", "root_view_name", "include_root_view", "include_format_suffixes"):
                        sym = self.index.resolve(m, base)
                        key = (sym.module.path, sym.name) if sym is not None and sym.kind == "assign" else (m.path, base)
                        self.router_attrs.setdefault(key, {})[attr] = a.value

    # -- run --------------------------------------------------------------------------------------------
    def run(self) -> list[Route]:
        idx = self.index
        self.settings = load_settings(self.project.python, lambda d: idx.find_module(d), self.project.configs,
                                      self.project.root)
        self._index_registrations()
        walker = UrlWalker(idx, self.router_for)
        walker.constant_hook = self.setting_str
        roots: list[PyModule] = []
        sv = self.settings.get("ROOT_URLCONF")
        if sv is not None and isinstance(sv.value, str):
            m = idx.find_module(sv.value)
            if m is not None:
                roots.append(m)
        if roots:
            walker.walk(roots[0])
        else:
            confs = [m for m in self.project.python if self._is_urlconf(m)]
            # URLconfs included by another are walked from there; the rest are roots
            included: set[str] = set()
            for m in confs:
                probe = UrlWalker(idx, self.router_for)
                probe.constant_hook = self.setting_str
                probe.walk(m)
                included |= probe.included - {m.path}
            tops = [m for m in confs if m.path not in included] or confs
            for m in tops:
                walker.walk(m)
        routes: list[Route] = []
        for entry in walker.entries:
            routes.extend(self._guarded(lambda e=entry: self.plugin.entry_routes(self, e), entry.path,
                                        entry.module, entry.line))
        for mount in walker.mounts:
            routes.extend(self._guarded(lambda m=mount: self.plugin.router_routes(self, m), mount.prefix,
                                        mount.module, mount.line))
        return self._dedupe(routes)

    def _guarded(self, fn: Any, path: str, mod: PyModule, line: int) -> list[Route]:
        """One pattern that cannot be linked must not cost the whole URL tree: keep it as a partial route."""
        try:
            got: list[Route] = fn()
            return got
        except (RecursionError, ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
            reason = f"linker error: {type(exc).__name__}"
            return [Route("ANY", "/" + path.lstrip("/") if path.strip("/") else "/{unresolved}", mod.path, line,
                          "?", self.plugin.name, AuthRequirement("unknown", [], [Evidence(mod.path, line, "linker",
                                                                                          reason)]),
                          True, reason)]

    def _is_urlconf(self, m: PyModule) -> bool:
        return any(a.scope == "<module>" and a.target == "urlpatterns" for a in m.assigns)

    @staticmethod
    def _dedupe(routes: list[Route]) -> list[Route]:
        seen: dict[tuple[str, str], Route] = {}
        for r in routes:
            k = (r.method, r.path)
            if k not in seen:
                seen[k] = r
        return list(seen.values())


def global_evidence(text: str, file: str, line: int, kind: str = "global-default") -> Evidence:
    return Evidence(file, line, kind, text)


def literal(sv: SettingValue | None) -> Any:
    return None if sv is None or sv.value is UNKNOWN else sv.value


_MEMO: dict[str, tuple[Project, list[Route]]] = {}


def linked_routes(project: Project, plugin: Django) -> list[Route]:
    """Link once per project; both plugins read the same result."""
    hit = _MEMO.get("last")
    if hit is not None and hit[0] is project:
        return hit[1]
    routes = Linker(project, plugin).run()
    _MEMO["last"] = (project, routes)
    return routes
