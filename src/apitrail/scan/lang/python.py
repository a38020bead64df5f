"""Python facts: a tree-sitter Python tree turned into plain, picklable data.

Framework extractors and the linker never see tree-sitter nodes: they read PyModule facts (imports,
assignments, calls, functions with decorators and parameters, classes with bases and attributes, and the
body facts of every function). Expressions are kept as a small `Expr` tree so that decorators such as
``@router.get("/x", dependencies=[Depends(auth)])`` can be matched structurally.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from tree_sitter import Node

from apitrail.scan.parse import first_error, node_text, parse

MAX_TEXT = 240
MAX_DEPTH = 12


_NO_ARGS: list[Any] = []
_NO_KWARGS: dict[str, Any] = {}


@dataclass
class Expr:
    """A simplified Python expression.

    kind: name, attr, call, str, num, bool, none, list, tuple, set, dict, subscript, fstring, lambda,
    compare, boolop, unary, binop, await, star, other.
    name: dotted name for name/attr (``a.b.c``), the callee's dotted name for call, the value's for subscript.
    """

    kind: str
    text: str
    line: int
    name: str = ""
    value: Any = None
    # NOTE: Exprs are never mutated once built; most have no arguments, and they all share one empty list and
    # one empty dict (a third of the facts' objects fewer to build, pickle and unpickle)
    args: list[Expr] = field(default_factory=lambda: _NO_ARGS)
    kwargs: dict[str, Expr] = field(default_factory=lambda: _NO_KWARGS)
    func: Expr | None = None  # callee of a call, object of a subscript/attr that is not a plain dotted name

    @property
    def last(self) -> str:
        """Last segment of the dotted name: ``router.get`` -> ``get``; for chains ``q.filter(x).first`` -> ``first``."""
        if self.name:
            return self.name.rsplit(".", 1)[-1]
        if self.kind == "call" and self.func is not None:
            return self.func.last
        if self.kind == "attr" and isinstance(self.value, str):
            return self.value
        return ""

    def chain(self) -> list[str]:
        """Attribute/call chain from the root: ``db.query(A).filter(b).first()`` -> [db, query, filter, first]."""
        out: list[str] = []
        cur: Expr | None = self
        while cur is not None:
            if cur.kind in ("name", "attr") and cur.name:
                out.extend(reversed(cur.name.split(".")))
                break
            if cur.kind == "attr":
                out.append(str(cur.value))
                cur = cur.func
            elif cur.kind in ("call", "subscript"):
                cur = cur.func
            else:
                break
        return list(reversed(out))

    @property
    def base(self) -> str:
        """Dotted name without its last segment: ``router.get`` -> ``router``."""
        return self.name.rsplit(".", 1)[0] if "." in self.name else ""

    def kw(self, key: str) -> Expr | None:
        return self.kwargs.get(key)

    def arg(self, index: int) -> Expr | None:
        return self.args[index] if len(self.args) > index else None

    def str_value(self) -> str | None:
        return self.value if self.kind == "str" and isinstance(self.value, str) else None

    def iter_calls(self) -> tuple[Expr, ...]:
        """Every call inside this expression, outermost first (memoised: facts are immutable once built; the memo
        itself is returned, so it is a tuple)."""
        cached = self.__dict__.get("_calls_memo")
        if cached is None:
            out: list[Expr] = []
            stack: list[Expr] = [self]
            while stack:
                cur = stack.pop()
                if cur.kind == "call":
                    out.append(cur)
                children = list(cur.args) + list(cur.kwargs.values())
                if cur.func is not None:
                    children.append(cur.func)
                stack.extend(reversed(children))
            cached = tuple(out)
            self.__dict__["_calls_memo"] = cached
        return cached  # type: ignore[no-any-return]

    def names(self) -> frozenset[str]:
        """Every dotted name referenced inside this expression (memoised; the memo itself is returned)."""
        cached = self.__dict__.get("_names_memo")
        if cached is None:
            found: set[str] = set()
            stack: list[Expr] = [self]
            while stack:
                cur = stack.pop()
                if cur.kind in ("name", "attr") and cur.name:
                    found.add(cur.name)
                stack.extend(cur.args)
                stack.extend(cur.kwargs.values())
                if cur.func is not None:
                    stack.append(cur.func)
            cached = frozenset(found)
            self.__dict__["_names_memo"] = cached
        return cached  # type: ignore[no-any-return]


@dataclass
class ImportRef:
    module: str  # absolute dotted module (relative imports resolved against the importing module)
    name: str | None  # imported attribute, None for `import x.y`
    line: int


@dataclass
class Param:
    name: str
    annotation: Expr | None
    default: Expr | None
    kind: str = "normal"  # normal, star, dstar, kwonly


@dataclass
class Assign:
    target: str  # dotted target text: x, self.x, cls.attr
    value: Expr
    line: int
    scope: str  # "<module>" or qualified function/class name
    annotation: Expr | None = None


@dataclass
class Compare:
    left: Expr
    op: str
    right: Expr
    line: int


@dataclass
class Branch:
    """An if-statement: its condition and what its body does first (raise/abort/return)."""

    condition: Expr
    line: int
    raises: list[Expr] = field(default_factory=list)
    returns: list[Expr] = field(default_factory=list)
    calls: list[Expr] = field(default_factory=list)


@dataclass
class BodyFacts:
    calls: list[Expr] = field(default_factory=list)  # every call, source order
    raises: list[Expr] = field(default_factory=list)
    returns: list[Expr] = field(default_factory=list)
    assigns: list[Assign] = field(default_factory=list)
    compares: list[Compare] = field(default_factory=list)
    branches: list[Branch] = field(default_factory=list)
    strings: list[tuple[str, int]] = field(default_factory=list)  # string literals (for SQL), capped
    names: set[str] = field(default_factory=set)  # identifiers read in the body
    yields: bool = False


@dataclass
class SourceRef:
    """Where a module's source lives now (set after a cache load), shared by its functions for lazy bodies."""

    abs_path: str = ""
    rel: str = ""
    module: str = ""


