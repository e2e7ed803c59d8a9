"""The change engine: what one change request does to one flag, as pure functions.

`apply_change` takes a change request and the flag as the store holds it, and returns the new
flag together with its intent (PostHog's `intent_display`: description, before, after and the
field-level changes). It does no I/O, so the same result can be stored in a transaction or only
shown as what merging would do. `field_values` gives the comparable values that
approval-policy conditions and plans look at.

What cannot apply is refused with a `ChangeError` whose message says why (a stale
`base_version` sets `stale=True`). Inputs are frozen models, so a refusal never leaves a
half-changed flag behind.

Decisions worth knowing:
- `create` needs the flag to be absent or soft-deleted. Re-creating a deleted flag keeps its
  id and continues its version history (the store's history of that key stays one line);
  `new_id` is only used when there is no flag at all.
- `copy` writes into the target environment's flag: an existing live flag keeps everything
  but the copied aspects; an absent or deleted one is (re-)created from the source's name and
  settings with only the copied aspects filled in. The `groups` aspect carries the
  aggregation group type with the groups, because group properties refer to it.
- `addTags`/`removeTags` treat tags as a set: adding a present tag or removing an absent one
  changes nothing, unlike `removeGroup` on a missing index, whose meaning would shift.
- Variants summing to 100, forced variants and payloads having a variant are checked on the
  result of all instructions, so one change may pass through a state that would not stand
  alone (remove a variant's payload, then the variant). `instructions.py` holds one handler
  per instruction kind, `intent.py` the intent and `field_values`.
- Every applied change increments `version`, even one that leaves every field as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler.engine.instructions import BOOLEAN_PAYLOAD_KEY, apply_instruction, pct, variants_text
from reconciler.engine.intent import FieldChange, Intent, build_intent, field_values
from reconciler.errors import ChangeError
from reconciler.model.documents import ChangeRequestSpec, CopyAspect, action_mismatch
from reconciler.model.flags import Flag, FlagFilters, Multivariate

__all__ = [
    "COPY_ASPECTS",
    "FieldChange",
    "Intent",
    "Outcome",
    "apply_change",
    "copy_aspects",
    "field_values",
]

COPY_ASPECTS: tuple[CopyAspect, ...] = ("active", "groups", "variants", "payloads", "tags")


@dataclass(frozen=True)
class Outcome:
    """The flag after the change, and the change's intent."""

    flag: Flag
    intent: Intent


def apply_change(
    spec: ChangeRequestSpec,
    current: Flag | None,
    *,
    source: Flag | None = None,
    new_id: int | None = None,
) -> Outcome:
    """Apply `spec` to `current` (the flag in the change's environment, or None when absent).

    `source` is the flag in `spec.source_environment`, for `copy`; `new_id` is the store id a
    flag created from nothing gets. Raises ChangeError when the change cannot apply.
    """
    problem = action_mismatch(spec)
    if problem:
        raise ChangeError(problem, pointer="/spec/action_key", rule="action-mismatch")
    for flag in (current, source):
        if flag is not None and flag.key != spec.resource_id:
            raise ValueError(f"flag {flag.key!r} passed for a change to {spec.resource_id!r}")
    _check_target(spec, current)
    _check_base_version(spec, current)
    changed, sentences = _ACTIONS[spec.action_key](spec, current, source, new_id)
    changed = changed.model_copy(update={"version": current.version + 1 if current else 1})
    if current is None or current.deleted or changed.filters != current.filters:
        try:
            _check_consistent(changed)
        except ChangeError as err:
            raise _placed(
                err, "/spec/flag/filters" if spec.flag is not None else "/spec/instructions"
            ) from None
    return Outcome(changed, build_intent(current, changed, sentences))


# --- refusals before anything is applied ------------------------------------------------------


