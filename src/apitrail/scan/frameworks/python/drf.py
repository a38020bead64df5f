"""Django REST framework: routers, ViewSets, APIViews and ``@api_view`` functions, with DRF permission semantics.

A dialect of the Django plugin (same URL walk), adding:

* routers: ``SimpleRouter``/``DefaultRouter`` (and project subclasses, and drf-nested-routers) ``.register(prefix,
  ViewSet)`` expand to the list route (``GET``/``POST {prefix}/``) and the detail route (``GET``/``PUT``/``PATCH``/
  ``DELETE {prefix}/{lookup}/``), keeping only the actions the ViewSet really has through its mixins and base
  classes (resolved across files), plus ``@action`` routes, filtered by ``http_method_names``; a router subclass
  that adds mappings in ``__init__`` (``self.routes[0].mapping.update({...})``) or redefines ``routes`` is read;
  ``DefaultRouter`` adds its API root view;
* ``APIView`` and generic views (``ListCreateAPIView`` ...): the handlers the class and its bases define;
* auth, per method and action: ``@action(permission_classes=...)``/``@permission_classes`` > a ``get_permissions()``
  override (branches on ``self.action``/``request.method`` are followed; anything else is ``unknown``) >
  ``permission_classes`` (inherited) > ``REST_FRAMEWORK['DEFAULT_PERMISSION_CLASSES']`` > DRF's default
  ``AllowAny``. What each permission class allows is decided by `_drf_perms` from its code.

Why it matters: in DRF the protection of most endpoints is a settings default two files away from the view, and a
single ``permission_classes = [AllowAny]`` or a permissive custom ``has_permission`` opens a whole ViewSet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from apitrail.scan.frameworks.python._django_link import Linker, Registration
from apitrail.scan.frameworks.python._django_paths import regex_to_path, route_to_path
from apitrail.scan.frameworks.python._django_urls import Entry, RouterMount
from apitrail.scan.frameworks.python._drf_perms import PermVerdict
from apitrail.scan.frameworks.python.django import Django
from apitrail.scan.lang.python import ClassDef, Expr, FunctionDef, PyModule
from apitrail.scan.model import AuthRequirement, Evidence, Route


@dataclass
class RouterSpec:
    """What a router class generates."""

    trailing: str = "/"
    root_view: bool = False
    nested_prefix: str = ""
    list_map: dict[str, str] = field(default_factory=lambda: dict(DRF.LIST_ROUTE))
    detail_map: dict[str, str] = field(default_factory=lambda: dict(DRF.DETAIL_ROUTE))
    custom_routes: list[tuple[str, dict[str, str], bool | None]] = field(default_factory=list)  # (url, map, detail)
    partial: str = ""  # the router builds its URLs in code we do not model


@dataclass
class Action:
    name: str
    detail: bool
    methods: list[str]
    url_path: str
    perms: Expr | None
    func: FunctionDef
    module: PyModule


class DRF(Django):
    name: ClassVar[str] = "drf"
    PACKAGES: ClassVar[tuple[str, ...]] = ("rest_framework", "django")
    """DRF routes need a Django project; ``routes()`` keeps only routes reached through DRF constructs."""

    ROUTERS: ClassVar[dict[str, str]] = {
        "SimpleRouter": "simple", "DefaultRouter": "default",
        "NestedSimpleRouter": "nested", "NestedDefaultRouter": "nested-default",
        "ExtendedSimpleRouter": "simple", "ExtendedDefaultRouter": "default",
        "BulkRouter": "simple", "BaseRouter": "simple",
    }
    """Router classes (DRF, drf-nested-routers, drf-extensions) and their kind; project subclasses are followed."""

    LIST_ROUTE: ClassVar[dict[str, str]] = {"GET": "list", "POST": "create"}
    """SimpleRouter's list route: method -> ViewSet action."""

    DETAIL_ROUTE: ClassVar[dict[str, str]] = {"GET": "retrieve", "PUT": "update", "PATCH": "partial_update",
                                              "DELETE": "destroy"}
    """SimpleRouter's detail route: method -> ViewSet action."""

    VIEWSET_ACTIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "ModelViewSet": ("list", "create", "retrieve", "update", "partial_update", "destroy"),
        "ReadOnlyModelViewSet": ("list", "retrieve"),
        "ListModelMixin": ("list",), "CreateModelMixin": ("create",), "RetrieveModelMixin": ("retrieve",),
        "UpdateModelMixin": ("update", "partial_update"), "DestroyModelMixin": ("destroy",),
        "GenericViewSet": (), "ViewSet": (), "ViewSetMixin": (),
    }
    """Actions that DRF ViewSets and mixins provide."""

    VIEWSET_MARKERS: ClassVar[frozenset[str]] = frozenset({"ViewSetMixin", "ViewSet", "GenericViewSet",
                                                           "ModelViewSet", "ReadOnlyModelViewSet"})
    """A class is a ViewSet when its MRO reaches one of these."""

    GENERIC_API_VIEWS: ClassVar[dict[str, tuple[str, ...]]] = {
        "APIView": (), "GenericAPIView": (),
        "ListAPIView": ("GET",), "CreateAPIView": ("POST",), "RetrieveAPIView": ("GET",),
        "DestroyAPIView": ("DELETE",), "UpdateAPIView": ("PUT", "PATCH"), "ListCreateAPIView": ("GET", "POST"),
        "RetrieveUpdateAPIView": ("GET", "PUT", "PATCH"), "RetrieveDestroyAPIView": ("GET", "DELETE"),
        "RetrieveUpdateDestroyAPIView": ("GET", "PUT", "PATCH", "DELETE"),
        "APIRootView": ("GET",), "ObtainAuthToken": ("POST",),
        "TokenObtainPairView": ("POST",), "TokenRefreshView": ("POST",), "TokenVerifyView": ("POST",),
        "TokenObtainSlidingView": ("POST",), "TokenBlacklistView": ("POST",),
        "SpectacularAPIView": ("GET",), "SpectacularSwaggerView": ("GET",), "SpectacularRedocView": ("GET",),
        "SpectacularJSONAPIView": ("GET",), "SpectacularYAMLAPIView": ("GET",),
    }
    """DRF API views (and simplejwt's token views) and the methods their stock handlers answer."""

    PUBLIC_LIBRARY_VIEWS: ClassVar[frozenset[str]] = frozenset({
        "ObtainAuthToken", "TokenObtainPairView", "TokenRefreshView", "TokenVerifyView", "TokenObtainSlidingView",
        "TokenBlacklistView"})
    """Library views that set ``permission_classes = ()`` themselves (login/token endpoints)."""

    LIBRARY_VIEW_FUNCS: ClassVar[dict[str, tuple[str, ...]]] = {
        "rest_framework.authtoken.views.obtain_auth_token": ("POST",),
        "rest_framework_jwt.views.obtain_jwt_token": ("POST",),
        "rest_framework_jwt.views.refresh_jwt_token": ("POST",),
        "rest_framework_jwt.views.verify_jwt_token": ("POST",),
    }
    """Library view functions (credential exchange endpoints: public by design) and their methods."""

    ACTION_DECORATORS: ClassVar[dict[str, bool | None]] = {"action": None, "detail_route": True, "list_route": False}
    """Extra-action decorators: name -> detail (None: read the ``detail=`` argument)."""

    # -- routers --------------------------------------------------------------------------------------
    def _router_kind(self, link: Linker, mod: PyModule, call: Expr) -> tuple[str, list[tuple[PyModule, ClassDef | None, str]]] | None:
        if not call.name:
            return None
        sym = link.index.resolve(mod, call.name)
        if sym is not None and sym.kind == "class" and sym.cls is not None:
            mro = link.mro(sym.module, sym.cls)
            for _m, c, q in mro:  # a library router first
                last = q.rsplit(".", 1)[-1]
                if c is None and last in self.ROUTERS and ("rest_framework" in q or "router" in q.lower()):
                    return self.ROUTERS[last], mro
            if any(c is None and not q.endswith(".object") for _m, c, q in mro if c is None):
                return None
            for m, _c, q in mro:  # a vendored copy of DRF's routers module in the tree (all bases in-tree)
                last = q.rsplit(".", 1)[-1]
                if last in self.ROUTERS and "router" in m.path.lower():
                    return self.ROUTERS[last], mro
            return None
        qual = sym.external if sym is not None and sym.external else link.index.qualified_name(mod, call.name)
        last = qual.rsplit(".", 1)[-1]
        if last in self.ROUTERS and ("rest_framework" in qual or "router" in qual.lower()):
            return self.ROUTERS[last], []
        return None

    def is_router_class(self, link: Linker, mod: PyModule, call: Expr) -> bool:
        return self._router_kind(link, mod, call) is not None

    def router_spec(self, link: Linker, mod: PyModule, call: Expr, key: tuple[str, str], depth: int = 0) -> RouterSpec:
        spec = RouterSpec()
        got = self._router_kind(link, mod, call)
        kind, mro = got if got is not None else ("simple", [])
        spec.root_view = kind in ("default", "nested-default")
        ts = call.kw("trailing_slash")
        if ts is not None and ts.kind == "bool" and ts.value is False:
            spec.trailing = ""
        elif ts is not None and ts.kind == "str":
            spec.trailing = "/" if ts.value else ""
        irv = call.kw("include_root_view")
        attrs = link.router_attrs.get(key, {})
        if irv is None:
            irv = attrs.get("include_root_view")
        if irv is not None and irv.kind == "bool" and irv.value is False:
            spec.root_view = False
        for m, c, _q in mro:
            if c is None:
                continue
            init = m.functions.get(f"{c.qualname}.__init__")
            if init is not None:
                for cl in init.body.calls:
                    if cl.last == "update" and "mapping" in cl.text and cl.args and cl.args[0].kind == "dict":
                        target = spec.detail_map if "routes[2]" in cl.text else spec.list_map
                        for k, v in cl.args[0].kwargs.items():
                            if v.kind == "str":
                                target[k.upper()] = str(v.value)
            for meth in c.methods:
                f = m.functions.get(meth)
                if f is None or meth.endswith(".__init__"):
                    continue
                for cl in f.body.calls:
                    mp = cl.kw("mapping") if cl.last == "_replace" else None
                    if mp is not None and mp.kind == "dict":
                        target = spec.detail_map if "detail" in f.body.names else spec.list_map
                        for k, v in mp.kwargs.items():
                            if v.kind == "str":
                                target.setdefault(k.upper(), str(v.value))
            if m.functions.get(f"{c.qualname}.get_urls") is not None and not spec.partial:
                spec.partial = f"{c.name}.get_urls() builds the URLs"
            routes_attr = c.attrs.get("routes")
            if routes_attr is not None and routes_attr.value.kind in ("list", "tuple") and not spec.custom_routes:
                for r in routes_attr.value.args:
                    url = r.kw("url") or r.arg(0)
                    mapping = r.kw("mapping") or r.arg(1)
                    detail = r.kw("detail")
                    if url is None or url.kind != "str":
                        continue
                    route_map = {k.upper(): str(v.value) for k, v in (mapping.kwargs.items() if mapping else [])
                                 if v.kind == "str"}
                    spec.custom_routes.append((str(url.value), route_map, bool(detail.value) if detail is not None and
                                               detail.kind == "bool" else None))
        if kind.startswith("nested") and len(call.args) >= 2 and depth < 5:
            parent, pprefix = call.args[0], call.args[1]
            lookup = call.kw("lookup")
            lk = str(lookup.value) if lookup is not None and lookup.kind == "str" else "parent"
            outer = ""
            pref = link.router_for(mod, parent) if parent.name else None
            if pref is not None:
                outer = self.router_spec(link, pref.module, pref.value, (pref.module.path, pref.name), depth + 1).nested_prefix
            pp = regex_to_path(str(pprefix.value))[0] if pprefix.kind == "str" else "{parent}"
            spec.nested_prefix = f"{outer}{pp}/{{{lk}_pk}}/"
        return spec

    def router_routes(self, link: Linker, mount: RouterMount) -> list[Route]:
        ref = mount.router
        key = (ref.module.path, ref.name)
        spec = self.router_spec(link, ref.module, ref.value, key)
        out: list[Route] = []
        regs = link.registrations.get(key, [])
        if spec.root_view:
            out.extend(self.root_view_routes(link, mount, key))
        for reg in regs:
            out.extend(self.registration_routes(link, mount, spec, reg))
        return out

    def root_view_routes(self, link: Linker, mount: RouterMount, key: tuple[str, str]) -> list[Route]:
        entry = Entry(mount.prefix, Expr("name", "APIRootView", mount.line, name="APIRootView"), mount.module,
                      mount.line, mount.partial)
        custom = link.router_attrs.get(key, {}).get("APIRootView")
        if custom is not None and custom.name:
            rm = link.index.by_path.get(key[0], mount.module)
            sym = link.index.resolve(rm, custom.name)
            if sym is not None and sym.kind == "class" and sym.cls is not None:
                routes = self.class_view_routes(link, entry, sym.module, sym.cls, None, [])
                return [r for r in routes if r.method == "GET"]
        auth = self.drf_auth(link, mount.module, None, "GET", None, None, None, Evidence(mount.module.path, mount.line,
                                                                                         "router", "API root view"))
        return [self.route(link, entry, "GET", "APIRootView", auth, None, None, "drf")]

    def registration_routes(self, link: Linker, mount: RouterMount, spec: RouterSpec, reg: Registration) -> list[Route]:
        mod = reg.module
        partial = mount.partial or spec.partial
        if reg.prefix.kind == "str":
            prefix, exact = regex_to_path(str(reg.prefix.value))
            if not exact:
                partial = partial or f"router prefix {reg.prefix.value!r} approximated"
        else:
            val = link.setting_str(mod, reg.prefix.name) if reg.prefix.name else None
            prefix = val if val is not None else "{" + (reg.prefix.name or "prefix").replace(".", "_") + "}"
            if val is None:
                partial = partial or f"computed router prefix {reg.prefix.text[:60]}"
        base = mount.prefix + spec.nested_prefix + prefix
        sym = link.index.resolve(mod, reg.viewset.name) if reg.viewset.name else None
        entry_line = reg.line
        if sym is None or sym.kind != "class" or sym.cls is None:
            e = Entry(base + spec.trailing, reg.viewset, mod, entry_line, partial or "ViewSet not resolved")
            return [self.route(link, e, "ANY", reg.viewset.text[:80], AuthRequirement("unknown", [], [Evidence(
                mod.path, reg.line, "unresolved-view", f"ViewSet {reg.viewset.text[:80]} not resolved")]), None, None, "drf")]
        vmod, vcls = sym.module, sym.cls
        actions = self.viewset_actions(link, vmod, vcls, set(spec.list_map.values()) | set(spec.detail_map.values()))
        allowed = self.http_method_names(link, vmod, vcls)
        lookup = self.lookup(link, vmod, vcls)
        out: list[Route] = []
        regev = Evidence(mod.path, reg.line, "router", f"register({reg.prefix.text[:60]}, {vcls.name})")

        def emit(path: str, method: str, action: str, perms: Expr | None, func: tuple[PyModule, FunctionDef] | None) -> None:
            if allowed is not None and method not in allowed:
                return
            e = Entry(path, reg.viewset, mod, entry_line, partial)
            fm, ff = func if func is not None else (vmod, None)
            auth = self.drf_auth(link, vmod, vcls, method, action, ff, perms, regev)
            r = self.route(link, e, method, f"{vcls.name}.{action}", auth, fm, ff.line if ff else vcls.line, "drf")
            out.append(r)

        extra = self.viewset_extra_actions(link, vmod, vcls)
        if spec.custom_routes:
            for url, mp, detail in spec.custom_routes:
                if "{url_path}" in url:
                    for a in extra:
                        if detail is None or a.detail == detail:
                            p = self._fill(url, prefix, lookup, spec.trailing, a.url_path)
                            for m in a.methods:
                                emit(mount.prefix + spec.nested_prefix + p, m, a.name, a.perms, (a.module, a.func))
                    continue
                p = self._fill(url, prefix, lookup, spec.trailing, "")
                for m, act in mp.items():
                    if act in actions:
                        emit(mount.prefix + spec.nested_prefix + p, m, act, None, actions[act])
            return out
        for m, act in spec.list_map.items():
            if act in actions:
                emit(base + spec.trailing, m, act, None, actions[act])
        for a in extra:
            if not a.detail:
                for m in a.methods:
                    emit(f"{base}/{a.url_path}{spec.trailing}", m, a.name, a.perms, (a.module, a.func))
        for m, act in spec.detail_map.items():
            if act in actions:
                emit(f"{base}/{{{lookup}}}{spec.trailing}", m, act, None, actions[act])
        for a in extra:
            if a.detail:
                for m in a.methods:
                    emit(f"{base}/{{{lookup}}}/{a.url_path}{spec.trailing}", m, a.name, a.perms, (a.module, a.func))
        return out

    @staticmethod
    def _fill(url: str, prefix: str, lookup: str, trailing: str, url_path: str) -> str:
        u = url.replace("{prefix}", prefix).replace("{trailing_slash}", trailing).replace("{url_path}", url_path)
        u = u.replace("{lookup}", "(?P<" + lookup + ">[^/.]+)")
        return regex_to_path(u)[0]

    # -- ViewSets -------------------------------------------------------------------------------------
    def viewset_actions(self, link: Linker, mod: PyModule, cls: ClassDef,
                        mapped: set[str] | None = None) -> dict[str, tuple[PyModule, FunctionDef] | None]:
        """action name -> where it is defined (None: by a library mixin)."""
        key = ("actions", mod.path, cls.qualname, frozenset(mapped or ()))
        hit = link.cache.get(key)
        if hit is not None:
            return dict(hit)
        out: dict[str, tuple[PyModule, FunctionDef] | None] = {}
        names = set(self.LIST_ROUTE.values()) | set(self.DETAIL_ROUTE.values()) | (mapped or set())
        spec_names = names | {a for lst in self.VIEWSET_ACTIONS.values() for a in lst}
        for m, c, q in link.mro(mod, cls):
            if c is None:
                for a in self.VIEWSET_ACTIONS.get(q.rsplit(".", 1)[-1], ()):
                    out.setdefault(a, None)
                continue
            for meth in c.methods:
                short = meth.rsplit(".", 1)[-1]
                if short in spec_names or short.startswith("bulk_"):
                    f = m.functions.get(meth)
                    if f is not None and (short not in out or out[short] is None):
                        out[short] = (m, f)
        link.cache[key] = dict(out)
        return out

    def viewset_extra_actions(self, link: Linker, mod: PyModule, cls: ClassDef) -> list[Action]:
        key = ("extra", mod.path, cls.qualname)
        hit = link.cache.get(key)
        if hit is not None:
            return list(hit)
        seen: set[str] = set()
        out: list[Action] = []
        mappings: dict[str, list[str]] = {}
        for m, c, _q in link.mro(mod, cls):
            if c is None:
                continue
            for meth in c.methods:
                f = m.functions.get(meth)
                if f is None:
                    continue
                for d in f.decorators:
                    if d.name.endswith(".mapping." + d.last) and d.last.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                        mappings.setdefault(d.name.split(".")[0], []).append(d.last.upper())
                if f.name in seen:
                    continue
                for d in f.decorators:
                    if d.last not in self.ACTION_DECORATORS:
                        continue
                    detail = self.ACTION_DECORATORS[d.last]
                    dk = d.kw("detail")
                    if detail is None:
                        detail = bool(dk.value) if dk is not None and dk.kind == "bool" else False
                    mk = d.kw("methods")
                    methods = [str(x.value).upper() for x in mk.args if x.kind == "str"] if mk is not None else ["GET"]
                    up = d.kw("url_path")
                    url_path = str(up.value) if up is not None and up.kind == "str" else f.name
                    url_path = route_to_path(regex_to_path(url_path)[0]) if any(ch in url_path for ch in "(^$") else url_path
                    seen.add(f.name)
                    out.append(Action(f.name, detail, methods or ["GET"], url_path, d.kw("permission_classes"), f, m))
                    break
        for a in out:
            for extra in mappings.get(a.name, []):
                if extra not in a.methods:
                    a.methods.append(extra)
        link.cache[key] = list(out)
        return out

    def lookup(self, link: Linker, mod: PyModule, cls: ClassDef) -> str:
        for attr in ("lookup_url_kwarg", "lookup_field"):
            for _m, c, _q in link.mro(mod, cls):
                if c is None:
                    continue
                a = c.attrs.get(attr)
                if a is not None and a.value.kind == "str":
                    return str(a.value.value)
        return "pk"

    def is_viewset(self, link: Linker, mod: PyModule, cls: ClassDef) -> bool:
        return any(q.rsplit(".", 1)[-1] in self.VIEWSET_MARKERS and (c is None or self._vendored(m))
                   for m, c, q in link.mro(mod, cls))

    def is_api_view(self, link: Linker, mod: PyModule, cls: ClassDef) -> bool:
        return any(q.rsplit(".", 1)[-1] in self.GENERIC_API_VIEWS and (c is None or self._vendored(m))
                   for m, c, q in link.mro(mod, cls))

    @staticmethod
    def _vendored(m: PyModule) -> bool:
        """A vendored copy of DRF inside the tree (taiga's ``taiga/base/api``): its classes mark views too."""
        return "rest_framework" in m.module or "/api/" in f"/{m.path}" and m.path.rsplit("/", 1)[-1] in (
            "viewsets.py", "generics.py", "views.py", "mixins.py")

    # -- URLconf views --------------------------------------------------------------------------------
    def class_view_routes(self, link: Linker, entry: Entry, mod: PyModule, cls: ClassDef, as_view: Expr | None,
                          wrappers: list[Expr]) -> list[Route]:
        if self.is_viewset(link, mod, cls):
            mapping = as_view.arg(0) if as_view is not None else None
            if mapping is None and as_view is not None:
                mapping = as_view.kw("actions")
            if mapping is None or mapping.kind != "dict":
                return super().class_view_routes(link, entry, mod, cls, as_view, wrappers)
            actions = self.viewset_actions(link, mod, cls)
            extra = {a.name: a for a in self.viewset_extra_actions(link, mod, cls)}
            out = []
            for k, v in mapping.kwargs.items():
                if v.kind != "str":
                    continue
                act = str(v.value)
                where = actions.get(act)
                a = extra.get(act)
                func = (a.module, a.func) if a is not None else where
                fm, ff = func if func is not None else (mod, None)
                auth = self.drf_auth(link, mod, cls, k.upper(), act, ff, a.perms if a else None,
                                     Evidence(entry.module.path, entry.line, "urlconf", cls.name))
                out.append(self.route(link, entry, k.upper(), f"{cls.name}.{act}", auth, fm,
                                      ff.line if ff else cls.line, "drf"))
            return out
        if self.is_api_view(link, mod, cls):
            methods, handlers = self.api_view_methods(link, mod, cls)
            out = []
            for m in methods:
                fm, ff = handlers.get(m, (mod, None))
                auth = self.drf_auth(link, mod, cls, m, None, ff, None,
                                     Evidence(entry.module.path, entry.line, "urlconf", cls.name))
                auth = self.with_wrappers(link, entry, wrappers, auth)
                out.append(self.route(link, entry, m, ff.qualname if ff else cls.qualname, auth, fm,
                                      ff.line if ff else cls.line, "drf"))
            return out
        return super().class_view_routes(link, entry, mod, cls, as_view, wrappers)

    def schema_view_auth(self, link: Linker, entry: Entry, method: str, ev: Evidence) -> AuthRequirement:
        """drf-spectacular schema views use ``SPECTACULAR_SETTINGS['SERVE_PERMISSIONS']`` (default AllowAny)."""
        sv = link.settings.get("SPECTACULAR_SETTINGS")
        expr = sv.expr if sv is not None and sv.expr is not None and sv.expr.kind == "dict" else None
        perms = expr.kwargs.get("SERVE_PERMISSIONS") if expr is not None else None
        if perms is None:
            auth = AuthRequirement("public", [], [ev, Evidence(ev.file, ev.line, "global-default",
                                                               "SPECTACULAR_SETTINGS SERVE_PERMISSIONS default AllowAny")])
        else:
            smod = link.index.by_path.get(sv.file, entry.module) if sv is not None else entry.module
            items = perms.args if perms.kind in ("list", "tuple") else [perms]
            v = link.perms.classes_verdict(smod, items, method, Evidence(sv.file if sv else ev.file, perms.line,
                                                                         "global-default", "SERVE_PERMISSIONS"))
            state = "role" if v.state == "deny" else v.state
            auth = AuthRequirement(state, list(v.roles), [ev] + v.evidence)  # type: ignore[arg-type]
        found = self.middleware_findings(link)
        if auth.state == "public" and found:
            return AuthRequirement("authenticated", [], auth.evidence + [f[2] for f in found])
        return auth

    def api_view_methods(self, link: Linker, mod: PyModule, cls: ClassDef) -> tuple[list[str], dict[str, tuple[PyModule, FunctionDef]]]:
        handlers: dict[str, tuple[PyModule, FunctionDef]] = {}
        stock: list[str] = []
        for m, c, q in link.mro(mod, cls):
            if c is None:
                stock.extend(x for x in self.GENERIC_API_VIEWS.get(q.rsplit(".", 1)[-1], ()) if x not in stock)
                continue
            for h in self.HANDLER_METHODS:
                f = m.functions.get(f"{c.qualname}.{h}")
                if f is not None and h.upper() not in handlers:
                    handlers[h.upper()] = (m, f)
        methods = set(handlers) | set(stock)
        allowed = self.http_method_names(link, mod, cls)
        if allowed is not None:
            methods &= allowed
        return [x for x in ("GET", "POST", "PUT", "PATCH", "DELETE") if x in methods], handlers

    def external_view_routes(self, link: Linker, entry: Entry, qual: str, wrappers: list[Expr]) -> list[Route]:
        last = qual.rsplit(".", 1)[-1]
        if last in self.GENERIC_API_VIEWS and qual.startswith(("rest_framework", "rest_framework_simplejwt",
                                                                "drf_spectacular")):
            out = []
            for m in self.GENERIC_API_VIEWS[last]:
                ev = Evidence(entry.module.path, entry.line, "library-view", qual)
                if qual.startswith("drf_spectacular"):
                    auth = self.schema_view_auth(link, entry, m, ev)
                elif last in self.PUBLIC_LIBRARY_VIEWS:
                    auth = AuthRequirement("public", [], [ev])
                else:
                    auth = self.drf_auth(link, entry.module, None, m, None, None, None, ev)
                out.append(self.route(link, entry, m, qual, auth, None, None, "drf"))
            return out
        return super().external_view_routes(link, entry, qual, wrappers)

    def library_view_routes(self, link: Linker, entry: Entry, qual: str) -> list[Route] | None:
        methods = self.LIBRARY_VIEW_FUNCS.get(qual)
        if methods is None:
            return super().library_view_routes(link, entry, qual)
        ev = Evidence(entry.module.path, entry.line, "library-view", f"{qual} (credential exchange, public by design)")
        return [self.route(link, entry, m, qual, AuthRequirement("public", [], [ev]), None, None, "drf") for m in methods]

    def function_view_routes(self, link: Linker, entry: Entry, mod: PyModule, func: FunctionDef,
                             wrappers: list[Expr]) -> list[Route]:
        api = next((d for d in func.decorators if d.last == "api_view"), None)
        if api is None:
            return super().function_view_routes(link, entry, mod, func, wrappers)
        lst = api.arg(0) or api.kw("http_method_names")
        methods = [str(x.value).upper() for x in lst.args if x.kind == "str"] if lst is not None else ["GET"]
        perms = next((d.arg(0) for d in func.decorators if d.last == "permission_classes"), None)
        out = []
        for m in methods or ["GET"]:
            auth = self.drf_auth(link, mod, None, m, None, func, perms,
                                 Evidence(mod.path, api.line, "decorator", api.text[:80]))
            auth = self.with_wrappers(link, entry, wrappers, auth)
            out.append(self.route(link, entry, m, func.qualname, auth, mod, func.line, "drf"))
        return out

    def with_wrappers(self, link: Linker, entry: Entry, wrappers: list[Expr], auth: AuthRequirement) -> AuthRequirement:
        found = self.decorator_findings(link, entry.module, wrappers, entry.line)
        if not found or auth.state == "role":
            return auth
        return self.django_auth(link, entry.module, None, found)

    # -- DRF auth -------------------------------------------------------------------------------------
    def drf_auth(self, link: Linker, mod: PyModule, cls: ClassDef | None, method: str, action: str | None,
                 func: FunctionDef | None, action_perms: Expr | None, where: Evidence) -> AuthRequirement:
        v = self.permission_verdict(link, mod, cls, method, action, func, action_perms, where)
        ev = list(v.evidence)
        authn = self.authentication_note(link, mod, cls, func)
        if authn is not None:
            ev.append(authn)
        state, roles = v.state, list(v.roles)
        if state == "deny":
            state, roles = "role", ["nobody"]
        if state == "public":
            mw = self.middleware_findings(link)
            exempt = func is not None and any(d.last == "login_not_required" for d in func.decorators)
            if mw and not exempt:
                return AuthRequirement("authenticated", [], ev + [f[2] for f in mw])
        if func is not None and state in ("public", "unknown"):
            found = self.inline_requirement(link, mod, func)
            if found is not None:
                state, roles = found[0], list(found[1])
                ev.append(found[2])
        return AuthRequirement(state, roles, ev)  # type: ignore[arg-type]

    def authentication_note(self, link: Linker, mod: PyModule, cls: ClassDef | None, func: FunctionDef | None) -> Evidence | None:
        """Which authenticators identify the caller: decorator > class attribute (MRO) > settings > DRF default."""
        def describe(e: Expr, file: str, line: int, where: str) -> Evidence:
            items = e.args if e.kind in ("list", "tuple") else [e]
            if e.kind in ("list", "tuple") and not items:
                return Evidence(file, line, "authentication", f"{where} = []: no authentication, every caller is anonymous")
            names = ", ".join((str(x.value).rsplit(".", 1)[-1] if x.kind == "str" else x.text)[:40] for x in items[:4])
            return Evidence(file, line, "authentication", f"{where}: {names}")

        if func is not None:
            for d in func.decorators:
                if d.last == "authentication_classes" and d.args:
                    return describe(d.args[0], mod.path, d.line, "authentication_classes")
        if cls is not None:
            for m, c, _q in link.mro(mod, cls):
                if c is None:
                    continue
                a = c.attrs.get("authentication_classes")
                if a is not None:
                    return describe(a.value, m.path, a.line, f"{c.name}.authentication_classes")
        rf = link.settings.rest_framework.get("DEFAULT_AUTHENTICATION_CLASSES")
        if rf is not None:
            return describe(rf[0], rf[1], rf[2], "DEFAULT_AUTHENTICATION_CLASSES")
        return None

    def default_permissions(self, link: Linker, mod: PyModule, method: str, where: Evidence,
                            ignore: bool = False) -> PermVerdict:
        rf = link.settings.rest_framework.get("DEFAULT_PERMISSION_CLASSES")
        if rf is None:
            return PermVerdict("public", [], [Evidence(where.file, where.line, "global-default",
                                                       "DRF default permission AllowAny (no DEFAULT_PERMISSION_CLASSES)")])
        value, file, line = rf
        smod = link.index.by_path.get(file, mod)
        items = value.args if value.kind in ("list", "tuple") else [value]
        return link.perms.classes_verdict(smod, items, method, Evidence(file, line, "global-default",
                                                                        "REST_FRAMEWORK DEFAULT_PERMISSION_CLASSES"),
                                          ignore)

    def permission_verdict(self, link: Linker, mod: PyModule, cls: ClassDef | None, method: str, action: str | None,
                           func: FunctionDef | None, action_perms: Expr | None, where: Evidence) -> PermVerdict:
        ignore = self.ignores_model_permissions(link, mod, cls)
        if action_perms is not None:
            items = action_perms.args if action_perms.kind in ("list", "tuple") else [action_perms]
            return link.perms.classes_verdict(mod, items, method, Evidence(mod.path, action_perms.line,
                                                                           "permission-class", "method permission_classes"),
                                              ignore)
        if cls is None:
            return self.default_permissions(link, mod, method, where, ignore)
        mro = link.mro(mod, cls)
        return self._mro_permissions(link, mro, 0, method, action, where, ignore)

    def ignores_model_permissions(self, link: Linker, mod: PyModule, cls: ClassDef | None) -> bool:
        """DRF skips model permissions for views with ``_ignore_model_permissions`` (its API root view does)."""
        if cls is None:
            return True  # the router's stock API root view
        for _m, c, q in link.mro(mod, cls):
            if c is None:
                if q.endswith("routers.APIRootView"):
                    return True
                continue
            a = c.attrs.get("_ignore_model_permissions")
            if a is not None:
                return a.value.kind == "bool" and bool(a.value.value)
        return False

    def _mro_permissions(self, link: Linker, mro: list[tuple[PyModule, ClassDef | None, str]], start: int, method: str,
                         action: str | None, where: Evidence, ignore: bool = False) -> PermVerdict:
        # get_permissions overrides come first (they decide), else the nearest permission_classes
        for i in range(start, len(mro)):
            m, c, _q = mro[i]
            if c is None:
                continue
            gp = m.functions.get(f"{c.qualname}.get_permissions")
            if gp is not None:
                return self._get_permissions(link, mro, i, m, gp, method, action, where, ignore)
        # self.permission_classes is looked up on the whole MRO, whichever get_permissions asked for it
        return self._class_permissions(link, mro, 0, method, where, ignore)

    def _class_permissions(self, link: Linker, mro: list[tuple[PyModule, ClassDef | None, str]], start: int,
                           method: str, where: Evidence, ignore: bool = False) -> PermVerdict:
        for i in range(start, len(mro)):
            m, c, q = mro[i]
            if c is None:
                if q.rsplit(".", 1)[-1] in self.PUBLIC_LIBRARY_VIEWS:
                    return PermVerdict("public", [], [Evidence(where.file, where.line, "library-view", q)])
                continue
            a = c.attrs.get("permission_classes")
            if a is None:
                continue
            val = a.value
            ev = Evidence(m.path, a.line, "permission-class", f"{c.name}.permission_classes")
            if val.kind in ("list", "tuple"):
                return link.perms.classes_verdict(m, val.args, method, ev, ignore)
            if val.kind in ("name", "attr") and "DEFAULT_PERMISSION_CLASSES" in val.text:
                return self.default_permissions(link, m, method, where, ignore)
            if val.kind in ("name", "attr", "binop"):
                return link.perms.classes_verdict(m, [val], method, ev, ignore)
            return PermVerdict("unknown", [], [ev])
        return self.default_permissions(link, mro[0][0] if mro else link.project.python[0], method, where, ignore)

    def _get_permissions(self, link: Linker, mro: list[tuple[PyModule, ClassDef | None, str]], i: int, m: PyModule,
                         gp: FunctionDef, method: str, action: str | None, where: Evidence,
                         ignore: bool = False) -> PermVerdict:
        body = gp.body
        ev = Evidence(m.path, gp.line, "get-permissions", f"{gp.qualname}()")

        def outcome(ret: Expr) -> PermVerdict | None:
            by_action = re.search(r"self\.(\w+)\[\s*self\.action\s*\]", ret.text)
            if by_action:
                # [p() for p in self.permission_classes_by_action[self.action]]: a dict class attribute
                table = self._class_attr(link, mro, by_action.group(1))
                entry = table.kwargs.get(action or "") if table is not None and table.kind == "dict" else None
                if entry is None:
                    return None  # KeyError path: the next return decides
                items = entry.args if entry.kind in ("list", "tuple") else [entry]
                return link.perms.classes_verdict(m, items, method, ev, ignore)
            if "super" in ret.text and "get_permissions" in ret.text:
                return self._mro_permissions(link, mro, i + 1, method, action, where, ignore)
            if "permission_classes" in ret.text and ret.kind == "other":
                return self._class_permissions(link, mro, 0, method, where, ignore)
            if ret.kind in ("list", "tuple"):
                return link.perms.classes_verdict(m, ret.args, method, ev, ignore)
            return None

        branch_lines: set[int] = set()
        for br in body.branches:
            for r in br.returns:
                branch_lines.add(r.line)
        for br in body.branches:
            if not br.returns:
                continue
            cond = br.condition
            hit = self._cond_truth(cond, method, action)
            if hit is None:
                return PermVerdict("unknown", [], [ev, Evidence(m.path, br.line, "get-permissions",
                                                                f"runtime condition {cond.text[:80]}")])
            if hit:
                got = outcome(br.returns[0])
                return got if got is not None else PermVerdict("unknown", [], [ev])
        if body.yields and "permission_classes" in body.names and not body.branches:
            # for p in self.permission_classes: yield p(...)
            return self._class_permissions(link, mro, 0, method, where, ignore)
        finals = [r for r in body.returns if r.line not in branch_lines]
        for ret in finals:  # try/except and early returns outside any if: first that decides
            got = outcome(ret)
            if got is not None:
                return got
        return PermVerdict("unknown", [], [ev])

    @staticmethod
    def _class_attr(link: Linker, mro: list[tuple[PyModule, ClassDef | None, str]], name: str) -> Expr | None:
        for _m, c, _q in mro:
            if c is not None and name in c.attrs:
                return c.attrs[name].value
        return None

    @staticmethod
    def _cond_truth(cond: Expr, method: str, action: str | None) -> bool | None:
        """Evaluate ``self.action == 'x'`` / ``self.action in (...)`` / ``request.method ...`` statically."""
        if cond.kind == "boolop" and len(cond.args) == 2:
            a = DRF._cond_truth(cond.args[0], method, action)
            b = DRF._cond_truth(cond.args[1], method, action)
            if cond.value == "and":
                return False if a is False or b is False else (None if a is None or b is None else True)
            return True if a or b else (None if a is None or b is None else False)
        if cond.kind == "unary" and cond.value == "not" and cond.args:
            r = DRF._cond_truth(cond.args[0], method, action)
            return None if r is None else not r
        if cond.kind == "compare" and len(cond.args) == 2:
            left, right = cond.args
            ops = str(cond.value)
            if left.name.endswith(".action") or left.name == "action":
                subject = action or ""
            elif left.name.endswith(".method"):
                subject = method
            else:
                return None
            if right.kind == "str":
                vals = {str(right.value)}
            elif right.kind in ("list", "tuple", "set"):
                vals = {str(x.value) for x in right.args if x.kind == "str"}
            elif "SAFE_METHODS" in right.text:
                vals = {"GET", "HEAD", "OPTIONS"}
            else:
                return None
            if subject is method:
                vals = {v.upper() for v in vals}
            hit = subject in vals
            return (not hit) if ops in ("!=", "not in") else hit
        return None


FRAMEWORK = DRF()
