"""Handler facts for the rules: what each route handler (and the helpers it calls) does with request data.

`attach_handler_facts(project, model)` fills every Route's HandlerFacts and appends project-level facts
(CORS middleware, debug flags, allowed hosts, secret literals, JWT calls, password compares) to
``model.settings`` so that rules read data and never parse.

Data flow is deliberately small and explainable: names are *tainted* when they come from the request (path,
query and body parameters, ``request.args``/``request.json``/``request.data``/``self.kwargs``), and *identity*
when they come from the authenticated caller (``current_user``, ``request.user``, a token validator's result,
an auth dependency). Both propagate through assignments in source order, and through calls into helpers in
the tree (arguments mapped to parameters, bounded depth).
"""

from __future__ import annotations

import copy
import dataclasses
import io
import multiprocessing as mp
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from apitrail.scan.lang.python import Expr, FunctionDef, PyModule
from apitrail.scan.model import AppModel, DataAccess, Evidence, HandlerFacts, Route
from apitrail.secret_patterns import PROVIDER_KEYS, PROVIDER_LITERALS

MAX_DEPTH = 3
PATH_PARAM_RE = re.compile(r"\{([A-Za-z_]\w*)(?::[^}]*)?\}|<(?:[^:<>]+:)?([A-Za-z_]\w*)>")

# request sources: expressions whose value is client-controlled
REQUEST_SOURCES = re.compile(
    r"^(request\.(args|form|values|json|data|files|get_json|GET|POST|query_params|path_params|body|query|"
    r"view_args|params|match_info)|self\.request\.(data|GET|POST|query_params|query)|self\.kwargs|kwargs|req\.(params|body|query)|serializer\.validated_data|"
    r"self\.request\.parser_context|flask\.request\.\w+)")
IDENTITY_SOURCES = re.compile(
    r"^(request\.user|self\.request\.user|g\.user|g\.current_user|flask\.g\.user|current_user|"
    r"flask_login\.current_user|request\.auth|self\.request\.auth|info\.context\.user|"
    r"get_jwt_identity|get_current_user|current_identity|request\.state\.user|self\.current_user|"
    r"auth_subject|request\.organization|request\.tenant|g\.org|current_org)\b")
IDENTITY_PARAM_NAMES = re.compile(r"^(current_user|user|me|auth_user|auth_subject|principal|caller|viewer|"
                                  r"current_active_user|current_org|organization|tenant|account|subject|"
                                  r"requester|actor|session_user|authenticated_user|identity|claims|token_data)$")
OWNER_FIELDS = frozenset({
    "user", "user_id", "owner", "owner_id", "author", "author_id", "created_by", "created_by_id", "creator",
    "creator_id", "tenant", "tenant_id", "organization", "organization_id", "org", "org_id", "account",
    "account_id", "customer", "customer_id", "member_id", "household_id", "group_id", "workspace_id",
    "team_id", "userid", "username", "uploaded_by", "submitted_by", "posted_by",
})
ORM_BASE = re.compile(r"^(Model|Base|DeclarativeBase|SQLModel|Document|RecordModel|TimestampedModel|"
                      r"AbstractUser|AbstractBaseUser|PermissionsMixin)$|Model$|Base$")
ORM_FIELD = re.compile(r"^(Column|mapped_column|relationship|ForeignKey|\w+Field|ForeignKeyField|CharField)$")
RELATION = re.compile(r"ForeignKey|foreign_key|relationship|OneToOne|ManyToOne|ForeignKeyField|Reference|"
                      r"Mapped\[\s*['\"]?[A-Z]|\bUser\b|settings\.AUTH_USER_MODEL")
USER_OWNER_FIELDS = frozenset({"user", "user_id", "owner", "owner_id", "userid", "customer", "customer_id",
                               "member_id", "account_id", "uploaded_by", "submitted_by", "posted_by", "profile_id"})
CREATOR_FIELDS = frozenset({"author", "author_id", "creator", "creator_id", "created_by", "created_by_id"})
USER_MODELS = re.compile(r"^(User|Users|UserModel|Account|Customer|Member|Profile|UserProfile|Person|AppUser)$")

READ_VERBS = frozenset({"get", "filter", "filter_by", "first", "one", "one_or_none", "all", "where", "get_or_404",
                        "first_or_404", "scalar", "scalars", "scalar_one", "scalar_one_or_none", "exclude",
                        "get_or_none", "get_by_id", "select", "find", "find_one", "fetch", "fetchone", "fetchall",
                        "get_list_or_404", "get_object_or_404", "values", "values_list", "exists", "count"})
WRITE_VERBS = frozenset({"add", "add_all", "save", "delete", "commit", "create", "bulk_create", "bulk_update",
                         "insert", "merge", "remove", "destroy", "delete_all", "drop_all", "create_all",
                         "update_or_create", "get_or_create", "delete_instance", "delete_by_id", "insert_many",
                         "update", "execute_update", "bulk_insert_mappings", "bulk_save_objects", "truncate"})
SQL_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|DROP|TRUNCATE|ALTER|REPLACE|MERGE)\b", re.I)
SQL_READ = re.compile(r"^\s*(SELECT|WITH)\b", re.I)
SQL_ANY = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b", re.I | re.S)
REPO_RECEIVER = re.compile(r"(repo|repository|queries|crud|dao|store|manager|service|db)$", re.I)
REPO_VERB = re.compile(r"^(get|select|find|fetch|read|load|retrieve|list|update|delete|remove|create|insert|"
                       r"add|set|upsert|patch|destroy)(_|$)", re.I)
WRITE_NAME = re.compile(r"^(update|delete|remove|create|insert|add|set|upsert|patch|destroy|save|drop|reset)(_|$)",
                        re.I)
POLICY_CALL = re.compile(
    r"(^|_)(check_?\w*permission\w*|has_perm\w*|has_object_permission|check_object_permissions|authorize\w*|"
    r"can_\w+|is_owner\w*|ensure_\w*(access|owner|permission)\w*|require_\w*(access|owner|permission|admin)\w*|"
    r"enforce\w*|verify_\w*(access|owner)\w*|assert_\w*(access|owner|permission)\w*|check_\w*access\w*|"
    r"check_\w*owner\w*|user_can\w*|permission_required|policy\w*)$", re.I)
AUDIT_CALL = re.compile(r"(^|_|\.)(audit\w*|log_event|record_event|log_action|log_activity|security_log\w*|"
                        r"create_log_entry|add_log|event_service\.log\w*|log_\w*event|track_event|"
                        r"log_admin_action|log_change|changelog|history_\w*|send_event)$", re.I)
AUDIT_LOGGER = re.compile(r"audit|security", re.I)
ROLE_COND = re.compile(r"\b(is_superuser|is_admin|is_staff|admin|role|roles|has_perm|has_role|permissions?|"
                       r"groups?|scopes?)\b", re.I)
PRIVILEGED_ROLE = re.compile(r"admin|superuser|staff|chef|employee|manager|owner|root|operator|moderator|editor|"
                             r"maintainer|support|internal|system", re.I)
PASSWORD_NAME = re.compile(r"(^|[._])(password|passwd|pwd|passphrase|password_hash|hashed_password|[Pp]assword)$")
DEPENDS = frozenset({"Depends", "Security"})
ID_LIKE = re.compile(r"^(id|pk|uuid|guid|slug|username|user_name|email|handle|key|.*_id|.*_ids|.*_pk|.*_uuid|"
                     r".*_slug|ids)$", re.I)
HTTP_REJECT = re.compile(r"\b(40[134]|HTTP_40[134]\w*|NOT_FOUND|FORBIDDEN|UNAUTHORIZED)\b")


def _ann_name(ann: Expr | None) -> str:
    """Dotted name of a type annotation (plain annotations are kept as text only)."""
    if ann is None:
        return ""
    if ann.name:
        return ann.name
    t = ann.text.strip()
    return t if re.fullmatch(r"[A-Za-z_][\w.]*", t) else ""


def _field_name(e: Expr) -> str:
    """The field an expression reads: `body["pin"]` -> pin, `data.get("api_key")` -> api_key, `m.cvc` -> cvc."""
    if e.kind == "subscript" and e.args and e.args[0].str_value():
        return str(e.args[0].str_value())
    if e.kind == "call" and e.last == "get" and e.args and e.args[0].str_value():
        return str(e.args[0].str_value())
    return e.name.rsplit(".", 1)[-1] if e.name and e.kind in ("name", "attr") else ""


def _heads(e: Expr | None) -> set[str]:
    if e is None:
        return set()
    return {n.split(".")[0] for n in e.names()}


def _dotted_names(e: Expr | None) -> frozenset[str]:
    return e.names() if e is not None else frozenset()


@dataclass
class Flow:
    """Which local names carry request data, and which carry the caller's identity."""

    tainted: dict[str, str] = field(default_factory=dict)  # local name -> request input it came from
    identity: set[str] = field(default_factory=set)
    path_params: set[str] = field(default_factory=set)

    def taint_of(self, e: Expr | None) -> list[str]:
        if e is None:
            return []
        out: list[str] = []
        for n in e.names():
            head = n.split(".")[0]
            if head in self.tainted:
                out.append(self.tainted[head])
            elif REQUEST_SOURCES.match(n):
                out.append(n)
        for c in e.iter_calls():
            nm = c.name or ".".join(c.chain())
            if REQUEST_SOURCES.match(nm):
                out.append(nm)
        return sorted(set(out))

    def has_identity(self, e: Expr | None) -> bool:
        if e is None:
            return False
        for n in e.names():
            if n.split(".")[0] in self.identity or IDENTITY_SOURCES.match(n):
                return True
        return any(IDENTITY_SOURCES.match(c.name or "") for c in e.iter_calls())


@dataclass
class FuncResult:
    accesses: list[DataAccess] = field(default_factory=list)
    ownership: list[Evidence] = field(default_factory=list)
    role_checks: list[Evidence] = field(default_factory=list)
    client_role_checks: list[Evidence] = field(default_factory=list)
    audit: list[Evidence] = field(default_factory=list)
    password_compares: list[Evidence] = field(default_factory=list)
    jwt_calls: list[Evidence] = field(default_factory=list)
    inline_auth: list[Evidence] = field(default_factory=list)
    call_names: set[str] = field(default_factory=set)
    loggers: set[str] = field(default_factory=set)
    env_exposure: list[Evidence] = field(default_factory=list)
    models: list[tuple[int, str, bool]] = field(default_factory=list)  # line, model name, owned
    literal_credentials: list[Evidence] = field(default_factory=list)


# immutable leaves a FuncResult list may hold (Evidence is frozen with str/int fields; models are tuples of them)
_SHAREABLE = frozenset({Evidence, tuple, str, int})
_ACCESS_FIELDS = frozenset(f.name for f in dataclasses.fields(DataAccess))


@dataclass
class _MemoEntry:
    result: FuncResult
    at: tuple[str, int]
    visited: frozenset[tuple[str, str]]
    tainted: dict[str, str]
    identity: set[str]
    path_params: set[str]


