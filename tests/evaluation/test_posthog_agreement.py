"""Our evaluation against the PostHog package's own local evaluation: zero differences.

The posthog package is PostHog's Python SDK. Given the same flag definitions that
`/flags/definitions` serves, its local evaluation and our `Evaluator` must agree on every
value and payload wherever the SDK decides; where it cannot (it would ask the server), our
answer is marked `server_only`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from posthog import Posthog

from reconciler.evaluation import Context, Evaluator, FlagResult
from reconciler.model.flags import Flag
from tests.support.flagsample import GROUP_TYPES, sample_contexts, sample_flags

FLAGS = sample_flags(40)
CONTEXTS = sample_contexts(400)


@pytest.fixture(scope="module")
def sdk() -> Iterator[Posthog]:
    logging.getLogger("posthog").setLevel(logging.CRITICAL)  # it warns about every group-less call
    client = Posthog("phc_local", send=False, feature_flags_request_timeout_seconds=1)
    client.feature_flags = [definition(f) for f in FLAGS]
    client.group_type_mapping = GROUP_TYPES
    client.cohorts = {}
    try:
        yield client
    finally:
        client.shutdown()


def definition(flag: Flag) -> dict[str, Any]:
    return flag.model_dump(mode="json")


def sdk_answer(client: Posthog, key: str, context: Context) -> tuple[bool | str, Any] | None:
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
