"""The docs name the code as it is: every module has its line in the architecture page, and no
page names a Python file that is not in the repository.

`docs/architecture.md` lists one line per module (`- `path/to/module.py` — what it is for`),
paths relative to `reconciler/`. Package `__init__.py` files that hold nothing but a docstring
and the migrations' version files are left out.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "reconciler"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PAGES = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

MODULE_LINE = re.compile(r"^- `([\w/]+\.py)` — ", re.MULTILINE)
PYTHON_FILE = re.compile(r"`([\w./]+\.py)`")
TOP_LEVEL = ("tests/", "bench/", "reconciler/", "docs/")


def _holds_nothing(path: Path) -> bool:
    body = ast.parse(path.read_text(encoding="utf-8")).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return all(isinstance(node, ast.ImportFrom) and node.module == "__future__" for node in body)


def _modules() -> set[str]:
    modules = set()
    for path in PACKAGE.rglob("*.py"):
        name = path.relative_to(PACKAGE).as_posix()
        if name.startswith("store/migrations/versions/"):
            continue
        if path.name == "__init__.py" and _holds_nothing(path):
            continue
        modules.add(name)
    return modules


def _documented() -> list[str]:
    return MODULE_LINE.findall(ARCHITECTURE.read_text(encoding="utf-8"))


def test_every_module_has_its_line_in_the_architecture_page() -> None:
    missing = sorted(_modules() - set(_documented()))
    assert not missing, f"add a line for each to docs/architecture.md: {missing}"


def test_the_architecture_page_lists_each_module_once() -> None:
    documented = _documented()
    assert len(documented) == len(set(documented))


def test_the_architecture_page_names_only_modules_that_exist() -> None:
    named = set(PYTHON_FILE.findall(ARCHITECTURE.read_text(encoding="utf-8")))
    gone = sorted(
        name
        for name in named
        if not (ROOT / name if name.startswith(TOP_LEVEL) else PACKAGE / name).is_file()
    )
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"


def test_python_files_named_in_the_docs_exist() -> None:
    gone = []
    for page in PAGES:
        for name in PYTHON_FILE.findall(page.read_text(encoding="utf-8")):
            if name.startswith(TOP_LEVEL) and not (ROOT / name).is_file():
                gone.append(f"{page.relative_to(ROOT)}: {name}")
    assert not gone, gone
