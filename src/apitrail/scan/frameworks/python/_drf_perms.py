"""What a DRF permission class allows, per HTTP method, decided from behaviour.

Stock classes come from a table (``AllowAny`` public, ``IsAuthenticated`` authenticated, ``IsAdminUser`` role,
``IsAuthenticatedOrReadOnly`` public for safe methods, ``DjangoModelPermissions`` role for methods whose
``perms_map`` lists permissions ...), honouring ``perms_map`` and ``authenticated_users_only`` overrides found in
project subclasses. A project class with its own ``has_permission`` is read as a small boolean program: each early
``return``/``raise`` under its ``if`` guard and the final ``return``, over atoms *authenticated*, *has role*, the
request method, the parent class (``super().has_permission``) and opaque conditions (settings, helper calls).
The verdict for a method comes from the truth table: allowed for anonymous users under every opaque condition ->
public; under some -> unknown (conditional, named in evidence); only with a user -> authenticated; only with a role
-> role. Operators ``&``, ``|`` and ``~`` combine classes as DRF does.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from apitrail.scan.frameworks.python._django_settings import UNKNOWN, SettingValue
from apitrail.scan.lang.python import ClassDef, Expr, FunctionDef, PyModule
from apitrail.scan.lang.python_index import PythonIndex
from apitrail.scan.model import Evidence

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PERMS_MAP: dict[str, list[str]] = {
    "GET": [], "OPTIONS": [], "HEAD": [],
    "POST": ["add"], "PUT": ["change"], "PATCH": ["change"], "DELETE": ["delete"],
}
ROLE_ATTRS = re.compile(r"\b(is_staff|is_superuser|is_admin|has_perms?|has_role|has_module_perms|role|roles|groups|"
                        r"has_object_permission|scopes?)\b")
AUTH_ATTRS = re.compile(r"\b(is_authenticated|request\.auth|\.auth\b)")
MAX_ATOMS = 8


@dataclass
class PermVerdict:
    state: str  # public, authenticated, role, unknown, deny
    roles: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)


RANK = {"public": 0, "authenticated": 1, "role": 2, "deny": 3}  # deny: never allowed (internal state)


def both(a: PermVerdict, b: PermVerdict) -> PermVerdict:
    """a AND b: the stricter; unknown only weakens a public side."""
    ev = a.evidence + b.evidence
    if a.state == "unknown" and b.state == "unknown":
        return PermVerdict("unknown", [], ev)
    if a.state == "unknown":
        return PermVerdict(b.state if b.state != "public" else "unknown", list(b.roles), ev)
    if b.state == "unknown":
        return PermVerdict(a.state if a.state != "public" else "unknown", list(a.roles), ev)
    if RANK[a.state] >= RANK[b.state]:
        roles = a.roles + [r for r in b.roles if r not in a.roles] if a.state == b.state == "role" else list(a.roles)
        return PermVerdict(a.state, roles, ev)
    return PermVerdict(b.state, list(b.roles), ev)


def either(a: PermVerdict, b: PermVerdict) -> PermVerdict:
    """a OR b: the weaker; unknown unless the other side is public."""
    ev = a.evidence + b.evidence
    if "public" in (a.state, b.state):
        return PermVerdict("public", [], ev)
    if "unknown" in (a.state, b.state):
        return PermVerdict("unknown", [], ev)
    if RANK[a.state] <= RANK[b.state]:
        return PermVerdict(a.state, list(a.roles), ev)
    return PermVerdict(b.state, list(b.roles), ev)


def _perm_names(perms: list[str]) -> list[str]:
    out = []
    for p in perms:
        m = re.search(r"\.(\w+?)_%\(model_name\)s", p)
        out.append(f"model.{m.group(1)}" if m else p.replace("%(app_label)s.", "").replace("%(model_name)s", "model"))
    return out


Pred = Callable[[dict[str, bool]], bool]
REJECTION = re.compile(r"handle_no_permission|redirect_to_login|HttpResponseForbidden|HttpResponseNotAllowed|"
                       r"PermissionDenied|NotAuthenticated|Unauthorized|Forbidden|\b40[13]\b|login", re.I)


def _rejects(e: Expr) -> bool:
    """A response or exception that refuses the request for lack of auth (or a login redirect)."""
    if "NotAllowed" in e.text:
        return False  # 405 is about the method, not the caller
    return bool(REJECTION.search(e.text))


def _guard(prior: list[Pred], cond: Pred | None) -> Pred:
    """A path's guard: no earlier returning branch was taken, and this branch's condition holds."""
    def check(env: dict[str, bool]) -> bool:
        return all(not g(env) for g in prior) and (cond is None or cond(env))
    return check


class PermissionAnalyzer:
    """Memoised verdicts for permission classes of one project."""

    # External (library) permission classes: name -> method -> (state, roles). Callables get the method and the
    # overrides found on project subclasses.
    STOCK: dict[str, str] = {
        "AllowAny": "public",
        "BasePermission": "public",
        "IsAuthenticated": "authenticated",
        "IsAdminUser": "role:staff",
        "IsAuthenticatedOrReadOnly": "safe-public:authenticated",
        "DjangoModelPermissions": "model-perms",
        "DjangoObjectPermissions": "model-perms",
        "DjangoModelPermissionsOrAnonReadOnly": "model-perms-anon",
        "HasAPIKey": "authenticated",
        "TokenHasScope": "role:scope",
        "TokenHasReadWriteScope": "role:scope",
        "TokenHasResourceScope": "role:scope",
        "IsAuthenticatedOrTokenHasScope": "authenticated",
        "TokenMatchesOASRequirements": "role:scope",
    }
    """Semantics of library permission classes (DRF, django-oauth-toolkit, djangorestframework-api-key)."""

    LIBRARY_PREFIXES = ("rest_framework", "oauth2_provider", "rest_framework_api_key", "dry_rest_permissions",
                        "rest_condition")

    def __init__(self, index: PythonIndex, setting: Callable[[str], SettingValue | None]) -> None:
        self.index = index
        self.setting = setting
        self._memo: dict[tuple[str, str, str], PermVerdict] = {}

    # -- entry points ---------------------------------------------------------------------------------
    def classes_verdict(self, mod: PyModule, exprs: list[Expr], method: str, where: Evidence,
                        ignore_model: bool = False) -> PermVerdict:
        """AND of a permission_classes list."""
        if not exprs:
            return PermVerdict("public", [], [Evidence(where.file, where.line, "permission-class",
                                                       f"{where.detail}: empty permission list")])
        out: PermVerdict | None = None
        for e in exprs:
            v = self.expr_verdict(mod, e, method, where, ignore_model=ignore_model)
            out = v if out is None else both(out, v)
        assert out is not None
        text = ", ".join((str(e.value).rsplit(".", 1)[-1] if e.kind == "str" else e.text)[:60] for e in exprs)
        return PermVerdict(out.state, out.roles, [Evidence(where.file, where.line, where.kind,
                                                           f"{where.detail}: {text}")] + out.evidence)

    def expr_verdict(self, mod: PyModule, e: Expr, method: str, where: Evidence, depth: int = 0,
                     ignore_model: bool = False) -> PermVerdict:
        if depth > 12:
            return PermVerdict("unknown")
        if e.kind == "binop" and e.value in ("&", "|") and len(e.args) == 2:
            a = self.expr_verdict(mod, e.args[0], method, where, depth + 1, ignore_model)
            b = self.expr_verdict(mod, e.args[1], method, where, depth + 1, ignore_model)
            return both(a, b) if e.value == "&" else either(a, b)
        if e.kind == "unary" or (e.kind == "other" and e.text.startswith("~")):
            return PermVerdict("unknown", [], [Evidence(where.file, where.line, "permission-class",
                                                        f"negated permission {e.text[:60]}")])
        if e.kind == "call" and e.func is not None:
            return self.expr_verdict(mod, e.func, method, where, depth + 1, ignore_model)
        if e.kind == "str" and isinstance(e.value, str):
            return self.dotted_verdict(mod, e.value, method, where, ignore_model)
        if e.kind in ("name", "attr") and e.name:
            sym = self.index.resolve(mod, e.name)
            if sym is not None and sym.kind == "class" and sym.cls is not None:
                return self.class_verdict(sym.module, sym.cls, method, where, ignore_model)
            if sym is not None and sym.kind == "assign" and sym.assign is not None and depth < 6:
                val = sym.assign.value  # PERMS = [IsAuthenticated, ...] used as permission_classes = PERMS
                if val.kind in ("list", "tuple"):
                    return self.classes_verdict(sym.module, val.args, method, where, ignore_model)
                if val.kind in ("name", "attr", "binop", "call"):
                    return self.expr_verdict(sym.module, val, method, where, depth + 1, ignore_model)
            qual = sym.external if sym is not None and sym.external else self.index.qualified_name(mod, e.name)
            return self.external_verdict(qual, method, where, {}, ignore_model)
        return PermVerdict("unknown", [], [Evidence(where.file, where.line, "permission-class",
                                                    f"permission not resolved: {e.text[:60]}")])

    def dotted_verdict(self, near: PyModule, dotted: str, method: str, where: Evidence,
                       ignore_model: bool = False) -> PermVerdict:
        modname, _, name = dotted.rpartition(".")
        target = self.index.find_module(modname, near) if modname else None
        if target is not None:
            sym = self.index.resolve(target, name)
            if sym is not None and sym.kind == "class" and sym.cls is not None:
                return self.class_verdict(sym.module, sym.cls, method, where, ignore_model)
        return self.external_verdict(dotted, method, where, {}, ignore_model)

    # -- library classes ------------------------------------------------------------------------------
    def external_verdict(self, qual: str, method: str, where: Evidence, overrides: dict[str, object],
                         ignore_model: bool = False) -> PermVerdict:
        last = qual.rsplit(".", 1)[-1]
        kind = self.STOCK.get(last)
        library = qual.startswith(self.LIBRARY_PREFIXES) or "." not in qual
        ev = Evidence(where.file, where.line, "permission-class", last)
        if kind is None or not library:
            return PermVerdict("unknown", [], [Evidence(where.file, where.line, "permission-class",
                                                        f"{where.detail}: {qual} (not analysable)")])
        if kind == "public":
            return PermVerdict("public", [], [ev])
        if kind == "authenticated":
            return PermVerdict("authenticated", [], [ev])
        if kind.startswith("role:"):
            return PermVerdict("role", [kind[5:]], [ev])
        if kind == "safe-public:authenticated":
            return PermVerdict("public" if method in SAFE_METHODS else "authenticated", [], [ev])
        # DjangoModelPermissions family
        pmap = overrides.get("perms_map")
        perms = DEFAULT_PERMS_MAP.get(method, [])
        if isinstance(pmap, dict) and method in pmap and isinstance(pmap[method], list):
            perms = [str(p) for p in pmap[method]]
        if ignore_model:
            # views with _ignore_model_permissions (DRF's API root view): only the login check applies
            perms = []
            ev = Evidence(where.file, where.line, "permission-class", f"{last} (model permissions ignored by the view)")
        auth_only: object = kind != "model-perms-anon"
        if "authenticated_users_only" in overrides:
            auth_only = overrides["authenticated_users_only"]
        if perms:
            return PermVerdict("role", _perm_names(perms), [ev])
        if auth_only is True:
            return PermVerdict("authenticated", [], [ev])
        if auth_only is False:
            return PermVerdict("public", [], [ev])
        return PermVerdict("unknown", [], [ev, Evidence(where.file, where.line, "conditional",
                                                        f"anonymous {method} allowed unless {auth_only}")])

    # -- project classes ------------------------------------------------------------------------------
    def class_verdict(self, mod: PyModule, cls: ClassDef, method: str, where: Evidence,
                      ignore_model: bool = False) -> PermVerdict:
        key = (mod.path, cls.qualname, method + ("#nomodel" if ignore_model else ""))
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        self._memo[key] = PermVerdict("unknown")  # recursion guard
        mro = list(self.index.class_mro(mod, cls))
        v = self._mro_verdict(mro, 0, method, Evidence(mod.path, cls.line, "permission-class", cls.name), ignore_model)
        self._memo[key] = v
        return v

    def _mro_verdict(self, mro: list[tuple[PyModule, ClassDef | None, str]], start: int, method: str,
                     where: Evidence, ignore_model: bool = False) -> PermVerdict:
        for i in range(start, len(mro)):
            m, c, q = mro[i]
            if c is None:
                if q.rsplit(".", 1)[-1] in self.STOCK:
                    return self.external_verdict(q, method, where, self._overrides(mro[:i]), ignore_model)
                continue
            f = m.functions.get(f"{c.qualname}.has_permission")
            if f is not None:
                return self._body_verdict(m, f, mro, i, method, where, ignore_model)
        return PermVerdict("unknown", [], [Evidence(where.file, where.line, "permission-class",
                                                    f"{where.detail} (no has_permission found)")])

    def _overrides(self, mro: list[tuple[PyModule, ClassDef | None, str]]) -> dict[str, object]:
        out: dict[str, object] = {}
        for m, c, _ in reversed(mro):  # nearest class wins
            if c is None:
                continue
            for attr in ("perms_map", "authenticated_users_only"):
                a = c.attrs.get(attr)
                if a is not None:
                    out[attr] = self._attr_value(m, a.value)
            init = m.functions.get(f"{c.qualname}.__init__")
            if init is not None:
                for a in init.body.assigns:
                    if a.target in ("self.perms_map", "self.authenticated_users_only"):
                        out[a.target[5:]] = self._attr_value(m, a.value)
        return out

    def _attr_value(self, mod: PyModule, e: Expr) -> object:
        if e.kind == "bool":
            return bool(e.value)
        if e.kind == "dict":
            return {k: [str(x.value) for x in v.args if x.kind == "str"] for k, v in e.kwargs.items()
                    if v.kind in ("list", "tuple")}
        if e.kind in ("name", "attr") and e.name:
            sv = self._setting_of(mod, e.name)
            if sv is not None:
                dflt = "" if sv.value is UNKNOWN else f" (default {sv.value!r})"
                return f"settings.{e.name.rsplit('.', 1)[-1]} is true{dflt}"
        return f"{e.text[:60]} is true"

    def _setting_of(self, mod: PyModule, name: str) -> SettingValue | None:
        head, _, attr = name.rpartition(".")
        if not head:
            return None
        q = self.index.qualified_name(mod, head)
        if q.endswith("settings") or q.endswith("conf.settings"):
            return self.setting(attr) or SettingValue(UNKNOWN, None, "", 0)
        return None

    def guard_verdict(self, mod: PyModule, f: FunctionDef, mro: list[tuple[PyModule, ClassDef | None, str]],
                      idx: int, method: str) -> PermVerdict:
        """A view's ``dispatch()`` as a guard: allowed unless a branch rejects (403/401, login redirect,
        ``handle_no_permission()``, ``raise PermissionDenied``); falling through means allowed."""
        key = (mod.path, f.qualname, "guard:" + method)
        hit = self._memo.get(key)
        if hit is None:
            self._memo[key] = PermVerdict("unknown")
            hit = self._body_verdict(mod, f, mro, idx, method, Evidence(mod.path, f.line, "dispatch", f.qualname),
                                     guard=True)
            self._memo[key] = hit
        return hit

    def _self_method(self, mro: list[tuple[PyModule, ClassDef | None, str]], name: str) -> tuple[int, PyModule, FunctionDef] | None:
        for i, (m, c, _q) in enumerate(mro):
            if c is not None:
                f = m.functions.get(f"{c.qualname}.{name}")
                if f is not None:
                    return i, m, f
        return None

    def _body_verdict(self, mod: PyModule, f: FunctionDef, mro: list[tuple[PyModule, ClassDef | None, str]],
                      idx: int, method: str, where: Evidence, ignore_model: bool = False,
                      guard: bool = False, depth: int = 0) -> PermVerdict:
        body = f.body
        atoms: dict[str, str] = {}  # key -> description of an opaque condition
        roles: list[str] = []
        parent: list[PermVerdict] = []

        def as_atom(pv: PermVerdict, key: str) -> Callable[[dict[str, bool]], bool]:
            parent.append(pv)
            if pv.state == "public":
                return lambda env: True
            if pv.state == "authenticated":
                return lambda env: env["auth"]
            if pv.state == "role":
                roles.extend(r for r in pv.roles if r not in roles)
                return lambda env: env["role"]
            if pv.state == "deny":
                return lambda env: False
            atoms.setdefault(key, key)
            return lambda env: env[key]

        def leaf(e: Expr) -> Callable[[dict[str, bool]], bool]:
            t = e.text
            if e.kind == "bool":
                val = bool(e.value)
                return lambda env: val
            if e.kind == "none":
                return lambda env: False
            if e.kind == "boolop" and len(e.args) == 2:
                a, b = leaf(e.args[0]), leaf(e.args[1])
                if e.value == "and":
                    return lambda env: a(env) and b(env)
                return lambda env: a(env) or b(env)
            if e.kind == "unary" and e.value == "not" and e.args:
                a = leaf(e.args[0])
                return lambda env: not a(env)
            if e.kind == "call" and e.last == "bool" and e.args:
                return leaf(e.args[0])
            if "method" in t and e.kind == "compare" and len(e.args) == 2:
                rhs = e.args[1]
                ops = str(e.value)
                if "SAFE_METHODS" in rhs.text:
                    hit = method in SAFE_METHODS
                else:
                    vals = {str(x.value).upper() for x in ([rhs] if rhs.kind == "str" else rhs.args) if x.kind == "str"}
                    hit = method in vals
                res = (not hit) if ops in ("not in", "!=") else hit
                return lambda env: res
            if "has_permission" in t and "super" in t and not guard:
                return as_atom(self._mro_verdict(mro, idx + 1, method, where, ignore_model), "parent permission")
            if e.kind == "call" and e.name.startswith("self.") and e.name.count(".") == 1 and depth < 3:
                found = self._self_method(mro, e.name[5:])
                if found is not None and found[2] is not f:
                    i2, m2, f2 = found
                    sub = self._body_verdict(m2, f2, mro, i2, method, Evidence(m2.path, f2.line, "permission-class",
                                                                               f2.qualname), ignore_model, False,
                                             depth + 1)
                    return as_atom(sub, t[:80])
            if "is_anonymous" in t and e.kind in ("attr", "name"):
                return lambda env: not env["auth"]
            if e.kind in ("attr", "name") and e.name:
                sv = self._setting_of(mod, e.name)
                if sv is not None:
                    key = f"settings.{e.name.rsplit('.', 1)[-1]}"
                    dflt = "" if sv.value is UNKNOWN else f" (default {sv.value!r})"
                    atoms.setdefault(key, key + dflt)
                    return lambda env: env[key]
                if e.name.endswith("is_authenticated") or re.search(r"(^|\.)request\.auth$", e.name):
                    return lambda env: env["auth"]
                if re.search(r"(^|\.)user$", e.name):
                    return lambda env: True  # request.user is always set (AnonymousUser)
            if ROLE_ATTRS.search(t) and "user" in t:
                for r in re.findall(r"is_(staff|superuser|admin)|['\"]([\w.:-]{2,40})['\"]", t):
                    name = r[0] or r[1]
                    if name and name not in roles:
                        roles.append(name)
                return lambda env: env["role"]
            if AUTH_ATTRS.search(t) and e.kind in ("attr", "name", "compare"):
                return lambda env: env["auth"]
            key = t[:80]
            atoms.setdefault(key, t[:80])
            return lambda env: env[key]

        # paths: (guard conditions, branch condition, outcome)
        clauses: list[tuple[Callable[[dict[str, bool]], bool], Callable[[dict[str, bool]], bool]]] = []
        branch_ret_lines: set[int] = set()
        guards: list[Callable[[dict[str, bool]], bool]] = []
        deny = leaf(Expr("bool", "False", 0, value=False))
        allow = leaf(Expr("bool", "True", 0, value=True))
        for br in body.branches:
            if guard:
                rejects = any(_rejects(r) for r in br.returns) or any(_rejects(r) for r in br.raises) or bool(
                    br.raises and not br.returns and any("PermissionDenied" in r.text or "Forbidden" in r.text
                                                         for r in br.raises))
                if rejects:
                    outcome = deny
                elif br.returns:
                    outcome = allow  # an early response that is not a rejection: the request is served
                else:
                    continue
            elif br.returns:
                outcome = leaf(br.returns[0])
            elif br.raises:
                outcome = deny
            else:
                continue
            for r in br.returns:
                branch_ret_lines.add(r.line)
            cond = leaf(br.condition)
            prior = list(guards)
            clauses.append((_guard(prior, cond), outcome))
            guards.append(cond)
        finals = [r for r in body.returns if r.line not in branch_ret_lines]
        if guard:
            final = deny if finals and _rejects(finals[-1]) else allow
        else:
            final = leaf(finals[-1]) if finals else deny
        prior = list(guards)
        clauses.append((_guard(prior, None), final))
        ev = [Evidence(mod.path, f.line, "permission-class", f"{f.qualname}()")]
        for pv in parent:
            ev.extend(pv.evidence)
        if len(atoms) > MAX_ATOMS:
            return PermVerdict("unknown", [], ev + [Evidence(mod.path, f.line, "permission-class",
                                                             "too many opaque conditions")])
        keys = list(atoms)

        def allowed(auth: bool, role: bool) -> list[bool]:
            out = []
            for combo in itertools.product((False, True), repeat=len(keys)):
                env = dict(zip(keys, combo, strict=True))
                env["auth"], env["role"] = auth, role
                ok = False
                for guard, outcome in clauses:
                    if guard(env):
                        ok = bool(outcome(env))
                        break
                out.append(ok)
            return out

        anon = allowed(False, False)
        if all(anon):
            return PermVerdict("public", [], ev)
        if any(anon):
            conds = ", ".join(atoms[k] for k in keys) or "a condition"
            return PermVerdict("unknown", [], ev + [Evidence(mod.path, f.line, "conditional",
                                                             f"anonymous {method} allowed depending on {conds}")])
        if any(allowed(True, False)):
            return PermVerdict("authenticated", [], ev)
        if any(allowed(True, True)):
            return PermVerdict("role", roles or ["permission"], ev)
        return PermVerdict("deny", [], ev + [Evidence(mod.path, f.line, "permission-class",
                                                      f"denies every {method} request")])
