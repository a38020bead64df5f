"""Log-format registry: every module here with a module-level ``FORMAT`` or ``FORMATS`` is discovered.

The contract for format modules is in ``_base.py``. There is no second list of formats to keep in sync.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from apitrail.errors import LogFormatError
from apitrail.trace.formats._base import (
    FormatOptions,
    LogFormat,
    Parser,
    Reject,
    Vector,
    VField,
    parser_from_vector,
)

# below this confidence a file's format counts as unknown
MIN_CONFIDENCE = 0.3


@lru_cache(maxsize=1)
def _discover() -> tuple[tuple[LogFormat, ...], tuple[tuple[str, str], ...]]:
    found: dict[str, LogFormat] = {}
    errors: list[tuple[str, str]] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except Exception as exc:  # noqa: BLE001 - a sibling's broken module must not hide the others
            errors.append((info.name, f"{type(exc).__name__}: {exc}"))
            continue
        declared: list[LogFormat] = []
        if isinstance(getattr(module, "FORMAT", None), LogFormat):
            declared.append(module.FORMAT)
        declared.extend(f for f in getattr(module, "FORMATS", ()) if isinstance(f, LogFormat))
        for fmt in declared:
            if fmt.name in found:
                errors.append((info.name, f"duplicate format name {fmt.name!r}"))
                continue
            found[fmt.name] = fmt
    return tuple(sorted(found.values(), key=lambda f: f.name)), tuple(errors)


def all_formats() -> tuple[LogFormat, ...]:
    """Every registered format, sorted by name."""
    return _discover()[0]


def registry_errors() -> tuple[tuple[str, str], ...]:
    """Modules that failed to import or declared a duplicate name (a test requires this to be empty)."""
    return _discover()[1]


def get_format(name: str) -> LogFormat:
    for fmt in all_formats():
        if fmt.name == name:
            return fmt
    known = ", ".join(f.name for f in all_formats())
    raise LogFormatError(f"unknown log format {name!r} (known: {known})")


def get_template_format(kind: str) -> LogFormat:
    """The format that compiles user templates of ``--log-format GLOB=KIND:...``."""
    for fmt in all_formats():
        if fmt.template_kind == kind:
            return fmt
    for fmt in all_formats():  # a format named after the kind takes the template in FormatOptions.template
        if fmt.name == kind:
            return fmt
    kinds = ", ".join(sorted({f.template_kind or f.name for f in all_formats()}))
    raise LogFormatError(f"unknown log-format kind {kind!r} (known: {kinds})")


def detect_format(first_lines: list[str]) -> tuple[LogFormat | None, float]:
    """The most confident format for a file's first non-empty lines; ``(None, best)`` below MIN_CONFIDENCE."""
    best: LogFormat | None = None
    best_score = 0.0
    for fmt in all_formats():
        if fmt.template_kind is not None:
            continue  # template formats need the user's template; they are never detected
        try:
            score = float(fmt.detect(first_lines))
        except Exception:  # noqa: BLE001 - a detector bug counts as "not this format"
            score = 0.0
        if score > best_score:
            best, best_score = fmt, score
    if best is None or best_score < MIN_CONFIDENCE:
        return None, best_score
    return best, best_score


__all__ = [
    "MIN_CONFIDENCE",
    "FormatOptions",
    "LogFormat",
    "Parser",
    "Reject",
    "VField",
    "Vector",
    "all_formats",
    "detect_format",
    "get_format",
    "get_template_format",
    "parser_from_vector",
    "registry_errors",
]
