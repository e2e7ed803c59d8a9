"""What a change does, for people and for policies: the intent and the comparable values.

`Intent` is PostHog's `intent_display` (description, before, after, field-level changes),
built by the change engine for every applied change and stored with the change request.
`field_values` gives the scalar values approval-policy conditions (`policy/`) and plans
compare between a flag's before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.model.flags import Flag

_BOOKKEEPING = ("id", "version")  # always differ between versions; not a change anyone asked for


@dataclass(frozen=True)
class FieldChange:
    """One field that a change altered, by dotted path (`filters.groups[0].rollout_percentage`)."""

    field: str
    before: Any
    after: Any

    def as_display(self) -> dict[str, Any]:
        return {"field": self.field, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class Intent:
    """What a change does, for people: PostHog's `intent_display`.

    `before` and `after` are the whole flag as plain JSON data (`before` is None when the flag
    did not exist); `changes` lists each altered leaf field, in document order.
    """

    description: str
    before: dict[str, Any] | None
    after: dict[str, Any]
    changes: list[FieldChange]

    def as_display(self) -> dict[str, Any]:
        """PostHog's `intent_display`: `{description, before, after, changes[{field, before, after}]}`."""
        return {
            "description": self.description,
            "before": self.before,
            "after": self.after,
            "changes": [c.as_display() for c in self.changes],
        }


def build_intent(current: Flag | None, changed: Flag, sentences: list[str]) -> Intent:
    before = current.model_dump(mode="json") if current is not None else None
    after = changed.model_dump(mode="json")
    strip = {k: v for k, v in (before or {}).items() if k not in _BOOKKEEPING}
    changes = _diff(strip, {k: v for k, v in after.items() if k not in _BOOKKEEPING}, "")
    return Intent("; ".join(sentences), before, after, changes)


def _diff(before: Any, after: Any, path: str) -> list[FieldChange]:
    """Leaf-level differences; lists of objects of equal length are compared item by item."""
    if before == after:
        return []
    changes: list[FieldChange] = []
    if isinstance(before, dict) and isinstance(after, dict):
        for key in dict.fromkeys([*before, *after]):
            b, a = before.get(key), after.get(key)
            if b != a:  # most fields are unchanged: compare here rather than recurse into them
                changes += _diff(b, a, f"{path}.{key}" if path else key)
        return changes
    if _object_lists(before, after) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            if b != a:
                changes += _diff(b, a, f"{path}[{i}]")
        return changes
    return [FieldChange(path, before, after)]


def _object_lists(before: Any, after: Any) -> bool:
    return (
        isinstance(before, list)
        and isinstance(after, list)
        and all(isinstance(x, dict) for x in [*before, *after])
    )


# --- comparable values ------------------------------------------------------------------------


def field_values(flag: Flag | None) -> dict[str, Any]:
    """The values approval conditions and plans compare between a flag's before and after.

    - `exists`: the flag exists and is not deleted; `active`, `deleted`, `name`, `tags`,
      `ensure_experience_continuity` as stored.
    - `rollout_percentages`: each group's rollout percentage, a group without one counting
      as 100 (PostHog's meaning).
    - `rollout_percentage`: the largest of those (the widest share any matching user gets),
      0 without groups. This is the field PostHog's conditions name.
    - `effective_rollout_percentage`: `rollout_percentage` when the flag is served (exists
      and is active), else 0, so that turning a flag on reads as a ramp from 0.
    - `group_count`; `variants`: `{variant key: rollout percentage}`, empty for a boolean flag.

    An absent flag serves nobody: not active, not existing, every percentage 0.
    """
    if flag is None:
        return {
            "exists": False, "active": False, "deleted": False, "name": "", "tags": [],
            "ensure_experience_continuity": False, "rollout_percentages": [], "rollout_percentage": 0,
            "effective_rollout_percentage": 0, "group_count": 0, "variants": {},
        }  # fmt: skip
    percentages = [
        100.0 if g.rollout_percentage is None else g.rollout_percentage for g in flag.filters.groups
    ]
    overall = max(percentages, default=0)
    served = flag.active and not flag.deleted
    multivariate = flag.filters.multivariate
    return {
        "exists": not flag.deleted,
        "active": flag.active,
        "deleted": flag.deleted,
        "name": flag.name,
        "tags": list(flag.tags),
        "ensure_experience_continuity": flag.ensure_experience_continuity,
        "rollout_percentages": percentages,
        "rollout_percentage": overall,
        "effective_rollout_percentage": overall if served else 0,
        "group_count": len(percentages),
        "variants": {v.key: v.rollout_percentage for v in multivariate.variants} if multivariate else {},
    }
