"""flask-smorest: ``Blueprint`` routes (often ``MethodView`` classes) registered through ``Api.register_blueprint``.

A smorest ``Blueprint`` is a Flask blueprint: ``@blp.route('/x')`` on a ``MethodView`` class gives one route
per HTTP method the class defines, on a function one route per ``methods=``. ``api.register_blueprint(blp,
url_prefix=)`` overrides the blueprint's own prefix, as in Flask. ``@blp.arguments`` / ``@blp.response`` /
``@blp.doc(security=...)`` only describe the API; auth comes from what is enforced (decorators such as
``@jwt_required()``, ``MethodView.decorators``, ``before_request`` hooks, inline checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from apitrail.scan.frameworks.python.flask import Flask


class FlaskSmorest(Flask):
    name: ClassVar[str] = "flask_smorest"
    PACKAGES: ClassVar[tuple[str, ...]] = ("flask_smorest",)

    CONSTRUCTORS: ClassVar[Mapping[str, tuple[str, str]]] = {
        **Flask.CONSTRUCTORS,
        "flask_smorest.Blueprint": ("blueprint", "flask_smorest"),
        "flask_smorest.blueprint.Blueprint": ("blueprint", "flask_smorest"),
        "flask_smorest.Api": ("api", "flask_smorest"),
    }
    """smorest blueprints carry the routes; its Api mounts them on the app."""

    CLASS_ROUTE_DECORATORS: ClassVar[Mapping[str, str]] = {"route": "MethodView"}
    """``@blp.route('/x')`` on a MethodView class."""

    EMITS: ClassVar[frozenset[str]] = frozenset({"flask_smorest"})


FRAMEWORK = FlaskSmorest()
