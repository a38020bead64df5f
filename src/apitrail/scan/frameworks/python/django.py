"""Django: URLconfs (``path``/``re_path``/``url``/``include``) resolved across apps, with each view's methods and auth.

Routes come from the URL tree rooted at ``ROOT_URLCONF`` (or at every URLconf nobody includes). For each view:

* methods: a function view answers any method (``ANY``) unless ``require_http_methods``/``require_GET``/
  ``require_POST``/``require_safe`` narrow it; a class-based view answers the handlers it (or its bases) define,
  with stock generic views from a table, restricted by ``http_method_names``;
* auth: ``login_required``/``permission_required``/``user_passes_test``/``staff_member_required`` decorators (on
  the function, in the URLconf, or through ``method_decorator`` on the class or its ``dispatch``),
  ``LoginRequiredMixin``/``PermissionRequiredMixin``/``UserPassesTestMixin``, inline checks in the handler (the
  shared AuthAnalyzer), and a login-enforcing middleware in ``settings.MIDDLEWARE`` as the global default
  (Django 5.1's ``LoginRequiredMiddleware``, exempted by ``login_not_required``, or a project middleware whose
  code rejects anonymous requests).

Why it matters: a Django view is public unless something above says otherwise, and that something is usually in
another file (a mixin base class, a URLconf wrapper, a middleware in settings).
"""

from __future__ import annotations

import re
from typing import ClassVar

from apitrail.scan.frameworks._base import FrameworkPlugin, Project
from apitrail.scan.frameworks.python import _django_link as L
from apitrail.scan.frameworks.python._django_link import Linker
from apitrail.scan.frameworks.python._django_paths import finalize
from apitrail.scan.frameworks.python._django_urls import Entry, RouterMount
from apitrail.scan.lang.python import ClassDef, Expr, FunctionDef, PyModule
from apitrail.scan.lang.python_auth import AuthVerdict
from apitrail.scan.model import AuthRequirement, Evidence, Route

Found = tuple[str, list[str], Evidence]  # (state, roles, evidence)


