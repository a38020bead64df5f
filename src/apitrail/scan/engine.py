"""The scan engine: walk -> parse + extract per file (process pool, content-hash cache) -> link -> rules."""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import hashlib
import os
import pickle
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apitrail import __version__
from apitrail.scan.facts import raw_secret_candidate_of
from apitrail.scan.frameworks._base import ConfigFile, Project, all_frameworks
from apitrail.scan.lang.python import PyModule, extract_module
from apitrail.scan.model import AppModel, Route, ScanError
from apitrail.scan.walk import SourceFile, WalkResult, classify_content, walk

FACTS_VERSION = f"{__version__}-facts-8"


@functools.cache
def code_fingerprint() -> str:
    """Identity of the installed analyser code (path, size, mtime of every module): a changed extractor, plugin
    or rule invalidates both cache levels, not only a version bump."""
    pkg = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(FACTS_VERSION.encode())
    for path in sorted(pkg.rglob("*.py")):
        try:
            st = path.stat()
        except OSError:
            continue
        h.update(f"{path.relative_to(pkg)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
PARALLEL_MIN_FILES = 40
PACK_FILES = 16
EXTRACTED_LANGUAGES = frozenset({"python", "config"})
MAX_CONFIG_BYTES = 512_000


@dataclass
class ScanOptions:
    use_cache: bool = True
    cache_dir: Path | None = None
    jobs: int = 0  # 0: one per core
    max_bytes: int = 2_000_000
    excludes: list[str] = field(default_factory=list)
    strict: bool = False
    debug: bool = False
    include_tests: bool = False


@dataclass
class FileFacts:
    rel: str
    language: str
    facts: Any = None  # PyModule, config text, ...
    skip_reason: str = ""
    error: str = ""
    loc: int = 0


def default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("APITRAIL_CACHE_DIR") or user_cache_dir("apitrail")) / "facts"


def _extract(sf: SourceFile, data: bytes) -> FileFacts:
    reason = classify_content(data)
    if reason and not (sf.language == "config" and reason == "minified"):
        return FileFacts(sf.rel, sf.language, skip_reason=reason)
    if sf.language == "config":
        if len(data) > MAX_CONFIG_BYTES:
            return FileFacts(sf.rel, sf.language, skip_reason="too-large")
        return FileFacts(sf.rel, "config", facts=data.decode("utf-8"), loc=data.count(b"\n"))
    if sf.language == "python":
        mod = extract_module(data, sf.rel)
        mod.secret_candidate = raw_secret_candidate_of(data)
        err = ""
        if mod.errors:
            line, col, scope = mod.errors[0]
            where = f"inside {scope}" if scope != "<module>" else "at module level"
            err = f"syntax error at {line}:{col} {where}"
        return FileFacts(sf.rel, "python", facts=mod, error=err, loc=mod.loc)
    return FileFacts(sf.rel, sf.language, skip_reason=f"no-extractor:{sf.language}", loc=data.count(b"\n"))


def _pack_path(cache_dir: str, group: list[SourceFile]) -> Path:
    """Cache entry of a pack: up to PACK_FILES files of one directory, keyed by their paths and contents."""
    h = hashlib.sha256(f"{code_fingerprint()}\0pack".encode())
    for sf in group:
        h.update(f"{sf.rel}\0{sf.digest}\n".encode())
    key = h.hexdigest()
    return Path(cache_dir) / key[:2] / f"{key}.pkl"


def _load_pack(path: Path, group: list[SourceFile]) -> list[FileFacts] | None:
    try:
        with path.open("rb") as fh:
            cached = pickle.load(fh)
    except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None
    if not isinstance(cached, list) or len(cached) != len(group):
        return None
    if not all(isinstance(ff, FileFacts) and ff.rel == sf.rel for ff, sf in zip(cached, group, strict=True)):
        return None
    return cached


def _store_cached(path: Path, ff: Any) -> None:
    _store_blob(path, pickle.dumps(ff, protocol=pickle.HIGHEST_PROTOCOL))


def _store_blob(path: Path, blob: bytes) -> None:
    # NOTE: no mkdir per file: concurrent workers creating the same directories contend on the directory lock
    # (about 0.6 s of system time on polar); the directory is created only when the write finds it missing
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        pass


def _extract_file(sf: SourceFile) -> tuple[FileFacts, bytes | None]:
    try:
        data = sf.path.read_bytes()
    except OSError as exc:
        return FileFacts(sf.rel, sf.language, error=f"unreadable: {exc.strerror or exc}"), None
    try:
        return _extract(sf, data), data
    except RecursionError:
        return FileFacts(sf.rel, sf.language, error="too deeply nested to analyse"), data
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the scan; reported in errors
        return FileFacts(sf.rel, sf.language, error=f"extractor failed: {type(exc).__name__}: {exc}"), data


