"""Every instruction kind becomes LaunchDarkly's semantic patch, naming rules, clauses and
variations by ids that stay the same across a flag's approval requests."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.api.ldpatch import Ids, semantic_patch
from reconciler.model.flags import Flag, FlagFilters, FlagGroup, Multivariate, PropertyFilter, Variant
from tests.support.apiseed import change_request

# LaunchDarkly's semantic-patch kinds for flags (its "Update feature flag" reference).
LAUNCHDARKLY_KINDS = {
    "turnFlagOn",
    "turnFlagOff",
    "addRule",
    "removeRule",
    "replaceRules",
    "updateRuleVariationOrRollout",
    "updateFallthroughVariationOrRollout",
    "addClauses",
    "removeClauses",
    "addVariation",
    "removeVariation",
    "updateVariation",
    "updateName",
    "addTags",
    "removeTags",
    "archiveFlag",
}
IDS = Ids(1, "checkout")
BEFORE = Flag(
    id=1,
    key="checkout",
    filters=FlagFilters(
        groups=[
            FlagGroup(
                properties=[
                    PropertyFilter(key="email", value="a@b.c"),
                    PropertyFilter(key="plan", value="pro"),
                ]
            )
        ],
        multivariate=Multivariate(
            variants=[Variant(key="red", rollout_percentage=50), Variant(key="blue", rollout_percentage=50)]
        ),
    ),
)


def patch(*instructions: dict[str, Any], action: str = "feature_flag.update") -> list[dict[str, Any]]:
    cr = change_request("x", 1, action_key=action, spec={"instructions": list(instructions)})
    return semantic_patch(cr, BEFORE)


@pytest.mark.parametrize(
    ("ours", "kinds"),
    [
        ({"kind": "turnFlagOn"}, ["turnFlagOn"]),
        ({"kind": "turnFlagOff"}, ["turnFlagOff"]),
        ({"kind": "updateRollout", "group": 0, "percentage": 25}, ["updateRuleVariationOrRollout"]),
        ({"kind": "addGroup", "properties": [], "rollout_percentage": 10}, ["addRule"]),
        ({"kind": "removeGroup", "group": 0}, ["removeRule"]),
        (
            {"kind": "updateGroupProperties", "group": 0, "properties": [{"key": "country", "value": "NL"}]},
            ["removeClauses", "addClauses"],
        ),
        (
            {
                "kind": "updateVariants",
                "variants": [
                    {"key": "red", "rollout_percentage": 30},
                    {"key": "green", "rollout_percentage": 70},
                ],
            },
            ["removeVariation", "updateVariation", "addVariation", "updateFallthroughVariationOrRollout"],
        ),
        ({"kind": "updatePayload", "variant": "red", "payload": {"a": 1}}, ["updateVariation"]),
        ({"kind": "updateName", "name": "New"}, ["updateName"]),
        ({"kind": "addTags", "tags": ["a"]}, ["addTags"]),
        ({"kind": "removeTags", "tags": ["a"]}, ["removeTags"]),
        (
            {"kind": "replaceFilters", "filters": {"groups": [{"properties": [], "rollout_percentage": 5}]}},
            ["replaceRules"],
        ),
    ],
)
def test_each_kind_becomes_launchdarkly_kinds(ours: dict[str, Any], kinds: list[str]) -> None:
    out = patch(ours)
    assert [i["kind"] for i in out] == kinds
    assert set(kinds) <= LAUNCHDARKLY_KINDS


def test_rules_clauses_and_variations_keep_their_ids() -> None:
    rollout = patch({"kind": "updateRollout", "group": 0, "percentage": 25})[0]
    assert rollout["ruleId"] == IDS.rule(0) and rollout["rolloutWeights"] == {
        IDS.variation("true"): 25000,
        IDS.variation("false"): 75000,
    }
    removed, added = patch(
        {
            "kind": "updateGroupProperties",
            "group": 0,
            "properties": [{"key": "country", "value": "NL", "operator": "is_not"}],
        }
    )
    assert removed["clauseIds"] == [IDS.clause(0, 0), IDS.clause(0, 1)]  # the two clauses it had
    assert added["clauses"][0] | {"_id": None} == {
        "_id": None,
        "contextKind": "user",
        "attribute": "country",
        "op": "in",
        "values": ["NL"],
        "negate": True,
    }
    assert Ids(2, "checkout").rule(0) != IDS.rule(0) != Ids(1, "other").rule(0)


def test_actions_without_instructions() -> None:
    assert patch(action="feature_flag.enable") == [{"kind": "turnFlagOn"}]
    assert patch(action="feature_flag.disable") == [{"kind": "turnFlagOff"}]
    assert patch(action="feature_flag.delete") == [{"kind": "archiveFlag"}]
    assert patch(action="feature_flag.create") == []


def test_odd_instructions_never_break_the_view() -> None:
    odd: list[dict[str, Any]] = [
        {"kind": "updateRollout", "group": True, "percentage": "x"},
        {"kind": "nope"},
        {"kind": "updateGroupProperties", "group": 99, "properties": [7]},
    ]
    out = patch(*odd)
    assert [i["kind"] for i in out] == ["updateRuleVariationOrRollout", "addClauses"]
    assert out[0]["rolloutWeights"][IDS.variation("true")] == 100000