class Django(FrameworkPlugin):
    name: ClassVar[str] = "django"
    language: ClassVar[str] = "python"

    PACKAGES: ClassVar[tuple[str, ...]] = ("django",)
    """Top-level packages whose import makes a project a candidate."""

    METHOD_DECORATORS: ClassVar[dict[str, tuple[str, ...]]] = {
        "require_GET": ("GET",),
        "require_POST": ("POST",),
        "require_safe": ("GET",),  # HEAD is implied for GET everywhere; not reported
        "require_http_methods": (),
    }
    """Decorators that restrict a function view's methods (``()``: read from the decorator's list argument)."""

    AUTH_DECORATORS: ClassVar[dict[str, str]] = {
        "login_required": "authenticated",
        "permission_required": "role",
        "staff_member_required": "role:staff",
        "superuser_required": "role:superuser",
        "user_passes_test": "test",
        "login_not_required": "exempt",
    }
    """View decorators and what they require (``test``: decided from the test function)."""

    AUTH_MIXINS: ClassVar[dict[str, str]] = {
        "LoginRequiredMixin": "authenticated",
        "PermissionRequiredMixin": "role",
        "UserPassesTestMixin": "test",
        "StaffuserRequiredMixin": "role:staff",
        "SuperuserRequiredMixin": "role:superuser",
        "GroupRequiredMixin": "role",
    }
    """Class-based view mixins (django.contrib.auth, django-braces) and what they require."""

    GENERIC_VIEW_METHODS: ClassVar[dict[str, tuple[str, ...]]] = {
        "View": (),
        "TemplateView": ("GET",),
        "RedirectView": ("GET", "POST", "PUT", "PATCH", "DELETE"),
        "ListView": ("GET",), "DetailView": ("GET",), "ArchiveIndexView": ("GET",), "YearArchiveView": ("GET",),
        "MonthArchiveView": ("GET",), "DayArchiveView": ("GET",), "DateDetailView": ("GET",),
        "FormView": ("GET", "POST"), "CreateView": ("GET", "POST"), "UpdateView": ("GET", "POST"),
        "DeleteView": ("GET", "POST"),
        "LoginView": ("GET", "POST"), "LogoutView": ("POST",), "PasswordChangeView": ("GET", "POST"),
        "PasswordChangeDoneView": ("GET",), "PasswordResetView": ("GET", "POST"), "PasswordResetDoneView": ("GET",),
        "PasswordResetConfirmView": ("GET", "POST"), "PasswordResetCompleteView": ("GET",),
        "JavaScriptCatalog": ("GET",), "JSONCatalog": ("GET",),
        "GraphQLView": ("GET", "POST"), "AsyncGraphQLView": ("GET", "POST"),
    }
    """Stock class-based views (django.views.generic, django.contrib.auth.views, graphene/strawberry GraphQL views:
    authorization of those lives in resolvers): the methods they answer."""

    HANDLER_METHODS: ClassVar[tuple[str, ...]] = ("get", "post", "put", "patch", "delete")
    """Handler method names of a View (head/options/trace are implied by Django, not reported)."""

    LOGIN_MIDDLEWARE: ClassVar[tuple[str, ...]] = ("django.contrib.auth.middleware.LoginRequiredMiddleware",
                                                   "login_required.middleware.LoginRequiredMiddleware")
    """Middleware that requires login for every view not marked ``login_not_required`` (Django 5.1,
    django-login-required-middleware)."""

    # -- plugin API -----------------------------------------------------------------------------------
    def detect(self, project: Project) -> bool:
        return bool(project.python_importing(*self.PACKAGES))

    def routes(self, project: Project) -> list[Route]:
        return [r for r in L.linked_routes(project, self.linker_plugin(project)) if r.framework == self.name]

    def linker_plugin(self, project: Project) -> Django:
        """The most specific dialect: DRF (a superset; it also recognises vendored copies of DRF in the tree)."""
        from apitrail.scan.frameworks.python.drf import FRAMEWORK as DRF_PLUGIN

        return DRF_PLUGIN

    # -- hooks the DRF dialect extends ----------------------------------------------------------------
    def is_router_class(self, link: Linker, mod: PyModule, call: Expr) -> bool:
        return False

    def router_routes(self, link: Linker, mount: RouterMount) -> list[Route]:
        return []

    def entry_routes(self, link: Linker, entry: Entry) -> list[Route]:
        """Routes for one URL pattern: unwrap URLconf decorators, resolve the view, then expand it."""
        view, wrappers = self.unwrap(entry.view)
        mod = entry.module
        if view.kind == "call" and view.last == "as_view" and view.func is not None:
            cls_name = view.name.rsplit(".", 1)[0] if view.name else ""
            sym = link.index.resolve(mod, cls_name) if cls_name else None
            if sym is not None and sym.kind == "class" and sym.cls is not None:
                return self.class_view_routes(link, entry, sym.module, sym.cls, view, wrappers)
            qual = sym.external if sym is not None and sym.external else link.index.qualified_name(mod, cls_name)
            return self.external_view_routes(link, entry, qual, wrappers)
        target = None
        if view.kind in ("name", "attr") and view.name:
            target = link.index.resolve(mod, view.name)
        elif view.kind == "str" and isinstance(view.value, str) and "." in view.value:
            modname, _, fname = view.value.rpartition(".")
            tm = link.index.find_module(modname, mod)
            target = link.index.resolve(tm, fname) if tm is not None else None
        if target is not None and target.kind == "function" and target.func is not None:
            return self.function_view_routes(link, entry, target.module, target.func, wrappers)
        if target is not None and target.kind == "class" and target.cls is not None:
            return self.class_view_routes(link, entry, target.module, target.cls, None, wrappers)
        if target is not None and target.kind == "assign" and target.assign is not None:
            inner = Entry(entry.path, target.assign.value, target.module, entry.line, entry.partial, entry.kwargs)
            if target.assign.value is not entry.view and target.assign.value.kind in ("call", "name", "attr"):
                got = self.entry_routes(link, inner)
                for r in got:
                    r.file, r.line = entry.module.path, entry.line
                return got
        if target is not None and target.kind == "unresolved" and target.external:
            lib = self.library_view_routes(link, entry, target.external)
            if lib is not None:
                return lib
        return [self.route(link, entry, "ANY", view.text[:80] or "?", AuthRequirement("unknown", [], [
            Evidence(mod.path, entry.line, "unresolved-view", f"view {view.text[:80]} not resolved")]), None, None)]

    def library_view_routes(self, link: Linker, entry: Entry, qual: str) -> list[Route] | None:
        """A view function imported from a library (``obtain_auth_token``); None when not known."""
        return None

    def unwrap(self, view: Expr) -> tuple[Expr, list[Expr]]:
        """``login_required(V.as_view())`` / ``cache_page(60)(v)`` -> (view, [wrappers outermost first])."""
        wrappers: list[Expr] = []
        for _ in range(8):
            if view.kind != "call" or view.last == "as_view" or not view.args:
                break
            arg0 = view.args[0]
            if view.func is not None and view.func.kind == "call":  # decorator factory: cache_page(60)(view)
                wrappers.append(view.func)
            elif arg0.kind in ("call", "name", "attr"):
                wrappers.append(view)
            else:
                break
            view = arg0
        return view, wrappers

    def route(self, link: Linker, entry: Entry, method: str, handler: str, auth: AuthRequirement,
              hmod: PyModule | None, hline: int | None, framework: str | None = None) -> Route:
        path = finalize(entry.path)
        r = Route(method, path, entry.module.path, entry.line, handler, framework or Django.name, auth,
                  bool(entry.partial), entry.partial, hmod.path if hmod is not None else "", hline or 0)
        return r

    # -- function views -------------------------------------------------------------------------------
    def function_methods(self, func: FunctionDef) -> list[str]:
        for d in func.decorators:
            spec = self.METHOD_DECORATORS.get(d.last)
            if spec is None:
                continue
            if spec:
                return list(spec)
            lst = d.arg(0) if d.kind == "call" else None
            if lst is not None:
                vals = [str(x.value).upper() for x in lst.args if x.kind == "str"]
                if vals:
                    return vals
        return ["ANY"]

    def function_view_routes(self, link: Linker, entry: Entry, mod: PyModule, func: FunctionDef,
                             wrappers: list[Expr]) -> list[Route]:
        out = []
        for m in self.function_methods(func):
            found = self.decorator_findings(link, entry.module, wrappers, entry.line)
            found += self.decorator_findings(link, mod, func.decorators, func.line)
            auth = self.django_auth(link, mod, func, found)
            out.append(self.route(link, entry, m, func.qualname, auth, mod, func.line))
        return out

    # -- class-based views ----------------------------------------------------------------------------
    def class_methods(self, link: Linker, mod: PyModule, cls: ClassDef) -> tuple[list[str], dict[str, tuple[PyModule, FunctionDef]]]:
        """Methods a View answers and where each handler is defined; ["ANY"] when not knowable."""
        handlers: dict[str, tuple[PyModule, FunctionDef]] = {}
        known = False
        stock: list[str] = []
        for m, c, q in link.mro(mod, cls):
            if c is None:
                last = q.rsplit(".", 1)[-1]
                if last in self.GENERIC_VIEW_METHODS:
                    known = True
                    stock.extend(x for x in self.GENERIC_VIEW_METHODS[last] if x not in stock)
                continue
            for h in self.HANDLER_METHODS:
                f = m.functions.get(f"{c.qualname}.{h}")
                if f is not None and h.upper() not in handlers:
                    handlers[h.upper()] = (m, f)
        methods = list(handlers) + [s for s in stock if s not in handlers]
        if not methods:
            disp = self._find_method(link, mod, cls, "dispatch")
            if disp is not None:
                # dispatch() does the routing itself: the methods it compares request.method with, else any
                seen = [str(c.right.value).upper() for c in disp[1].body.compares
                        if c.left.name.endswith("method") and c.right.kind == "str" and c.op in ("==", "in")]
                methods = [x for x in dict.fromkeys(seen) if x in ("GET", "POST", "PUT", "PATCH", "DELETE")]
                if not methods:
                    return ["ANY"], handlers
        allowed = self.http_method_names(link, mod, cls)
        if allowed is not None:
            methods = [x for x in methods if x in allowed]
        if not methods and not known:
            return ["ANY"], handlers
        return [x for x in ("GET", "POST", "PUT", "PATCH", "DELETE") if x in methods], handlers

    def http_method_names(self, link: Linker, mod: PyModule, cls: ClassDef) -> set[str] | None:
        for _m, c, _q in link.mro(mod, cls):
            if c is None:
                continue
            a = c.attrs.get("http_method_names")
            if a is not None and a.value.kind in ("list", "tuple"):
                return {str(x.value).upper() for x in a.value.args if x.kind == "str"}
        return None

    def class_view_routes(self, link: Linker, entry: Entry, mod: PyModule, cls: ClassDef, as_view: Expr | None,
                          wrappers: list[Expr]) -> list[Route]:
        methods, handlers = self.class_methods(link, mod, cls)
        if as_view is not None and as_view.kw("http_method_names") is not None:
            hm = as_view.kw("http_method_names")
            assert hm is not None
            allowed = {str(x.value).upper() for x in hm.args if x.kind == "str"}
            methods = [m for m in methods if m in allowed or m == "ANY"]
        out = []
        for m in methods:
            hm_mod, hfunc = handlers.get(m, (mod, None))
            found = self.decorator_findings(link, entry.module, wrappers, entry.line)
            found += self.class_findings(link, mod, cls, hfunc, m)
            auth = self.django_auth(link, hm_mod, hfunc, found)
            handler = hfunc.qualname if hfunc is not None else cls.qualname
            out.append(self.route(link, entry, m, handler, auth, hm_mod, hfunc.line if hfunc else cls.line))
        return out

    def external_view_routes(self, link: Linker, entry: Entry, qual: str, wrappers: list[Expr]) -> list[Route]:
        last = qual.rsplit(".", 1)[-1]
        methods = list(self.GENERIC_VIEW_METHODS.get(last, ())) or ["ANY"]
        found = self.decorator_findings(link, entry.module, wrappers, entry.line)
        out = []
        for m in methods:
            if found or last in self.GENERIC_VIEW_METHODS:
                auth = self.django_auth(link, entry.module, None, found)
            else:
                auth = AuthRequirement("unknown", [], [Evidence(entry.module.path, entry.line, "external-view", qual)])
            out.append(self.route(link, entry, m, qual, auth, None, None))
        return out

    # -- auth -----------------------------------------------------------------------------------------
    def decorator_findings(self, link: Linker, mod: PyModule, decorators: list[Expr], line: int) -> list[Found]:
        out: list[Found] = []
        for d in decorators:
            out.extend(self.one_decorator(link, mod, d))
        return out

    def one_decorator(self, link: Linker, mod: PyModule, d: Expr) -> list[Found]:
        last = d.last
        if last == "method_decorator" and d.kind == "call" and d.args:
            inner = d.args[0]
            items = inner.args if inner.kind in ("list", "tuple") else [inner]
            return [f for i in items for f in self.one_decorator(link, mod, i)]
        kind = self.AUTH_DECORATORS.get(last)
        ev = Evidence(mod.path, d.line, "decorator", d.text[:120])
        if kind is not None:
            if kind == "exempt":
                return [("exempt", [], ev)]
            if kind == "authenticated":
                return [("authenticated", [], ev)]
            if kind.startswith("role:"):
                return [("role", [kind[5:]], ev)]
            if kind == "role":
                perms = [str(x.value) for x in d.args[:1] if x.kind == "str"]
                if d.args and d.args[0].kind in ("list", "tuple"):
                    perms = [str(x.value) for x in d.args[0].args if x.kind == "str"]
                return [("role", perms or ["permission"], ev)]
            if kind == "test":
                return [self.test_finding(link, mod, d.arg(0), ev)]
        # project decorators: decided by what their code does
        if d.name:
            sym = link.index.resolve(mod, d.name)
            if sym is not None and sym.kind == "function" and sym.func is not None:
                v = AuthVerdict()  # fresh: the analyzer's verdicts are memoised, never merge into them
                v.merge(link.project.auth.callable_verdict(sym.module, sym.func))
                nested = [fn for q, fn in sym.module.functions.items() if q.startswith(f"{sym.func.qualname}.<locals>.")]
                for fn in nested:
                    v.merge(link.project.auth.callable_verdict(sym.module, fn))
                if v.role:
                    return [("role", v.roles or ["permission"], ev)]
                if v.authn:
                    return [("authenticated", [], ev)]
        return []

    def test_finding(self, link: Linker, mod: PyModule, test: Expr | None, ev: Evidence) -> Found:
        text = test.text if test is not None else ""
        if test is not None and test.kind == "name" and test.name:
            sym = link.index.resolve(mod, test.name)
            if sym is not None and sym.kind == "function" and sym.func is not None:
                text += " " + " ".join(c.text for c in sym.func.body.returns)
        if re.search(r"is_staff|is_superuser|has_perm|groups|role|is_admin", text):
            return ("role", [r for r in ("staff", "superuser") if r in text] or ["test"], ev)
        return ("authenticated", [], ev)

    def class_findings(self, link: Linker, mod: PyModule, cls: ClassDef, handler: FunctionDef | None,
                       method: str = "ANY") -> list[Found]:
        out: list[Found] = []
        for m, c, q in link.mro(mod, cls):
            last = q.rsplit(".", 1)[-1]
            kind = self.AUTH_MIXINS.get(last)
            if c is None and kind is not None:
                ev = Evidence(mod.path, cls.line, "mixin", last)
                if kind == "authenticated":
                    out.append(("authenticated", [], ev))
                elif kind.startswith("role:"):
                    out.append(("role", [kind[5:]], ev))
                elif kind == "role":
                    out.append(("role", self.class_perms(link, mod, cls) or ["permission"], ev))
                elif kind == "test":
                    tf = self._find_method(link, mod, cls, "test_func")
                    out.append(self.test_finding(link, tf[0], Expr("name", tf[1].qualname, tf[1].line,
                                                                   name=tf[1].qualname), ev) if tf
                               else ("authenticated", [], ev))
                continue
            if c is None:
                continue
            for d in c.decorators:
                nm = d.kw("name")
                target = nm.str_value() if nm is not None else "dispatch"
                if d.last == "method_decorator" and target in ("dispatch", handler.name if handler else ""):
                    out.extend(self.one_decorator(link, m, d))
            disp = m.functions.get(f"{c.qualname}.dispatch")
            if disp is not None:
                out.extend(self.decorator_findings(link, m, disp.decorators, disp.line))
                # each dispatch() in the MRO chains to super(): every guard applies
                mro = link.mro(mod, cls)
                idx = next((i for i, (_m2, c2, _q2) in enumerate(mro) if c2 is c), 0)
                gv = link.perms.guard_verdict(m, disp, mro, idx, method)
                if gv.state in ("authenticated", "role", "unknown"):
                    detail = "; ".join(e.detail for e in gv.evidence if e.kind == "conditional")
                    ev = Evidence(m.path, disp.line, "dispatch-guard", f"{disp.qualname}()" + (f": {detail}" if detail else ""))
                    out.append((gv.state, list(gv.roles), ev))
                elif gv.state == "deny":
                    out.append(("role", ["nobody"], Evidence(m.path, disp.line, "dispatch-guard", f"{disp.qualname}()")))
        if handler is not None:
            hm = self._module_of(link, mod, cls, handler)
            out.extend(self.decorator_findings(link, hm, handler.decorators, handler.line))
        return out

    def class_perms(self, link: Linker, mod: PyModule, cls: ClassDef) -> list[str]:
        for _m, c, _q in link.mro(mod, cls):
            if c is None:
                continue
            a = c.attrs.get("permission_required")
            if a is not None:
                vals = [a.value] if a.value.kind == "str" else a.value.args
                return [str(x.value) for x in vals if x.kind == "str"]
        return []

    def _find_method(self, link: Linker, mod: PyModule, cls: ClassDef, name: str) -> tuple[PyModule, FunctionDef] | None:
        for m, c, _q in link.mro(mod, cls):
            if c is not None:
                f = m.functions.get(f"{c.qualname}.{name}")
                if f is not None:
                    return m, f
        return None

    def _module_of(self, link: Linker, mod: PyModule, cls: ClassDef, func: FunctionDef) -> PyModule:
        for m, c, _q in link.mro(mod, cls):
            if c is not None and m.functions.get(func.qualname) is func:
                return m
        return mod

    INLINE_CALLER_CHECK = re.compile(r"\bnot\b[^=]*\b(is_authenticated|request\.user|request\.auth|has_perms?|is_staff|"
                                    r"is_superuser)\b|is_anonymous|has_perms?\(|is_staff|is_superuser|\brole")
    """A handler-body branch that rejects *the caller* (not a login form rejecting bad credentials)."""

    def inline_requirement(self, link: Linker, mod: PyModule, func: FunctionDef) -> Found | None:
        """Inline checks in a handler body, from the shared AuthAnalyzer, kept only when the rejecting branch
        tests the caller's identity: ``if not request.user.is_authenticated: return redirect(login)``. A login
        view that calls ``authenticate()`` or redirects users who are already signed in is not protected."""
        v = link.project.auth.callable_verdict(mod, func)
        if not (v.authn or v.role):
            return None
        checks = [e for e in v.evidence if e.kind in ("inline-check", "role-check") and self.INLINE_CALLER_CHECK.search(e.detail)]
        if not checks:
            return None
        role = any(e.kind == "role-check" for e in checks)
        return ("role" if role else "authenticated", list(v.roles) if role else [], checks[0])

    def delegated_findings(self, link: Linker, mod: PyModule, func: FunctionDef) -> list[Found]:
        """``return create_item(request)`` / ``return list_items(request)``: a view whose every return hands the
        request to a view function with an auth decorator is as protected as the weakest of them."""
        rets = func.body.returns
        if not rets:
            return []
        states: list[Found] = []
        for r in rets:
            if r.kind != "call" or not r.name or "request" not in {a.name for a in r.args}:
                return []
            sym = link.index.resolve(mod, r.name)
            if sym is None or sym.kind != "function" or sym.func is None or sym.func is func:
                return []
            got = [f for f in self.decorator_findings(link, sym.module, sym.func.decorators, sym.func.line)
                   if f[0] in ("authenticated", "role")]
            if not got:
                return []
            best = next((f for f in got if f[0] == "role"), got[0])
            states.append((best[0], best[1], Evidence(mod.path, r.line, "delegates", f"{r.text[:60]} -> {best[2].detail}")))
        weakest = [f for f in states if f[0] == "authenticated"] or states
        return [weakest[0]]

    def middleware_findings(self, link: Linker) -> list[Found]:
        """Login-enforcing middleware from settings.MIDDLEWARE (memoised)."""
        key = "middleware"
        if key in link.cache:
            return list(link.cache[key])
        out: list[Found] = []
        sv = link.settings.get("MIDDLEWARE") or link.settings.get("MIDDLEWARE_CLASSES")
        if sv is not None and isinstance(sv.value, list):
            for dotted in sv.value:
                if not isinstance(dotted, str):
                    continue
                ev = Evidence(sv.file, sv.line, "middleware", dotted)
                if dotted in self.LOGIN_MIDDLEWARE:
                    out.append(("authenticated", [], ev))
                    continue
                modname, _, name = dotted.rpartition(".")
                tm = link.index.find_module(modname) if modname else None
                sym = link.index.resolve(tm, name) if tm is not None else None
                if sym is None or sym.kind != "class" or sym.cls is None:
                    continue
                if any(q in self.LOGIN_MIDDLEWARE for _m, c, q in link.mro(sym.module, sym.cls) if c is None):
                    out.append(("authenticated", [], ev))
                    continue
                for meth in ("__call__", "process_view", "process_request"):
                    f = sym.module.functions.get(f"{sym.cls.qualname}.{meth}")
                    if f is None:
                        continue
                    v = link.project.auth.callable_verdict(sym.module, f)
                    # only a middleware that redirects/rejects on is_authenticated counts, not one that reads tokens
                    if v.authn and any(e.kind == "inline-check" and "is_authenticated" in e.detail for e in v.evidence):
                        out.append(("authenticated", [], ev))
                        break
        link.cache[key] = out
        return list(out)

    def django_auth(self, link: Linker, mod: PyModule, func: FunctionDef | None, found: list[Found],
                    default: AuthRequirement | None = None) -> AuthRequirement:
        """Strongest requirement among decorators/mixins/inline checks, then the global middleware default."""
        exempt = any(f[0] == "exempt" for f in found)
        found = [f for f in found if f[0] != "exempt"]
        if func is not None:
            inline = self.inline_requirement(link, mod, func)
            if inline is not None:
                found.append(inline)
            if not found:
                found.extend(self.delegated_findings(link, mod, func))
        sure = [f for f in found if f[0] != "unknown"]
        if found and not sure:
            # only conditional guards (e.g. login required unless a setting says otherwise)
            return AuthRequirement("unknown", [], [f[2] for f in found])
        if found:
            state = "role" if any(f[0] == "role" for f in found) else "authenticated"
            roles: list[str] = []
            for f in found:
                if f[0] == "role":
                    roles.extend(r for r in f[1] if r not in roles)
            return AuthRequirement("role" if state == "role" else "authenticated", roles, [f[2] for f in found])
        if not exempt:
            mw = self.middleware_findings(link)
            if mw:
                return AuthRequirement("authenticated", [], [f[2] for f in mw])
        if default is not None:
            return default
        where = func.line if func is not None else 0
        return AuthRequirement("public", [], [Evidence(mod.path, where, "no-auth",
                                                       "no login decorator, auth mixin, inline check or login middleware")])


FRAMEWORK = Django()
