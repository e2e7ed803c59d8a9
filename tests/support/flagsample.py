"""Random but reproducible flags and callers, for comparing our evaluation with PostHog's SDKs.

`sample_flags` draws flags over every operator and filter type our model allows, rollouts on
and off the hash boundaries, variants with forced overrides, payloads, group flags and
experience continuity; `sample_contexts` draws callers who send some, all or none of the
properties those flags read, in the types real callers send (text, numbers, booleans, null,
lists, dates as text and as timestamps).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from typing import Any

from posthog import Posthog

from reconciler.api.localeval import payload_text
from reconciler.evaluation import Context, Evaluator
from reconciler.model.flags import Flag

GROUP_TYPES = {"0": "company"}  # what the comparison tells both sides
# Two named group types; flags of `sample_group_flags` also use index 2, which has no name.
NAMED_GROUP_TYPES = {"0": "company", "1": "organization"}

_OPERATOR_VALUES: dict[str, list[Any]] = {
    "exact": ["pro", "PRO", ["pro", "team"], "true", True, 42, 4.5, "", [], None],
    "is_not": ["pro", ["free", "team"], "false", 42],
    "icontains": ["@acme", "ACME", "1", ""],
    "not_icontains": ["@acme", "x"],
    "regex": [r"^user-1\d*$", r"@acme\.com$", "[", r"^\d+$", ""],
    "not_regex": [r"^user-1", r"acme", "("],
    "gt": [10, "20", 4.5, "abc"],
    "gte": [18, "0"],
    "lt": [30, "1e2"],
    "lte": [65, -1],
    "is_set": [None],
    "is_not_set": [None],
    "is_date_before": ["2024-01-15", "-30d", "2023-06-01T12:00:00Z", "not a date", "-2m"],
    "is_date_after": ["2022-03-01", "-1y", "2024-02-29 10:00:00 UTC"],
    "is_date_exact": ["2024-01-15T00:00:00Z"],
    "in": [[1, 2]],
    "not_in": [[3]],
}
_KEYS = {
    "exact": ["plan", "beta", "age", "distinct_id"],
    "is_not": ["plan", "beta"],
    "icontains": ["email", "distinct_id", "plan"],
    "not_icontains": ["email"],
    "regex": ["distinct_id", "email", "age"],
    "not_regex": ["distinct_id", "email"],
    "gt": ["age", "score"],
    "gte": ["age"],
    "lt": ["age", "score"],
    "lte": ["age"],
    "is_set": ["email", "plan"],
    "is_not_set": ["email", "beta"],
    "is_date_before": ["signup"],
    "is_date_after": ["signup"],
    "is_date_exact": ["signup"],
    "in": ["plan"],
    "not_in": ["plan"],
}
_PERSON_VALUES: dict[str, list[Any]] = {
    "email": ["ada@acme.com", "grace@ACME.com", "linus@example.org", "", None, 7],
    "plan": ["pro", "Pro", "free", "team", "true", None, ["pro"]],
    "beta": [True, False, "true", "FALSE", "yes", None],
    "age": [17, 18, 42, "42", 4.5, "old", None, 1e2, True],
    "score": [5, 50.5, "7", -3],
    "signup": [
        "2023-01-01",
        "2024-01-15T00:00:00Z",
        "2024-06-30T08:00:00+02:00",
        "yesterday",
        1700000000,
        None,
    ],
}
_ROLLOUTS: list[float | None] = [None, 0, 0.5, 10, 33.3, 50, 99.9, 100, 100]
_SPLITS: list[list[float]] = [[50, 50], [33.33, 33.33, 33.34], [10, 20, 70], [100]]


def _filter(rng: random.Random, cohorts: bool) -> dict[str, Any]:
    kind = rng.random()
    if kind < 0.03 and cohorts:
        return {"key": "42", "type": "cohort", "value": 42, "operator": "in"}
    if kind < 0.06:
        return {"key": "7", "type": "flag", "value": True, "operator": "exact"}
    operator = rng.choice(list(_OPERATOR_VALUES))
    prop: dict[str, Any] = {"key": rng.choice(_KEYS[operator]), "operator": operator}
    if operator not in ("is_set", "is_not_set"):
        prop["value"] = rng.choice(_OPERATOR_VALUES[operator])
    if kind > 0.95:
        prop["type"] = "group"
        prop["group_type_index"] = 0
    return prop


def _filters(rng: random.Random, variants: list[str], cohorts: bool) -> dict[str, Any]:
    groups = []
    for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
        group: dict[str, Any] = {
            "properties": [_filter(rng, cohorts) for _ in range(rng.choice([0, 1, 1, 2, 3]))],
            "rollout_percentage": rng.choice(_ROLLOUTS),
        }
        if variants and rng.random() < 0.25:
            group["variant"] = rng.choice(variants)
        groups.append(group)
    filters: dict[str, Any] = {"groups": groups}
    if variants:
        split = next(s for s in _SPLITS if len(s) == len(variants))
        filters["multivariate"] = {
            "variants": [{"key": k, "rollout_percentage": p} for k, p in zip(variants, split, strict=True)]
        }
    keys = variants or ["true"]
    filters["payloads"] = {k: _payload(rng, k, i) for i, k in enumerate(keys) if rng.random() < 0.7}
    if rng.random() < 0.1:
        filters["aggregation_group_type_index"] = 0
    return filters


def _payload(rng: random.Random, key: str, number: int) -> Any:
    """A payload of every JSON type PostHog allows: the SDKs must read each one as `/flags` does."""
    return rng.choice(
        [{"arm": key, "n": number}, f"plain {key}", "", number, 2.5, [key, number], True, "{not json"]
    )


def sample_flags(count: int, seed: int = 12, first_id: int = 1, *, cohorts: bool = True) -> list[Flag]:
    """`count` flags; with `cohorts`, a few filters name a cohort (which no environment defines,
    so those flags answer an error)."""
    rng = random.Random(seed)
    flags = []
    for number in range(first_id, first_id + count):
        variants = rng.choice([[], [], ["control", "test"], ["a", "b", "c"], ["only"]])
        flags.append(
            Flag.model_validate(
                {
                    "id": number,
                    "key": f"flag-{number}",
                    "active": rng.random() < 0.9,
                    "filters": _filters(rng, variants, cohorts),
                    "ensure_experience_continuity": rng.random() < 0.05,
                    "version": rng.randint(1, 9),
                }
            )
        )
    return flags


def sample_group_flags(count: int, seed: int = 21, first_id: int = 1) -> list[Flag]:
    """`count` group flags over group types 0 and 1 (named in `NAMED_GROUP_TYPES`) and 2 (not
    named), whose filters are group properties of their own type."""
    rng = random.Random(seed)
    flags = []
    for number in range(first_id, first_id + count):
        variants = rng.choice([[], [], ["control", "test"], ["a", "b", "c"]])
        filters = _filters(rng, variants, cohorts=False)
        index = rng.choice([0, 0, 1, 1, 2])
        filters["aggregation_group_type_index"] = index
        for group in filters["groups"]:
            for prop in group["properties"]:
                if prop.get("type", "person") == "person":
                    prop.update(type="group", group_type_index=index)
        flag = {"id": number, "key": f"group-flag-{number}", "active": rng.random() < 0.9, "filters": filters}
        flags.append(Flag.model_validate(flag))
    return flags


def sample_group_contexts(count: int, seed: int = 43) -> list[Context]:
    """Callers in thousands of companies and organizations, sending some, all or none of their
    groups' properties, sometimes a group of a type no environment names, keys as text or numbers."""
    rng = random.Random(seed)
    contexts = []
    for number in range(count):
        groups: dict[str, Any] = {}
        group_properties: dict[str, dict[str, Any]] = {}
        for name in ("company", "organization", "team"):
            if rng.random() < 0.75:
                groups[name] = rng.choice([f"{name}-{rng.randint(1, 5000)}", rng.randint(1, 5000)])
                if rng.random() < 0.85:
                    group_properties[name] = {
                        k: rng.choice(v) for k, v in _PERSON_VALUES.items() if rng.random() < 0.7
                    }
        person = {k: rng.choice(v) for k, v in _PERSON_VALUES.items() if rng.random() < 0.3}
        contexts.append(Context(f"user-{number}", person, groups, group_properties))
    return contexts