@dataclass
class FunctionDef:
    """A function's signature, extracted eagerly; its body facts are extracted on first use (re-parse)."""

    name: str
    qualname: str  # Class.method or func; nested functions: outer.<locals>.inner
    line: int
    end_line: int
    decorators: list[Expr]  # top to bottom
    params: list[Param]
    is_async: bool
    class_name: str | None
    src: SourceRef
    start_byte: int = 0
    returns_annotation: Expr | None = None
    decorator_lines: list[int] = field(default_factory=list)
    _body: BodyFacts | None = None
    has_error: bool = False  # a syntax error inside the function: its body is read from the whole file's tree

    @property
    def body(self) -> BodyFacts:
        if self._body is None:
            self._body = load_body(self)
        return self._body


@dataclass
class ClassDef:
    name: str
    qualname: str
    line: int
    end_line: int
    bases: list[Expr]
    keywords: dict[str, Expr]
    decorators: list[Expr]
    attrs: dict[str, Assign]  # class-level assignments
    methods: list[str]  # qualnames


@dataclass
class PyModule:
    path: str  # relative to the scan root, forward slashes
    module: str  # dotted module name derived from the path
    imports: dict[str, ImportRef] = field(default_factory=dict)  # local name -> where it comes from
    star_imports: list[str] = field(default_factory=list)
    assigns: list[Assign] = field(default_factory=list)  # module- and class-level; function-level in bodies
    calls: list[tuple[Expr, str]] = field(default_factory=list)  # statement-level calls everywhere, with scope
    functions: dict[str, FunctionDef] = field(default_factory=dict)
    classes: dict[str, ClassDef] = field(default_factory=dict)
    strings: list[tuple[str, int]] = field(default_factory=list)  # module-level string literals (settings)
    errors: list[tuple[int, int, str]] = field(default_factory=list)  # (line, col, enclosing scope)
    loc: int = 0
    src: SourceRef = field(default_factory=SourceRef)
    # whether the file text may hold a provider key / connection string (set by the engine; None: not checked)
    secret_candidate: bool | None = None

    def function_at(self, qualname: str) -> FunctionDef | None:
        return self.functions.get(qualname)

    def module_assign(self, name: str) -> Assign | None:
        """The last module-level assignment to name (indexed on first use)."""
        index = self.__dict__.get("_assign_index")
        if index is None:
            index = {a.target: a for a in self.assigns if a.scope == "<module>"}
            self.__dict__["_assign_index"] = index
        return index.get(name)


def module_name_for(path: str) -> str:
    p = path[:-3] if path.endswith(".py") else path
    parts = [s for s in p.split("/") if s]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve_relative(current_module: str, is_package: bool, level: int, module: str) -> str:
    parts = current_module.split(".") if current_module else []
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: max(0, len(parts) - (level - 1))]
    base = ".".join(parts)
    if module:
        return f"{base}.{module}" if base else module
    return base


def _clip(text: str) -> str:
    if len(text) <= MAX_TEXT and "\n" not in text and "  " not in text:
        return text
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _string_value(node: Node) -> str | None:
    """Value of a plain (non-f) string literal, or None when it is interpolated."""
    if node.type == "concatenated_string":
        parts = [_string_value(c) for c in node.named_children]
        if any(p is None for p in parts):
            return None
        return "".join(p for p in parts if p is not None)
    out: list[str] = []
    for child in node.children:
        if child.type == "interpolation":
            return None
        if child.type == "string_content":
            out.append(node_text(child))
        elif child.type == "escape_sequence":
            raw = node_text(child)
            try:
                out.append(raw.encode("latin-1", "backslashreplace").decode("unicode_escape"))
            except UnicodeDecodeError:
                out.append(raw)
    return "".join(out)


def _dotted(node: Node) -> str:
    if node.type == "identifier":
        return node_text(node)
    if node.type == "attribute":
        obj = node.child_by_field_name("object")
        attr = node.child_by_field_name("attribute")
        if obj is not None and attr is not None:
            left = _dotted(obj)
            if left:
                return f"{left}.{node_text(attr)}"
    return ""


class _ExprMemo(threading.local):
    """Conversions of one tree while a function body is extracted: node id -> (expr, depth, height).

    A body's statements convert the same subtrees again and again (an assignment's value, then every call inside
    it, outermost first). to_expr is a pure function of (node, depth), and depth only matters near MAX_DEPTH (and
    for a ``type`` node at depth 0), so a conversion is reused at the same depth, or, for a call, at another
    depth when neither conversion came near the depth limit. Exprs are never mutated, so sharing them is safe.
    Thread-local: node ids are unique within one tree only, and two threads may extract bodies at once.
    """

    table: dict[int, tuple[Expr, int, int]] | None = None
    deepest = 0


