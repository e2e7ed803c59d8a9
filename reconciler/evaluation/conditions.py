"""One flag for one caller: release conditions in order, rollout by hash, variants, payloads.

PostHog's algorithm: a caller (or a group, for a group flag) is placed at a fixed point in
[0, 1) by the SHA-1 of `<flag key>.<id>`; a condition whose filters all match takes the
caller when that point is within its rollout percentage, and a multivariate flag then picks
the variant whose slice of [0, 1) holds the point of `<flag key>.<id>variant`.

`evaluate_flag` runs this twice at most: first exactly as the SDKs' local evaluation does,
and only if that cannot decide (a property not sent, experience continuity, an operator the
SDKs leave to the server) again with the server's rules, marking the result `server_only`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from reconciler.evaluation.properties import CohortMissing, NeedsServer, match
from reconciler.evaluation.result import (
    COHORT_NOT_FOUND,
    CONDITION_MATCH,
    FLAG_DISABLED,
    NO_CONDITION_MATCH,
    NO_GROUP_TYPE,
    OUT_OF_ROLLOUT_BOUND,
    Context,
    FlagResult,
)
from reconciler.evaluation.values import Undecided
from reconciler.model.flags import Flag, FlagGroup

_SCALE = float(0xFFFFFFFFFFFFFFF)  # 15 hexadecimal digits of the SHA-1


def bucket(key: str, identifier: str, salt: str = "") -> float:
    """The caller's fixed point in [0, 1] for this flag (PostHog's hash)."""
    digest = hashlib.sha1(f"{key}.{identifier}{salt}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[:15], 16) / _SCALE


@dataclass(frozen=True)
class _Slice:
    key: str
    start: float
    end: float


class CompiledFlag:
    """A flag with what every evaluation needs worked out once: variant slices and keys."""

    def __init__(self, flag: Flag) -> None:
        self.flag = flag
        variants = flag.filters.multivariate.variants if flag.filters.multivariate else []
        slices, start = [], 0.0
        for variant in variants:
            end = start + variant.rollout_percentage / 100
            slices.append(_Slice(variant.key, start, end))
            start = end
        self.slices = tuple(slices)
        self.variant_keys = frozenset(v.key for v in variants)
        filters = flag.filters
        # Most flags are only rollouts: no filter, no group type, no continuity. Nothing can
        # be undecided for them, so they take a short path (`_rollouts`).
        self.rollouts_only = (
            flag.active
            and not flag.ensure_experience_continuity
            and filters.aggregation_group_type_index is None
            and all(not group.properties for group in filters.groups)
        )

    def variant_for(self, identifier: str) -> str | None:
        point = bucket(self.flag.key, identifier, "variant")
        return next((s.key for s in self.slices if s.start <= point < s.end), None)


class _Outcome(NamedTuple):
    enabled: bool
    variant: str | None
    reason: str
    condition: int | None = None


def evaluate_flag(
    compiled: CompiledFlag, context: Context, group_types: Mapping[str, str], now: dt.datetime
) -> FlagResult:
    """`compiled` for `context`; `group_types` maps group type index (as text) → group type name."""
    flag = compiled.flag
    if compiled.rollouts_only:
        return _result(flag, _rollouts(compiled, context.distinct_id), False)
    try:
        outcome, server_only = _local(compiled, context, group_types, now), False
    except Undecided:
        server_only = True
        try:
            outcome = _outcome(compiled, context, group_types, now, complete=True)
        except CohortMissing as missing:
            return _result(flag, _Outcome(False, None, NO_CONDITION_MATCH), True, COHORT_NOT_FOUND, missing)
    return _result(flag, outcome, server_only)


def _rollouts(compiled: CompiledFlag, identifier: str) -> _Outcome:
    """`_conditions` for a flag whose conditions have no filters: only the hash decides."""
    if not compiled.flag.filters.groups:
        return _Outcome(False, None, NO_CONDITION_MATCH)
    point: float | None = None
    for index, group in enumerate(compiled.flag.filters.groups):
        rollout = group.rollout_percentage
        if rollout is not None:
            if point is None:
                point = bucket(compiled.flag.key, identifier)
            if point > rollout / 100:
                continue
        return _Outcome(True, _variant(compiled, group, identifier), CONDITION_MATCH, index)
    return _Outcome(False, None, OUT_OF_ROLLOUT_BOUND)


def _result(
    flag: Flag, outcome: _Outcome, server_only: bool, error: str | None = None, why: object = None
) -> FlagResult:
    payload = None
    if outcome.enabled:
        payload = flag.filters.payloads.get(outcome.variant if outcome.variant is not None else "true")
    return FlagResult(
        key=flag.key,
        flag_id=flag.id,
        version=flag.version,
        enabled=outcome.enabled,
        variant=outcome.variant,
        payload=payload,
        reason=outcome.reason,
        condition_index=outcome.condition,
        error=None if error is None else f"{error}: {why}",
        server_only=server_only,
    )


def _local(
    compiled: CompiledFlag, context: Context, group_types: Mapping[str, str], now: dt.datetime
) -> _Outcome:
    if compiled.flag.active and compiled.flag.ensure_experience_continuity:
        # The SDKs never decide these locally; the server evaluates them on the distinct id.
        raise Undecided("experience continuity")
    return _outcome(compiled, context, group_types, now, complete=False)


def _outcome(
    compiled: CompiledFlag,
    context: Context,
    group_types: Mapping[str, str],
    now: dt.datetime,
    *,
    complete: bool,
) -> _Outcome:
    flag = compiled.flag
    if not flag.active:
        return _Outcome(False, None, FLAG_DISABLED)
    index = flag.filters.aggregation_group_type_index
    if index is None:
        return _conditions(compiled, context.person_properties, context.distinct_id, now, complete)
    name = group_types.get(str(index))
    if name is None and not complete:
        raise Undecided(f"group type {index} has no name locally")
    if name is None or name not in context.groups:
        return _Outcome(False, None, NO_GROUP_TYPE)
    if name not in context.group_properties and not complete:
        raise Undecided(f"no properties sent for group {name}")
    properties = context.group_properties.get(name, {})
    return _conditions(compiled, properties, context.groups[name], now, complete)


def _conditions(
    compiled: CompiledFlag, values: Mapping[str, Any], identifier: str, now: dt.datetime, complete: bool
) -> _Outcome:
    undecided = False
    miss = NO_CONDITION_MATCH
    for index, group in enumerate(compiled.flag.filters.groups):
        try:
            taken = _condition(compiled, group, values, identifier, now, complete)
        except NeedsServer:
            raise
        except Undecided:
            # Local evaluation tries the later conditions; only if none takes the caller is
            # the whole flag undecided.
            undecided = True
            continue
        if taken == CONDITION_MATCH:
            variant = _variant(compiled, group, identifier)
            return _Outcome(True, variant, CONDITION_MATCH, index)
        if taken == OUT_OF_ROLLOUT_BOUND:
            miss = OUT_OF_ROLLOUT_BOUND
    if undecided:
        raise Undecided("no condition decided")
    return _Outcome(False, None, miss)


def _condition(
    compiled: CompiledFlag,
    group: FlagGroup,
    values: Mapping[str, Any],
    identifier: str,
    now: dt.datetime,
    complete: bool,
) -> str:
    if group.properties and not _properties_match(group, values, now, complete):
        return NO_CONDITION_MATCH
    rollout = group.rollout_percentage
    if rollout is not None and bucket(compiled.flag.key, identifier) > rollout / 100:
        return OUT_OF_ROLLOUT_BOUND
    return CONDITION_MATCH


def _properties_match(group: FlagGroup, values: Mapping[str, Any], now: dt.datetime, complete: bool) -> bool:
    """All filters match. As in the SDKs, a filter that cannot be decided does not stop the
    loop: a later filter that does not match still decides the condition."""
    pending: Undecided | None = None
    for prop in group.properties:
        try:
            matched = match(prop, values, now, complete=complete)
        except NeedsServer as error:
            pending = pending or error
            continue
        except Undecided as error:
            pending = pending if isinstance(pending, NeedsServer) else error
            continue
        if not matched:
            return False
    if pending is not None:
        raise pending
    return True


def _variant(compiled: CompiledFlag, group: FlagGroup, identifier: str) -> str | None:
    if group.variant and group.variant in compiled.variant_keys:
        return group.variant
    return compiled.variant_for(identifier) if compiled.slices else None
