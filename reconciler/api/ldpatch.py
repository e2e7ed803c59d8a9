"""A change request's instructions as LaunchDarkly's semantic patch, for its approval requests.

LaunchDarkly names rules, clauses and variations by id where PostHog names release
conditions by position and variants by key. The ids here are derived from what identifies
each (environment, flag key, condition index, clause index, variant key), so every approval
request of a flag names the same rule by the same id. `before` is the flag as the change
found it (None when the store never had it): clauses and variants to remove are read there.

| ours | LaunchDarkly |
|---|---|
| `turnFlagOn`, `turnFlagOff`, `updateName`, `addTags`, `removeTags` | the same kinds (`value`/`values`) |
| `updateRollout` | `updateRuleVariationOrRollout` with `rolloutWeights` (thousandths of a percent) |
| `addGroup`, `removeGroup` | `addRule`, `removeRule` |
| `updateGroupProperties` | `removeClauses` (the condition's old clauses) and `addClauses` |
| `updateVariants` | `removeVariation`, `updateVariation`, `addVariation`, then the split: |
| | `updateFallthroughVariationOrRollout` |
| `updatePayload` | `updateVariation` with the payload as its `value` |
| `replaceFilters` | `replaceRules` |
| `enable`, `disable`, `delete` | `turnFlagOn`, `turnFlagOff`, `archiveFlag` |
| `create`, `copy` | no instruction: a new flag's definition or the copy's `source` stand beside them |
"""

from __future__ import annotations

from typing import Any

from reconciler.model.flags import Flag
from reconciler.store import ChangeRequestRecord, stable_uuid

WEIGHT = 1000  # LaunchDarkly's rollout weights are thousandths of a percent (100% = 100000)
_OPERATORS: dict[str, tuple[str, bool]] = {
    "exact": ("in", False),
    "is_not": ("in", True),
    "icontains": ("contains", False),
    "not_icontains": ("contains", True),
    "regex": ("matches", False),
    "not_regex": ("matches", True),
    "gt": ("greaterThan", False),
    "gte": ("greaterThanOrEqual", False),
    "lt": ("lessThan", False),
    "lte": ("lessThanOrEqual", False),
    "is_set": ("exists", False),
    "is_not_set": ("exists", True),
}
_IMPLIED = {
    "feature_flag.enable": "turnFlagOn",
    "feature_flag.disable": "turnFlagOff",
    "feature_flag.delete": "archiveFlag",
}


class Ids:
    """The ids of one flag's rules, clauses and variations in one environment."""

    def __init__(self, environment_id: int | None, key: str):
        self.scope = f"{environment_id}:{key}"

    def rule(self, group: int) -> str:
        return stable_uuid("launchdarkly-rule", f"{self.scope}:{group}")

    def clause(self, group: int, index: int) -> str:
        return stable_uuid("launchdarkly-clause", f"{self.scope}:{group}:{index}")

    def variation(self, value: str) -> str:
        """A boolean flag's variations are `true` and `false`; a multivariate one's its variant keys."""
        return stable_uuid("launchdarkly-variation", f"{self.scope}:{value}")


def semantic_patch(cr: ChangeRequestRecord, before: Flag | None) -> list[dict[str, Any]]:
    """The change as LaunchDarkly's semantic-patch instructions."""
    ids = Ids(cr.environment_id, cr.resource_id)
    if cr.action_key in _IMPLIED:
        return [{"kind": _IMPLIED[cr.action_key]}]
    given = cr.spec.get("instructions")
    if not isinstance(given, list):
        return []
    return [out for i in given if isinstance(i, dict) for out in _translate(i, ids, before)]