def _clone_result(res: FuncResult) -> FuncResult:
    """copy.deepcopy(res) for the shapes a FuncResult holds, several times faster: lists, sets and DataAccess
    objects are copied (sharing inside the result is kept, as deepcopy keeps it); Evidence is frozen and its
    fields are strings and ints, so the objects are shared. Anything else falls back to deepcopy."""
    seen: dict[int, Any] = {}

    def access(a: DataAccess) -> DataAccess:
        got = seen.get(id(a))
        if got is None:
            got = object.__new__(DataAccess)
            got.__dict__.update(a.__dict__)
            got.inputs = fresh(a.inputs)
            seen[id(a)] = got
        return got

    def fresh(items: list[Any]) -> list[Any]:
        got = seen.get(id(items))
        if got is None:
            got = seen[id(items)] = [access(x) if type(x) is DataAccess else x for x in items]
        return got

    for value in res.__dict__.values():
        if type(value) is list:
            if not all(type(x) in _SHAREABLE or type(x) is DataAccess for x in value):
                return copy.deepcopy(res)
            if any(type(x) is DataAccess and (type(x.inputs) is not list or
                                              not all(type(i) is str for i in x.inputs) or
                                              set(x.__dict__) != _ACCESS_FIELDS) for x in value):
                return copy.deepcopy(res)
        elif type(value) is set:
            if not all(type(x) is str for x in value):
                return copy.deepcopy(res)
        else:
            return copy.deepcopy(res)
    out = object.__new__(FuncResult)
    out.__dict__.update({name: fresh(value) if type(value) is list else set(value)
                         for name, value in res.__dict__.items()})
    return out


def _relocated(res: FuncResult, old: tuple[str, int], new: tuple[str, int]) -> FuncResult:
    """Move a helper's result from one call site to another (every line in it is the call site)."""
    if old == new:
        return res

    def move(e: Evidence) -> Evidence:
        return dataclasses.replace(e, file=new[0], line=new[1]) if (e.file, e.line) == old else e

    for acc in res.accesses:
        if (acc.file, acc.line) == old:
            acc.file, acc.line = new
    for name in ("ownership", "role_checks", "client_role_checks", "audit", "password_compares", "jwt_calls",
                 "inline_auth", "env_exposure", "literal_credentials"):
        setattr(res, name, [move(e) for e in getattr(res, name)])
    res.models = [(new[1] if line == old[1] else line, m, o) for line, m, o in res.models]
    return res


IDENTITY_CALL = re.compile(r"(token_validator|get_current_user|current_user|decode_auth_token|get_jwt_identity|"
                           r"authenticate|verify_token|decode_token|get_user_from_token|jwt\.decode)$")


