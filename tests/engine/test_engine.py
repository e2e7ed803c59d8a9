"""The change engine: every action and instruction, every refusal, and the intent it reports."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.engine import FieldChange, Outcome, apply_change, copy_aspects, field_values
from reconciler.errors import ChangeError
from reconciler.model.documents import ChangeRequestSpec
from reconciler.model.flags import Flag

KEY = "checkout-redesign"


def make_flag(**fields: Any) -> Flag:
    data: dict[str, Any] = {
        "id": 7,
        "key": KEY,
        "name": "New checkout",
        "active": True,
        "filters": {"groups": [{"properties": [], "rollout_percentage": 10}]},
        "tags": ["payments"],
        "version": 3,
    }
    data.update(fields)
    return Flag.model_validate(data)


def multivariate_flag(**fields: Any) -> Flag:
    filters = {
        "groups": [
            {"properties": [{"key": "email", "value": "@example.com", "operator": "icontains"}]},
            {"rollout_percentage": 50, "variant": "test"},
        ],
        "multivariate": {
            "variants": [
                {"key": "control", "rollout_percentage": 50},
                {"key": "test", "rollout_percentage": 50},
            ]
        },
        "payloads": {"control": {"color": "blue"}, "test": {"color": "green"}},
    }
    return make_flag(filters=filters, **fields)


def change(action: str = "update", *instructions: dict[str, Any], **fields: Any) -> ChangeRequestSpec:
    data: dict[str, Any] = {
        "action_key": f"feature_flag.{action}",
        "resource_id": KEY,
        "environment": "production",
        "instructions": list(instructions),
    }
    data.update(fields)
    return ChangeRequestSpec.model_validate(data)


def refusal(spec: ChangeRequestSpec, current: Flag | None, **kwargs: Any) -> ChangeError:
    with pytest.raises(ChangeError) as info:
        apply_change(spec, current, **kwargs)
    return info.value


# --- create -----------------------------------------------------------------------------------


def test_create_makes_version_one_with_the_given_id_and_reports_every_field() -> None:
    spec = change("create", flag={"name": "New checkout", "active": True, "tags": ["payments"]})
    outcome = apply_change(spec, None, new_id=42)
    assert outcome.flag == Flag(
        id=42, key=KEY, name="New checkout", active=True, tags=["payments"], version=1
    )
    intent = outcome.intent
    assert intent.description == f"Create feature flag '{KEY}'"
    assert intent.before is None
    assert intent.after == outcome.flag.model_dump(mode="json")
    fields = {c.field: (c.before, c.after) for c in intent.changes}
    assert fields["key"] == (None, KEY)
    assert fields["active"] == (None, True)
    assert fields["tags"] == (None, ["payments"])
    assert "id" not in fields and "version" not in fields


def test_create_refuses_a_flag_key_other_than_the_resource_id() -> None:
    err = refusal(change("create", flag={"key": "other-flag"}), None, new_id=1)
    assert "'other-flag'" in str(err) and f"'{KEY}'" in str(err)


def test_create_refuses_a_flag_that_already_exists() -> None:
    err = refusal(change("create", flag={"name": "x"}), make_flag())
    assert str(err) == (
        f"feature flag '{KEY}' already exists in environment 'production' (id 7, version 3): "
        "change it with feature_flag.update"
    )
    assert not err.stale


def test_create_over_a_deleted_flag_revives_it_under_the_same_id_and_continues_its_history() -> None:
    deleted = make_flag(deleted=True, version=5)
    outcome = apply_change(change("create", flag={"name": "Second life"}), deleted, new_id=99)
    assert outcome.flag.id == 7
    assert outcome.flag.version == 6
    assert outcome.flag.deleted is False
    assert outcome.flag.name == "Second life"
    assert outcome.flag.filters.groups == []
    assert outcome.intent.description == f"Re-create feature flag '{KEY}'"
    assert FieldChange("deleted", True, False) in outcome.intent.changes


def test_create_of_a_never_existing_flag_needs_an_id() -> None:
    with pytest.raises(ValueError, match="new_id"):
        apply_change(change("create", flag={}), None)


def test_create_refuses_variants_that_do_not_sum_to_100() -> None:
    flag = {"filters": {"multivariate": {"variants": [{"key": "a", "rollout_percentage": 40}]}}}
    err = refusal(change("create", flag=flag), None, new_id=1)
    assert str(err) == f"the variants of feature flag '{KEY}' sum to 40%, not 100%: a 40%"


# --- existence, deletion, staleness, action fit -----------------------------------------------


@pytest.mark.parametrize("action", ["update", "enable", "disable", "delete"])
def test_changing_a_missing_flag_is_refused(action: str) -> None:
    instructions = [{"kind": "turnFlagOn"}] if action == "update" else []
    err = refusal(change(action, *instructions), None)
    assert str(err) == (
        f"feature flag '{KEY}' does not exist in environment 'production':"
        " create it with feature_flag.create first"
    )


@pytest.mark.parametrize("action", ["update", "enable", "disable", "delete"])
def test_changing_a_deleted_flag_is_refused(action: str) -> None:
    instructions = [{"kind": "updateName", "name": "x"}] if action == "update" else []
    err = refusal(change(action, *instructions), make_flag(deleted=True, version=4))
    assert "is deleted (version 4)" in str(err)
    assert "feature_flag.create" in str(err)


def test_matching_base_version_applies() -> None:
    outcome = apply_change(change("disable", base_version=3), make_flag())
    assert outcome.flag.active is False
    assert outcome.flag.version == 4


def test_base_version_mismatch_is_stale_in_posthog_words() -> None:
    err = refusal(
        change("update", {"kind": "updateRollout", "group": 0, "percentage": 60}, base_version=2), make_flag()
    )
    assert str(err) == "Flag version mismatch: expected 2, got 3"
    assert err.stale is True


def test_base_version_of_a_flag_that_does_not_exist_is_stale() -> None:
    err = refusal(change("create", flag={}, base_version=1), None, new_id=1)
    assert err.stale is True
    assert str(err).startswith("Flag version mismatch: expected 1, got none")


def test_missing_flag_is_reported_before_staleness() -> None:
    err = refusal(change("enable", base_version=2), None)
    assert "does not exist" in str(err)
    assert not err.stale


def test_an_action_that_does_not_fit_its_instructions_is_refused() -> None:
    spec = change("enable", {"kind": "updateRollout", "group": 0, "percentage": 100})
    err = refusal(spec, make_flag())
    assert "feature_flag.enable may only contain turnFlagOn" in str(err)


def test_a_flag_for_another_key_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="other"):
        apply_change(change("enable"), make_flag(key="other"))


# --- enable, disable, delete ------------------------------------------------------------------


def test_enable_turns_the_flag_on() -> None:
    outcome = apply_change(change("enable"), make_flag(active=False))
    assert outcome.flag == make_flag(active=True, version=4)
    assert outcome.intent.description == f"Enable feature flag '{KEY}'"
    assert outcome.intent.changes == [FieldChange("active", False, True)]


def test_enable_may_spell_out_turn_flag_on() -> None:
    outcome = apply_change(change("enable", {"kind": "turnFlagOn"}), make_flag(active=False))
    assert outcome.flag.active is True


def test_enabling_an_enabled_flag_still_counts_as_a_version() -> None:
    outcome = apply_change(change("enable"), make_flag(active=True))
    assert outcome.flag.version == 4
    assert outcome.intent.changes == []


def test_disable_turns_the_flag_off() -> None:
    outcome = apply_change(change("disable"), make_flag())
    assert outcome.flag == make_flag(active=False, version=4)
    assert outcome.intent.description == f"Disable feature flag '{KEY}'"


def test_delete_is_soft_and_keeps_the_definition() -> None:
    current = multivariate_flag()
    outcome = apply_change(change("delete"), current)
    assert outcome.flag == current.model_copy(update={"deleted": True, "version": 4})
    assert outcome.intent.changes == [FieldChange("deleted", False, True)]
    assert outcome.intent.description == f"Delete feature flag '{KEY}'"


# --- copy -------------------------------------------------------------------------------------


def copy_change(**fields: Any) -> ChangeRequestSpec:
    return change("copy", source_environment="staging", **fields)


def test_copy_into_a_missing_flag_creates_it_with_every_aspect() -> None:
    source = multivariate_flag(id=3, version=9, tags=["beta"], ensure_experience_continuity=True)
    outcome = apply_change(copy_change(), None, source=source, new_id=50)
    expected = source.model_copy(update={"id": 50, "version": 1})
    assert outcome.flag == expected
    assert outcome.intent.description == (
        f"Copy feature flag '{KEY}' from environment 'staging': active, groups, variants, payloads, tags"
    )


def test_copy_with_included_actions_leaves_everything_else_as_it_was() -> None:
    target = make_flag(active=False, tags=["prod"], name="Prod name")
    source = make_flag(
        id=3,
        active=True,
        tags=["beta"],
        filters={"groups": [{"rollout_percentage": 80}, {"rollout_percentage": 5}]},
    )
    outcome = apply_change(copy_change(included_actions=["groups"]), target, source=source)
    assert outcome.flag == target.model_copy(update={"filters": source.filters, "version": 4})


def test_copy_with_excluded_actions_copies_the_rest() -> None:
    target = make_flag(active=False, tags=["prod"])
    source = make_flag(id=3, active=True, tags=["beta"], filters={"groups": [{"rollout_percentage": 80}]})
    outcome = apply_change(copy_change(excluded_actions=["tags"]), target, source=source)
    assert outcome.flag.active is True
    assert outcome.flag.tags == ["prod"]
    assert outcome.flag.filters == source.filters
    assert copy_aspects(copy_change(excluded_actions=["tags"])) == [
        "active",
        "groups",
        "variants",
        "payloads",
    ]


def test_copy_into_a_deleted_flag_revives_it() -> None:
    target = make_flag(deleted=True, version=8)
    outcome = apply_change(copy_change(included_actions=["active"]), target, source=make_flag(id=3))
    assert (outcome.flag.id, outcome.flag.version, outcome.flag.deleted, outcome.flag.active) == (
        7,
        9,
        False,
        True,
    )


@pytest.mark.parametrize(
    ("source", "state"), [(None, "does not exist"), (make_flag(deleted=True), "is deleted")]
)
def test_copy_needs_a_live_source_flag(source: Flag | None, state: str) -> None:
    err = refusal(copy_change(), make_flag(), source=source)
    assert str(err) == f"feature flag '{KEY}' {state} in source environment 'staging': nothing to copy"


def test_copy_refuses_groups_that_force_variants_the_target_lacks() -> None:
    err = refusal(copy_change(included_actions=["groups"]), make_flag(), source=multivariate_flag(id=3))
    assert str(err) == (
        f"group 1 of feature flag '{KEY}' forces variant 'test', which does not exist: it has no variants"
    )


def test_copy_of_no_aspect_is_refused() -> None:
    err = refusal(copy_change(included_actions=[]), make_flag(), source=make_flag(id=3))
    assert "selects no aspects" in str(err)


# --- instructions -----------------------------------------------------------------------------


def update(current: Flag, *instructions: dict[str, Any]) -> Outcome:
    return apply_change(change("update", *instructions), current)


def test_update_rollout_describes_the_ramp_like_posthog() -> None:
    outcome = update(make_flag(), {"kind": "updateRollout", "group": 0, "percentage": 60})
    assert outcome.flag.filters.groups[0].rollout_percentage == 60
    assert outcome.intent.description == f"Update rollout percentage for feature flag '{KEY}': 10% -> 60%"
    assert outcome.intent.changes == [FieldChange("filters.groups[0].rollout_percentage", 10, 60)]


def test_update_rollout_names_the_group_when_there_are_several() -> None:
    outcome = update(multivariate_flag(), {"kind": "updateRollout", "group": 0, "percentage": 25.5})
    assert outcome.intent.description == (
        f"Update rollout percentage for feature flag '{KEY}' (group 0): 100% -> 25.5%"
    )


@pytest.mark.parametrize("kind", ["updateRollout", "removeGroup", "updateGroupProperties"])
def test_a_missing_group_index_is_refused(kind: str) -> None:
    instruction: dict[str, Any] = {"kind": kind, "group": 2}
    if kind == "updateRollout":
        instruction["percentage"] = 50
    if kind == "updateGroupProperties":
        instruction["properties"] = []
    err = refusal(change("update", instruction), multivariate_flag())
    assert str(err) == f"feature flag '{KEY}' has no group 2: its groups are 0-1"


def test_a_group_index_on_a_flag_without_groups_is_refused() -> None:
    err = refusal(change("update", {"kind": "removeGroup", "group": 0}), make_flag(filters={}))
    assert str(err) == f"feature flag '{KEY}' has no group 0: it has no groups"


def test_add_group_appends_a_release_condition() -> None:
    props = [{"key": "$geoip_country_code", "value": ["DE", "FR"], "operator": "exact"}]
    outcome = update(make_flag(), {"kind": "addGroup", "properties": props, "rollout_percentage": 5})
    groups = outcome.flag.filters.groups
    assert len(groups) == 2
    assert groups[1].rollout_percentage == 5
    assert groups[1].properties[0].key == "$geoip_country_code"
    assert outcome.intent.description == f"Add group 1 to feature flag '{KEY}' (1 property, 5% rollout)"
    assert [c.field for c in outcome.intent.changes] == ["filters.groups"]


def test_add_group_forcing_an_unknown_variant_is_refused() -> None:
    err = refusal(change("update", {"kind": "addGroup", "variant": "blue"}), multivariate_flag())
    assert str(err) == (
        f"group 2 of feature flag '{KEY}' forces variant 'blue', which does not exist:"
        " its variants are control, test"
    )


def test_remove_group_shifts_the_later_groups_up() -> None:
    current = multivariate_flag()
    outcome = update(current, {"kind": "removeGroup", "group": 0})
    assert outcome.flag.filters.groups == [current.filters.groups[1]]
    assert (
        outcome.intent.description == f"Remove group 0 from feature flag '{KEY}' (1 property, 100% rollout)"
    )


def test_update_group_properties_replaces_only_that_groups_conditions() -> None:
    current = multivariate_flag()
    props = [{"key": "plan", "value": "pro"}]
    outcome = update(current, {"kind": "updateGroupProperties", "group": 1, "properties": props})
    assert outcome.flag.filters.groups[0] == current.filters.groups[0]
    assert outcome.flag.filters.groups[1].properties[0].value == "pro"
    assert outcome.flag.filters.groups[1].rollout_percentage == 50
    assert outcome.intent.description == (
        f"Update properties of group 1 for feature flag '{KEY}': everyone -> 1 property"
    )


def test_update_variants_replaces_the_variants() -> None:
    variants = [
        {"key": "control", "rollout_percentage": 34},
        {"key": "test", "name": "Green button", "rollout_percentage": 66},
    ]
    outcome = update(multivariate_flag(), {"kind": "updateVariants", "variants": variants})
    assert outcome.flag.filters.multivariate is not None
    assert [v.rollout_percentage for v in outcome.flag.filters.multivariate.variants] == [34, 66]
    assert outcome.intent.description == (
        f"Update variants for feature flag '{KEY}': control 50%, test 50% -> control 34%, test 66%"
    )
    assert (
        FieldChange("filters.multivariate.variants[1].name", None, "Green button") in outcome.intent.changes
    )


def test_variants_not_summing_to_100_are_refused() -> None:
    variants = [{"key": "control", "rollout_percentage": 50}, {"key": "test", "rollout_percentage": 40}]
    err = refusal(change("update", {"kind": "updateVariants", "variants": variants}), multivariate_flag())
    assert str(err) == f"the variants of feature flag '{KEY}' sum to 90%, not 100%: control 50%, test 40%"


def test_duplicate_variant_keys_are_refused() -> None:
    variants = [{"key": "a", "rollout_percentage": 50}, {"key": "a", "rollout_percentage": 50}]
    err = refusal(change("update", {"kind": "updateVariants", "variants": variants}), make_flag())
    assert "lists variant a more than once" in str(err)


def test_removing_a_variant_a_group_forces_is_refused() -> None:
    variants = [{"key": "control", "rollout_percentage": 100}]
    current = make_flag(filters={**multivariate_flag().filters.model_dump(), "payloads": {}})
    err = refusal(change("update", {"kind": "updateVariants", "variants": variants}), current)
    assert "forces variant 'test', which does not exist: its variants are control" in str(err)


def test_removing_a_variant_that_still_has_a_payload_is_refused_with_the_way_out() -> None:
    current = multivariate_flag()
    filters = current.filters.model_dump()
    filters["groups"][1]["variant"] = None
    variants = [{"key": "control", "rollout_percentage": 100}]
    instruction = {"kind": "updateVariants", "variants": variants}
    err = refusal(change("update", instruction), make_flag(filters=filters))
    assert "payloads for 'test', which are not variants" in str(err)
    # Removing the payload first, in the same change, makes it apply.
    outcome = update(make_flag(filters=filters), {"kind": "updatePayload", "variant": "test"}, instruction)
    assert outcome.flag.filters.payloads == {"control": {"color": "blue"}}


def test_update_payload_sets_and_removes_a_variants_payload() -> None:
    outcome = update(multivariate_flag(), {"kind": "updatePayload", "variant": "test", "payload": [1, 2]})
    assert outcome.flag.filters.payloads["test"] == [1, 2]
    assert outcome.intent.changes == [FieldChange("filters.payloads.test", {"color": "green"}, [1, 2])]
    assert outcome.intent.description == f"Update payload of variant 'test' for feature flag '{KEY}'"
    removed = update(multivariate_flag(), {"kind": "updatePayload", "variant": "control", "payload": None})
    assert "control" not in removed.flag.filters.payloads
    assert removed.intent.description.startswith("Remove payload of variant 'control'")


def test_update_payload_of_an_unknown_variant_is_refused() -> None:
    err = refusal(
        change("update", {"kind": "updatePayload", "variant": "blue", "payload": 1}), multivariate_flag()
    )
    assert str(err) == f"feature flag '{KEY}' has no variant 'blue': its variants are control, test"


def test_a_boolean_flag_has_only_the_true_payload() -> None:
    outcome = update(make_flag(), {"kind": "updatePayload", "variant": "true", "payload": {"x": 1}})
    assert outcome.flag.filters.payloads == {"true": {"x": 1}}
    err = refusal(change("update", {"kind": "updatePayload", "variant": "on", "payload": 1}), make_flag())
    assert "its only payload is 'true', not 'on'" in str(err)


def test_update_name() -> None:
    outcome = update(make_flag(), {"kind": "updateName", "name": "Checkout v2"})
    assert outcome.flag.name == "Checkout v2"
    assert (
        outcome.intent.description == f"Update name for feature flag '{KEY}': 'New checkout' -> 'Checkout v2'"
    )


def test_tags_behave_as_a_set() -> None:
    added = update(make_flag(), {"kind": "addTags", "tags": ["payments", "q3"]})
    assert added.flag.tags == ["payments", "q3"]
    assert added.intent.changes == [FieldChange("tags", ["payments"], ["payments", "q3"])]
    removed = update(added.flag, {"kind": "removeTags", "tags": ["payments", "absent"]})
    assert removed.flag.tags == ["q3"]
    assert removed.intent.description == f"Remove tags from feature flag '{KEY}': payments, absent"


def test_replace_filters_swaps_the_whole_object() -> None:
    new = multivariate_flag().filters
    outcome = update(make_flag(), {"kind": "replaceFilters", "filters": new.model_dump()})
    assert outcome.flag.filters == new
    assert outcome.intent.description.startswith(f"Replace filters for feature flag '{KEY}': 2 group(s)")


def test_replace_filters_with_inconsistent_filters_is_refused() -> None:
    filters = {"groups": [{"variant": "x"}]}
    err = refusal(change("update", {"kind": "replaceFilters", "filters": filters}), make_flag())
    assert "forces variant 'x'" in str(err)


def test_turn_flag_on_and_off_within_an_update() -> None:
    on = update(make_flag(active=False), {"kind": "turnFlagOn"})
    assert on.flag.active is True
    off = update(on.flag, {"kind": "turnFlagOff"})
    assert (off.flag.active, off.flag.version) == (False, 5)


def test_several_instructions_apply_in_order_and_are_described_together() -> None:
    outcome = update(
        make_flag(active=False),
        {"kind": "turnFlagOn"},
        {"kind": "updateRollout", "group": 0, "percentage": 20},
        {"kind": "addTags", "tags": ["ramp"]},
    )
    assert outcome.flag.version == 4  # one change, one version, however many instructions
    assert outcome.intent.description == (
        f"Enable feature flag '{KEY}'; Update rollout percentage for feature flag '{KEY}': 10% -> 20%; "
        f"Add tags to feature flag '{KEY}': ramp"
    )
    assert [c.field for c in outcome.intent.changes] == [
        "active",
        "filters.groups[0].rollout_percentage",
        "tags",
    ]


def test_a_refused_instruction_refuses_the_whole_change() -> None:
    current = make_flag()
    err = refusal(
        change("update", {"kind": "turnFlagOff"}, {"kind": "removeGroup", "group": 5}),
        current,
    )
    assert "no group 5" in str(err)
    assert current == make_flag()


# --- intent and comparable values -------------------------------------------------------------


def test_intent_display_has_posthogs_shape() -> None:
    display = update(make_flag(), {"kind": "updateRollout", "group": 0, "percentage": 60}).intent.as_display()
    assert set(display) == {"description", "before", "after", "changes"}
    assert display["before"]["filters"]["groups"][0]["rollout_percentage"] == 10
    assert display["after"]["filters"]["groups"][0]["rollout_percentage"] == 60
    assert display["after"]["version"] == 4
    assert display["changes"] == [
        {"field": "filters.groups[0].rollout_percentage", "before": 10, "after": 60}
    ]


def test_field_values_of_an_absent_flag_serve_nobody() -> None:
    values = field_values(None)
    assert values["exists"] is False
    assert values["active"] is False
    assert values["rollout_percentage"] == 0
    assert values["effective_rollout_percentage"] == 0


def test_field_values_take_the_widest_group_and_count_a_missing_percentage_as_100() -> None:
    values = field_values(multivariate_flag())
    assert values["rollout_percentages"] == [100, 50]
    assert values["rollout_percentage"] == 100
    assert values["variants"] == {"control": 50, "test": 50}
    assert values["group_count"] == 2


def test_field_values_of_an_inactive_or_deleted_flag_have_no_effective_rollout() -> None:
    assert field_values(make_flag(active=False))["rollout_percentage"] == 10
    assert field_values(make_flag(active=False))["effective_rollout_percentage"] == 0
    deleted = field_values(make_flag(deleted=True))
    assert (deleted["exists"], deleted["effective_rollout_percentage"]) == (False, 0)
    assert field_values(make_flag())["effective_rollout_percentage"] == 10
