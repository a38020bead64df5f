"""Controls catalogue: rule category -> SOC 2 TSC, ISO/IEC 27001:2022 Annex A, OWASP API Top 10 2023, CWE."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

FRAMEWORKS = ("soc2", "iso27001", "owasp_api", "cwe")


@cache
def catalog() -> dict[str, Any]:
    """The bundled catalogue (catalog.yaml next to this module)."""
    text = resources.files(__package__).joinpath("catalog.yaml").read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is 20x faster where libyaml is present
    data: dict[str, Any] = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    return data


def controls_for(category: str) -> dict[str, list[str]]:
    """The mapping of one category; empty lists for an unknown category."""
    entry = catalog()["categories"].get(category, {})
    return {k: list(entry.get(k, [])) for k in FRAMEWORKS}


def control_title(framework: str, control: str) -> str:
    return str(catalog()["controls"].get(framework, {}).get(control, ""))


def categories_for_control(framework: str, control: str) -> list[str]:
    return sorted(c for c, m in catalog()["categories"].items() if control in m.get(framework, []))


__all__ = ["FRAMEWORKS", "catalog", "categories_for_control", "control_title", "controls_for"]
