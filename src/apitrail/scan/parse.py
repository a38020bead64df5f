"""tree-sitter parsers, one grammar wheel per language.

Grammars come from per-language wheels (never a run-time download), so parsing works offline and does not
depend on the host interpreter's version: a file using syntax newer than the running Python still parses.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from tree_sitter import Language, Node, Parser, Tree

from apitrail.errors import ParseError

LANGUAGE_BY_SUFFIX: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".java": "java",
    ".cs": "csharp",
    ".go": "go",
    ".php": "php",
}


def _load_language(name: str) -> Any:
    if name == "python":
        import tree_sitter_python as mod

        return mod.language()
    if name == "javascript":
        import tree_sitter_javascript as mod_js

        return mod_js.language()
    if name in ("typescript", "tsx"):
        import tree_sitter_typescript as mod_ts

        return mod_ts.language_tsx() if name == "tsx" else mod_ts.language_typescript()
    if name == "java":
        import tree_sitter_java as mod_java

        return mod_java.language()
    if name == "csharp":
        import tree_sitter_c_sharp as mod_cs

        return mod_cs.language()
    if name == "go":
        import tree_sitter_go as mod_go

        return mod_go.language()
    if name == "php":
        import tree_sitter_php as mod_php

        return mod_php.language_php()
    raise ParseError(f"no grammar for language {name!r}")


@cache
def language(name: str) -> Language:
    """The tree-sitter Language for a name in LANGUAGE_BY_SUFFIX's values."""
    try:
        return Language(_load_language(name))
    except ImportError as exc:
        raise ParseError(f"the tree-sitter grammar for {name} is not installed: {exc}") from exc


@cache
def parser(name: str) -> Parser:
    return Parser(language(name))


def parse(source: bytes, lang: str) -> Tree:
    """Parse source bytes; wraps tree-sitter failures in ParseError."""
    try:
        return parser(lang).parse(source)
    except Exception as exc:  # tree-sitter raises plain exceptions on bad input/timeouts
        raise ParseError(f"tree-sitter failed on {lang} source: {exc}") from exc


def node_text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", errors="replace")


def first_error(node: Node) -> Node | None:
    """The first ERROR or MISSING node under node, or None when the subtree is clean."""
    if not node.has_error:
        return None
    stack = [node]
    while stack:
        cur = stack.pop()
        if cur.is_error or cur.is_missing:
            return cur
        stack.extend(reversed([c for c in cur.children if c.has_error or c.is_missing]))
    return None


def walk(node: Node, visit: Callable[[Node], bool]) -> None:
    """Pre-order walk; visit returns False to skip a node's children."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if visit(cur):
            stack.extend(reversed(cur.children))
