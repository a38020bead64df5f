"""Configuration: `[tool.apitrail]` in pyproject.toml or a `.apitrail.toml`, validated with Pydantic.

A bad config file gives one line and exit 2 (ConfigError), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from apitrail.errors import ConfigError

SEVERITIES = ("info", "low", "medium", "high", "critical")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Suppression(_Strict):
    rule: str = Field(description="rule id (APT-BOLA-001) or name (bola)")
    path: str = Field("**", description="glob of files")
    route: str | None = Field(None, description="'METHOD /path' glob")
    reason: str = Field(min_length=3)
    until: dt.date | None = None


class AuditConfig(_Strict):
    functions: list[str] = Field(default_factory=list, description="extra call names that count as an audit log")
    loggers: list[str] = Field(default_factory=list, description="logger names that count as audit loggers")


class PolicyConfig(_Strict):
    zero_tolerance: list[str] = Field(default_factory=list, description="rules that always fail the gate")
    warn: list[str] = Field(default_factory=list, description="rules that never fail the gate")
    disable: list[str] = Field(default_factory=list)


class ApitrailConfig(_Strict):
    exclude: list[str] = Field(default_factory=list, description="extra gitignore-style patterns")
    fail_on: str | None = None
    max_file_bytes: int = 2_000_000
    audit: AuditConfig = Field(default_factory=AuditConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    suppressions: list[Suppression] = Field(default_factory=list)
    source: str = ""

    @field_validator("fail_on")
    @classmethod
    def _sev(cls, v: str | None) -> str | None:
        if v is not None and v.lower() not in SEVERITIES:
            raise ValueError(f"must be one of {', '.join(SEVERITIES)}")
        return v.lower() if v else v


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}"


def load_config(root: Path, explicit: Path | None = None) -> ApitrailConfig:
    """Load from an explicit file, else .apitrail.toml, else [tool.apitrail] in pyproject.toml, else defaults."""
    candidates: list[tuple[Path, bool]] = []
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file not found: {explicit}")
        candidates.append((explicit, explicit.name == "pyproject.toml"))
    else:
        base = root if root.is_dir() else root.parent
        candidates += [(base / ".apitrail.toml", False), (base / "pyproject.toml", True)]
    for path, is_pyproject in candidates:
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        if is_pyproject:
            data = data.get("tool", {}).get("apitrail")
            if data is None:
                continue
        try:
            cfg = ApitrailConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{path}: {_first_error(exc)}") from exc
        cfg.source = str(path)
        return cfg
    return ApitrailConfig()