_MEMO = _ExprMemo()


def to_expr(node: Node | None, depth: int = 0) -> Expr:
    table = _MEMO.table
    if table is None or node is None:
        return _to_expr(node, depth)
    key = node.id
    hit = table.get(key)
    if hit is not None:
        expr, at, height = hit
        if at == depth or (depth + height < MAX_DEPTH and at + height < MAX_DEPTH and node.type == "call"):
            if depth + height > _MEMO.deepest:
                _MEMO.deepest = depth + height
            return expr
    outer = _MEMO.deepest
    _MEMO.deepest = depth
    expr = _to_expr(node, depth)
    table[key] = (expr, depth, _MEMO.deepest - depth)
    if outer > _MEMO.deepest:
        _MEMO.deepest = outer
    return expr


def _to_expr(node: Node | None, depth: int) -> Expr:
    if node is None:
        return Expr("other", "", 0)
    line = node.start_point[0] + 1
    t = node.type
    if depth < MAX_DEPTH or t not in ("string", "concatenated_string"):
        # node_text and _clip inlined: this runs for every converted node
        raw = node.text
        text = raw.decode("utf-8", "replace") if raw is not None else ""
        if len(text) > MAX_TEXT or "\n" in text or "  " in text:
            text = _clip(text)
    else:
        text = ""
    if depth > MAX_DEPTH:
        return Expr("other", text, line)
    d = depth + 1
    if t == "identifier":
        return Expr("name", text, line, name=text)
    if t == "attribute":
        name = _dotted(node)
        obj = node.child_by_field_name("object")
        if name:
            return Expr("attr", text, line, name=name)
        attr = node.child_by_field_name("attribute")
        return Expr("attr", text, line, name="", value=node_text(attr), func=to_expr(obj, d))
    if t == "call":
        fn = node.child_by_field_name("function")
        args_node = node.child_by_field_name("arguments")
        fexpr = to_expr(fn, d)
        args: list[Expr] = []
        kwargs: dict[str, Expr] = {}
        if args_node is not None:
            for a in args_node.named_children:
                if a.type == "keyword_argument":
                    k = a.child_by_field_name("name")
                    v = a.child_by_field_name("value")
                    kwargs[node_text(k)] = to_expr(v, d)
                elif a.type == "comment":
                    continue
                elif a.type in ("list_splat", "dictionary_splat"):
                    inner = a.named_children[0] if a.named_children else None
                    args.append(Expr("star", _clip(node_text(a)), line, args=[to_expr(inner, d)]))
                else:
                    args.append(to_expr(a, d))
        return Expr("call", text, line, name=fexpr.name, args=args or _NO_ARGS, kwargs=kwargs or _NO_KWARGS, func=fexpr)
    if t in ("string", "concatenated_string"):
        val = _string_value(node)
        if val is None:
            return Expr("fstring", _clip(node_text(node)), line)
        return Expr("str", _clip(node_text(node)), line, value=val)
    if t == "integer":
        try:
            return Expr("num", text, line, value=int(text.replace("_", ""), 0))
        except ValueError:
            return Expr("num", text, line)
    if t == "float":
        return Expr("num", text, line)
    if t in ("true", "false"):
        return Expr("bool", text, line, value=(t == "true"))
    if t == "none":
        return Expr("none", text, line)
    if t in ("list", "tuple", "set", "expression_list", "pattern_list", "tuple_pattern", "list_pattern"):
        kind = {"expression_list": "tuple", "pattern_list": "tuple", "tuple_pattern": "tuple", "list_pattern": "list"}.get(t, t)
        items = [to_expr(c, d) for c in node.named_children if c.type != "comment"]
        return Expr(kind, text, line, args=items or _NO_ARGS)
    if t == "dictionary":
        kw: dict[str, Expr] = {}
        items = []
        for pair in node.named_children:
            if pair.type == "pair":
                k = pair.child_by_field_name("key")
                v = pair.child_by_field_name("value")
                kv = to_expr(k, d)
                vv = to_expr(v, d)
                if kv.kind == "str" and isinstance(kv.value, str):
                    kw[kv.value] = vv
                items.append(Expr("tuple", "", line, args=[kv, vv]))
        return Expr("dict", text, line, args=items or _NO_ARGS, kwargs=kw or _NO_KWARGS)
    if t == "subscript":
        value_node = node.child_by_field_name("value")
        vexpr = to_expr(value_node, d)
        subs = [to_expr(c, d) for c in node.children_by_field_name("subscript")]
        return Expr("subscript", text, line, name=vexpr.name, args=subs or _NO_ARGS, func=vexpr)
    if t == "generic_type":  # `Annotated[X, Depends(y)]` in a type context (PEP 695 aliases)
        head = node.named_children[0] if node.named_children else None
        hexpr = to_expr(head, d)
        params = next((c for c in node.named_children if c.type == "type_parameter"), None)
        subs = []
        for c in params.named_children if params is not None else []:
            inner = c.named_children[0] if c.type == "type" and c.named_children else c
            subs.append(to_expr(inner, d))
        return Expr("subscript", text, line, name=hexpr.name, args=subs or _NO_ARGS, func=hexpr)
    if t == "type" and len(node.named_children) == 1:
        return to_expr(node.named_children[0], depth) if depth else Expr("other", text, line, args=[
            to_expr(node.named_children[0], d)])
    if t == "parenthesized_expression":
        inner_nodes = [c for c in node.named_children if c.type != "comment"]
        return to_expr(inner_nodes[0], depth) if inner_nodes else Expr("other", text, line)
    if t == "await":
        inner = node.named_children[0] if node.named_children else None
        e = to_expr(inner, depth)
        return e
    if t == "comparison_operator":
        ops = [node_text(c) for c in node.children if not c.is_named]
        operands = [to_expr(c, d) for c in node.named_children]
        return Expr("compare", text, line, value=" ".join(ops), args=operands)
    if t == "boolean_operator":
        op = node.child_by_field_name("operator")
        return Expr("boolop", text, line, value=node_text(op),
                    args=[to_expr(node.child_by_field_name("left"), d), to_expr(node.child_by_field_name("right"), d)])
    if t == "not_operator":
        return Expr("unary", text, line, value="not", args=[to_expr(node.child_by_field_name("argument"), d)])
    if t == "binary_operator":
        op = node.child_by_field_name("operator")
        return Expr("binop", text, line, value=node_text(op),
                    args=[to_expr(node.child_by_field_name("left"), d), to_expr(node.child_by_field_name("right"), d)])
    if t == "lambda":
        body = node.child_by_field_name("body")
        return Expr("lambda", text, line, args=[to_expr(body, d)])
    if t == "keyword_argument":
        return to_expr(node.child_by_field_name("value"), depth)
    if t == "conditional_expression":
        return Expr("other", text, line, args=[to_expr(c, d) for c in node.named_children] or _NO_ARGS)
    if t in ("list_comprehension", "generator_expression", "set_comprehension", "dictionary_comprehension"):
        return Expr("other", text, line, args=[to_expr(c, d) for c in node.named_children] or _NO_ARGS)
    # unknown: keep nested calls reachable
    return Expr("other", text, line, args=[to_expr(c, d) for c in node.named_children if c.type not in ("comment",)] or _NO_ARGS)


