"""What only the server decides, reasons, payloads and the hash, flag by flag."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from posthog.feature_flags import _hash as posthog_hash

from reconciler.evaluation import (
    COHORT_NOT_FOUND,
    CONDITION_MATCH,
    FLAG_DISABLED,
    NO_CONDITION_MATCH,
    NO_GROUP_TYPE,
    OUT_OF_ROLLOUT_BOUND,
    Context,
    Evaluator,
    FlagResult,
    bucket,
)
from reconciler.model.flags import Flag

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


def one(
    filters: dict[str, Any], context: Context, *, group_types: dict[str, str] | None = None, **flag: Any
) -> FlagResult:
    definition = {"id": 3, "key": "k", "active": True, "filters": filters, "version": 4, **flag}
    result = Evaluator([Flag.model_validate(definition)], group_types).evaluate("k", context, NOW)
    assert result is not None
    return result


def when(*props: dict[str, Any], rollout: float | None = None) -> dict[str, Any]:
    return {"groups": [{"properties": list(props), "rollout_percentage": rollout}]}


ALICE = Context("alice")


@pytest.mark.parametrize(
    ("operator", "value", "matches"),
    [
        ("exact", "pro", False),
        ("is_not", "pro", True),
        ("icontains", "pro", False),
        ("not_icontains", "pro", True),
        ("regex", "p", False),
        ("not_regex", "p", True),
        ("gt", 1, False),
        ("is_set", None, False),
        ("is_not_set", None, True),
        ("is_date_before", "2030-01-01", False),
        ("in", [1], False),
    ],
)
def test_a_property_not_sent_is_absent_on_the_server(operator: str, value: Any, matches: bool) -> None:
    result = one(when({"key": "plan", "operator": operator, "value": value}), ALICE)
    assert result.server_only and result.enabled is matches and result.error is None
    assert result.reason == (CONDITION_MATCH if matches else NO_CONDITION_MATCH)


def test_a_property_sent_is_decided_locally() -> None:
    result = one(when({"key": "plan", "value": "Pro"}), Context("alice", {"plan": "pro"}))
    assert (result.enabled, result.server_only, result.reason, result.condition_index) == (
        True,
        False,
        CONDITION_MATCH,
        0,
    )
    assert result.description == "Matched condition set 1"


def test_a_later_condition_decides_when_an_earlier_one_cannot() -> None:
    # As the SDKs do: the first condition cannot be decided (plan not sent), the second takes
    # everyone, so the answer is the second's, forced variant included.
    filters = {
        "groups": [
            {"properties": [{"key": "plan", "operator": "is_not", "value": "x"}], "variant": "a"},
            {"properties": [], "variant": "b"},
        ],
        "multivariate": {
            "variants": [{"key": "a", "rollout_percentage": 50}, {"key": "b", "rollout_percentage": 50}]
        },
    }
    result = one(filters, ALICE)
    assert (result.value, result.condition_index, result.server_only) == ("b", 1, False)


def test_dates_the_sdks_leave_to_the_server() -> None:
    exact = when({"key": "signup", "operator": "is_date_exact", "value": "2024-01-15T00:00:00Z"})
    assert one(exact, Context("a", {"signup": "2024-01-15T00:00:00+00:00"})).enabled
    assert not one(exact, Context("a", {"signup": "2024-01-16"})).enabled
    before = when({"key": "signup", "operator": "is_date_before", "value": "2024-01-01"})
    stamp = one(before, Context("a", {"signup": 1_600_000_000}))  # seconds since 1970: 2020
    assert stamp.enabled and stamp.server_only
    assert not one(before, Context("a", {"signup": "soon"})).enabled


def test_relative_dates_count_back_from_now() -> None:
    recent = when({"key": "signup", "operator": "is_date_after", "value": "-30d"})
    assert one(recent, Context("a", {"signup": "2024-05-15"})).enabled
    assert not one(recent, Context("a", {"signup": "2024-04-15"})).enabled


def test_experience_continuity_is_evaluated_on_the_distinct_id() -> None:
    filters = when(rollout=50)
    plain = [one(filters, Context(f"u{i}")).enabled for i in range(200)]
    kept = [one(filters, Context(f"u{i}"), ensure_experience_continuity=True) for i in range(200)]
    assert [r.enabled for r in kept] == plain and all(r.server_only for r in kept)
    assert 60 < sum(plain) < 140


def test_a_cohort_the_environment_does_not_define_is_an_error() -> None:
    result = one(when({"key": "id", "type": "cohort", "value": 9, "operator": "in"}), ALICE)
    assert (result.enabled, result.payload) == (False, None)
    assert result.error is not None and result.error.startswith(COHORT_NOT_FOUND)


def test_group_flags_need_a_named_group_type_and_the_group() -> None:
    filters = {**when(), "aggregation_group_type_index": 0}
    nameless = one(filters, Context("a", groups={"company": "acme"}))
    assert (nameless.enabled, nameless.reason, nameless.server_only) == (False, NO_GROUP_TYPE, True)
    named = {"0": "company"}
    assert one(filters, Context("a", groups={"company": "acme"}), group_types=named).enabled
    missing = one(filters, ALICE, group_types=named)
    assert (missing.enabled, missing.reason, missing.server_only) == (False, NO_GROUP_TYPE, False)


def test_group_flags_bucket_by_the_group_key() -> None:
    filters = {**when(rollout=50), "aggregation_group_type_index": 0}
    named = {"0": "company"}
    for n in range(50):
        people = {
            one(filters, Context(f"p{i}", groups={"company": f"c{n}"}), group_types=named).enabled
            for i in range(5)
        }
        assert len(people) == 1  # everyone in one company gets the same answer


def test_reasons_and_payloads() -> None:
    off = one(when(), ALICE, active=False)
    assert (off.enabled, off.reason, off.server_only) == (False, FLAG_DISABLED, False)
    payloads = {"true": {"banner": "hi"}}
    on = one({**when(), "payloads": payloads}, ALICE)
    assert (on.value, on.payload) == (True, {"banner": "hi"})
    zero = one({**when(rollout=0), "payloads": payloads}, ALICE)
    assert (zero.enabled, zero.reason, zero.payload) == (False, OUT_OF_ROLLOUT_BOUND, None)
    assert zero.description == "Out of rollout bound"
    nothing = one({"groups": []}, ALICE)
    assert (nothing.enabled, nothing.reason) == (False, NO_CONDITION_MATCH)
    variants = {
        "groups": [{"properties": [], "variant": "b"}],
        "multivariate": {
            "variants": [{"key": "a", "rollout_percentage": 50}, {"key": "b", "rollout_percentage": 50}]
        },
        "payloads": {"b": [1, 2]},
    }
    forced = one(variants, ALICE)
    assert (forced.value, forced.variant, forced.payload, forced.flag_id, forced.version) == (
        "b",
        "b",
        [1, 2],
        3,
        4,
    )


def test_the_hash_is_posthogs() -> None:
    for identifier in ["", "alice", "user-12345", "ünïcödé", "a.b"]:
        for salt in ["", "variant"]:
            assert bucket("flag-key", identifier, salt) == posthog_hash("flag-key", identifier, salt)


def test_unknown_flags_and_deleted_flags_are_not_evaluated() -> None:
    evaluator = Evaluator([Flag(id=1, key="gone", deleted=True, active=True), Flag(id=2, key="here")])
    assert evaluator.keys == ("here",)
    assert evaluator.evaluate("gone", ALICE) is None and evaluator.evaluate("nope", ALICE) is None
    assert set(evaluator.evaluate_all(ALICE, only=["here", "gone", "nope", "here"])) == {"here"}
