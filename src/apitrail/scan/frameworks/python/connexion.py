"""connexion: OpenAPI-bound apps, whose routes live in the spec and bind to Python by ``operationId``.

A scanner that only reads decorators finds nothing here. The spec is one of the project's config files
(YAML or JSON) named by ``app.add_api('openapi.yml', base_path=...)``; its base path is ``base_path=``, else
Swagger 2 ``basePath``, else the path part of OpenAPI 3 ``servers[0].url``. Each operation's ``operationId``
(joined with ``x-openapi-router-controller``) resolves to the handler function across files.

Auth: connexion enforces an operation's ``security`` (or the global one) when the scheme names its
validation function (``x-bearerInfoFunc``, ``x-tokenInfoFunc`` ...); an empty requirement ``{}`` makes it
optional. Handlers that check the token themselves (``token_validator()`` then 401) count as inline checks,
and decorators on the handler count as for Flask.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlparse

from apitrail.scan.frameworks._base import ConfigFile, Project
from apitrail.scan.frameworks.python._flask_auth import AuthSource, FlaskAuth, combine
from apitrail.scan.frameworks.python.flask import Flask
from apitrail.scan.lang.python import FunctionDef, PyModule
from apitrail.scan.model import Evidence, Route

SPEC_HINT = re.compile(r"^\s*[\"']?(openapi|swagger)[\"']?\s*:", re.M)
MAX_SPEC_BYTES = 2_000_000
OPERATIONS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")


@dataclass
class _Op:
    method: str
    path: str
    line: int
    op: dict[str, Any]
    item: dict[str, Any]


def _load(cfg: ConfigFile) -> tuple[dict[str, Any], dict[tuple[str, str], int]] | None:
    """The spec as data, and the line of every (path, method) key."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML ships with the test extras; JSON still works
        yaml = None  # type: ignore[assignment]
    lines: dict[tuple[str, str], int] = {}
    if yaml is None:
        try:
            return json.loads(cfg.text), lines
        except ValueError:
            return None
    try:
        root = yaml.compose(cfg.text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(cfg.text)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict) or root is None or not isinstance(root, yaml.MappingNode):
        return None
    for k, v in root.value:
        if getattr(k, "value", None) == "paths" and isinstance(v, yaml.MappingNode):
            for pk, pv in v.value:
                lines[(str(pk.value), "")] = pk.start_mark.line + 1
                if isinstance(pv, yaml.MappingNode):
                    for mk, _ in pv.value:
                        lines[(str(pk.value), str(mk.value).lower())] = mk.start_mark.line + 1
    return data, lines


