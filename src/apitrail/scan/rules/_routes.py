"""Shared judgements about routes for the route rules (privileged, public by design, sensitive)."""

from __future__ import annotations

import re

from apitrail.scan.model import DataAccess, Route

PRIVILEGED = re.compile(r"admin|superuser|staff|chef|employee|manager|owner|root|operator|moderator|maintainer|"
                        r"support|internal|system|editor|write|manage|delete|change|edit|update|create|add_", re.I)
UNPRIVILEGED = re.compile(r"^(customer|user|users|member|members|guest|viewer|reader|client|basic|default|"
                          r"authenticated|read|public)$", re.I)
PUBLIC_BY_DESIGN = re.compile(
    r"(^|/)(login|log-in|signin|sign-in|sign_in|logout|signout|register|registration|signup|sign-up|sign_up|"
    r"token|tokens|refresh|oauth2?|authorize|callback|sso|saml|oidc|acs|password[-_]?reset|reset[-_]?password|"
    r"forgot[-_]?password|recover|recovery|verify|verification|verify[-_]?email|confirm|activate|activation|"
    r"invite|invitation|accept[-_]?invite|unsubscribe|webhooks?|hooks?|health|healthz|healthcheck|ping|status|"
    r"ready|readiness|liveness|version|setup|csrf|captcha|magic[-_]?link|otp|2fa|mfa|auth|"
    r"reset-password|new-password|password)(/|$|\\.|-)", re.I)
SENSITIVE_SEGMENT = re.compile(r"(^|/)_?(admin|debug|_debug|internal|metrics|config|configuration|settings|export|"
                               r"dump|backup|env|environment|system|sysinfo|stats|logs?|console|actuator|"
                               r"createdb|seed|populate)(/|$|[-_])", re.I)


def route_location(route: Route) -> tuple[str, int]:
    """Where to report a route-level problem: the declaration, or the handler when routes live in a spec file."""
    if route.file.endswith(".py") or not route.handler_file:
        return route.file, route.line
    return route.handler_file, route.handler_line or route.line


def declared_roles(route: Route) -> list[str]:
    roles = route.facts.extra.get("declared_roles") or []
    return list(roles) if roles else list(route.auth.roles)


def is_privileged(route: Route) -> bool:
    """The route is restricted to a privileged role (admin, staff, ...), or the handler checks such a role."""
    if route.facts.role_checks:
        return True
    if re.search(r"PermissionRequired|ObjectPermission", route.facts.extra.get("view_guard") or ""):
        return True  # Django permission mixins restrict the view (and, in NetBox-style bases, its queryset)
    if route.auth.state != "role":
        return False
    roles = declared_roles(route)
    if not roles:
        return True
    # a role or permission requirement restricts the function unless it only names ordinary users
    return not all(UNPRIVILEGED.match(r) or re.fullmatch(r"(?i)(role_)?(customer|user|member)s?", r) for r in roles)


CAPABILITY_PARAM = re.compile(r"\{[^}]*(secret|token|code|key|hash|signature|nonce)[^}]*\}", re.I)
PUBLIC_WORDS = re.compile(r"(^|[/_-])(authenticate|session|validate|claim|events|webhook|callback|public|anonymous|"
                          r"signup|login|register)([/_-]|$)", re.I)


def effectively_public(route: Route) -> bool:
    """Public per the linker and not guarded by a class-based view's dispatch/mixin."""
    return route.auth.state == "public" and not route.facts.extra.get("view_guard")


def public_by_design(route: Route) -> bool:
    if CAPABILITY_PARAM.search(route.path) or PUBLIC_WORDS.search(route.path):
        return True  # capability URLs (a secret in the path) and login/session/webhook endpoints
    return bool(PUBLIC_BY_DESIGN.search(route.path)) or bool(
        re.search(r"login|logout|register|signup|sign_up|token|password|reset|verify|callback|webhook|health|"
                  r"oauth|authorize|invite|confirm|activate|unsubscribe|sso|saml", route.handler, re.I))


def model_of(access: DataAccess) -> str:
    return access.api.split(":", 1)[1] if ":" in access.api else ""


TENANT_PARAM = re.compile(r"\{(organization|organization_id|org|org_id|org_slug|tenant|tenant_id|workspace|"
                          r"workspace_id|team|team_id|account|account_id|group_slug|household)\}", re.I)


def ownership(route: Route, access: DataAccess) -> str | None:
    """user / self / creator / tenant / none for the accessed model; None when unknown."""
    m = model_of(access)
    if not m:
        return None
    value = (route.facts.extra.get("model_owned") or {}).get(m)
    return value if isinstance(value, str) and value else None


def owned(route: Route, access: DataAccess) -> bool | None:
    """Whether an access to this model needs an owner check on this route; None when the model is unknown.

    Per-user data always does. The user model itself and creator-owned records (author, created_by) need one
    for writes: reading a colleague's profile or a shared document is usually by design. Tenant-owned records
    need one unless the route is already scoped to a tenant by its path (``/{organization}/...``).
    """
    kind = ownership(route, access)
    if kind is None:
        return None
    if kind == "user":
        return True
    if kind in ("self", "creator"):
        if TENANT_PARAM.search(route.path):
            return False  # inside a tenant, shared records are edited collaboratively by design
        return access.kind == "write" or route.method in ("PUT", "PATCH", "DELETE")
    if kind == "tenant":
        return not TENANT_PARAM.search(route.path)
    return False


def has_identity(route: Route) -> bool:
    return bool(route.facts.extra.get("identity")) or route.auth.state in ("authenticated", "role")
