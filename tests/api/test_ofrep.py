"""OFREP: single and bulk evaluation by project key or single-environment token, OFREP's
shapes, reasons and error codes, the bulk ETag, and what hostile callers get."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reconciler.api import ApiSettings, create_app
from reconciler.evaluation import Context, Evaluator
from reconciler.model.flags import Flag
from reconciler.model.states import APPROVALS_READ, FEATURE_FLAG_READ
from reconciler.store import Store
from tests.support.apiclient import Client
from tests.support.apiseed import ENVIRONMENTS, PROD, STAGING, Tokens, at, flag

SINGLE = "/ofrep/v1/evaluate/flags/"
BULK = "/ofrep/v1/evaluate/flags"
PROD_KEY = {"X-API-Key": "phc_production_key"}
ALICE = {"context": {"targetingKey": "user-7"}}


def ask(
    client: Client, path: str, body: Any = ALICE, headers: dict[str, str] | None = None
) -> httpx.Response:
    return client.post(path, json=body, token=None, headers=PROD_KEY if headers is None else headers)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def targeted_flags() -> list[Flag]:
    """Flags whose OFREP reason differs: by property, by hash, for everybody, by variant."""
    specs: list[dict[str, Any]] = [
        {
            "id": 20,
            "key": "acme",
            "filters": {
                "groups": [{"properties": [{"key": "email", "operator": "icontains", "value": "@acme"}]}],
                "payloads": {"true": {"plan": "gold"}},
            },
        },
        {"id": 21, "key": "everyone", "filters": {"groups": [{"rollout_percentage": 100}]}},
        {
            "id": 22,
            "key": "colour",
            "filters": {
                "groups": [{}],
                "multivariate": {
                    "variants": [
                        {"key": "red", "rollout_percentage": 50},
                        {"key": "blue", "rollout_percentage": 50},
                    ]
                },
                "payloads": {"red": [1, 2], "blue": "plain text"},
            },
        },
        {
            "id": 23,
            "key": "company-flag",
            "filters": {
                "aggregation_group_type_index": 0,
                "groups": [
                    {"properties": [{"key": "tier", "type": "group", "group_type_index": 0, "value": "big"}]}
                ],
            },
        },
    ]
    return [Flag.model_validate({"active": True, **spec}) for spec in specs]


@pytest.fixture
def own(fresh_store: tuple[Store, Tokens]) -> Iterator[tuple[Store, Tokens, Client]]:
    """A store of its own with the targeted flags in production, and a client over it."""
    store, tokens = fresh_store
    with store.transaction() as tx:
        for f in targeted_flags():
            tx.put_flag_version(PROD, f, at=at(40))
    client = Client(
        create_app(store, settings=ApiSettings(version_check_seconds=0, token_cache_seconds=0)), None
    )
    yield store, tokens, client
    client.close()


def test_single_evaluation_answers_the_evaluators_value_in_ofreps_shape(client: Client) -> None:
    response = ask(client, SINGLE + "checkout")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    expected = Evaluator([flag(1, "checkout", 50, version=2)]).evaluate("checkout", Context("user-7"))
    assert expected is not None
    body = response.json()
    assert body == {
        "key": "checkout",
        "value": expected.enabled,
        "reason": "SPLIT",  # a 50 % rollout decides by the hash, in or out
        "variant": "true" if expected.enabled else "false",
        "metadata": {"flagId": 1, "version": 2},
    }


def test_an_inactive_flag_is_disabled_and_false(client: Client) -> None:
    body = ask(client, SINGLE + "search").json()
    assert (body["value"], body["reason"], body["variant"]) == (False, "DISABLED", "false")


def test_unknown_and_deleted_flags_are_flag_not_found(client: Client) -> None:
    for key in ("nope", "retired"):
        response = ask(client, SINGLE + key)
        assert response.status_code == 404
        assert response.json() == {
            "key": key,
            "errorCode": "FLAG_NOT_FOUND",
            "errorDetails": f"no live flag {key!r} in this environment",
        }


def test_reasons_values_variants_and_payloads(own: tuple[Store, Tokens, Client]) -> None:
    _, _, client = own
    acme = {"context": {"targetingKey": "ada", "email": "ada@ACME.com"}}
    body = ask(client, SINGLE + "acme", acme).json()
    assert (body["value"], body["reason"], body["variant"]) == (True, "TARGETING_MATCH", "true")
    assert body["metadata"] == {"flagId": 20, "version": 1, "payload": '{"plan":"gold"}'}
    other = ask(
        client, SINGLE + "acme", {"context": {"targetingKey": "bob", "email": "bob@example.com"}}
    ).json()
    assert (other["value"], other["reason"], other["variant"]) == (False, "DEFAULT", "false")
    assert "payload" not in other["metadata"]
    assert ask(client, SINGLE + "everyone").json()["reason"] == "STATIC"
    evaluator = Evaluator(targeted_flags())
    for user in ("u1", "u2", "u3", "u4"):
        colour = ask(client, SINGLE + "colour", {"context": {"targetingKey": user}}).json()
        expected = evaluator.evaluate("colour", Context(user))
        assert expected is not None and colour["value"] == colour["variant"] == expected.variant
        assert colour["reason"] == "SPLIT"
        assert colour["metadata"]["payload"] == ("[1,2]" if expected.variant == "red" else '"plain text"')


def test_groups_map_from_the_reserved_context_attributes(own: tuple[Store, Tokens, Client]) -> None:
    _, _, client = own
    group = {"$groups": {"company": "acme-inc"}, "$group_properties": {"company": {"tier": "big"}}}
    body = {"context": {"targetingKey": "ada", **group}}
    expected = Evaluator(targeted_flags()).evaluate(
        "company-flag", Context("ada", {}, {"company": "acme-inc"}, {"company": {"tier": "big"}})
    )
    assert expected is not None
    assert ask(client, SINGLE + "company-flag", body).json()["value"] is expected.enabled
    # The same attributes as person properties would not be groups: the flag answers as /flags does.
    posthog = client.post(
        "/flags?v=2",
        json={
            "api_key": "phc_production_key",
            "distinct_id": "ada",
            "groups": {"company": "acme-inc"},
            "group_properties": {"company": {"tier": "big"}},
        },
        token=None,
    ).json()
    assert posthog["flags"]["company-flag"]["enabled"] is expected.enabled


def test_bulk_evaluates_every_live_flag_in_one_answer(own: tuple[Store, Tokens, Client]) -> None:
    _, _, client = own
    response = ask(client, BULK, {"context": {"targetingKey": "ada", "email": "ada@acme.com"}})
    assert response.status_code == 200
    flags = {f["key"]: f for f in response.json()["flags"]}
    assert set(flags) == {"checkout", "search", "acme", "everyone", "colour", "company-flag"}
    for key, answer in flags.items():
        single = ask(client, SINGLE + key, {"context": {"targetingKey": "ada", "email": "ada@acme.com"}})
        assert single.json() == answer


def test_a_flag_that_cannot_be_evaluated_is_a_general_error(own: tuple[Store, Tokens, Client]) -> None:
    store, _, client = own
    cohort = Flag.model_validate(
        {
            "id": 30,
            "key": "cohort-flag",
            "active": True,
            "filters": {
                "groups": [{"properties": [{"key": "id", "type": "cohort", "value": 5, "operator": "in"}]}]
            },
        }
    )
    with store.transaction() as tx:
        tx.put_flag_version(PROD, cohort, at=at(50))
    single = ask(client, SINGLE + "cohort-flag")
    assert single.status_code == 400
    assert single.json()["errorCode"] == "GENERAL" and "cohort_not_found" in single.json()["errorDetails"]
    flags = {f["key"]: f for f in ask(client, BULK).json()["flags"]}
    assert flags["cohort-flag"]["errorCode"] == "GENERAL" and "value" not in flags["cohort-flag"]
    assert "errorCode" not in flags["everyone"]


# --- authentication ---------------------------------------------------------------------------


def test_the_project_key_as_bearer_or_x_api_key(client: Client) -> None:
    via_header = ask(client, SINGLE + "checkout")
    via_bearer = ask(client, SINGLE + "checkout", headers=bearer("phc_production_key"))
    assert via_header.status_code == via_bearer.status_code == 200
    assert via_header.json() == via_bearer.json()
    staging = ask(client, SINGLE + "checkout", headers={"X-API-Key": "phc_staging_key"}).json()
    assert staging["metadata"]["flagId"] == 4  # each key reads its own environment
    other = ask(client, SINGLE + "search", headers={"X-API-Key": "phc_staging_key"})  # production's flag
    assert other.status_code == 404 and other.json()["errorCode"] == "FLAG_NOT_FOUND"
    staging_bulk = ask(client, BULK, headers={"X-API-Key": "phc_staging_key"}).json()["flags"]
    assert [f["key"] for f in staging_bulk] == ["checkout"]


def test_missing_wrong_and_conflicting_credentials_are_401(client: Client) -> None:
    cases = [
        {},
        {"X-API-Key": "phc_mistyped"},
        bearer(""),
        {"Authorization": "Basic cGhjOng="},
        {"X-API-Key": "phc_production_key", "Authorization": "Bearer phc_staging_key"},
    ]
    for headers in cases:
        for path in (SINGLE + "checkout", BULK):
            response = client.post(path, json=ALICE, token=None, headers=headers)
            assert response.status_code == 401, (headers, response.text)
            body = response.json()
            assert body["errorCode"] == "GENERAL" and body["errorDetails"]
            assert "phc_production_key" not in response.text and "phc_staging_key" not in response.text
    # The credential is judged before the body: a wrong key learns nothing from a bad body.
    assert client.post(BULK, content=b"{nope", token=None, headers={"X-API-Key": "phc_x"}).status_code == 401
    assert ask(client, SINGLE + "nope", {}, headers={"X-API-Key": "phc_x"}).status_code == 401


def test_a_token_bound_to_one_environment_reads_that_one(client: Client, tokens: Tokens) -> None:
    response = ask(client, SINGLE + "checkout", headers=bearer(tokens.production_only))
    assert response.status_code == 200 and response.json()["metadata"] == {"flagId": 1, "version": 2}
    via_key = ask(client, SINGLE + "checkout", headers={"X-API-Key": tokens.production_only})
    assert via_key.json() == response.json()


def test_tokens_for_every_environment_or_without_the_scope_are_refused(
    client: Client, tokens: Tokens
) -> None:
    for secret in (tokens.full, tokens.flags):  # bound to no environment: which one would it be?
        response = ask(client, BULK, headers=bearer(secret))
        assert response.status_code == 403
        assert "every environment" in response.json()["errorDetails"]
        assert "--environment" in response.json()["errorDetails"]
    assert ask(client, BULK, headers=bearer(tokens.revoked)).status_code == 401
    assert ask(client, BULK, headers=bearer("rcn_" + "A" * 43)).status_code == 401


def test_a_token_with_two_environments_or_another_scope_is_refused(own: tuple[Store, Tokens, Client]) -> None:
    store, _, client = own
    both = store.create_token("ada", (FEATURE_FLAG_READ,), environment_ids=(PROD, STAGING))[0]
    refused = ask(client, SINGLE + "checkout", headers=bearer(both))
    assert refused.status_code == 403 and "2 environments" in refused.json()["errorDetails"]
    approvals = store.create_token("ada", (APPROVALS_READ,), environment_ids=(PROD,))[0]
    lacking = ask(client, SINGLE + "checkout", headers=bearer(approvals))
    assert lacking.status_code == 403 and "feature_flag:read" in lacking.json()["errorDetails"]
    staging = store.create_token("ada", (FEATURE_FLAG_READ,), environment_ids=(STAGING,))[0]
    answer = ask(client, SINGLE + "checkout", headers=bearer(staging)).json()
    assert answer["metadata"]["flagId"] == 4 and answer["value"] is True  # staging's flag, not production's
    with store.transaction() as tx:  # staging leaves reconciler.yaml: its token reads nothing
        tx.replace_environments([e for e in ENVIRONMENTS if e.id != STAGING])
    vanished = ask(client, SINGLE + "checkout", headers=bearer(staging))
    assert vanished.status_code == 403 and "no longer exists" in vanished.json()["errorDetails"]


def test_a_revoked_token_stops_at_once_when_tokens_are_not_cached(own: tuple[Store, Tokens, Client]) -> None:
    store, _, client = own
    secret, record = store.create_token("ada", (FEATURE_FLAG_READ,), environment_ids=(PROD,))
    assert ask(client, BULK, headers=bearer(secret)).status_code == 200
    store.revoke_token(str(record.id))
    refused = ask(client, BULK, headers=bearer(secret))
    assert refused.status_code == 401 and "revoked" in refused.json()["errorDetails"]
    assert secret not in refused.text


# --- the context -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "TARGETING_KEY_MISSING"),
        ({"context": {}}, "TARGETING_KEY_MISSING"),
        ({"context": {"targetingKey": ""}}, "TARGETING_KEY_MISSING"),
        ({"context": {"targetingKey": None, "email": "a@b"}}, "TARGETING_KEY_MISSING"),
        ({"context": {"targetingKey": 7}}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": True}}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": ["user-7"]}}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": {"id": "user-7"}}}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": "u" * 401}}, "INVALID_CONTEXT"),
        ({"context": "user-7"}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": "u", "$groups": ["acme"]}}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": "u", "$groups": {"company": {"id": 1}}}}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": "u", "$groups": {"company": False}}}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": "u", "$group_properties": {"company": 3}}}, "INVALID_CONTEXT"),
        ([1, 2], "PARSE_ERROR"),
    ],
)
def test_bad_contexts_get_ofreps_error_codes(client: Client, body: Any, code: str) -> None:
    single = ask(client, SINGLE + "checkout", body)
    assert single.status_code == 400
    assert single.json()["key"] == "checkout" and single.json()["errorCode"] == code
    bulk = ask(client, BULK, body)
    assert bulk.status_code == 400 and bulk.json()["errorCode"] == code and "key" not in bulk.json()


def test_a_numeric_group_key_is_its_text(own: tuple[Store, Tokens, Client]) -> None:
    _, _, client = own
    body = {"context": {"targetingKey": "u", "$groups": {"company": 42}}}
    assert ask(client, SINGLE + "company-flag", body).status_code == 200


def test_bodies_that_are_not_json_or_too_big_or_too_deep(client: Client) -> None:
    not_json = client.post(BULK, content=b"{nope", token=None, headers=PROD_KEY)
    assert not_json.status_code == 400 and not_json.json()["errorCode"] == "PARSE_ERROR"
    empty = client.post(BULK, content=b"", token=None, headers=PROD_KEY)
    assert empty.status_code == 400 and empty.json()["errorCode"] == "TARGETING_KEY_MISSING"
    deep: Any = "x"
    for _ in range(200):
        deep = {"a": deep}
    too_deep = ask(client, BULK, {"context": {"targetingKey": "u", "nested": deep}})
    assert too_deep.status_code == 400 and too_deep.json()["errorCode"] == "INVALID_CONTEXT"
    wide = ask(client, BULK, {"context": {"targetingKey": "u", **{f"p{i}": i for i in range(100_001)}}})
    assert wide.status_code == 413 and wide.json()["errorCode"] == "GENERAL"
    huge = client.post(BULK, content=b" " * (1024 * 1024 + 1), token=None, headers=PROD_KEY)
    assert huge.status_code == 413 and "limit" in huge.json()["errorDetails"]


def test_odd_flag_keys_in_the_path_are_just_not_found(client: Client) -> None:
    for key in ("..%2F..%2Fetc", "a/b", "%00", "a" * 5000, "checkout%20"):
        response = ask(client, SINGLE + key)
        assert response.status_code == 404 and response.json()["errorCode"] == "FLAG_NOT_FOUND"


# --- the bulk ETag -----------------------------------------------------------------------------


def test_if_none_match_with_the_current_etag_is_304(client: Client) -> None:
    first = ask(client, BULK)
    etag = first.headers["etag"]
    again = ask(client, BULK, headers={**PROD_KEY, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    weak_in_list = ask(client, BULK, headers={**PROD_KEY, "If-None-Match": f'"other", W/{etag}'})
    assert weak_in_list.status_code == 304
    for games in ("*", '"other"', etag.strip('"'), etag + "x", ""):
        answer = ask(client, BULK, headers={**PROD_KEY, "If-None-Match": games})
        assert answer.status_code == 200 and answer.json() == first.json(), games


def test_the_etag_differs_by_environment_and_by_context(client: Client) -> None:
    production = ask(client, BULK).headers["etag"]
    staging = ask(client, BULK, headers={"X-API-Key": "phc_staging_key"}).headers["etag"]
    assert production != staging
    # Two callers whose answers happen to be equal still get their own ETags: a cached answer
    # is valid for the context it was asked with, never replayed for another.
    someone = ask(client, BULK, {"context": {"targetingKey": "user-7", "plan": "pro"}}).headers["etag"]
    assert someone != production
    stale = ask(
        client,
        BULK,
        {"context": {"targetingKey": "user-8"}},
        headers={**PROD_KEY, "If-None-Match": production},
    )
    assert stale.status_code == 200
    cross = ask(client, BULK, headers={"X-API-Key": "phc_staging_key", "If-None-Match": production})
    assert cross.status_code == 200 and cross.json()["flags"][0]["metadata"]["flagId"] == 4
    # The same context with its attributes in another order is the same context.
    a = ask(client, BULK, {"context": {"targetingKey": "u", "a": 1, "b": {"x": 1, "y": 2}}}).headers["etag"]
    b = ask(client, BULK, {"context": {"b": {"y": 2, "x": 1}, "a": 1, "targetingKey": "u"}}).headers["etag"]
    assert a == b


def test_the_etag_changes_when_a_flag_changes(own: tuple[Store, Tokens, Client]) -> None:
    store, _, client = own
    before = ask(client, BULK).headers["etag"]
    with store.transaction() as tx:  # a change that keeps every value: the version still moves
        tx.put_flag_version(PROD, flag(2, "search", 100, active=False, version=2), at=at(60))
    after = ask(client, BULK, headers={**PROD_KEY, "If-None-Match": before})
    assert after.status_code == 200 and after.headers["etag"] != before
    with store.transaction() as tx:  # another environment changes: production's answer stays
        tx.put_flag_version(STAGING, flag(4, "checkout", 0, version=2), at=at(61))
    assert ask(client, BULK, headers={**PROD_KEY, "If-None-Match": after.headers["etag"]}).status_code == 304


def test_ofrep_and_posthog_flags_share_one_evaluator_per_version(own: tuple[Store, Tokens, Client]) -> None:
    _, _, client = own
    for user in ("a", "b", "c"):
        ask(client, BULK, {"context": {"targetingKey": user}})
        ask(client, SINGLE + "acme", {"context": {"targetingKey": user}})
        client.post("/flags?v=2", json={"api_key": "phc_production_key", "distinct_id": user}, token=None)
    assert client.app.state.evaluators.builds == 1


# --- what else a caller may try ----------------------------------------------------------------


def test_only_post_is_served(client: Client) -> None:
    for method in ("GET", "PUT", "DELETE"):
        assert client.request(method, BULK, token=None, headers=PROD_KEY).status_code == 405
        assert client.request(method, SINGLE + "checkout", token=None, headers=PROD_KEY).status_code == 405


def test_bulk_answers_cross_origin_and_single_does_not(client: Client) -> None:
    origin = {"Origin": "https://app.example.com"}
    preflight = client.request(
        "OPTIONS",
        BULK,
        token=None,
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,if-none-match",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "if-none-match" in preflight.headers["access-control-allow-headers"]
    bulk = ask(client, BULK, headers={**PROD_KEY, **origin})
    assert bulk.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "etag" in bulk.headers["access-control-expose-headers"].lower()
    single = ask(client, SINGLE + "checkout", headers={**PROD_KEY, **origin})
    assert "access-control-allow-origin" not in single.headers


def test_a_remembered_bulk_answer_skips_neither_the_credential_nor_the_body_checks(client: Client) -> None:
    first = ask(client, BULK)
    assert ask(client, BULK).json() == first.json()  # remembered: the same answer and ETag
    assert ask(client, BULK).headers["etag"] == first.headers["etag"]
    wrong = ask(client, BULK, headers={"X-API-Key": "phc_production_kex"})
    assert wrong.status_code == 401 and wrong.json()["errorCode"] == "GENERAL"
    odd = ask(client, BULK, {"context": {"targetingKey": 7}})
    assert odd.status_code == 400 and odd.json()["errorCode"] == "INVALID_CONTEXT"
    missing = ask(client, BULK, {"context": {}})
    assert missing.status_code == 400 and missing.json()["errorCode"] == "TARGETING_KEY_MISSING"
