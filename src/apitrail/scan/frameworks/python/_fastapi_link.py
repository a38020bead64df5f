"""Linker shared by the Starlette and FastAPI plugins: the mount tree and the dependency graph.

Pass 1 gives plain facts per file. Here they are linked across files:

1. **Routers.** Every assignment whose value constructs an application or a router (``FastAPI()``,
   ``APIRouter(prefix=...)``, a subclass of either, ``Starlette(routes=[...])``, ``Router(...)``, or a factory
   function that returns one) becomes a node, keyed by where it was bound (module, function scope, name).
2. **Routes** attach to nodes: decorators (``@router.get``), registration calls (``add_api_route``,
   ``add_route``, ``app.get("/x")(handler)``) and ``Route``/``Mount`` lists.
3. **Edges**: ``include_router`` and ``mount`` calls, and ``Mount`` objects, with their prefix and
   dependencies. Children are resolved across modules (``from .routes import items; items.router``), through
   factory functions and through ``for r in [a, b]: app.include_router(r)`` loops.
4. **Walk** from every node nobody includes, concatenating prefixes and collecting dependencies on the way.
5. **Auth**: each dependency is resolved to what it calls and judged by behaviour (``AuthAnalyzer``), with
   nested dependencies, ``Annotated`` aliases (PEP 695 ``type`` aliases too), class instances (``__call__``),
   and factories (what the factory returns).

The dialect (plugin class) supplies the tables: constructor names, route decorators, dependency markers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apitrail.scan.lang.python import Assign, ClassDef, Expr, FunctionDef, PyModule, to_expr
from apitrail.scan.lang.python_auth import SECURITY_SCHEME_CLASSES, UNAUTH_STATUS, AuthVerdict, _is_reject
from apitrail.scan.lang.python_index import Symbol
from apitrail.scan.model import AuthRequirement, Evidence, Route

if TYPE_CHECKING:
    from apitrail.scan.frameworks._base import Project
    from apitrail.scan.frameworks.python.starlette import Starlette as Dialect

MODULE = "<module>"
PARAM_CONV = re.compile(r"\{([A-Za-z_]\w*)(?::[^{}]*)?\}")
# Inline checks in a handler body: a rejecting branch whose condition is about the caller's credentials.
INLINE_AUTH_COND = re.compile(r"authori[sz]ation|api_?key|is_authenticated|is_anonymous|request\.user|current_user|"
                              r"access_token|auth_token|bearer|jwt|session\[", re.I)
# configuration, not request data: settings objects, environment, UPPER_CASE constants
FLAG_ROLES = {"is_superuser": "superuser", "is_admin": "admin", "is_staff": "staff"}
CONFIG_COND = re.compile(r"(?i:\b(settings|config|conf|environ|getenv)\b|\b(auth|security)_(enabled|disabled)\b)|"
                         r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\bDEBUG\b")
CREDENTIAL_SOURCE = re.compile(r"headers|cookies|Authorization|session\.get|session\[", re.I)
INLINE_ROLE_COND = re.compile(r"\b(role|roles|is_superuser|is_admin|is_staff|scopes?|permissions?)\b", re.I)
CREDENTIAL_HANDLER = re.compile(r"password|OAuth2PasswordRequestForm|login|signin|signup|register|otp|reset", re.I)
# External packages whose callables are never auth (request plumbing, DB sessions, validation).
NON_AUTH_PACKAGES = ("fastapi.Request", "fastapi.BackgroundTasks", "fastapi.Body", "fastapi.Query", "fastapi.Path",
                     "fastapi.Header", "fastapi.Cookie", "fastapi.Form", "fastapi.File", "sqlalchemy", "sqlmodel",
                     "pydantic", "starlette.requests", "typing", "datetime", "uuid", "logging")


@dataclass
class PathPart:
    """A (possibly computed) path fragment: what is known, and why it is only partly known."""

    text: str = ""
    partial: str = ""  # reason, empty when fully known

    def __add__(self, other: PathPart) -> PathPart:
        reason = "; ".join(r for r in (self.partial, other.partial) if r)
        return PathPart(self.text + other.text, reason)


@dataclass
class DepRef:
    """A dependency attached somewhere on a route's chain."""

    module: PyModule
    scope: str
    target: Expr | None  # what Depends()/Security() wraps (None: the parameter annotation's class)
    kind: str  # global-dependency, router-dependency, include-dependency, route-dependency, parameter-dependency
    line: int
    text: str
    scopes: list[str] = field(default_factory=list)  # Security(dep, scopes=[...])
    annotation: Expr | None = None


@dataclass
class DepResult:
    authn: bool = False
    role: bool = False
    roles: list[str] = field(default_factory=list)
    optional: bool = False
    unknown: str = ""
    evidence: list[Evidence] = field(default_factory=list)

    def merge(self, other: DepResult) -> None:
        self.authn = self.authn or other.authn
        self.role = self.role or other.role
        for r in other.roles:
            if r not in self.roles:
                self.roles.append(r)
        self.optional = self.optional or other.optional
        if other.unknown and not self.unknown:
            self.unknown = other.unknown
        for e in other.evidence:
            if e not in self.evidence:
                self.evidence.append(e)


@dataclass
class RouteDecl:
    methods: list[str]
    path: PathPart
    module: PyModule
    line: int
    handler: str
    handler_func: FunctionDef | None
    handler_module: PyModule | None
    deps: list[DepRef] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    requires: list[str] | None = None  # starlette @requires scopes
    requires_line: int = 0


@dataclass
class Include:
    child: Node
    prefix: PathPart
    deps: list[DepRef]
    hidden: bool
    line: int
    module: PyModule
    mount: bool = False  # a mounted ASGI app: the parent's dependencies do not reach it


@dataclass
class Node:
    key: tuple[str, str, str, int]
    module: PyModule
    scope: str
    name: str
    kind: str  # app, router, static
    line: int
    prefix: PathPart = field(default_factory=PathPart)
    deps: list[DepRef] = field(default_factory=list)
    hidden: bool = False
    routes: list[RouteDecl] = field(default_factory=list)
    children: list[Include] = field(default_factory=list)
    parents: int = 0
    middleware: list[Evidence] = field(default_factory=list)
    ctor: Expr | None = None


def _scope_of(qualname: str) -> str:
    """The function scope a definition lives in: ``make.<locals>.x`` -> ``make``; module-level -> <module>."""
    return qualname.rsplit(".<locals>.", 1)[0] if ".<locals>." in qualname else MODULE


def norm_type(e: Expr, depth: int = 0) -> Expr:
    """Annotations parse as tree-sitter ``type``/``generic_type`` nodes: turn them back into plain expressions
    (``Annotated[User, Depends(x)]`` -> a subscript named Annotated with args [User, Depends(x)])."""
    if depth > 8:
        return e
    while e.kind == "other" and len(e.args) == 1 and e.args[0].text == e.text:
        e = e.args[0]
    if e.kind == "other" and len(e.args) == 1 and e.args[0].kind in ("name", "attr", "call", "subscript", "binop"):
        return norm_type(e.args[0], depth + 1)
    if (e.kind == "other" and len(e.args) == 2 and e.args[0].kind in ("name", "attr") and e.args[1].kind == "other"
            and e.args[1].text.startswith("[")):
        return Expr("subscript", e.text, e.line, name=e.args[0].name,
                    args=[norm_type(a, depth + 1) for a in e.args[1].args], func=e.args[0])
    if e.kind == "subscript":
        return Expr("subscript", e.text, e.line, name=e.name, args=[norm_type(a, depth + 1) for a in e.args], func=e.func)
    if e.kind == "binop":
        return Expr("binop", e.text, e.line, value=e.value, args=[norm_type(a, depth + 1) for a in e.args])
    return e


def _role_from_arg(e: Expr) -> list[str]:
    out: list[str] = []
    stack = [e]
    while stack:
        cur = stack.pop()
        if cur.kind == "str" and isinstance(cur.value, str):
            out.append(cur.value)
        elif cur.kind in ("attr", "name") and cur.name and cur.kind == "attr":
            out.append(cur.name.rsplit(".", 1)[-1])
        elif cur.kind in ("list", "tuple", "set", "star"):
            stack.extend(reversed(cur.args))
    return out