class Analyzer:
    """Per-project memoised handler analysis."""

    def __init__(self, project: Any) -> None:
        self.project = project
        self.index = project.index
        self._owned: dict[tuple[str, str], tuple[bool, bool]] = {}
        self._identity_calls: dict[tuple[int, int], tuple[PyModule, Expr, bool]] = {}
        self.owned_by_name: dict[str, str] = {}
        self._helper_memo: dict[Any, _MemoEntry] = {}
        self._seen_cuts = 0

    # -- model classes ----------------------------------------------------------------------------------
    def ownership(self, module: PyModule, name: str) -> str:
        """How a model is owned: user (user/owner field), self (the user model), creator (author/creator field),
        tenant (organisation/tenant/group field), none; "" when the name is not a model class."""
        found, owned, short = self.model_info(module, name)
        if not found:
            return ""
        sym = self.index.resolve(module, name)
        if sym is None or sym.cls is None:
            return ""
        attrs: set[str] = set()
        user_links: set[str] = set()
        for _, c, _q in self.index.class_mro(sym.module, sym.cls):
            if c is None:
                continue
            for n, a in c.attrs.items():
                text = (a.value.text if a.value is not None else "") + " " + (a.annotation.text if a.annotation else "")
                # an ownership field is a link (FK, relationship, *_id), not a free-text label ...
                if n.endswith("_id") or RELATION.search(text):
                    attrs.add(n)
                    # ... and per-user ownership links to the user/account model, not to e.g. a participant
                    if n in ("user", "user_id", "userid") or re.search(r"user|account|customer|member|AUTH_USER",
                                                                     text.split("(", 1)[-1], re.I) and \
                            not re.search(r"ForeignKey\(\s*['\"](?!user|account|customer|member)", text, re.I):
                        user_links.add(n)
        if USER_MODELS.match(sym.cls.name) or sym.cls.name.endswith(("User", "Account")):
            return "self"
        if attrs & USER_OWNER_FIELDS & user_links:
            return "user"
        if attrs & CREATOR_FIELDS:
            return "creator"
        if attrs & OWNER_FIELDS:
            return "tenant"
        return "none"

    def model_info(self, module: PyModule, name: str) -> tuple[bool, bool, str]:
        """(is_model_class, owned_by_a_user_or_tenant, class name) for a name used as a model."""
        if not name or not name[:1].isupper():
            return False, False, name
        key = (module.path, name)
        if key not in self._owned:
            sym = self.index.resolve(module, name)
            owned = False
            found = False
            if sym is not None and sym.kind == "class" and sym.cls is not None:
                cname = sym.cls.name
                for _, c, q in self.index.class_mro(sym.module, sym.cls):
                    if ORM_BASE.search(q.rsplit(".", 1)[-1]) and q.rsplit(".", 1)[-1] != cname:
                        found = True
                    if c is None:
                        continue
                    attrs = set(c.attrs)
                    if "__tablename__" in attrs or "objects" in attrs or any(
                            a.value.kind == "call" and ORM_FIELD.search(a.value.last or "") for a in c.attrs.values()):
                        found = True
                    if attrs & OWNER_FIELDS:
                        owned = True
                if USER_MODELS.match(cname) or cname.endswith(("User", "Account")):
                    owned = True
            self._owned[key] = (found, owned)
        found, owned = self._owned[key]
        return found, owned, name.rsplit(".", 1)[-1]

    # -- resolving callees ------------------------------------------------------------------------------
    def resolve_callee(self, module: PyModule, call: Expr, local_types: dict[str, str]) -> tuple[PyModule, FunctionDef] | None:
        name = call.name
        if not name:
            return None
        head, _, rest = name.partition(".")
        if head in ("self", "cls") and rest and "." not in rest:
            return None
        if head in local_types and rest and "." not in rest:
            sym = self.index.resolve(module, local_types[head])
            if sym is not None and sym.kind == "class" and sym.cls is not None:
                for m, c, _ in self.index.class_mro(sym.module, sym.cls):
                    if c is not None:
                        f = m.functions.get(f"{c.qualname}.{rest}")
                        if f is not None:
                            return m, f
            return None
        try:
            sym = self.index.resolve(module, name)
        except RecursionError:
            return None
        if sym is None:
            return None
        if sym.kind == "function" and sym.func is not None:
            return sym.module, sym.func
        if sym.kind == "assign" and sym.assign is not None and rest == "":
            return None
        if sym.kind == "assign" and sym.assign is not None:
            return None
        return None

    def resolve_method_on_instance(self, module: PyModule, call: Expr) -> tuple[PyModule, FunctionDef] | None:
        """`svc.get(...)` where svc is a module-level `svc = Service()` (possibly imported under an alias)."""
        if not call.name or "." not in call.name:
            return None
        obj, _, meth = call.name.rpartition(".")
        if "." in obj:
            return None
        sym = self.index.resolve(module, obj)
        if sym is None or sym.kind != "assign" or sym.assign is None or sym.assign.value.kind != "call":
            return None
        cls_sym = self.index.resolve(sym.module, sym.assign.value.name) if sym.assign.value.name else None
        if cls_sym is None or cls_sym.kind != "class" or cls_sym.cls is None:
            return None
        for m, c, _ in self.index.class_mro(cls_sym.module, cls_sym.cls):
            if c is not None:
                f = m.functions.get(f"{c.qualname}.{meth}")
                if f is not None:
                    return m, f
        return None

    # -- the analysis -------------------------------------------------------------------------------------
    def analyze(self, module: PyModule, func: FunctionDef, flow: Flow, depth: int = 0,
                at: tuple[str, int] | None = None, seen: set[tuple[str, str]] | None = None) -> FuncResult:
        """Analyse one function body. `at` = (file, line) of the handler call site when inside a helper.

        Helpers (depth >= 1) are memoised per (function, depth, incoming flow): every evidence line of a helper's
        result is its call site, so a cached result is relocated to the new call site. A result is cached only
        when no callee was cut short by the per-route `seen` set, and reused only when none of the callees it
        visited has been seen in this route: the answers are the same as without the memo.
        """
        seen = set() if seen is None else seen
        key = (module.path, func.qualname)
        if depth == 0 or at is None or key in seen or depth > MAX_DEPTH:
            return self._analyze_body(module, func, flow, depth, at, seen)
        mkey = (key, depth, frozenset(flow.tainted.items()), frozenset(flow.identity), frozenset(flow.path_params))
        hit = self._helper_memo.get(mkey)
        if hit is not None and hit.visited.isdisjoint(seen):
            seen |= hit.visited
            flow.tainted, flow.identity, flow.path_params = dict(hit.tainted), set(hit.identity), set(hit.path_params)
            return _relocated(_clone_result(hit.result), hit.at, at)
        before = set(seen)
        cut_before = self._seen_cuts
        res = self._analyze_body(module, func, flow, depth, at, seen)
        if self._seen_cuts == cut_before:
            self._helper_memo[mkey] = _MemoEntry(_clone_result(res), at, frozenset(seen - before),
                                                 dict(flow.tainted), set(flow.identity), set(flow.path_params))
        return res

    def _analyze_body(self, module: PyModule, func: FunctionDef, flow: Flow, depth: int,
                      at: tuple[str, int] | None, seen: set[tuple[str, str]]) -> FuncResult:
        key = (module.path, func.qualname)
        res = FuncResult()
        if key in seen:
            self._seen_cuts += 1
            return res
        if depth > MAX_DEPTH:
            return res
        seen.add(key)
        try:
            body = func.body
        except (RecursionError, OSError, ValueError):
            return res
        site_file = at[0] if at else module.path
        local_types: dict[str, str] = {}
        for p in func.params:
            an_name = _ann_name(p.annotation)
            if an_name and an_name.rsplit(".", 1)[-1][:1].isupper():
                local_types[p.name] = an_name

        def loc(line: int) -> int:
            return at[1] if at else line

        # 1. propagate taint / identity through assignments in source order
        for a in sorted(body.assigns, key=lambda a: a.line):
            targets = [t.strip() for t in re.split(r"[,()\[\]]", a.target) if t.strip()]
            targets = [t.split(":")[0].strip().lstrip("*") for t in targets]
            taint = flow.taint_of(a.value)
            ident_call = self._is_identity_call(module, a.value)
            ident = ident_call or flow.has_identity(a.value)
            root = a.value.chain()[:1] if a.value.kind == "call" else []
            passes_identity = a.value.kind == "call" and any(
                flow.has_identity(x) for x in [*a.value.args, *a.value.kwargs.values()])
            if ident_call or (root and root[0] in flow.identity) or passes_identity:
                taint = []  # computed from the caller (`current_user.get_role(org)`), not chosen by the client
            for t in targets:
                head = t.split(".")[0]
                if not head.isidentifier():
                    continue
                if ident and not taint:
                    flow.identity.add(head)
                    flow.tainted.pop(head, None)
                elif taint and "." not in t:
                    flow.tainted[head] = taint[0]
                elif ident:
                    flow.identity.add(head)
            if a.value.kind == "call" and a.value.name and a.value.name[:1].isupper():
                for t in targets:
                    local_types.setdefault(t, a.value.name)

        # 2. calls: accesses, writes, audit, jwt, policy, helpers
        # outermost calls first, so `db.query(M).filter(..).first()` is one access, not three
        ordered = sorted(body.calls, key=lambda c: (-len(c.text), c.line))
        taken: list[Expr] = []
        for c in body.calls:
            nm = c.name or ".".join(c.chain())
            last = c.last
            res.call_names.add(nm)
            if last in ("info", "warning", "error", "critical", "exception", "log") and c.name:
                res.loggers.add(c.name.rsplit(".", 1)[0])
            if AUDIT_CALL.search(nm) or (last in ("info", "warning", "log", "critical") and
                                         AUDIT_LOGGER.search(c.name.rsplit(".", 1)[0] if c.name else "")):
                res.audit.append(Evidence(site_file, loc(c.line), "audit-call", c.text[:120]))
            if POLICY_CALL.search(last or "") and last not in ("permission_classes",):
                res.ownership.append(Evidence(site_file, loc(c.line), "policy-call", c.text[:120]))
            if nm.endswith(("environ.copy", "environ.items")) or nm in ("dict", "os.environ.copy") and any(
                    a.name == "os.environ" for a in c.args):
                res.env_exposure.append(Evidence(site_file, loc(c.line), "env-exposure", c.text[:120]))
            if last == "decode" and ("jwt" in nm.lower() or "jose" in nm.lower()):
                res.jwt_calls.append(Evidence(site_file, loc(c.line), "jwt-decode", c.text[:200]))
        for c in ordered:
            if any(t.line <= c.line and c.text in t.text for t in taken):
                continue
            acc = self._access(module, c, flow, local_types)
            if acc is not None:
                taken.append(c)
                acc.line = loc(acc.line)
                acc.file = site_file
                res.accesses.append(acc)
                continue
            # helpers in the tree: map arguments to parameters, recurse
            if depth < MAX_DEPTH:
                target = self.resolve_callee(module, c, local_types) or self.resolve_method_on_instance(module, c)
                if target is not None and target[1] is not func:
                    sub_flow = self._map_args(target[1], c, flow)
                    sub = self.analyze(target[0], target[1], sub_flow, depth + 1,
                                       at or (module.path, c.line), seen)
                    if sub_flow.identity:
                        try:
                            used = target[1].body.names
                        except (RecursionError, OSError):
                            used = set()
                        if used & sub_flow.identity:
                            # the caller's identity is handed to the helper, which uses it: the helper scopes
                            for acc2 in sub.accesses:
                                acc2.owner_scoped = True
                    self._merge(res, sub, c, flow)
                    continue
                self._repo_call(module, c, flow, res, site_file, loc(c.line))
        # 3. os.environ exposure by name
        if "os.environ" in body.names or any("os.environ" in n for n in (x.text for x in body.returns)):
            pass
        for r in body.returns:
            if "os.environ" in r.text or "environ" in _dotted_names(r):
                res.env_exposure.append(Evidence(site_file, loc(r.line), "env-exposure", r.text[:120]))
        for a in body.assigns:
            if "os.environ" in _dotted_names(a.value):
                res.env_exposure.append(Evidence(site_file, loc(a.line), "env-exposure", a.value.text[:120]))
        # 4. branches: ownership compare after fetch, role checks, inline auth
        for br in body.branches:
            cond = br.condition
            rejects = bool(br.raises) or any(HTTP_REJECT.search(r.text) for r in br.returns) or any(
                c.last in ("abort", "Forbidden", "PermissionDenied", "HTTPException") for c in br.calls) or any(
                HTTP_REJECT.search(c.text) for c in br.calls)
            if not rejects:
                continue
            has_ident = flow.has_identity(cond)
            names = cond.names()
            taint = flow.taint_of(cond)
            is_role = bool(ROLE_COND.search(cond.text))
            if is_role and taint and not has_ident and re.search(r"\b(role|roles|is_admin|is_superuser|is_staff|admin)\b",
                                                                  cond.text):
                res.client_role_checks.append(Evidence(site_file, loc(br.line),
                                                       "role-from-client" if depth == 0 else "role-from-client-helper",
                                                       cond.text[:120]))
            elif is_role and (has_ident or not taint):
                res.role_checks.append(Evidence(site_file, loc(br.line), "role-check", cond.text[:120]))
            if has_ident and not is_role and self._compares_object(cond, flow):
                res.ownership.append(Evidence(site_file, loc(br.line), "owner-compare", cond.text[:120]))
            elif has_ident and not is_role and any(n.split(".")[-1] in OWNER_FIELDS for n in names) and \
                    not any(a.kind in ("str", "num", "none") for a in cond.args):
                res.ownership.append(Evidence(site_file, loc(br.line), "owner-compare", cond.text[:120]))
        # role checks that are not rejections but gate the branch (`if user.admin: delete(...)`)
        for br in body.branches:
            if flow.has_identity(br.condition) and ROLE_COND.search(br.condition.text) and not br.raises:
                if any(self._writes_or_reads(c) for c in br.calls) or br.calls:
                    res.role_checks.append(Evidence(site_file, loc(br.line), "role-gate", br.condition.text[:120]))
        # 5. password compares and credential compares
        for cmp in body.compares:
            if cmp.op not in ("==", "!="):
                continue
            # request data checked against a literal credential: a hard-coded secret in disguise
            for side, other in ((cmp.left, cmp.right), (cmp.right, cmp.left)):
                lit = other.str_value()
                field_name = _field_name(side)
                head = side.name.split(".")[0] if side.name else ""
                direct = flow.tainted.get(head) == head or bool(REQUEST_SOURCES.match(side.name or ""))
                if lit and len(lit) >= 3 and field_name and SECRET_NAME.search(field_name) and direct and \
                        not re.fullmatch(r"[A-Z_]+", lit) and not PLACEHOLDER.match(lit):
                    res.literal_credentials.append(Evidence(site_file, loc(cmp.line), "credential-literal",
                                                            f"{field_name} {_fp(lit)}"))
                    break
            for side, other in ((cmp.left, cmp.right), (cmp.right, cmp.left)):
                sname = side.name or (side.func.name if side.kind == "call" and side.func is not None else "")
                txt = side.text
                if (PASSWORD_NAME.search(sname) or re.search(r"""get\(\s*['"](password|passwd|pwd)['"]""", txt)
                        or re.search(r"""\[\s*['"](password|passwd|pwd)['"]\s*\]""", txt)):
                    if other.kind in ("none", "num", "bool") or (other.kind == "str" and not other.value):
                        continue
                    if other.kind == "call" and re.search(r"hash|digest|encrypt|crypt|hmac|encode", other.text, re.I):
                        continue
                    if other.kind == "str" or re.search(r"hash|digest|crypt", cmp.left.text + cmp.right.text, re.I):
                        continue  # a sentinel ("LDAP") or a hash on the other side: not a plaintext credential
                    if re.search(r"confirm|repeat|again|new_password|password2|old_password", cmp.left.text + cmp.right.text,
                                 re.I) and not other.kind == "str":
                        continue
                    # stored value (an object's attribute) against request data or a literal
                    stored = side.kind == "attr" and side.name.split(".")[0] not in flow.tainted
                    if not (stored or other.kind == "str" or flow.taint_of(side)):
                        continue
                    if stored and not (flow.taint_of(other) or other.kind == "str" or other.kind == "call"):
                        continue
                    res.password_compares.append(Evidence(site_file, loc(cmp.line), "password-compare",
                                                          f"{cmp.left.text[:60]} {cmp.op} {cmp.right.text[:60]}"))
                    break
        return res

    def _is_identity_call(self, module: PyModule, e: Expr) -> bool:
        """`token_validator(...)`, `get_current_user(...)`, `jwt.decode(...)`: the result is the caller.
        Memoised per (module, expression): it reads only facts, which do not change during the analysis."""
        key = (id(module), id(e))
        hit = self._identity_calls.get(key)
        if hit is not None and hit[0] is module and hit[1] is e:
            return hit[2]
        found = self._is_identity_call_uncached(module, e)
        self._identity_calls[key] = (module, e, found)
        return found

    def _is_identity_call_uncached(self, module: PyModule, e: Expr) -> bool:
        for c in e.iter_calls():
            nm = c.name or ""
            if IDENTITY_CALL.search(nm):
                return True
            if nm and "." not in nm and self.project.auth is not None and nm[:1].islower():
                sym = self.index.resolve(module, nm)
                if sym is not None and sym.kind == "function" and sym.func is not None:
                    try:
                        v = self.project.auth.callable_verdict(sym.module, sym.func)
                    except RecursionError:
                        continue
                    if v.authn and any(ev.kind == "token-validation" for ev in v.evidence):
                        return True
        return False

    def _compares_object(self, cond: Expr, flow: Flow) -> bool:
        """A compare between the caller identity and something else (an object's owner)."""
        stack = [cond]
        while stack:
            e = stack.pop()
            if e.kind == "compare" and len(e.args) >= 2:
                if any(a.kind in ("str", "num", "none", "bool") for a in e.args):
                    stack.extend(e.args)
                    continue  # `"error" in resp`, `user.role == "admin"`: not an owner comparison
                sides = [flow.has_identity(a) for a in e.args]
                if any(sides) and not all(sides):
                    return True
                if all(sides) and len({a.text for a in e.args}) > 1:
                    return True
            stack.extend(e.args)
        return False

    @staticmethod
    def _writes_or_reads(c: Expr) -> bool:
        return c.last in WRITE_VERBS or c.last in READ_VERBS

    def _map_args(self, func: FunctionDef, call: Expr, flow: Flow) -> Flow:
        params = [p for p in func.params if p.name not in ("self", "cls")]
        sub = Flow()
        for i, a in enumerate(call.args):
            if i < len(params) and any(n.split(".")[0] in flow.path_params or
                                       flow.tainted.get(n.split(".")[0]) in flow.path_params for n in a.names()):
                sub.path_params.add(params[i].name)
            if i < len(params):
                t = flow.taint_of(a)
                if t:
                    sub.tainted[params[i].name] = t[0]
                if flow.has_identity(a):
                    sub.identity.add(params[i].name)
        byname = {p.name for p in params}
        for k, v in call.kwargs.items():
            if k in byname and any(n.split(".")[0] in flow.path_params or
                                   flow.tainted.get(n.split(".")[0]) in flow.path_params for n in v.names()):
                sub.path_params.add(k)
            if k in byname:
                t = flow.taint_of(v)
                if t:
                    sub.tainted[k] = t[0]
                if flow.has_identity(v):
                    sub.identity.add(k)
        return sub

    def _merge(self, res: FuncResult, sub: FuncResult, call: Expr, flow: Flow) -> None:
        res.accesses.extend(sub.accesses)
        res.ownership.extend(sub.ownership)
        res.role_checks.extend(sub.role_checks)
        res.client_role_checks.extend(sub.client_role_checks)
        res.audit.extend(sub.audit)
        res.password_compares.extend(sub.password_compares)
        res.jwt_calls.extend(sub.jwt_calls)
        res.call_names |= sub.call_names
        res.loggers |= sub.loggers
        res.env_exposure.extend(sub.env_exposure)
        res.literal_credentials.extend(sub.literal_credentials)

    def _model_of(self, module: PyModule, c: Expr) -> str:
        """The model class an ORM call works on: query(M), M.query, M.objects, session.get(M, ..), select(M).
        It reads the call only, so the answer is kept on the (immutable) Expr."""
        cached = c.__dict__.get("_model_memo")
        if cached is None:
            cached = c.__dict__["_model_memo"] = self._model_of_call(c)
        return cached  # type: ignore[no-any-return]

    @staticmethod
    def _model_of_call(c: Expr) -> str:
        for sub in c.iter_calls():
            if sub.last in ("query", "select", "get_object_or_404", "get_list_or_404", "get") and sub.args:
                a0 = sub.args[0]
                if a0.name and a0.name.split(".")[-1][:1].isupper():
                    return a0.name
        chain = c.chain()
        for i, part in enumerate(chain):
            if part in ("objects", "query") and i > 0 and chain[i - 1][:1].isupper():
                return chain[i - 1]
        if chain and chain[0][:1].isupper() and len(chain) >= 2:
            return chain[0]
        return ""

    def _access(self, module: PyModule, c: Expr, flow: Flow, local_types: dict[str, str]) -> DataAccess | None:
        chain = c.chain()
        last = c.last
        allnames = set(chain)
        for sub in c.iter_calls():
            allnames.add(sub.last)
        text = c.text
        api = ""
        kind = "read"
        # raw SQL
        if last in ("execute", "executemany", "raw", "text", "exec_driver_sql", "fetch", "fetchrow", "fetchval") or \
                "text" in allnames:
            sql = ""
            for sub in [c, *c.iter_calls()]:
                a0 = sub.arg(0)
                if a0 is not None and a0.kind in ("str", "fstring", "binop"):
                    sql = a0.text
                    break
            if sql and SQL_ANY.search(sql):
                api = "raw-sql"
                kind = "write" if SQL_WRITE.search(sql.strip("\"'fbr ")) else "read"
        if not api:
            model = self._model_of(module, c)
            is_model, _owned, _ = self.model_info(module, model) if model else (False, False, "")
            if "objects" in allnames and (last in READ_VERBS or last in WRITE_VERBS or "filter" in allnames):
                api = "django-orm"
            elif "query" in allnames and ({"filter", "filter_by", "get", "first", "one", "all", "get_or_404",
                                           "first_or_404", "delete", "update", "one_or_none"} & allnames):
                api = "sqlalchemy"
            elif last in ("get_object_or_404", "get_list_or_404"):
                api = "django-shortcut"
            elif "select" in allnames and "where" in allnames:
                api = "sqlalchemy"
            elif last in ("get", "get_one", "delete", "merge") and chain and chain[-2:-1] and \
                    re.search(r"(session|db)$", chain[-2] if len(chain) >= 2 else "", re.I) and c.args and \
                    c.args[0].name[:1].isupper():
                api = "sqlalchemy"
            elif is_model and last in ("get", "get_or_none", "filter", "get_by_id", "select", "delete_by_id",
                                       "get_or_404", "exclude", "find", "find_one", "create", "update"):
                api = "model-manager"
            elif last in ("add", "add_all", "commit", "delete", "merge", "flush", "refresh", "drop_all", "create_all",
                          "bulk_save_objects") and chain and \
                    len(chain) >= 2 and re.search(r"(session|db|conn|connection|transaction)$", chain[-2], re.I):
                if last in ("flush", "refresh"):
                    return None
                api = "session"
                kind = "write"
            elif last == "save" and not c.args and chain and len(chain) >= 2 and not re.search(
                    r"(file|image|img|upload|fs|storage|pdf|wb|workbook|doc|photo)", chain[-2], re.I):
                api = "orm-save"
                kind = "write"
            elif last == "save" and c.kwargs and set(c.kwargs) <= {"update_fields", "commit", "force_insert",
                                                                   "using", "force_update"}:
                api = "orm-save"
                kind = "write"
            elif last in ("delete_instance",):
                api = "orm-save"
                kind = "write"
            if not api:
                return None
            if api not in ("session", "orm-save"):
                if last in WRITE_VERBS and last not in ("get_or_create",):
                    kind = "write"
                elif "delete" in allnames or "update" in allnames and api != "model-manager":
                    kind = "write"
            if api == "model-manager" and last in ("create", "update"):
                kind = "write"
        taint = flow.taint_of(c)
        scoped = flow.has_identity(c)
        selectors = self._selectors(c, flow)
        if taint and not selectors:
            taint = [f"~{t}" for t in taint]  # request data, but not an object id (a name, a filter value)
        model = self._model_of(module, c)
        if model:
            kind_of = self.ownership(module, model)
            if kind_of:
                self.owned_by_name[model] = kind_of  # resolved where the access is, not where the route is
        return DataAccess(line=c.line, kind=kind, api=api if not model else f"{api}:{model}",  # type: ignore[arg-type]
                          text=text[:160], uses_request_input=bool(taint), inputs=taint, owner_scoped=scoped,
                          file=module.path)

    def _selectors(self, c: Expr, flow: Flow) -> list[str]:
        """Request values that pick an object: path parameters and id-like fields (id, *_id, pk, slug, username)."""
        out = []
        for n in c.names():
            head = n.split(".")[0]
            if head not in flow.tainted:
                continue
            src = flow.tainted[head]
            if src in flow.path_params or head in flow.path_params:
                out.append(n)
            elif ID_LIKE.search(n.rsplit(".", 1)[-1]) and "." in n:
                out.append(n)
            elif ID_LIKE.search(head):
                out.append(n)  # an id-like variable or helper parameter (`username`, `order_id`)
        for sub in c.iter_calls():
            for a in [*sub.args, *sub.kwargs.values()]:
                if a.kind == "subscript" and a.args and a.args[0].str_value() and ID_LIKE.search(str(a.args[0].str_value())) \
                        and flow.taint_of(a):
                    out.append(a.text)
                if a.kind == "call" and a.last == "get" and a.args and a.args[0].str_value() and \
                        ID_LIKE.search(str(a.args[0].str_value())) and flow.taint_of(a):
                    out.append(a.text)
        return out

    def _repo_call(self, module: PyModule, c: Expr, flow: Flow, res: FuncResult, site_file: str, line: int) -> None:
        """An unresolved repository / query-module call: `articles_repo.delete_article(...)`, `queries.get_x(...)`."""
        chain = c.chain()
        if len(chain) < 2:
            return
        recv, last = chain[-2], c.last
        if not REPO_RECEIVER.search(recv) or not REPO_VERB.match(last):
            return
        if re.search(r"s3|storage|file|blob|bucket|email|mail|cache|queue|redis|http|client|stripe|slack|github|"
                     r"webhook|notification|task|celery|search|index", recv, re.I):
            return  # object storage, mail, queues and third-party APIs are not database writes
        kind = "write" if WRITE_NAME.match(last) else "read"
        taint = flow.taint_of(c)
        scoped = flow.has_identity(c) or (chain[0] == "self" and "self" in flow.identity)
        res.accesses.append(DataAccess(line=line, kind=kind, api="repository",  # type: ignore[arg-type]
                                       text=c.text[:160], uses_request_input=bool(taint), inputs=taint,
                                       owner_scoped=scoped, file=site_file))


