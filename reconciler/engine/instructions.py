"""Instruction handlers: each `update` instruction as a pure function on a `Flag`.

The change engine (`reconciler.engine.apply_change`) applies a change request's instructions
in order, each through its handler here. Each handler returns the edited flag and a sentence in
PostHog's style for the change's description; it raises ChangeError when the instruction
cannot apply to the flag as it stands (a missing group index, a payload for no variant).
Consistency of the whole flag (variants summing to 100, forced variants existing) is checked
once by the engine after all instructions, so that instructions may pass through an
intermediate state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.errors import ChangeError
from reconciler.model.documents import (
    AddGroup,
    AddTags,
    Instruction,
    RemoveGroup,
    RemoveTags,
    ReplaceFilters,
    TurnFlagOff,
    TurnFlagOn,
    UpdateGroupProperties,
    UpdateName,
    UpdatePayload,
    UpdateRollout,
    UpdateVariants,
)
from reconciler.model.flags import Flag, FlagGroup, Multivariate, Variant

BOOLEAN_PAYLOAD_KEY = "true"  # the payload key of a flag without variants, as PostHog has it


def apply_instruction(flag: Flag, instruction: Instruction) -> tuple[Flag, str]:
    """The flag with one instruction applied, and the sentence describing it."""
    return _INSTRUCTIONS[instruction.kind](flag, instruction)


def _turn_on(flag: Flag, _: TurnFlagOn) -> tuple[Flag, str]:
    return flag.model_copy(update={"active": True}), f"Enable feature flag '{flag.key}'"


def _turn_off(flag: Flag, _: TurnFlagOff) -> tuple[Flag, str]:
    return flag.model_copy(update={"active": False}), f"Disable feature flag '{flag.key}'"


def _update_rollout(flag: Flag, ins: UpdateRollout) -> tuple[Flag, str]:
    group = _group(flag, ins.group)
    new = group.model_copy(update={"rollout_percentage": ins.percentage})
    return _with_groups(flag, _replaced(flag.filters.groups, ins.group, new)), (
        f"Update rollout percentage for feature flag '{flag.key}'{_which(flag, ins.group)}: "
        f"{pct(group.rollout_percentage)} -> {pct(ins.percentage)}"
    )


def _add_group(flag: Flag, ins: AddGroup) -> tuple[Flag, str]:
    group = FlagGroup(
        properties=ins.properties, rollout_percentage=ins.rollout_percentage, variant=ins.variant
    )
    index = len(flag.filters.groups)
    forced = f", variant '{ins.variant}'" if ins.variant is not None else ""
    return _with_groups(flag, [*flag.filters.groups, group]), (
        f"Add group {index} to feature flag '{flag.key}' "
        f"({_properties_text(ins.properties)}, {pct(ins.rollout_percentage)} rollout{forced})"
    )


def _remove_group(flag: Flag, ins: RemoveGroup) -> tuple[Flag, str]:
    group = _group(flag, ins.group)
    groups = [g for i, g in enumerate(flag.filters.groups) if i != ins.group]
    return _with_groups(flag, groups), (
        f"Remove group {ins.group} from feature flag '{flag.key}' "
        f"({_properties_text(group.properties)}, {pct(group.rollout_percentage)} rollout)"
    )


def _update_group_properties(flag: Flag, ins: UpdateGroupProperties) -> tuple[Flag, str]:
    group = _group(flag, ins.group)
    new = group.model_copy(update={"properties": list(ins.properties)})
    return _with_groups(flag, _replaced(flag.filters.groups, ins.group, new)), (
        f"Update properties of group {ins.group} for feature flag '{flag.key}': "
        f"{_properties_text(group.properties)} -> {_properties_text(ins.properties)}"
    )


def _update_variants(flag: Flag, ins: UpdateVariants) -> tuple[Flag, str]:
    new = Multivariate(variants=[Variant.model_validate(v.model_dump()) for v in ins.variants])
    old = flag.filters.multivariate
    filters = flag.filters.model_copy(update={"multivariate": new})
    return flag.model_copy(update={"filters": filters}), (
        f"Update variants for feature flag '{flag.key}': {variants_text(old)} -> {variants_text(new)}"
    )


def _update_payload(flag: Flag, ins: UpdatePayload) -> tuple[Flag, str]:
    payloads = dict(flag.filters.payloads)
    if ins.payload is None:
        payloads.pop(ins.variant, None)
        verb = "Remove"
    else:
        _check_payload_key(flag, ins.variant)
        payloads[ins.variant] = ins.payload
        verb = "Update"
    filters = flag.filters.model_copy(update={"payloads": payloads})
    return flag.model_copy(update={"filters": filters}), (
        f"{verb} payload of variant '{ins.variant}' for feature flag '{flag.key}'"
    )


def _update_name(flag: Flag, ins: UpdateName) -> tuple[Flag, str]:
    return flag.model_copy(update={"name": ins.name}), (
        f"Update name for feature flag '{flag.key}': '{flag.name}' -> '{ins.name}'"
    )


def _add_tags(flag: Flag, ins: AddTags) -> tuple[Flag, str]:
    tags = list(dict.fromkeys([*flag.tags, *ins.tags]))
    return flag.model_copy(
        update={"tags": tags}
    ), f"Add tags to feature flag '{flag.key}': {', '.join(ins.tags)}"


def _remove_tags(flag: Flag, ins: RemoveTags) -> tuple[Flag, str]:
    tags = [t for t in flag.tags if t not in ins.tags]
    return flag.model_copy(update={"tags": tags}), (
        f"Remove tags from feature flag '{flag.key}': {', '.join(ins.tags)}"
    )


def _replace_filters(flag: Flag, ins: ReplaceFilters) -> tuple[Flag, str]:
    return flag.model_copy(update={"filters": ins.filters}), (
        f"Replace filters for feature flag '{flag.key}': {len(ins.filters.groups)} group(s), "
        f"variants {variants_text(ins.filters.multivariate)}"
    )


_INSTRUCTIONS: dict[str, Callable[[Flag, Any], tuple[Flag, str]]] = {
    "turnFlagOn": _turn_on,
    "turnFlagOff": _turn_off,
    "updateRollout": _update_rollout,
    "addGroup": _add_group,
    "removeGroup": _remove_group,
    "updateGroupProperties": _update_group_properties,
    "updateVariants": _update_variants,
    "updatePayload": _update_payload,
    "updateName": _update_name,
    "addTags": _add_tags,
    "removeTags": _remove_tags,
    "replaceFilters": _replace_filters,
}


def _group(flag: Flag, index: int) -> FlagGroup:
    groups = flag.filters.groups
    if index >= len(groups):
        have = f"its groups are 0-{len(groups) - 1}" if groups else "it has no groups"
        raise ChangeError(f"feature flag '{flag.key}' has no group {index}: {have}")
    return groups[index]


def _check_payload_key(flag: Flag, variant: str) -> None:
    multivariate = flag.filters.multivariate
    if multivariate is None and variant != BOOLEAN_PAYLOAD_KEY:
        raise ChangeError(
            f"feature flag '{flag.key}' has no variants, so its only payload is 'true', not '{variant}'"
        )
    if multivariate is not None and variant not in {v.key for v in multivariate.variants}:
        raise ChangeError(
            f"feature flag '{flag.key}' has no variant '{variant}': its variants are "
            f"{', '.join(v.key for v in multivariate.variants)}"
        )


def _with_groups(flag: Flag, groups: list[FlagGroup]) -> Flag:
    return flag.model_copy(update={"filters": flag.filters.model_copy(update={"groups": groups})})


def _replaced(groups: list[FlagGroup], index: int, group: FlagGroup) -> list[FlagGroup]:
    return [group if i == index else g for i, g in enumerate(groups)]


def _which(flag: Flag, index: int) -> str:
    return "" if len(flag.filters.groups) == 1 else f" (group {index})"


def pct(value: float | None) -> str:
    return "100%" if value is None else f"{value:g}%"  # PostHog: no percentage means everyone


def _properties_text(properties: list[Any]) -> str:
    return f"{len(properties)} propert{'y' if len(properties) == 1 else 'ies'}" if properties else "everyone"


def variants_text(multivariate: Multivariate | None) -> str:
    if multivariate is None:
        return "none"
    return ", ".join(f"{v.key} {pct(v.rollout_percentage)}" for v in multivariate.variants)
