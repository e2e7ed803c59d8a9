"""Which policies govern a change: `match` (environments, flag globs, tags) and `conditions`."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.model.documents import Condition
from reconciler.policy import Subject, governing_policies, rule_holds
from tests.support.policyutil import policy, ramp


def governs(subject: Subject, **spec: Any) -> bool:
    return bool(governing_policies(subject, [policy(**spec)]))


@pytest.mark.parametrize(
    ("environments", "expected"),
    [
        (None, True),
        (["production"], True),
        (["staging", "production"], True),
        (["staging"], False),
        ([], False),
    ],
)
def test_match_environments(environments: list[str] | None, expected: bool) -> None:
    assert governs(ramp(), match={"environments": environments}) is expected


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (["checkout-*"], True),
        (["*-redesign"], True),
        (["checkout-redesig?"], True),
        (["billing-*", "checkout-[rs]*"], True),
        (["Checkout-*"], False),  # globs are case-sensitive, like flag keys
        (["checkout"], False),
        (["billing-*"], False),
    ],
)
def test_match_flag_globs(patterns: list[str], expected: bool) -> None:
    assert governs(ramp(), match={"flags": patterns}) is expected


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (["payments"], ["payments"], True),
        (["payments"], [], True),  # removing the tag does not escape the policy
        ([], ["payments", "ui"], True),  # nor does adding it dodge it
        (["ui"], ["ui", "beta"], False),
        ([], [], False),
    ],
)
def test_match_tags_before_or_after(before: list[str], after: list[str], expected: bool) -> None:
    subject = ramp(tags_before=before, tags_after=after)
    assert governs(subject, match={"tags": ["payments", "billing"]}) is expected


def test_every_match_criterion_must_hold() -> None:
    match = {"environments": ["production"], "flags": ["checkout-*"], "tags": ["payments"]}
    assert governs(ramp(tags_after=["payments"]), match=match)
    assert not governs(ramp(tags_after=["payments"], environment="staging"), match=match)
    assert not governs(ramp(), match=match)


def rule(
    type_: str, op: str | None = None, value: Any = None, field: str = "rollout_percentage"
) -> Condition:
    return Condition.model_validate({"type": type_, "field": field, "operator": op, "value": value})


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [(10, 30, True), (10, 29, False), (50, 30, True), (40, 21, False), (0, 100, True), (30, 30, False)],
)
def test_only_ramps_of_twenty_points_or_more_need_approval(
    before: float, after: float, expected: bool
) -> None:
    ramps_of_20 = {"type": "change_amount", "field": "rollout_percentage", "operator": ">=", "value": 20}
    assert governs(ramp(before, after), conditions=ramps_of_20) is expected


@pytest.mark.parametrize(
    ("op", "value", "after", "expected"),
    [
        (">", 50, 60, True),
        (">", 50, 50, False),
        (">=", 50, 50, True),
        ("<", 5, 1, True),
        ("<=", 5, 6, False),
        ("==", 100, 100, True),
        ("!=", 100, 100, False),
        ("!=", 100, 0, True),
    ],
)
def test_before_after_compares_the_new_value(op: str, value: float, after: float, expected: bool) -> None:
    assert rule_holds(rule("before_after", op, value), ramp(0, after)) is expected


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ({"active": True}, {"active": False}, True),
        ({"active": True}, {"active": True}, False),
        ({}, {"active": True}, True),  # the field appears
        ({"active": False}, {}, True),  # the field disappears
        ({}, {}, False),
    ],
)
def test_any_change_asks_whether_the_field_changed(
    before: dict[str, Any], after: dict[str, Any], expected: bool
) -> None:
    subject = Subject.flag_change(
        "feature_flag.update", environment="production", flag_key="k", before=before, after=after
    )
    assert rule_holds(rule("any_change", field="active"), subject) is expected


def test_a_missing_field_means_the_rule_does_not_select() -> None:
    created = Subject.flag_change(
        "feature_flag.create", environment="production", flag_key="k", after={"rollout_percentage": 100}
    )
    assert not rule_holds(rule("change_amount", ">=", 20), created)  # nothing to subtract from
    assert rule_holds(rule("before_after", ">=", 20), created)
    assert not rule_holds(rule("before_after", ">=", 20, field="variants"), created)


def test_a_rule_that_cannot_be_read_selects_rather_than_letting_the_change_escape() -> None:
    text = Subject.flag_change(
        "feature_flag.update",
        environment="production",
        flag_key="k",
        before={"name": "a"},
        after={"name": "b"},
    )
    assert rule_holds(rule("change_amount", ">=", 20, field="name"), text)
    assert rule_holds(rule("before_after", ">", 20, field="name"), text)
    assert rule_holds(rule("before_after", None, None), ramp(0, 5))


def test_conditions_and_match_combine() -> None:
    spec: dict[str, Any] = {
        "match": {"environments": ["production"]},
        "conditions": {"type": "change_amount", "field": "rollout_percentage", "operator": ">=", "value": 20},
    }
    assert governs(ramp(0, 50), **spec)
    assert not governs(ramp(0, 5), **spec)
    assert not governs(ramp(0, 50, environment="staging"), **spec)


def test_a_policy_listing_actions_governs_each_of_them_and_no_other() -> None:
    listed = policy(action_key=["feature_flag.update", "feature_flag.enable"])
    assert governing_policies(ramp(), [listed]) == [listed]
    enable = Subject.flag_change(
        "feature_flag.enable",
        before={"active": False},
        after={"active": True},
        environment="production",
        flag_key="checkout-redesign",
    )
    assert governing_policies(enable, [listed]) == [listed]
    delete = Subject.flag_change(
        "feature_flag.delete", before={"active": True}, after={}, environment="production", flag_key="x"
    )
    assert governing_policies(delete, [listed]) == []
    meta = Subject.meta_change("approval_policy.change", ["policies/a.yaml"])
    assert governing_policies(meta, [policy(action_key=["feature_flag.update", "approval_policy.change"])])