class Linker:
    def __init__(self, project: Project, dialect: Dialect) -> None:
        self.p = project
        self.idx = project.index
        self.d = dialect
        self.nodes: dict[tuple[str, str, str, int], Node] = {}
        self._ctor_memo: dict[tuple[str, str, str], str | None] = {}
        self._dep_memo: dict[tuple[str, str, str], DepResult] = {}
        self._fn_memo: dict[tuple[str, str], DepResult] = {}
        self._alias_memo: dict[tuple[str, str], Expr | None] = {}
        self._str_memo: dict[tuple[str, str, str], PathPart] = {}
        self._resolve_memo: dict[tuple[str, str], Symbol | None] = {}
        self._bindings: dict[str, tuple[PyModule, str, Expr]] = {}
        self._attr_routers: dict[str, list[Node]] | None = None
        self._outer_calls: list[Expr] = []  # factory calls being evaluated (their arguments configure the instance)
        self._local_assigns: dict[tuple[str, str], dict[str, list[Assign]]] = {}

    def resolve(self, module: PyModule, name: str) -> Symbol | None:
        """PythonIndex.resolve, memoised: the same names are looked up for every route of a router."""
        key = (module.path, name)
        if key in self._resolve_memo:
            return self._resolve_memo[key]
        sym = self.idx.resolve(module, name)
        self._resolve_memo[key] = sym
        return sym

    # ------------------------------------------------------------------ constructors -------------------------
    def ctor_kind(self, module: PyModule, scope: str, call: Expr) -> str | None:
        """app / router / static when `call` constructs one (resolved, not by name alone), else None."""
        if call.kind != "call" or not call.name:
            return None
        key = (module.path, scope, call.name)
        if key in self._ctor_memo:
            return self._ctor_memo[key]
        self._ctor_memo[key] = None
        kind = self._ctor_kind(module, scope, call.name)
        self._ctor_memo[key] = kind
        return kind

    def _ext_kind(self, qualified: str) -> str | None:
        last = qualified.rsplit(".", 1)[-1]
        top = qualified.split(".", 1)[0]
        if top not in self.d.PACKAGES and top not in ("fastapi", "starlette"):
            return None
        if last in self.d.APP_CLASSES:
            return "app"
        if last in self.d.ROUTER_CLASSES:
            return "router"
        if last in self.d.STATIC_CLASSES:
            return "static"
        return None

    def _class_kind(self, module: PyModule, cls: ClassDef) -> str | None:
        for _, c, q in self.idx.class_mro(module, cls):
            if c is None:
                k = self._ext_kind(q)
                if k:
                    return k
        return None

    def _ctor_kind(self, module: PyModule, scope: str, name: str) -> str | None:
        last = name.rsplit(".", 1)[-1]
        if not last[:1].isupper() and not last.endswith(("router", "Router", "app", "App")):
            # factory functions returning routers are handled at include/decorator time
            return None
        if scope != MODULE:
            cls = module.classes.get(f"{scope}.<locals>.{name}")
            if cls is not None:
                return self._class_kind(module, cls)
        sym = self.resolve(module, name)
        if sym is None:
            return None
        if sym.kind == "unresolved":
            return self._ext_kind(sym.external)
        if sym.kind == "class" and sym.cls is not None:
            return self._class_kind(sym.module, sym.cls)
        if sym.kind == "assign" and sym.assign is not None:
            val = sym.assign.value
            if val.kind in ("name", "attr") and val.name and val.name != name:
                return self._ctor_kind(sym.module, MODULE, val.name)
            if val.kind == "call" and val.name:
                # APIRouter = get_api_router_class(APIRoute): a function returning a router class
                fs = self.resolve(sym.module, val.name)
                if fs is not None and fs.kind == "function" and fs.func is not None:
                    for q, c in fs.module.classes.items():
                        if q.startswith(f"{fs.func.qualname}.<locals>."):
                            k = self._class_kind(fs.module, c)
                            if k:
                                return k
        return None

    # ------------------------------------------------------------------ string evaluation --------------------
    def eval_str(self, module: PyModule, scope: str, e: Expr | None, depth: int = 0) -> PathPart:
        if e is None:
            return PathPart("")
        if e.kind == "str" and isinstance(e.value, str):
            return PathPart(e.value)
        if self._bindings:
            return self._eval_str(module, scope, e, depth)
        key = (module.path, scope, e.text)
        if key in self._str_memo:
            return self._str_memo[key]
        out = self._eval_str(module, scope, e, depth)
        self._str_memo[key] = out
        return out

    def _eval_str(self, module: PyModule, scope: str, e: Expr, depth: int) -> PathPart:
        if depth > 6:
            return PathPart("", f"computed path {e.text[:60]}")
        if e.kind == "binop" and e.value == "+" and len(e.args) == 2:
            return self.eval_str(module, scope, e.args[0], depth + 1) + self.eval_str(module, scope, e.args[1], depth + 1)
        if e.kind == "fstring":
            return self._eval_fstring(module, scope, e, depth)
        if e.kind == "name" and e.name in self._bindings:
            # a factory parameter bound at this call site: evaluate the argument where it was written
            bm, bs, be = self._bindings[e.name]
            saved, self._bindings = self._bindings, {}
            try:
                return self.eval_str(bm, bs, be, depth + 1)
            finally:
                self._bindings = saved
        if e.kind in ("name", "attr") and e.name:
            sym = self.resolve(module, e.name)
            if sym is not None and sym.kind == "assign" and sym.assign is not None and sym.assign.value is not e:
                v = sym.assign.value
                if v.kind in ("str", "binop", "fstring", "name", "attr"):
                    return self.eval_str(sym.module, MODULE, v, depth + 1)
            if "." in e.name:
                found = self._settings_attr(module, e.name)
                if found is not None:
                    return found
        return PathPart("", f"computed path {e.text[:60]}")

    def _eval_fstring(self, module: PyModule, scope: str, e: Expr, depth: int) -> PathPart:
        body = re.sub(r"^[rRbBfF]*(\"\"\"|'''|\"|')", "", e.text)
        body = re.sub(r"(\"\"\"|'''|\"|')$", "", body)
        out = PathPart("")
        pos = 0
        for m in re.finditer(r"\{([^{}]+)\}", body):
            out = out + PathPart(body[pos:m.start()])
            inner = m.group(1).split("!")[0].split(":")[0].strip()
            if re.fullmatch(r"[A-Za-z_][\w.]*", inner):
                out = out + self.eval_str(module, scope, Expr("name" if "." not in inner else "attr", inner, e.line,
                                                                name=inner), depth + 1)
            else:
                out = out + PathPart("", f"computed path {inner[:40]}")
            pos = m.end()
        return out + PathPart(body[pos:])

    def _settings_attr(self, module: PyModule, dotted: str) -> PathPart | None:
        """``settings.API_V1_STR``: the class attribute's default, from the settings object's class (or, when the
        object cannot be resolved, the one class in the tree that defines that attribute as a string)."""
        base, _, attr = dotted.rpartition(".")
        sym = self.resolve(module, base)
        classes: list[tuple[PyModule, ClassDef]] = []
        if sym is not None and sym.kind == "assign" and sym.assign is not None and sym.assign.value.kind == "call":
            cs = self.resolve(sym.module, sym.assign.value.name) if sym.assign.value.name else None
            if cs is not None and cs.kind == "class" and cs.cls is not None:
                classes = [(m, c) for m, c, _ in self.idx.class_mro(cs.module, cs.cls) if c is not None]
        if sym is not None and sym.kind == "class" and sym.cls is not None:
            classes = [(m, c) for m, c, _ in self.idx.class_mro(sym.module, sym.cls) if c is not None]
        for _m, c in classes:
            a = c.attrs.get(attr)
            if a is not None and a.value.kind == "str":
                return PathPart(str(a.value.value))
        if classes:
            return None
        values = {str(a.value.value) for m in self.p.python for c in m.classes.values()
                  for n, a in c.attrs.items() if n == attr and a.value.kind == "str"}
        if len(values) == 1:
            return PathPart(values.pop())
        return None

    # ------------------------------------------------------------------ nodes ---------------------------------
    def node_for_assign(self, module: PyModule, a: Assign) -> Node | None:
        key = (module.path, a.scope, a.target, a.line)
        return self.nodes.get(key)

    def _scope_assigns(self, module: PyModule, scope: str) -> dict[str, list[Assign]]:
        key = (module.path, scope)
        got = self._local_assigns.get(key)
        if got is None:
            if not self._local_assigns or (module.path, "") not in self._local_assigns:
                self._local_assigns[(module.path, "")] = {}
                for a in module.assigns:
                    if a.scope != MODULE:
                        self._local_assigns.setdefault((module.path, a.scope), {}).setdefault(a.target, []).append(a)
            got = self._local_assigns.get(key, {})
        return got

    def lookup(self, module: PyModule, scope: str, name: str, line: int = 0) -> tuple[PyModule, str, Any] | None:
        """Resolve a name seen in `scope` of `module`: ('assign', Assign) / ('function', FunctionDef) /
        ('class', ClassDef) / ('symbol', Symbol)."""
        head = name.split(".", 1)[0]
        cur = scope
        while cur != MODULE and "." not in name:
            best: Assign | None = None
            for a in self._scope_assigns(module, cur).get(head, ()):
                if best is None or (a.line <= line or not line):
                    best = a
            if best is not None:
                return module, "assign", best
            f = module.functions.get(f"{cur}.<locals>.{head}")
            if f is not None:
                return module, "function", f
            c = module.classes.get(f"{cur}.<locals>.{head}")
            if c is not None:
                return module, "class", c
            cur = _scope_of(cur)
        sym = self.resolve(module, name)
        if sym is None:
            return None
        return sym.module, "symbol", sym

    def resolve_node(self, module: PyModule, scope: str, e: Expr | None, line: int = 0, depth: int = 0) -> Node | None:
        """The router/app node an expression refers to."""
        if e is None or depth > 6:
            return None
        if e.kind == "call":
            kind = self.ctor_kind(module, scope, e)
            if kind is not None:
                return self._inline_node(module, scope, e, kind)
            # factory: make_router() / items.get_router()
            fn = self._resolve_function(module, scope, e.name) if e.name else None
            if fn is not None:
                n = self._returned_node(fn[0], fn[1], depth + 1)
                if n is not None and (e.args or e.kwargs) and n.ctor is not None and n.scope == fn[1].qualname:
                    return self._instantiate(n, fn[1], module, scope, e)
                return n
            return None
        if e.kind not in ("name", "attr") or not e.name:
            return None
        got = self.lookup(module, scope, e.name, line)
        if got is None:
            return None
        m, what, obj = got
        if what == "assign":
            n = self.node_for_assign(m, obj)
            if n is not None:
                return n
            return self.resolve_node(m, obj.scope, obj.value, obj.line, depth + 1)
        if what == "symbol":
            sym: Symbol = obj
            if sym.kind == "assign" and sym.assign is not None:
                n = self.node_for_assign(sym.module, sym.assign)
                if n is not None:
                    return n
                return self.resolve_node(sym.module, MODULE, sym.assign.value, sym.assign.line, depth + 1)
        return None

    def resolve_nodes(self, module: PyModule, scope: str, e: Expr | None, line: int = 0) -> list[Node]:
        """Like resolve_node; for ``plugin.events`` on an object that cannot be resolved (a plugin registry loop),
        every router stored in a class attribute of that name."""
        n = self.resolve_node(module, scope, e, line)
        if n is not None:
            return [n]
        if e is None or e.kind != "attr" or not e.name or e.name.count(".") != 1:
            return []
        attr = e.name.rsplit(".", 1)[1]
        if self._attr_routers is None:
            self._attr_routers = {}
            for m in self.p.python:
                for c in m.classes.values():
                    for name, a in c.attrs.items():
                        if a.value.kind in ("name", "attr", "call"):
                            node = self.resolve_node(m, MODULE, a.value, a.line)
                            if node is not None and node.kind != "static":
                                self._attr_routers.setdefault(name, []).append(node)
        return list(self._attr_routers.get(attr, []))

    def _resolve_function(self, module: PyModule, scope: str, name: str) -> tuple[PyModule, FunctionDef] | None:
        got = self.lookup(module, scope, name)
        if got is None:
            return None
        m, what, obj = got
        if what == "function":
            return m, obj
        if what == "symbol" and obj.kind == "function" and obj.func is not None:
            return obj.module, obj.func
        return None

    def _instantiate(self, n: Node, func: FunctionDef, module: PyModule, scope: str, call: Expr) -> Node:
        """A router built inside a factory called with arguments: one node per call site, with the prefix
        evaluated against the arguments (``get_login_router(get_github_factor, "github")``)."""
        key = (module.path, scope, f"<factory {func.qualname}@{call.line}>", call.line)
        got = self.nodes.get(key)
        if got is not None:
            return got
        bindings: dict[str, tuple[PyModule, str, Expr]] = {}
        positional = [p for p in func.params if p.kind == "normal"]
        for i, prm in enumerate(positional):
            if i < len(call.args) and call.args[i].kind != "star":
                bindings[prm.name] = (module, scope, call.args[i])
        for k, v in call.kwargs.items():
            bindings[k] = (module, scope, v)
        clone = Node(key, n.module, n.scope, n.name, n.kind, n.line, n.prefix, n.deps, n.hidden, n.routes, n.children,
                     0, n.middleware, n.ctor)
        if n.ctor is not None and n.kind == "router":
            self._bindings = bindings
            try:
                clone.prefix = self.eval_str(n.module, n.scope, n.ctor.kw("prefix"))
            finally:
                self._bindings = {}
        n.parents += 1  # the template itself is only reachable through its call sites
        self.nodes[key] = clone
        return clone

    def _returned_node(self, module: PyModule, func: FunctionDef, depth: int) -> Node | None:
        for r in func.body.returns:
            n = self.resolve_node(module, func.qualname, r, r.line, depth + 1)
            if n is not None:
                return n
        return None

    def _inline_node(self, module: PyModule, scope: str, call: Expr, kind: str) -> Node:
        key = (module.path, scope, f"<inline:{call.line}:{call.text[:40]}>", call.line)
        n = self.nodes.get(key)
        if n is None:
            n = Node(key, module, scope, key[2], kind, call.line)
            self._configure(n, call)
            self.nodes[key] = n
        return n

    def _configure(self, n: Node, call: Expr) -> None:
        """Prefix, dependencies, routes= and middleware= of a constructor call."""
        m, scope = n.module, n.scope
        n.ctor = call
        if n.kind == "router":
            n.prefix = self.eval_str(m, scope, call.kw("prefix"))
        n.deps = self.deps_list(m, scope, call.kw("dependencies"),
                                "global-dependency" if n.kind == "app" else "router-dependency")
        n.deps += self._subclass_deps(m, scope, call, n)
        iis = call.kw("include_in_schema")
        n.hidden = bool(iis is not None and iis.kind == "bool" and iis.value is False)
        routes = call.kw("routes")
        if routes is None and n.kind == "router" and call.args and call.args[0].kind in ("list", "name", "binop"):
            routes = call.args[0]  # Router([Route(...)])
        if routes is not None:
            self.route_list(n, m, scope, routes)
        mw = call.kw("middleware")
        if mw is not None:
            for c in mw.iter_calls():
                for a in c.args[:1]:
                    if a.name and a.name.rsplit(".", 1)[-1] in self.d.AUTH_MIDDLEWARE:
                        n.middleware.append(Evidence(m.path, c.line, "middleware", c.text[:120]))

    def _subclass_deps(self, m: PyModule, scope: str, call: Expr, n: Node) -> list[DepRef]:
        """``class UserAPIRouter(APIRouter): def __init__(...): super().__init__(dependencies=[...])``."""
        got = self.lookup(m, scope, call.name) if call.name else None
        if got is None:
            return []
        gm, what, obj = got
        cls = (gm, obj) if what == "class" else (
            (obj.module, obj.cls) if what == "symbol" and obj.kind == "class" and obj.cls is not None else None)
        if cls is None:
            return []
        out: list[DepRef] = []
        for cm, c, _ in self.idx.class_mro(cls[0], cls[1]):
            init = cm.functions.get(f"{c.qualname}.__init__") if c is not None else None
            if init is None:
                continue
            params = {p.name for p in init.params}
            for sc in init.body.calls:
                if sc.last != "__init__":
                    continue
                deps = sc.kw("dependencies")
                if deps is not None and not (deps.kind == "name" and deps.name in params):
                    out.extend(self.deps_list(cm, init.qualname, deps, "router-dependency"))
                pre = sc.kw("prefix")
                if pre is not None and not n.prefix.text and not (pre.kind == "name" and pre.name in params):
                    n.prefix = self.eval_str(cm, init.qualname, pre)
        return out

    def build_nodes(self) -> None:
        for m in self.p.python:
            for a in m.assigns:
                v = a.value
                if v.kind != "call" or not v.name:
                    continue
                last = v.name.rsplit(".", 1)[-1]
                if not (last[:1].isupper() or last.endswith(("router", "Router", "app", "App"))):
                    continue
                kind = self.ctor_kind(m, a.scope, v)
                if kind is None:
                    continue
                key = (m.path, a.scope, a.target, a.line)
                if key not in self.nodes:
                    self.nodes[key] = Node(key, m, a.scope, a.target, kind, a.line)
        for n in list(self.nodes.values()):
            found = next((x for x in n.module.assigns if (n.module.path, x.scope, x.target, x.line) == n.key), None)
            if found is not None:
                self._configure(n, found.value)

    # ------------------------------------------------------------------ dependencies (declaration side) ------
    def deps_list(self, module: PyModule, scope: str, e: Expr | None, kind: str) -> list[DepRef]:
        if e is None:
            return []
        out: list[DepRef] = []
        items = e.args if e.kind in ("list", "tuple", "set") else [e]
        for it in items:
            if it.kind == "star" and it.args:
                out.extend(self.deps_list(module, scope, self._deref_list(module, scope, it.args[0]), kind))
                continue
            if it.kind in ("name", "attr"):
                deref = self._deref_list(module, scope, it)
                if deref is not it:
                    out.extend(self.deps_list(module, scope, deref, kind))
                    continue
            d = self.dep_from_marker(module, scope, it, kind)
            if d is not None:
                out.append(d)
        return out

    def _deref_list(self, module: PyModule, scope: str, e: Expr) -> Expr:
        if e.kind in ("name", "attr") and e.name:
            got = self.lookup(module, scope, e.name)
            if got is not None:
                _, what, obj = got
                a = obj if what == "assign" else (obj.assign if what == "symbol" and obj.kind == "assign" else None)
                if a is not None and a.value.kind in ("list", "tuple"):
                    return a.value
        return e

    def dep_from_marker(self, module: PyModule, scope: str, e: Expr, kind: str,
                        annotation: Expr | None = None) -> DepRef | None:
        """``Depends(x)`` / ``Security(x, scopes=[...])`` -> DepRef."""
        if e.kind != "call" or e.last not in self.d.DEPENDENCY_MARKERS:
            return None
        target = e.arg(0) or e.kw("dependency")
        scopes: list[str] = []
        sc = e.kw("scopes")
        if sc is not None:
            scopes = [str(x.value) for x in sc.args if x.kind == "str"]
        return DepRef(module, scope, target, kind, e.line, e.text[:120], scopes, annotation)

    def param_deps(self, module: PyModule, func: FunctionDef, kind: str) -> list[DepRef]:
        out: list[DepRef] = []
        scope = _scope_of(func.qualname)
        for prm in func.params:
            if prm.default is not None and prm.default.kind == "call" and prm.default.last in self.d.DEPENDENCY_MARKERS:
                d = self.dep_from_marker(module, scope, prm.default, kind,
                                         norm_type(prm.annotation) if prm.annotation else None)
                if d is not None:
                    out.append(d)
                    continue
            if prm.annotation is not None:
                out.extend(self._annotation_deps(module, scope, prm.annotation, kind, 0))
        return out

    def _annotation_deps(self, module: PyModule, scope: str, ann: Expr, kind: str, depth: int) -> list[DepRef]:
        if depth > 5:
            return []
        ann = norm_type(ann)
        if ann.kind == "subscript" and len(ann.args) == 1 and ann.args[0].kind == "tuple":
            ann = Expr("subscript", ann.text, ann.line, name=ann.name, args=ann.args[0].args, func=ann.func)
        if ann.kind == "subscript" and ann.name.rsplit(".", 1)[-1] == "Annotated":
            out: list[DepRef] = []
            for meta in ann.args[1:]:
                d = self.dep_from_marker(module, scope, meta, kind, ann.args[0] if ann.args else None)
                if d is not None:
                    out.append(d)
            return out
        # NOTE: FastAPI reads only a top-level Annotated: `CurrentUser | None` or Optional[CurrentUser] is not a
        # dependency (it becomes a query/body parameter), so unions are deliberately not followed.
        if ann.kind == "str" and isinstance(ann.value, str) and re.fullmatch(r"[A-Za-z_][\w.]*", ann.value):
            ann = Expr("name", ann.value, ann.line, name=ann.value)  # forward reference "CurrentUser"
        if ann.kind in ("name", "attr", "subscript") and ann.name:
            alias = self._alias(module, ann.name)
            if alias is not None:
                am, aexpr = alias
                return self._annotation_deps(am, MODULE, aexpr, kind, depth + 1)
        return []

    def _alias(self, module: PyModule, name: str) -> tuple[PyModule, Expr] | None:
        """A type alias: ``X = Annotated[...]``, ``X: TypeAlias = ...`` or PEP 695 ``type X = ...``."""
        if name in ("str", "int", "float", "bool", "bytes", "dict", "list", "Request", "Response", "Session",
                    "AsyncSession"):
            return None
        sym = self.resolve(module, name)
        if sym is not None and sym.kind == "assign" and sym.assign is not None:
            v = sym.assign.value
            if v.kind == "subscript" or (v.kind == "binop" and v.value == "|"):
                return sym.module, v
            return None
        if sym is not None and sym.kind != "unresolved":
            return None
        # PEP 695 `type X = ...` is not in the assignment facts: read it from the defining module on demand
        target_mod, local = module, name
        ref = module.imports.get(name.split(".", 1)[0])
        if ref is not None:
            if ref.name is None or "." in name:
                return None
            tm = self.idx.find_module(ref.module, module)
            if tm is None:
                return None
            target_mod, local = tm, ref.name
        e = self._type_alias(target_mod, local)
        return (target_mod, e) if e is not None else None

    def _type_alias(self, module: PyModule, name: str) -> Expr | None:
        key = (module.path, name)
        if key in self._alias_memo:
            return self._alias_memo[key]
        self._alias_memo[key] = None
        if not module.src.abs_path:
            return None
        from apitrail.scan.lang.python import _tree_for

        got = _tree_for(module.src.abs_path)
        if got is None:
            return None
        data, tree = got
        if b"type " not in data:
            return None
        for stmt in tree.root_node.named_children:
            if stmt.type != "type_alias_statement":
                continue
            parts = [c for c in stmt.named_children if c.type == "type"]
            if len(parts) == 2 and parts[0].text is not None and parts[0].text.decode().split("[")[0].strip() == name:
                val = parts[1].named_children[0] if parts[1].named_children else parts[1]
                self._alias_memo[key] = to_expr(val)
                break
        return self._alias_memo[key]

    # ------------------------------------------------------------------ dependencies (behaviour side) --------
    def dep_result(self, dep: DepRef) -> DepResult:
        key = (dep.module.path, dep.scope, dep.text + "|" + (dep.annotation.text if dep.annotation else ""))
        hit = self._dep_memo.get(key)
        if hit is None:
            self._dep_memo[key] = DepResult()  # recursion guard
            hit = self._dep_result(dep)
            self._dep_memo[key] = hit
        out = DepResult(hit.authn, hit.role, list(hit.roles), hit.optional, hit.unknown, list(hit.evidence))
        if dep.scopes and out.authn:
            out.role = True
            for s in dep.scopes:
                if s not in out.roles:
                    out.roles.append(s)
        return out

    def _dep_result(self, dep: DepRef) -> DepResult:
        target = dep.target
        if target is None or (target.kind == "none"):
            # Depends() with no argument: the parameter's annotation class is the dependency
            if dep.annotation is None or not dep.annotation.name:
                return DepResult()
            target = Expr("name", dep.annotation.name, dep.line, name=dep.annotation.name)
        return self.callable_result(dep.module, dep.scope, target, 0)

    def callable_result(self, module: PyModule, scope: str, e: Expr, depth: int) -> DepResult:
        """What calling the dependency `e` does, as seen from `scope` of `module`."""
        if depth > 6:
            return DepResult(unknown="dependency chain too deep")
        if e.kind == "call":
            return self.instance_result(module, scope, e, depth + 1)
        if e.kind not in ("name", "attr") or not e.name:
            return DepResult(unknown=f"dependency {e.text[:60]} not resolved")
        got = self.lookup(module, scope, e.name)
        if got is None:
            return DepResult(unknown=f"dependency {e.name} not resolved")
        m, what, obj = got
        if what == "function":
            return self.function_result(m, obj, depth + 1)
        if what == "class":
            return self.class_result(m, obj, depth + 1, instance=False)
        if what == "assign":
            return self.callable_result(m, obj.scope, obj.value, depth + 1) if obj.value.kind == "call" else \
                DepResult(unknown=f"dependency {e.name} not resolved")
        sym: Symbol = obj
        if sym.kind == "function" and sym.func is not None:
            return self.function_result(sym.module, sym.func, depth + 1)
        if sym.kind == "class" and sym.cls is not None:
            return self.class_result(sym.module, sym.cls, depth + 1, instance=False)
        if sym.kind == "assign" and sym.assign is not None:
            v = sym.assign.value
            if v.kind == "call":
                return self.instance_result(sym.module, MODULE, v, depth + 1)
            if v.kind in ("name", "attr") and v.name and v.name != e.name:
                return self.callable_result(sym.module, MODULE, v, depth + 1)
            return DepResult(unknown=f"dependency {e.name} not resolved")
        if sym.kind == "unresolved":
            return self._external(module, sym.external, e, optional_kw=None)
        return DepResult(unknown=f"dependency {e.name} not resolved")

    def _external(self, module: PyModule, qualified: str, e: Expr, optional_kw: Expr | None) -> DepResult:
        last = qualified.rsplit(".", 1)[-1]
        if last in SECURITY_SCHEME_CLASSES:
            r = DepResult(authn=True, evidence=[Evidence(module.path, e.line, "security-scheme", e.text[:120])])
            if optional_kw is not None and optional_kw.kind == "bool" and optional_kw.value is False:
                r.authn, r.optional = False, True
            return r
        if qualified.startswith(NON_AUTH_PACKAGES) or qualified.split(".", 1)[0] in ("fastapi", "starlette"):
            # request plumbing (forms, SecurityScopes, Request, BackgroundTasks): not a gate
            return DepResult()
        return DepResult(unknown=f"dependency {qualified} is external")

    def instance_result(self, module: PyModule, scope: str, call: Expr, depth: int) -> DepResult:
        """A called expression used as a dependency: an instance (its __call__), a security scheme, or what a
        factory function returns."""
        if not call.name:
            return DepResult(unknown=f"dependency {call.text[:60]} not resolved")
        got = self.lookup(module, scope, call.name)
        if got is None:
            return DepResult(unknown=f"dependency {call.name} not resolved")
        m, what, obj = got
        cls: tuple[PyModule, ClassDef] | None = None
        fn: tuple[PyModule, FunctionDef] | None = None
        if what == "class":
            cls = (m, obj)
        elif what == "function":
            fn = (m, obj)
        elif what == "symbol":
            sym: Symbol = obj
            if sym.kind == "class" and sym.cls is not None:
                cls = (sym.module, sym.cls)
            elif sym.kind == "function" and sym.func is not None:
                fn = (sym.module, sym.func)
            elif sym.kind == "unresolved":
                return self._external(module, sym.external, call, call.kw("auto_error"))
        if cls is not None:
            base = self.class_result(cls[0], cls[1], depth + 1, instance=True)
            r = DepResult(base.authn, base.role, list(base.roles), base.optional, base.unknown, list(base.evidence))
            ae = call.kw("auto_error")
            if ae is not None and ae.kind == "bool" and ae.value is False and r.authn:
                r = DepResult(optional=True, evidence=r.evidence)
            if r.role and not r.roles:
                for a in list(call.args) + list(call.kwargs.values()):
                    r.roles.extend(x for x in _role_from_arg(a) if x not in r.roles)
            if not (r.authn or r.role):
                r = self._passed_checks(module, scope, call, r, depth)
            elif self._configured_bypass(cls[0], cls[1], [*self._outer_calls, call]):
                r = DepResult(optional=True, evidence=r.evidence)
            return r
        if fn is not None:
            return self._factory_result(fn[0], fn[1], call, depth + 1)
        return DepResult(unknown=f"dependency {call.name} not resolved")

    def _configured_bypass(self, module: PyModule, cls: ClassDef, calls: list[Expr]) -> bool:
        """``if Anonymous in self.allowed_subjects: return subject`` in ``__call__``, with ``Anonymous`` passed in
        ``allowed_subjects={...}`` where the instance (or the factory building it) is created: the check lets
        anonymous callers through, so the dependency is optional."""
        for cm, c, _ in self.idx.class_mro(module, cls):
            f = cm.functions.get(f"{c.qualname}.__call__") if c is not None else None
            if f is None:
                continue
            for br in f.body.branches:
                cond = br.condition
                if br.raises or not br.returns or cond.kind != "compare" or cond.value != "in" or len(cond.args) != 2:
                    continue
                needle, hay = cond.args
                if not needle.name or not hay.name.startswith("self."):
                    continue
                attr = hay.name.split(".", 1)[1]
                for call in calls:
                    val = call.kw(attr)
                    if val is not None and val.kind in ("set", "list", "tuple") and any(
                            x.name == needle.name for x in val.args):
                        return True
        return False

    def _passed_checks(self, module: PyModule, scope: str, call: Expr, r: DepResult, depth: int) -> DepResult:
        """``PermissionsDependency([AdminPermission])``: callables handed to a dependency's constructor are what
        its ``__call__`` runs; when they reject the caller, the dependency is a permission check."""
        names = [x for a in list(call.args) + list(call.kwargs.values())
                 for x in (a.args if a.kind in ("list", "tuple", "set") else [a]) if x.kind in ("name", "attr") and x.name]
        out = r
        for x in names[:8]:
            got = self.lookup(module, scope, x.name)
            if got is None:
                continue
            m, what, obj = got
            sub: DepResult | None = None
            if what == "class" or (what == "symbol" and obj.kind == "class" and obj.cls is not None):
                cm, c = (m, obj) if what == "class" else (obj.module, obj.cls)
                sub = self.class_result(cm, c, depth + 1, instance=False)
            elif what == "function" or (what == "symbol" and obj.kind == "function" and obj.func is not None):
                fm, f = (m, obj) if what == "function" else (obj.module, obj.func)
                sub = self.function_result(fm, f, depth + 1)
            if sub is not None and (sub.authn or sub.role):
                if out is r:
                    out = DepResult(True, True, [], False, "", list(r.evidence))
                out.roles.append(x.name.rsplit(".", 1)[-1])
                out.evidence.extend(sub.evidence[:2])
        return out

    def _factory_result(self, module: PyModule, func: FunctionDef, call: Expr, depth: int) -> DepResult:
        """``get_current_user_authorizer(required=False)``: judge what the factory returns for these arguments."""
        bound: dict[str, Any] = {}
        for i, prm in enumerate(func.params):
            val = call.kw(prm.name) or (call.arg(i) if prm.kind == "normal" else None) or prm.default
            if val is not None and val.kind in ("bool", "none", "str", "num"):
                bound[prm.name] = val.value
        results: list[DepResult] = []
        self._outer_calls.append(call)
        try:
            for ret in func.body.returns:
                for cand in self._branches(ret, bound):
                    results.append(self.callable_result(module, func.qualname, cand, depth + 1))
        finally:
            self._outer_calls.pop()
        if not results:
            return DepResult(unknown=f"factory {func.name} returns nothing known")
        first = results[0]  # may be a memoised result: copy before merging into it
        out = DepResult(first.authn, first.role, list(first.roles), first.optional, first.unknown, list(first.evidence))
        for res in results[1:]:
            if res.authn != out.authn:
                out = DepResult(unknown=f"factory {func.name}: auth depends on its arguments",
                                evidence=out.evidence + res.evidence)
                break
            out.merge(res)
        if out.role and not out.roles:
            for a in list(call.args) + list(call.kwargs.values()):
                out.roles.extend(x for x in _role_from_arg(a) if x not in out.roles)
        return out

    @staticmethod
    def _branches(e: Expr, bound: dict[str, Any]) -> list[Expr]:
        """Return-expression candidates; a conditional on a bound literal argument picks its branch."""
        if e.kind == "other" and len(e.args) == 3 and " if " in e.text and " else " in e.text:
            yes, cond, no = e.args
            if cond.kind == "name" and cond.name in bound:
                return [yes] if bound[cond.name] else [no]
            if cond.kind == "unary" and cond.args and cond.args[0].name in bound:
                return [no] if bound[cond.args[0].name] else [yes]
            return [yes, no]
        return [e]

    def class_result(self, module: PyModule, cls: ClassDef, depth: int, instance: bool) -> DepResult:
        """A class as a dependency: FastAPI calls it (``__init__`` params are dependencies); an instance runs
        ``__call__``. Security scheme subclasses authenticate."""
        out = DepResult()
        key = (module.path, cls.qualname + ("()" if instance else ""))
        if key in self._fn_memo:
            return self._fn_memo[key]
        self._fn_memo[key] = out
        meth = "__call__" if instance else "__init__"
        external_base = False
        for m, c, q in self.idx.class_mro(module, cls):
            if c is None:
                if q.rsplit(".", 1)[-1] in SECURITY_SCHEME_CLASSES:
                    out.authn = True
                    out.evidence.append(Evidence(module.path, cls.line, "security-scheme", q))
                elif not q.startswith(("pydantic", "typing", "abc", "builtins", "object", "enum")) and q != "object":
                    external_base = True
                continue
            f = m.functions.get(f"{c.qualname}.{meth}")
            if f is not None:
                out.merge(self.function_result(m, f, depth + 1))
        if instance and not out.authn and not out.role and external_base:
            out.unknown = f"{cls.name}.__call__ is defined outside the scanned tree"
        self._fn_memo[key] = out
        return out

    def function_result(self, module: PyModule, func: FunctionDef, depth: int) -> DepResult:
        key = (module.path, func.qualname)
        if key in self._fn_memo:
            return self._fn_memo[key]
        out = DepResult()
        self._fn_memo[key] = out  # recursion guard
        v: AuthVerdict = self.p.auth.callable_verdict(module, func)
        out.authn, out.role, out.roles, out.optional = v.authn, v.role, list(v.roles), v.optional
        out.evidence = list(v.evidence)[:6]
        if out.role and not out.roles:
            out.roles = self._flag_roles(v)
        out.roles = [FLAG_ROLES.get(x, x) for x in out.roles]
        if (out.authn or out.role) and self._only_when_present(func, v):
            # `if token: return await get_user(token)` ... `return None`: checks a credential only when one is sent
            out = DepResult(optional=True, evidence=out.evidence)
        toggle = self._config_toggle(func, out) if (out.authn or out.role) else None
        if toggle is not None:
            # `if not settings.AUTH_ENABLED: return ...` before the check: enforcement depends on deployment
            out = DepResult(unknown=f"auth in {func.name} is skipped when {toggle[:60]}",
                            evidence=[Evidence(module.path, func.line, "conditional", toggle[:120])] + out.evidence)
            self._fn_memo[key] = out
            return out
        if depth < 6:
            for sub in self.param_deps(module, func, "nested-dependency"):
                r = self.dep_result(sub)
                if r.authn or r.role:
                    out.authn = True
                    out.role = out.role or r.role
                    out.roles.extend(x for x in r.roles if x not in out.roles)
                    out.evidence.append(Evidence(module.path, sub.line, "nested-dependency", sub.text))
                elif r.unknown and not out.unknown:
                    out.unknown = r.unknown
                if r.optional and not (out.authn or out.role):
                    out.optional = True
        if out.authn or out.role:
            out.unknown = ""
        self._fn_memo[key] = out
        return out

    @staticmethod
    def _only_when_present(func: FunctionDef, v: AuthVerdict) -> bool:
        """All of the body's auth evidence sits under a presence test of a parameter (``if token:``)."""
        params = {p.name for p in func.params}
        guarded: set[int] = set()
        for br in func.body.branches:
            cond = br.condition
            if cond.kind == "compare" and cond.value in ("is not", "!=") and len(cond.args) == 2 and \
                    cond.args[1].kind == "none":
                cond = cond.args[0]
            if cond.kind == "name" and cond.name in params:
                guarded.update(c.line for c in br.calls)
                guarded.update(r.line for r in br.raises)
                guarded.update(r.line for r in br.returns)
        own = [e for e in v.evidence if e.kind in ("rejects", "token-validation", "calls-auth-helper", "inline-check",
                                                   "role-check")]
        return bool(own) and bool(guarded) and all(e.line in guarded for e in own) and any(
            r.kind == "none" or (r.kind == "str" and not r.value) for r in func.body.returns)

    @staticmethod
    def _config_toggle(func: FunctionDef, r: DepResult) -> str | None:
        """A branch on configuration that returns before the first auth evidence line, without rejecting."""
        first = min((e.line for e in r.evidence if e.line >= func.line), default=0)
        for br in func.body.branches:
            if first and br.line >= first:
                continue
            if br.raises or not br.returns:
                continue
            if CONFIG_COND.search(br.condition.text) and not INLINE_AUTH_COND.search(br.condition.text):
                return br.condition.text
        return None

    @staticmethod
    def _flag_roles(v: AuthVerdict) -> list[str]:
        text = " ".join(e.detail for e in v.evidence)
        out = []
        for flag, role in (("is_superuser", "superuser"), ("is_admin", "admin"), ("is_staff", "staff")):
            if flag in text:
                out.append(role)
        return out

    # ------------------------------------------------------------------ handler inline checks ----------------
    def inline_checks(self, module: PyModule, func: FunctionDef) -> DepResult:
        out = DepResult()
        sig = " ".join((p.name + " " + (p.annotation.text if p.annotation else "")) for p in func.params)
        if CREDENTIAL_HANDLER.search(sig) or CREDENTIAL_HANDLER.search(func.name):
            return out  # a login/reset endpoint rejects bad credentials; that is not an auth gate
        body = func.body
        # variables read from the request's credentials (headers, cookies, session) count as auth conditions
        cred_vars = {a.target for a in body.assigns if CREDENTIAL_SOURCE.search(a.value.text)}
        for br in body.branches:
            cond = br.condition.text
            rejects = any(_is_reject(r) for r in br.raises) or any(
                c.last == "abort" and UNAUTH_STATUS.search(c.text) for c in br.calls) or any(
                UNAUTH_STATUS.search(r.text) for r in br.returns)
            if not rejects:
                continue
            if INLINE_AUTH_COND.search(cond) or (cred_vars & br.condition.names()):
                out.authn = True
                out.evidence.append(Evidence(module.path, br.line, "inline-check", cond[:120]))
            if INLINE_ROLE_COND.search(cond) and out.authn:
                out.role = True
        return out

    # ------------------------------------------------------------------ route declarations --------------------
    def route_list(self, n: Node, module: PyModule, scope: str, e: Expr, depth: int = 0) -> None:
        """``routes=[Route(...), Mount(...)]`` (Starlette, also accepted by FastAPI)."""
        if depth > 6:
            return
        if e.kind in ("name", "attr"):
            got = self.lookup(module, scope, e.name) if e.name else None
            if got is not None:
                m, what, obj = got
                a = obj if what == "assign" else (obj.assign if what == "symbol" and obj.kind == "assign" else None)
                if a is not None:
                    self.route_list(n, m, a.scope, a.value, depth + 1)
            return
        if e.kind == "binop" and e.value == "+":
            for a in e.args:
                self.route_list(n, module, scope, a, depth + 1)
            return
        if e.kind in ("list", "tuple"):
            for item in e.args:
                if item.kind == "star" and item.args:
                    self.route_list(n, module, scope, item.args[0], depth + 1)
                elif item.kind == "call":
                    self.route_object(n, module, scope, item, depth)

    def route_object(self, n: Node, module: PyModule, scope: str, c: Expr, depth: int) -> None:
        last = c.last
        if last in self.d.ROUTE_OBJECTS:
            path = self.eval_str(module, scope, c.arg(0) or c.kw("path"))
            endpoint = c.arg(1) or c.kw("endpoint")
            methods = self._methods(module, scope, c.kw("methods"))
            deps = self.deps_list(module, scope, c.kw("dependencies"), "route-dependency")
            iis = c.kw("include_in_schema")
            tags = ["hidden"] if iis is not None and iis.kind == "bool" and iis.value is False else []
            self.add_endpoint(n, module, scope, c.line, path, endpoint, methods, deps, tags)
        elif last in self.d.MOUNT_OBJECTS:
            # Host(host, app=...) routes by host name: no path prefix
            path = PathPart("") if last in self.d.HOST_OBJECTS else self.eval_str(module, scope, c.arg(0) or c.kw("path"))
            sub_routes = c.kw("routes")
            app = c.kw("app") or (c.arg(1) if len(c.args) > 1 else None)
            if sub_routes is not None:
                child = self._inline_node(module, scope, Expr("call", f"Mount:{c.text[:40]}", c.line, name="Mount"),
                                          "router")
                self.route_list(child, module, scope, sub_routes, depth + 1)
                self.add_include(n, child, path, [], False, c.line, module)
            elif app is not None:
                self.mount_app(n, module, scope, path, app, c.line)

    def mount_app(self, n: Node, module: PyModule, scope: str, path: PathPart, app: Expr, line: int) -> None:
        if app.kind == "call" and self.ctor_kind(module, scope, app) == "static":
            self._static(n, module, path, app, line)
            return
        child = self.resolve_node(module, scope, app, line)
        if child is not None:
            if child.kind == "static":
                self._static(n, module, path, app, line)
                return
            self.add_include(n, child, path, [], False, line, module, mount=True)

    def _static(self, n: Node, module: PyModule, path: PathPart, app: Expr, line: int) -> None:
        n.routes.append(RouteDecl(["GET"], path + PathPart("/{path}"), module, line, app.name or "StaticFiles", None,
                                  None, tags=["static-mount"]))

    def _methods(self, module: PyModule, scope: str, e: Expr | None) -> list[str] | None:
        if e is None:
            return None
        if e.kind in ("name", "attr"):
            e = self._deref_list(module, scope, e)
        if e.kind in ("list", "tuple", "set"):
            out = [str(x.value).upper() for x in e.args if x.kind == "str"]
            out += [x.name.rsplit(".", 1)[-1].upper() for x in e.args if x.kind == "attr" and x.name]
            return out or None
        if e.kind == "str":
            return [str(e.value).upper()]
        return None

    def add_endpoint(self, n: Node, module: PyModule, scope: str, line: int, path: PathPart, endpoint: Expr | None,
                     methods: list[str] | None, deps: list[DepRef], tags: list[str]) -> None:
        fdef: FunctionDef | None = None
        fmod: PyModule | None = None
        handler = endpoint.text[:60] if endpoint is not None else "<unknown>"
        cls: tuple[PyModule, ClassDef] | None = None
        if endpoint is not None and endpoint.name:
            got = self.lookup(module, scope, endpoint.name, line)
            if got is not None:
                m, what, obj = got
                if what == "function":
                    fdef, fmod = obj, m
                elif what == "class":
                    cls = (m, obj)
                elif what == "symbol" and obj.kind == "function" and obj.func is not None:
                    fdef, fmod = obj.func, obj.module
                elif what == "symbol" and obj.kind == "class" and obj.cls is not None:
                    cls = (obj.module, obj.cls)
            handler = endpoint.name.rsplit(".", 1)[-1] if fdef is None else fdef.qualname
        if cls is not None:
            # HTTPEndpoint subclass: one route per method defined on the class
            cm, c = cls
            verbs = [q.rsplit(".", 1)[-1] for q in c.methods if q.rsplit(".", 1)[-1].upper() in self.d.HTTP_VERBS]
            for v in verbs:
                f = cm.functions.get(f"{c.qualname}.{v}")
                n.routes.append(self._decl([v.upper()], path, module, line, f"{c.name}.{v}", f, cm, deps, tags))
            if verbs:
                return
        n.routes.append(self._decl(methods or ["GET"], path, module, line, handler, fdef, fmod, deps, tags))

    def _decl(self, methods: list[str], path: PathPart, module: PyModule, line: int, handler: str,
              f: FunctionDef | None, fm: PyModule | None, deps: list[DepRef], tags: list[str]) -> RouteDecl:
        d = RouteDecl(methods, path, module, line, handler, f, fm, list(deps), list(tags))
        if f is not None:
            self._requires(d, f)
        return d

    def _requires(self, d: RouteDecl, f: FunctionDef) -> None:
        for deco, line in zip(f.decorators, f.decorator_lines or [f.line] * len(f.decorators), strict=False):
            if deco.kind == "call" and deco.last in self.d.AUTH_DECORATORS:
                scopes: list[str] = []
                for a in deco.args[:1]:
                    scopes = _role_from_arg(a)
                d.requires = scopes
                d.requires_line = line

    def add_include(self, parent: Node, child: Node, prefix: PathPart, deps: list[DepRef], hidden: bool, line: int,
                    module: PyModule, mount: bool = False) -> None:
        if child is parent:
            return
        parent.children.append(Include(child, prefix, deps, hidden, line, module, mount))
        child.parents += 1

    def collect(self) -> None:
        """Decorators and registration calls, in every module."""
        decos = self.d.ROUTE_DECORATORS
        for m in self.p.python:
            for f in m.functions.values():
                if not f.decorators:
                    continue
                for deco, dline in zip(f.decorators, f.decorator_lines or [f.line] * len(f.decorators), strict=False):
                    if deco.kind != "call" or deco.func is None or deco.func.kind != "attr":
                        continue
                    verb = deco.last
                    if verb not in decos or not deco.func.name:
                        continue
                    base = deco.func.name.rsplit(".", 1)[0]
                    scope = _scope_of(f.qualname)
                    n = self.resolve_node(m, scope, Expr("name", base, dline, name=base), dline)
                    if n is None or n.kind == "static":
                        continue
                    self._decorated(n, m, scope, f, deco, verb, dline)
            for call, scope in m.calls:
                try:
                    self._registration(m, scope, call)
                except RecursionError:  # one unresolvable registration must not lose the other routes
                    continue
        for m in self.p.python:
            self._loops(m)
        self._wrappers()

    def _wrappers(self) -> None:
        """Project helpers that include a router passed as an argument: ``def add_routers(app, router):
        app.include_router(router)`` called as ``add_routers(app, api_router)``."""
        wrappers: dict[tuple[str, str], list[Expr]] = {}
        for m in self.p.python:
            for call, scope in m.calls:
                if scope == MODULE or self.d.REGISTRATION_CALLS.get(call.last) != "include":
                    continue
                f = m.functions.get(scope)
                if f is None or not call.func or "." not in call.func.name:
                    continue
                params = {p.name for p in f.params}
                child_arg = call.arg(0) or call.kw("router")
                base = call.func.name.rsplit(".", 1)[0]
                if base in params or (child_arg is not None and child_arg.name in params):
                    wrappers.setdefault((m.path, scope), []).append(call)
        if not wrappers:
            return
        names = {k[1].rsplit(".", 1)[-1] for k in wrappers}
        for m in self.p.python:
            for call, scope in m.calls:
                if call.last not in names or not call.name or not (call.args or call.kwargs):
                    continue
                fn = self._resolve_function(m, scope, call.name)
                if fn is None or (fn[0].path, fn[1].qualname) not in wrappers:
                    continue
                fm, f = fn
                bound: dict[str, Expr] = {}
                positional = [p for p in f.params if p.kind == "normal"]
                for i, prm in enumerate(positional):
                    if i < len(call.args) and call.args[i].kind != "star":
                        bound[prm.name] = call.args[i]
                for k, v in call.kwargs.items():
                    bound[k] = v
                for inc in wrappers[(fm.path, f.qualname)]:
                    base = inc.func.name.rsplit(".", 1)[0] if inc.func else ""
                    child_e = inc.arg(0) or inc.kw("router")
                    parent = (self.resolve_node(m, scope, bound[base], call.line) if base in bound
                              else self.resolve_node(fm, f.qualname, Expr("name", base, inc.line, name=base), inc.line))
                    children = (self.resolve_nodes(m, scope, bound[child_e.name], call.line)
                                if child_e is not None and child_e.name in bound
                                else self.resolve_nodes(fm, f.qualname, child_e, inc.line))
                    if parent is None:
                        continue
                    prefix = self.eval_str(fm, f.qualname, inc.kw("prefix"))
                    deps = self.deps_list(fm, f.qualname, inc.kw("dependencies"), "include-dependency")
                    for child in children:
                        self.add_include(parent, child, prefix, deps, False, call.line, m)

    def _decorated(self, n: Node, m: PyModule, scope: str, f: FunctionDef, deco: Expr, verb: str, line: int) -> None:
        table = self.d.ROUTE_DECORATORS[verb]
        methods = list(table) if table is not None else (self._methods(m, scope, deco.kw("methods")) or ["GET"])
        if not methods:  # websocket: not an HTTP route
            return
        path = self.eval_str(m, scope, deco.arg(0) or deco.kw("path"))
        deps = self.deps_list(m, scope, deco.kw("dependencies"), "route-dependency")
        iis = deco.kw("include_in_schema")
        tags = ["hidden"] if iis is not None and iis.kind == "bool" and iis.value is False else []
        n.routes.append(self._decl(list(methods), path, m, line, f.qualname, f, m, deps, tags))

    def _registration(self, m: PyModule, scope: str, call: Expr) -> None:
        last = call.last
        if call.func is not None and call.func.kind == "call":  # app.get("/x")(handler)
            inner = call.func
            if inner.last in self.d.ROUTE_DECORATORS and inner.func is not None and inner.func.name and call.args:
                base = inner.func.name.rsplit(".", 1)[0]
                n = self.resolve_node(m, scope, Expr("name", base, call.line, name=base), call.line)
                table = self.d.ROUTE_DECORATORS[inner.last]
                if n is not None and table != ():
                    path = self.eval_str(m, scope, inner.arg(0) or inner.kw("path"))
                    meths = list(table) if table else (self._methods(m, scope, inner.kw("methods")) or ["GET"])
                    deps = self.deps_list(m, scope, inner.kw("dependencies"), "route-dependency")
                    self.add_endpoint(n, m, scope, call.line, path, call.args[0], meths, deps, [])
            return
        if last in ("append", "extend", "insert") and call.func is not None and call.func.name.endswith(".routes." + last):
            # app.routes.append(Route(...)) / app.router.routes.extend([...])
            base = call.func.name[: -len(".routes." + last)]
            base = base[: -len(".router")] if base.endswith(".router") else base
            owner = self.resolve_node(m, scope, Expr("name", base, call.line, name=base), call.line)
            item = call.args[-1] if call.args else None
            if owner is not None and item is not None:
                self.route_list(owner, m, scope, item if item.kind in ("list", "tuple", "name") else
                                Expr("list", item.text, item.line, args=[item]))
            return
        if last not in self.d.REGISTRATION_CALLS or call.func is None or not call.func.name or "." not in call.func.name:
            return
        base = call.func.name.rsplit(".", 1)[0]
        parent = self.resolve_node(m, scope, Expr("name", base, call.line, name=base), call.line)
        if parent is None or parent.kind == "static":
            return
        what = self.d.REGISTRATION_CALLS[last]
        if what == "include":
            child_expr = call.arg(0) or call.kw("router")
            children = self.resolve_nodes(m, scope, child_expr, call.line)
            prefix = self.eval_str(m, scope, call.kw("prefix"))
            deps = self.deps_list(m, scope, call.kw("dependencies"), "include-dependency")
            iis = call.kw("include_in_schema")
            for child in children:
                self.add_include(parent, child, prefix, deps, bool(iis is not None and iis.kind == "bool" and
                                                                    iis.value is False), call.line, m)
        elif what == "mount":
            path = PathPart("") if last == "host" else self.eval_str(m, scope, call.arg(0) or call.kw("path"))
            app = call.arg(1) or call.kw("app")
            if app is not None:
                self.mount_app(parent, m, scope, path, app, call.line)
            routes = call.kw("routes")
            if routes is not None:
                child = self._inline_node(m, scope, Expr("call", f"mount:{call.text[:40]}", call.line, name="Mount"),
                                          "router")
                self.route_list(child, m, scope, routes)
                self.add_include(parent, child, path, [], False, call.line, m)
        elif what == "route":
            path = self.eval_str(m, scope, call.arg(0) or call.kw("path"))
            endpoint = call.arg(1) or call.kw("endpoint") or call.kw("route")
            methods = self._methods(m, scope, call.kw("methods"))
            deps = self.deps_list(m, scope, call.kw("dependencies"), "route-dependency")
            iis = call.kw("include_in_schema")
            tags = ["hidden"] if iis is not None and iis.kind == "bool" and iis.value is False else []
            self.add_endpoint(parent, m, scope, call.line, path, endpoint, methods, deps, tags)

    def _loops(self, m: PyModule) -> None:
        """``for r in [a.router, b.router]: app.include_router(r)`` at module level or in a function body."""
        for call, scope in m.calls:
            if call.last not in self.d.REGISTRATION_CALLS or self.d.REGISTRATION_CALLS[call.last] != "include":
                continue
            child = call.arg(0) or call.kw("router")
            if child is None or child.kind != "name" or not call.func or not call.func.name:
                continue
            if self.lookup(m, scope, child.name, call.line) is not None:
                continue
            iterable = self._loop_iterable(m, scope, child.name, call.line)
            if iterable is None:
                continue
            base = call.func.name.rsplit(".", 1)[0]
            parent = self.resolve_node(m, scope, Expr("name", base, call.line, name=base), call.line)
            if parent is None:
                continue
            if iterable.kind in ("name", "attr"):
                iterable = self._deref_list(m, scope, iterable)
            prefix = self.eval_str(m, scope, call.kw("prefix"))
            deps = self.deps_list(m, scope, call.kw("dependencies"), "include-dependency")
            for item in iterable.args if iterable.kind in ("list", "tuple", "set") else []:
                node = self.resolve_node(m, scope, item, call.line)
                if node is not None:
                    self.add_include(parent, node, prefix, deps, False, call.line, m)

    def _loop_iterable(self, m: PyModule, scope: str, name: str, line: int) -> Expr | None:
        if scope != MODULE:
            f = m.functions.get(scope)
            if f is not None:
                for a in f.body.assigns:
                    if a.target == name and a.line <= line and a.value.kind in ("list", "tuple", "name", "attr"):
                        return a.value
            return None
        if not m.src.abs_path:
            return None
        from apitrail.scan.lang.python import _tree_for

        got = _tree_for(m.src.abs_path)
        if got is None:
            return None
        node = got[1].root_node.descendant_for_point_range((line - 1, 0), (line - 1, 0))
        while node is not None and node.type != "for_statement":
            node = node.parent
        if node is None:
            return None
        left = node.child_by_field_name("left")
        if left is None or left.text is None or left.text.decode().strip() != name:
            return None
        return to_expr(node.child_by_field_name("right"))

    # ------------------------------------------------------------------ walk ----------------------------------
    def walk(self) -> list[Route]:
        routes: list[Route] = []
        roots = [n for n in self.nodes.values() if n.parents == 0]
        roots.sort(key=lambda n: (n.kind != "app", n.module.path, n.line))
        for root in roots:
            orphan = "" if root.kind == "app" else "router is not mounted on an app found in the scanned tree"
            self._walk(root, PathPart("", ""), [], False, [], routes, set(), orphan, 0)
        return routes

    def _walk(self, n: Node, prefix: PathPart, deps: list[DepRef], hidden: bool, mw: list[Evidence],
              out: list[Route], stack: set[tuple[str, str, str, int]], orphan: str, depth: int) -> None:
        if n.key in stack or depth > 12:
            return
        stack = stack | {n.key}
        prefix = prefix + n.prefix
        deps = deps + n.deps
        hidden = hidden or n.hidden
        mw = mw + n.middleware
        for r in n.routes:
            out.extend(self._route(r, prefix, deps, hidden, mw, orphan))
        for inc in n.children:
            self._walk(inc.child, prefix + inc.prefix, ([] if inc.mount else deps) + inc.deps, hidden or inc.hidden,
                       mw, out, stack, orphan, depth + 1)

    def _route(self, r: RouteDecl, prefix: PathPart, deps: list[DepRef], hidden: bool, mw: list[Evidence],
               orphan: str) -> list[Route]:
        full = prefix + r.path
        path = re.sub(r"/{2,}", "/", PARAM_CONV.sub(r"{\1}", full.text)) or "/"
        if not path.startswith("/"):
            path = "/" + path
        reasons = [x for x in (full.partial, orphan) if x]
        tags = list(r.tags) + (["hidden"] if hidden and "hidden" not in r.tags else [])
        try:
            chain = list(deps) + list(r.deps)
            if r.handler_func is not None and r.handler_module is not None:
                chain += self.param_deps(r.handler_module, r.handler_func, "parameter-dependency")
                chain += self._class_deps(r.handler_module, r.handler_func)
            auth = self._auth(chain, r, mw)
        except RecursionError:  # pathological alias/dependency cycles: keep the route, say we do not know
            auth = AuthRequirement("unknown", [], [Evidence(r.module.path, r.line, "unresolved",
                                                            "dependency chain too deep to analyse")])
        return [Route(method, path, r.module.path, r.line, r.handler, self.d.name, auth, partial=bool(reasons),
                      partial_reason="; ".join(reasons),
                      handler_file=r.handler_module.path if r.handler_module else r.module.path,
                      handler_line=r.handler_func.line if r.handler_func else r.line, tags=list(tags))
                for method in dict.fromkeys(r.methods)]

    def _class_deps(self, module: PyModule, func: FunctionDef) -> list[DepRef]:
        """Class-based views (fastapi-utils ``@cbv``/``@controller``): class attributes that are dependencies
        are resolved for every endpoint method of the class."""
        if not func.class_name or not func.params or func.params[0].name != "self":
            return []
        cq = func.qualname.rsplit(".", 1)[0]
        cls = module.classes.get(cq)
        if cls is None:
            return []
        out: list[DepRef] = []
        seen: set[str] = set()
        for m, c, _ in self.idx.class_mro(module, cls):
            if c is None:
                continue
            for name, a in c.attrs.items():
                if name in seen:
                    continue
                seen.add(name)
                if a.value.kind == "call" and a.value.last in self.d.DEPENDENCY_MARKERS:
                    d = self.dep_from_marker(m, MODULE, a.value, "class-dependency", a.annotation)
                    if d is not None:
                        out.append(d)
                elif a.annotation is not None:
                    out.extend(self._annotation_deps(m, MODULE, a.annotation, "class-dependency", 0))
        return out

    def _auth(self, chain: list[DepRef], r: RouteDecl, mw: list[Evidence]) -> AuthRequirement:
        total = DepResult()
        evidence: list[Evidence] = []
        unknown = ""
        for dep in chain:
            res = self.dep_result(dep)
            if res.authn or res.role:
                total.authn = True
                total.role = total.role or res.role
                total.roles.extend(x for x in res.roles if x not in total.roles)
                evidence.append(Evidence(dep.module.path, dep.line, dep.kind, dep.text))
                evidence.extend(res.evidence[:3])
            elif res.unknown and not unknown:
                unknown = res.unknown
            elif res.optional:
                evidence.append(Evidence(dep.module.path, dep.line, dep.kind, f"optional: {dep.text}"))
        if r.requires is not None:
            total.authn = True
            roles = [s for s in r.requires if s != "authenticated"]
            if roles:
                total.role = True
                total.roles.extend(x for x in roles if x not in total.roles)
            evidence.append(Evidence(r.handler_module.path if r.handler_module else r.module.path, r.requires_line,
                                     "decorator", f"requires({', '.join(r.requires)})"))
        if not total.authn and r.handler_func is not None and r.handler_module is not None:
            inl = self.inline_checks(r.handler_module, r.handler_func)
            if inl.authn:
                total.authn, total.role = True, inl.role
                evidence.extend(inl.evidence)
        evidence.extend(mw)
        if total.role:
            return AuthRequirement("role", sorted(total.roles), evidence)
        if total.authn:
            return AuthRequirement("authenticated", [], evidence)
        if unknown:
            return AuthRequirement("unknown", [], evidence + [Evidence(r.module.path, r.line, "unresolved", unknown)])
        return AuthRequirement("public", [], evidence)

    def run(self) -> list[Route]:
        self.build_nodes()
        self.collect()
        return self.walk()
