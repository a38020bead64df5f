"""Property tests over EVERY registered parser (discovered from the registry, so new formats are covered):
arbitrary lines never raise anything but Reject, a parsed record always normalises, and every line of a file ends
in ``hops`` or ``rejects``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apitrail.trace.formats import all_formats, registry_errors
from apitrail.trace.formats._base import FormatOptions, LogFormat, Reject
from apitrail.trace.ingest import IngestOptions, ingest_paths
from apitrail.trace.normalize.record import HopContext, to_hop
from apitrail.trace.schema import FIELD_NAMES
from apitrail.trace.store import Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "trace"
FORMATS = [f for f in all_formats() if f.template_kind is None]


def _seed_lines() -> list[str]:
    lines: list[str] = []
    for path in sorted(FIXTURES.rglob("*")):
        if path.is_file() and path.suffix in (".log", ".jsonl", ".txt") and ".expected" not in path.name:
            lines.extend(path.read_text(errors="replace").splitlines()[:6])
    return lines or ["x"]


SEEDS = _seed_lines()


@st.composite
def log_lines(draw: st.DrawFn) -> str:
    """Real fixture lines, mutated: cut, spliced with random text, or with JSON values swapped."""
    base = draw(st.sampled_from(SEEDS))
    how = draw(st.integers(0, 4))
    if how == 0:
        return draw(st.text(max_size=200))
    if how == 1:
        i = draw(st.integers(0, len(base)))
        return base[:i]
    if how == 2:
        i = draw(st.integers(0, len(base)))
        return base[:i] + draw(st.text(max_size=30)) + base[i:]
    if how == 3:
        try:
            obj = json.loads(base)
        except ValueError:
            return base.replace(" ", draw(st.sampled_from([" ", "  ", "\t", '"', "-"])))
        if isinstance(obj, dict) and obj:
            key = draw(st.sampled_from(sorted(obj)))
            obj[key] = draw(st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                                      st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=5),
                                                                                                 st.text(max_size=5),
                                                                                                 max_size=2)))
        return json.dumps(obj)
    return base


def test_registry_is_clean() -> None:
    assert registry_errors() == ()
    assert len(FORMATS) >= 10


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(log_lines(), min_size=1, max_size=5))
def test_parser_never_raises_but_reject(fmt: LogFormat, lines: list[str]) -> None:
    parse = fmt.make_parser(FormatOptions())
    ctx = HopContext("f", fmt.name, fmt.layer, fmt.product)
    for n, line in enumerate(lines, start=1):
        try:
            rec = parse(line)
        except Reject as exc:
            assert isinstance(exc.reason, str) and exc.reason
            continue
        if rec is None:
            continue
        recs = rec if isinstance(rec, list) else [rec]  # a line may hold several records
        assert all(isinstance(r, dict) for r in recs)
        for i, r in enumerate(recs, 1):
            row, _ = to_hop(r, ctx, n, i)
            assert set(row) == set(FIELD_NAMES) and row["source.record"] == i


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(lines=st.lists(log_lines().filter(lambda s: "\n" not in s and "\r" not in s), min_size=1, max_size=8))
def test_every_line_lands_in_hops_or_rejects(fmt: LogFormat, lines: list[str], tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("prop") / "input.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = Store()
    for engine in ("auto", "python"):
        result = ingest_paths([path], IngestOptions(format_names=(("input.log", fmt.name),), engine=engine), store)
        fr = result.files[0]
        assert fr.lines == len(lines)
        assert fr.hop_lines + fr.rejects == fr.lines and fr.hops >= fr.hop_lines and fr.reconciled
        hops = store.execute('SELECT count(*) FROM hops').fetchone()[0]
        rejects = store.execute('SELECT count(*) FROM rejects').fetchone()[0]
        assert (hops, rejects) == (fr.hops, fr.rejects)
        reasons = [r[0] for r in store.execute("SELECT reason FROM rejects").fetchall()]
        assert all(r and len(r) <= 200 for r in reasons)
