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
from tests.support.flagsample import GROUP_TYPES, local_sdk, sample_contexts, sample_flags, sdk_answer

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
