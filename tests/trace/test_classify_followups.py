"""Classification follow-ups from the format audits: each vendor signal read the way the parsers now record it
(hand-built hops for the signal itself, and the documented fixture shapes end to end)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _trace_helpers import FIXTURES
from test_classify import classify, h

from apitrail.trace.engines.duckdb import analyze_connection
from apitrail.trace.ingest import IngestOptions, ingest_paths
from apitrail.trace.store import Store


def raw(**kw: Any) -> dict[str, Any]:
    return {"raw.unmapped": json.dumps(kw)}


def signal(failure: dict[str, Any]) -> str:
    """The id of the signal that classified the failing hop (first word of the evidence)."""
    return str(failure["evidence"][0]).split(":", 1)[0]


def fixture_failures(path: Path, fmt: str | None = None) -> dict[int, dict[str, Any]]:
    """The failure of each request of a fixture file (each line its own request), by source line."""
    store = Store()
    try:
        names = ((path.name, fmt),) if fmt else ()
        ingest_paths([path], IngestOptions(format_names=names), store)
        recs = analyze_connection(store.con).requests
    finally:
        store.close()
    return {r["hops"][0]["source"]["line"]: r["failure"] for r in recs if len(r["hops"]) == 1}


def _lines(path: Path) -> list[dict[str, Any]]:
    """Each line's object ({} for a blank or malformed line), so that positions are line numbers."""
    out = []
    for ln in path.read_text().splitlines():
        try:
            obj = json.loads(ln)
        except ValueError:
            obj = {}
        out.append(obj if isinstance(obj, dict) else {})
    return out


# --- 1. Cloudflare security actions, as Logpush logs them (camel-cased) and as the rules API spells them

CF_BLOCKED = ["block", "managedChallenge", "managed_challenge", "challenge", "jschallenge", "js_challenge",
              "jschallengeFailed", "challengeFailed", "managedChallengeFailed", "connectionClose",
              "forceConnectionClose", "drop"]


@pytest.mark.parametrize("action", CF_BLOCKED)
def test_cloudflare_security_action_stops_the_request(action: str) -> None:
    failure = classify([h("cdn", "cloudflare", 403, **raw(SecurityAction=action))])
    assert failure["class"] == "authz"
    assert signal(failure) == "cloudflare-security"
    assert (failure.get("hop") or {}).get("line") == 0


@pytest.mark.parametrize("action", ["managedChallengeNonInteractiveSolved", "jschallengeSolved", "challengeBypassed",
                                    "skip", "log", "unknown"])
def test_cloudflare_passing_action_is_not_a_block(action: str) -> None:
    failure = classify([h("cdn", "cloudflare", 522, **{"upstream.status_codes": "0"}, **raw(SecurityAction=action))])
    assert failure["class"] == "dependency"


def test_cloudflare_documented_security_lines() -> None:
    path = FIXTURES / "cloudflare_http_requests" / "documented.jsonl"
    got = fixture_failures(path)
    seen = set()
    for line, obj in enumerate(_lines(path), start=1):
        action, sources = str(obj.get("SecurityAction") or ""), obj.get("SecuritySources") or []
        if action.replace("_", "").lower() in {"managedchallenge", "jschallenge", "challenge", "block"}:
            want = "rate_limited" if any(str(s).lower() == "ratelimit" for s in sources) else "authz"
            assert got[line]["class"] == want, (line, action, got[line])
            assert signal(got[line]).startswith("cloudflare-"), got[line]
            seen.add(want)
    assert seen == {"authz", "rate_limited"}
