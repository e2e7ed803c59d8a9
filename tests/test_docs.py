"""The docs name the code as it is: every module has its line in the architecture page, and no
page names a Python file that is not in the repository.

`docs/architecture.md` lists one line per module (`- `path/to/module.py` — what it is for`),
paths relative to `reconciler/`. Package `__init__.py` files that hold nothing but a docstring
and the migrations' version files are left out.

Every fenced YAML example in README.md and docs/*.md is either a whole document that the real
validator accepts as the kind it names, or marked `# fragment` on its first line and still
YAML; the whole documents of docs/format.md together form a repository that validates.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from reconciler.model.documents import DOCUMENT_MODELS
from reconciler.repo.layout import MEMBERS_FILE, PROJECT_FILE
from reconciler.repo.parse import parse_document
from reconciler.repo.sources import DirectorySource
from reconciler.repo.yamlio import load_yaml
from reconciler.validate.pipeline import validate_source

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


# --- the YAML examples in the docs are valid -----------------------------------------------------

YAML_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```$", re.MULTILINE | re.DOTALL)
FRAGMENT = "# fragment"
# The page whose whole documents, taken together, are meant as one repository.
REPOSITORY_PAGE = ROOT / "docs" / "format.md"


def _yaml_blocks() -> list[tuple[str, str]]:
    """Every fenced ```yaml block of the pages: (page:line, text)."""
    blocks = []
    for page in YAML_PAGES:
        text = page.read_text(encoding="utf-8")
        for block in YAML_BLOCK.finditer(text):
            line = text.count("\n", 0, block.start()) + 2
            blocks.append((f"{page.relative_to(ROOT)}:{line}", block.group(1)))
    return blocks


def _is_fragment(text: str) -> bool:
    return text.startswith(FRAGMENT)


def _document_path(kind: str, name: str) -> str:
    return {"Project": PROJECT_FILE, "Members": MEMBERS_FILE, "ApprovalPolicy": f"policies/{name}.yaml"}.get(
        kind, f"changes/{name}.yaml"
    )


def test_the_docs_have_yaml_examples_and_whole_documents_among_them() -> None:
    blocks = _yaml_blocks()
    kinds = {load_yaml(text.encode(), where).get("kind") for where, text in blocks if not _is_fragment(text)}
    assert set(DOCUMENT_MODELS) <= kinds, kinds


@pytest.mark.parametrize(("where", "text"), _yaml_blocks(), ids=[w for w, _ in _yaml_blocks()])
def test_every_yaml_example_in_the_docs_validates_as_what_it_is(where: str, text: str) -> None:
    plain = load_yaml(text.encode(), where)  # fragments too: they must still be YAML
    if _is_fragment(text):
        return
    kind = plain.get("kind") if isinstance(plain, dict) else None
    assert kind in DOCUMENT_MODELS, (
        f"{where}: a YAML example is a whole document with `kind:` {sorted(DOCUMENT_MODELS)}, "
        f"or starts with `{FRAGMENT}`"
    )
    model, _, findings = parse_document(where, kind, text.encode())
    assert model is not None and not findings, [f.message for f in findings]


def test_the_documents_of_the_format_page_form_a_valid_repository(tmp_path: Path) -> None:
    text = REPOSITORY_PAGE.read_text(encoding="utf-8")
    written = []
    for block in YAML_BLOCK.finditer(text):
        body = block.group(1)
        if _is_fragment(body):
            continue
        plain = load_yaml(body.encode(), str(REPOSITORY_PAGE))
        path = tmp_path / _document_path(plain["kind"], plain["metadata"]["name"])
        assert not path.exists(), f"two examples would be {path.relative_to(tmp_path)}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
        written.append(plain["kind"])
    assert sorted(set(written)) == sorted(DOCUMENT_MODELS)
    findings = validate_source(DirectorySource(tmp_path))
    assert not findings, [f"{f.path}: {f.pointer}: {f.message}" for f in findings]
