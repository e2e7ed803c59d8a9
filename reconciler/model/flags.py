"""The PostHog feature-flag model: what the flag store holds and what change requests edit.

Pure data, no behaviour: the change engine (`engine/`) produces new `Flag` values, the store
persists them, the API serialises them with PostHog's field names. Every field carries a
description because these models also generate part of the JSON Schemas users edit against.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reconciler.model.limits import MAX_SAFE_INTEGER, MAX_STORE_INTEGER

PropertyOperator = Literal[
    "exact",
    "is_not",
    "icontains",
    "not_icontains",
    "regex",
    "not_regex",
    "gt",
    "gte",
    "lt",
    "lte",
    "is_set",
    "is_not_set",
    "is_date_exact",
    "is_date_before",
    "is_date_after",
    "in",
    "not_in",
]


class Closed(BaseModel):
    """Closed, frozen objects: a misspelt key is an error, never silently ignored; values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PropertyFilter(Closed):
    """One condition on a person, group or cohort property (PostHog's property filter)."""

    key: str = Field(min_length=1, description="Property name, e.g. `email` or `$geoip_country_code`.")
    value: Any = Field(
        default=None,
        description=(
            "Value to compare with; a list for `exact`/`is_not` means any of them. Numbers are"
            f" finite and within ±{MAX_SAFE_INTEGER}."
        ),
    )
    operator: PropertyOperator = Field(default="exact", description="Comparison operator.")
    type: Literal["person", "group", "cohort", "flag"] = Field(
        default="person", description="What the property belongs to."
    )
    group_type_index: int | None = Field(
        default=None, ge=0, le=MAX_STORE_INTEGER, description="Group type for `type: group` properties."
    )


class FlagGroup(Closed):
    """A release condition: who matches, and what share of them get the flag."""

    properties: list[PropertyFilter] = Field(
        default_factory=list, description="All must match; empty matches everyone."
    )
    rollout_percentage: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Share of matching users (0-100) who get the flag; null means 100.",
    )
    variant: str | None = Field(
        default=None, description="Variant forced for this group (multivariate flags only)."
    )


class Variant(Closed):
    """One arm of a multivariate flag."""

    key: str = Field(min_length=1, description="Variant key returned to SDKs.")
    name: str | None = Field(default=None, description="Human-readable variant name.")
    rollout_percentage: float = Field(
        ge=0, le=100, description="Share of flagged users (0-100) who get this variant; all sum to 100."
    )


class Multivariate(Closed):
    """The variants of a multivariate flag."""

    variants: list[Variant] = Field(
        min_length=1, description="The variants; their rollout percentages sum to 100."
    )


class FlagFilters(Closed):
    """PostHog's `filters` object: release conditions, variants and payloads."""

    groups: list[FlagGroup] = Field(
        default_factory=list, description="Release conditions, evaluated in order."
    )
    multivariate: Multivariate | None = Field(
        default=None, description="Variants, for a multivariate flag; null for a boolean flag."
    )
    payloads: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "JSON payload per variant key (`true` for a boolean flag). Numbers in it are finite and"
            f" within ±{MAX_SAFE_INTEGER}."
        ),
    )
    aggregation_group_type_index: int | None = Field(
        default=None,
        ge=0,
        le=MAX_STORE_INTEGER,
        description="Evaluate per group of this type instead of per person.",
    )


class FlagDefinition(Closed):
    """What a `feature_flag.create` change request defines: the flag minus store bookkeeping."""

    key: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,400}$",
        description="Flag key; must equal the change request's `resource_id` when given.",
    )
    name: str = Field(default="", description="Description of the flag shown in PostHog.")
    active: bool = Field(default=False, description="Whether the flag is on.")
    filters: FlagFilters = Field(
        default_factory=FlagFilters, description="Release conditions, variants and payloads."
    )
    ensure_experience_continuity: bool = Field(
        default=False, description="Keep a user's variant stable across identity changes."
    )
    tags: list[str] = Field(default_factory=list, description="Tags, used by policy matching.")


class Flag(Closed):
    """A feature flag in one environment, as the flag store holds it."""

    id: int = Field(description="Store-assigned id, stable for the flag's life.")
    key: str = Field(description="Flag key, unique per environment.")
    name: str = Field(default="", description="Description of the flag.")
    active: bool = Field(default=False, description="Whether the flag is on.")
    deleted: bool = Field(default=False, description="Soft-deleted flags keep their history.")
    filters: FlagFilters = Field(
        default_factory=FlagFilters, description="Release conditions, variants and payloads."
    )
    ensure_experience_continuity: bool = Field(
        default=False, description="Keep a user's variant stable across identity changes."
    )
    tags: list[str] = Field(default_factory=list, description="Tags.")
    version: int = Field(default=1, ge=1, description="Incremented by every applied change.")