# ------------------------------------------------------------------------------------------- routes


def find_handler(project: Any, route: Route) -> tuple[PyModule, FunctionDef] | None:
    mod = project.index.by_path.get(route.handler_file or route.file)
    if mod is None:
        return None
    name = route.handler.split(":")[-1]
    best = None
    for f in mod.functions.values():
        if route.handler_line and (f.line == route.handler_line or route.handler_line in f.decorator_lines):
            return mod, f
        if f.qualname == name or f.qualname.endswith("." + name) or f.name == name:
            best = best or f
    return (mod, best) if best is not None else None


def _param_dependency(p: Any) -> Expr | None:
    for e in (p.default, p.annotation):
        if e is None:
            continue
        for call in e.iter_calls():
            if call.last in DEPENDS:
                return call.args[0] if call.args else Expr("name", p.annotation.text if p.annotation else "", 0,
                                                            name=p.annotation.name if p.annotation else "")
    return None


def _alias_dependency(an: Analyzer, mod: PyModule, p: Any) -> Expr | None:
    """`current_user: CurrentUser` where `CurrentUser = Annotated[User, Depends(get_current_user)]` elsewhere."""
    ann = p.annotation
    name = _ann_name(ann)
    if ann is None or not name or p.default is not None:
        return None
    try:
        sym = an.index.resolve(mod, name)
    except RecursionError:
        return None
    if sym is None or sym.kind != "assign" or sym.assign is None:
        return None
    for call in sym.assign.value.iter_calls():
        if call.last in DEPENDS:
            return call.args[0] if call.args else Expr("name", ann.text, ann.line, name=name)
    return None


def _initial_flow(an: Analyzer, route: Route, mod: PyModule, func: FunctionDef, facts: HandlerFacts) -> Flow:
    flow = Flow()
    path_names = {a or b for a, b in PATH_PARAM_RE.findall(route.path)}
    facts.path_params = sorted(path_names)
    flow.path_params = set(path_names) | ({"kwargs", "pk"} if route.framework in ("django", "drf") else set())
    fw = route.framework
    for p in func.params:
        if p.name in ("self", "cls", "request", "req", "db", "session", "response", "background_tasks"):
            continue
        dep = _param_dependency(p) or _alias_dependency(an, mod, p)
        ann = p.annotation.text if p.annotation is not None else ""
        if dep is not None:
            dep_name = dep.name or ""
            is_ident = bool(IDENTITY_PARAM_NAMES.match(p.name)) or bool(
                re.search(r"current_user|get_user|auth|authoriz|principal|subject|token|permission", dep_name, re.I))
            if not is_ident and dep_name:
                sym = an.index.resolve(mod, dep_name)
                try:
                    v = an.project.auth.symbol_verdict(sym) if sym is not None else None
                except RecursionError:
                    v = None
                is_ident = bool(v and (v.authn or v.role))
            if is_ident:
                flow.identity.add(p.name)
            continue
        if re.search(r"\b(Session|AsyncSession|Request|Response|BackgroundTasks|WebSocket|HttpRequest)\b", ann):
            continue
        if p.kind == "dstar" and fw in ("django", "drf"):
            flow.tainted[p.name] = p.name
            continue
        if p.name in path_names:
            flow.tainted[p.name] = p.name
        elif fw in ("fastapi", "starlette") or p.name in path_names:
            flow.tainted[p.name] = p.name
            an_name = _ann_name(p.annotation)
            if an_name[:1].isupper() and an_name not in (
                    "Optional", "List", "Union", "UUID", "Annotated") and "Query" not in (p.default.text if p.default else ""):
                facts.body_params.append(p.name)
            elif p.name not in path_names:
                facts.query_params.append(p.name)
        elif fw in ("flask", "connexion") and p.name not in path_names:
            # connexion passes query/body parameters as keyword arguments
            flow.tainted[p.name] = p.name
            facts.query_params.append(p.name)
        elif fw in ("django", "drf") and p.name not in ("args", "kwargs", "format"):
            flow.tainted[p.name] = p.name
    for n in ("pk", "id", "slug"):
        if n in path_names:
            flow.tainted.setdefault(n, n)
    return flow


