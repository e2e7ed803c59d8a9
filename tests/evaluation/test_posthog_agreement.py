"""Our evaluation against the PostHog package's own local evaluation: zero differences.

The posthog package is PostHog's Python SDK. Given the same flag definitions that
`/flags/definitions` serves, its local evaluation and our `Evaluator` must agree on every
value and payload wherever the SDK decides; where it cannot (it would ask the server), our
answer is marked `server_only`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from posthog import Posthog

from reconciler.evaluation import Evaluator, FlagResult
from tests.support.flagsample import (
    GROUP_TYPES,
    NAMED_GROUP_TYPES,
    local_sdk,
    sample_contexts,
    sample_flags,
    sample_group_contexts,
    sample_group_flags,
    sdk_answer,
)

FLAGS = sample_flags(40)
CONTEXTS = sample_contexts(400)


@pytest.fixture(scope="module")
def sdk() -> Iterator[Posthog]:
    client = local_sdk(FLAGS)
    try:
        yield client
    finally:
        client.shutdown()


def test_every_value_and_payload_the_sdk_decides_is_ours(sdk: Posthog) -> None:
    evaluator = Evaluator(FLAGS, GROUP_TYPES)
    differences: list[str] = []
    decided = undecided = 0
    for context in CONTEXTS:
        ours = evaluator.evaluate_all(context)
        for flag in FLAGS:
            theirs = sdk_answer(sdk, flag.key, context)
            mine: FlagResult = ours[flag.key]
            if theirs is None:
                undecided += 1
                if not mine.server_only:
                    differences.append(f"{flag.key} {context}: the SDK cannot decide, we call it local")
                continue
            decided += 1
            if mine.server_only or (mine.value, mine.payload) != theirs:
                differences.append(f"{flag.key} {context}: SDK {theirs}, ours {mine}")
    assert differences == []
    assert decided + undecided == len(FLAGS) * len(CONTEXTS) == 16_000
    # The sample exercises both sides and every outcome, or it proves little.
    assert decided > 10_000 and undecided > 1_000
    values = {r.value for c in CONTEXTS[:50] for r in evaluator.evaluate_all(c).values()}
    assert {True, False, "control", "test", "a", "b", "c", "only"} <= values


def test_group_flags_agree_for_thousands_of_groups() -> None:
    flags = sample_group_flags(30)
    contexts = sample_group_contexts(1000)
    client = local_sdk(flags, NAMED_GROUP_TYPES)
    evaluator = Evaluator(flags, NAMED_GROUP_TYPES)
    differences: list[str] = []
    decided: dict[bool | str, int] = {}
    try:
        for context in contexts:
            ours = evaluator.evaluate_all(context)
            for flag in flags:
                theirs, mine = sdk_answer(client, flag.key, context), ours[flag.key]
                if theirs is None:
                    if not mine.server_only:
                        differences.append(f"{flag.key} {context}: the SDK cannot decide, we call it local")
                    continue
                decided[theirs[0]] = decided.get(theirs[0], 0) + 1
                if mine.server_only or (mine.value, mine.payload) != theirs:
                    differences.append(f"{flag.key} {context}: SDK {theirs}, ours {mine}")
    finally:
        client.shutdown()
    assert differences == []
    # Groups of both named types match, and variants are picked per group.
    assert (
        decided[True] > 1000 and decided[False] > 1000 and {"control", "test", "a", "b", "c"} <= set(decided)
    )
    # A flag on a type with no name never matches: the SDK asks the server, which says no.
    unnamed = [f.key for f in flags if f.filters.aggregation_group_type_index == 2]
    assert unnamed
    for context in contexts[:100]:
        results = evaluator.evaluate_all(context, only=unnamed)
        assert all(r.value is False and r.reason == "no_group_type" for r in results.values())
