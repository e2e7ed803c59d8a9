"""What changed between two JSON values, leaf by leaf, named by JSON pointers: how the read
commands show a flag's version against the one before, and a change request's before and after.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Difference:
    """One value that differs between two versions, at a JSON pointer into the flag."""

    pointer: str
    before: Any
    after: Any

    def text(self) -> str:
        """`/filters/groups/0/rollout_percentage: 10.0 -> 50.0`."""
        return f"{self.pointer}: {_shown(self.before)} -> {_shown(self.after)}"


MISSING = object()


def _shown(value: Any) -> str:
    return "(none)" if value is MISSING else _compact(value)


def differences(before: Any, after: Any) -> list[Difference]:
    """What changed from `before` to `after` (plain JSON values), leaf by leaf."""
    return list(_diff("", before, after))


def _diff(pointer: str, old: Any, new: Any) -> Iterator[Difference]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            yield from _diff(f"{pointer}/{_escape(str(key))}", old.get(key, MISSING), new.get(key, MISSING))
    elif isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            yield from _diff(
                f"{pointer}/{index}",
                old[index] if index < len(old) else MISSING,
                new[index] if index < len(new) else MISSING,
            )
    elif old != new or type(old) is not type(new):
        yield Difference(pointer, old, new)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)