def _route_decorator(func: FunctionDef, route: Route) -> Expr | None:
    for d, line in zip(func.decorators, func.decorator_lines or [0] * len(func.decorators), strict=False):
        if line == route.line:
            return d
    return func.decorators[0] if func.decorators else None


def _dependency_functions(an: Analyzer, mod: PyModule, func: FunctionDef, route: Route) -> list[tuple[str, PyModule, FunctionDef, int, str]]:
    """Dependencies of the route: (kind param|route, module, function, line, param name)."""
    out: list[tuple[str, PyModule, FunctionDef, int, str]] = []
    for p in func.params:
        dep = _param_dependency(p)
        if dep is None or not dep.name:
            continue
        sym = an.index.resolve(mod, dep.name)
        if sym is not None and sym.kind == "function" and sym.func is not None:
            out.append(("param", sym.module, sym.func, dep.line or func.line, p.name))
    deco = _route_decorator(func, route)
    if deco is not None:
        deps = deco.kw("dependencies")
        if deps is not None:
            for item in deps.args:
                for call in item.iter_calls():
                    if call.last in DEPENDS and call.args and call.args[0].name:
                        sym = an.index.resolve(mod, call.args[0].name)
                        if sym is not None and sym.kind == "function" and sym.func is not None:
                            out.append(("route", sym.module, sym.func, call.line, ""))
    return out


def _dependency_flow(an: Analyzer, mod: PyModule, func: FunctionDef, route_path_names: set[str]) -> Flow:
    flow = Flow()
    for p in func.params:
        dep = _param_dependency(p)
        if dep is not None:
            if IDENTITY_PARAM_NAMES.match(p.name) or re.search(r"current_user|get_user|auth", dep.name or "", re.I):
                flow.identity.add(p.name)
            continue
        if p.name in route_path_names or (p.default is not None and p.default.last in ("Path", "Query", "Body")):
            flow.tainted[p.name] = p.name
            if p.name in route_path_names or (p.default is not None and p.default.last == "Path"):
                flow.path_params.add(p.name)
    return flow


def _declared_roles(func: FunctionDef, route: Route) -> list[str]:
    """Role names written in the route's auth dependencies: Depends(RoleChecker([Role.ADMIN])), Security(.., scopes=[..])."""
    exprs: list[Expr] = []
    for p in func.params:
        dep = _param_dependency(p)
        if dep is not None:
            exprs.append(dep)
            for e in (p.default, p.annotation):
                if e is not None:
                    exprs.extend(c for c in e.iter_calls() if c.last in DEPENDS)
    deco = _route_decorator(func, route)
    if deco is not None and deco.kw("dependencies") is not None:
        exprs.append(deco.kw("dependencies"))  # type: ignore[arg-type]
    for d in func.decorators:
        if re.search(r"role|permission|admin|superuser|staff|scope", d.text, re.I):
            exprs.append(d)
    roles: list[str] = []
    for e in exprs:
        if e.kind != "call" and not e.args and not e.kwargs:
            continue
        for m in re.finditer(r"\b[A-Z][A-Za-z]*\.([A-Z][A-Z0-9_]{2,})\b|['\"]([A-Za-z][\w:.-]{2,40})['\"]", e.text):
            r = m.group(1) or m.group(2)
            if r and r not in roles:
                roles.append(r)
    return roles


SCOPE_ATTRS = frozenset({"user", "group", "group_id", "household", "household_id", "tenant", "tenant_id",
                         "organization", "organization_id", "org", "org_id", "current_user", "account",
                         "workspace", "workspace_id", "team", "team_id"})


def _controller_scoped(an: Analyzer, mod: PyModule, func: FunctionDef) -> bool:
    """A class-based controller whose instances carry the caller (self.user, self.group_id) into its repos."""
    if not func.class_name:
        return False
    cls = mod.classes.get(func.qualname.rsplit(".", 1)[0])
    if cls is None:
        return False
    for m, c, _ in an.index.class_mro(mod, cls):
        if c is None:
            continue
        names = set(c.attrs) | {q.rsplit(".", 1)[-1] for q in c.methods}
        if names & SCOPE_ATTRS:
            return True
        for q in c.methods:
            f = m.functions.get(q)
            if f is not None and f.name == "__init__" and any(p.name in SCOPE_ATTRS for p in f.params):
                return True
    return False


AUTH_MIXINS = re.compile(r"(LoginRequired|PermissionRequired|UserPassesTest|StaffRequired|SuperuserRequired|"
                         r"AccessMixin|ObjectPermissionRequired|ContentTypePermissionRequired)")


def _view_guard(an: Analyzer, mod: PyModule, func: FunctionDef) -> str:
    """A class-based view whose class (or a base) guards `dispatch` or mixes in an auth mixin."""
    if not func.class_name:
        return ""
    cls = mod.classes.get(func.qualname.rsplit(".", 1)[0])
    if cls is None:
        return ""
    for m, c, q in an.index.class_mro(mod, cls):
        if AUTH_MIXINS.search(q.rsplit(".", 1)[-1]):
            return q
        if c is None:
            continue
        f = m.functions.get(f"{c.qualname}.dispatch")
        if f is not None:
            try:
                v = an.project.auth.callable_verdict(m, f)
            except RecursionError:
                continue
            if v.authn or v.role:
                return f"{q}.dispatch"
            try:
                body = f.body
            except (RecursionError, OSError):
                continue
            if any(re.search(r"has_perm|PermissionDenied|is_authenticated|redirect_to_login|handle_no_permission",
                             x.text) for x in body.calls + body.raises):
                return f"{q}.dispatch"
    return ""


def analyze_route(an: Analyzer, route: Route) -> None:
    found = find_handler(an.project, route)
    facts = route.facts
    if found is None:
        return
    mod, func = found
    flow = _initial_flow(an, route, mod, func, facts)
    if _controller_scoped(an, mod, func):
        flow.identity.add("self")
    res = an.analyze(mod, func, flow, at=None)
    # FastAPI dependencies that fetch objects from path parameters, or check permissions
    path_names = set(facts.path_params)
    for kind, dmod, dfunc, line, pname in _dependency_functions(an, mod, func, route):
        dflow = _dependency_flow(an, dmod, dfunc, path_names)
        sub = an.analyze(dmod, dfunc, dflow, depth=1, at=(mod.path, line))
        if kind == "route":
            res.ownership.extend(sub.ownership)
            res.role_checks.extend(sub.role_checks)
            continue
        reads = [a for a in sub.accesses if a.kind == "read" and a.uses_request_input]
        if reads and pname:
            flow.tainted.setdefault(pname, reads[0].inputs[0] if reads[0].inputs else pname)
            res.accesses.extend(reads)
            res.ownership.extend(sub.ownership)
        res.audit.extend(sub.audit)
    # a handler param that came from an object-fetching dependency is request-derived: re-run accesses using it
    if any(a.file == mod.path and a.line for a in res.accesses):
        res2 = an.analyze(mod, func, Flow(dict(flow.tainted), set(flow.identity)), at=None)
        known = {(a.file, a.line) for a in res.accesses}
        for a in res2.accesses:
            if (a.file, a.line) in known:
                for b in res.accesses:
                    if (b.file, b.line) == (a.file, a.line) and a.uses_request_input and not b.uses_request_input:
                        b.uses_request_input, b.inputs = True, a.inputs
    facts.accesses = sorted(res.accesses, key=lambda a: (a.line, a.file))
    facts.ownership_checks = res.ownership
    facts.role_checks = res.role_checks
    facts.audit_calls = res.audit
    facts.password_compares = res.password_compares
    facts.jwt_calls = res.jwt_calls
    facts.extra["call_names"] = sorted(res.call_names)[:400]
    facts.extra["loggers"] = sorted(res.loggers)
    facts.extra["client_role_checks"] = res.client_role_checks
    facts.extra["env_exposure"] = res.env_exposure
    facts.extra["literal_credentials"] = res.literal_credentials
    facts.extra["identity"] = sorted(flow.identity)
    facts.extra["handler_module"] = mod.path
    facts.extra["handler_end_line"] = func.end_line
    facts.extra["decorator_names"] = [d.name or d.last for d in func.decorators]
    owned: dict[str, str | None] = {}
    for a in facts.accesses:
        if ":" in a.api:
            model = a.api.split(":", 1)[1]
            owned[model] = an.ownership(mod, model) or an.owned_by_name.get(model)
    facts.extra["model_owned"] = owned
    facts.extra["declared_roles"] = _declared_roles(func, route)
    facts.extra["view_guard"] = _view_guard(an, mod, func)
    above = []
    for d, line in zip(func.decorators, func.decorator_lines or [], strict=False):
        if line < route.line and route.file == mod.path:
            above.append({"name": d.name or d.last, "line": line})
    facts.extra["decorators_above_route"] = above


PARALLEL_MIN_ROUTES = 120
# a few chunks per worker: the pool hands them out as workers free up, which evens out unequal packages
HF_CHUNKS_PER_JOB = 4
# NOTE: set just before a fork so the workers inherit the linked project instead of receiving it pickled
_FORK_STATE: tuple[Any, list[Route]] | None = None


def _analyze_routes(an: Analyzer, routes: list[Route], indices: list[int]) -> list[tuple[int, HandlerFacts]]:
    out = []
    for i in indices:
        try:
            analyze_route(an, routes[i])
        except RecursionError:
            pass
        out.append((i, routes[i].facts))
    return out


_WORKER_ANALYZER: Analyzer | None = None


def _analyze_chunk(indices: list[int]) -> list[tuple[int, HandlerFacts]]:
    # one Analyzer per worker process: its helper memo and parsed trees serve every chunk the worker takes
    global _WORKER_ANALYZER
    assert _FORK_STATE is not None
    project, routes = _FORK_STATE
    if _WORKER_ANALYZER is None or _WORKER_ANALYZER.project is not project:
        _WORKER_ANALYZER = Analyzer(project)
    return _analyze_routes(_WORKER_ANALYZER, routes, indices)


def _route_chunks(routes: list[Route], todo: list[int], n: int) -> list[list[int]]:
    """Split the routes into n contiguous chunks in handler-file order: routes of one package share helpers and
    files, so keeping them in one worker avoids analysing (and re-parsing) the same helpers in every worker."""
    ordered = sorted(todo, key=lambda i: (routes[i].handler_file or routes[i].file, i))
    size, extra = divmod(len(ordered), n)
    out, start = [], 0
    for k in range(n):
        end = start + size + (1 if k < extra else 0)
        out.append(ordered[start:end])
        start = end
    return [c for c in out if c]


SETTINGS_EARLY_MIN_MODULES = 300
_SETTINGS_STATE: Any = None


