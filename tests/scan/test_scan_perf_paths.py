"""The fast paths of the scan must give the answers of the plain ones: a body parsed from its own lines equals
the body read from the whole file's tree, the helper-memo clone equals copy.deepcopy, the facts cache (directory
packs) gives the uncached facts back and notices an edit, and the cheap prefilters agree with the full checks."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from apitrail.scan import engine
from apitrail.scan.engine import ScanOptions, scan
from apitrail.scan.facts import FuncResult, _clone_result, _raw_secret_candidate, raw_secret_candidate_of
from apitrail.scan.lang import python as py
from apitrail.scan.lang.python import BodyFacts, FunctionDef, count_code_lines, extract_module
from apitrail.scan.model import DataAccess, Evidence
from apitrail.scan.walk import _alternation, _IgnoreSpec

SOURCE = b'''import os

def top(a, b=1, *args, **kw):
    x = helper(a)(b)
    if x.owner_id != a.id or not check(x):
        raise HTTPException(403)
    y = session.execute(select(User).where(User.id == helper(a, deep(z(y(x(w(v(u(t(s(r(q(p(o(n))))))))))))))))
    return {"k": [y, (x,)], "s": "text"}


class Service:
    """Doc."""

    @decorator(arg=1)
    async def method(self, item_id: int, db: Session = Depends(get_db)) -> Item:
        obj = await db.get(Item, item_id)
        if obj is None:
            raise NotFound()

        def inner(z):
            return z.delete()

        class Local:
            attr = call()

# a comment at column 0 inside the class
        for o in obj.children:
            with db.begin() as tx:
                tx.add(o)  # trailing comment
        return obj

    def one_liner(self): return self.x


def tabs(x):
\tif x:
\t\treturn f"{x!r}" + 'a' 'b'
\treturn None


async def walrus(q):
    if (n := len(q)) > 2:
        assert n, "bad"
    match q:
        case [first, *_]:
            return first
    lambda v: v + 1
'''


def _whole_file_body(func: FunctionDef) -> BodyFacts:
    """The reference: the body read from the whole file's tree, nested definitions included, no memo."""
    py._TREE_CACHE.clear()
    got = py._tree_for(func.src.abs_path)
    assert got is not None
    _, tree = got
    node = tree.root_node.descendant_for_byte_range(func.start_byte, func.start_byte + 1)
    while node is not None and not (node.type == "function_definition" and node.start_byte == func.start_byte):
        node = node.parent
    assert node is not None
    body = BodyFacts()
    scratch = py._Extractor(func.src.rel, func.src.module, False, full_bodies=True)
    scratch._block(node.child_by_field_name("body"), func.qualname, None, body, f"{func.qualname}.<locals>.")
    py._TREE_CACHE.clear()
    return body


@pytest.fixture()
def module(tmp_path: Path) -> py.PyModule:
    path = tmp_path / "svc.py"
    path.write_bytes(SOURCE)
    mod = extract_module(SOURCE, "svc.py")
    mod.src.abs_path = str(path)
    return mod


@pytest.mark.parametrize("qualname", ["top", "Service.method", "Service.one_liner", "tabs", "walrus",
                                      "Service.method.<locals>.inner"])
def test_body_from_own_lines_equals_whole_file_body(module: py.PyModule, qualname: str) -> None:
    func = module.functions[qualname]
    py._TREE_CACHE.clear()
    assert py._own_tree(func) is not None  # the fast path is taken for these clean functions
    fast = py.load_body(func)
    assert fast == _whole_file_body(func)
    assert fast.calls or fast.returns  # not trivially equal


def test_function_with_syntax_error_reads_the_whole_file(tmp_path: Path) -> None:
    src = b"def ok():\n    return 1\n\ndef broken(:\n    return call(x)\n"
    path = tmp_path / "bad.py"
    path.write_bytes(src)
    mod = extract_module(src, "bad.py")
    mod.src.abs_path = str(path)
    assert any(f.has_error for f in mod.functions.values()) or mod.errors
    for func in mod.functions.values():
        assert py.load_body(func) == _whole_file_body(func)


def _result() -> FuncResult:
    shared_inputs = ["item_id"]
    acc = DataAccess(3, "read", "session.get", "db.get(Item, item_id)", True, shared_inputs, False, "a.py")
    other = DataAccess(5, "write", "session.add", "db.add(o)", False, shared_inputs, False, "a.py")
    ev = Evidence("a.py", 4, "ownership", "x.owner_id != user.id")
    return FuncResult(accesses=[acc, other, acc], ownership=[ev], audit=[ev], call_names={"db.get"},
                      loggers={"log"}, models=[(3, "Item", True)])


