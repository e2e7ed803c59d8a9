"""Acceptance: PostHog's SDKs in their default configuration (no personal API key) against a
live server. They evaluate every flag remotely (`/flags`), flush events to `/batch/`, and
must see no 404 and log nothing, with the values their own local evaluation computes; a
mistyped project key must be reported by both.

posthog-node comes from npm (`.ci/run` installs it into `.ci/.tools`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from posthog import Posthog

from reconciler.api import ApiSettings, create_app
from reconciler.evaluation import Context, Evaluator
from reconciler.store import Store
from tests.support.apiseed import PROD, at, seed
from tests.support.flagsample import expected_answers, local_sdk, sample_contexts, sample_flags
from tests.support.live import serve
from tests.support.nodesdk import NODE_SCRIPTS, run_node_script

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

NODE_SCRIPT = NODE_SCRIPTS / "posthog_remote.cjs"
KEY = "phc_production_key"
CONTEXTS = sample_contexts(300, seed=56)


class Statuses:
    """ASGI middleware remembering (method, path, status) of every answer."""

    seen: list[tuple[str, str, int]] = []

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                Statuses.seen.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, recording)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, Evaluator, Posthog]]:
    # One backend is enough here: the SDKs see HTTP, and tests/api covers both stores.
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    seed(store)
    with store.transaction() as tx:
        for flag in sample_flags(30, seed=78, first_id=100, cohorts=False):
            tx.put_flag_version(PROD, flag.model_copy(update={"version": 1}), at=at(30))
    with store.reading() as reader:
        flags = [r.flag for r in reader.list_flags(PROD, include_deleted=False)]
    app = create_app(store, settings=ApiSettings())
    app.add_middleware(Statuses)
    Statuses.seen = []
    local = local_sdk(flags, group_types={})  # as /flags/definitions serves it: no group type names
    try:
        with serve(app) as url:
            yield url, Evaluator(flags), local
    finally:
        local.shutdown()
        store.close()


def wire(context: Context) -> dict[str, Any]:
    return {
        "distinct_id": context.distinct_id,
        "person_properties": context.person_properties,
        "groups": context.groups,
        "group_properties": context.group_properties,
    }


def assert_clean_exchange(expected_paths: set[str]) -> None:
    statuses = {status for _, _, status in Statuses.seen}
    assert statuses == {200}, sorted({s for s in Statuses.seen if s[2] != 200})
    assert {path for _, path, _ in Statuses.seen} == expected_paths


def expectations(local: Posthog, evaluator: Evaluator) -> list[dict[str, tuple[bool | str, Any]]]:
    """Per context, each flag's value and (for an enabled flag) payload, as local evaluation has it."""
    answers = [expected_answers(local, evaluator, c) for c in CONTEXTS]
    return [{k: (v, p if v is not False else None) for k, (v, p) in a.items()} for a in answers]


@pytest.mark.slow
def test_posthog_python_by_default_gets_its_local_values_and_logs_nothing(
    live: tuple[str, Evaluator, Posthog],
) -> None:
    url, evaluator, local = live
    expected = expectations(local, evaluator)
    logs = Collect()
    logging.getLogger("posthog").addHandler(logs)
    logging.getLogger("posthog").setLevel(logging.WARNING)
    client = Posthog(KEY, host=url, flush_interval=0.05)
    try:
        got = []
        for context in CONTEXTS:
            flags = client.evaluate_flags(
                context.distinct_id,
                person_properties=context.person_properties,
                groups=context.groups,
                group_properties=context.group_properties,
            )
            # `get_flag` also captures `$feature_flag_called`, flushed to /batch/ like this one.
            client.capture("checked flags", distinct_id=context.distinct_id, flags=flags)
            got.append({k: (flags.get_flag(k), flags.get_flag_payload(k)) for k in flags.keys})
        client.flush()
    finally:
        client.shutdown()
        logging.getLogger("posthog").removeHandler(logs)
    assert [(c, g, e) for c, g, e in zip(CONTEXTS, got, expected, strict=True) if g != e] == []
    assert logs.records == []
    assert_clean_exchange({"/flags/", "/batch/"})


def run_node(url: str, key: str, contexts: list[Context], capture: bool) -> dict[str, Any]:
    request = {"host": url, "key": key, "contexts": [wire(c) for c in contexts], "capture": capture}
    return run_node_script(NODE_SCRIPT, request)


@pytest.mark.slow
def test_posthog_node_by_default_gets_its_local_values_and_reports_nothing(
    live: tuple[str, Evaluator, Posthog],
) -> None:
    url, evaluator, local = live
    expected = expectations(local, evaluator)
    output = run_node(url, KEY, CONTEXTS, capture=True)
    assert output["errors"] == [] and output["logged"] == []
    got = [
        {k: (v, answer["featureFlagPayloads"].get(k)) for k, v in answer["featureFlags"].items()}
        for answer in output["answers"]
    ]
    assert [(c, g, e) for c, g, e in zip(CONTEXTS, got, expected, strict=True) if g != e] == []
    assert_clean_exchange({"/flags/", "/batch/"})


@pytest.mark.slow
def test_a_mistyped_project_key_is_reported_by_both_sdks(live: tuple[str, Evaluator, Posthog]) -> None:
    url, _, _ = live
    output = run_node(url, "phc_mistyped", CONTEXTS[:2], capture=False)
    assert [e["status"] for e in output["errors"]] == [401, 401]
    assert all(a == {"featureFlags": {}, "featureFlagPayloads": {}} for a in output["answers"])

    logs = Collect()
    logging.getLogger("posthog").addHandler(logs)
    client = Posthog("phc_mistyped", host=url, send=False)
    try:
        assert client.evaluate_flags("alice").get_flag("flag-100") is None
    finally:
        client.shutdown()
        logging.getLogger("posthog").removeHandler(logs)
    assert any("401" in r and "invalid" in r for r in logs.records), logs.records