class EarlySettings:
    """The project-level facts computed by a forked process while the parent links the routes (the second core is
    idle then). A fresh Analyzer, as in the parallel route path that uses the result."""

    def __init__(self, project: Any) -> None:
        global _SETTINGS_STATE
        _SETTINGS_STATE = project
        try:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("fork"))
            self._future = self._pool.submit(_early_settings)  # forks now, with the project inherited
        finally:
            _SETTINGS_STATE = None

    def result(self) -> list[dict[str, Any]]:
        try:
            return self._future.result()
        finally:
            self._pool.shutdown(wait=True)

    def discard(self) -> None:
        # no waiting: the worker ends by itself, sooner than the serial path that replaces its result
        self._pool.shutdown(wait=False, cancel_futures=True)


def _early_settings() -> list[dict[str, Any]]:
    project = _SETTINGS_STATE
    return _collect_settings_safe(project, Analyzer(project))


def start_settings(project: Any, jobs: int = 0) -> EarlySettings | None:
    """Start the project-level facts early on big projects when there is a core to spare, else None."""
    jobs = jobs or (os.cpu_count() or 1)
    if jobs <= 1 or len(project.python) < SETTINGS_EARLY_MIN_MODULES or "fork" not in mp.get_all_start_methods():
        return None
    return EarlySettings(project)


def attach_handler_facts(project: Any, model: AppModel, jobs: int = 0, early: EarlySettings | None = None) -> None:
    """Fill every route's HandlerFacts (routes spread over forked workers on big apps), then add
    project-level facts for the non-route rules (`early`: already under way in another process)."""
    global _FORK_STATE
    an = Analyzer(project)
    todo = [i for i, r in enumerate(model.routes)
            if not (r.facts.accesses or r.facts.extra.get("handler_module"))]
    jobs = jobs or (os.cpu_count() or 1)
    if jobs > 1 and len(todo) >= PARALLEL_MIN_ROUTES and "fork" in mp.get_all_start_methods():
        _FORK_STATE = (project, model.routes)
        try:
            with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("fork")) as pool:
                chunks = _route_chunks(model.routes, todo, HF_CHUNKS_PER_JOB * jobs)
                futures = [pool.submit(_analyze_chunk, c) for c in chunks]
                # the project-level facts are computed here meanwhile (or were started before linking)
                settings = early.result() if early is not None else _collect_settings_safe(project, an)
                parts = [f.result() for f in futures]
        finally:
            _FORK_STATE = None
        for part in parts:
            for i, facts in part:
                model.routes[i].facts = facts
    else:
        # serial: the settings read the Analyzer the routes warmed, as always; an early start is dropped
        if early is not None:
            early.discard()
        _analyze_routes(an, model.routes, todo)
        settings = _collect_settings_safe(project, an)
    model.settings.extend(settings)


def _collect_settings_safe(project: Any, an: Analyzer) -> list[dict[str, Any]]:
    try:
        return collect_settings(project, an)
    except RecursionError:  # pragma: no cover - pathological nesting
        return []


# ------------------------------------------------------------------------------------------- project facts

SECRET_NAME = re.compile(
    r"(^|[^a-z])(secret|secret_key|api_?key|apikey|access_?key|private_?key|client_secret|auth_?token|"
    r"access_?token|refresh_?token|token_secret|jwt_?secret|signing_?key|password|passwd|pwd|credentials?|"
    r"encryption_?key|master_?key|webhook_?secret|session_?key|salt|cvc|cvv|pin)s?($|[^a-z])", re.I)
NOT_SECRET_NAME = re.compile(r"(_url|_uri|_path|_file|_dir|_name|_header|_field|_length|_len|_min|_max|_type|"
                             r"_algorithm|_alg|_expire\w*|_ttl|_lifetime|_prefix|_env|_var|_id|_label|_hint|"
                             r"_pattern|_regex|_policy|_format|_template|_endpoint|_version|_validators?|_hasher\w*|_title|_description|"
                             r"_help|_placeholder|_message|_text|_key_name|_param|_parameter|_option|_setting|_charset|_chars|"
                             r"_alphabet|_characters|"
                             r"_reset\w*|_changed\w*|_required|_backend|_class|_mode|_timeout|_enabled)$|"
                             r"^(auth_password_validators|password_hashers|secret_key_fallbacks)$", re.I)
PLACEHOLDER = re.compile(
    r"^(|x+|\*+|\.+|-+|_+|<.*>|\{\{.*\}\}|\$\{.*\}|\$\w+|%\(.*\)s|%s|none|null|nil|undefined|true|false|"
    r"change[-_ ]?(me|this|it)\w*|replace[-_ ]?me\w*|your[-_ ].*|my[-_]?secret\w*|example\w*|sample\w*|dummy\w*|"
    r"placeholder\w*|fake\w*|test\w*|todo|fixme|tbd|secret|password|passwd|pass|pwd|key|token|\.\.\.|"
    r"insert[-_ ].*|put[-_ ].*|enter[-_ ].*|set[-_ ].*|default|xxx\w*|foo\w*|bar|baz|not[-_ ]?set|"
    r"super[-_]?secret\w*|s3cr3t)$", re.I)
WEAK_REAL = re.compile(r"^(password|admin|root|secret|123456\d*|qwerty|letmein|pass|changeit|random|test|guest)$",
                       re.I)
PROVIDER_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    *PROVIDER_KEYS,
    ("private-key", re.compile(r"-----BEGIN (RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----")),
)
CONN_STRING = re.compile(r"\b(postgres(ql)?|mysql|mariadb|mongodb(\+srv)?|redis|amqp|mssql|oracle)(\+\w+)?://"
                         r"([^:@/\s'\"]+):([^@/\s'\"]+)@", re.I)
EXAMPLE_PATH = re.compile(r"(^|/)(tests?|testing|fixtures?|examples?|samples?|docs?|demo|spec|e2e|mocks?|cypress|"
                          r"playwright|\.github|\.gitlab|\.circleci|\.ci|ci|contrib|dev|local|lang|locales?|i18n|l10n|translations?|messages)(/|$)|"
                          r"(docker-)?compose[\w.-]*\.ya?ml$|(^|/)(Taskfile|Makefile|justfile|tox|noxfile|Procfile)[\w.]*$|"
                          r"\.gitlab-ci\.yml$|(^|/)(test|testing|dev|development|local|ci)(_settings|settings)?\.py$|"
                          r"(\.example|\.sample|\.template|\.dist|example\.|sample\.|_example|test_|_test\.py|cypress\.json|"
                          r"\.env\.(test|testing|ci|dev|development|local)$|_testing\.py$|google-services\.json|"
                          r"GoogleService-Info|"
                          r"conftest\.py)", re.I)
SETTINGS_FILE = re.compile(r"(^|/)(settings|config|configuration|conf|local_settings)[\w.-]*\.py$|(^|/)settings/", re.I)
CODE_EXT = re.compile(r"\.py$")


def _entropy(s: str) -> float:
    import math

    if not s:
        return 0.0
    counts: dict[str, int] = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / len(s) * math.log2(c / len(s)) for c in counts.values())


def classify_secret_value(name: str, value: str, rel: str) -> tuple[str, str] | None:
    """(strength, why) for a literal assigned to a secret-named target; None when it is not a secret.

    strength: strong (high-entropy or provider-shaped), weak (a real but guessable literal),
    placeholder (an example value, a template variable, a test fixture).
    """
    v = value.strip()
    if re.fullmatch(r"(?i)(true|false|yes|no|on|off|none|null|\d+(\.\d+)?)", v):
        return None
    if len(v) > 400 or "\n" in v or " " in v.strip() and not CONN_STRING.search(v):
        return None
    if re.match(r"^(https?|file)://", v) and not CONN_STRING.search(v):
        return None
    if re.fullmatch(r"[A-Z_][A-Z0-9_]*", v) and len(v) > 3:  # an env var *name*, not its value
        return None
    if re.fullmatch(r"[a-z]+(\.[a-z_]+)+", v):  # a dotted import path / setting name
        return None
    if any(ord(ch) > 127 for ch in v) or re.fullmatch(r"[A-Z][a-z]+(?:[ -][A-Za-z]+)*[.:!?]?", v):
        return None  # a UI label ("Password", "Passwort"), not a credential
    norm_v = re.sub(r"[^a-z0-9]", "", v.lower())
    norm_n = re.sub(r"[^a-z0-9]", "", name.lower())
    if norm_v and (norm_v in norm_n or norm_n in norm_v) and not WEAK_REAL.match(v):
        return None  # an enum/identifier whose value is its own name: client_secret = "client_secret"
    if re.fullmatch(r"[a-z][a-z0-9]*([_:.-][a-z0-9]+)+", v) and not re.search(r"\d{3,}", v) and len(v) < 60:
        return None  # identifiers, scopes ("org_tokens:read"), dotted names
    if re.search(r"dev|local|test|example|sample|dummy|change_?me|change_?this|insecure|placeholder|fake|"
                 r"not[-_]?secret|do[-_]?not[-_]?use", v, re.I):
        return "placeholder", "development default"
    if PLACEHOLDER.match(v) and not WEAK_REAL.match(v):
        return "placeholder", "placeholder value"
    if EXAMPLE_PATH.search(rel):
        return "placeholder", "example or test file"
    if WEAK_REAL.match(v) or len(v) < 8:
        return "weak", "short or well-known literal"
    if _entropy(v) >= 3.0 or any(p.search(v) for _, p in PROVIDER_PATTERNS):
        return "strong", "high-entropy literal"
    return "weak", "low-entropy literal"


def _const_str(e: Expr | None) -> str | None:
    if e is None:
        return None
    if e.kind == "str" and isinstance(e.value, str):
        return e.value
    return None


def _getenv_default(e: Expr) -> Expr | None:
    """os.getenv("X", "default") / os.environ.get("X", "d") / config("X", default="d") -> the default."""
    if e.kind != "call":
        return None
    nm = e.name or ""
    if nm.endswith(("getenv", "environ.get", "env.str", "env", "config")) or e.last in ("get_env", "env"):
        d = e.kw("default") or e.arg(1)
        return d
    return None


def _resolve_literal(an: Analyzer, module: PyModule, e: Expr | None, depth: int = 0) -> Expr | None:
    """Follow names/attributes to a literal list/str/bool (module assigns, class attrs such as settings.x)."""
    if e is None or depth > 4:
        return None
    if e.kind in ("str", "list", "tuple", "set", "bool", "num"):
        return e
    if e.kind in ("name", "attr") and e.name:
        sym = None
        try:
            sym = an.index.resolve(module, e.name)
        except RecursionError:
            sym = None
        if sym is not None and sym.kind == "assign" and sym.assign is not None:
            return _resolve_literal(an, sym.module, sym.assign.value, depth + 1)
        attr = e.name.rsplit(".", 1)[-1]
        if "." in e.name:
            cands = []
            for m in an.project.python:
                for c in m.classes.values():
                    a = c.attrs.get(attr)
                    if a is not None:
                        cands.append((m, a))
            if len(cands) == 1:
                m, a = cands[0]
                val = a.value
                if val.kind == "call" and val.last in ("Field", "field") and (val.kw("default") or val.arg(0)):
                    val = val.kw("default") or val.arg(0) or val
                return _resolve_literal(an, m, val, depth + 1)
    if e.kind == "call" and e.last in ("Field", "field"):
        return _resolve_literal(an, module, e.kw("default") or e.arg(0), depth + 1)
    return None