def _translate(i: dict[str, Any], ids: Ids, before: Flag | None) -> list[dict[str, Any]]:
    kind = i.get("kind")
    if kind in ("turnFlagOn", "turnFlagOff"):
        return [{"kind": kind}]
    if kind == "updateName":
        return [{"kind": "updateName", "value": i.get("name")}]
    if kind in ("addTags", "removeTags"):
        return [{"kind": kind, "values": list(i.get("tags") or [])}]
    if kind == "updateRollout":
        return [
            {
                "kind": "updateRuleVariationOrRollout",
                "ruleId": ids.rule(_int(i.get("group"))),
                **_rollout(ids, i.get("percentage")),
            }
        ]
    if kind == "addGroup":
        group = len(before.filters.groups) if before else 0
        return [
            _rule(
                ids,
                group,
                i.get("properties") or [],
                i.get("rollout_percentage"),
                i.get("variant"),
                "addRule",
            )
        ]
    if kind == "removeGroup":
        return [{"kind": "removeRule", "ruleId": ids.rule(_int(i.get("group")))}]
    if kind == "updateGroupProperties":
        return _new_clauses(ids, _int(i.get("group")), i.get("properties") or [], before)
    if kind == "updateVariants":
        return _new_variations(ids, i.get("variants") or [], before)
    if kind == "updatePayload":
        return [
            {
                "kind": "updateVariation",
                "variationId": ids.variation(str(i.get("variant"))),
                "value": i.get("payload"),
            }
        ]
    if kind == "replaceFilters":
        groups = (i.get("filters") or {}).get("groups") or []
        rules = [
            _rule(ids, n, g.get("properties") or [], g.get("rollout_percentage"), g.get("variant"), None)
            for n, g in enumerate(groups)
            if isinstance(g, dict)
        ]
        return [{"kind": "replaceRules", "rules": rules}]
    return []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _rollout(ids: Ids, percentage: Any) -> dict[str, Any]:
    """PostHog's rollout share as weights of the `true` and `false` variations."""
    share = round(float(percentage if isinstance(percentage, int | float) else 100) * WEIGHT)
    return {"rolloutWeights": {ids.variation("true"): share, ids.variation("false"): 100 * WEIGHT - share}}


def _clauses(ids: Ids, group: int, properties: list[Any]) -> list[dict[str, Any]]:
    clauses = []
    for index, p in enumerate(q for q in properties if isinstance(q, dict)):
        op, negate = _OPERATORS.get(str(p.get("operator", "exact")), ("in", False))
        value = p.get("value")
        clauses.append(
            {
                "_id": ids.clause(group, index),
                "contextKind": "user" if p.get("type", "person") == "person" else str(p.get("type")),
                "attribute": p.get("key"),
                "op": op,
                "values": value if isinstance(value, list) else ([] if value is None else [value]),
                "negate": negate,
            }
        )
    return clauses


def _rule(
    ids: Ids, group: int, properties: list[Any], rollout: Any, variant: Any, kind: str | None
) -> dict[str, Any]:
    serve = {"variationId": ids.variation(str(variant))} if variant else _rollout(ids, rollout)
    body = {"_id": ids.rule(group), "clauses": _clauses(ids, group, properties), **serve}
    return {"kind": kind, **body} if kind else body


def _new_clauses(ids: Ids, group: int, properties: list[Any], before: Flag | None) -> list[dict[str, Any]]:
    old = before.filters.groups[group].properties if before and group < len(before.filters.groups) else []
    out: list[dict[str, Any]] = []
    if old:
        out.append(
            {
                "kind": "removeClauses",
                "ruleId": ids.rule(group),
                "clauseIds": [ids.clause(group, n) for n in range(len(old))],
            }
        )
    return [
        *out,
        {"kind": "addClauses", "ruleId": ids.rule(group), "clauses": _clauses(ids, group, properties)},
    ]


def _new_variations(ids: Ids, variants: list[Any], before: Flag | None) -> list[dict[str, Any]]:
    old = (
        {v.key for v in before.filters.multivariate.variants}
        if before and before.filters.multivariate
        else set()
    )
    new = [v for v in variants if isinstance(v, dict) and v.get("key")]
    keys = [str(v["key"]) for v in new]
    out: list[dict[str, Any]] = [
        {"kind": "removeVariation", "variationId": ids.variation(k)} for k in sorted(old - set(keys))
    ]
    for v, key in zip(new, keys, strict=True):
        if key in old:
            out.append(
                {
                    "kind": "updateVariation",
                    "variationId": ids.variation(key),
                    "value": key,
                    "name": v.get("name") or key,
                }
            )
        else:
            out.append({"kind": "addVariation", "value": key, "name": v.get("name") or key})
    weights = {
        ids.variation(k): round(float(v.get("rollout_percentage") or 0) * WEIGHT)
        for v, k in zip(new, keys, strict=True)
    }
    return [*out, {"kind": "updateFallthroughVariationOrRollout", "rolloutWeights": weights}]
