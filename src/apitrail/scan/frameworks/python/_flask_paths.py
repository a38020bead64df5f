"""URL rules of the Flask family: evaluate rule expressions, convert converters, join prefixes.

A rule is often not a literal: ``org_scoped_rule("/api/x")``, ``API_PREFIX + "/users"``, ``f"{BASE}/items"``.
`PathEvaluator` evaluates such expressions over the cross-file index: literals, module constants, string
concatenation, ``str.format``, f-strings, and calls to small project functions that build a rule from their
argument (each ``return`` is evaluated; a return under an ``if`` is a conditional form). What cannot be
evaluated is kept as a marker and the result is flagged partial, so an unknown rule never becomes ``/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from apitrail.scan.lang.python import Expr, FunctionDef, PyModule
from apitrail.scan.lang.python_index import PythonIndex

# <int:id>, <path:rest>, <id>  ->  {id}
_CONVERTER = re.compile(r"<(?:[a-zA-Z_][\w]*(?:\([^)]*\))?:)?([a-zA-Z_]\w*)>")
_FSTRING_FIELD = re.compile(r"\{([^{}!:]+)(?:![rsa])?(?::[^{}]*)?\}")


@dataclass(frozen=True)
class PathValue:
    """An evaluated rule: its text (with ``{?}`` where unknown), whether it is partial, and why."""

    text: str
    partial: bool = False
    reason: str = ""

    @property
    def known(self) -> bool:
        return not self.partial


UNKNOWN = "{?}"
STR_METHODS = frozenset({"strip", "rstrip", "lstrip", "lower"})


def flask_rule_to_path(rule: str) -> str:
    """Werkzeug rule syntax to the contract's ``{name}`` syntax."""
    return _CONVERTER.sub(lambda m: "{" + m.group(1) + "}", rule)


def join_rule(prefix: str, rule: str) -> str:
    """Join like Flask's BlueprintSetupState: ``prefix.rstrip('/') + '/' + rule.lstrip('/')``."""
    if not prefix:
        return rule
    if not rule:
        return prefix
    return prefix.rstrip("/") + "/" + rule.lstrip("/")


def normalise(path: str) -> str:
    path = flask_rule_to_path(path)
    if not path.startswith("/"):
        path = "/" + path
    path = re.sub(r"/{2,}", "/", path)
    return path


def merge(*values: PathValue) -> PathValue:
    reasons = [v.reason for v in values if v.reason]
    return PathValue("", any(v.partial for v in values), "; ".join(dict.fromkeys(reasons)))