def _check_target(spec: ChangeRequestSpec, current: Flag | None) -> None:
    key, env = spec.resource_id, spec.environment
    if spec.action_key == "feature_flag.create":
        if current is not None and not current.deleted:
            raise ChangeError(
                f"feature flag '{key}' already exists in environment '{env}' (id {current.id}, "
                f"version {current.version}): change it with feature_flag.update",
                pointer="/spec/resource_id",
                rule="flag-exists",
            )
        return
    if spec.action_key == "feature_flag.copy":
        return  # copying into an absent or deleted flag (re-)creates it
    if current is None:
        raise ChangeError(
            f"feature flag '{key}' does not exist in environment '{env}': "
            "create it with feature_flag.create first",
            pointer="/spec/resource_id",
            rule="unknown-flag",
        )
    if current.deleted:
        raise ChangeError(
            f"feature flag '{key}' in environment '{env}' is deleted (version {current.version}): "
            "re-create it with feature_flag.create",
            pointer="/spec/resource_id",
            rule="unknown-flag",
        )


def _check_base_version(spec: ChangeRequestSpec, current: Flag | None) -> None:
    expected = spec.base_version
    if expected is None:
        return
    if current is None:
        raise ChangeError(
            f"Flag version mismatch: expected {expected}, got none (the flag does not exist)",
            stale=True,
            pointer="/spec/base_version",
            rule="stale-base-version",
        )
    if current.version != expected:
        raise ChangeError(
            f"Flag version mismatch: expected {expected}, got {current.version}",
            stale=True,
            pointer="/spec/base_version",
            rule="stale-base-version",
        )


def _check_consistent(flag: Flag) -> None:
    """Refuse a flag whose variants, forced variants and payloads do not fit together."""
    key, filters = flag.key, flag.filters
    variants = [v.key for v in filters.multivariate.variants] if filters.multivariate else []
    if filters.multivariate:
        _check_variants(key, filters.multivariate)
    for index, group in enumerate(filters.groups):
        if group.variant is not None and group.variant not in variants:
            have = f"its variants are {', '.join(variants)}" if variants else "it has no variants"
            raise ChangeError(
                f"group {index} of feature flag '{key}' forces variant '{group.variant}', "
                f"which does not exist: {have}"
            )
    allowed = set(variants) if variants else {BOOLEAN_PAYLOAD_KEY}
    orphans = sorted(set(filters.payloads) - allowed)
    if orphans:
        raise ChangeError(
            f"feature flag '{key}' has payloads for {', '.join(repr(o) for o in orphans)}, which "
            f"{'are not variants' if variants else 'it cannot serve without variants'}: "
            "remove them with updatePayload (payload: null) first"
        )


def _check_variants(key: str, multivariate: Multivariate) -> None:
    keys = [v.key for v in multivariate.variants]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ChangeError(f"feature flag '{key}' lists variant {', '.join(duplicates)} more than once")
    total = sum(v.rollout_percentage for v in multivariate.variants)
    if abs(total - 100) > 1e-9:
        raise ChangeError(
            f"the variants of feature flag '{key}' sum to {pct(total)}, not 100%: "
            f"{variants_text(multivariate)}"
        )


# --- actions ----------------------------------------------------------------------------------

_Step = tuple[Flag, list[str]]


def _create(spec: ChangeRequestSpec, current: Flag | None, _source: Flag | None, new_id: int | None) -> _Step:
    definition = spec.flag
    assert definition is not None  # action_mismatch guarantees it
    if definition.key is not None and definition.key != spec.resource_id:
        raise ChangeError(
            f"`flag.key` is '{definition.key}' but the change's resource_id is '{spec.resource_id}': "
            "they must be equal",
            pointer="/spec/flag/key",
            rule="bad-argument",
        )
    fields = definition.model_dump(exclude={"key"})
    flag = Flag.model_validate({**fields, "id": _id_for(current, new_id), "key": spec.resource_id})
    verb = "Re-create" if current is not None else "Create"
    return flag, [f"{verb} feature flag '{spec.resource_id}'"]


def _update(
    spec: ChangeRequestSpec, current: Flag | None, _source: Flag | None, _new_id: int | None
) -> _Step:
    assert current is not None  # _check_target guarantees it
    flag, sentences = current, []
    for index, instruction in enumerate(spec.instructions):
        try:
            flag, sentence = apply_instruction(flag, instruction)
        except ChangeError as err:
            raise _placed(err, f"/spec/instructions/{index}") from None
        sentences.append(sentence)
    return flag, sentences


