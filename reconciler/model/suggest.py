""" "Did you mean …": the closest known name to a mistyped one.

The validator asks for unknown properties, logins, roles, environments, flag keys and
instruction kinds. A suggestion is only ever one of the names given as candidates (property
names of the schema, names declared in the repository), never a value the document holds, and
it is left out when the typed name is too long to be a typo of a name.

A typo is a character or two off: one left out, added, changed, or two swapped. Such a name
shares, with the name meant, a variant with one character deleted, so `Names` indexes its
names by those variants and weighs (difflib's ratio) only the few the typed name leads to:
a repository may declare thousands of logins or flag keys and misspell many of them, and no
question walks the whole set. Names further off than that are not suggested.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Names are short; a longer "name" is pasted text, not a typo, and comparing it costs for nothing.
MAX_TYPED = 100
# Below this similarity (difflib's ratio) two names are unrelated.
CUTOFF = 0.6


class Names:
    """A set of known names to suggest from, case aside."""

    def __init__(self, candidates: Iterable[str]) -> None:
        self._by_folded: dict[str, str] = {}
        for candidate in candidates:
            self._by_folded.setdefault(candidate.lower(), candidate)
        self._index: dict[str, set[str]] | None = None

    def closest(self, typed: str) -> str | None:
        """The known name most like `typed`, or None when none is close enough."""
        if not isinstance(typed, str) or not typed or len(typed) > MAX_TYPED:
            return None
        folded = typed.lower()
        same = self._by_folded.get(folded)
        if same is not None:
            return same if same != typed else None  # only the case differs, or it is known
        pool = self._near(folded)
        matches = difflib.get_close_matches(folded, pool, n=1, cutoff=CUTOFF)
        return self._by_folded[matches[0]] if matches else None

    def _near(self, folded: str) -> list[str]:
        index = self._index if self._index is not None else self._build_index()
        found: set[str] = set()
        for variant in _variants(folded):
            found |= index.get(variant, set())
        return sorted(found)

    def _build_index(self) -> dict[str, set[str]]:
        index: dict[str, set[str]] = {}
        for name in self._by_folded:
            if len(name) <= MAX_TYPED:
                for variant in _variants(name):
                    index.setdefault(variant, set()).add(name)
        self._index = index
        return index


def _variants(name: str) -> set[str]:
    """`name` and every string it gives with one character deleted."""
    return {name, *(name[:i] + name[i + 1 :] for i in range(len(name)))}


def closest(typed: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like `typed` (case aside), or None when none is close enough."""
    return Names(candidates).closest(typed)


def did_you_mean(typed: str, candidates: Iterable[str] | Names) -> str:
    """`: did you mean 'x'?` for the closest candidate, or an empty string when none is close."""
    names = candidates if isinstance(candidates, Names) else Names(candidates)
    match = names.closest(typed)
    return f": did you mean {match!r}?" if match is not None else ""
