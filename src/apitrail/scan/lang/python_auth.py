"""What a Python callable really does for authentication and authorization.

Auth is decided from behaviour, never from a name alone: a dependency, decorator or hook counts as
authentication when it rejects with 401/403 (raise or abort), validates a token (jwt.decode with a key,
verify calls), reads a security scheme (OAuth2PasswordBearer, HTTPBearer, APIKeyHeader ...), or checks
``is_authenticated``. It counts as a role check when it compares the caller's role, superuser or admin flag,
or calls a permission checker. Callees are followed across files up to a small depth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from apitrail.scan.lang.python import Expr, FunctionDef, PyModule
from apitrail.scan.lang.python_index import PythonIndex, Symbol
from apitrail.scan.model import Evidence

SECURITY_SCHEME_CLASSES = frozenset({
    "OAuth2PasswordBearer", "OAuth2AuthorizationCodeBearer", "OAuth2", "HTTPBearer", "HTTPBasic", "HTTPDigest",
    "APIKeyHeader", "APIKeyCookie", "APIKeyQuery", "OpenIdConnect", "HTTPAuthorizationCredentials",
})
TOKEN_VERIFY_CALLS = re.compile(
    r"(^|\.)(jwt\.decode|decode_token|decode_jwt|verify_jwt|verify_token|validate_token|verify_id_token|"
    r"verify_access_token|check_token|token_required|authenticate|get_current_user|verify_signature|"
    r"verify_password_reset_token|jws\.verify|jwt\.verify|jose\.jwt\.decode|authenticate_credentials|"
    r"validate_jwt|introspect|verify_api_key|check_api_key|verify_auth|verify_jwt_in_request|"
    r"verify_fresh_jwt_in_request|verify_jwt_refresh_token_in_request)$",
    re.I,
)
UNAUTH_STATUS = re.compile(r"\b(401|403|HTTP_401_UNAUTHORIZED|HTTP_403_FORBIDDEN|UNAUTHORIZED|FORBIDDEN)\b")
ROLE_WORDS = re.compile(r"\b(is_superuser|is_admin|is_staff|role|roles|permission|permissions|scopes?|admin|"
                        r"has_perm|has_role|is_owner|groups?)\b", re.I)
REJECT_CALLS = frozenset({"abort", "HTTPException", "Forbidden", "Unauthorized", "PermissionDenied",
                          "NotAuthenticated", "AuthenticationFailed", "HTTPUnauthorized", "HTTPForbidden",
                          "StarletteHTTPException", "AuthenticationError", "AuthorizationError"})
# exception classes whose name says they reject the caller (project or library classes, e.g. fastcrud's
# ForbiddenException), wherever the word sits in the class name
REJECT_CLASS_WORDS = re.compile(r"Unauthori[sz]ed|Forbidden|PermissionDenied|NotAuthenticated|Unauthenticated|"
                                r"NotAuthorized|AccessDenied|InvalidCredential|InsufficientScope|"
                                r"InsufficientPermission|NotPermitted")
LOGIN_REDIRECT = re.compile(r"login|signin|sign_in", re.I)


@dataclass
class AuthVerdict:
    authn: bool = False
    role: bool = False
    roles: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    optional: bool = False  # auth looked at but not enforced (auto_error=False, returns None)

    def merge(self, other: AuthVerdict) -> None:
        self.authn = self.authn or other.authn
        self.role = self.role or other.role
        for r in other.roles:
            if r not in self.roles:
                self.roles.append(r)
        self.evidence.extend(other.evidence)


def _is_reject(e: Expr) -> bool:
    """raise HTTPException(401) / abort(403) / raise PermissionDenied ..."""
    last = e.last or e.name
    if last in REJECT_CALLS or last.endswith(("Unauthorized", "Forbidden", "PermissionDenied", "NotAuthenticated",
                                              "AuthenticationFailed", "AuthError", "Unauthenticated",
                                              "InvalidToken", "NotAuthorized", "AccessDenied")):
        if last in ("abort", "HTTPException", "StarletteHTTPException"):
            return bool(UNAUTH_STATUS.search(e.text))
        return True
    if last[:1].isupper() and REJECT_CLASS_WORDS.search(last):
        return True  # ForbiddenException, UnauthorizedError, InvalidCredentialException, InsufficientScopeError
    return bool(e.kind == "call" and UNAUTH_STATUS.search(e.text) and "status" in e.text.lower())


def _role_names(text: str) -> list[str]:
    return sorted(set(re.findall(r"['\"]([A-Za-z_][\w:.-]{1,40})['\"]", text)))[:5]


class AuthAnalyzer:
    """Memoised behaviour analysis of callables in a PythonIndex."""

    def __init__(self, index: PythonIndex) -> None:
        self.index = index
        self._memo: dict[tuple[str, str], AuthVerdict] = {}

    def callable_verdict(self, module: PyModule, func: FunctionDef, depth: int = 0) -> AuthVerdict:
        key = (module.path, func.qualname)
        if key in self._memo:
            return self._memo[key]
        verdict = AuthVerdict()
        self._memo[key] = verdict  # recursion guard
        self._analyze(module, func, verdict, depth)
        return verdict

    def symbol_verdict(self, sym: Symbol | None, depth: int = 0) -> AuthVerdict:
        if sym is None:
            return AuthVerdict()
        if sym.kind == "function" and sym.func is not None:
            return self.callable_verdict(sym.module, sym.func, depth)
        if sym.kind == "class" and sym.cls is not None:
            # callable class dependency: look at __call__ (and __init__ for role lists)
            v = AuthVerdict()
            for meth in ("__call__", "__init__"):
                f = sym.module.functions.get(f"{sym.cls.qualname}.{meth}")
                if f is not None:
                    v.merge(self.callable_verdict(sym.module, f, depth))
            if sym.cls.name in SECURITY_SCHEME_CLASSES:
                v.authn = True
            for _, c, q in self.index.class_mro(sym.module, sym.cls):
                if c is None and q.rsplit(".", 1)[-1] in SECURITY_SCHEME_CLASSES:
                    v.authn = True
                    v.evidence.append(Evidence(sym.module.path, sym.cls.line, "security-scheme", q))
            return v
        if sym.kind == "assign" and sym.assign is not None:
            val = sym.assign.value
            if val.kind == "call":
                last = val.last
                if last in SECURITY_SCHEME_CLASSES:
                    v = AuthVerdict(authn=True, evidence=[Evidence(sym.module.path, sym.assign.line, "security-scheme", val.text)])
                    ae = val.kw("auto_error")
                    if ae is not None and ae.kind == "bool" and ae.value is False:
                        v.authn, v.optional = False, True
                    return v
                # factory call: Authenticator(required=True, ...) / RoleChecker(["admin"]) -> class or function
                target = self.index.resolve(sym.module, val.name) if val.name else None
                if target is not None and target.kind == "class":
                    v = self.symbol_verdict(target, depth + 1)
                    out = AuthVerdict(v.authn, v.role, list(v.roles), list(v.evidence), v.optional)
                    if out.role and not out.roles:
                        out.roles = _role_names(val.text)
                    req = val.kw("required")
                    if req is not None and req.kind == "bool" and req.value is False:
                        out.authn, out.optional = False, True
                    return out
                if target is not None and target.kind == "function" and target.func is not None:
                    # a factory that returns a closure: analyse inner functions
                    v = self.callable_verdict(target.module, target.func, depth + 1)
                    inner = AuthVerdict()
                    for q, f in target.module.functions.items():
                        if q.startswith(f"{target.func.qualname}.<locals>."):
                            inner.merge(self.callable_verdict(target.module, f, depth + 1))
                    inner.merge(v)
                    return inner
        return AuthVerdict()

    def _analyze(self, module: PyModule, func: FunctionDef, v: AuthVerdict, depth: int) -> None:
        body = func.body
        path = module.path
        # 1. rejects with 401/403
        for r in body.raises:
            if _is_reject(r):
                v.authn = True
                v.evidence.append(Evidence(path, r.line, "rejects", r.text[:120]))
                break
        for c in body.calls:
            if c.last == "abort" and UNAUTH_STATUS.search(c.text):
                v.authn = True
                v.evidence.append(Evidence(path, c.line, "rejects", c.text[:120]))
                break
        # 2. token validation calls
        for c in body.calls:
            nm = c.name or ".".join(c.chain())
            if nm and TOKEN_VERIFY_CALLS.search(nm):
                if nm.endswith("decode") and not c.args:
                    continue
                v.authn = True
                v.evidence.append(Evidence(path, c.line, "token-validation", c.text[:120]))
                break
        # 3. security schemes in parameters (Depends(oauth2_scheme), Security(api_key), HTTPBearer())
        for p in func.params:
            for e in ([p.default] if p.default else []) + ([p.annotation] if p.annotation else []):
                for call in e.iter_calls():
                    if call.last in ("Depends", "Security") and call.args:
                        dep = call.args[0]
                        ae = dep.kw("auto_error") if dep.kind == "call" else None
                        if ae is not None and ae.kind == "bool" and ae.value is False:
                            continue  # Security(HTTPBearer(auto_error=False)): optional, not enforced
                        sub = self.index.resolve(module, dep.name) if dep.name else None
                        if dep.kind == "call" and dep.last in SECURITY_SCHEME_CLASSES:
                            v.authn = True
                            v.evidence.append(Evidence(path, dep.line, "security-scheme", dep.text[:120]))
                        elif sub is not None and depth < 4:
                            sv = self.symbol_verdict(sub, depth + 1)
                            if sv.authn or sv.role:
                                v.merge(sv)
                                if not sv.evidence:
                                    v.evidence.append(Evidence(path, call.line, "dependency", call.text[:120]))
                    elif call.last in SECURITY_SCHEME_CLASSES:
                        v.authn = True
                        v.evidence.append(Evidence(path, call.line, "security-scheme", call.text[:120]))
        # 4. is_authenticated / login redirects / request.user checks in a branch that rejects
        for br in body.branches:
            cond = br.condition.text
            rejects = any(_is_reject(r) for r in br.raises) or any(
                (c.last == "abort" and UNAUTH_STATUS.search(c.text)) or (c.last == "redirect" and LOGIN_REDIRECT.search(c.text))
                for c in br.calls) or any(
                UNAUTH_STATUS.search(r.text) or LOGIN_REDIRECT.search(r.text) for r in br.returns)
            if not rejects:
                continue
            if re.search(r"is_authenticated|is_anonymous|current_user|request\.user|\buser\b|token|session|auth|api[_-]?key|apikey|credential|signature", cond, re.I):
                v.authn = True
                v.evidence.append(Evidence(path, br.line, "inline-check", cond[:120]))
            if ROLE_WORDS.search(cond):
                v.role = True
                v.authn = True
                for role in _role_names(cond):
                    if role not in v.roles:
                        v.roles.append(role)
                v.evidence.append(Evidence(path, br.line, "role-check", cond[:120]))
        # 5. follow callees (helpers that do the check), bounded
        if depth < 3:
            for c in body.calls[:60]:
                if not c.name or c.last in REJECT_CALLS:
                    continue
                sym = self.index.resolve(module, c.name)
                if sym is None or sym.kind != "function" or sym.func is None or sym.func is func:
                    continue
                callee = self.callable_verdict(sym.module, sym.func, depth + 1)
                if callee.authn or callee.role:
                    v.authn = v.authn or callee.authn
                    v.role = v.role or callee.role
                    for role in callee.roles:
                        if role not in v.roles:
                            v.roles.append(role)
                    v.evidence.append(Evidence(path, c.line, "calls-auth-helper", c.text[:120]))
        # optional auth: returns None instead of rejecting and never rejects
        if not v.authn and any(r.kind == "none" for r in body.returns) and any(
                TOKEN_VERIFY_CALLS.search(c.name or "") for c in body.calls):
            v.optional = True
