"""Auth of Flask-family routes, decided from behaviour.

Sources, outermost first: app-wide ``before_request`` hooks, blueprint hooks (and their parents'), view-class
``decorators`` / ``method_decorators``, the view's own decorators that sit below the route decorator, the
OpenAPI ``security`` connexion enforces, and inline checks in the handler body. A project decorator is
resolved and its wrapper analysed (``AuthAnalyzer``); decorator factories and decorator classes are followed
through their returns. Library decorators whose behaviour is documented (flask-login, flask-jwt-extended,
flask-httpauth, flask-security) come from a table on the plugin, with their opt-out arguments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from apitrail.scan.lang.python import BodyFacts, Expr, FunctionDef, PyModule
from apitrail.scan.lang.python_auth import UNAUTH_STATUS, AuthAnalyzer, AuthVerdict
from apitrail.scan.lang.python_index import PythonIndex, Symbol
from apitrail.scan.model import AuthRequirement, Evidence

ROLE_HINT = re.compile(r"permission|role|admin|superuser|is_staff|scope|group|privilege", re.I)
CREDENTIAL_CHECK = re.compile(r"check_password|verify_password|checkpw|password_hash|authenticate_user|"
                              r"create_access_token|encode_auth_token|login_user|issue_token", re.I)
# decorators that never decide auth; skipped quietly when unresolved
NEUTRAL_DECORATORS = re.compile(r"wraps|cache|cached|memoize|limit|cross_origin|marshal|doc|response|arguments|"
                                r"expect|param|validate|use_kwargs|paginate|etag|json|csrf|timed|trace|log|"
                                r"deprecated|retry|route|property|classmethod|staticmethod|abstractmethod", re.I)
# a check rejects anonymous callers when it tests for a *missing* identity ("if not user", "token is None")
NEGATED = re.compile(r"\bnot\b|\bis None\b|== ?None|!=|\bfalse\b", re.I)
IDENTITY = re.compile(r"user|uid|is_authenticated|is_anonymous|token|auth|login|identity|principal|api_?key|"
                      r"logged|account|member|role|admin|permission", re.I)
NOT_IDENTITY = re.compile(r"csrf|nonce|xsrf|captcha|rate|limit", re.I)
ENFORCING_KINDS = frozenset({"token-validation", "security-scheme", "dependency", "calls-auth-helper"})
ONE_OFF = re.compile(r"token|confirm|reset|invite|verif|activat|magic|signed|serializer|loads", re.I)
URL_FREE = re.compile(r"request|header|session|cookie|g\.|current_user|authorization", re.I)
AUTHISH = re.compile(r"auth|login|token|jwt|permission|role|admin|require|protect", re.I)


@dataclass
class Exemptions:
    """Requests a before_request hook lets through before it checks anything (allow-lists)."""

    endpoints: set[str] = field(default_factory=set)  # "login", "auth.login"
    blueprints: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)  # path prefixes
    only_endpoints: set[str] | None = None  # the hook checks only these endpoints

    def exempts(self, endpoint: str, blueprints: list[str], path: str) -> bool:
        names = {endpoint, endpoint.rsplit(".", 1)[-1]}
        if self.only_endpoints is not None and not (names & self.only_endpoints):
            return True
        if names & self.endpoints or set(blueprints) & self.blueprints:
            return True
        return any(path == p.rstrip("/") or path.startswith(p.rstrip("/") + "/") for p in self.paths if p)


@dataclass
class AuthSource:
    """One contribution to a route's auth: its strength and where it came from."""

    strength: str  # authn, role, optional, unknown, none
    evidence: list[Evidence] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    note: str = ""  # e.g. decorator placed above the route decorator
    exempt: Exemptions | None = None  # hooks only


def _strings(e: Expr) -> list[str]:
    out = []
    for x in [e, *e.args, *e.kwargs.values()]:
        if x.kind == "str" and isinstance(x.value, str):
            out.append(x.value)
        elif x.kind in ("list", "tuple", "set"):
            out.extend(a.value for a in x.args if a.kind == "str" and isinstance(a.value, str))
    return out


@dataclass
class Behaviour(AuthVerdict):
    opaque: bool = False  # calls auth-looking code outside the tree