REGISTRATION_PREFIXES = ("add_", "register", "include", "mount", "route", "api_route", "before_", "after_",
                         "get", "post", "put", "patch", "delete", "websocket", "url", "path", "re_path", "init_app",
                         "use", "wrap", "setup", "configure", "decorate", "login_required")


def _callee_last(call: Node) -> str:
    fn = call.child_by_field_name("function")
    if fn is None:
        return ""
    if fn.type == "attribute":
        attr = fn.child_by_field_name("attribute")
        return node_text(attr)
    if fn.type == "identifier":
        return node_text(fn)
    if fn.type == "call":  # app.get("/x")(handler)
        return _callee_last(fn)
    return ""


def _is_registration(call: Node) -> bool:
    """Statement-level calls inside function bodies that may register routes, mounts or hooks."""
    last = _callee_last(call)
    return last.startswith(REGISTRATION_PREFIXES) or last.endswith(("_resource", "_router", "_blueprint", "_route"))


def _is_constructor(call: Node) -> bool:
    last = _callee_last(call)
    return bool(last) and (last[0].isupper() or last.endswith(("router", "Router", "app", "blueprint")))


_STRUCTURAL_TYPE_HINTS = ("Depends", "Security", "Annotated", "Query", "Path", "Body", "Header", "Cookie", "Form")
_STRUCTURAL_TYPE_RE = re.compile("|".join(_STRUCTURAL_TYPE_HINTS))  # any hint as a substring, in one C call


def type_expr(node: Node) -> Expr:
    """A type annotation: kept structurally only when it can carry a dependency (Annotated[..., Depends(x)]) or
    is a plain (dotted) name that may be an alias; other types (``list[int] | None``) keep their text and head
    name only, which cuts the facts of typed code by a third."""
    text = node_text(node)
    inner = node.named_children[0] if node.type == "type" and node.named_children else node
    if _STRUCTURAL_TYPE_RE.search(text) or inner.type in ("identifier", "attribute"):
        return to_expr(node)
    head = inner.child_by_field_name("value") if inner.type == "subscript" else None
    line = node.start_point[0] + 1
    shallow = Expr("other", _clip(text), line, name=_dotted(head) if head is not None else "")
    return Expr("other", shallow.text, line, args=[shallow]) if node.type == "type" else shallow


