"""Provider credential shapes, shared by the scan's hardcoded-secret facts and the trace leak detector.

Each entry is (kind, compiled regex). A regex with one group marks the secret part of the match.
"""

from __future__ import annotations

import re

PROVIDER_KEYS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("aws-access-key", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])")),
    ("google-api-key", re.compile(r"AIza[0-9A-Za-z_-]{35}")),
    ("github-token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}")),
    ("slack-token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("stripe-key", re.compile(r"\b[rs]k_live_[0-9a-zA-Z]{16,}")),
    ("gitlab-token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("azure-storage-key", re.compile(r"(?i)accountkey=([A-Za-z0-9+/]{40,}={0,2})")),
    ("sendgrid-key", re.compile(r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b")),
    ("openai-key", re.compile(r"\bsk-[A-Za-z0-9]{32,}\b")),
)

# literal anchors of PROVIDER_KEYS, for a C-speed substring prefilter before the regexes
PROVIDER_LITERALS: tuple[str, ...] = (
    "AKIA", "ASIA", "AIza", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xoxa-", "xoxb-", "xoxp-",
    "xoxr-", "xoxs-", "k_live_", "glpat-", "ccountKey=", "ccountkey=", "CCOUNTKEY=", "SG.", "sk-",
)

__all__ = ["PROVIDER_KEYS", "PROVIDER_LITERALS"]
