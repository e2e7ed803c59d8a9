"""PostHog remote evaluation: `/flags` and `/decide` by project key, every `?v=` shape,
PostHog's answers to a wrong key, and the evaluator kept per flags version."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from reconciler.api import ApiSettings, create_app
from reconciler.evaluation import Context, Evaluator
from reconciler.model.flags import Flag
from reconciler.store import Store
from tests.support.apiclient import Client
from tests.support.apiseed import PROD, STAGING, Tokens, at, flag

BODY = {"api_key": "phc_production_key", "distinct_id": "user-7"}


def payload_flag(flag_id: int, key: str, payload: Any) -> Flag:
    filters = {"groups": [{}], "payloads": {"true": payload}}
    return Flag.model_validate({"id": flag_id, "key": key, "active": True, "filters": filters})


def post(client: Client, path: str, body: Any = BODY, **kw: Any) -> httpx.Response:
    return client.post(path, json=body, token=None, **kw)


def test_flags_v2_answers_every_live_flag_with_reason_and_metadata(client: Client) -> None:
    response = post(client, "/flags/?v=2")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"flags", "errorsWhileComputingFlags", "requestId"}
    assert body["errorsWhileComputingFlags"] is False and uuid.UUID(body["requestId"])
    assert set(body["flags"]) == {"checkout", "search"}  # the deleted flag is not there
    search = body["flags"]["search"]
    assert search == {
        "key": "search",
        "enabled": False,
        "variant": None,
        "reason": {
            "code": "flag_disabled",
            "condition_index": None,
            "description": "Feature flag is disabled",
        },
        "metadata": {"id": 2, "version": 1, "description": None, "payload": None},
    }
    checkout = body["flags"]["checkout"]
    assert checkout["metadata"] == {"id": 1, "version": 2, "description": None, "payload": None}
    expected = Evaluator([flag(1, "checkout", 50, version=2)]).evaluate("checkout", Context("user-7"))
    assert expected is not None and checkout["enabled"] is expected.enabled
    assert checkout["reason"]["code"] == expected.reason


@pytest.mark.parametrize("version", ["2", "3", "4", "99"])
def test_every_flags_version_from_2_has_the_flags_shape(client: Client, version: str) -> None:
    assert "flags" in post(client, f"/flags?v={version}").json()


@pytest.mark.parametrize("query", ["", "?v=1", "?v=x", "?v=" + "9" * 50])
def test_flags_without_a_version_has_the_legacy_shape(client: Client, query: str) -> None:
    body = post(client, f"/flags{query}").json()
    assert set(body) == {"featureFlags", "featureFlagPayloads", "errorsWhileComputingFlags", "requestId"}
    assert body["featureFlags"]["search"] is False


def test_decide_versions(client: Client) -> None:
    results = {v: post(client, f"/decide/?v={v}").json() for v in ("1", "2", "3", "4")}
    ids = [f"user-{i}" for i in range(40)]
    assert all(r["supportedCompression"] == ["gzip", "gzip-js"] for r in results.values())
    assert results["4"]["flags"]["search"]["enabled"] is False
    assert results["3"]["featureFlags"]["search"] is False
    assert "search" not in results["2"]["featureFlags"]  # v2 and v1 list only enabled flags
    assert "search" not in results["1"]["featureFlags"]
    assert isinstance(results["1"]["featureFlags"], list)
    # checkout is on for about half the ids, and every version agrees on which.
    on = {
        v: [
            bool(post(client, f"/decide/?v={v}", {**BODY, "distinct_id": i}).json()["featureFlags"])
            for i in ids
        ]
        for v in ("1", "2")
    }
    assert on["1"] == on["2"] and 5 < sum(on["1"]) < 35
    assert "supportedCompression" not in post(client, "/flags?v=2").json()
    assert post(client, "/flags?v=2&config=true").json()["sessionRecording"] is False


def test_payloads_are_json_text_as_posthog_sends_them(fresh_store: tuple[Store, Tokens]) -> None:
    store, _ = fresh_store
    payloaded = payload_flag(9, "banner", {"text": "hi", "n": 2})
    with store.transaction() as tx:
        tx.put_flag_version(PROD, payloaded, at=at(40))
    client = Client(create_app(store, settings=ApiSettings(version_check_seconds=0)), None)
    try:
        flags = post(client, "/flags?v=2").json()["flags"]
        assert json.loads(flags["banner"]["metadata"]["payload"]) == {"text": "hi", "n": 2}
        legacy = post(client, "/flags").json()
        assert json.loads(legacy["featureFlagPayloads"]["banner"]) == {"text": "hi", "n": 2}
        assert "checkout" not in legacy["featureFlagPayloads"]
    finally:
        client.close()


def test_the_project_key_may_come_from_token_api_key_or_the_query(client: Client) -> None:
    for body, query in [
        ({"token": "phc_staging_key", "distinct_id": "a"}, ""),
        ({"api_key": "phc_staging_key", "distinct_id": "a"}, ""),
        ({"$token": "phc_staging_key", "distinct_id": "a"}, ""),
        ({"distinct_id": "a"}, "&token=phc_staging_key"),
    ]:
        flags = post(client, f"/flags?v=2{query}", body).json()["flags"]
        assert [f["metadata"]["id"] for f in flags.values()] == [4]  # staging's own checkout, on for all


def test_a_wrong_or_missing_project_key_gets_posthogs_401(client: Client) -> None:
    wrong = post(client, "/flags?v=2", {"api_key": "phc_production_kez", "distinct_id": "a"})
    assert wrong.status_code == 401
    assert wrong.json() == {
        "type": "authentication_error",
        "code": "authentication_failed",
        "detail": "The provided API key is invalid or has expired. Please check your API key and try again.",
        "attr": None,
    }
    missing = post(client, "/decide?v=3", {"distinct_id": "a"})
    assert missing.status_code == 401 and missing.json()["code"] == "not_authenticated"
    # Another environment's bearer token or a reconciler token is no project key.
    bearer = client.post("/flags?v=2", json={"distinct_id": "a"})
    assert bearer.status_code == 401


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"api_key": "phc_production_key"}, "distinct_id"),
        ({**BODY, "distinct_id": ""}, "distinct_id"),
        ({**BODY, "distinct_id": {"a": 1}}, "distinct_id"),
        ({**BODY, "person_properties": [1]}, "person_properties"),
        ({**BODY, "groups": {"company": None}}, "groups"),
        ({**BODY, "group_properties": {"company": 1}}, "group_properties"),
        ({**BODY, "flag_keys_to_evaluate": "checkout"}, "flag_keys_to_evaluate"),
    ],
)
def test_malformed_requests_say_which_field(client: Client, body: dict[str, Any], attr: str) -> None:
    response = post(client, "/flags?v=2", body)
    assert response.status_code == 400 and response.json()["attr"] == attr, response.text


def test_bodies_the_sdks_pack(client: Client) -> None:
    raw = json.dumps(BODY).encode()
    expected = set(post(client, "/flags?v=2").json()["flags"])
    packed = [
        ("/flags?v=2", gzip.compress(raw), {"Content-Encoding": "gzip"}),
        ("/flags?v=2&compression=gzip-js", gzip.compress(raw), {"Content-Type": "text/plain"}),
        ("/flags?v=2&compression=base64", base64.b64encode(raw), {}),
        (
            "/flags?v=2",
            b"data=" + base64.urlsafe_b64encode(raw).rstrip(b"="),
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
    ]
    for path, content, headers in packed:
        response = client.post(path, content=content, headers=headers, token=None)
        assert response.status_code == 200, (path, response.text)
        assert set(response.json()["flags"]) == expected


def test_only_the_flags_asked_for(client: Client) -> None:
    body = {**BODY, "flag_keys_to_evaluate": ["search", "nope", "search"]}
    assert list(post(client, "/flags?v=2", body).json()["flags"]) == ["search"]


def test_person_and_group_properties_decide(fresh_store: tuple[Store, Tokens]) -> None:
    store, _ = fresh_store
    targeted = Flag.model_validate(
        {
            "id": 9,
            "key": "acme-only",
            "active": True,
            "filters": {
                "groups": [{"properties": [{"key": "email", "operator": "icontains", "value": "@acme"}]}]
            },
        }
    )
    with store.transaction() as tx:
        tx.put_flag_version(PROD, targeted, at=at(40))
    client = Client(create_app(store, settings=ApiSettings(version_check_seconds=0)), None)
    try:
        ask = {**BODY, "flag_keys_to_evaluate": ["acme-only"]}
        on = post(client, "/flags?v=2", {**ask, "person_properties": {"email": "ada@ACME.com"}}).json()
        off = post(client, "/flags?v=2", {**ask, "person_properties": {"email": "ada@example.com"}}).json()
        absent = post(client, "/flags?v=2", ask).json()
        assert on["flags"]["acme-only"]["enabled"] is True
        assert off["flags"]["acme-only"]["reason"]["code"] == "no_condition_match"
        assert absent["flags"]["acme-only"]["enabled"] is False  # not sent: absent, as on PostHog's server
    finally:
        client.close()


def test_one_evaluator_per_flags_version(fresh_store: tuple[Store, Tokens]) -> None:
    store, _ = fresh_store
    app: FastAPI = create_app(store, settings=ApiSettings(version_check_seconds=0))
    client = Client(app, None)
    try:
        for i in range(5):
            post(client, "/flags?v=2", {**BODY, "distinct_id": f"u{i}"})
        assert app.state.evaluators.builds == 1
        with store.transaction() as tx:  # another environment's flag: production's evaluator stays
            tx.put_flag_version(STAGING, flag(4, "checkout", 0, version=2), at=at(50))
        post(client, "/flags?v=2")
        assert app.state.evaluators.builds == 1
        with store.transaction() as tx:
            tx.put_flag_version(PROD, flag(1, "checkout", 100, version=3), at=at(60))
        flags = post(client, "/flags?v=2").json()["flags"]
        assert app.state.evaluators.builds == 2
        assert flags["checkout"]["enabled"] is True and flags["checkout"]["metadata"]["version"] == 3
    finally:
        client.close()


def test_a_cohort_no_environment_defines_is_reported_as_an_error(fresh_store: tuple[Store, Tokens]) -> None:
    store, _ = fresh_store
    cohort = Flag.model_validate(
        {
            "id": 9,
            "key": "cohort-flag",
            "active": True,
            "filters": {
                "groups": [{"properties": [{"key": "id", "type": "cohort", "value": 5, "operator": "in"}]}]
            },
        }
    )
    with store.transaction() as tx:
        tx.put_flag_version(PROD, cohort, at=at(40))
    client = Client(create_app(store, settings=ApiSettings(version_check_seconds=0)), None)
    try:
        body = post(client, "/flags?v=2").json()
        assert body["errorsWhileComputingFlags"] is True
        assert body["flags"]["cohort-flag"]["enabled"] is False
        assert body["flags"]["cohort-flag"]["reason"]["code"] == "cohort_not_found"
        assert body["flags"]["checkout"]["reason"]["code"] != "cohort_not_found"
    finally:
        client.close()


def test_remote_config_serves_the_payload_as_json_text(fresh_store: tuple[Store, Tokens]) -> None:
    store, tokens = fresh_store
    payloaded = payload_flag(9, "config", {"theme": "dark"})
    with store.transaction() as tx:
        tx.put_flag_version(PROD, payloaded, at=at(40))
    client = Client(create_app(store, settings=ApiSettings(version_check_seconds=0)), tokens.flags)
    try:
        url = "/api/projects/@current/feature_flags/config/remote_config?token=phc_production_key"
        response = client.get(url)
        assert response.status_code == 200 and json.loads(response.json()) == {"theme": "dark"}
        assert client.get(f"/api/environments/{PROD}/feature_flags/9/remote_config").json() == response.json()
        assert client.get(f"/api/projects/{PROD}/feature_flags/checkout/remote_config").json() is None
        assert client.get(url.replace("config/remote", "nope/remote")).status_code == 404
        assert client.get(url, token=None).status_code == 401
        assert client.get(url, token=tokens.approvals).status_code == 403  # no feature_flag:read
        assert client.get(url.replace("@current", str(STAGING))).status_code == 404  # key and id disagree
        assert client.get(url.replace("phc_production_key", "phc_nope")).status_code == 404
        assert client.get("/api/projects/@current/feature_flags/config/remote_config").status_code == 404
        assert client.get(url, token=tokens.production_only).status_code == 200
        staging_only = url.replace("phc_production_key", "phc_staging_key").replace("config/", "checkout/")
        assert client.get(staging_only, token=tokens.production_only).status_code == 404
    finally:
        client.close()


def test_a_repeated_request_gets_the_same_flags_and_its_own_request_id(client: Client) -> None:
    answers = [post(client, "/flags?v=2") for _ in range(3)]
    bodies = [a.json() for a in answers]
    assert len({b.pop("requestId") for b in bodies}) == 3
    assert bodies[0] == bodies[1] == bodies[2] and set(bodies[0]) == {"flags", "errorsWhileComputingFlags"}
    legacy = post(client, "/decide/?v=3").json()  # another shape, remembered apart
    assert "featureFlags" in legacy and "flags" not in legacy and "supportedCompression" in legacy


def test_a_remembered_answer_never_reaches_another_key_or_a_wrong_one(client: Client) -> None:
    production = post(client, "/flags?v=2", {**BODY, "distinct_id": "ops"}).json()["flags"]
    staging = post(client, "/flags?v=2", {**BODY, "distinct_id": "ops", "api_key": "phc_staging_key"})
    assert set(staging.json()["flags"]) == {"checkout"} and staging.json()["flags"]["checkout"]["enabled"]
    assert production["checkout"]["metadata"]["version"] == 2
    assert staging.json()["flags"]["checkout"]["metadata"]["id"] == 4
    wrong = post(client, "/flags?v=2", {**BODY, "distinct_id": "ops", "api_key": "phc_production_kex"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "authentication_failed"


def test_a_flag_change_is_answered_at_once_for_a_context_asked_before(
    fresh_store: tuple[Store, Tokens],
) -> None:
    store, _ = fresh_store
    client = Client(create_app(store, settings=ApiSettings(version_check_seconds=0)), None)
    try:
        assert post(client, "/flags?v=2").json()["flags"]["checkout"]["metadata"]["version"] == 2
        assert post(client, "/flags?v=2").json()["flags"]["checkout"]["metadata"]["version"] == 2
        with store.transaction() as tx:
            tx.put_flag_version(PROD, flag(1, "checkout", 0, version=3), at=at(60))
        checkout = post(client, "/flags?v=2").json()["flags"]["checkout"]
        assert checkout["metadata"]["version"] == 3 and checkout["enabled"] is False
    finally:
        client.close()