def _switch(active: bool) -> Callable[[ChangeRequestSpec, Flag | None, Flag | None, int | None], _Step]:
    def switch(spec: ChangeRequestSpec, current: Flag | None, _s: Flag | None, _n: int | None) -> _Step:
        assert current is not None
        verb = "Enable" if active else "Disable"
        return current.model_copy(update={"active": active}), [f"{verb} feature flag '{spec.resource_id}'"]

    return switch


def _delete(
    spec: ChangeRequestSpec, current: Flag | None, _source: Flag | None, _new_id: int | None
) -> _Step:
    assert current is not None
    return current.model_copy(update={"deleted": True}), [f"Delete feature flag '{spec.resource_id}'"]


def _copy(spec: ChangeRequestSpec, current: Flag | None, source: Flag | None, new_id: int | None) -> _Step:
    key, origin = spec.resource_id, spec.source_environment
    if source is None or source.deleted:
        state = "is deleted" if source is not None else "does not exist"
        raise ChangeError(
            f"feature flag '{key}' {state} in source environment '{origin}': nothing to copy",
            pointer="/spec/source_environment",
            rule="copy-source-missing",
        )
    aspects = copy_aspects(spec)
    if not aspects:
        raise ChangeError(
            "feature_flag.copy selects no aspects to copy: name at least one in `included_actions`",
            pointer="/spec/included_actions"
            if spec.included_actions is not None
            else "/spec/excluded_actions",
            rule="bad-argument",
        )
    target = current if current is not None and not current.deleted else _blank_copy(source, current, new_id)
    filters = target.filters.model_copy(update=_copied_filters(source.filters, aspects))
    update: dict[str, Any] = {"filters": filters, "deleted": False}
    if "active" in aspects:
        update["active"] = source.active
    if "tags" in aspects:
        update["tags"] = list(source.tags)
    return target.model_copy(update=update), [
        f"Copy feature flag '{key}' from environment '{origin}': {', '.join(aspects)}"
    ]


def copy_aspects(spec: ChangeRequestSpec) -> list[CopyAspect]:
    """The aspects a copy writes, in canonical order: `included_actions`, or all but `excluded_actions`."""
    if spec.included_actions is not None:
        return [a for a in COPY_ASPECTS if a in spec.included_actions]
    excluded = spec.excluded_actions or []
    return [a for a in COPY_ASPECTS if a not in excluded]


def _blank_copy(source: Flag, current: Flag | None, new_id: int | None) -> Flag:
    """The flag a copy starts from when the target has none: the source's settings, no aspects."""
    filters = FlagFilters(aggregation_group_type_index=source.filters.aggregation_group_type_index)
    return Flag(
        id=_id_for(current, new_id),
        key=source.key,
        name=source.name,
        filters=filters,
        ensure_experience_continuity=source.ensure_experience_continuity,
    )


def _copied_filters(source: FlagFilters, aspects: list[CopyAspect]) -> dict[str, Any]:
    update: dict[str, Any] = {}
    if "groups" in aspects:
        update["groups"] = list(source.groups)
        update["aggregation_group_type_index"] = source.aggregation_group_type_index
    if "variants" in aspects:
        update["multivariate"] = source.multivariate
    if "payloads" in aspects:
        update["payloads"] = dict(source.payloads)
    return update


def _placed(err: ChangeError, pointer: str) -> ChangeError:
    """`err` pointing at `pointer` unless it already points somewhere."""
    if err.pointer:
        return err
    return ChangeError(str(err), stale=err.stale, pointer=pointer, rule=err.rule)


def _id_for(current: Flag | None, new_id: int | None) -> int:
    if current is not None:
        return current.id
    if new_id is None:
        raise ValueError("new_id is required when the change creates a flag that never existed")
    return new_id


_ACTIONS: dict[str, Callable[[ChangeRequestSpec, Flag | None, Flag | None, int | None], _Step]] = {
    "feature_flag.create": _create,
    "feature_flag.update": _update,
    "feature_flag.enable": _switch(True),
    "feature_flag.disable": _switch(False),
    "feature_flag.delete": _delete,
    "feature_flag.copy": _copy,
}