class _Extractor:
    def __init__(self, path: str, module: str, is_package: bool, full_bodies: bool = False) -> None:
        self.mod = PyModule(path=path, module=module)
        self.mod.src = SourceRef(rel=path, module=module)
        self.is_package = is_package
        self.full_bodies = full_bodies
        self.skip_definitions = False

    def _skeleton(self, block: Node, scope: str, prefix: str) -> None:
        """Eager pass over a function body: nested definitions, statement-level calls and assignments only."""
        for stmt in block.named_children:
            t = stmt.type
            if t in ("decorated_definition", "function_definition", "class_definition", "import_statement",
                     "import_from_statement"):
                self._stmt(stmt, scope, None, None, prefix)
            elif t == "expression_statement":
                for child in stmt.named_children:
                    if child.type == "call" and _is_registration(child):
                        self.mod.calls.append((to_expr(child), scope))
                    elif child.type == "assignment":
                        right = child.child_by_field_name("right")
                        left = child.child_by_field_name("left")
                        if right is not None and left is not None and right.type == "call" and _is_constructor(right):
                            value = to_expr(right)
                            self.mod.assigns.append(Assign(node_text(left), value, child.start_point[0] + 1, scope))
                            self.mod.calls.append((value, scope))
            elif t in ("if_statement", "for_statement", "while_statement", "with_statement", "try_statement",
                       "else_clause", "elif_clause", "except_clause", "finally_clause", "block", "match_statement",
                       "case_clause", "except_group_clause"):
                for child in stmt.named_children:
                    if child.type == "block":
                        self._skeleton(child, scope, prefix)
                    elif child.type in ("else_clause", "elif_clause", "except_clause", "finally_clause",
                                        "case_clause", "except_group_clause"):
                        self._skeleton_wrap(child, scope, prefix)

    def _skeleton_wrap(self, clause: Node, scope: str, prefix: str) -> None:
        for child in clause.named_children:
            if child.type == "block":
                self._skeleton(child, scope, prefix)

    # -- statements -----------------------------------------------------------------------------------
    def module(self, root: Node) -> PyModule:
        self._block(root, scope="<module>", cls=None, body=None, prefix="")
        return self.mod

    def _block(self, block: Node, scope: str, cls: ClassDef | None, body: BodyFacts | None, prefix: str) -> None:
        for stmt in block.named_children:
            self._stmt(stmt, scope, cls, body, prefix)

    def _stmt(self, stmt: Node, scope: str, cls: ClassDef | None, body: BodyFacts | None, prefix: str) -> None:
        t = stmt.type
        if t in ("import_statement", "import_from_statement", "future_import_statement"):
            self._import(stmt)
            return
        if self.skip_definitions and body is not None and t in ("decorated_definition", "function_definition",
                                                                 "class_definition"):
            return
        if t == "decorated_definition":
            decorators = [c for c in stmt.named_children if c.type == "decorator"]
            definition = stmt.child_by_field_name("definition")
            if definition is not None:
                self._definition(definition, decorators, scope, cls, body, prefix)
            return
        if t in ("function_definition", "class_definition"):
            self._definition(stmt, [], scope, cls, body, prefix)
            return
        if t == "type_alias_statement":  # PEP 695: `type CurrentUser = Annotated[User, Depends(...)]`
            left = stmt.child_by_field_name("left")
            right = stmt.child_by_field_name("right")
            if left is not None and right is not None:
                name_node = left.named_children[0] if left.named_children else left
                value_node = right.named_children[0] if right.type == "type" and right.named_children else right
                alias = Assign(node_text(name_node).split("[")[0], to_expr(value_node), stmt.start_point[0] + 1, scope)
                (body.assigns if body is not None else self.mod.assigns).append(alias)
                if cls is not None and body is None:
                    cls.attrs[alias.target] = alias
            return
        if t == "expression_statement":
            for child in stmt.named_children:
                self._expression_stmt(child, scope, cls, body)
            return
        if body is not None:
            self._body_stmt(stmt, scope, body, prefix)
            return
        # module/class level compound statements: descend (if TYPE_CHECKING, try/except imports, if __name__...)
        for child in stmt.named_children:
            if child.type in ("block", "else_clause", "elif_clause", "except_clause", "finally_clause",
                              "with_statement", "if_statement", "try_statement", "for_statement", "while_statement"):
                if child.type == "block":
                    self._block(child, scope, cls, body, prefix)
                else:
                    self._stmt(child, scope, cls, body, prefix)
            elif child.type in ("decorated_definition", "function_definition", "class_definition",
                                "expression_statement", "import_statement", "import_from_statement"):
                self._stmt(child, scope, cls, body, prefix)

    def _expression_stmt(self, node: Node, scope: str, cls: ClassDef | None, body: BodyFacts | None) -> None:
        if node.type in ("assignment", "augmented_assignment"):
            left = node.child_by_field_name("left")
            right = node.child_by_field_name("right")
            ann = node.child_by_field_name("type")
            value = to_expr(right) if right is not None else Expr("none", "", node.start_point[0] + 1)
            # chained a = b = c: right is itself an assignment
            while right is not None and right.type == "assignment":
                right = right.child_by_field_name("right")
                value = to_expr(right)
            targets: list[str] = []
            if left is not None:
                if left.type in ("pattern_list", "tuple_pattern", "list_pattern"):
                    targets = [node_text(c) for c in left.named_children]
                else:
                    targets = [node_text(left)]
            for tgt in targets:
                a = Assign(tgt, value, node.start_point[0] + 1, scope, type_expr(ann) if ann is not None else None)
                if body is not None:
                    body.assigns.append(a)
                else:
                    self.mod.assigns.append(a)
                    if cls is not None:
                        cls.attrs[tgt] = a
            if body is not None and right is not None:
                self._scan_expr(right, body)
            elif right is not None:
                for c in value.iter_calls():
                    if c is value:
                        self.mod.calls.append((c, scope))
            return
        e = to_expr(node)
        if body is not None:
            self._scan_expr(node, body)
            if e.kind == "call":
                self.mod.calls.append((e, scope))
        else:
            if e.kind == "call":
                self.mod.calls.append((e, scope))
            if e.kind == "str" and isinstance(e.value, str):
                self.mod.strings.append((e.value, e.line))

    def _definition(self, node: Node, decorators: list[Node], scope: str, cls: ClassDef | None,
                    body: BodyFacts | None, prefix: str) -> None:
        name = node_text(node.child_by_field_name("name"))
        qual = f"{prefix}{name}"
        decos = [to_expr(d.named_children[0]) if d.named_children else Expr("other", "", d.start_point[0] + 1)
                 for d in decorators]
        deco_lines = [d.start_point[0] + 1 for d in decorators]
        if node.type == "class_definition":
            bases: list[Expr] = []
            keywords: dict[str, Expr] = {}
            sc = node.child_by_field_name("superclasses")
            if sc is not None:
                for a in sc.named_children:
                    if a.type == "keyword_argument":
                        keywords[node_text(a.child_by_field_name("name"))] = to_expr(a.child_by_field_name("value"))
                    elif a.type != "comment":
                        bases.append(to_expr(a))
            cdef = ClassDef(name, qual, node.start_point[0] + 1, node.end_point[0] + 1, bases, keywords, decos, {}, [])
            self.mod.classes[qual] = cdef
            blk = node.child_by_field_name("body")
            if blk is not None:
                self._block(blk, qual, cdef, None, f"{qual}.")
            return
        params = self._params(node.child_by_field_name("parameters"))
        is_async = any(c.type == "async" for c in node.children[:2])
        ret = node.child_by_field_name("return_type")
        fdef = FunctionDef(name, qual, node.start_point[0] + 1, node.end_point[0] + 1, decos, params, is_async,
                           cls.name if cls is not None else None, self.mod.src, node.start_byte,
                           type_expr(ret) if ret is not None else None, deco_lines)
        if cls is not None:
            cls.methods.append(qual)
        self.mod.functions[qual] = fdef
        blk = node.child_by_field_name("body")
        if blk is not None:
            if self.full_bodies:
                fdef._body = BodyFacts()
                self._block(blk, qual, None, fdef._body, f"{qual}.<locals>.")
            else:
                self._skeleton(blk, qual, f"{qual}.<locals>.")
        err = first_error(node)
        if err is not None:
            fdef.has_error = True
            self.mod.errors.append((err.start_point[0] + 1, err.start_point[1], qual))

    def _params(self, node: Node | None) -> list[Param]:
        out: list[Param] = []
        if node is None:
            return out
        kwonly = False
        for p in node.named_children:
            t = p.type
            if t == "identifier":
                out.append(Param(node_text(p), None, None, "kwonly" if kwonly else "normal"))
            elif t == "typed_parameter":
                ident = next((c for c in p.named_children if c.type in ("identifier", "list_splat_pattern",
                                                                         "dictionary_splat_pattern")), None)
                typ = p.child_by_field_name("type")
                kind = "normal"
                pname = node_text(ident)
                if ident is not None and ident.type == "list_splat_pattern":
                    kind, pname = "star", pname.lstrip("*")
                elif ident is not None and ident.type == "dictionary_splat_pattern":
                    kind, pname = "dstar", pname.lstrip("*")
                out.append(Param(pname, type_expr(typ) if typ else None, None, "kwonly" if kwonly and kind == "normal" else kind))
            elif t in ("default_parameter", "typed_default_parameter"):
                n = p.child_by_field_name("name")
                typ = p.child_by_field_name("type")
                val = p.child_by_field_name("value")
                out.append(Param(node_text(n), type_expr(typ) if typ else None, to_expr(val) if val else None,
                                 "kwonly" if kwonly else "normal"))
            elif t == "list_splat_pattern":
                kwonly = True
                out.append(Param(node_text(p).lstrip("*"), None, None, "star"))
            elif t == "dictionary_splat_pattern":
                out.append(Param(node_text(p).lstrip("*"), None, None, "dstar"))
            elif t == "keyword_separator":
                kwonly = True
        return out

    def _import(self, node: Node) -> None:
        line = node.start_point[0] + 1
        if node.type == "import_statement":
            for child in node.named_children:
                if child.type == "dotted_name":
                    full = node_text(child)
                    top = full.split(".")[0]
                    self.mod.imports[top] = ImportRef(top, None, line)
                    if "." in full:
                        self.mod.imports[full] = ImportRef(full, None, line)
                elif child.type == "aliased_import":
                    full = node_text(child.child_by_field_name("name"))
                    alias = node_text(child.child_by_field_name("alias"))
                    self.mod.imports[alias] = ImportRef(full, None, line)
            return
        if node.type == "future_import_statement":
            return
        mod_node = node.child_by_field_name("module_name")
        module = ""
        if mod_node is not None:
            if mod_node.type == "relative_import":
                dots = 0
                name = ""
                for c in mod_node.children:
                    if c.type == "import_prefix":
                        dots = node_text(c).count(".")
                    elif c.type == "dotted_name":
                        name = node_text(c)
                module = _resolve_relative(self.mod.module, self.is_package, dots, name)
            else:
                module = node_text(mod_node)
        for child in node.named_children:
            if child == mod_node:
                continue
            if child.type == "wildcard_import":
                self.mod.star_imports.append(module)
            elif child.type == "dotted_name":
                n = node_text(child)
                self.mod.imports[n.split(".")[-1]] = ImportRef(module, n, line)
            elif child.type == "aliased_import":
                n = node_text(child.child_by_field_name("name"))
                alias = node_text(child.child_by_field_name("alias"))
                self.mod.imports[alias] = ImportRef(module, n, line)

    # -- function bodies ------------------------------------------------------------------------------
    def _body_stmt(self, stmt: Node, scope: str, body: BodyFacts, prefix: str) -> None:
        t = stmt.type
        if t == "raise_statement":
            inner = stmt.named_children[0] if stmt.named_children else None
            if inner is not None:
                body.raises.append(to_expr(inner))
                self._scan_expr(inner, body)
            else:
                body.raises.append(Expr("other", "raise", stmt.start_point[0] + 1))
            return
        if t == "return_statement":
            inner = stmt.named_children[0] if stmt.named_children else None
            if inner is not None:
                body.returns.append(to_expr(inner))
                self._scan_expr(inner, body)
            return
        if t == "if_statement":
            cond = stmt.child_by_field_name("condition")
            cons = stmt.child_by_field_name("consequence")
            br = Branch(to_expr(cond), stmt.start_point[0] + 1)
            if cond is not None:
                self._scan_expr(cond, body)
            before = (len(body.raises), len(body.returns), len(body.calls))
            if cons is not None:
                self._block(cons, scope, None, body, prefix)
            br.raises = body.raises[before[0]:]
            br.returns = body.returns[before[1]:]
            br.calls = body.calls[before[2]:]
            body.branches.append(br)
            for alt in stmt.children_by_field_name("alternative"):
                if alt.type == "elif_clause":
                    c2 = alt.child_by_field_name("condition")
                    b2 = Branch(to_expr(c2), alt.start_point[0] + 1)
                    if c2 is not None:
                        self._scan_expr(c2, body)
                    before = (len(body.raises), len(body.returns), len(body.calls))
                    blk = alt.child_by_field_name("consequence")
                    if blk is not None:
                        self._block(blk, scope, None, body, prefix)
                    b2.raises = body.raises[before[0]:]
                    b2.returns = body.returns[before[1]:]
                    b2.calls = body.calls[before[2]:]
                    body.branches.append(b2)
                else:
                    for blk in alt.named_children:
                        if blk.type == "block":
                            self._block(blk, scope, None, body, prefix)
            return
        if t in ("block",):
            self._block(stmt, scope, None, body, prefix)
            return
        if t in ("for_statement", "while_statement", "with_statement", "try_statement", "match_statement",
                 "else_clause", "except_clause", "finally_clause", "case_clause", "with_clause", "with_item",
                 "except_group_clause", "elif_clause"):
            for child in stmt.named_children:
                if child.type == "block":
                    self._block(child, scope, None, body, prefix)
                elif child.type in ("else_clause", "except_clause", "finally_clause", "case_clause", "with_clause",
                                    "with_item", "except_group_clause", "block"):
                    self._body_stmt(child, scope, body, prefix)
                elif child.type == "as_pattern":
                    # with x() as y: record the binding
                    val = child.named_children[0] if child.named_children else None
                    tgt = child.child_by_field_name("alias")
                    if val is not None:
                        self._scan_expr(val, body)
                        if tgt is not None:
                            body.assigns.append(Assign(node_text(tgt).strip(), to_expr(val), child.start_point[0] + 1, scope))
                else:
                    self._scan_expr(child, body)
            if t == "for_statement":
                left = stmt.child_by_field_name("left")
                right = stmt.child_by_field_name("right")
                if left is not None and right is not None:
                    body.assigns.append(Assign(node_text(left), to_expr(right), stmt.start_point[0] + 1, scope))
            return
        if t in ("assert_statement", "delete_statement", "global_statement", "nonlocal_statement", "print_statement",
                 "exec_statement"):
            for child in stmt.named_children:
                self._scan_expr(child, body)
            if t == "assert_statement":
                for child in stmt.named_children[:1]:
                    body.branches.append(Branch(Expr("unary", "", child.start_point[0] + 1, value="not",
                                                     args=[to_expr(child)]), child.start_point[0] + 1,
                                                raises=[Expr("other", "assert", child.start_point[0] + 1)]))
            return
        for child in stmt.named_children:
            self._scan_expr(child, body)

    def _scan_expr(self, node: Node, body: BodyFacts) -> None:
        """Collect calls, comparisons, names and strings of an expression inside a body."""
        stack = [node]
        while stack:
            cur = stack.pop()
            t = cur.type
            if t == "call":
                body.calls.append(to_expr(cur))
            elif t == "comparison_operator":
                named = cur.named_children
                ops = [node_text(c) for c in cur.children if not c.is_named]
                for i, op in enumerate(ops):
                    if i + 1 < len(named):
                        body.compares.append(Compare(to_expr(named[i]), " ".join(op.split()), to_expr(named[i + 1]),
                                                     cur.start_point[0] + 1))
            elif t == "identifier":
                raw = cur.text
                body.names.add(raw.decode("utf-8", "replace") if raw is not None else "")
                continue  # a leaf: nothing below it
            elif t in ("string", "concatenated_string"):
                val = _string_value(cur)
                if val is not None and len(body.strings) < 200:
                    body.strings.append((val[:2000], cur.start_point[0] + 1))
            elif t in ("yield",):
                body.yields = True
            elif t in ("lambda", "function_definition"):
                pass
            if t in ("named_expression",):
                target_node = cur.child_by_field_name("name")
                value_node = cur.child_by_field_name("value")
                if target_node is not None and value_node is not None:
                    body.assigns.append(Assign(node_text(target_node), to_expr(value_node), cur.start_point[0] + 1,
                                               "<walrus>"))
            stack.extend(reversed(cur.named_children))