class Connexion(Flask):
    name: ClassVar[str] = "connexion"
    PACKAGES: ClassVar[tuple[str, ...]] = ("connexion",)

    SPEC_LOADERS: ClassVar[tuple[str, ...]] = ("add_api",)
    """Calls that bind a spec file to the app (first argument: the spec, relative to specification_dir)."""

    SECURITY_FUNCS: ClassVar[tuple[str, ...]] = (
        "x-bearerInfoFunc", "x-basicInfoFunc", "x-apikeyInfoFunc", "x-tokenInfoFunc", "x-tokenInfoUrl",
    )
    """Scheme keys naming the function connexion calls to validate the credential (so it is enforced)."""

    RESTY_RESOLVERS: ClassVar[tuple[str, ...]] = ("RestyResolver",)
    """Resolvers that derive the handler from the path and method (``GET /pets`` -> ``<module>.pets.search``)."""

    EMITS: ClassVar[frozenset[str]] = frozenset({"connexion"})

    def routes(self, project: Project) -> list[Route]:
        specs = self._specs(project)
        auth = FlaskAuth(project.index, project.auth, self.AUTH_LIBRARY, self.AUTH_INSTANCES)
        out: list[Route] = []
        for cfg, base, resty in specs:
            loaded = _load(cfg)
            if loaded is None:
                continue
            data, lines = loaded
            out.extend(self._spec_routes(project, auth, cfg, data, lines, base, resty))
        return out

    # -- specs ----------------------------------------------------------------------------------------------
    def _specs(self, project: Project) -> list[tuple[ConfigFile, str | None, str | None]]:
        specs = [c for c in project.configs if SPEC_HINT.search(c.text[:4000]) and "paths" in c.text]
        bound: list[tuple[ConfigFile, str | None, str | None]] = []
        loose = False
        for m in project.python_importing(*self.PACKAGES):
            spec_dir = self._specification_dir(m)
            for call, _scope in m.calls:
                if call.last not in self.SPEC_LOADERS:
                    continue
                first = call.arg(0) or call.kw("specification")
                bp = call.kw("base_path")
                base = bp.value if bp is not None and bp.kind == "str" and isinstance(bp.value, str) else None
                name = first.value if first is not None and first.kind == "str" and isinstance(first.value, str) else None
                resty = None
                res = call.kw("resolver")
                if res is not None and res.kind == "call" and res.last in self.RESTY_RESOLVERS:
                    mod_e = res.arg(0)
                    resty = mod_e.value if mod_e is not None and mod_e.kind == "str" and isinstance(mod_e.value, str) else None
                if name is None:
                    loose = True
                    continue
                hits = [c for c in specs if c.rel == name or c.rel.endswith("/" + name.lstrip("./"))]
                if not hits:
                    # spec folders are often named spec/ or specs/, which the walker skips as test folders
                    disk = self._read_spec(project, m, spec_dir, name)
                    if disk is not None:
                        hits = [disk]
                        specs.append(disk)
                bound.extend((c, base, resty) for c in hits)
                loose = loose or not hits
        if not bound or loose:
            known = {c.rel for c, _, _ in bound}
            bound.extend((c, None, None) for c in specs if c.rel not in known and "operationId" in c.text)
        return bound

    @staticmethod
    def _specification_dir(m: PyModule) -> str:
        for a in m.assigns:
            v = a.value
            if v.kind == "call" and v.last in ("App", "FlaskApp", "AsyncApp"):
                d = v.kw("specification_dir")
                if d is not None and d.kind == "str" and isinstance(d.value, str):
                    return d.value
        return ""

    @staticmethod
    def _read_spec(project: Project, m: PyModule, spec_dir: str, name: str) -> ConfigFile | None:
        root = os.path.realpath(project.root)
        here = posixpath.dirname(m.path)
        for rel in (posixpath.join(here, spec_dir, name), posixpath.join(spec_dir, name), posixpath.join(here, name)):
            rel = posixpath.normpath(rel)
            full = os.path.realpath(os.path.join(root, rel))
            if not full.startswith(root + os.sep) or not os.path.isfile(full):
                continue
            try:
                if os.path.getsize(full) > MAX_SPEC_BYTES:
                    return None
                with open(full, encoding="utf-8") as fh:
                    return ConfigFile(rel, fh.read())
            except (OSError, UnicodeDecodeError):
                return None
        return None

    @staticmethod
    def _base_path(data: dict[str, Any], base: str | None) -> str:
        if base is not None:
            return base
        if isinstance(data.get("basePath"), str):
            return str(data["basePath"])
        servers = data.get("servers")
        if isinstance(servers, list) and servers and isinstance(servers[0], dict):
            url = str(servers[0].get("url", ""))
            for var, spec in (servers[0].get("variables") or {}).items():
                if isinstance(spec, dict) and "default" in spec:
                    url = url.replace("{" + str(var) + "}", str(spec["default"]))
            return urlparse(url).path if "://" in url else url
        return ""

    def _spec_routes(self, project: Project, auth: FlaskAuth, cfg: ConfigFile, data: dict[str, Any],
                     lines: dict[tuple[str, str], int], base: str | None, resty: str | None) -> list[Route]:
        prefix = self._base_path(data, base).rstrip("/")
        schemes = (data.get("components") or {}).get("securitySchemes") or data.get("securityDefinitions") or {}
        global_sec = data.get("security")
        out: list[Route] = []
        paths = data.get("paths") or {}
        if not isinstance(paths, dict):
            return out
        for path, item in paths.items():
            if not isinstance(item, dict):
                continue
            for method, op in item.items():
                if method.lower() not in OPERATIONS or not isinstance(op, dict):
                    continue
                line = lines.get((str(path), method.lower())) or lines.get((str(path), ""), 0)
                o = _Op(method.upper(), str(path), line, op, item)
                out.append(self._route(project, auth, cfg, o, prefix, schemes, global_sec, resty))
        return out

    def _route(self, project: Project, auth: FlaskAuth, cfg: ConfigFile, o: _Op, prefix: str,
               schemes: Mapping[str, Any], global_sec: Any, resty: str | None = None) -> Route:
        sources: list[AuthSource] = []
        sec = o.op.get("security", global_sec)
        if isinstance(sec, list) and sec:
            sources.append(self._security(cfg, o, sec, schemes))
        op_id = o.op.get("operationId")
        controller = o.op.get("x-openapi-router-controller") or o.item.get("x-openapi-router-controller")
        handler = ".".join(str(x) for x in (controller, op_id) if x)
        if not op_id and resty is not None:
            handler = self._resty_name(resty, controller, o)
        found = self._handler(project, handler) if handler else None
        if op_id is None and handler:
            op_id = handler
        hfile, hline = "", 0
        name = str(op_id or "").rsplit(".", 1)[-1]
        partial, reason = False, ""
        if found is not None:
            hm, hf = found
            hfile, hline, name = hm.path, hf.line, hf.qualname
            for d in hf.decorators:
                s = auth.decorator(hm, d, hm.path)
                if s is not None:
                    sources.append(s)
            inline = auth.inline(hm, hf)
            if inline is not None:
                sources.append(inline)
        elif not sources:
            sources.append(AuthSource("unknown", [Evidence(cfg.rel, o.line, "unresolved-handler",
                                                           handler or "no operationId")]))
            partial, reason = not handler, "no operationId: the handler comes from a resolver"
        path = (prefix + "/" + o.path.lstrip("/")) if prefix else o.path
        return Route(method=o.method, path=path or "/", file=cfg.rel, line=o.line, handler=name,
                     framework=self.name, auth=combine(sources), partial=partial, partial_reason=reason,
                     handler_file=hfile, handler_line=hline)

    def _security(self, cfg: ConfigFile, o: _Op, sec: list[Any], schemes: Mapping[str, Any]) -> AuthSource:
        if any(isinstance(req, dict) and not req for req in sec):
            return AuthSource("optional", [Evidence(cfg.rel, o.line, "openapi-security", "security includes {}: optional")])
        names: list[str] = []
        scopes: list[str] = []
        enforced = True
        for req in sec:
            if not isinstance(req, dict):
                continue
            for sname, sc in req.items():
                names.append(str(sname))
                scheme = schemes.get(sname) if isinstance(schemes, Mapping) else None
                if not isinstance(scheme, dict) or not any(k in scheme for k in self.SECURITY_FUNCS):
                    enforced = False
                if isinstance(sc, list):
                    scopes.extend(str(x) for x in sc)
        detail = f"security: {', '.join(names)}" + (f" scopes {scopes}" if scopes else "")
        if not enforced:
            # connexion can also take the validator from the environment: declared, not provably enforced
            return AuthSource("unknown", [Evidence(cfg.rel, o.line, "openapi-security",
                                                   detail + " (no x-*InfoFunc in the scheme)")])
        if scopes:
            return AuthSource("role", [Evidence(cfg.rel, o.line, "openapi-security", detail)], scopes[:5])
        return AuthSource("authn", [Evidence(cfg.rel, o.line, "openapi-security", detail)])

    def _resty_name(self, module: str, controller: Any, o: _Op) -> str:
        """RestyResolver: ``GET /pets`` -> ``<module>.pets.search``, ``GET /pets/{id}`` -> ``<module>.pets.get``."""
        m = re.match(r"^/?(?P<res>[\w\-]*)(?P<slash>/*)(?P<ext>.*)$", o.path)
        res = m.group("res") if m else ""
        ext = m.group("ext") if m else ""
        name = str(controller) if controller else (f"{module}.{res.replace('-', '_')}" if res else module)
        func = "search" if o.method == "GET" and res and not ext else o.method.lower()
        return f"{name}.{func}"

    @staticmethod
    def _handler(project: Project, dotted: str) -> tuple[PyModule, FunctionDef] | None:
        parts = dotted.split(".")
        for i in range(len(parts) - 1, 0, -1):
            mod = project.index.find_module(".".join(parts[:i]))
            if mod is None:
                continue
            rest = ".".join(parts[i:])
            f = mod.functions.get(rest)
            if f is not None:
                return mod, f
            sym = project.index.resolve(mod, rest)
            if sym is not None and sym.kind == "function" and sym.func is not None:
                return sym.module, sym.func
            return None
        return None


FRAMEWORK = Connexion()
