""" "Did you mean …": the closest known name to a mistyped one.

The validator calls `did_you_mean` for unknown properties, logins, roles, environments, flag
keys and instruction kinds. A suggestion is only ever one of the names given as candidates
(property names of the schema, names declared in the repository), never a value the document
holds, and it is left out when the typed name is too long to be a typo of a name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Names are short; a longer "name" is pasted text, not a typo, and comparing it costs for nothing.
MAX_TYPED = 100
# Below this similarity (difflib's ratio) two names are unrelated.
CUTOFF = 0.6


def closest(typed: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like `typed` (case aside), or None when none is close enough."""
    if not isinstance(typed, str) or not typed or len(typed) > MAX_TYPED:
        return None
    by_folded: dict[str, str] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.lower(), candidate)
    folded = typed.lower()
    if folded in by_folded and by_folded[folded] != typed:
        return by_folded[folded]  # only the case differs
    by_folded.pop(folded, None)
    matches = difflib.get_close_matches(folded, list(by_folded), n=1, cutoff=CUTOFF)
    return by_folded[matches[0]] if matches else None


def did_you_mean(typed: str, candidates: Iterable[str]) -> str:
    """`: did you mean 'x'?` for the closest candidate, or an empty string when none is close."""
    match = closest(typed, candidates)
    return f": did you mean {match!r}?" if match is not None else ""