def test_clone_result_equals_deepcopy_and_keeps_sharing() -> None:
    res = _result()
    fast, ref = _clone_result(res), copy.deepcopy(res)
    assert fast == ref
    assert fast.accesses[0] is fast.accesses[2] and fast.accesses[0] is not res.accesses[0]
    assert fast.accesses[0].inputs is fast.accesses[1].inputs and fast.accesses[0].inputs is not res.accesses[0].inputs
    fast.accesses[0].line = 99  # the clone is independent of the original
    assert res.accesses[0].line == 3


def test_clone_result_falls_back_to_deepcopy_for_other_shapes() -> None:
    res = _result()
    res.ownership.append({"not": "evidence"})  # type: ignore[arg-type]
    fast = _clone_result(res)
    assert fast == copy.deepcopy(res) and fast.ownership[-1] is not res.ownership[-1]


@pytest.mark.parametrize("data", [b"", b"\n", b"a\n\n  \n\tb", b"x\r\ny\rz\r\n\r\n", b" \x0b\x0c\n\x1cq\n", b"no newline"])
def test_count_code_lines_matches_the_python_loop(data: bytes) -> None:
    assert count_code_lines(data) == sum(1 for ln in data.splitlines() if ln.strip())


@pytest.mark.parametrize("data", [
    b"x = 1\n", b"key = 'AKIA' + rest\n", b"url = 'postgres://user:pw@host/db'\n", b"url = 'https://host/x'\n",
    "s = 'caf\u00e9 sk-live'\n".encode(), b"bad \xff\xfe bytes ghp_x\n", b"\r\nx = 'redis://u:p@h'\r\n",
])
def test_byte_prefilter_never_misses_a_text_candidate(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    if _raw_secret_candidate(text):
        assert raw_secret_candidate_of(data)


@pytest.mark.parametrize("path", ["a/__pycache__/x", "src/mod.pyc", "dist/", "x/dist/y", "keep.py", "a/b/.env",
                                  "node_modules/", "deep/a/b/c/build/", "README.md"])
def test_gitignore_alternation_matches_like_the_separate_patterns(path: str) -> None:
    lines = ["__pycache__/", "*.py[cod]", "dist/", "build/", ".env", "/node_modules", "!keep.py", "docs/*.md"]
    spec = _IgnoreSpec(lines)
    regexes = [str(p.regex.pattern) for p in spec.spec.patterns if p.regex is not None and p.include]
    import re

    separate = any(re.search(r, path) for r in regexes)
    assert bool(re.search(_alternation(regexes), path)) == separate
    assert spec.match_file(path) == spec.spec.match_file(path)


def _app(tmp_path: Path, n: int) -> Path:
    root = tmp_path / "app"
    (root / "pkg").mkdir(parents=True)
    (root / "main.py").write_text("from fastapi import FastAPI\nfrom pkg.r0 import router\napp = FastAPI()\n"
                                  "app.include_router(router)\n")
    for i in range(n):
        (root / "pkg" / f"r{i}.py").write_text(
            "from fastapi import APIRouter\nrouter = APIRouter()\n\n"
            f"@router.get('/items{i}/{{item_id}}')\ndef get_{i}(item_id: int):\n    return db.get(Item, item_id)\n")
    return root


def test_pack_cache_gives_the_uncached_facts_and_notices_an_edit(tmp_path: Path) -> None:
    root = _app(tmp_path, engine.PACK_FILES + 5)  # more than one pack in pkg/
    opts = ScanOptions(use_cache=True, cache_dir=tmp_path / "cache" / "facts", jobs=1)

    def routes(options: ScanOptions) -> list[tuple[str, str, int]]:
        return [(r.method, r.path, r.line) for r in scan(root, options).routes]

    cold = routes(ScanOptions(use_cache=False, jobs=1))
    assert routes(opts) == cold  # fills the cache
    packs = list((tmp_path / "cache" / "facts").rglob("*.pkl"))
    assert 2 <= len(packs) < engine.PACK_FILES  # packs, not one file per source file
    assert routes(opts) == cold  # read back from the cache
    edited = root / "pkg" / "r3.py"
    edited.write_text(edited.read_text().replace("/items3/", "/edited/"))
    assert routes(opts) == routes(ScanOptions(use_cache=False, jobs=1))
    assert any(p == "/edited/{item_id}" for _, p, _ in routes(opts))


def _settings_app(tmp_path: Path) -> Path:
    root = _app(tmp_path, 6)
    (root / "settings.py").write_text("SECRET_KEY = 'kq3v9x-very-real-looking-secret-value'\nDEBUG = True\n"
                                      "DATABASE_URL = 'postgres://admin:hunter2secret@db/app'\n")
    (root / "seed.py").write_text("def seed():\n    create_user(name='a', password='kaylee123')\n")
    return root


@pytest.mark.parametrize("parallel_routes", [True, False])
def test_early_settings_give_the_serial_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                parallel_routes: bool) -> None:
    from apitrail.scan import facts

    root = _settings_app(tmp_path)
    serial = scan(root, ScanOptions(use_cache=False, jobs=1))
    monkeypatch.setattr(facts, "SETTINGS_EARLY_MIN_MODULES", 1)  # start the early job on this small app
    monkeypatch.setattr(facts, "PARALLEL_MIN_ROUTES", 1 if parallel_routes else 10_000)
    started: list[object] = []
    real_start = facts.start_settings

    def spy(project: object, jobs: int = 0) -> object:
        started.append(real_start(project, jobs))
        return started[-1]

    monkeypatch.setattr(facts, "start_settings", spy)
    early = scan(root, ScanOptions(use_cache=False, jobs=2))
    assert started and started[0] is not None
    strip = [s for s in serial.settings if "elapsed_s" not in s]
    assert [s for s in early.settings if "elapsed_s" not in s] == strip
    assert any(s.get("kind") == "secret" for s in strip)
    assert [(r.path, r.facts) for r in early.routes] == [(r.path, r.facts) for r in serial.routes]


