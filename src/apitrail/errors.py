"""The apitrail exception tree.

    ApitrailError                 base; carries an exit code for the CLI
    ├── UsageError                bad CLI input (exit 2)
    ├── ConfigError               bad configuration file or value (exit 2)
    ├── ParseError                a source file could not be parsed (wraps tree-sitter errors)
    ├── LogFormatError            a log format declaration or user template is invalid (exit 2)
    ├── StoreError                the DuckDB store failed (wraps duckdb errors)
    ├── EngineError               the Spark engine failed (wraps pyspark errors)
    └── SecretLeakError           the output guard found token-shaped material in an output

Dependency exceptions never leak through the public API: they are wrapped at the boundary with
``raise OurError(...) from exc``.
"""

from __future__ import annotations


class ApitrailError(Exception):
    """Base of every error apitrail raises on purpose."""

    exit_code = 1


class UsageError(ApitrailError):
    exit_code = 2


class ConfigError(ApitrailError):
    exit_code = 2


class ParseError(ApitrailError):
    exit_code = 3


class LogFormatError(ApitrailError):
    exit_code = 2


class StoreError(ApitrailError):
    exit_code = 1


class EngineError(ApitrailError):
    exit_code = 1


class SecretLeakError(ApitrailError):
    """Raised by output/guard.py; the output is not written."""

    exit_code = 1


__all__ = [
    "ApitrailError",
    "UsageError",
    "ConfigError",
    "ParseError",
    "LogFormatError",
    "StoreError",
    "EngineError",
    "SecretLeakError",
]
