"""Credentials seen in logs: Authorization values, JWTs (claims read, never verified or stored), API keys.

Only non-secret claims are kept (``iss``, ``aud``, ``exp``, ``iat``, ``azp``/``client_id``, ``scope``/``scp``,
``cnf.x5t#S256``); ``sub`` and ``jti`` are kept as keyed fingerprints. The credential itself is only ever
represented by its keyed fingerprint.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from typing import Any

from apitrail.trace.normalize.timestamps import parse_timestamp
from apitrail.trace.secrets import fingerprint

_JWT = re.compile(r"(eyJ[A-Za-z0-9_-]*)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)")


def _b64url_json(segment: str) -> Any:
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(data)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        return None


def jwt_claims(token: str) -> dict[str, Any] | None:
    """Decode (not verify) a compact JWS payload; None when it is not a JWT with a JSON object payload."""
    m = _JWT.fullmatch(token.strip())
    if m is None:
        return None
    header = _b64url_json(m.group(1))
    payload = _b64url_json(m.group(2))
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return payload


def _as_list(value: Any, split_spaces: bool = False) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list):
        out = [str(v) for v in value if v is not None and str(v) != ""]
        return out or None
    text = str(value).strip()
    if not text or text == "-":
        return None
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return _as_list(parsed)
        text = text[1:-1]
    if split_spaces:
        parts = [p for p in re.split(r"[\s,]+", text) if p]
        return parts or None
    return [text]


def _ts(value: Any) -> datetime | None:
    if isinstance(value, str) and value.strip().isdigit():
        return parse_timestamp(int(value.strip()))
    return parse_timestamp(value)


def claims_to_fields(claims: dict[str, Any]) -> dict[str, Any]:
    """Map JWT claims (decoded or as logged by a gateway) onto the canonical ``token.*`` fields."""
    out: dict[str, Any] = {}
    if claims.get("iss") not in (None, ""):
        out["token.issuer"] = str(claims["iss"])
    aud = _as_list(claims.get("aud"), split_spaces=False)
    if aud:
        out["token.audience"] = aud
    if "exp" in claims and (exp := _ts(claims["exp"])) is not None:
        out["token.expires_at"] = exp
    if "iat" in claims and (iat := _ts(claims["iat"])) is not None:
        out["token.issued_at"] = iat
    client = claims.get("azp") or claims.get("client_id") or claims.get("appid") or claims.get("cid")
    if client not in (None, ""):
        out["token.client_id"] = str(client)
    scope = claims.get("scope", claims.get("scp"))
    scopes = _as_list(scope, split_spaces=True)
    if scopes:
        out["token.scope"] = scopes
    cnf = claims.get("cnf")
    if isinstance(cnf, str):
        try:
            cnf = json.loads(cnf)
        except ValueError:
            cnf = None
    if isinstance(cnf, dict) and cnf.get("x5t#S256"):
        out["token.cnf_x5t_s256"] = str(cnf["x5t#S256"])
    elif claims.get("cnf.x5t#S256"):
        out["token.cnf_x5t_s256"] = str(claims["cnf.x5t#S256"])
    if claims.get("jti") not in (None, ""):
        out["token.id_fp"] = fingerprint(str(claims["jti"]))
    if claims.get("sub") not in (None, ""):
        out["token.subject_fp"] = fingerprint(str(claims["sub"]))
    return out


def parse_authorization(value: str) -> dict[str, Any]:
    """An Authorization header value -> token fields (type, fingerprint, claims); the value is not returned."""
    v = value.strip()
    if not v or v == "-" or v.upper() in ("REDACTED", "[REDACTED]"):
        return {}
    scheme, _, cred = v.partition(" ")
    cred = cred.strip()
    out: dict[str, Any] = {"token.location": "header", "token.fingerprint": fingerprint(v)}
    s = scheme.lower()
    if s == "bearer" and cred:
        out["token.fingerprint"] = fingerprint(cred)
        claims = jwt_claims(cred)
        if claims is not None:
            out["token.type"] = "jwt"
            out.update(claims_to_fields(claims))
        else:
            out["token.type"] = "opaque"
        out["authn.mechanism"] = "jwt" if claims is not None else "oauth_introspection"
    elif s == "basic" and cred:
        out["token.type"] = "basic"
        out["token.fingerprint"] = fingerprint(cred)
        out["authn.mechanism"] = "basic"
        try:
            user = base64.b64decode(cred + "=" * (-len(cred) % 4)).decode("utf-8", "replace").partition(":")[0]
        except (binascii.Error, ValueError):
            user = ""
        if user:
            out["enduser.id_fp"] = fingerprint(user)
    else:
        claims = jwt_claims(v)
        if claims is not None:
            out["token.type"] = "jwt"
            out["authn.mechanism"] = "jwt"
            out.update(claims_to_fields(claims))
        else:
            out["token.type"] = "opaque"
    return out


def parse_jwt(token: str, location: str = "header") -> dict[str, Any]:
    v = token.strip()
    if not v or v == "-":
        return {}
    if v.lower().startswith("bearer "):
        v = v[7:].strip()
    out: dict[str, Any] = {"token.location": location, "token.fingerprint": fingerprint(v)}
    claims = jwt_claims(v)
    out["token.type"] = "jwt" if claims is not None else "opaque"
    if claims is not None:
        out["authn.mechanism"] = "jwt"
        out.update(claims_to_fields(claims))
    return out


__all__ = ["claims_to_fields", "jwt_claims", "parse_authorization", "parse_jwt"]
