"""Acceptance: OpenFeature's OFREP providers against a live server answer what PostHog's own
local evaluation computes, for every flag and every caller tested.

Python: `openfeature-sdk` with `openfeature-provider-ofrep` (test extras). Node:
`@openfeature/server-sdk` with `@openfeature/ofrep-provider`, and `@openfeature/ofrep-core`'s
bulk client as the web provider polls (`.ci/run` installs them into `.ci/.tools`).

Each flag is asked as its type: a boolean flag as a boolean, a multivariate flag as a string.
Where PostHog answers `false` for a multivariate flag (no condition matched), the providers
return the caller's default with `TYPE_MISMATCH`, which is how an OpenFeature application
sees "no variant".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails
from posthog import Posthog

from reconciler.api import ApiSettings, create_app
from reconciler.evaluation import Context, Evaluator
from reconciler.store import Store
from tests.support.apiseed import PROD, at, seed
from tests.support.flagsample import expected_answers, local_sdk, sample_contexts, sample_flags
from tests.support.live import serve
from tests.support.node import run_script

KEY = "phc_production_key"
DEFAULT = "code-default"
# Every flag for each of these callers, one request per flag and caller (what the server
# providers send); the bulk client asks for the first BULK_CALLERS of a larger sample.
CALLERS = 15
BULK_CALLERS = 120
CONTEXTS = sample_contexts(BULK_CALLERS, seed=91)
NODE_PACKAGES = ("@openfeature/server-sdk", "@openfeature/ofrep-provider", "@openfeature/ofrep-core")

Expected = dict[str, tuple[bool | str, Any]]


@pytest.fixture
def live(sqlite_store: Store) -> Iterator[tuple[str, Evaluator, list[Expected]]]:
    """A live server over a seeded store (one backend: the store only hands the evaluator its
    flags, and tests/api runs OFREP over both)."""
    store = sqlite_store
    seed(store)
    with store.transaction() as tx:
        for flag in sample_flags(30, seed=79, first_id=100, cohorts=False):
            tx.put_flag_version(PROD, flag.model_copy(update={"version": 1}), at=at(30))
    with store.reading() as reader:
        flags = [r.flag for r in reader.list_flags(PROD, include_deleted=False)]
    evaluator = Evaluator(flags)
    local: Posthog = local_sdk(flags, group_types={})  # as /flags/definitions serves it
    try:
        expected = [expected_answers(local, evaluator, c) for c in CONTEXTS]
    finally:
        local.shutdown()
    with serve(create_app(store, settings=ApiSettings())) as url:
        yield url, evaluator, expected


def multivariate(evaluator: Evaluator) -> dict[str, bool]:
    flags = {key: evaluator.flag(key) for key in evaluator.keys}
    return {k: f is not None and f.filters.multivariate is not None for k, f in flags.items()}


def attributes(context: Context) -> dict[str, Any]:
    extra = (
        {"$groups": context.groups, "$group_properties": context.group_properties} if context.groups else {}
    )
    return {**context.person_properties, **extra}


def wanted(value: bool | str, payload: Any, is_multivariate: bool) -> dict[str, Any]:
    """What an OpenFeature application reads for PostHog's answer."""
    if is_multivariate and value is False:
        return {"value": DEFAULT, "errorCode": "TYPE_MISMATCH", "payload": None}
    return {"value": value, "errorCode": None, "payload": None if payload is None else json.dumps(payload)}


def seen(details: FlagEvaluationDetails[Any]) -> dict[str, Any]:
    payload = details.flag_metadata.get("payload") if details.error_code is None else None
    return {
        "value": details.value,
        "errorCode": details.error_code.value if details.error_code else None,
        "payload": None if payload is None else json.dumps(json.loads(str(payload))),
    }


