"""Flask: routes from ``@app.route`` / ``@bp.get`` ..., ``add_url_rule`` and class-based views, across files.

Flask registers a view when the route decorator runs, so only decorators *below* ``@route`` wrap the
registered function: ``@login_required`` above ``@app.route`` protects nothing (reported with a
``decorator-order`` note). Blueprints take their prefix from ``Blueprint(url_prefix=)``, overridden by
``register_blueprint(bp, url_prefix=)``; nested blueprints join their parents' prefixes. ``before_request``
hooks that enforce auth (abort 401/403, redirect to login, token validation) protect every route of their
app or blueprint. ``MethodView`` classes registered with ``add_url_rule(view_func=V.as_view(...))`` get one
route per HTTP method they define, and their ``decorators`` list wraps every method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from apitrail.scan.frameworks._base import FrameworkPlugin, Project
from apitrail.scan.frameworks.python._flask_link import link
from apitrail.scan.model import Route


class Flask(FrameworkPlugin):
    name: ClassVar[str] = "flask"
    PACKAGES: ClassVar[tuple[str, ...]] = ("flask",)
    """Top-level packages whose import makes the plugin look at a project."""

    CONSTRUCTORS: ClassVar[Mapping[str, tuple[str, str]]] = {
        "flask.Flask": ("app", "flask"),
        "flask.app.Flask": ("app", "flask"),
        "flask.Blueprint": ("blueprint", "flask"),
        "flask.blueprints.Blueprint": ("blueprint", "flask"),
        "apiflask.APIFlask": ("app", "flask"),
        "apiflask.APIBlueprint": ("blueprint", "flask"),
        "connexion.App": ("app", "flask"),  # connexion's Flask app also takes plain routes (app.route / add_url_rule)
        "connexion.FlaskApp": ("app", "flask"),
    }
    """Classes whose instances carry routes: qualified name -> (node kind, framework of its routes)."""

    ROUTE_DECORATORS: ClassVar[Mapping[str, tuple[str, ...] | None]] = {
        "route": None, "get": ("GET",), "post": ("POST",), "put": ("PUT",), "patch": ("PATCH",),
        "delete": ("DELETE",),
    }
    """Decorator methods of an app/blueprint that register a function view; None: methods from `methods=`."""

    CLASS_ROUTE_DECORATORS: ClassVar[Mapping[str, str]] = {}
    """Decorator methods that register a view *class* (flask-smorest, flask-restx); none in plain Flask."""

    HOOKS: ClassVar[Mapping[str, str]] = {
        "before_request": "scope", "before_app_request": "app",
    }
    """Request hooks: `scope` protects the node's routes (app-level: all), `app` protects every route."""

    AUTH_LIBRARY: ClassVar[Mapping[str, str]] = {
        "flask_login.login_required": "authn",
        "flask_login.fresh_login_required": "authn",
        "flask_jwt_extended.jwt_required": "authn",
        "flask_jwt_extended.fresh_jwt_required": "authn",
        "flask_jwt_extended.jwt_refresh_token_required": "authn",
        "flask_jwt_extended.jwt_optional": "optional",
        "flask_jwt.jwt_required": "authn",
        "flask_security.login_required": "authn",
        "flask_security.auth_required": "authn",
        "flask_security.http_auth_required": "authn",
        "flask_security.token_auth_required": "authn",
        "flask_security.roles_required": "role",
        "flask_security.roles_accepted": "role",
        "flask_security.permissions_required": "role",
        "flask_security.permissions_accepted": "role",
        "flask_praetorian.auth_required": "authn",
        "flask_praetorian.roles_required": "role",
        "flask_praetorian.roles_accepted": "role",
        "flask_user.login_required": "authn",
        "flask_user.roles_required": "role",
    }
    """Library decorators with documented behaviour (401/redirect unless authenticated; 403 without the role).
    `optional` marks auth that is read but not enforced; `optional=True` (flask-jwt-extended) does the same."""

    AUTH_INSTANCES: ClassVar[Mapping[str, str]] = {
        "flask_httpauth.HTTPBasicAuth": "login_required",
        "flask_httpauth.HTTPTokenAuth": "login_required",
        "flask_httpauth.HTTPDigestAuth": "login_required",
        "flask_httpauth.MultiAuth": "login_required",
        "flask_oauthlib.provider.OAuth2Provider": "require_oauth",
        "authlib.integrations.flask_oauth2.ResourceProtector": "__call__",
        "flask_allows.Allows": "requires=role",
        "flask_allows2.Allows": "requires=role",
        "flask_principal.Permission": "require=role",
    }
    """Auth objects whose method is the decorator (``auth.login_required``, ``role=`` makes it a role check);
    ``__call__``: the object itself is the decorator (authlib ``require_oauth = ResourceProtector()``);
    ``=role``: the method checks requirements or permissions (flask-allows, flask-principal)."""

    EMITS: ClassVar[frozenset[str]] = frozenset({"flask"})
    """Route frameworks this plugin reports (the linker sees the whole family)."""

    def detect(self, project: Project) -> bool:
        return bool(project.python_importing(*self.PACKAGES))

    def routes(self, project: Project) -> list[Route]:
        return list(link(project, self).routes)


FRAMEWORK = Flask()