def _extract_pack(group: list[SourceFile], cache_path: str | None, to_parent: bool) -> tuple[list[FileFacts], bytes]:
    """Extract one pack's files and pickle them once: the same bytes go to the cache file and (from a worker) back
    to the parent. A pack with an unreadable file is not cached."""
    out: list[FileFacts] = []
    readable = True
    for sf in group:
        ff, data = _extract_file(sf)
        out.append(ff)
        readable = readable and data is not None
    if cache_path is None and not to_parent:
        return out, b""
    blob = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
    if cache_path is not None and readable:
        _store_blob(Path(cache_path), blob)
    return out, blob


def _process_pack(args: tuple[list[SourceFile], str | None]) -> bytes:
    return _extract_pack(args[0], args[1], to_parent=True)[1]


def _packs(files: list[SourceFile], indices: list[int]) -> list[list[int]]:
    """Group files by directory, in path order, PACK_FILES at most per pack: one cache file (and one pool task)
    per pack instead of per file saves the file-system work of creating a thousand small files (about 0.25 ms of
    system time each), while an edited file re-extracts only its own pack."""
    by_dir: dict[str, list[int]] = {}
    for i in indices:
        by_dir.setdefault(files[i].rel.rpartition("/")[0], []).append(i)
    out: list[list[int]] = []
    for members in by_dir.values():
        members.sort(key=lambda i: files[i].rel)
        out.extend(members[k:k + PACK_FILES] for k in range(0, len(members), PACK_FILES))
    return out


def extract_all(files: list[SourceFile], options: ScanOptions) -> list[FileFacts]:
    """Cache hits are loaded here; misses are extracted in a process pool (fork) and cached by the workers."""
    cache_dir = str(options.cache_dir or default_cache_dir()) if options.use_cache else None
    results: list[FileFacts | None] = [None] * len(files)
    wanted: list[int] = []
    for i, sf in enumerate(files):
        if sf.language not in EXTRACTED_LANGUAGES:
            results[i] = FileFacts(sf.rel, sf.language, skip_reason=f"no-extractor:{sf.language}")
            continue
        if cache_dir is not None and not sf.digest:
            try:
                sf.digest = hashlib.sha256(sf.path.read_bytes()).hexdigest()
            except OSError as exc:
                results[i] = FileFacts(sf.rel, sf.language, error=f"unreadable: {exc.strerror or exc}")
                continue
        wanted.append(i)
    work: list[tuple[list[int], str | None]] = []
    for pack in _packs(files, wanted):
        group = [files[i] for i in pack]
        path = _pack_path(cache_dir, group) if cache_dir is not None else None
        hit = _load_pack(path, group) if path is not None else None
        if hit is None:
            work.append((pack, str(path) if path is not None else None))
        else:
            for i, ff in zip(pack, hit, strict=True):
                results[i] = ff
    n_files = sum(len(pack) for pack, _ in work)
    jobs = options.jobs or (os.cpu_count() or 1)
    done: list[list[FileFacts]]
    if jobs <= 1 or n_files < PARALLEL_MIN_FILES:
        done = [_extract_pack([files[i] for i in pack], path, to_parent=False)[0] for pack, path in work]
    else:
        import multiprocessing as mp

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        # biggest packs first, so that no big pack is left for the end while the other worker idles
        order = sorted(range(len(work)), key=lambda k: -len(work[k][0]))
        args = [([files[i] for i in work[k][0]], work[k][1]) for k in order]
        done = [[] for _ in work]
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            for k, blob in zip(order, pool.map(_process_pack, args), strict=True):
                done[k] = pickle.loads(blob)
    for (pack, _), extracted in zip(work, done, strict=True):
        for i, ff in zip(pack, extracted, strict=True):
            results[i] = ff
    return [r for r in results if r is not None]


def _dedupe(routes: list[Route]) -> list[Route]:
    seen: set[tuple[str, str, str, int]] = set()
    out = []
    for r in routes:
        k = (r.method, r.path, r.file, r.line)
        if k in seen:
            continue
        seen.add(k)
        out.append(r)
    return out


def discover(root: Path, options: ScanOptions) -> WalkResult:
    return walk(root.resolve(), max_bytes=options.max_bytes, extra_excludes=options.excludes,
                include_tests=options.include_tests)


def tree_key(walked: WalkResult, salt: str) -> str:
    """A key for the whole scan input: every analysed file's path and content digest, plus version and config."""
    h = hashlib.sha256(f"{code_fingerprint()}\0{salt}".encode())
    for sf in walked.files:
        if sf.language not in EXTRACTED_LANGUAGES:
            h.update(f"{sf.rel}\0-\n".encode())
            continue
        if not sf.digest:
            try:
                sf.digest = hashlib.sha256(sf.path.read_bytes()).hexdigest()
            except OSError:
                sf.digest = "unreadable"
        h.update(f"{sf.rel}\0{sf.digest}\n".encode())
    for reason, n in sorted(walked.skipped.items()):
        h.update(f"skip\0{reason}\0{n}\n".encode())
    return h.hexdigest()


