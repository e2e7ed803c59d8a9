"""The exception tree drawn in `reconciler/errors.py` is the tree the package defines.

Every `ReconcilerError` subclass in the package appears under its parent, with the module
that defines it and what it overrides (`temporary`, a non-default exit code), and nothing
else is drawn: a new, moved or removed error class fails here until the drawing says so.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import reconciler
from reconciler import errors
from reconciler.errors import EXIT_USAGE, ReconcilerError

# One drawn line: tree marks, the class name, its module, then what it overrides.
_LINE = re.compile(r"^(?P<marks>[ │├└─]*)(?P<name>[A-Za-z]\w*)\s+(?P<module>[a-z_.]+)\s*(?P<notes>.*)$")
Row = tuple[str, str, str | None, str]  # name, module, parent, notes


def _drawn() -> set[Row]:
    doc = errors.__doc__ or ""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("ReconcilerError "))
    indent = len(lines[start]) - len(lines[start].lstrip())
    rows: set[Row] = set()
    parents: list[str] = []
    for line in lines[start:]:
        if not line.strip():
            break
        match = _LINE.match(line[indent:])
        assert match, f"not a line of the tree: {line!r}"
        depth = len(match["marks"]) // 4
        parents[depth:] = [match["name"]]
        parent = parents[depth - 1] if depth else None
        rows.add((match["name"], match["module"], parent, match["notes"].strip()))
    return rows


def _defined() -> set[Row]:
    for module in pkgutil.walk_packages(reconciler.__path__, "reconciler."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    rows: set[Row] = set()
    pending: list[type[ReconcilerError]] = [ReconcilerError]
    while pending:
        cls = pending.pop()
        pending.extend(c for c in cls.__subclasses__() if c.__module__.startswith("reconciler."))
        base = cls.__bases__[0]
        parent = base.__name__ if issubclass(base, ReconcilerError) else None
        notes = ["temporary"] if cls.temporary else []
        notes += [f"exit {cls.exit_code}"] if cls.exit_code != EXIT_USAGE else []
        rows.add((cls.__name__, cls.__module__.removeprefix("reconciler."), parent, ", ".join(notes)))
    return rows


def test_the_docstring_draws_every_reconciler_error_under_its_parent() -> None:
    drawn, defined = _drawn(), _defined()
    assert sorted(defined - drawn, key=str) == [], "defined but not drawn (or drawn differently)"
    assert sorted(drawn - defined, key=str) == [], "drawn but not defined"


def test_temporary_is_a_class_attribute_never_patched_nor_guessed() -> None:
    assert vars(ReconcilerError)["temporary"] is False
    patched = re.compile(r"\w\.temporary\s*=[^=]|getattr\([^)]*[\"']temporary[\"']")
    package = Path(reconciler.__file__).parent
    found = [
        f"{path.relative_to(package)}:{number}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if patched.search(line)
    ]
    assert found == []
