"""What evaluating one flag for one caller gives: the value, why, and the payload.

`FlagResult` is what every remote-evaluation surface maps from: PostHog's `/flags` and
`/decide` bodies, and OFREP's reasons and error codes. `Context` is what a caller tells us
about itself: its distinct id, person properties, groups and their properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# PostHog's reason codes, as its flags service writes them into `reason.code`.
CONDITION_MATCH = "condition_match"
NO_CONDITION_MATCH = "no_condition_match"
OUT_OF_ROLLOUT_BOUND = "out_of_rollout_bound"
NO_GROUP_TYPE = "no_group_type"
FLAG_DISABLED = "flag_disabled"

# Why a flag could not be evaluated at all (`FlagResult.error`); the value is then `False`.
COHORT_NOT_FOUND = "cohort_not_found"

_DESCRIPTIONS = {
    NO_CONDITION_MATCH: "No matching condition set",
    OUT_OF_ROLLOUT_BOUND: "Out of rollout bound",
    NO_GROUP_TYPE: "No group type",
    FLAG_DISABLED: "Feature flag is disabled",
}


@dataclass(frozen=True)
class Context:
    """Who asks: the distinct id, person properties, groups (type name → key) and their properties."""

    distinct_id: str
    person_properties: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    group_properties: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class FlagResult:
    """One flag for one caller.

    `value` is what the SDKs return: the variant key of a multivariate flag that matched, else
    whether it matched. `payload` is the JSON value configured for that value (`None` when the
    flag did not match or has none). `reason` is one of PostHog's reason codes; `error` names
    why the flag could not be evaluated (its value is then `False`), else `None`.
    `server_only` is true when the SDKs' local evaluation could not decide this flag for this
    context and would have asked the server: the value then follows PostHog's server rules.
    """

    key: str
    flag_id: int
    version: int
    enabled: bool
    variant: str | None
    payload: Any
    reason: str
    condition_index: int | None = None
    error: str | None = None
    server_only: bool = False

    @property
    def value(self) -> bool | str:
        return self.variant if self.variant is not None else self.enabled

    @property
    def description(self) -> str:
        if self.error is not None:
            return self.error
        if self.reason == CONDITION_MATCH:
            return f"Matched condition set {(self.condition_index or 0) + 1}"
        return _DESCRIPTIONS.get(self.reason, self.reason)