def load_result(cache_dir: Path | None, key: str) -> Any:
    path = (cache_dir or default_cache_dir()).parent / "results" / f"{key}.pkl"
    try:
        with path.open("rb") as fh:
            return pickle.load(fh)
    except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, TypeError):
        return None


def store_result(cache_dir: Path | None, key: str, value: Any) -> None:
    path = (cache_dir or default_cache_dir()).parent / "results" / f"{key}.pkl"
    _store_cached(path, value)


def build_project(root: Path, options: ScanOptions, walked: WalkResult | None = None) -> tuple[Project, AppModel]:
    root = root.resolve()
    model = AppModel(root=str(root))
    walked = walked or discover(root, options)
    for reason, n in walked.skipped.items():
        model.skipped[reason] = model.skipped.get(reason, 0) + n
    facts = extract_all(walked.files, options)
    project = Project(root=str(root))
    for ff in facts:
        if ff.skip_reason:
            model.skipped[ff.skip_reason] = model.skipped.get(ff.skip_reason, 0) + 1
            continue
        if ff.error and ff.facts is None:
            model.errors.append(ScanError(ff.rel, ff.error))
            continue
        model.files_scanned += 1
        model.loc += ff.loc
        if isinstance(ff.facts, PyModule):
            ff.facts.src.abs_path = str(root / ff.rel)
            project.python.append(ff.facts)
            if ff.error:
                model.errors.append(ScanError(ff.rel, ff.error))
        elif ff.language == "config" and isinstance(ff.facts, str):
            project.configs.append(ConfigFile(ff.rel, ff.facts))
        elif ff.facts is not None:
            project.other.setdefault(ff.language, []).append(ff.facts)
    return project, model


def _error_matters(model: AppModel, project: Project) -> None:
    """Keep a syntax error only when it is in a file that matters (routes, or framework code)."""
    route_files = {r.file for r in model.routes} | {r.handler_file for r in model.routes}
    kept = []
    by_path = {m.path: m for m in project.python}
    for e in model.errors:
        mod = by_path.get(e.file)
        if mod is None or not e.reason.startswith("syntax error"):
            kept.append(e)
            continue
        framework_code = any(ref.module.split(".")[0] in FRAMEWORK_PACKAGES for ref in mod.imports.values())
        if e.file in route_files or framework_code:
            kept.append(e)
        else:
            model.skipped["syntax-error-outside-api-code"] = model.skipped.get("syntax-error-outside-api-code", 0) + 1
    model.errors = kept


FRAMEWORK_PACKAGES = frozenset({"fastapi", "flask", "django", "rest_framework", "starlette", "connexion",
                                "flask_restful", "flask_smorest", "flask_restx", "ninja"})


def scan(root: Path, options: ScanOptions | None = None, config: Any = None,
         walked: WalkResult | None = None) -> AppModel:
    """Scan a source tree and return the linked AppModel (rules run on it afterwards)."""
    options = options or ScanOptions()
    started = time.perf_counter()
    with cyclic_gc_paused():
        return _scan(root, options, started, walked)


@contextlib.contextmanager
def cyclic_gc_paused(freeze_after: bool = False) -> Iterator[None]:
    """Pause the cyclic GC: facts are millions of small acyclic objects, and rescanning them after every allocation
    burst dominated run time (5x). ``freeze_after`` moves what exists at the end out of the GC's sight for good
    (the scan result keeps the facts alive; the first full collection while rendering walked them all, about 1 s
    on polar); it is unfrozen at exit so interpreter shutdown still collects cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if freeze_after:
                gc.freeze()
                _unfreeze_at_exit()
            gc.enable()


@functools.cache
def _unfreeze_at_exit() -> None:
    atexit.register(gc.unfreeze)


def _scan(root: Path, options: ScanOptions, started: float, walked: WalkResult | None) -> AppModel:
    project, model = build_project(root, options, walked)
    try:
        from apitrail.scan.facts import start_settings
    except ImportError:
        early = None
    else:
        # the project-level facts need no routes: on big projects they run in another process during linking
        early = start_settings(project, options.jobs)
    routes: list[Route] = []
    for plugin in all_frameworks():
        try:
            if plugin.detect(project):
                found = plugin.routes(project)
                if found:
                    model.frameworks.append(plugin.name)
                routes.extend(found)
        except Exception as exc:  # noqa: BLE001 - a linker bug must not lose the rest of the scan
            if options.debug:
                raise
            model.errors.append(ScanError("<linker>", f"{plugin.name} linker failed: {type(exc).__name__}: {exc}"))
    model.routes = sorted(_dedupe(routes), key=lambda r: (r.file, r.line, r.path, r.method))
    model.errors.extend(project.errors)
    _error_matters(model, project)
    model.modules = {"project": project}
    try:
        from apitrail.scan.facts import attach_handler_facts
    except ImportError:
        pass
    else:
        attach_handler_facts(project, model, jobs=options.jobs, early=early)
    model.settings.append({"elapsed_s": round(time.perf_counter() - started, 3)})
    return model
