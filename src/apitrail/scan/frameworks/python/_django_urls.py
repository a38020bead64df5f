"""The Django URLconf walker: ``urlpatterns`` resolved across modules into (prefix, view) entries.

A URLconf variable is folded from its module-level statements in source order: ``x = [...]``, ``x += [...]``,
``x = x + [...]``, ``x.append(...)``, ``x.extend(...)``, ``x.insert(i, ...)``. Items are ``path()``/``re_path()``/
``url()`` calls, ``*other`` splats and router ``.urls``; ``include()`` takes a dotted module string, a module, a
pattern list, a ``(patterns, app_name)`` tuple or ``router.urls``. The walk starts at ROOT_URLCONF when the settings
name one that is in the tree, and otherwise at every URLconf that no other URLconf includes.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache

from apitrail.scan.frameworks.python import _django_paths as P
from apitrail.scan.lang.python import Expr, PyModule
from apitrail.scan.lang.python_index import PythonIndex

URL_CALLS = frozenset({"path", "re_path", "url"})
REGEX_URL_CALLS = frozenset({"re_path", "url"})
PATTERN_WRAPPERS = frozenset({"format_suffix_patterns", "i18n_patterns", "patterns", "list"})
IGNORED_ITEMS = frozenset({"static", "staticfiles_urlpatterns", "debug_toolbar_urls"})


@dataclass
class Entry:
    """One URL pattern that leads to a view (not an include)."""

    path: str
    view: Expr
    module: PyModule
    line: int
    partial: str = ""  # why the path is only partly known
    kwargs: dict[str, Expr] = field(default_factory=dict)


@dataclass
class RouterRef:
    """A DRF router (or project subclass) whose ``.urls`` are included somewhere."""

    module: PyModule
    name: str
    value: Expr  # the constructor call
    line: int


@dataclass
class RouterMount:
    router: RouterRef
    prefix: str
    partial: str
    module: PyModule
    line: int


@lru_cache(maxsize=4096)
def _file_lines(abs_path: str) -> tuple[str, ...]:
    try:
        with open(abs_path, encoding="utf-8", errors="replace") as fh:
            return tuple(fh.read().splitlines())
    except OSError:
        return ()


def _is_augmented(mod: PyModule, target: str, line: int) -> bool:
    lines = _file_lines(mod.src.abs_path) if mod.src.abs_path else ()
    if 0 < line <= len(lines):
        return bool(re.match(rf"\s*{re.escape(target)}\s*\+=", lines[line - 1]))
    return False


def _enclosing_for(mod: PyModule, line: int) -> tuple[str, str] | None:
    """(loop variable, iterable text) of the module-level ``for`` statement around a line."""
    lines = _file_lines(mod.src.abs_path) if mod.src.abs_path else ()
    if not (0 < line <= len(lines)):
        return None
    indent = len(lines[line - 1]) - len(lines[line - 1].lstrip())
    for i in range(line - 2, max(-1, line - 40), -1):
        text = lines[i]
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        ind = len(text) - len(text.lstrip())
        if ind < indent:
            m = re.match(r"^\s*for\s+(\w+)\s+in\s+(.+?):\s*(#.*)?$", text)
            return (m.group(1), m.group(2).strip()) if m else None
    return None


def _literal_strings(text: str) -> list[str] | None:
    try:
        val = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if isinstance(val, list | tuple | set) and all(isinstance(v, str) for v in val):
        return list(val)
    return None


class UrlWalker:
    def __init__(self, index: PythonIndex, is_router: Callable[[PyModule, Expr], RouterRef | None]) -> None:
        self.index = index
        self.is_router = is_router
        self.entries: list[Entry] = []
        self.mounts: list[RouterMount] = []
        self.included: set[str] = set()  # module paths reached through include()
        self._stack: list[tuple[str, str]] = []
        self._bind: dict[tuple[str, str], list[tuple[Expr, PyModule]]] = {}
        self._var_memo: dict[tuple[str, str], list[tuple[Expr, PyModule]] | None] = {}
        self.visits = 0

    # -- variables --------------------------------------------------------------------------------------
    def var_items(self, mod: PyModule, name: str, depth: int) -> list[tuple[Expr, PyModule]] | None:
        """Fold a module-level list variable; None when the module never binds it (memoised; cycles -> [])."""
        key = (mod.path, name)
        if key in self._var_memo:
            hit = self._var_memo[key]
            return list(hit) if hit is not None else None
        self._var_memo[key] = []  # in progress: a cycle sees an empty list
        got = self._fold_var(mod, name, depth)
        self._var_memo[key] = got
        return list(got) if got is not None else None

    def _fold_var(self, mod: PyModule, name: str, depth: int) -> list[tuple[Expr, PyModule]] | None:
        events: list[tuple[int, int, str, Expr]] = []
        for a in mod.assigns:
            if a.scope == "<module>" and a.target == name:
                events.append((a.line, 0, "aug" if _is_augmented(mod, name, a.line) else "set", a.value))
        for call, scope in mod.calls:
            if scope == "<module>" and call.name in (f"{name}.append", f"{name}.extend", f"{name}.insert", f"{name}.__iadd__"):
                events.append((call.line, 1, call.last, call))
        if not events:
            return None
        events.sort(key=lambda e: (e[0], e[1]))
        items: list[tuple[Expr, PyModule]] = []
        for _, _, kind, e in events:
            if kind == "set":
                items = self.eval_list(mod, e, depth, self_name=name, current=items)
            elif kind == "aug":
                items = items + self.eval_list(mod, e, depth)
            elif kind == "append" and e.args:
                items.extend((x, mod) for x in self.unroll(mod, e.args[0], e.line))
            elif kind == "insert" and len(e.args) >= 2:
                items.insert(0, (e.args[1], mod))
            elif kind in ("extend", "__iadd__") and e.args:
                items.extend(self.eval_list(mod, e.args[0], depth))
        return items

    def unroll(self, mod: PyModule, item: Expr, line: int) -> list[Expr]:
        """``for x in ("a", "b"): urlpatterns.append(path(f"{x}/", v))`` -> one item per known loop value."""
        route = item.arg(0) if item.kind == "call" else None
        if route is None or route.kind != "fstring":
            return [item]
        loop = _enclosing_for(mod, line)
        if loop is None:
            return [item]
        var, iterable = loop
        values = _literal_strings(iterable)
        if values is None and re.match(r"^[A-Za-z_]\w*$", iterable):
            a = mod.module_assign(iterable)
            if a is not None and a.value.kind in ("list", "tuple", "set"):
                vals = [x.value for x in a.value.args if x.kind == "str"]
                values = vals if len(vals) == len(a.value.args) else None
        if not values:
            return [item]
        body = P.fstring_body(route.text)
        if body is None or re.search(r"\{(?!" + re.escape(var) + r"\})[^}]*\}", body):
            return [item]
        out = []
        for v in values:
            text = body.replace("{" + var + "}", str(v))
            new_route = Expr("str", repr(text), route.line, value=text)
            out.append(replace(item, args=[new_route, *item.args[1:]]))
        return out

    def eval_list(self, mod: PyModule, e: Expr, depth: int, self_name: str = "",
                  current: list[tuple[Expr, PyModule]] | None = None) -> list[tuple[Expr, PyModule]]:
        """Items of a list-valued expression (pattern lists)."""
        if depth > 25:
            return []
        if e.kind in ("list", "tuple"):
            out: list[tuple[Expr, PyModule]] = []
            for a in e.args:
                if a.kind == "star" and a.args:
                    out.extend(self.eval_list(mod, a.args[0], depth + 1))
                else:
                    out.append((a, mod))
            return out
        if e.kind == "binop" and e.value == "+":
            return (self.eval_list(mod, e.args[0], depth + 1, self_name, current)
                    + self.eval_list(mod, e.args[1], depth + 1, self_name, current))
        if e.kind in ("name", "attr") and e.name:
            bound = self._bind.get((mod.path, e.name))
            if bound is not None:
                return list(bound)
            if self_name and e.name == self_name:
                return list(current or [])
            if e.name.endswith(".urls"):
                ref = self.is_router(mod, Expr("name", e.name[:-5], e.line, name=e.name[:-5]))
                if ref is not None:
                    return [(Expr("router", e.text, e.line, name=e.name, value=ref), mod)]
            got = self.resolve_list(mod, e.name, depth + 1)
            return got if got is not None else [(Expr("unknown-list", e.text, e.line, name=e.name), mod)]
        if e.kind == "call":
            if e.last in PATTERN_WRAPPERS and e.args:
                out = []
                for a in e.args:
                    if a.kind == "star" and a.args:
                        out.extend(self.eval_list(mod, a.args[0], depth + 1))
                    elif e.last == "i18n_patterns":
                        out.append((a, mod))
                    else:
                        out.extend(self.eval_list(mod, a, depth + 1, self_name, current))
                return out
            if e.last in IGNORED_ITEMS:
                return []
            if e.last == "include" and e.args:
                return self.eval_list(mod, e.args[0], depth + 1)
            sym = self.index.resolve(mod, e.name) if e.name else None
            if sym is not None and sym.kind == "function" and sym.func is not None:
                rets = [r for r in sym.func.body.returns if r.kind in ("list", "tuple", "binop", "name", "call")]
                if rets:
                    # bind the helper's parameters to the caller's arguments (pattern lists passed in)
                    params = [p.name for p in sym.func.params if p.name not in ("self", "cls")]
                    keys = []
                    for pname, arg in zip(params, e.args, strict=False):
                        if arg.kind in ("name", "attr", "list", "binop"):
                            key = (sym.module.path, pname)
                            self._bind[key] = self.eval_list(mod, arg, depth + 1, self_name, current)
                            keys.append(key)
                    try:
                        got = self.eval_list(sym.module, rets[-1], depth + 1)
                    finally:
                        for key in keys:
                            self._bind.pop(key, None)
                    if not (len(got) == 1 and got[0][0].kind == "unknown-list"):
                        return got
            if self_name and any(a.name == self_name for a in e.args):
                # urlpatterns = helper(urlpatterns): a wrapper that adds (debug) routes; keep what is known
                return list(current or [])
        if e.kind == "str":
            target = self.index.find_module(str(e.value), mod)
            if target is not None:
                return self.module_items(target, depth + 1)
        return [(Expr("unknown-list", e.text, e.line, name=e.name), mod)]

    def resolve_list(self, mod: PyModule, name: str, depth: int) -> list[tuple[Expr, PyModule]] | None:
        if "." not in name:
            local = self.var_items(mod, name, depth)
            if local is not None:
                return local
        sym = self.index.resolve(mod, name)
        if sym is None or sym.kind == "unresolved":
            return None
        if sym.kind == "module":
            return self.module_items(sym.module, depth)
        if sym.kind == "assign" and sym.assign is not None:
            if sym.module is mod and sym.name == name:
                return None
            return self.var_items(sym.module, sym.name, depth)
        return None

    def module_items(self, mod: PyModule, depth: int) -> list[tuple[Expr, PyModule]]:
        self.included.add(mod.path)
        got = self.var_items(mod, "urlpatterns", depth)
        return got or []

    # -- walking ----------------------------------------------------------------------------------------
    def walk(self, mod: PyModule, prefix: str = "", partial: str = "") -> None:
        items = self.module_items(mod, 0)
        self.walk_items(items, prefix, partial, 0)

    def walk_items(self, items: list[tuple[Expr, PyModule]], prefix: str, partial: str, depth: int) -> None:
        if depth > 20:
            return
        for item, mod in items:
            self.visits += 1
            self.walk_item(item, mod, prefix, partial, depth)

    def walk_item(self, item: Expr, mod: PyModule, prefix: str, partial: str, depth: int) -> None:
        if item.kind == "router":
            ref = item.value
            assert isinstance(ref, RouterRef)
            self.mounts.append(RouterMount(ref, prefix, partial, mod, item.line))
            return
        if item.kind == "unknown-list":
            if item.text and not item.text.startswith(("settings.", "static(")):
                self.entries.append(Entry(prefix + "{unresolved}", item, mod, item.line,
                                          partial or f"patterns from {item.text[:80]} not resolved"))
            return
        if item.kind != "call":
            return
        if item.last not in URL_CALLS:
            if item.last in IGNORED_ITEMS:
                return
            # a helper that returns patterns, or a wrapped pattern list
            sub = self.eval_list(mod, item, depth + 1)
            if not (len(sub) == 1 and sub[0][0] is item) and not (len(sub) == 1 and sub[0][0].kind == "unknown-list"):
                self.walk_items(sub, prefix, partial, depth + 1)
            return
        route = item.arg(0) or item.kw("route") or item.kw("regex")
        view = item.arg(1) or item.kw("view")
        if route is None or view is None:
            return
        part, why = self.route_text(mod, route, item.last in REGEX_URL_CALLS)
        new_partial = partial or why
        full = prefix + part
        if view.kind == "call" and view.last == "include":
            self.walk_include(view, mod, full, new_partial, depth)
            return
        if view.kind == "attr" and view.name.endswith(".urls"):
            sym = self.index.resolve(mod, view.name)
            if sym is None or sym.kind == "unresolved":
                return  # admin.site.urls and other third-party URLconfs: not in the tree
            self.walk_items(self.eval_list(mod, view, depth + 1), full, new_partial, depth + 1)
            return
        if view.kind == "tuple" and view.args:  # include() result spelled out, or (patterns, app, ns)
            self.walk_items(self.eval_list(mod, view.args[0], depth + 1), full, new_partial, depth + 1)
            return
        kwargs = dict(item.kwargs)
        if len(item.args) > 2:
            kwargs["kwargs"] = item.args[2]
        self.entries.append(Entry(full, view, mod, item.line, new_partial, kwargs))

    def walk_include(self, call: Expr, mod: PyModule, prefix: str, partial: str, depth: int) -> None:
        arg = call.arg(0) or call.kw("arg")
        if arg is None:
            return
        if arg.kind == "tuple" and arg.args:
            arg = arg.args[0]
        key = (arg.text, prefix)
        if key in self._stack:
            return
        self._stack.append(key)
        try:
            if arg.kind == "str":
                target = self.index.find_module(str(arg.value), mod)
                if target is None:
                    return  # a third-party app's URLconf (admin, social auth): not in the tree
                self.walk_items(self.module_items(target, depth + 1), prefix, partial, depth + 1)
                return
            items = self.eval_list(mod, arg, depth + 1)
            for it, _ in items:
                if it.kind == "unknown-list":
                    sym = self.index.resolve(mod, arg.name) if arg.name else None
                    if sym is not None and sym.kind == "unresolved":
                        items = []  # include(debug_toolbar.urls): external
                    break
            self.walk_items(items, prefix, partial, depth + 1)
        finally:
            self._stack.pop()

    def route_text(self, mod: PyModule, route: Expr, regex: bool) -> tuple[str, str]:
        """(path fragment, partial reason)."""
        if route.kind == "str":
            s = str(route.value)
            if regex:
                p, exact = P.regex_to_path(s)
                return p, "" if exact else f"regex {s[:60]!r} approximated"
            return P.route_to_path(s), ""
        if route.kind == "fstring":
            return P.fstring_to_path(route.text), f"computed path {route.text[:60]}"
        if route.kind in ("name", "attr") and route.name:
            val = self.constant_str(mod, route.name)
            if val is not None:
                return (P.regex_to_path(val)[0] if regex else P.route_to_path(val)), ""
        if route.kind == "binop" and route.value == "+":
            a, wa = self.route_text(mod, route.args[0], regex)
            b, wb = self.route_text(mod, route.args[1], regex)
            return a + b, wa or wb
        return "{" + (re.sub(r"\W+", "_", route.text).strip("_")[:40] or "path") + "}", f"computed path {route.text[:60]}"

    constant_hook: Callable[[PyModule, str], str | None] | None = None

    def constant_str(self, mod: PyModule, name: str) -> str | None:
        if self.constant_hook is not None:
            v = self.constant_hook(mod, name)
            if v is not None:
                return v
        sym = self.index.resolve(mod, name)
        if sym is not None and sym.kind == "assign" and sym.assign is not None:
            if sym.assign.value.kind == "str":
                return str(sym.assign.value.value)
            # prefix = "" ... if <deployment setting>: prefix = f"{x}/": the literal is the default deployment
            for a in sym.module.assigns:
                if a.scope == "<module>" and a.target == sym.name and a.value.kind == "str":
                    return str(a.value.value)
        return None
