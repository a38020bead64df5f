"""Django URL pattern strings to apitrail paths (``{name}`` parameters).

``path()`` routes use converters (``<int:pk>``); ``re_path()``/``url()`` and DRF router prefixes are regexes whose
named groups become parameters and whose anchors are dropped. Optional groups (``(?:\\.(?P<format>\\w+))?``) are
left out: they describe variants of the same route. Anything else regex-like that cannot be turned into a literal
path makes the result ``partial``.
"""

from __future__ import annotations

import re

CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
REGEX_META = set(".^$*+?{}[]|()\\")


def route_to_path(route: str) -> str:
    """``path()`` syntax: ``users/<int:pk>/`` -> ``users/{pk}/``."""
    return CONVERTER.sub(lambda m: "{" + m.group(2) + "}", route)


def _group_end(rx: str, start: int) -> int:
    """Index just past the group that opens at rx[start] == '('."""
    depth = 0
    i = start
    while i < len(rx):
        c = rx[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            j = rx.find("]", i + 1)
            i = j + 1 if j > 0 else i + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(rx)


def regex_to_path(rx: str) -> tuple[str, bool]:
    """``^users/(?P<pk>[^/.]+)/$`` -> (``users/{pk}/``, exact?)."""
    rx = rx.lstrip("^")
    if rx.endswith("$") and not rx.endswith("\\$"):
        rx = rx[:-1]
    if rx.endswith(r"\Z"):
        rx = rx[:-2]
    out: list[str] = []
    exact = True
    n_unnamed = 0
    i = 0
    while i < len(rx):
        c = rx[i]
        if c == "\\" and i + 1 < len(rx):
            nxt = rx[i + 1]
            if nxt in "dwsDWS":
                exact = False
                out.append("{param}")
            else:
                out.append(nxt)
            i += 2
            continue
        if c == "(":
            end = _group_end(rx, i)
            body = rx[i:end]
            optional = end < len(rx) and rx[end] in "?*"
            m = re.match(r"\(\?P<(\w+)>", body)
            if optional:
                i = end + 1
                continue
            if m:
                out.append("{" + m.group(1) + "}")
            elif body.startswith("(?:") and "|" in body:
                out.append("{param}")  # alternatives: one of several literal segments
                exact = False
            elif body.startswith("(?:"):
                inner, ok = regex_to_path(body[3:-1])
                out.append(inner)
                exact = exact and ok
            elif body.startswith("(?"):
                pass  # flags / lookarounds
            else:
                n_unnamed += 1
                out.append(f"{{arg{n_unnamed}}}")
            i = end
            if i < len(rx) and rx[i] in "+":
                i += 1
            continue
        if c == "?" and out and out[-1] == "/":
            i += 1
            continue
        if c in "?*+" or c == "|" or c == "[" or c == "{" or c == ".":
            if c == "[":
                j = rx.find("]", i + 1)
                i = j + 1 if j > 0 else i + 1
                out.append("{param}")
                if i < len(rx) and rx[i] in "+*?":
                    i += 1
                if i < len(rx) and rx[i] == "{":
                    j = rx.find("}", i)
                    i = j + 1 if j > 0 else i + 1
                exact = False
                continue
            if c == "." and i + 1 < len(rx) and rx[i + 1] in "*+":
                out.append("{param}")
                i += 2
                exact = False
                continue
            if c == ".":
                out.append(".")  # an unescaped dot in a URL regex is meant as a literal dot
                i += 1
                continue
            exact = False
            i += 1
            continue
        if c == "$":
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out), exact


def fstring_body(text: str) -> str | None:
    m = re.match(r"^[rRbBuU]?[fF][rR]?(['\"]{1,3})(.*)\1$", text, re.S)
    return m.group(2) if m else None


def fstring_to_path(text: str) -> str:
    """An f-string route's text with interpolations as parameters: ``f"{base}/x"`` -> ``{base}/x``."""
    m = re.match(r"^[rRbBuU]?[fF][rR]?(['\"]{1,3})(.*)\1$", text, re.S)
    body = m.group(2) if m else text
    return re.sub(r"\{([^{}]*)\}", lambda g: "{" + (re.sub(r"\W+", "_", g.group(1).split("!")[0].split(":")[0])
                                                    .strip("_") or "param") + "}", body)


def join(prefix: str, part: str) -> str:
    return prefix + part


def finalize(path: str) -> str:
    """Absolute path, no doubled slashes."""
    p = "/" + path.lstrip("/")
    p = re.sub(r"/{2,}", "/", p)
    return p
