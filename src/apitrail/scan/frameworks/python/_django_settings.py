"""Django settings as static facts: which modules are settings, and what a setting's value is.

Settings are found through ``DJANGO_SETTINGS_MODULE`` (manage.py, wsgi.py, asgi.py, pytest/tox config) or, failing
that, modules named ``settings*.py`` and ``settings/`` packages. A settings module may spread over several modules
through ``from .base import *``; the chain is followed and later assignments win, as at import time.

Values are evaluated conservatively: literals, lists/tuples/dicts of literals, and the *default* of a configurable
lookup (``getattr(configuration, 'X', default)``, ``os.environ.get('X', default)``, ``env('X', default=...)``).
A value that is only known through such a default is reported as ``configurable`` so callers can say so in evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apitrail.scan.lang.python import Expr, PyModule

DSM_RE = re.compile(r"DJANGO_SETTINGS_MODULE['\"]?\s*[,=:]\s*['\"]?([A-Za-z_][\w.]*)")
DSM_FILES = ("manage.py", "wsgi.py", "asgi.py", "cli.py", "pytest.ini", "setup.cfg", "tox.ini", "pyproject.toml",
             ".env", "Dockerfile")
CONFIG_LOOKUPS = frozenset({"getattr", "get", "getenv", "env", "config", "int", "bool", "str"})
UNKNOWN = object()


@dataclass
class SettingValue:
    value: Any  # python literal, or UNKNOWN
    expr: Expr | None
    file: str
    line: int
    configurable: bool = False  # only the default of a configurable lookup is known


@dataclass
class DjangoSettings:
    modules: list[PyModule] = field(default_factory=list)
    names: dict[str, SettingValue] = field(default_factory=dict)
    rest_framework: dict[str, tuple[Expr, str, int]] = field(default_factory=dict)  # key -> (value, file, line)

    def get(self, name: str) -> SettingValue | None:
        return self.names.get(name)

    def literal(self, name: str, default: Any = None) -> Any:
        sv = self.names.get(name)
        if sv is None or sv.value is UNKNOWN:
            return default
        return sv.value


def literal_value(e: Expr | None) -> Any:
    """Python value of a literal expression, UNKNOWN otherwise. Config lookups evaluate to their default."""
    if e is None:
        return UNKNOWN
    if e.kind == "str":
        return e.value
    if e.kind in ("num", "bool"):
        return e.value if e.value is not None else UNKNOWN
    if e.kind == "none":
        return None
    if e.kind in ("list", "tuple", "set"):
        out: list[Any] = []
        for a in e.args:
            if a.kind == "star":
                inner = literal_value(a.args[0]) if a.args else UNKNOWN
                if isinstance(inner, list | tuple):
                    out.extend(inner)
                continue
            v = literal_value(a)
            if v is UNKNOWN:
                continue  # keep what is known: a list of middleware with one computed entry
            out.append(v)
        return out
    if e.kind == "dict":
        return {k: literal_value(v) for k, v in e.kwargs.items()}
    if e.kind == "call":
        d = config_default(e)
        if d is not None:
            return literal_value(d)
    return UNKNOWN


def config_default(e: Expr) -> Expr | None:
    """The default of ``getattr(cfg, 'X', d)`` / ``os.environ.get('X', d)`` / ``env('X', default=d)``."""
    if e.kind != "call":
        return None
    last = e.last
    if last not in CONFIG_LOOKUPS:
        return None
    if "default" in e.kwargs:
        return e.kwargs["default"]
    if last == "getattr" and len(e.args) >= 3:
        return e.args[2]
    if last in ("get", "getenv", "env", "config") and len(e.args) >= 2:
        return e.args[1]
    if last in ("int", "bool", "str") and e.args:
        return config_default(e.args[0])
    return None


def _dsm_candidates(modules: list[PyModule], root: str, configs: list[Any]) -> list[str]:
    found: list[str] = []
    for m in modules:
        if m.path.rsplit("/", 1)[-1] in DSM_FILES and m.src.abs_path:
            try:
                text = Path(m.src.abs_path).read_text(errors="replace")
            except OSError:
                continue
            found.extend(DSM_RE.findall(text))
    for c in configs:
        if c.rel.rsplit("/", 1)[-1] in DSM_FILES:
            found.extend(DSM_RE.findall(c.text))
    return [f for f in found if "{" not in f]


def is_settings_module(m: PyModule) -> bool:
    parts = m.module.split(".")
    return any(p.startswith("settings") for p in parts[-2:]) and "test" not in parts[-1]


def load_settings(modules: list[PyModule], by_suffix: Any, configs: list[Any], root: str) -> DjangoSettings:
    """Find the settings modules and fold their module-level assignments in import order."""
    out = DjangoSettings()
    chosen: list[PyModule] = []
    for dotted in _dsm_candidates(modules, root, configs):
        m = by_suffix(dotted)
        if m is not None and m not in chosen:
            chosen.append(m)
    if not chosen:
        cands = [m for m in modules if is_settings_module(m)]
        # prefer modules that define the project (ROOT_URLCONF / INSTALLED_APPS / REST_FRAMEWORK)
        strong = [m for m in cands if any(a.scope == "<module>" and a.target in ("ROOT_URLCONF", "INSTALLED_APPS",
                                                                                  "REST_FRAMEWORK", "MIDDLEWARE")
                                          for a in m.assigns)]
        chosen = strong or cands
    ordered: list[PyModule] = []

    def visit(m: PyModule, depth: int) -> None:
        if m in ordered or depth > 6:
            return
        for star in m.star_imports:
            sub = by_suffix(star)
            if sub is not None and sub is not m:
                visit(sub, depth + 1)
        ordered.append(m)

    for m in chosen:
        visit(m, 0)
    out.modules = ordered
    for m in ordered:
        for a in m.assigns:
            if a.scope != "<module>":
                continue
            target = a.target
            sub = re.match(r"^([A-Z][A-Z0-9_]*)\[['\"]([A-Za-z_]\w*)['\"]\]$", target)
            if sub and sub.group(1) == "REST_FRAMEWORK":
                out.rest_framework[sub.group(2)] = (a.value, m.path, a.line)
                continue
            if not re.match(r"^[A-Z][A-Z0-9_]*$", target):
                continue
            val = literal_value(a.value)
            configurable = a.value.kind == "call" and config_default(a.value) is not None
            prev = out.names.get(target)
            if val is UNKNOWN and prev is not None and target in a.value.names():
                # X = normalise(X) / X += [...]: keep the earlier known value
                continue
            if val is UNKNOWN and a.value.kind == "call" and a.value.args:
                # trailing_slash(getattr(cfg, 'BASE_PATH', '')): a helper over a configurable default
                inner = a.value.args[0]
                iv = literal_value(inner) if inner.kind == "call" and config_default(inner) is not None else UNKNOWN
                if iv == "":
                    val, configurable = "", True
            out.names[target] = SettingValue(val, a.value, m.path, a.line, configurable)
            if target == "REST_FRAMEWORK" and a.value.kind == "dict":
                for k, v in a.value.kwargs.items():
                    out.rest_framework[k] = (v, m.path, v.line or a.line)
        for call, scope in m.calls:
            if scope == "<module>" and call.name == "REST_FRAMEWORK.update" and call.args and call.args[0].kind == "dict":
                for k, v in call.args[0].kwargs.items():
                    out.rest_framework[k] = (v, m.path, call.line)
    return out