def _module_functions_calling(mod: PyModule, pattern: re.Pattern[str]) -> list[FunctionDef]:
    return [f for f in mod.functions.values() if pattern.search(f.name)]


def _cors_facts(an: Analyzer, mod: PyModule) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    calls = [c for c, _ in mod.calls]
    for a in mod.assigns:
        calls.extend(x for x in a.value.iter_calls() if x.last == "Middleware")
    for c in calls:
        first = c.arg(0)
        is_starlette = (c.last == "add_middleware" and first is not None and (first.last or first.name) == "CORSMiddleware") or (
            c.last == "Middleware" and first is not None and (first.last or first.name) == "CORSMiddleware")
        is_flask = c.last == "CORS" or c.name == "flask_cors.CORS"
        if not (is_starlette or is_flask):
            continue
        if is_starlette:
            origins = c.kw("allow_origins")
            regex = c.kw("allow_origin_regex")
            creds = c.kw("allow_credentials")
        else:
            origins = c.kw("origins") or c.kw("resources")
            regex = None
            creds = c.kw("supports_credentials")
        lit = _resolve_literal(an, mod, origins)
        wildcard = False
        if lit is not None:
            vals = [x.value for x in ([lit] if lit.kind == "str" else lit.args) if x.kind == "str"]
            wildcard = "*" in vals or any(v in (".*", "*") for v in vals)
        elif origins is None and is_flask:
            wildcard = True  # flask-cors defaults to origins="*"
        reflected = False
        if regex is not None:
            rv = _const_str(_resolve_literal(an, mod, regex))
            if rv is not None and (rv.startswith(".*") or not rv.endswith("$") and re.search(r"(?<!\\)\.[a-z]", rv)
                                   or rv in (".*", "^.*$")):
                reflected = True
        cl = _resolve_literal(an, mod, creds)
        credentials = bool(cl is not None and cl.kind == "bool" and cl.value)
        if wildcard or reflected:
            out.append({"kind": "cors", "file": mod.path, "line": c.line, "framework": "flask" if is_flask else "starlette",
                        "wildcard": wildcard, "reflected": reflected, "credentials": credentials,
                        "text": c.text[:160]})
    # Django (django-cors-headers)
    if SETTINGS_FILE.search(mod.path):
        allow_all = mod.module_assign("CORS_ALLOW_ALL_ORIGINS") or mod.module_assign("CORS_ORIGIN_ALLOW_ALL")
        creds_a = mod.module_assign("CORS_ALLOW_CREDENTIALS")
        if allow_all is not None and allow_all.value.kind == "bool" and allow_all.value.value:
            out.append({"kind": "cors", "file": mod.path, "line": allow_all.line, "framework": "django",
                        "wildcard": True, "reflected": False,
                        "credentials": bool(creds_a is not None and creds_a.value.kind == "bool" and creds_a.value.value),
                        "text": f"{allow_all.target} = True"})
    return out


def _settings_flags(mod: PyModule) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    is_settings = SETTINGS_FILE.search(mod.path) and not EXAMPLE_PATH.search(mod.path)
    if is_settings:
        dbg = mod.module_assign("DEBUG")
        if dbg is not None and dbg.value.kind == "bool" and dbg.value.value:
            out.append({"kind": "debug", "file": mod.path, "line": dbg.line, "framework": "django",
                        "text": "DEBUG = True"})
        hosts = mod.module_assign("ALLOWED_HOSTS")
        if hosts is not None and hosts.value.kind in ("list", "tuple") and any(
                x.kind == "str" and x.value == "*" for x in hosts.value.args):
            out.append({"kind": "allowed-hosts", "file": mod.path, "line": hosts.line, "framework": "django",
                        "text": "ALLOWED_HOSTS = ['*']"})
    for c, _scope in mod.calls:
        if c.last in ("FastAPI", "Flask", "Starlette") and (d := c.kw("debug")) is not None and d.kind == "bool" and d.value:
            out.append({"kind": "debug", "file": mod.path, "line": c.line, "framework": c.last.lower(), "text": c.text[:120]})
    for a in mod.assigns:
        if re.search(r"config\[['\"]DEBUG['\"]\]$|\.debug$", a.target) and a.value.kind == "bool" and a.value.value \
                and a.scope == "<module>" and not EXAMPLE_PATH.search(mod.path):
            out.append({"kind": "debug", "file": mod.path, "line": a.line, "framework": "flask", "text": f"{a.target} = True"})
    return out


def _target_name(target: str) -> str:
    m = re.search(r"\[\s*['\"]([^'\"]+)['\"]\s*\]$", target)
    if m:
        return m.group(1)
    return target.rsplit(".", 1)[-1]


def _project_words(project: Any) -> set[str]:
    import os

    words = {w.lower() for w in re.split(r"[^A-Za-z0-9]+", os.path.basename(project.root.rstrip("/"))) if len(w) > 2}
    for m in project.python[:5000]:
        top = m.path.split("/", 1)[0]
        if top and not top.endswith(".py"):
            words.add(top.lower())
    return words


def _secret_assigns(an: Analyzer, mod: PyModule) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    words = getattr(an, "_project_words", None)
    if words is None:
        words = _project_words(an.project)
        an._project_words = words  # type: ignore[attr-defined]
    for a in mod.assigns:
        name = _target_name(a.target)
        if not SECRET_NAME.search(name) or NOT_SECRET_NAME.search(name):
            continue
        val = a.value
        source = "literal"
        if val.kind == "call" and val.last in ("Field", "SecretStr"):
            val = val.kw("default") or val.arg(0) or val
        d = _getenv_default(val)
        if d is not None:
            val, source = d, "env-default"
        if val.kind == "call" and re.search(r"jwt|secret_key|signing|token_secret", name, re.I) and \
                _weak_generator(an, mod, val):
            out.append({"kind": "secret", "file": mod.path, "line": a.line, "name": name, "strength": "weak",
                        "why": "generated with a non-cryptographic or short random generator", "source": "generator",
                        "value_fp": ""})
            continue
        s = _const_str(val)
        if s is None:
            continue
        cls = classify_secret_value(name, s, mod.path)
        if cls is None:
            continue
        if cls[0] != "placeholder" and (s.lower() in words or any(len(w) >= 4 and w in s.lower() for w in words)):
            cls = ("placeholder", "the project's name as a local default")
        out.append({"kind": "secret", "file": mod.path, "line": a.line, "name": name, "strength": cls[0],
                    "why": cls[1], "source": source, "value_fp": _fp(s)})
    return out


def _weak_generator(an: Analyzer, mod: PyModule, call: Expr) -> bool:
    """A call to a helper that builds the secret from `random.*` (not `secrets`) or a short digit string."""
    for c in call.iter_calls():
        if c.name and c.name.startswith("random.") and "SystemRandom" not in c.name:
            return True
        sym = an.index.resolve(mod, c.name) if c.name else None
        if sym is not None and sym.kind == "function" and sym.func is not None:
            try:
                body = sym.func.body
            except (RecursionError, OSError):
                continue
            if any(((x.name or "").startswith("random.") or (x.name or "") in ("choices", "randint", "randrange"))
                   and "SystemRandom" not in (x.name or "") for x in body.calls):
                return True
    return False


def _fp(value: str) -> str:
    try:
        from apitrail.trace.secrets import fingerprint as keyed
    except ImportError:  # pragma: no cover - the trace helper ships it
        import base64
        import hashlib
        import hmac
        import os

        key = os.environ.get("APITRAIL_FP_KEY", "").encode() or b"apitrail-local"
        return "fp:" + base64.urlsafe_b64encode(hmac.new(key, value.encode(), hashlib.sha256).digest()).decode()[:22]
    return keyed(value)


_RAW_SECRET_LITERALS = (*PROVIDER_LITERALS, "PRIVATE KEY")
_CONN_PREFILTER = re.compile(r"://[^/\s:@'\"]+:[^@/\s'\"]+@")
_RAW_SECRET_BYTES = tuple(lit.encode() for lit in _RAW_SECRET_LITERALS)
_CONN_PREFILTER_BYTES = re.compile(_CONN_PREFILTER.pattern.encode())


RAW_SECRET_SCAN_CHARS = 400_000  # characters of a Python file searched for raw secrets


def raw_secret_candidate_of(data: bytes) -> bool:
    """The raw-secret prefilter on a Python file's bytes (run by the extraction workers, so that the parent opens
    only the candidate files again). It is never False where `_raw_secrets` on the decoded text would find a
    candidate: the literals are ASCII, which UTF-8 (with replacement) decodes byte for byte, and the byte-level
    connection-string class excludes a subset of the characters the text-level one excludes."""
    if len(data) > RAW_SECRET_SCAN_CHARS:
        text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace").read(RAW_SECRET_SCAN_CHARS)
        return _raw_secret_candidate(text)
    return any(lit in data for lit in _RAW_SECRET_BYTES) or (b"://" in data and bool(_CONN_PREFILTER_BYTES.search(data)))


def _raw_secret_candidate(text: str) -> bool:
    return any(lit in text for lit in _RAW_SECRET_LITERALS) or ("://" in text and bool(_CONN_PREFILTER.search(text)))


def _any_of(patterns: list[re.Pattern[str]]) -> re.Pattern[str] | None:
    """One regex that matches a string where any of patterns does (each with its own flags, scoped), or None
    when a pattern has a form this cannot scope."""
    parts = []
    for pat in patterns:
        body = pat.pattern
        flags = "".join(f for f, bit in (("i", re.I), ("m", re.M), ("s", re.S), ("x", re.X)) if pat.flags & bit)
        if body.startswith("(?i)"):
            body, flags = body[4:], "".join(sorted(set(flags + "i")))
        if body.startswith("(?") and not body.startswith(("(?:", "(?<", "(?=", "(?!", "(?P")):
            return None
        parts.append(f"(?{flags}:{body})" if flags else f"(?:{body})")
    try:
        return re.compile("|".join(parts))
    except re.error:
        return None


# a line that none of the patterns matches is skipped with one search instead of one per pattern
_ANY_RAW_SECRET = _any_of([pat for _, pat in PROVIDER_PATTERNS] + [CONN_STRING])


