"""Cross-file index of Python modules: resolve a name used in one module to its definition in another.

The scan root is rarely the import root (``server/polar/...`` is imported as ``polar...``), so modules are
indexed under every dotted suffix of their path, and an import resolves to the longest suffix that matches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from apitrail.scan.lang.python import Assign, ClassDef, Expr, FunctionDef, PyModule


@dataclass(frozen=True)
class Symbol:
    """A resolved name: what it is and where it lives."""

    module: PyModule
    kind: str  # function, class, assign, module, unresolved
    name: str
    func: FunctionDef | None = None
    cls: ClassDef | None = None
    assign: Assign | None = None
    external: str = ""  # for names imported from outside the tree: "fastapi.Depends"

    @property
    def qualified(self) -> str:
        if self.external:
            return self.external
        return f"{self.module.module}.{self.name}" if self.module.module else self.name


class PythonIndex:
    def __init__(self, modules: list[PyModule]) -> None:
        self.modules = modules
        self.by_path: dict[str, PyModule] = {m.path: m for m in modules}
        self._resolved: dict[tuple[int, str, int], tuple[PyModule, Symbol | None]] = {}
        self._by_suffix: dict[str, list[PyModule]] = {}
        for m in modules:
            parts = m.module.split(".") if m.module else []
            for i in range(len(parts)):
                self._by_suffix.setdefault(".".join(parts[i:]), []).append(m)

    def find_module(self, dotted: str, near: PyModule | None = None) -> PyModule | None:
        """The module for an absolute dotted name, preferring the one closest to `near`."""
        cands = self._by_suffix.get(dotted)
        if not cands:
            return None
        if len(cands) == 1 or near is None:
            return min(cands, key=lambda m: (len(m.module), m.path))
        near_parts = near.path.split("/")

        def shared(m: PyModule) -> int:
            n = 0
            for a, b in zip(m.path.split("/"), near_parts, strict=False):
                if a != b:
                    break
                n += 1
            return n

        return max(cands, key=lambda m: (shared(m), -len(m.module)))

    def resolve(self, module: PyModule, name: str, _depth: int = 0) -> Symbol | None:
        """Resolve a (possibly dotted) name as seen from `module` (memoised: the facts do not change once indexed,
        and a Symbol is frozen, so the same answer is handed out again)."""
        key = (id(module), name, _depth)
        hit = self._resolved.get(key)
        if hit is not None and hit[0] is module:
            return hit[1]
        sym = self._resolve(module, name, _depth)
        self._resolved[key] = (module, sym)
        return sym

    def _resolve(self, module: PyModule, name: str, _depth: int) -> Symbol | None:
        if _depth > 8 or not name:
            return None
        head, _, rest = name.partition(".")
        if not rest:
            local = self._local(module, head)
            if local is not None:
                return local
        imp = module.imports.get(head)
        if rest and name in module.imports and module.imports[name].name is None:  # import a.b; a.b.c
            imp = module.imports[name]
            rest = ""
        if imp is not None:
            if imp.name is None:  # import x.y [as z]
                target = self.find_module(imp.module, module)
                if target is None:
                    return Symbol(module, "unresolved", name, external=f"{imp.module}.{rest}" if rest else imp.module)
                if not rest:
                    return Symbol(target, "module", target.module)
                return self.resolve(target, rest, _depth + 1)
            target = self.find_module(imp.module, module)
            if target is None:
                # maybe `from pkg import submodule`
                sub = self.find_module(f"{imp.module}.{imp.name}", module)
                if sub is not None:
                    return self.resolve(sub, rest, _depth + 1) if rest else Symbol(sub, "module", sub.module)
                full = f"{imp.module}.{imp.name}"
                return Symbol(module, "unresolved", name, external=f"{full}.{rest}" if rest else full)
            sym = self.resolve(target, imp.name, _depth + 1)
            if sym is None:
                sub = self.find_module(f"{imp.module}.{imp.name}", module)
                if sub is not None:
                    sym = Symbol(sub, "module", sub.module)
            if sym is None:
                return None
            if rest:
                if sym.kind == "module":
                    return self.resolve(sym.module, rest, _depth + 1)
                if sym.kind == "class" and sym.cls is not None:
                    meth = sym.module.functions.get(f"{sym.cls.qualname}.{rest}")
                    if meth is not None:
                        return Symbol(sym.module, "function", meth.qualname, func=meth)
                if sym.kind == "unresolved":
                    return Symbol(sym.module, "unresolved", name, external=f"{sym.external}.{rest}")
                return sym
            return sym
        if rest:
            local = self._local(module, head)
            if local is not None and local.kind == "class" and local.cls is not None:
                meth = module.functions.get(f"{local.cls.qualname}.{rest}")
                if meth is not None:
                    return Symbol(module, "function", meth.qualname, func=meth)
            return local
        for star in module.star_imports:
            target = self.find_module(star, module)
            if target is not None and target is not module:
                sym = self.resolve(target, name, _depth + 1)
                if sym is not None:
                    return sym
        return None

    def _local(self, module: PyModule, name: str) -> Symbol | None:
        f = module.functions.get(name)
        c = module.classes.get(name)
        a = module.module_assign(name)
        # the later definition wins when a name is bound twice
        best: Symbol | None = None
        best_line = -1
        if f is not None and f.line > best_line:
            best, best_line = Symbol(module, "function", name, func=f), f.line
        if c is not None and c.line > best_line:
            best, best_line = Symbol(module, "class", name, cls=c), c.line
        if a is not None and a.line > best_line:
            best = Symbol(module, "assign", name, assign=a)
        return best

    def resolve_expr(self, module: PyModule, expr: Expr) -> Symbol | None:
        """Resolve a name/attr/call expression's dotted name."""
        return self.resolve(module, expr.name) if expr.name else None

    def qualified_name(self, module: PyModule, name: str) -> str:
        """Best-effort fully qualified name of a (dotted) name used in module: ``Depends`` -> ``fastapi.Depends``."""
        head, _, rest = name.partition(".")
        imp = module.imports.get(head)
        if imp is None:
            return f"{module.module}.{name}" if module.module else name
        base = imp.module if imp.name is None else f"{imp.module}.{imp.name}"
        return f"{base}.{rest}" if rest else base

    def class_mro(self, module: PyModule, cls: ClassDef, _depth: int = 0) -> Iterator[tuple[PyModule, ClassDef | None, str]]:
        """The class and its bases, depth first: (module, class or None if external, qualified name)."""
        yield module, cls, f"{module.module}.{cls.qualname}"
        if _depth > 10:
            return
        for base in cls.bases:
            bname = base.name
            if not bname:
                continue
            sym = self.resolve(module, bname)
            if sym is not None and sym.kind == "class" and sym.cls is not None:
                yield from self.class_mro(sym.module, sym.cls, _depth + 1)
            else:
                yield module, None, self.qualified_name(module, bname)

    def subclasses_of(self, qualified_suffixes: tuple[str, ...]) -> Iterator[tuple[PyModule, ClassDef]]:
        """Classes in the tree whose MRO reaches an external base named by one of the suffixes."""
        for m in self.modules:
            for c in m.classes.values():
                for _, _, q in self.class_mro(m, c):
                    if q.endswith(qualified_suffixes):
                        yield m, c
                        break
