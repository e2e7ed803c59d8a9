"""SDK local evaluation: the environment's flags by project token, with ETag and 304."""

from __future__ import annotations

from fastapi import FastAPI

from reconciler.api import ApiSettings, create_app
from reconciler.store import Store
from tests.support.apiclient import Client
from tests.support.apiseed import PROD, Tokens, at, flag


def test_definitions_for_the_project_token(client: Client) -> None:
    response = client.get("/flags/definitions?token=phc_production_key&send_cohorts")
    body = response.json()
    assert set(body) == {"flags", "group_type_mapping", "cohorts"}
    assert [f["key"] for f in body["flags"]] == ["checkout", "search"]  # the deleted flag is left out
    checkout = body["flags"][0]
    assert {
        k: checkout[k] for k in ("id", "team_id", "name", "active", "deleted", "ensure_experience_continuity")
    } == {
        "id": 1,
        "team_id": 1,
        "name": "checkout flag",
        "active": True,
        "deleted": False,
        "ensure_experience_continuity": False,
    }
    assert checkout["filters"]["groups"][0]["rollout_percentage"] == 50
    older = client.get("/api/feature_flag/local_evaluation?token=phc_production_key")
    assert older.content == response.content and older.headers["etag"] == response.headers["etag"]
    staging = client.get("/flags/definitions?token=phc_staging_key").json()
    assert [f["team_id"] for f in staging["flags"]] == [2]
    assert client.get("/flags/definitions?token=phc_unknown").status_code == 404
    assert client.get("/flags/definitions").status_code == 422


def test_etag_answers_304_until_a_flag_changes(fresh_store: tuple[Store, Tokens]) -> None:
    store, tokens = fresh_store
    app: FastAPI = create_app(store, settings=ApiSettings(version_check_seconds=0))
    client = Client(app, tokens.flags)
    try:
        url = "/flags/definitions?token=phc_production_key"
        first = client.get(url)
        etag = first.headers["etag"]
        for header in (etag, f"W/{etag}", f'"other", {etag}'):
            again = client.get(url, headers={"If-None-Match": header})
            assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert client.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200
        assert app.state.definitions.builds == 1  # one body for all of those polls

        with store.transaction() as tx:
            tx.put_flag_version(PROD, flag(1, "checkout", 80, version=3), at=at(90))
        changed = client.get(url, headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        assert changed.json()["flags"][0]["filters"]["groups"][0]["rollout_percentage"] == 80
        assert app.state.definitions.builds == 2
    finally:
        client.close()


def test_a_commit_shows_within_the_version_check_time(fresh_store: tuple[Store, Tokens]) -> None:
    import time

    store, tokens = fresh_store
    client = Client(create_app(store, settings=ApiSettings(version_check_seconds=0.3)), tokens.flags)
    try:
        url = "/flags/definitions?token=phc_production_key"
        etag = client.get(url).headers["etag"]
        with store.transaction() as tx:
            tx.put_flag_version(PROD, flag(1, "checkout", 70, version=3), at=at(90))
        committed = time.monotonic()
        while client.get(url, headers={"If-None-Match": etag}).status_code == 304:
            assert time.monotonic() - committed < 0.3 + 1, "the new flag version never showed"
            time.sleep(0.05)
    finally:
        client.close()