class PathEvaluator:
    """Evaluate rule expressions (see module docstring). Memo-free: expressions are small."""

    def __init__(self, index: PythonIndex) -> None:
        self.index = index

    def eval(self, module: PyModule, expr: Expr | None, env: dict[str, PathValue] | None = None,
             scope: str = "<module>", depth: int = 0) -> PathValue:
        if expr is None:
            return PathValue(UNKNOWN, True, "rule not given")
        env = env or {}
        if depth > 6:
            return PathValue(UNKNOWN, True, f"rule too deep: {expr.text[:60]}")
        k = expr.kind
        if k == "str" and isinstance(expr.value, str):
            return PathValue(expr.value)
        if k == "name" and expr.name in env:
            return env[expr.name]
        if k in ("name", "attr") and expr.name:
            return self._eval_name(module, expr, scope, depth, env)
        if k == "binop" and expr.value == "+" and len(expr.args) == 2:
            a = self.eval(module, expr.args[0], env, scope, depth + 1)
            b = self.eval(module, expr.args[1], env, scope, depth + 1)
            m = merge(a, b)
            return PathValue(a.text + b.text, m.partial, m.reason)
        if k == "binop" and expr.value == "%" and len(expr.args) == 2:
            fmt = self.eval(module, expr.args[0], env, scope, depth + 1)
            right = expr.args[1]
            items = right.args if right.kind == "tuple" else [right]
            vals = [self.eval(module, a, env, scope, depth + 1) for a in items]
            it = iter(vals)
            text = re.sub(r"%[sdr]", lambda _m: next(it, PathValue(UNKNOWN, True)).text, fmt.text)
            m = merge(fmt, *vals)
            return PathValue(text, m.partial, m.reason)
        if k == "subscript" and expr.name.endswith("config") and expr.args and expr.args[0].kind == "str":
            return self._config_value(str(expr.args[0].value))
        if k == "fstring":
            return self._eval_fstring(module, expr, env, scope, depth)
        if k == "call":
            return self._eval_call(module, expr, env, scope, depth)
        return PathValue(UNKNOWN, True, f"computed rule: {expr.text[:80]}")

    def _config_value(self, key: str) -> PathValue:
        """``app.config["X"]``: the default set by a config/settings module of the project, when there is one."""
        values = set()
        for mod in self.index.modules:
            if "config" not in mod.path.lower() and "settings" not in mod.path.lower():
                continue
            for a in mod.assigns:
                if a.target == key and a.value.kind == "str" and isinstance(a.value.value, str):
                    values.add(a.value.value)
        if len(values) == 1:
            v = values.pop()
            return PathValue(v, True, f"config {key} = '{v}' (its default; deployments may override it)")
        return PathValue(UNKNOWN, True, f"rule from config {key}")

    def _eval_name(self, module: PyModule, expr: Expr, scope: str, depth: int,
                   env: dict[str, PathValue] | None = None) -> PathValue:
        # a local assignment in the enclosing function first, then the module / imports
        if scope != "<module>":
            for a in reversed(module.assigns):
                if a.scope == scope and a.target == expr.name:
                    return self.eval(module, a.value, None, scope, depth + 1)
            func = module.functions.get(scope)
            if func is not None and expr.name not in {p.name for p in func.params}:
                for a in reversed(func.body.assigns):
                    if a.target == expr.name and a.value.name != expr.name:
                        return self.eval(module, a.value, env, scope, depth + 1)
        sym = self.index.resolve(module, expr.name)
        if sym is not None and sym.kind == "assign" and sym.assign is not None:
            return self.eval(sym.module, sym.assign.value, None, "<module>", depth + 1)
        return PathValue(UNKNOWN, True, f"rule from {expr.name}")

    def _eval_fstring(self, module: PyModule, expr: Expr, env: dict[str, PathValue], scope: str,
                      depth: int) -> PathValue:
        text = expr.text
        m = re.match(r"^[rRbBuU]*[fF][rRbB]*(['\"]{1,3})(.*)\1$", text, re.S)
        if not m:
            return PathValue(UNKNOWN, True, f"computed rule: {text[:80]}")
        body = m.group(2)
        parts: list[PathValue] = []

        def repl(mm: re.Match[str]) -> str:
            inner = mm.group(1).strip()
            if re.fullmatch(r"[A-Za-z_][\w.]*", inner):
                v = env.get(inner) or self._eval_name(module, Expr("name", inner, expr.line, name=inner), scope, depth + 1)
            else:
                v = PathValue(UNKNOWN, True, f"computed rule part {{{inner}}}")
            parts.append(v)
            return v.text

        out = _FSTRING_FIELD.sub(repl, body).replace("{{", "{").replace("}}", "}")
        mg = merge(*parts) if parts else PathValue("")
        return PathValue(out, mg.partial, mg.reason)

    def _eval_call(self, module: PyModule, expr: Expr, env: dict[str, PathValue], scope: str,
                   depth: int) -> PathValue:
        fn = expr.func
        # "...{}".format(x)
        if fn is not None and fn.kind == "attr" and fn.value == "format" and fn.func is not None:
            fmt = self.eval(module, fn.func, env, scope, depth + 1)
            vals = [self.eval(module, a, env, scope, depth + 1) for a in expr.args]
            kw = {k: self.eval(module, v, env, scope, depth + 1) for k, v in expr.kwargs.items()}
            it = iter(vals)

            def repl(mm: re.Match[str]) -> str:
                key = mm.group(1).strip()
                if key in kw:
                    return kw[key].text
                if key.isdigit() and int(key) < len(vals):
                    return vals[int(key)].text
                return next(it, PathValue(UNKNOWN)).text

            text = re.sub(r"\{([^{}]*)\}", repl, fmt.text)
            m = merge(fmt, *vals, *kw.values())
            return PathValue(text, m.partial, m.reason)
        if expr.last in STR_METHODS and expr.base:
            # "/x/".strip("/"), prefix.rstrip("/")
            base = self.eval(module, Expr("name", expr.base, expr.line, name=expr.base), env, scope, depth + 1)
            if base.partial:
                return base
            chars = expr.args[0].value if expr.args and expr.args[0].kind == "str" else None
            return PathValue(getattr(base.text, expr.last)(chars) if expr.last != "lower" else base.text.lower())
        if expr.name:
            sym = self.index.resolve(module, expr.name)
            if sym is not None and sym.kind == "function" and sym.func is not None:
                args = [self.eval(module, a, env, scope, depth + 1) for a in expr.args]
                return self.eval_function(sym.module, sym.func, args, depth + 1)
        return PathValue(UNKNOWN, True, f"computed rule: {expr.text[:80]}")

    def eval_function(self, module: PyModule, func: FunctionDef, args: list[PathValue], depth: int) -> PathValue:
        """A rule-building helper: the unconditional return is the value; conditional returns become the reason."""
        params = [p.name for p in func.params if p.name not in ("self", "cls")]
        env = {p: a for p, a in zip(params, args, strict=False)}
        body = func.body
        conditional: dict[int, str] = {}
        for br in body.branches:
            for r in br.returns:
                conditional[id(r)] = br.condition.text
        default: PathValue | None = None
        alts: list[str] = []
        for r in body.returns:
            v = self.eval(module, r, env, func.qualname, depth + 1)
            if id(r) in conditional:
                alts.append(f"'{v.text}' when {conditional[id(r)][:60]}")
            else:
                default = v
        if default is None:
            return PathValue(UNKNOWN, True, f"rule built by {func.qualname}")
        if alts:
            reason = f"{func.name}() gives " + " or ".join(alts) + f", else '{default.text}'"
            return PathValue(default.text, True, "; ".join(x for x in (default.reason, reason) if x))
        return default