def test_lazy_trace_group_keeps_the_trace_help_and_commands() -> None:
    """`apitrail scan` does not import the trace side; the lazy `trace` group must still show and run it."""
    from typer.main import get_command

    from apitrail.cli import TRACE_HELP, app
    from apitrail.trace.cli import app as real_trace

    assert real_trace.info.help == TRACE_HELP  # the help shown by `apitrail --help` without importing trace
    group = get_command(app)
    trace = group.get_command(None, "trace")  # type: ignore[attr-defined]
    assert trace is not None
    assert {"ingest", "leaks"} <= set(trace.list_commands(None))


def test_cli_import_does_not_load_the_trace_side() -> None:
    import subprocess
    import sys

    code = "import sys, apitrail.cli; print(sorted(m for m in ('duckdb', 'pyarrow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_shared_empty_arguments_stay_empty_after_a_scan(tmp_path: Path) -> None:
    """Exprs without arguments share one list and one dict: nothing may ever add to them."""
    root = _settings_app(tmp_path)
    model = scan(root, ScanOptions(use_cache=False, jobs=1))
    assert model.routes
    assert py._NO_ARGS == [] and py._NO_KWARGS == {}
    name = extract_module(b"x = y\n", "m.py").assigns[0].value
    assert name.args is py._NO_ARGS and name.kwargs is py._NO_KWARGS


@pytest.mark.parametrize("line", [
    "x = 1", "key = 'AKIAABCDEFGHIJKLMNOP'", "key = 'XAKIAABCDEFGHIJKLMNOP'", "DefaultEndpointsProtocol=https;"
    "ACCOUNTKEY=" + "a" * 44, "url = 'postgres://admin:s3cret@db/app'", "url = 'https://example.com/x'",
    "-----BEGIN EC PRIVATE KEY-----", "token = 'xoxb-123456789012'", "task-runner sk-short",
])
def test_combined_raw_secret_search_matches_any_single_pattern(line: str) -> None:
    from apitrail.scan import facts

    assert facts._ANY_RAW_SECRET is not None
    single = any(p.search(line) for _, p in facts.PROVIDER_PATTERNS) or bool(facts.CONN_STRING.search(line))
    assert bool(facts._ANY_RAW_SECRET.search(line)) == single


def test_bodies_loaded_from_threads_at_once_are_the_serial_bodies(module: py.PyModule) -> None:
    from concurrent.futures import ThreadPoolExecutor

    funcs = list(module.functions.values())
    serial = [py.load_body(f) for f in funcs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            assert list(pool.map(py.load_body, funcs * 3)) == serial * 3
