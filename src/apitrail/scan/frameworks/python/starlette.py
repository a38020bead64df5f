"""Starlette: ``Route``/``Mount`` tables, ``Router``, ``Starlette(routes=..., middleware=...)``, ``@requires``.

Routes come from ``routes=[...]`` lists (also through names, ``+`` concatenation and ``*splats``), ``Mount``
with ``routes=`` or ``app=`` (a sub-application or router, resolved across files), ``app.add_route`` and the
older ``@app.route`` decorator. ``HTTPEndpoint`` classes give one route per method they define.

Auth: ``@requires("authenticated")`` (or scopes, which become roles) on the endpoint; an inline
``request.user.is_authenticated`` check that rejects with 401/403. ``AuthenticationMiddleware`` only
populates ``request.user``: it is kept as evidence but does not by itself protect a route.

The linker (``_fastapi_link.Linker``) is shared with the FastAPI dialect, which extends these tables.
"""

from __future__ import annotations

from typing import ClassVar

from apitrail.scan.frameworks._base import FrameworkPlugin, Project
from apitrail.scan.frameworks.python._fastapi_link import Linker
from apitrail.scan.model import Route


class Starlette(FrameworkPlugin):
    name: ClassVar[str] = "starlette"
    language: ClassVar[str] = "python"

    PACKAGES: ClassVar[tuple[str, ...]] = ("starlette",)
    """Top-level packages whose import marks a module as using this framework."""

    APP_CLASSES: ClassVar[frozenset[str]] = frozenset({"Starlette"})
    """Application classes (external, or the root of a subclass chain): mount tree roots."""

    ROUTER_CLASSES: ClassVar[frozenset[str]] = frozenset({"Router"})
    """Router classes: nodes that carry routes and can be mounted."""

    STATIC_CLASSES: ClassVar[frozenset[str]] = frozenset({"StaticFiles"})
    """Mounted ASGI apps that serve files: reported as one ``GET <mount>/{path}`` route."""

    ROUTE_OBJECTS: ClassVar[frozenset[str]] = frozenset({"Route"})
    """Route objects inside a ``routes=[...]`` list: ``Route(path, endpoint, methods=[...])``."""

    MOUNT_OBJECTS: ClassVar[frozenset[str]] = frozenset({"Mount", "Host"})
    """Mount objects: ``Mount(path, routes=[...])`` or ``Mount(path, app=...)``."""

    HOST_OBJECTS: ClassVar[frozenset[str]] = frozenset({"Host"})
    """Mount objects that route by host name: their first argument is not a path prefix."""

    ROUTE_DECORATORS: ClassVar[dict[str, tuple[str, ...] | None]] = {"route": None, "websocket_route": ()}
    """Decorator verb -> methods (None: from ``methods=``, default GET; empty: websocket, not an HTTP route)."""

    REGISTRATION_CALLS: ClassVar[dict[str, str]] = {"add_route": "route", "mount": "mount", "host": "mount"}
    """Method calls on an app/router that register a route ("route"), a sub-app ("mount") or a router ("include")."""

    DEPENDENCY_MARKERS: ClassVar[frozenset[str]] = frozenset()
    """Callables that declare a dependency (FastAPI ``Depends``/``Security``); Starlette has none."""

    AUTH_DECORATORS: ClassVar[frozenset[str]] = frozenset({"requires"})
    """Endpoint decorators that enforce authentication; their scopes other than "authenticated" are roles."""

    AUTH_MIDDLEWARE: ClassVar[frozenset[str]] = frozenset({"AuthenticationMiddleware"})
    """Middleware that authenticates the request (evidence only: it does not reject anonymous callers)."""

    HTTP_VERBS: ClassVar[frozenset[str]] = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
    """Method names that an ``HTTPEndpoint`` class can define."""

    def detect(self, project: Project) -> bool:
        # A FastAPI app also imports starlette; the FastAPI dialect covers Starlette constructs there.
        return bool(project.python_importing(*self.PACKAGES)) and not project.python_importing("fastapi")

    def routes(self, project: Project) -> list[Route]:
        return Linker(project, self).run()


FRAMEWORK = Starlette()
