"""The Flask-family linker: apps, blueprints, APIs and namespaces as a mount tree, and the routes on it.

Nodes are the objects routes hang off: ``Flask(...)``, ``Blueprint(...)``, a flask-restful / flask-restx
``Api``, a restx ``Namespace``, a flask-smorest ``Api``/``Blueprint``. A node is found where its constructor
is assigned (module level or inside a factory such as ``create_app``). Mounts (``register_blueprint``,
``Api(app)``, ``api.init_app(app)``, ``add_namespace``) link nodes across files; the prefix of a route is the
join of the prefixes along its chain (a ``register_blueprint(url_prefix=)`` overrides the blueprint's own).
Hooks registered with ``before_request`` protect the routes of their node and its descendants; app-level hooks
(and ``before_app_request``) protect every route.

The plugin passes its dialect tables (`FlaskDialect`), so one linker serves Flask, flask-restful/restx and
flask-smorest; each plugin keeps the routes of its own framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from apitrail.scan.frameworks._base import Project
from apitrail.scan.frameworks.python._flask_auth import AuthSource, FlaskAuth, combine
from apitrail.scan.frameworks.python._flask_paths import PathEvaluator, PathValue, join_rule, normalise
from apitrail.scan.lang.python import ClassDef, Expr, FunctionDef, PyModule
from apitrail.scan.lang.python_index import Symbol
from apitrail.scan.model import Evidence, Route

VIEW_METHODS = ("get", "post", "put", "patch", "delete")
# a parameter named like an app in a module of another framework is not a Flask app
OTHER_WEB_FRAMEWORKS = frozenset({"fastapi", "starlette", "django", "rest_framework", "aiohttp", "sanic", "quart",
                                  "litestar", "tornado", "falcon", "bottle", "pyramid", "connexion"})


class FlaskDialect(Protocol):
    """The tables a Flask-family plugin provides (see flask.py for their meaning)."""

    @property
    def CONSTRUCTORS(self) -> Mapping[str, tuple[str, str]]: ...  # noqa: N802
    @property
    def ROUTE_DECORATORS(self) -> Mapping[str, tuple[str, ...] | None]: ...  # noqa: N802
    @property
    def CLASS_ROUTE_DECORATORS(self) -> Mapping[str, str]: ...  # noqa: N802
    @property
    def HOOKS(self) -> Mapping[str, str]: ...  # noqa: N802
    @property
    def AUTH_LIBRARY(self) -> Mapping[str, str]: ...  # noqa: N802
    @property
    def AUTH_INSTANCES(self) -> Mapping[str, str]: ...  # noqa: N802
    @property
    def EMITS(self) -> frozenset[str]: ...  # noqa: N802


@dataclass(eq=False)
class Node:
    key: tuple[str, str, str]  # (file, scope, name)
    kind: str  # app, blueprint, api, namespace
    framework: str
    module: PyModule
    line: int
    ctor: Expr
    own_prefix: PathValue
    mounts: list[Mount] = field(default_factory=list)
    hooks: list[AuthSource] = field(default_factory=list)
    decorators: list[Expr] = field(default_factory=list)  # Api(decorators=[...]) / Namespace(decorators=[...])
    cls: ClassDef | None = None  # a project subclass (ApiExt(Api)) for wrapper methods
    cls_module: PyModule | None = None


@dataclass(eq=False)
class Mount:
    parent: Node | None  # None: the application itself (e.g. the `app` parameter of init_app)
    prefix: PathValue | None  # None: the child's own prefix
    file: str
    line: int


@dataclass
class Chain:
    prefix: PathValue
    nodes: list[Node]


def _scopes(scope: str) -> list[str]:
    """Enclosing scopes, innermost first: ``f.<locals>.g`` -> [f.<locals>.g, f, <module>]."""
    out = []
    cur = scope
    while cur and cur != "<module>":
        out.append(cur)
        if ".<locals>." in cur:
            cur = cur.rsplit(".<locals>.", 1)[0]
        else:
            break
    out.append("<module>")
    return out


def _def_scope(qualname: str) -> str:
    """Scope a function is defined in (its decorators are evaluated there)."""
    if ".<locals>." in qualname:
        return qualname.rsplit(".<locals>.", 1)[0]
    return "<module>"


def _kw_str(call: Expr, key: str) -> str:
    e = call.kw(key)
    return str(e.value) if e is not None and e.kind == "str" else ""


def _str_list(e: Expr | None) -> list[str] | None:
    if e is None:
        return None
    if e.kind in ("list", "tuple", "set"):
        vals = [a.value for a in e.args if a.kind == "str" and isinstance(a.value, str)]
        return vals if len(vals) == len(e.args) else None
    if e.kind == "str" and isinstance(e.value, str):
        return [e.value]
    return None


class FlaskLinker:
    def __init__(self, project: Project, dialect: FlaskDialect) -> None:
        self.project = project
        self.d = dialect
        self.index = project.index
        self.paths = PathEvaluator(self.index)
        self.auth = FlaskAuth(self.index, project.auth, dialect.AUTH_LIBRARY, dialect.AUTH_INSTANCES)
        self.nodes: dict[tuple[str, str, str], Node] = {}
        self.global_hooks: list[AuthSource] = []
        self.routes: list[Route] = []
        self._wrapping_apis = False
        self._param_memo: dict[tuple[str, str, str], list[Node]] = {}
        self._build()

    # -- nodes --------------------------------------------------------------------------------------------
    def _classify(self, module: PyModule, call: Expr) -> tuple[str, str, ClassDef | None, PyModule | None] | None:
        if not call.name:
            return None
        q = self.index.qualified_name(module, call.name)
        hit = self.d.CONSTRUCTORS.get(q)
        if hit is not None:
            return hit[0], hit[1], None, None
        sym = self.index.resolve(module, call.name)
        if sym is not None and sym.kind == "unresolved" and sym.external in self.d.CONSTRUCTORS:
            k, f = self.d.CONSTRUCTORS[sym.external]
            return k, f, None, None
        if sym is not None and sym.kind == "class" and sym.cls is not None:
            for _, c, qn in self.index.class_mro(sym.module, sym.cls):
                if c is None and qn in self.d.CONSTRUCTORS:
                    k, f = self.d.CONSTRUCTORS[qn]
                    return k, f, sym.cls, sym.module
        return None

    def _own_prefix(self, module: PyModule, kind: str, call: Expr, scope: str) -> PathValue:
        if kind == "blueprint":
            e = call.kw("url_prefix") or call.arg(5)
            return self.paths.eval(module, e, scope=scope) if e is not None and e.kind != "none" else PathValue("")
        if kind == "api":
            e = call.kw("prefix")
            return self.paths.eval(module, e, scope=scope) if e is not None else PathValue("")
        if kind == "namespace":
            e = call.kw("path") or call.arg(2)
            if e is not None and e.kind != "none":
                return self.paths.eval(module, e, scope=scope)
            name = call.arg(0) or call.kw("name")
            if name is not None and name.kind == "str":
                return PathValue("/" + str(name.value))
            return PathValue("{?}", True, "namespace name not literal")
        return PathValue("")

    def _build(self) -> None:
        mods = self.project.python
        for m in mods:
            for a in m.assigns:
                if a.value.kind != "call" or "." in a.target and not a.target.startswith("self."):
                    continue
                got = self._classify(m, a.value)
                if got is None:
                    continue
                kind, fw, cls, cmod = got
                key = (m.path, a.scope, a.target)
                self.nodes[key] = Node(key, kind, fw, m, a.line, a.value, self._own_prefix(m, kind, a.value, a.scope),
                                       decorators=list((a.value.kw("decorators") or Expr("none", "", 0)).args),
                                       cls=cls, cls_module=cmod)
        # restx: ns = api.namespace("x", path=...)
        for m in mods:
            for a in m.assigns:
                v = a.value
                if v.kind == "call" and v.last == "namespace" and v.base:
                    parents, _ = self.nodes_for(m, a.scope, Expr("name", v.base, v.line, name=v.base))
                    if parents and all(p.kind == "api" for p in parents):
                        key = (m.path, a.scope, a.target)
                        node = Node(key, "namespace", parents[0].framework, m, a.line, v,
                                    self._own_prefix(m, "namespace", v, a.scope))
                        node.mounts = [Mount(p, None, m.path, a.line) for p in parents]
                        self.nodes[key] = node
        # constructor mounts: Api(app) / Api(bp)
        for n in list(self.nodes.values()):
            if n.kind == "api":
                target = n.ctor.arg(0) or n.ctor.kw("app")
                if target is not None and target.kind in ("name", "attr"):
                    parents, is_app = self.nodes_for(n.module, n.key[1], target)
                    for p in parents:
                        n.mounts.append(Mount(p, None, n.module.path, n.line))
                    if is_app and not parents:
                        n.mounts.append(Mount(None, None, n.module.path, n.line))
        for m in mods:
            for call, scope in m.calls:
                self._mount_call(m, call, scope)
            for f in m.functions.values():
                for deco in f.decorators:
                    if deco.kind == "attr" and deco.last in self.d.HOOKS:
                        self._hook(m, _def_scope(f.qualname), deco.base, f, deco.last, deco.line)
        self._wrapping_apis = any(n.kind == "api" and n.cls is not None for n in self.nodes.values())
        for m in mods:
            self._routes_in(m)

    def nodes_for(self, module: PyModule, scope: str, expr: Expr, depth: int = 0) -> tuple[list[Node], bool]:
        """Nodes an expression refers to; the flag says it is a function parameter (an app we cannot see)."""
        if depth > 5:
            return [], False
        if expr.kind in ("list", "tuple"):
            out: list[Node] = []
            flag = False
            for a in expr.args:
                ns, f = self.nodes_for(module, scope, a, depth + 1)
                out.extend(ns)
                flag = flag or f
            return out, flag
        if expr.kind == "call" and expr.name:
            sym = self.index.resolve(module, expr.name)
            if sym is not None and sym.kind == "function" and sym.func is not None:
                out = []
                for r in sym.func.body.returns:
                    out.extend(self.nodes_for(sym.module, sym.func.qualname, r, depth + 1)[0])
                return out, False
            return [], False
        if expr.kind not in ("name", "attr") or not expr.name:
            return [], False
        name = expr.name
        for s in _scopes(scope):
            n = self.nodes.get((module.path, s, name))
            if n is not None:
                return [n], False
        for s in _scopes(scope)[:-1]:
            func = module.functions.get(s)
            if func is None:
                continue
            if name in {p.name for p in func.params}:
                return self._param_nodes(module, func, name, depth), True
            for asg in reversed(func.body.assigns):
                if asg.target == name:
                    return self.nodes_for(module, s, asg.value, depth + 1)
        sym = self.index.resolve(module, name)
        if sym is not None and sym.kind == "assign" and sym.assign is not None:
            n = self.nodes.get((sym.module.path, sym.assign.scope, sym.assign.target))
            if n is not None:
                return [n], False
            if sym.assign.value.kind in ("name", "attr", "call", "list", "tuple") and sym.module is not module:
                return self.nodes_for(sym.module, "<module>", sym.assign.value, depth + 1)
        return [], False

    def _param_nodes(self, module: PyModule, func: FunctionDef, param: str, depth: int) -> list[Node]:
        """Nodes passed for a parameter by the callers of `func` (``register_routes(app)``)."""
        key = (module.path, func.qualname, param)
        if key in self._param_memo:
            return self._param_memo[key]
        self._param_memo[key] = []
        names = [p.name for p in func.params if p.name not in ("self", "cls")]
        idx = names.index(param) if param in names else -1
        out: list[Node] = []
        if "." not in func.qualname or ".<locals>." in func.qualname:
            for cm in self.project.python:
                for call, cscope in cm.calls:
                    if call.last != func.name:
                        continue
                    arg = call.kwargs.get(param) or (call.args[idx] if 0 <= idx < len(call.args) else None)
                    if arg is None or arg.kind not in ("name", "attr"):
                        continue
                    sym = self.index.resolve(cm, call.name) if call.name else None
                    if sym is None or sym.func is not func:
                        continue
                    out.extend(n for n in self.nodes_for(cm, cscope, arg, depth + 1)[0] if n not in out)
        self._param_memo[key] = out
        return out

    def _implicit_app(self, m: PyModule, scope: str, name: str) -> Node | None:
        """``def init_views(app): @app.route(...)`` with no visible caller: the application, if this is Flask code."""
        tops = {ref.module.split(".")[0] for ref in m.imports.values()}
        if tops & OTHER_WEB_FRAMEWORKS:
            return None
        if not (tops & {"flask"}) and not any(n.kind == "app" for n in self.nodes.values()):
            return None
        key = (m.path, scope, name)
        node = self.nodes.get(key)
        if node is None:
            node = Node(key, "app", "flask", m, 0, Expr("none", "", 0), PathValue(""))
            self.nodes[key] = node
        return node

    def _mount_call(self, m: PyModule, call: Expr, scope: str) -> None:
        last = call.last
        base = call.base
        if not base:
            return
        if last in ("register_blueprint", "init_app", "add_namespace"):
            child_e = call.arg(0) if last != "init_app" else Expr("name", base, call.line, name=base)
            parent_e = Expr("name", base, call.line, name=base) if last != "init_app" else call.arg(0)
            if child_e is None or parent_e is None:
                return
            children, _ = self.nodes_for(m, scope, child_e)
            if last == "init_app":
                children = [c for c in children if c.kind == "api"]
            if not children:
                return
            parents, is_app = self.nodes_for(m, scope, parent_e)
            key = "url_prefix" if last == "register_blueprint" else "path"
            pe = call.kw(key) if last != "init_app" else None
            prefix = self.paths.eval(m, pe, scope=scope) if pe is not None and pe.kind != "none" else None
            for c in children:
                if parents:
                    for p in parents:
                        if p is not c:
                            c.mounts.append(Mount(p, prefix, m.path, call.line))
                elif is_app or last == "register_blueprint":
                    c.mounts.append(Mount(None, prefix, m.path, call.line))
            return
        if last in self.d.HOOKS and call.args:
            fe = call.args[0]
            if fe.name:
                sym = self.index.resolve(m, fe.name)
                if sym is None:
                    for s in _scopes(scope):
                        f = m.functions.get(f"{s}.<locals>.{fe.name}")
                        if f is not None:
                            sym = Symbol(m, "function", f.qualname, func=f)
                            break
                if sym is not None and sym.kind == "function" and sym.func is not None:
                    self._hook(sym.module, scope, base, sym.func, last, call.line, where_module=m)

    def _hook(self, m: PyModule, scope: str, base: str, func: FunctionDef, kind: str, line: int,
              where_module: PyModule | None = None) -> None:
        wm = where_module or m
        src = self.auth.hook(m, func, wm.path, line, f"{base}.{kind}")
        if src is None:
            return
        nodes, _ = self.nodes_for(wm, scope, Expr("name", base, line, name=base))
        if self.d.HOOKS.get(kind) == "app" or not nodes or any(n.kind == "app" for n in nodes):
            self.global_hooks.append(src)
        else:
            for n in nodes:
                n.hooks.append(src)

    # -- chains -------------------------------------------------------------------------------------------
    def chains(self, node: Node, depth: int = 0) -> list[Chain]:
        if not node.mounts or depth > 8:
            return [Chain(node.own_prefix, [node])]
        out: list[Chain] = []
        seen: set[str] = set()
        for mt in node.mounts:
            seg = mt.prefix if mt.prefix is not None else node.own_prefix
            parents = self.chains(mt.parent, depth + 1) if mt.parent is not None else [Chain(PathValue(""), [])]
            for pc in parents:
                text = join_rule(pc.prefix.text, seg.text)
                if text in seen:
                    continue
                seen.add(text)
                reason = "; ".join(r for r in (pc.prefix.reason, seg.reason) if r)
                out.append(Chain(PathValue(text, pc.prefix.partial or seg.partial, reason), [node, *pc.nodes]))
        return out

    # -- routes -------------------------------------------------------------------------------------------
    def _routes_in(self, m: PyModule) -> None:
        for f in m.functions.values():
            if f.decorators:
                self._function_routes(m, f)
        for c in m.classes.values():
            if c.decorators:
                self._class_routes(m, c)
        for call, scope in m.calls:
            last = call.last
            if last == "add_url_rule" and call.base:
                self._add_url_rule(m, call, scope)
            elif (call.func is not None and call.func.kind == "call" and call.func.base and call.args
                  and call.func.last in self.d.ROUTE_DECORATORS):
                self._route_call(m, call, scope)
            elif call.base and (last == "add_resource" or (self._wrapping_apis and last.startswith(("add", "register")))):
                self._resource_call(m, call, scope)
            elif call.name and not call.base and call.args:
                self._view_wrapper_call(m, call, scope)

    def _route_node(self, m: PyModule, scope: str, deco: Expr, table: Mapping[str, object]) -> list[Node]:
        if deco.kind != "call" or not deco.base or deco.last not in table:
            return []
        nodes, is_param = self.nodes_for(m, scope, Expr("name", deco.base, deco.line, name=deco.base))
        if not nodes and is_param and "." not in deco.base:
            app = self._implicit_app(m, scope, deco.base)
            return [app] if app is not None else []
        return nodes

    def _methods(self, e: Expr | None, default: tuple[str, ...] | None) -> tuple[list[str], str]:
        if default is not None:
            return list(default), ""
        if e is None:
            return ["GET"], ""
        vals = _str_list(e)
        if vals is None:
            return ["ANY"], f"methods computed: {e.text[:60]}"
        return [v.upper() for v in vals], ""

    def _function_routes(self, m: PyModule, f: FunctionDef) -> None:
        scope = _def_scope(f.qualname)
        decos = f.decorators
        route_idx = [i for i, d in enumerate(decos) if self._route_node(m, scope, d, self.d.ROUTE_DECORATORS)]
        if not route_idx:
            return
        for i in route_idx:
            d = decos[i]
            nodes = self._route_node(m, scope, d, self.d.ROUTE_DECORATORS)
            below = [x for j, x in enumerate(decos) if j > i and j not in route_idx]
            above = [x for j, x in enumerate(decos) if j < i and j not in route_idx]
            sources = [s for s in (self.auth.decorator(m, x, m.path) for x in below) if s is not None]
            for x in above:
                s = self.auth.decorator(m, x, m.path)
                if s is not None and s.strength in ("authn", "role"):
                    sources.append(AuthSource("none", [Evidence(m.path, x.line, "decorator-order",
                                                                 f"@{x.text[:80]} is above @{d.name}: Flask registers "
                                                                 "the undecorated view, so it does not protect it")],
                                              note="above-route"))
            inline = self.auth.inline(m, f)
            if inline is not None:
                sources.append(inline)
            rule = self.paths.eval(m, d.arg(0) or d.kw("rule"), scope=scope)
            methods, mreason = self._methods(d.kw("methods"), self.d.ROUTE_DECORATORS.get(d.last))
            for n in nodes:
                ep_e = d.kw("endpoint")
                ep = str(ep_e.value) if ep_e is not None and ep_e.kind == "str" else f.name
                self._emit(n, rule, methods, mreason, f.name, m.path, d.line, m.path, f.line, sources, ep)

    def _class_routes(self, m: PyModule, c: ClassDef) -> None:
        scope = _def_scope(c.qualname)
        for d in c.decorators:
            nodes = self._route_node(m, scope, d, self.d.CLASS_ROUTE_DECORATORS)
            if not nodes:
                continue
            rule_kw = d.kw("rule")
            rules = [a for a in d.args if a.kind != "star"] or ([rule_kw] if rule_kw is not None else [])
            for n in nodes:
                for r in rules:
                    ep_e = d.kw("endpoint")
                    ep = str(ep_e.value) if ep_e is not None and ep_e.kind == "str" else c.name.lower()
                    self._class_view(n, m, c, self.paths.eval(m, r, scope=scope), m.path, d.line, d.kw("methods"),
                                     endpoint=ep)

    def _route_call(self, m: PyModule, call: Expr, scope: str) -> None:
        """``app.route("/x", methods=[...])(view)``: the decorator applied by hand."""
        deco = call.func
        if deco is None:
            return
        nodes = self._route_node(m, scope, deco, self.d.ROUTE_DECORATORS)
        view = call.args[0]
        if not nodes or not view.name:
            return
        sym = self.index.resolve(m, view.name)
        if sym is None or sym.kind != "function" or sym.func is None:
            return
        fm, f = sym.module, sym.func
        sources = [s for s in (self.auth.decorator(fm, d, fm.path) for d in f.decorators) if s is not None]
        inline = self.auth.inline(fm, f)
        if inline is not None:
            sources.append(inline)
        rule = self.paths.eval(m, deco.arg(0) or deco.kw("rule"), scope=scope)
        methods, mreason = self._methods(deco.kw("methods"), self.d.ROUTE_DECORATORS.get(deco.last))
        for n in nodes:
            self._emit(n, rule, methods, mreason, f.name, m.path, call.line, fm.path, f.line, sources)

    def _view_wrapper_call(self, m: PyModule, call: Expr, scope: str) -> None:
        """``register_view(bp, routes=[...], view_func=V.as_view(...))``: a project function that passes its
        arguments on to ``<param>.add_url_rule(...)``; the caller's values are bound and the rule is emitted."""
        if not any(a.kind in ("name", "attr") and any(self.nodes_for(m, scope, a))
                   for a in [*call.args, *call.kwargs.values()]):
            return
        sym = self.index.resolve(m, call.name)
        if sym is None or sym.kind != "function" or sym.func is None:
            return
        wf = sym.func
        inner = next((c for c in wf.body.calls if c.last in ("add_url_rule", "add_resource") and c.base), None)
        if inner is None:
            return
        if inner.last == "add_resource":
            # def add_resource(api, resource, *urls): api.add_resource(resource, *[prefix + u for u in urls])
            pnames = [p.name for p in wf.params if p.name not in ("self", "cls")]
            if inner.base not in pnames or pnames.index(inner.base) >= len(call.args):
                return
            apis, _ = self.nodes_for(m, scope, call.args[pnames.index(inner.base)])
            res, res_rules = self._bind_wrapper(m, scope, call, sym.module, wf, inner)
            if apis and all(n.kind in ("api", "namespace") for n in apis):
                self._resources(apis, m, res, res_rules, m.path, call.line)
            return
        params = [p for p in wf.params if p.name not in ("self", "cls")]
        bound: dict[str, Expr] = {}
        extra_kw: dict[str, Expr] = {}
        pos = list(call.args)
        names = {p.name for p in params}
        for p in params:
            if p.kind == "normal" and pos:
                bound[p.name] = pos.pop(0)
            elif p.name in call.kwargs:
                bound[p.name] = call.kwargs[p.name]
        for k, v in call.kwargs.items():
            if k not in names:
                extra_kw[k] = v
        wm = sym.module
        env = {k: self.paths.eval(m, v, scope=scope) for k, v in bound.items()}
        # `for route in routes: bp.add_url_rule(route, ...)`: the loop variable takes each bound value
        loops = {a.target: a.value.name for a in wf.body.assigns if a.value.kind == "name" and a.value.name in bound}
        local = {a.target: a.value for a in wf.body.assigns}
        for inner in wf.body.calls:
            if inner.last != "add_url_rule" or inner.base not in bound:
                continue
            nodes, is_param = self.nodes_for(m, scope, bound[inner.base])
            if not nodes and is_param and bound[inner.base].kind == "name":
                app = self._implicit_app(m, scope, bound[inner.base].name)
                nodes = [app] if app is not None else []
            if not nodes:
                continue
            rule_e = inner.arg(0) or inner.kw("rule")
            if rule_e is not None and rule_e.kind == "name" and rule_e.name in loops:
                src = bound[loops[rule_e.name]]
                rules = [self.paths.eval(m, r, scope=scope) for r in (src.args if src.kind in ("list", "tuple") else [src])]
            elif rule_e is not None and rule_e.kind == "name" and rule_e.name in bound:
                rules = [env[rule_e.name]]
            else:
                rules = [self.paths.eval(wm, rule_e, env, wf.qualname)]
            view_e = inner.kw("view_func") or inner.arg(2)
            if view_e is None:
                continue
            if view_e.kind == "name" and view_e.name in bound:
                view, vm, vscope = bound[view_e.name], m, scope
            elif view_e.kind == "name" and view_e.name in local:
                view, vm, vscope = local[view_e.name], wm, wf.qualname
            else:
                view, vm, vscope = view_e, wm, wf.qualname
            methods_e = extra_kw.get("methods") or inner.kw("methods")
            if methods_e is not None and methods_e.kind == "name" and methods_e.name in bound:
                methods_e = bound[methods_e.name]
            for rule in rules:
                self._register_view(nodes, rule, view, vm, vscope, methods_e, m.path, call.line)

    def _is_wrapper(self, m: PyModule, scope: str, call: Expr) -> bool:
        """A registration on a parameter of a helper that callers hand an app/blueprint to: it is expanded at
        each call site (`_view_wrapper_call`), where the rule and view are bound to the caller's arguments."""
        func = m.functions.get(scope)
        base = call.base.split(".")[0]
        params = {p.name for p in func.params} - {"self", "cls"} if func is not None else set()
        if func is None or base not in params:
            return False
        if self._has_callers(m, func):
            return True
        # never called in the tree: a helper whose rule or view comes from its parameters is not a route itself
        used = {n.split(".")[0] for a in [*call.args, *call.kwargs.values()] for n in a.names()}
        local = {a.target for a in func.body.assigns if a.value.names() & params}
        return bool(used & (params | local))

    def _has_callers(self, m: PyModule, func: FunctionDef) -> bool:
        key = (m.path, func.qualname, "<callers>")
        if key not in self._param_memo:
            found = any(call.last == func.name and (sym := self.index.resolve(cm, call.name)) is not None
                        and sym.func is func
                        for cm in self.project.python for call, _ in cm.calls if call.name)
            self._param_memo[key] = [Node(key, "", "", m, 0, Expr("none", "", 0), PathValue(""))] if found else []
        return bool(self._param_memo[key])

    def _add_url_rule(self, m: PyModule, call: Expr, scope: str) -> None:
        if self._is_wrapper(m, scope, call):
            return
        nodes, is_param = self.nodes_for(m, scope, Expr("name", call.base, call.line, name=call.base))
        if not nodes and is_param and "." not in call.base:
            app = self._implicit_app(m, scope, call.base)
            nodes = [app] if app is not None else []
        if not nodes:
            return
        rule = self.paths.eval(m, call.arg(0) or call.kw("rule"), scope=scope)
        view = call.kw("view_func") or call.arg(2)
        if view is None:
            return
        self._register_view(nodes, rule, view, m, scope, call.kw("methods"), m.path, call.line)

    def _register_view(self, nodes: list[Node], rule: PathValue, view: Expr, m: PyModule, scope: str,
                       methods_e: Expr | None, file: str, line: int) -> None:
        """One ``add_url_rule``: `view` (a function, ``wrapper(view)`` or ``V.as_view()``) is read in module `m`."""
        wrappers: list[Expr] = []
        while view.kind == "call" and view.last != "as_view" and view.args:
            wrappers.append(view)  # login_required(view): the wrapper is applied before registration
            view = view.args[0]
        sources = [s for s in (self.auth.decorator(m, w, m.path) for w in wrappers) if s is not None]
        if view.kind == "call" and view.last == "as_view":
            sym = self.index.resolve(m, view.base) if view.base else None
            if sym is not None and sym.kind == "class" and sym.cls is not None:
                name_e = view.arg(0) or view.kw("name")
                ep = str(name_e.value) if name_e is not None and name_e.kind == "str" else ""
                for n in nodes:
                    self._class_view(n, sym.module, sym.cls, rule, file, line, methods_e, sources, endpoint=ep)
            return
        sym = self.index.resolve(m, view.name) if view.name else None
        if sym is None and view.name:
            for sc in _scopes(scope):
                lf = m.functions.get(f"{sc}.<locals>.{view.name}")
                if lf is not None:
                    sym = Symbol(m, "function", lf.qualname, func=lf)
                    break
        methods, mreason = self._methods(methods_e, None)
        if sym is not None and sym.kind == "function" and sym.func is not None:
            fm, f = sym.module, sym.func
            for d in f.decorators:
                s = self.auth.decorator(fm, d, fm.path)
                if s is not None:
                    sources.append(s)
            inline = self.auth.inline(fm, f)
            if inline is not None:
                sources.append(inline)
            for n in nodes:
                self._emit(n, rule, methods, mreason, f.name, file, line, fm.path, f.line, sources)
        else:
            for n in nodes:
                self._emit(n, rule, methods, mreason, view.text[:60], file, line, "", 0,
                           [*sources, AuthSource("unknown", [Evidence(file, line, "unresolved-view", view.text[:80])])])

    # -- class-based views and resources --------------------------------------------------------------------
    def _mro_attr(self, m: PyModule, c: ClassDef, attr: str) -> tuple[PyModule, Expr] | None:
        for cm, cc, _ in self.index.class_mro(m, c):
            if cc is not None and attr in cc.attrs:
                return cm, cc.attrs[attr].value
        return None

    def _decorator_list(self, m: PyModule, e: Expr, depth: int = 0) -> list[tuple[PyModule, Expr]]:
        """Items of a decorators list: literals, ``Base.decorators + [...]``, a name bound to a list."""
        if depth > 5:
            return []
        if e.kind in ("list", "tuple"):
            return [(m, x) for x in e.args]
        if e.kind == "binop" and e.value == "+":
            return [x for a in e.args for x in self._decorator_list(m, a, depth + 1)]
        if e.kind in ("name", "attr") and e.name:
            base, _, attr = e.name.rpartition(".")
            if base:
                sym = self.index.resolve(m, base)
                if sym is not None and sym.kind == "class" and sym.cls is not None:
                    got = self._mro_attr(sym.module, sym.cls, attr)
                    return self._decorator_list(got[0], got[1], depth + 1) if got is not None else []
            sym = self.index.resolve(m, e.name)
            if sym is not None and sym.kind == "assign" and sym.assign is not None:
                return self._decorator_list(sym.module, sym.assign.value, depth + 1)
        return []

    def _dispatch(self, m: PyModule, c: ClassDef) -> tuple[PyModule, FunctionDef] | None:
        for cm, cc, _ in self.index.class_mro(m, c):
            if cc is not None and f"{cc.qualname}.dispatch_request" in cm.functions:
                return cm, cm.functions[f"{cc.qualname}.dispatch_request"]
        return None

    def _view_methods(self, m: PyModule, c: ClassDef) -> list[tuple[str, PyModule, FunctionDef]]:
        found: dict[str, tuple[PyModule, FunctionDef]] = {}
        for cm, cc, _ in self.index.class_mro(m, c):
            if cc is None:
                continue
            for meth in VIEW_METHODS:
                f = cm.functions.get(f"{cc.qualname}.{meth}")
                if f is not None and meth not in found:
                    found[meth] = (cm, f)
        return [(k.upper(), v[0], v[1]) for k, v in found.items()]

    def _class_view(self, n: Node, m: PyModule, c: ClassDef, rule: PathValue, file: str, line: int,
                    methods_e: Expr | None = None, extra: list[AuthSource] | None = None, endpoint: str = "") -> None:
        extra = list(extra or [])
        # auth decorators written on the view class wrap every method (route decorators are skipped)
        for d in c.decorators:
            if d.kind == "call" and d.last in self.d.CLASS_ROUTE_DECORATORS:
                continue
            src = self.auth.decorator(m, d, m.path)
            if src is not None:
                extra.append(src)
        got = self._mro_attr(m, c, "decorators")
        if got is not None:
            for dm, x in self._decorator_list(got[0], got[1]):
                src = self.auth.decorator(dm, x, dm.path)
                if src is not None:
                    extra.append(src)
        per_method: dict[str, list[AuthSource]] = {}
        got = self._mro_attr(m, c, "method_decorators")
        if got is not None:
            dm, val = got
            if val.kind in ("list", "tuple", "binop", "attr", "name"):
                for xm, x in self._decorator_list(dm, val):
                    s = self.auth.decorator(xm, x, xm.path)
                    if s is not None:
                        extra.append(s)
            elif val.kind == "dict":
                for meth, lst in val.kwargs.items():
                    for x in lst.args if lst.kind in ("list", "tuple") else [lst]:
                        s = self.auth.decorator(dm, x, dm.path)
                        if s is not None:
                            per_method.setdefault(meth.upper(), []).append(s)
        methods = self._view_methods(m, c)
        dispatch = self._dispatch(m, c)
        declared = _str_list(methods_e) or _str_list((self._mro_attr(m, c, "methods") or (m, None))[1])
        if declared is not None:
            # View.methods / route(methods=): methods without a handler of their own go to dispatch_request
            wanted = {x.upper() for x in declared} - {"HEAD", "OPTIONS"}
            methods = [x for x in methods if x[0] in wanted]
            have = {x[0] for x in methods}
            if dispatch is not None:
                methods += [(w, dispatch[0], dispatch[1]) for w in sorted(wanted - have)]
        elif not methods and dispatch is not None:
            methods = [("GET", dispatch[0], dispatch[1])]
        for meth, fm, f in methods:
            sources = list(extra) + per_method.get(meth, [])
            for d in f.decorators:
                s = self.auth.decorator(fm, d, fm.path)
                if s is not None:
                    sources.append(s)
            inline = self.auth.inline(fm, f)
            if inline is not None:
                sources.append(inline)
            self._emit(n, rule, [meth], "", f"{c.name}.{f.name}", file, line, fm.path, f.line, sources,
                       endpoint or c.name.lower())

    def _resource_call(self, m: PyModule, call: Expr, scope: str) -> None:
        """api.add_resource(Res, '/a', '/b') or a project wrapper whose body calls *.add_resource."""
        nodes, _ = self.nodes_for(m, scope, Expr("name", call.base, call.line, name=call.base))
        if not nodes or not all(n.kind in ("api", "namespace") for n in nodes):
            return
        if call.last == "add_resource":
            if self._is_wrapper(m, scope, call):
                return
            res = call.arg(0)
            rules = [self.paths.eval(m, a, scope=scope) for a in call.args[1:] if a.kind != "star"]
            self._resources(nodes, m, res, rules, m.path, call.line, _kw_str(call, "endpoint"))
            return
        n0 = nodes[0]
        if n0.cls is None or n0.cls_module is None:
            return
        wrapper = None
        for wm, wc, _ in self.index.class_mro(n0.cls_module, n0.cls):
            if wc is not None and f"{wc.qualname}.{call.last}" in wm.functions:
                wrapper = (wm, wm.functions[f"{wc.qualname}.{call.last}"])
                break
        if wrapper is None:
            return
        wm, wf = wrapper
        inner = next((c for c in wf.body.calls if c.last == "add_resource"), None)
        if inner is None:
            return
        res, rules = self._bind_wrapper(m, scope, call, wm, wf, inner)
        if res is not None:
            self._resources(nodes, m, res, rules, m.path, call.line, _kw_str(call, "endpoint"))

    def _bind_wrapper(self, m: PyModule, scope: str, call: Expr, wm: PyModule, wf: FunctionDef,
                      inner: Expr) -> tuple[Expr | None, list[PathValue]]:
        """Map the caller's arguments onto the wrapper's parameters and evaluate the URLs it passes on."""
        params = [p for p in wf.params if p.name not in ("self", "cls")]
        bound: dict[str, list[Expr]] = {}
        pos = list(call.args)
        for p in params:
            if p.kind == "star":
                bound[p.name] = pos
                pos = []
            elif p.kind in ("normal",) and pos:
                bound[p.name] = [pos.pop(0)]
            elif p.name in call.kwargs:
                bound[p.name] = [call.kwargs[p.name]]
        res_e = inner.arg(0)
        res = bound.get(res_e.name, [None])[0] if res_e is not None and res_e.name in bound else None
        rules: list[PathValue] = []
        for a in inner.args[1:]:
            if a.kind == "star" and a.text.startswith("**"):
                continue
            src = a.args[0] if a.kind == "star" and a.args else a
            name = src.name
            # urls = [transform(u) for u in urls]
            comp_asg = next((x for x in reversed(wf.body.assigns) if x.target == name), None) if name else None
            comp = comp_asg.value if comp_asg is not None else (src if src.kind == "other" else None)
            values = bound.get(name)
            if comp is not None and comp.kind == "other" and comp.args:
                elem = comp.args[0]
                clause = comp.args[1] if len(comp.args) > 1 else None
                var = clause.args[0].name if clause is not None and clause.args else ""
                it = clause.args[1].name if clause is not None and len(clause.args) > 1 else ""
                for v in bound.get(it, []):
                    env = {var: self.paths.eval(m, v, scope=scope)}
                    rules.append(self.paths.eval(wm, elem, env, wf.qualname))
            elif values is not None:
                rules.extend(self.paths.eval(m, v, scope=scope) for v in values)
            else:
                env = {k: self.paths.eval(m, v[0], scope=scope) for k, v in bound.items() if v}
                rules.append(self.paths.eval(wm, a, env, wf.qualname))
        return res, rules

    def _resources(self, nodes: list[Node], m: PyModule, res: Expr | None, rules: list[PathValue], file: str,
                   line: int, endpoint: str = "") -> None:
        if res is None or not res.name:
            return
        sym = self.index.resolve(m, res.name)
        if sym is None or sym.kind != "class" or sym.cls is None:
            return
        for n in nodes:
            for r in rules:
                self._class_view(n, sym.module, sym.cls, r, file, line, endpoint=endpoint or sym.cls.name.lower())

    # -- emit -----------------------------------------------------------------------------------------------
    def _node_decorators(self, n: Node) -> list[AuthSource]:
        out = []
        for x in n.decorators:
            s = self.auth.decorator(n.module, x, n.module.path)
            if s is not None:
                out.append(s)
        return out

    def _emit(self, n: Node, rule: PathValue, methods: list[str], mreason: str, handler: str, file: str,
              line: int, hfile: str, hline: int, sources: list[AuthSource], endpoint: str = "") -> None:
        if n.framework not in self.d.EMITS:
            return
        for ch in self.chains(n):
            path = normalise(join_rule(ch.prefix.text, rule.text))
            bps = [str(x.ctor.args[0].value) for x in reversed(ch.nodes)
                   if x.kind == "blueprint" and x.ctor.args and x.ctor.args[0].kind == "str"]
            ep = ".".join([*bps, endpoint or handler.split(".")[-1]])
            inherited: list[AuthSource] = []
            hooks = list(self.global_hooks) + [h for node in reversed(ch.nodes) for h in node.hooks]
            for h in hooks:
                if h.exempt is not None and h.exempt.exempts(ep, bps, path):
                    first = h.evidence[0]
                    inherited.append(AuthSource("none", [Evidence(first.file, first.line, "hook-exemption",
                                                                  f"{first.detail} lets {ep} through")],
                                                note="exempt"))
                else:
                    inherited.append(h)
            for node in reversed(ch.nodes):
                inherited.extend(self._node_decorators(node))
            auth = combine(inherited + sources)
            reasons = [r for r in (ch.prefix.reason, rule.reason, mreason) if r]
            for meth in methods:
                if meth in ("HEAD", "OPTIONS") and len(methods) > 1:
                    continue
                self.routes.append(Route(
                    method=meth, path=path, file=file, line=line, handler=handler, framework=n.framework,
                    auth=auth, partial=bool(reasons) or ch.prefix.partial or rule.partial,
                    partial_reason="; ".join(dict.fromkeys(reasons)), handler_file=hfile, handler_line=hline))


def link(project: Project, dialect: FlaskDialect) -> FlaskLinker:
    """Link the project with one plugin's tables (each plugin of the family links once per scan)."""
    return FlaskLinker(project, dialect)
