"""The Python fact extractor: newer syntax than the host, relative imports, lazy bodies, error reporting."""

from __future__ import annotations

from pathlib import Path

from apitrail.scan.engine import ScanOptions, scan
from apitrail.scan.lang.python import extract_module

PEP695_AND_NEWER = b'''
type UserId = int

class Box[T]:
    def get[K](self, key: K) -> T: ...

def handler(x: int) -> str:
    match x:
        case 1:
            return f"{'nested' + f'{x!r}'}"
    return "ok"
'''


def test_syntax_newer_than_host_python_parses_cleanly() -> None:
    mod = extract_module(PEP695_AND_NEWER, "app/types.py")
    assert mod.errors == []
    assert "Box" in mod.classes and "handler" in mod.functions


def test_relative_imports_resolve_to_absolute_modules() -> None:
    src = b"from .deps import get_user as gu\nfrom ..core import db\nimport os.path as p\n"
    mod = extract_module(src, "pkg/api/routes.py")
    assert mod.imports["gu"].module == "pkg.api.deps" and mod.imports["gu"].name == "get_user"
    assert mod.imports["db"].module == "pkg.core"
    assert mod.imports["p"].module == "os.path"
    init = extract_module(b"from .routes import router\n", "pkg/api/__init__.py")
    assert init.imports["router"].module == "pkg.api.routes"


def test_function_bodies_are_extracted_lazily_and_correctly(tmp_path: Path) -> None:
    src = b'''
def view(item_id: int, user=Depends(current_user)):
    item = db.query(Item).filter(Item.id == item_id).first()
    if item.owner_id != user.id:
        raise HTTPException(status_code=403)
    return item
'''
    f = tmp_path / "v.py"
    f.write_bytes(src)
    mod = extract_module(src, "v.py")
    mod.src.abs_path = str(f)
    fn = mod.functions["view"]
    assert fn._body is None  # not extracted until used
    body = fn.body
    assert [c.op for c in body.compares] == ["==", "!="]
    assert body.raises and "403" in body.raises[0].text
    assert body.branches[0].raises


def test_syntax_error_in_api_file_is_reported_and_strict_fails(tmp_path: Path) -> None:
    (tmp_path / "api.py").write_text(
        "from fastapi import FastAPI\napp = FastAPI()\n\n@app.get('/x')\ndef x(:\n    return 1\n")
    model = scan(tmp_path, ScanOptions(use_cache=False, jobs=1))
    assert any(e.file == "api.py" and "syntax error" in e.reason for e in model.errors)
