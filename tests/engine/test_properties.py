"""Properties of the change engine over generated flags and instructions.

Whatever the flag and the instructions: a change either applies whole, with exactly one new
version and a consistent flag, or is refused with a ChangeError and touches nothing; a ramp
touches nothing but its group's percentage; the intent agrees with the flags it describes.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.engine import apply_change, field_values
from reconciler.errors import ChangeError
from reconciler.model.documents import ChangeRequestSpec
from reconciler.model.flags import Flag

KEY = "generated-flag"
VARIANT_KEYS = ["control", "test", "other"]

percentages = st.integers(min_value=0, max_value=100)
properties = st.lists(
    st.fixed_dictionaries(
        {"key": st.sampled_from(["email", "plan", "country"]), "value": st.text(max_size=5)}
    ),
    max_size=2,
)


@st.composite
def flags(draw: st.DrawFn) -> Flag:
    split = draw(st.none() | percentages)
    variants = None if split is None else [("control", split), ("test", 100 - split)]
    keys = [k for k, _ in variants] if variants else []
    groups = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "properties": properties,
                    "rollout_percentage": st.none() | percentages,
                    "variant": st.none() | st.sampled_from(keys) if keys else st.none(),
                }
            ),
            max_size=4,
        )
    )
    payload_keys = keys or ["true"]
    payloads = draw(st.dictionaries(st.sampled_from(payload_keys), st.integers(), max_size=len(payload_keys)))
    filters: dict[str, Any] = {"groups": groups, "payloads": payloads}
    if variants:
        filters["multivariate"] = {"variants": [{"key": k, "rollout_percentage": p} for k, p in variants]}
    return Flag.model_validate(
        {
            "id": draw(st.integers(min_value=1, max_value=1000)),
            "key": KEY,
            "active": draw(st.booleans()),
            "filters": filters,
            "tags": draw(st.lists(st.sampled_from(["a", "b", "c"]), unique=True)),
            "version": draw(st.integers(min_value=1, max_value=50)),
        }
    )


group_index = st.integers(min_value=0, max_value=5)
variant_lists = st.lists(
    st.fixed_dictionaries({"key": st.sampled_from(VARIANT_KEYS), "rollout_percentage": percentages}),
    min_size=1,
    max_size=3,
)
instructions = st.one_of(
    st.just({"kind": "turnFlagOn"}),
    st.just({"kind": "turnFlagOff"}),
    st.builds(lambda g, p: {"kind": "updateRollout", "group": g, "percentage": p}, group_index, percentages),
    st.builds(
        lambda props, p, v: {"kind": "addGroup", "properties": props, "rollout_percentage": p, "variant": v},
        properties,
        st.none() | percentages,
        st.none() | st.sampled_from(VARIANT_KEYS),
    ),
    st.builds(lambda g: {"kind": "removeGroup", "group": g}, group_index),
    st.builds(
        lambda g, props: {"kind": "updateGroupProperties", "group": g, "properties": props},
        group_index,
        properties,
    ),
    st.builds(lambda vs: {"kind": "updateVariants", "variants": vs}, variant_lists),
    st.builds(
        lambda v, p: {"kind": "updatePayload", "variant": v, "payload": p},
        st.sampled_from([*VARIANT_KEYS, "true"]),
        st.none() | st.integers(),
    ),
    st.builds(lambda n: {"kind": "updateName", "name": n}, st.text(max_size=10)),
    st.builds(
        lambda t: {"kind": "addTags", "tags": t}, st.lists(st.sampled_from(["a", "b", "d"]), min_size=1)
    ),
    st.builds(
        lambda t: {"kind": "removeTags", "tags": t}, st.lists(st.sampled_from(["a", "b", "d"]), min_size=1)
    ),
)


def update(*items: dict[str, Any], base_version: int | None = None) -> ChangeRequestSpec:
    return ChangeRequestSpec.model_validate(
        {
            "action_key": "feature_flag.update",
            "resource_id": KEY,
            "environment": "production",
            "instructions": list(items),
            "base_version": base_version,
        }
    )


def assert_consistent(flag: Flag) -> None:
    multivariate = flag.filters.multivariate
    keys = [v.key for v in multivariate.variants] if multivariate else []
    if multivariate:
        assert sum(v.rollout_percentage for v in multivariate.variants) == 100
        assert len(set(keys)) == len(keys)
    assert all(g.variant is None or g.variant in keys for g in flag.filters.groups)
    assert set(flag.filters.payloads) <= (set(keys) if keys else {"true"})


@given(flags(), st.lists(instructions, min_size=1, max_size=4))
def test_a_change_applies_whole_with_one_new_version_or_is_refused_untouched(
    current: Flag, items: list[dict[str, Any]]
) -> None:
    snapshot = current.model_dump()
    try:
        outcome = apply_change(update(*items), current)
    except ChangeError as err:
        assert str(err)
        assert not err.stale
        assert current.model_dump() == snapshot
        return
    assert outcome.flag.version == current.version + 1
    assert (outcome.flag.id, outcome.flag.key, outcome.flag.deleted) == (current.id, KEY, False)
    assert_consistent(outcome.flag)
    assert outcome.intent.before == current.model_dump(mode="json")
    assert outcome.intent.after == outcome.flag.model_dump(mode="json")
    assert outcome.intent.description.count("; ") >= len(items) - 1
    assert current.model_dump() == snapshot


@given(flags(), group_index, percentages)
def test_update_rollout_changes_nothing_but_that_groups_percentage(
    current: Flag, group: int, pct: int
) -> None:
    spec = update({"kind": "updateRollout", "group": group, "percentage": pct})
    if group >= len(current.filters.groups):
        try:
            apply_change(spec, current)
        except ChangeError as err:
            assert f"has no group {group}" in str(err)
            return
        raise AssertionError("a missing group was not refused")
    outcome = apply_change(spec, current)
    expected = current.model_dump()
    expected["filters"]["groups"][group]["rollout_percentage"] = pct
    expected["version"] += 1
    assert outcome.flag.model_dump() == expected
    before = current.filters.groups[group].rollout_percentage
    changed = [] if before == pct else [f"filters.groups[{group}].rollout_percentage"]
    assert [c.field for c in outcome.intent.changes] == changed
    assert field_values(outcome.flag)["rollout_percentages"][group] == pct


@given(flags(), st.integers(min_value=1, max_value=60))
def test_base_version_applies_only_on_an_exact_match(current: Flag, base: int) -> None:
    spec = update({"kind": "turnFlagOn"}, base_version=base)
    if base == current.version:
        assert apply_change(spec, current).flag.version == base + 1
        return
    try:
        apply_change(spec, current)
    except ChangeError as err:
        assert err.stale
        assert str(err) == f"Flag version mismatch: expected {base}, got {current.version}"
        return
    raise AssertionError("a stale base_version applied")


@given(flags(), st.lists(instructions, min_size=1, max_size=3))
def test_intent_changes_are_empty_exactly_when_nothing_but_the_version_changed(
    current: Flag, items: list[dict[str, Any]]
) -> None:
    try:
        outcome = apply_change(update(*items), current)
    except ChangeError:
        return
    same = outcome.flag.model_copy(update={"version": current.version}) == current
    assert same == (outcome.intent.changes == [])
