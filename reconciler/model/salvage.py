"""What of an invalid document still reads: the document without the parts that break its schema.

`validate` reports every problem in one run: the semantic checks also look at a file that has
schema errors, at whatever of it is sound. `salvage` drops each failing part (an unknown
property, an invalid optional value, a bad list item; the enclosing object when a required
property is what fails) and validates again, a bounded number of times. The result is a model
of the sound rest, and a way back from its pointers (list items may have shifted) to the
document's own. A salvaged model is only ever checked, never applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from reconciler.model.pointer import pointer_of
from reconciler.model.schema import validate_document

# Rounds of drop-and-validate: each drops every failing place at once, or climbs one level
# from a failing required property; deeper trouble than this is not worth salvaging.
MAX_ROUNDS = 8

_Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Salvaged:
    """The sound rest of an invalid document: its model, the document as written, and the
    original index of every item of each list that lost items (by the list's pruned pointer)."""

    model: BaseModel
    plain: Any
    indexes: dict[str, list[int]]

    def original_pointer(self, pointer: str) -> str:
        """The document's own pointer for a pointer into the salvaged model."""
        path = _original_path(self.plain, pointer, self.indexes)
        return pointer if path is None else pointer_of(path)


def salvage(data: Any, kind: str) -> Salvaged | None:
    """The sound rest of `data` as a `kind` document, or None when nothing useful is left
    (the failing part is the document itself, or it takes too many rounds)."""
    if not isinstance(data, dict):
        return None
    removed: set[_Path] = set()
    for _round in range(MAX_ROUNDS):
        pruned, indexes = _prune(data, (), removed)
        model, issues = validate_document(pruned, kind, max_issues=None)
        if model is not None:
            return Salvaged(model, data, indexes)
        for issue in issues:
            path = _original_path(data, issue.pointer, indexes)
            while path and (path in removed or not _exists(data, path)):
                path = path[:-1]  # a missing required property: its object cannot stand
            if not path:
                return None
            removed.add(path)
    return None


def _prune(value: Any, path: _Path, removed: set[_Path]) -> tuple[Any, dict[str, list[int]]]:
    """`value` without the `removed` paths, and the original indexes of lists that lost items."""
    indexes: dict[str, list[int]] = {}
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, item in value.items():
            if (*path, key) not in removed:
                kept[key], inner = _prune(item, (*path, key), removed)
                indexes.update(_prefixed(inner, key))
        return kept, indexes
    if isinstance(value, list):
        survivors = [i for i in range(len(value)) if (*path, i) not in removed]
        items = []
        for new, old in enumerate(survivors):
            item, inner = _prune(value[old], (*path, old), removed)
            items.append(item)
            indexes.update(_prefixed(inner, new))
        if len(survivors) != len(value):
            indexes[""] = survivors
        return items, indexes
    return value, indexes


def _prefixed(indexes: dict[str, list[int]], step: str | int) -> dict[str, list[int]]:
    prefix = pointer_of([step])
    return {prefix + pointer: kept for pointer, kept in indexes.items()}


def _original_path(data: Any, pointer: str, indexes: dict[str, list[int]]) -> _Path | None:
    """The path in `data` of a pointer into the pruned document, or None when it leads nowhere."""
    if not pointer:
        return ()
    path: list[str | int] = []
    pruned: list[str | int] = []
    current = data
    for raw in pointer[1:].split("/"):
        step = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, list):
            if not step.isdigit():
                return None
            index = int(step)
            kept = indexes.get(pointer_of(pruned))
            original = kept[index] if kept is not None and index < len(kept) else index
            pruned.append(index)
            path.append(original)
            current = current[original] if original < len(current) else None
        else:
            pruned.append(step)
            path.append(step)
            current = current.get(step) if isinstance(current, dict) else None
    return tuple(path)


def _exists(data: Any, path: _Path) -> bool:
    current = data
    for step in path:
        in_dict = isinstance(current, dict) and isinstance(step, str) and step in current
        if in_dict or (isinstance(current, list) and isinstance(step, int) and step < len(current)):
            current = current[step]
        else:
            return False
    return True