def differences(
    got: list[dict[str, dict[str, Any]]], expected: list[Expected], kinds: dict[str, bool]
) -> list[Any]:
    out = []
    for context, answer, posthog in zip(CONTEXTS[:CALLERS], got, expected[:CALLERS], strict=True):
        want = {k: wanted(v, p if v is not False else None, kinds[k]) for k, (v, p) in posthog.items()}
        if answer != want:
            out.append((context, {k: (answer.get(k), w) for k, w in want.items() if answer.get(k) != w}))
    return out


@pytest.mark.slow
def test_the_python_provider_agrees_with_posthog_for_every_caller(
    live: tuple[str, Evaluator, list[Expected]],
) -> None:
    url, evaluator, expected = live
    kinds = multivariate(evaluator)
    assert any(kinds.values()) and not all(kinds.values())  # both kinds are asked
    logs: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: logs.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("openfeature").addHandler(handler)
    api.set_provider(OFREPProvider(url, headers_factory=lambda: {"X-API-Key": KEY}), "ofrep")
    client = api.get_client("ofrep")
    try:
        got = []
        for context in CONTEXTS[:CALLERS]:
            ctx = EvaluationContext(context.distinct_id, attributes(context))
            answer = {}
            for key, is_multivariate in kinds.items():
                details: FlagEvaluationDetails[Any] = (
                    client.get_string_details(key, DEFAULT, ctx)
                    if is_multivariate
                    else client.get_boolean_details(key, False, ctx)
                )
                answer[key] = seen(details)
            got.append(answer)
        api.set_provider(OFREPProvider(url, headers_factory=lambda: {"X-API-Key": "phc_mistyped"}), "wrong")
        refused = api.get_client("wrong").get_boolean_details("checkout", True, EvaluationContext("someone"))
    finally:
        api.clear_providers()
        logging.getLogger("openfeature").removeHandler(handler)
    assert differences(got, expected, kinds) == []
    assert any(v["value"] not in (False, DEFAULT) for a in got for v in a.values())  # not all defaults
    assert (refused.value, refused.error_code) == (True, ErrorCode.GENERAL)
    assert refused.error_message == "unauthorized"
    assert [m for m in logs if "unauthorized" not in m] == []


@pytest.mark.slow
def test_the_node_provider_and_bulk_client_agree_with_posthog_for_every_caller(
    live: tuple[str, Evaluator, list[Expected]],
) -> None:
    url, evaluator, expected = live
    kinds = multivariate(evaluator)
    contexts = [
        {
            "distinct_id": c.distinct_id,
            "person_properties": c.person_properties,
            "groups": c.groups,
            "group_properties": c.group_properties,
        }
        for c in CONTEXTS
    ]
    request = {
        "host": url,
        "key": KEY,
        "contexts": contexts[:CALLERS],
        "bulkContexts": contexts,
        "flags": [{"key": k, "multivariate": m} for k, m in kinds.items()],
    }
    output = run_script("ofrep.cjs", NODE_PACKAGES, request)
    got = [
        {
            k: {
                "value": v["value"],
                "errorCode": v["errorCode"],
                "payload": v["payload"] and json.dumps(json.loads(v["payload"])),
            }
            for k, v in a.items()
        }
        for a in output["answers"]
    ]
    assert differences(got, expected, kinds) == []
    # The bulk answers the same values, and the same context asked again with the ETag is a 304.
    for bulk, posthog in zip(output["bulk"], expected, strict=True):
        assert (bulk["status"], bulk["revalidated"]) == (200, 304)
        answers = {f["key"]: (f["value"], f["metadata"].get("payload")) for f in bulk["flags"]}
        want = {
            k: (v, None if p is None or v is False else json.dumps(p, separators=(",", ":")))
            for k, (v, p) in posthog.items()
        }
        assert {
            k: (v, p and json.dumps(json.loads(p), separators=(",", ":"))) for k, (v, p) in answers.items()
        } == want
    assert output["wrongKey"]["value"] is True and output["wrongKey"]["errorCode"] == "GENERAL"
    assert output["logged"] == []