def sample_contexts(count: int, seed: int = 34) -> list[Context]:
    rng = random.Random(seed)
    contexts = []
    for number in range(count):
        person = {k: rng.choice(v) for k, v in _PERSON_VALUES.items() if rng.random() < 0.6}
        groups: dict[str, str] = {}
        group_properties: dict[str, dict[str, Any]] = {}
        if rng.random() < 0.5:
            groups["company"] = f"company-{rng.randint(1, 50)}"
            group_properties["company"] = {
                k: rng.choice(v) for k, v in _PERSON_VALUES.items() if rng.random() < 0.5
            }
        contexts.append(Context(f"user-{number}", person, groups, group_properties))
    return contexts


def local_sdk(flags: Iterable[Flag], group_types: dict[str, str] | None = None) -> Posthog:
    """PostHog's Python SDK holding `flags` as `/flags/definitions` serves them, sending nothing;
    `group_types` is the group type mapping it is told (default `GROUP_TYPES`)."""
    logging.getLogger("posthog").setLevel(logging.CRITICAL)  # it warns about every group-less call
    client = Posthog("phc_local", send=False, feature_flags_request_timeout_seconds=1)
    client.feature_flags = [definition(f) for f in flags if not f.deleted]
    client.group_type_mapping = GROUP_TYPES if group_types is None else group_types
    client.cohorts = {}
    return client


def definition(flag: Flag) -> dict[str, Any]:
    """`flag` as `/flags/definitions` lists it: payloads as JSON text, as PostHog serves them."""
    data = flag.model_dump(mode="json")
    data["filters"]["payloads"] = {k: payload_text(v) for k, v in data["filters"]["payloads"].items()}
    return data


def sdk_answer(client: Posthog, key: str, context: Context) -> tuple[bool | str, Any] | None:
    """The SDK's local value and payload, or `None` where it would ask the server."""
    result = client.get_feature_flag_result(
        key,
        context.distinct_id,
        groups=context.groups,
        person_properties=context.person_properties,
        group_properties=context.group_properties,
        only_evaluate_locally=True,
        send_feature_flag_events=False,
    )
    return None if result is None else (result.get_value(), result.payload)


def expected_answers(
    client: Posthog, evaluator: Evaluator, context: Context
) -> dict[str, tuple[bool | str, Any]]:
    """Per flag, what the SDK computes locally, and where it cannot, what our evaluation says
    (held to PostHog's server rules by tests/evaluation)."""
    answers = {}
    for key, result in evaluator.evaluate_all(context).items():
        local = sdk_answer(client, key, context)
        answers[key] = local if local is not None else (result.value, result.payload)
    return answers
