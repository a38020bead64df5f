"""FastAPI: decorators, ``add_api_route``, ``APIRouter``/``include_router`` chains, dependencies and auth.

Extends the Starlette dialect (FastAPI is built on it: ``Route``/``Mount``/``app.mount`` still work).

Routes: ``@app.get/post/put/patch/delete/head/options/trace``, ``@router.api_route(methods=[...])``,
``add_api_route(path, endpoint, methods=...)``; websockets are not HTTP routes and are skipped.
Mount tree: ``APIRouter(prefix=..., dependencies=[...])`` (and subclasses whose ``__init__`` passes
``dependencies`` to ``super()``: the dependencies are read from the subclass' ``super().__init__`` call),
``include_router(router, prefix=..., dependencies=[...])`` across modules, factories and loops, and
``FastAPI(dependencies=[...])`` as global dependencies. ``include_in_schema=False`` tags a route ``hidden``.

Auth: every ``Depends``/``Security`` on the chain (app, routers, includes, decorator, parameters,
``Annotated`` aliases, class-based-view attributes) is resolved to what it runs, and judged by behaviour
(rejects with 401/403, security scheme instance, token validation). ``auto_error=False`` makes a scheme
optional. ``Security(dep, scopes=[...])`` gives roles. A dependency outside the tree makes the route
``unknown`` unless something else on the chain authenticates.
"""

from __future__ import annotations

from typing import ClassVar

from apitrail.scan.frameworks._base import Project
from apitrail.scan.frameworks.python._fastapi_link import Linker
from apitrail.scan.frameworks.python.starlette import Starlette
from apitrail.scan.model import Route


class FastAPI(Starlette):
    name: ClassVar[str] = "fastapi"

    PACKAGES: ClassVar[tuple[str, ...]] = ("fastapi", "starlette")
    """FastAPI apps import both."""

    APP_CLASSES: ClassVar[frozenset[str]] = Starlette.APP_CLASSES | {"FastAPI"}
    """``FastAPI(...)`` is a Starlette application."""

    ROUTER_CLASSES: ClassVar[frozenset[str]] = Starlette.ROUTER_CLASSES | {"APIRouter"}
    """``APIRouter`` (and in-tree subclasses, found through the MRO)."""

    ROUTE_OBJECTS: ClassVar[frozenset[str]] = Starlette.ROUTE_OBJECTS | {"APIRoute"}
    """``APIRoute(path, endpoint, methods=...)`` objects in ``routes=[...]``."""

    ROUTE_DECORATORS: ClassVar[dict[str, tuple[str, ...] | None]] = {
        **Starlette.ROUTE_DECORATORS,
        "get": ("GET",), "post": ("POST",), "put": ("PUT",), "patch": ("PATCH",), "delete": ("DELETE",),
        "head": ("HEAD",), "options": ("OPTIONS",), "trace": ("TRACE",), "api_route": None, "websocket": (),
    }
    """Path operation decorators -> methods (``api_route`` takes ``methods=``, default GET)."""

    REGISTRATION_CALLS: ClassVar[dict[str, str]] = {
        **Starlette.REGISTRATION_CALLS, "add_api_route": "route", "include_router": "include",
    }
    """``add_api_route`` registers a route; ``include_router`` attaches a router with prefix and dependencies."""

    DEPENDENCY_MARKERS: ClassVar[frozenset[str]] = frozenset({"Depends", "Security"})
    """Dependency declarations; ``Security`` also carries ``scopes``."""

    def detect(self, project: Project) -> bool:
        return bool(project.python_importing("fastapi"))

    def routes(self, project: Project) -> list[Route]:
        return Linker(project, self).run()


FRAMEWORK = FastAPI()