def _raw_secrets(rel: str, text: str, is_config: bool) -> list[dict[str, Any]]:
    """Provider-shaped keys, private keys and connection strings with passwords, anywhere in a file."""
    out: list[dict[str, Any]] = []
    # one pass over the whole text first: most files hold no candidate at all
    if not _raw_secret_candidate(text):
        return out
    for i, line in enumerate(text.splitlines(), 1):
        if len(line) > 2000 or (_ANY_RAW_SECRET is not None and not _ANY_RAW_SECRET.search(line)):
            continue
        for kind, pat in PROVIDER_PATTERNS:
            m = pat.search(line)
            if m:
                val = m.group(0)
                strength = "placeholder" if (EXAMPLE_PATH.search(rel) or re.search(r"EXAMPLE|x{6,}|0{8,}", val)) else "strong"
                out.append({"kind": "secret", "file": rel, "line": i, "name": kind, "strength": strength,
                            "why": f"{kind} pattern", "source": "pattern", "value_fp": _fp(val)})
                break
        else:
            m2 = CONN_STRING.search(line)
            if m2:
                pw = m2.group(6)
                if PLACEHOLDER.match(pw) and not WEAK_REAL.match(pw) or pw.startswith(("$", "{", "%", "<")):
                    strength = "placeholder"
                elif EXAMPLE_PATH.search(rel):
                    strength = "placeholder"
                else:
                    strength = "weak" if WEAK_REAL.match(pw) or len(pw) < 8 else "strong"
                out.append({"kind": "secret", "file": rel, "line": i, "name": "connection-string", "strength": strength,
                            "why": "connection string with an embedded password", "source": "pattern",
                            "value_fp": _fp(pw)})
    return out


ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*[:=]\s*(.*?)\s*$")


def _config_secrets(rel: str, text: str) -> list[dict[str, Any]]:
    """KEY=value (.env, ini), `key: value` (yaml) and "key": "value" (json) with secret-named keys."""
    out: list[dict[str, Any]] = []
    low = rel.lower()
    if low.endswith((".md", ".rst", ".txt", ".html", ".lock", ".svg", ".csv")) or "openapi" in low or "swagger" in low:
        return out
    json_kv = re.compile(r"\"([A-Za-z_][\w.-]*)\"\s*:\s*\"([^\"]*)\"")
    for i, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("#", ";", "//")) or len(line) > 1000:
            continue
        pairs: list[tuple[str, str]] = []
        if low.endswith(".json"):
            pairs = json_kv.findall(line)
        else:
            m = ENV_LINE.match(line)
            if m:
                pairs = [(m.group(1), m.group(2))]
        for key, raw in pairs:
            name = key.rsplit(".", 1)[-1]
            if not SECRET_NAME.search(name) or NOT_SECRET_NAME.search(name):
                continue
            val = raw.split(" #", 1)[0].strip().strip("'\"")
            if not val or val.startswith(("$", "{", "!", "&", "*", "[", "(", "%", "<")) or val in ("|", ">", "~"):
                continue
            cls = classify_secret_value(name, val, rel)
            if cls is None:
                continue
            strength, why = cls
            if strength != "placeholder" and (".example" in low or "sample" in low or "template" in low):
                strength, why = "placeholder", "example config file"
            out.append({"kind": "secret", "file": rel, "line": i, "name": name, "strength": strength, "why": why,
                        "source": "config", "value_fp": _fp(val)})
    return out


def _credential_kwargs(mod: PyModule) -> list[dict[str, Any]]:
    """Seeded credentials in code: `create_user(..., password="kaylee123")`."""
    out: list[dict[str, Any]] = []
    if EXAMPLE_PATH.search(mod.path):
        return out
    seed_file = bool(re.search(r"(^|/)(init|initial\w*|seed\w*|populate\w*|bootstrap\w*|fixtures?)\.py$", mod.path))
    for f in mod.functions.values():
        if not seed_file and not re.search(r"seed|init_db|populate|bootstrap|load_users|create_users", f.qualname, re.I):
            continue
        try:
            body = f.body
        except (RecursionError, OSError):
            continue
        for c in body.calls:
            for k, v in c.kwargs.items():
                s = _const_str(v)
                if s and PASSWORD_NAME.search(k) and len(s) >= 4 and not PLACEHOLDER.match(s):
                    out.append({"kind": "secret", "file": mod.path, "line": v.line, "name": k, "strength": "weak",
                                "why": "credential literal passed in code", "source": "call", "value_fp": _fp(s)})
    return out


JWT_MODULES = ("jwt", "jose", "authlib", "jwcrypto", "python_jwt", "flask_jwt_extended", "rest_framework_simplejwt")


def _jwt_facts(an: Analyzer, mod: PyModule) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    tops = {ref.module.split(".")[0] for ref in mod.imports.values()}
    if not tops & set(JWT_MODULES):
        return out
    for f in mod.functions.values():
        try:
            body = f.body
        except (RecursionError, OSError):
            continue
        decoded: dict[str, int] = {}
        for c in body.calls:
            nm = c.name or ".".join(c.chain())
            last = c.last
            if last not in ("decode", "encode", "get_unverified_claims", "get_unverified_header", "decode_complete"):
                continue
            if not re.search(r"(^|\.)(jwt|jose|jws|JWT|PyJWT|token)\b", nm) and "jwt" not in nm.lower():
                continue
            opts = c.kw("options")
            opt_text = opts.text if opts is not None else ""
            verify_false = False
            if opts is not None:
                vs = opts.kwargs.get("verify_signature")
                if vs is not None:
                    lit = _resolve_literal(an, mod, vs)
                    verify_false = bool(lit is not None and lit.kind == "bool" and lit.value is False) or (
                        vs.kind == "bool" and vs.value is False)
            vkw = c.kw("verify")
            if vkw is not None and vkw.kind == "bool" and vkw.value is False:
                verify_false = True
            algs = c.kw("algorithms")
            alg_none = bool(algs is not None and re.search(r"['\"]none['\"]", algs.text, re.I))
            alg_from_token = bool(algs is not None and re.search(r"get_unverified_header|header\[|\[['\"]alg['\"]\]",
                                                                 algs.text))
            key = c.arg(1) if len(c.args) > 1 else (c.kw("key") or c.kw("secret"))
            no_key = last == "decode" and key is None and not verify_false
            unverified_api = last in ("get_unverified_claims",)
            key_lit = None
            if key is not None:
                key_lit = _key_literal(an, mod, key)
            out.append({"kind": "jwt", "file": mod.path, "line": c.line, "op": last, "func": f.qualname,
                        "verify_false": verify_false, "alg_none": alg_none, "alg_from_token": alg_from_token,
                        "no_key": no_key and last == "decode" and "options" not in c.kwargs,
                        "unverified_api": unverified_api, "key_literal": key_lit, "text": c.text[:160],
                        "options": opt_text[:80]})
            if verify_false or unverified_api:
                for a in body.assigns:
                    if a.line >= c.line and a.value.line == c.line:
                        decoded[a.target] = c.line
        _ = decoded
    return out


def _key_literal(an: Analyzer, mod: PyModule, key: Expr) -> dict[str, Any] | None:
    """The JWT key resolved to a literal: a string constant, a settings value, app.config['SECRET_KEY']."""
    lit = _resolve_literal(an, mod, key)
    if lit is None and key.kind == "call" and key.last == "get" and key.arg(0) is not None:
        cfg_name = _const_str(key.arg(0))
        if cfg_name:
            lit = _config_key_literal(an, cfg_name)
    if lit is None and key.kind == "subscript" and key.args:
        cfg_name = _const_str(key.args[0])
        if cfg_name:
            lit = _config_key_literal(an, cfg_name)
    if lit is None or lit.kind != "str" or not isinstance(lit.value, str):
        return None
    cls = classify_secret_value("secret_key", lit.value, mod.path)
    return {"line": lit.line, "strength": cls[0] if cls else "weak", "fp": _fp(lit.value)}


def _config_key_literal(an: Analyzer, name: str) -> Expr | None:
    for m in an.project.python:
        for a in m.assigns:
            if a.scope == "<module>" and _target_name(a.target) == name and a.value.kind == "str":
                return a.value
    return None


def _hidden_env_files(project: Any) -> list[Any]:
    """`.env` files next to the code that the walk skipped (often listed in .gitignore yet committed)."""
    import os

    from apitrail.scan.frameworks._base import ConfigFile

    known = {c.rel for c in project.configs}
    dirs = {""} | {m.path.rsplit("/", 1)[0] if "/" in m.path else "" for m in project.python}
    out = []
    for d in sorted(dirs)[:2000]:
        for name in (".env", ".env.local", ".env.prod", ".env.production"):
            rel = f"{d}/{name}" if d else name
            if rel in known:
                continue
            path = os.path.join(project.root, rel)
            if os.path.isfile(path) and os.path.getsize(path) < 64_000:
                try:
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        out.append(ConfigFile(rel, fh.read()))
                except OSError:
                    continue
    return out


AUDIT_PACKAGES = frozenset({"simple_history", "auditlog", "reversion", "pghistory", "easyaudit", "django_audit",
                            "sqlalchemy_continuum", "audit_log", "django_auditlog", "actstream"})
SIGNALS = re.compile(r"\b(post_save|pre_save|post_delete|pre_delete|m2m_changed|after_insert|after_update|"
                     r"after_delete|after_flush|before_flush)\b")
CHANGE_WORDS = re.compile(r"change|audit|history|journal|changelog|track", re.I)


def _audit_framework(mod: PyModule) -> dict[str, Any] | None:
    """A project-wide audit trail: an audit package, or a model-signal / ORM-event receiver that records changes."""
    for ref in mod.imports.values():
        if ref.module.split(".")[0] in AUDIT_PACKAGES:
            return {"kind": "audit-framework", "file": mod.path, "line": ref.line, "what": ref.module}
    for f in mod.functions.values():
        deco_text = " ".join(d.text for d in f.decorators)
        if SIGNALS.search(deco_text) and re.search(r"receiver|listens_for", deco_text) and CHANGE_WORDS.search(f.name):
            return {"kind": "audit-framework", "file": mod.path, "line": f.line, "what": f.qualname}
    for c, _ in mod.calls:
        if c.last in ("connect", "listen") and SIGNALS.search(c.text) and CHANGE_WORDS.search(c.text):
            return {"kind": "audit-framework", "file": mod.path, "line": c.line, "what": c.text[:80]}
    return None


def collect_settings(project: Any, an: Analyzer) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for mod in project.python:
        fw = _audit_framework(mod)
        if fw is not None:
            out.append(fw)
            break
    for mod in project.python:
        out.extend(_cors_facts(an, mod))
        out.extend(_settings_flags(mod))
        out.extend(_secret_assigns(an, mod))
        out.extend(_credential_kwargs(mod))
        out.extend(_jwt_facts(an, mod))
        path = mod.src.abs_path
        if path and mod.secret_candidate is not False:
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    text = fh.read(RAW_SECRET_SCAN_CHARS)
            except OSError:
                text = ""
            out.extend(_raw_secrets(mod.path, text, False))
    for cfg in [*project.configs, *_hidden_env_files(project)]:
        out.extend(_raw_secrets(cfg.rel, cfg.text, True))
        out.extend(_config_secrets(cfg.rel, cfg.text))
    # placeholders only matter in real (non-example) env files: elsewhere they are documentation
    out = [s for s in out if s.get("kind") != "secret" or s.get("strength") != "placeholder"
           or re.search(r"(^|/)\.env(\.[a-z]+)?$", s["file"]) and not EXAMPLE_PATH.search(s["file"])]
    # one fact per (file, line)
    seen: set[tuple[str, str, int]] = set()
    dedup = []
    for s in out:
        k = (s["kind"], s["file"], s["line"])
        if k in seen:
            continue
        seen.add(k)
        dedup.append(s)
    return dedup
