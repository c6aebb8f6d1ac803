"""docs/layout.md against the tree: every package folder of bench/ and models/ has its line,
the folders each one's modules import are those its line allows, bench/ keeps at most six
modules at its top level, and package ``__init__`` files hold a docstring only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYOUT = ROOT / "docs" / "layout.md"


def declared() -> dict[str, set[str]]:
    """Folder -> the folders its modules may import, from the table between the markers."""
    text = LAYOUT.read_text()
    table = text[text.index("<!-- layout:start -->"):text.index("<!-- layout:end -->")]
    out = {}
    for m in re.finditer(r"^\| `([\w/]+)` \|.*\| *([\w, ]*) *\|$", table, re.M):
        allowed = {a.strip() for a in m[2].split(",") if a.strip()}
        out[m[1]] = {a if a == "models" else f"bench/{a}" for a in allowed}
    return out


def folder_of(module: str) -> str:
    """The layout folder of a dotted module name (``bench.train.runner`` -> bench/train)."""
    parts = module.split(".")
    if parts[0] == "models":
        return "models"
    if len(parts) > 1 and (ROOT / "bench" / parts[1]).is_dir():
        return f"bench/{parts[1]}/"
    return "bench/"


def imports(path: Path) -> set[str]:
    """Every bench or models module that ``path`` imports, anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.split(".")[0] in ("bench", "models") and (
        (ROOT / (m.replace(".", "/") + ".py")).exists() or (ROOT / m.replace(".", "/")).is_dir())}


def packages() -> set[str]:
    found = {f"{p.parent.relative_to(ROOT)}/" for p in (ROOT / "bench").rglob("__init__.py")}
    return found | {"models/"}


def test_every_package_folder_has_its_line():
    table = declared()
    keys = {k if k.endswith("/") else k + "/" for k in table}
    assert keys == packages()


def test_each_folder_imports_only_what_its_line_allows():
    table = {k.rstrip("/") or k: v for k, v in declared().items()}
    wrong = []
    for path in [*(ROOT / "bench").rglob("*.py"), *(ROOT / "models").rglob("*.py")]:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        here = folder_of(module).rstrip("/")
        for target in imports(path):
            there = folder_of(target).rstrip("/")
            if there not in (here, "bench") and there not in table[here]:
                wrong.append(f"{module} imports {target} ({here} may not import {there})")
    assert wrong == []


def test_bench_keeps_at_most_six_top_level_modules():
    top = [p.name for p in (ROOT / "bench").glob("*.py")
           if p.name not in ("__init__.py", "__main__.py")]
    assert len(top) <= 6, top


def test_package_faces_hold_a_docstring_only():
    for init in [*(ROOT / "bench").rglob("__init__.py")]:
        body = ast.parse(init.read_text()).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), init
