"""flask-restful and flask-restx: Resource classes registered on an ``Api`` (or a restx ``Namespace``).

``api.add_resource(Res, '/a', '/b')`` gives one route per URL and per HTTP method the Resource class (or a
base class, across files) defines. ``Api(app|bp, prefix=)`` and ``api.init_app(app)`` mount the API under its
app or blueprint. restx adds ``@ns.route('/x')`` on the class, ``Namespace(path=)`` / ``api.namespace()`` and
``api.add_namespace(ns, path=)``. Project wrappers around ``add_resource`` (a method of an ``Api`` subclass,
such as one that prefixes ``/<org_slug>`` when multi-tenant) are resolved: their parameters are bound to the
caller's arguments and the URLs they pass on are evaluated; a conditional prefix is kept in ``partial_reason``.

Auth: ``Resource.decorators`` and ``method_decorators`` (a list, or a dict per HTTP method) found anywhere in
the MRO (a ``BaseResource`` protects its subclasses), ``Api(decorators=[...])``, decorators on the method
itself, blueprint/app ``before_request`` hooks, and inline checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from apitrail.scan.frameworks.python.flask import Flask


class FlaskRestful(Flask):
    name: ClassVar[str] = "flask_restful"
    PACKAGES: ClassVar[tuple[str, ...]] = ("flask_restful", "flask_restx", "flask_restplus")

    CONSTRUCTORS: ClassVar[Mapping[str, tuple[str, str]]] = {
        **Flask.CONSTRUCTORS,
        "flask_restful.Api": ("api", "flask_restful"),
        "flask_restx.Api": ("api", "flask_restx"),
        "flask_restplus.Api": ("api", "flask_restx"),
        "flask_restx.Namespace": ("namespace", "flask_restx"),
        "flask_restplus.Namespace": ("namespace", "flask_restx"),
    }
    """Apis and restx Namespaces join the Flask app/blueprint tree."""

    CLASS_ROUTE_DECORATORS: ClassVar[Mapping[str, str]] = {"route": "restx", "resource": "flask-restful"}
    """``@ns.route('/a', '/b')`` (restx) and ``@api.resource('/a')`` (flask-restful) register a Resource class."""

    EMITS: ClassVar[frozenset[str]] = frozenset({"flask_restful", "flask_restx"})


FRAMEWORK = FlaskRestful()