class FlaskAuth:
    """Resolve decorators, hooks and handler bodies to AuthSources (memoised per callee)."""

    def __init__(self, index: PythonIndex, analyzer: AuthAnalyzer, library: Mapping[str, str],
                 instance_auth: Mapping[str, str]) -> None:
        self.index = index
        self.analyzer = analyzer
        self.library = library  # qualified decorator -> authn | role
        self.instance_auth = instance_auth  # class of an auth object (HTTPBasicAuth) -> its decorator method
        self._memo: dict[tuple[str, str], Behaviour] = {}

    # -- behaviour of a callable, following factories --------------------------------------------------
    def behaviour(self, sym: Symbol | None, depth: int = 0) -> Behaviour:
        out = Behaviour()
        if sym is None or depth > 4:
            return out
        key = (sym.module.path, f"{sym.kind}:{sym.name}")
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = out
        funcs: list[tuple[PyModule, FunctionDef]] = []
        if sym.kind == "function" and sym.func is not None:
            funcs.append((sym.module, sym.func))
        elif sym.kind == "class" and sym.cls is not None:
            for meth in ("__call__", "__init__"):
                f = sym.module.functions.get(f"{sym.cls.qualname}.{meth}")
                if f is not None:
                    funcs.append((sym.module, f))
        elif sym.kind == "assign" and sym.assign is not None and sym.assign.value.name:
            target = self.index.resolve(sym.module, sym.assign.value.name)
            if target is not None and target != sym:
                tb = self.behaviour(target, depth + 1)
                out.merge(tb)
                out.optional = out.optional or tb.optional
                out.opaque = out.opaque or tb.opaque
        for mod, f in funcs:
            inner = [g for q, g in mod.functions.items() if q.startswith(f"{f.qualname}.<locals>.")]
            for g in [f, *inner]:
                v = self.analyzer.callable_verdict(mod, g)
                out.merge(v)
                out.optional = out.optional or v.optional
                if not v.role and v.authn and self._rejects_403(g) and self._mentions_roles(g):
                    out.role = True
                # composes a library decorator or auth object: `return login_required(fn)`, `oauth.require_oauth()`
                for c in g.body.calls:
                    if not c.name:
                        continue
                    csym = self.index.resolve(mod, c.name)
                    src = self._known_source(mod, c, mod.path, csym)
                    if src is not None and src.strength in ("authn", "role"):
                        out.authn = True
                        out.role = out.role or src.strength == "role"
                        out.evidence.extend(src.evidence)
                        break
                    if (csym is None or csym.kind == "unresolved") and AUTHISH.search(c.last or ""):
                        out.opaque = True  # hands the request to auth code we cannot read
                # factories: `return require_permission("admin")(fn)` / `return Checker(perm)`
                for r in g.body.returns:
                    for c in r.iter_calls():
                        if not c.name:
                            continue
                        sub = self.index.resolve(mod, c.name)
                        if sub is not None and sub.kind in ("function", "class") and sub != sym:
                            sv = self.behaviour(sub, depth + 1)
                            out.opaque = out.opaque or sv.opaque
                            if sv.authn or sv.role:
                                out.merge(sv)
                                for s in _strings(c):
                                    if out.role and s not in out.roles and len(out.roles) < 5:
                                        out.roles.append(s)
        self._memo[key] = out
        return out

    @staticmethod
    def _rejects_403(f: FunctionDef) -> bool:
        b = f.body
        return any("403" in x.text or "Forbidden" in x.text or "FORBIDDEN" in x.text
                   for x in [*b.raises, *b.calls, *b.returns])

    @staticmethod
    def _mentions_roles(f: FunctionDef) -> bool:
        b = f.body
        return any(ROLE_HINT.search(n) for n in b.names) or any(ROLE_HINT.search(c.name or "") for c in b.calls)

    # -- decorators -------------------------------------------------------------------------------------
    def _known_source(self, module: PyModule, deco: Expr, file: str, sym: Symbol | None) -> AuthSource | None:
        """Library decorators and auth objects (tables on the plugin); None when the callee is not one of them."""
        call = deco if deco.kind == "call" else None
        name = deco.name
        qual = sym.external if sym is not None and sym.external else self.index.qualified_name(module, name)
        ev_detail = deco.text[:120]
        opt = AuthSource("optional", [Evidence(file, deco.line, "decorator", f"{ev_detail} (optional)")])
        lib = self._library(qual)
        if lib == "optional":
            return opt
        if lib is not None:
            if call is not None and self._opted_out(call):
                return opt
            roles = _strings(call) if call is not None and lib == "role" else []
            return AuthSource(lib, [Evidence(file, deco.line, "decorator", ev_detail)], roles)
        # require_oauth("scope") where require_oauth = ResourceProtector(): the instance is the decorator
        if sym is not None and sym.kind == "assign" and sym.assign is not None and sym.assign.value.kind == "call":
            cq = self.index.qualified_name(sym.module, sym.assign.value.name)
            if any(cq.endswith(cls) and dm == "__call__" for cls, dm in self.instance_auth.items()):
                return AuthSource("authn", [Evidence(file, deco.line, "decorator", ev_detail)])
        # auth.login_required where auth = HTTPBasicAuth() / HTTPTokenAuth() / MultiAuth()
        if "." in name:
            base, _, meth = name.rpartition(".")
            bsym = self.index.resolve(module, base)
            if bsym is not None and bsym.kind == "assign" and bsym.assign is not None and bsym.assign.value.kind == "call":
                cq = self.index.qualified_name(bsym.module, bsym.assign.value.name)
                for cls, spec in self.instance_auth.items():
                    dmeth, _, strength = spec.partition("=")
                    if cq.endswith(cls) and meth == dmeth:
                        if call is not None and self._opted_out(call):
                            return opt
                        role = strength == "role" or (call is not None and call.kw("role") is not None)
                        roles = _strings(call.kw("role") or Expr("none", "", 0)) if call is not None else []
                        return AuthSource("role" if role else "authn", [Evidence(file, deco.line, "decorator", ev_detail)],
                                          roles)
        return None

    def decorator(self, module: PyModule, deco: Expr, file: str) -> AuthSource | None:
        """What a decorator (or a view_func wrapper call) does for auth; None when it is not about auth."""
        call = deco if deco.kind == "call" else None
        name = deco.name
        if not name:
            return None
        sym = self.index.resolve(module, name)
        qual = sym.external if sym is not None and sym.external else self.index.qualified_name(module, name)
        ev_detail = deco.text[:120]
        known = self._known_source(module, deco, file, sym)
        if known is not None:
            return known
        if sym is not None and sym.kind == "assign" and "." in name:
            # ns.login_required(...) where ns = CustomNamespace(...): the method of the object's class
            meth_name = name.rpartition(".")[2]
            msym = self._instance_method(sym, meth_name)
            v = self.behaviour(msym) if msym is not None else Behaviour()
            if v.role or v.authn:
                roles = list(v.roles) or (_strings(call) if call is not None else [])
                return AuthSource("role" if v.role else "authn",
                                  [Evidence(file, deco.line, "decorator", ev_detail)] + v.evidence[:3],
                                  roles if v.role else [])
            if AUTHISH.search(meth_name) and not NEUTRAL_DECORATORS.fullmatch(meth_name) and (
                    msym is None or v.opaque):
                return AuthSource("unknown", [Evidence(file, deco.line, "unresolved-decorator", ev_detail)])
            return None
        if sym is None or sym.kind == "unresolved" or sym.kind == "module":
            last = name.rsplit(".", 1)[-1]
            if AUTHISH.search(last) and not NEUTRAL_DECORATORS.fullmatch(last):
                return AuthSource("unknown", [Evidence(file, deco.line, "unresolved-decorator", f"{ev_detail} ({qual})")])
            return None
        v = self.behaviour(sym)
        if v.role or v.authn:
            roles = list(v.roles) or (_strings(call) if call is not None else [])
            strength = "role" if v.role else "authn"
            ev = [Evidence(file, deco.line, "decorator", ev_detail)] + v.evidence[:3]
            return AuthSource(strength, ev, roles if strength == "role" else [])
        if v.optional:
            return AuthSource("optional", [Evidence(file, deco.line, "decorator", f"{ev_detail} (optional)")])
        return None

    def _instance_method(self, sym: Symbol, meth: str) -> Symbol | None:
        """The method `meth` of the project class an assigned object is an instance of."""
        if sym.assign is None or sym.assign.value.kind != "call" or not sym.assign.value.name:
            return None
        cls = self.index.resolve(sym.module, sym.assign.value.name)
        if cls is None or cls.kind != "class" or cls.cls is None:
            return None
        for cm, cc, _ in self.index.class_mro(cls.module, cls.cls):
            if cc is not None:
                f = cm.functions.get(f"{cc.qualname}.{meth}")
                if f is not None:
                    return Symbol(cm, "function", f.qualname, func=f)
        return None

    def _library(self, qual: str) -> str | None:
        for k, v in self.library.items():
            if qual == k or qual.endswith("." + k.rsplit(".", 1)[-1]) and qual.split(".")[0] == k.split(".")[0]:
                return v
        return None

    @staticmethod
    def _opted_out(call: Expr) -> bool:
        opt = call.kw("optional")
        return opt is not None and opt.kind == "bool" and opt.value is True

    # -- hooks and handlers -----------------------------------------------------------------------------
    @staticmethod
    def _enforcing(evidence: list[Evidence], func: FunctionDef | None = None, file: str = "") -> list[Evidence]:
        """Evidence that rejects an anonymous caller (not just a banned one, or one that sent a bad token)."""
        # a check nested under a positive condition ("if token: validate") runs only when a credential was sent
        guarded: set[int] = set()
        if func is not None:
            for br in func.body.branches:
                if not NEGATED.search(br.condition.text):
                    guarded.update(x.line for x in [*br.calls, *br.raises, *br.returns])
        out = []
        for e in evidence:
            if e.file == file and e.line in guarded:
                continue
            if e.kind in ENFORCING_KINDS or (e.kind == "rejects" and "401" in e.detail):
                out.append(e)
            elif (e.kind in ("inline-check", "role-check") and NEGATED.search(e.detail)
                  and IDENTITY.search(e.detail) and not NOT_IDENTITY.search(e.detail)):
                out.append(e)
        return out

    def hook(self, module: PyModule, func: FunctionDef, file: str, line: int, where: str) -> AuthSource | None:
        """A before_request hook: its body, and the decorators wrapped around it (``@auth.login_required``)."""
        v = self.behaviour(Symbol(module, "function", func.qualname, func=func))
        deco = [s for s in (self.decorator(module, d, module.path) for d in func.decorators) if s is not None]
        enforced = [s for s in deco if s.strength in ("authn", "role")]
        body_ev = self._enforcing(v.evidence, func, module.path) if (v.authn or v.role) else []
        if not (body_ev or enforced):
            return None
        role = (v.role and bool(body_ev)) or any(s.strength == "role" for s in enforced)
        roles = list(v.roles) + [r for s in enforced for r in s.roles]
        ev = [Evidence(file, line, "before-request-hook", f"{where}: {func.name}")] + body_ev[:3]
        ev += [e for s in enforced for e in s.evidence[:2]]
        return AuthSource("role" if role else "authn", ev, roles if role else [], exempt=self._exemptions(module, func))

    def _literals(self, module: PyModule, e: Expr) -> set[str]:
        """String literals in a condition, with names bound to literal collections resolved."""
        out: set[str] = set()
        stack = [e]
        while stack:
            cur = stack.pop()
            if cur.kind == "str" and isinstance(cur.value, str):
                out.add(cur.value)
            elif cur.kind in ("name", "attr") and cur.name and not cur.name.startswith("request"):
                sym = self.index.resolve(module, cur.name)
                if sym is not None and sym.kind == "assign" and sym.assign is not None:
                    v = sym.assign.value
                    if v.kind in ("list", "tuple", "set"):
                        out.update(a.value for a in v.args if a.kind == "str" and isinstance(a.value, str))
            stack.extend(cur.args)
            stack.extend(cur.kwargs.values())
            if cur.func is not None:
                stack.append(cur.func)
        return out

    def _exemptions(self, module: PyModule, func: FunctionDef) -> Exemptions | None:
        """Allow-lists: ``if request.endpoint in PUBLIC: return`` or ``if request.endpoint not in OPEN and ...: 401``."""
        ex = Exemptions()
        found = False
        for br in func.body.branches:
            cond = br.condition.text
            if not re.search(r"request\.(endpoint|path|blueprint|url_rule)", cond):
                continue
            rejects = any(UNAUTH_STATUS.search(x.text) or "redirect" in x.text
                          for x in [*br.raises, *br.returns, *br.calls])
            negated = bool(re.search(r"\bnot in\b|!=", cond))
            lits = self._literals(module, br.condition)
            if not lits:
                continue
            found = True
            paths = {x for x in lits if x.startswith("/")}
            names = lits - paths
            if rejects and not negated:
                ex.only_endpoints = (ex.only_endpoints or set()) | names  # only the listed endpoints are checked
                continue
            ex.paths |= paths
            if "request.blueprint" in cond and "request.endpoint" not in cond:
                ex.blueprints |= names
            else:
                ex.endpoints |= names
        return ex if found else None

    def _issues_credentials(self, module: PyModule, func: FunctionDef) -> bool:
        """The handler (or a helper it calls) verifies a password or logs the caller in / issues a token."""
        calls = list(func.body.calls)
        for c in func.body.calls[:40]:
            if not c.name:
                continue
            sym = self.index.resolve(module, c.name)
            if sym is not None and sym.kind == "function" and sym.func is not None and sym.func is not func:
                calls.extend(sym.func.body.calls)
        return any(CREDENTIAL_CHECK.search(c.name or "") for c in calls)

    def _helper_rejects(self, module: PyModule, body: BodyFacts, line: int) -> bool:
        for c in body.calls:
            if c.line != line or not c.name:
                continue
            sym = self.index.resolve(module, c.name)
            if sym is not None and sym.kind == "function" and sym.func is not None:
                hv = self.analyzer.callable_verdict(sym.module, sym.func)
                if self._enforcing([e for e in hv.evidence if e.kind in ("rejects", "inline-check", "role-check")],
                                   sym.func, sym.module.path):
                    return True
        return False

    def inline(self, module: PyModule, func: FunctionDef) -> AuthSource | None:
        """Checks inside the handler: abort(401) branches, token validators whose failure the handler rejects."""
        b = func.body
        if self._issues_credentials(module, func):
            return None  # a login / token-issuing endpoint checks credentials, it does not require auth
        v = self.analyzer.callable_verdict(module, func)
        if not (v.authn or v.role):
            return None
        # a token taken from the URL (reset/confirm/invite links) is the credential of a one-off flow, not a
        # check of the caller: drop evidence whose call only consumes path parameters
        params = {p.name for p in func.params} - {"self", "cls"}
        kept = []
        for e in v.evidence:
            calls = [c for c in b.calls if c.line == e.line] if e.file == module.path else []
            if calls and all((c.names() & params) and not URL_FREE.search(c.text) and ONE_OFF.search(c.text)
                             for c in calls):
                continue
            kept.append(e)
        kept = self._enforcing(kept, func, module.path)
        if not kept:
            return None
        v = AuthVerdict(v.authn, v.role, v.roles, kept, v.optional)
        direct = {"rejects", "inline-check", "role-check"}
        handler_rejects = any(UNAUTH_STATUS.search(x.text) for x in [*b.returns, *b.raises]) or any(
            c.last in ("abort", "Response", "make_response", "jsonify") and UNAUTH_STATUS.search(c.text) for c in b.calls)
        # a validator or helper enforces only if it rejects itself, or the handler rejects after calling it
        # (a helper that just reads the caller, e.g. for optional personalisation, does not)
        if not (any(e.kind in direct for e in v.evidence) or handler_rejects or any(
                e.kind == "calls-auth-helper" and self._helper_rejects(module, b, e.line) for e in v.evidence)):
            return None
        ev = [Evidence(e.file, e.line, "inline-check" if e.file == module.path else e.kind, e.detail)
              for e in v.evidence[:4]]
        role = v.role
        return AuthSource("role" if role else "authn", ev, list(v.roles) if role else [])


def combine(sources: list[AuthSource]) -> AuthRequirement:
    """Strongest enforced source wins: role > authn > unknown > public. Notes are kept as evidence."""
    evidence: list[Evidence] = []
    roles: list[str] = []
    strengths = {s.strength for s in sources}
    for s in sources:
        if s.strength in ("authn", "role", "unknown") or s.note or s.strength == "optional":
            evidence.extend(s.evidence)
        for r in s.roles:
            if r not in roles:
                roles.append(r)
    if "role" in strengths:
        return AuthRequirement("role", roles, evidence)
    if "authn" in strengths:
        return AuthRequirement("authenticated", [], evidence)
    if "unknown" in strengths:
        return AuthRequirement("unknown", [], evidence)
    return AuthRequirement("public", [], evidence)