_TREE_CACHE: dict[str, tuple[bytes, Any]] = {}
_TREE_CACHE_MAX = 512


def _tree_for(abs_path: str) -> tuple[bytes, Any] | None:
    hit = _TREE_CACHE.get(abs_path)
    if hit is not None:
        return hit
    try:
        with open(abs_path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    tree = parse(data, "python")
    if len(_TREE_CACHE) >= _TREE_CACHE_MAX:
        _TREE_CACHE.pop(next(iter(_TREE_CACHE)))
    _TREE_CACHE[abs_path] = (data, tree)
    return data, tree


_SOURCE_CACHE: dict[str, bytes] = {}


def _source_for(abs_path: str) -> bytes | None:
    hit = _SOURCE_CACHE.get(abs_path)
    if hit is None:
        try:
            with open(abs_path, "rb") as fh:
                hit = fh.read()
        except OSError:
            return None
        if len(_SOURCE_CACHE) >= _TREE_CACHE_MAX:
            _SOURCE_CACHE.pop(next(iter(_SOURCE_CACHE)))
        _SOURCE_CACHE[abs_path] = hit
    return hit


def _own_tree(func: FunctionDef) -> tuple[Any, Node] | None:
    """Parse only the function's own lines, behind as many empty lines as precede it so that every line number is
    the file's. Used for functions without syntax errors when the file's tree is not at hand: a handler's body
    is a small part of its file. None when the snippet does not parse into exactly that function."""
    data = _source_for(func.src.abs_path)
    if data is None or not 0 <= func.start_byte < len(data) or func.end_line < func.line:
        return None
    end = func.start_byte
    for _ in range(func.end_line - func.line + 1):  # tree-sitter counts rows by "\n"
        nl = data.find(b"\n", end)
        end = len(data) if nl < 0 else nl + 1
    pad = b"\n" * (func.line - 1)
    tree = parse(pad + data[func.start_byte:end], "python")
    root = tree.root_node
    if root.has_error or root.named_child_count == 0:
        return None
    node = root.named_children[0]
    if node.type != "function_definition" or node.start_byte != len(pad) or node.end_point[0] + 1 != func.end_line:
        return None
    return tree, node


def _function_node(func: FunctionDef) -> tuple[Any, Node] | None:
    hit = _TREE_CACHE.get(func.src.abs_path)
    if hit is None and not func.has_error:
        own = _own_tree(func)
        if own is not None:
            return own
    got = hit or _tree_for(func.src.abs_path)
    if got is None:
        return None
    _, tree = got
    node = tree.root_node.descendant_for_byte_range(func.start_byte, func.start_byte + 1)
    while node is not None and not (node.type == "function_definition" and node.start_byte == func.start_byte):
        node = node.parent
    return (tree, node) if node is not None else None


def load_body(func: FunctionDef) -> BodyFacts:
    """Extract a function's body facts on demand by re-parsing it (cheap: only for functions we read)."""
    body = BodyFacts()
    if not func.src.abs_path:
        return body
    found = _function_node(func)
    if found is None:
        return body
    _tree, node = found  # the tree must outlive the walk over its nodes
    blk = node.child_by_field_name("body")
    if blk is None:
        return body
    scratch = _Extractor(func.src.rel, func.src.module, func.src.rel.endswith("__init__.py"), full_bodies=True)
    # nested definitions would only fill the scratch module, which is dropped: the body's own facts are the same
    scratch.skip_definitions = True
    _MEMO.table, _MEMO.deepest = {}, 0
    try:
        scratch._block(blk, func.qualname, None, body, f"{func.qualname}.<locals>.")
    finally:
        _MEMO.table = None
    return body


def count_code_lines(source: bytes) -> int:
    """Lines that are not blank: ``sum(1 for ln in source.splitlines() if ln.strip())`` without a Python loop."""
    flat = source.replace(b"\r\n", b"\n").replace(b"\r", b"\n").translate(None, b" \t\x0b\x0c")
    parts = flat.split(b"\n")
    return len(parts) - parts.count(b"")


def extract_module(source: bytes, path: str, full_bodies: bool = False) -> PyModule:
    """Parse Python source bytes and extract its facts (function bodies lazily unless full_bodies)."""
    tree = parse(source, "python")
    is_package = path.endswith("__init__.py")
    ext = _Extractor(path, module_name_for(path), is_package, full_bodies)
    mod = ext.module(tree.root_node)
    mod.loc = count_code_lines(source)
    if tree.root_node.has_error and not mod.errors:
        err = first_error(tree.root_node)
        if err is not None:
            mod.errors.append((err.start_point[0] + 1, err.start_point[1], "<module>"))
    return mod
