"""Unit tests for the Django/DRF helpers: URL pattern conversion and permission-class semantics.

The framework fixtures (tests/fixtures/scan/{django,drf}/) cover whole projects; these pin the building blocks.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from apitrail.scan.engine import ScanOptions, scan
from apitrail.scan.frameworks.python._django_paths import fstring_to_path, regex_to_path, route_to_path


@pytest.mark.parametrize(("route", "expected"), [
    ("users/<int:pk>/", "users/{pk}/"),
    ("<slug>/", "{slug}/"),
    ("files/<path:rest>", "files/{rest}"),
    ("plain/", "plain/"),
])
def test_route_to_path(route: str, expected: str) -> None:
    assert route_to_path(route) == expected


@pytest.mark.parametrize(("regex", "expected", "exact"), [
    (r"^articles/(?P<year>[0-9]{4})/$", "articles/{year}/", True),
    (r"^users/(?P<pk>[^/.]+)/set-password/$", "users/{pk}/set-password/", True),
    (r"^api/", "api/", True),
    (r"^items/(?P<pk>\d+)(?:\.(?P<format>[a-z0-9]+))?/?$", "items/{pk}/", True),
    (r"^legacy\.html$", "legacy.html", True),
    (r"^(\d+)/$", "{arg1}/", True),
    (r"^(?:en|de)/home/$", "{param}/home/", False),
    (r"^files/.*$", "files/{param}", False),
])
def test_regex_to_path(regex: str, expected: str, exact: bool) -> None:
    assert regex_to_path(regex) == (expected, exact)


def test_fstring_to_path() -> None:
    assert fstring_to_path('f"{base_url}/items/"') == "{base_url}/items/"
    assert fstring_to_path("f'{obj.name!r}/x'") == "{obj_name}/x"


PERMISSION_CASES = [
    # (has_permission body, method, expected state)
    ("return True", "POST", "public"),
    ("return False", "GET", "role"),  # denies everyone: reported as role ['nobody']
    ("return request.user.is_authenticated", "GET", "authenticated"),
    ("return bool(request.user and request.user.is_authenticated)", "DELETE", "authenticated"),
    ("return request.method in SAFE_METHODS or request.user.is_staff", "GET", "public"),
    ("return request.method in SAFE_METHODS or request.user.is_staff", "POST", "role"),
    ("if request.method == 'GET':\n    return True\nreturn request.user.is_authenticated", "GET", "public"),
    ("if request.method == 'GET':\n    return True\nreturn request.user.is_authenticated", "PUT", "authenticated"),
    ("if not request.user.is_authenticated:\n    return False\nreturn True", "GET", "authenticated"),
    ("if not request.user.is_authenticated:\n    raise NotAuthenticated()\nreturn True", "GET", "authenticated"),
    ("if settings.OPEN_READS:\n    return True\nreturn request.user.is_authenticated", "GET", "unknown"),
    ("return request.user.is_authenticated and request.user.has_perm('app.run')", "POST", "role"),
    ("return some_helper(request)", "GET", "unknown"),
]


def _project(tmp_path: Path, body: str, extra_views: str = "", perm_name: str = "Custom") -> Path:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "__init__.py").write_text("")
    (tmp_path / "proj" / "settings.py").write_text('ROOT_URLCONF = "proj.urls"\n')
    (tmp_path / "proj" / "perms.py").write_text(
        "from django.conf import settings\n"
        "from rest_framework.exceptions import NotAuthenticated\n"
        "from rest_framework.permissions import SAFE_METHODS, BasePermission\n\n\n"
        f"class {perm_name}(BasePermission):\n"
        "    def has_permission(self, request, view):\n" + textwrap.indent(body, " " * 8) + "\n")
    (tmp_path / "proj" / "views.py").write_text(
        "from rest_framework import viewsets\n\n"
        f"from .perms import {perm_name}\n\n\n"
        "class ThingViewSet(viewsets.ModelViewSet):\n"
        f"    permission_classes = [{perm_name}]\n" + extra_views)
    (tmp_path / "proj" / "urls.py").write_text(
        "from django.urls import include, path\n"
        "from rest_framework.routers import SimpleRouter\n\n"
        "from .views import ThingViewSet\n\n"
        "router = SimpleRouter()\n"
        "router.register('things', ThingViewSet)\n"
        "urlpatterns = [path('api/', include(router.urls))]\n")
    return tmp_path


@pytest.mark.parametrize(("body", "method", "state"), PERMISSION_CASES,
                         ids=[f"{m}:{b.splitlines()[0][:40]}" for b, m, _ in PERMISSION_CASES])
def test_custom_permission_semantics(tmp_path: Path, body: str, method: str, state: str) -> None:
    model = scan(_project(tmp_path, body), ScanOptions(use_cache=False, jobs=1))
    path = "/api/things/" if method in ("GET", "POST") else "/api/things/{pk}/"
    route = next(r for r in model.routes if r.method == method and r.path == path)
    assert route.auth.state == state, route.auth.evidence
    assert route.auth.evidence


def test_permission_decided_by_code_not_name(tmp_path: Path) -> None:
    """A project class named IsAuthenticated that lets everyone in is public."""
    model = scan(_project(tmp_path, "return True", perm_name="IsAuthenticated"), ScanOptions(use_cache=False, jobs=1))
    states = {r.auth.state for r in model.routes}
    assert states == {"public"}


def test_routes_and_methods_from_viewset(tmp_path: Path) -> None:
    model = scan(_project(tmp_path, "return True"), ScanOptions(use_cache=False, jobs=1))
    got = {(r.method, r.path) for r in model.routes}
    assert got == {("GET", "/api/things/"), ("POST", "/api/things/"), ("GET", "/api/things/{pk}/"),
                   ("PUT", "/api/things/{pk}/"), ("PATCH", "/api/things/{pk}/"), ("DELETE", "/api/things/{pk}/")}
    assert all(r.framework == "drf" and r.file == "proj/urls.py" for r in model.routes)
    assert all(r.handler.startswith("ThingViewSet.") for r in model.routes)
