"""Readable diffs of JSON values for the dashboard: the flag before and after a change.

Both sides are written as indented JSON with sorted keys, so a diff names the lines that
changed and nothing moves because of key order; `lines` gives each line with its kind
(`add`, `del`, `same`, `gap`) for the template to mark.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

CONTEXT = 3
MAX_LINES = 2000  # a diff longer than this is cut, saying so


@dataclass(frozen=True)
class DiffLine:
    kind: str  # add | del | same | gap
    text: str

    @property
    def sign(self) -> str:
        return {"add": "+", "del": "-", "same": " ", "gap": "…"}[self.kind]


def pretty(value: Any) -> str:
    """A JSON value as people read it: indented, keys sorted, non-ASCII kept."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def lines(before: Any, after: Any) -> list[DiffLine]:
    """The changed lines of `after` against `before` with a little context; `before` None
    (a new value) shows every line added. Equal values give no lines."""
    old = [] if before is None else pretty(before).splitlines()
    new = [] if after is None else pretty(after).splitlines()
    out: list[DiffLine] = []
    for group in difflib.SequenceMatcher(None, old, new, autojunk=False).get_grouped_opcodes(CONTEXT):
        if out:
            out.append(DiffLine("gap", ""))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [DiffLine("same", text) for text in old[i1:i2]]
                continue
            out += [DiffLine("del", text) for text in old[i1:i2]]
            out += [DiffLine("add", text) for text in new[j1:j2]]
    if len(out) > MAX_LINES:
        out = [*out[:MAX_LINES], DiffLine("gap", f"{len(out) - MAX_LINES} more lines not shown")]
    return out
