"""Group types: `/flags/definitions` serves the environment's `group_type_mapping`, `/flags`
evaluates group flags with the request's `groups` and `group_properties`, both rebuild when
the group types change even if no flag did, and nothing a caller sends about groups breaks
an answer or leaks another environment's names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from reconciler.api import ApiSettings, create_app
from reconciler.api.sdkbody import MAX_VALUES
from reconciler.evaluation import Context, Evaluator
from reconciler.model.flags import Flag
from reconciler.store import EnvironmentRecord, Store
from tests.support.apiclient import Client
from tests.support.apiseed import ENVIRONMENTS, PROD, Tokens, at

KEY = "phc_production_key"
COMPANIES = {"0": "company", "1": "organization"}


def group_flag(flag_id: int, key: str, index: int, payload: Any = None, **condition: Any) -> Flag:
    filters: dict[str, Any] = {"aggregation_group_type_index": index, "groups": [condition]}
    if payload is not None:
        filters["payloads"] = {"true": payload}
    return Flag.model_validate({"id": flag_id, "key": key, "active": True, "filters": filters})


ENTERPRISE = group_flag(
    20,
    "enterprise",
    0,
    payload="plain text",
    properties=[{"key": "plan", "value": "enterprise", "type": "group", "group_type_index": 0}],
)
HALF = group_flag(21, "half-of-organizations", 1, rollout_percentage=50)
UNNAMED = group_flag(22, "teams", 2)


def name_group_types(store: Store, production: dict[str, str], staging: dict[str, str] | None = None) -> None:
    """What a pass writes when an approved reconciler.yaml names group types."""
    types = {PROD: production}
    with store.transaction() as tx:
        tx.replace_environments(
            [
                EnvironmentRecord(e.id, e.key, e.name, e.api_token, types.get(e.id, staging or {}))
                for e in ENVIRONMENTS
            ]
        )


@pytest.fixture
def served(fresh_store: tuple[Store, Tokens]) -> Iterator[tuple[Store, Tokens, FastAPI, Client]]:
    store, tokens = fresh_store
    with store.transaction() as tx:
        for flag in (ENTERPRISE, HALF, UNNAMED):
            tx.put_flag_version(PROD, flag, at=at(40))
    name_group_types(store, COMPANIES, staging={"0": "staging-only-type"})
    app = create_app(store, settings=ApiSettings(version_check_seconds=0))
    client = Client(app, tokens.flags)
    yield store, tokens, app, client
    client.close()


def ask(client: Client, **body: Any) -> dict[str, Any]:
    response = client.post("/flags/?v=4", json={"token": KEY, "distinct_id": "user-1", **body}, token=None)
    assert response.status_code == 200, response.text
    flags: dict[str, Any] = response.json()["flags"]
    return flags


def definitions(client: Client, **headers: str) -> httpx.Response:
    return client.get("/flags/definitions", params={"token": KEY}, headers=headers)


def test_definitions_name_the_group_types_and_carry_payloads_as_json_text(served: Any) -> None:
    _, _, _, client = served
    body = definitions(client).json()
    assert body["group_type_mapping"] == COMPANIES  # production's, never staging's
    by_key = {f["key"]: f for f in body["flags"]}
    assert by_key["enterprise"]["filters"]["payloads"] == {"true": '"plain text"'}
    assert by_key["enterprise"]["filters"]["aggregation_group_type_index"] == 0


def test_flags_evaluate_group_flags_with_the_request_groups(served: Any) -> None:
    _, _, _, client = served
    acme = {"groups": {"company": "acme"}, "group_properties": {"company": {"plan": "enterprise"}}}
    flags = ask(client, **acme)
    assert flags["enterprise"]["enabled"] is True
    assert flags["enterprise"]["metadata"]["payload"] == '"plain text"'
    small = ask(client, groups={"company": "tiny"}, group_properties={"company": {"plan": "free"}})
    assert small["enterprise"]["reason"]["code"] == "no_condition_match"
    assert ask(client)["enterprise"]["reason"]["code"] == "no_group_type"  # no company sent
    # A rollout by group: every member of one organization gets the same answer, and it is
    # PostHog's hash of the organization's key, not of the person.
    evaluator = Evaluator([HALF], COMPANIES)
    for org in (f"org-{i}" for i in range(200)):
        answers = {
            ask(
                client, distinct_id=user, groups={"organization": org}, group_properties={"organization": {}}
            )["half-of-organizations"]["enabled"]
            for user in ("ada", "grace")
        }
        expected = evaluator.evaluate("half-of-organizations", Context("x", groups={"organization": org}))
        assert expected is not None and answers == {expected.enabled}
    # A type no entry names never matches, whatever the caller calls its groups.
    teams = ask(client, groups={"2": "t", "team": "t", "company": "acme"}, group_properties={"team": {}})
    assert teams["teams"]["enabled"] is False and teams["teams"]["reason"]["code"] == "no_group_type"


def test_changing_group_types_rebuilds_both_answers_without_a_flag_change(served: Any) -> None:
    store, _, app, client = served
    first = definitions(client)
    acme = {"groups": {"company": "acme"}, "group_properties": {"company": {"plan": "enterprise"}}}
    assert ask(client, **acme)["enterprise"]["enabled"] is True
    builds = (app.state.definitions.builds, app.state.evaluators.builds)

    name_group_types(store, {"0": "account", "1": "organization"})  # company renamed account
    second = definitions(client, **{"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200 and second.headers["ETag"] != first.headers["ETag"]
    assert second.json()["group_type_mapping"] == {"0": "account", "1": "organization"}
    assert ask(client, **acme)["enterprise"]["enabled"] is False
    renamed = {"groups": {"account": "acme"}, "group_properties": {"account": {"plan": "enterprise"}}}
    assert ask(client, **renamed)["enterprise"]["enabled"] is True
    assert (app.state.definitions.builds, app.state.evaluators.builds) == (builds[0] + 1, builds[1] + 1)

    name_group_types(store, {"0": "account", "1": "organization"})  # the same names again
    assert definitions(client, **{"If-None-Match": second.headers["ETag"]}).status_code == 304
    ask(client, **renamed)
    assert (app.state.definitions.builds, app.state.evaluators.builds) == (builds[0] + 1, builds[1] + 1)


@pytest.mark.parametrize(
    "body",
    [
        {"groups": {"company": "acme", "unknown-type": "x", "": "y"}},  # types nobody named
        {"groups": {"company": 12345}, "group_properties": {"company": {"plan": "enterprise"}, "other": {}}},
        {"groups": {f"type-{i}": f"g{i}" for i in range(20_000)}},  # a huge map of groups
        {
            "groups": {"company": "x" * 10_000},
            "group_properties": {"company": {"plan": ["enterprise"] * 1000}},
        },
        {"groups": {"__proto__": "a", "constructor": "b"}, "group_properties": {"__proto__": {"plan": "x"}}},
    ],
)
def test_odd_groups_are_answered_from_the_named_types_alone(served: Any, body: dict[str, Any]) -> None:
    _, _, _, client = served
    flags = ask(client, **body)
    assert set(flags) >= {"enterprise", "half-of-organizations", "teams"}
    assert flags["teams"]["enabled"] is False


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"groups": {f"t{i}": i for i in range(MAX_VALUES + 1)}}, 413),
        ({"groups": {"company": {"nested": "key"}}}, 400),
        ({"groups": ["company"]}, 400),
        ({"group_properties": {"company": "enterprise"}}, 400),
    ],
)
def test_groups_no_sdk_sends_fail_closed(served: Any, body: dict[str, Any], status: int) -> None:
    _, _, _, client = served
    response = client.post("/flags/?v=4", json={"token": KEY, "distinct_id": "u", **body}, token=None)
    assert response.status_code == status, response.text
    assert "flags" not in response.json()
