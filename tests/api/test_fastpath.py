"""Answers already known skip the framework: the same bytes as the full path, never to a
caller the full path would refuse, and never older than the caches allow."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from reconciler.api import ApiSettings, create_app
from reconciler.api.app import ReconcilerApp
from reconciler.api.ui.session import SESSION_COOKIE, SESSION_SECONDS, SessionKeys, VerifiedSessions
from reconciler.model.flags import Flag, FlagFilters, FlagGroup
from reconciler.store import Store
from reconciler.store.tokens import token_hash
from tests.support.apiclient import Client, form_field, sign_in
from tests.support.apiseed import APPLIED, Tokens
from tests.support.people import T0

DEFINITIONS = "/flags/definitions?token=phc_production_key"
REPEATED = [
    "/healthz",
    DEFINITIONS,
    "/api/feature_flag/local_evaluation?token=phc_production_key",
    "/api/environments/1/change_requests/",
    "/api/environments/1/change_requests/?state=applied&limit=2",
    f"/api/projects/1/change_requests/{APPLIED.id}/",
    "/api/environments/1/approval_policies/",
    "/api/environments/1/feature_flags/",
    "/api/v2/projects/default/flags/checkout/environments/production/approval-requests",
    "/v1/approvals",
]


def fast_answers(client: Client) -> int:
    app = client.app
    assert isinstance(app, ReconcilerApp) and app.fast_path is not None
    return app.fast_path.answered


@pytest.fixture
def client(seeded_store: Store, tokens: Tokens) -> Iterator[Client]:
    # Long cache times, so that a slow machine never lets an entry expire between two requests.
    settings = ApiSettings(version_check_seconds=60, token_cache_seconds=60)
    c = Client(create_app(seeded_store, settings=settings), tokens.full)
    yield c
    c.close()


@pytest.mark.parametrize("url", REPEATED)
def test_a_repeated_read_is_answered_from_the_caches_with_the_same_bytes(client: Client, url: str) -> None:
    first = client.get(url)
    assert first.status_code == 200
    before = fast_answers(client)
    again = client.get(url)
    assert fast_answers(client) == before + 1
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers.multi_items() == first.headers.multi_items()


def test_a_current_etag_is_answered_304_from_the_caches(client: Client) -> None:
    etag = client.get(DEFINITIONS).headers["etag"]
    full = Client(client.app, client.token)
    before = fast_answers(client)
    answer = client.get(DEFINITIONS, headers={"If-None-Match": f'W/"other", {etag}'})
    assert fast_answers(client) == before + 1
    assert answer.status_code == 304 and answer.content == b""
    assert answer.headers["etag"] == etag and answer.headers["cache-control"] == "no-cache"
    stale = client.get(DEFINITIONS, headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200 and stale.headers["etag"] == etag
    full.close()


def test_fast_answers_are_counted_under_their_route_template(client: Client) -> None:
    url = f"/api/projects/1/change_requests/{APPLIED.id}/"
    for _ in range(3):
        assert client.get(url).status_code == 200
    metrics = client.get("/metrics", token=None).text
    route = 'route="/api/projects/{project_id}/change_requests/{change_request_id}/"'
    line = next(
        m
        for m in metrics.splitlines()
        if m.startswith("reconciler_api_request_duration_seconds_count") and route in m
    )
    assert line.endswith(" 3.0")
    assert APPLIED.id not in metrics  # never the raw path


def test_another_token_of_the_same_member_without_the_scope_is_refused(
    client: Client, seeded_store: Store, tokens: Tokens
) -> None:
    flags_only = seeded_store.create_token("ada", ("feature_flag:read",))[0]
    approvals_only = tokens.approvals  # also ada's
    for url in ["/api/environments/1/change_requests/", f"/api/projects/1/change_requests/{APPLIED.id}/"]:
        client.get(url)
        client.get(url)  # now cached for the full token, and answered from the cache
        assert client.get(url, token=flags_only).status_code == 403
    client.get(DEFINITIONS)
    client.get(DEFINITIONS)
    assert client.get(DEFINITIONS, token=approvals_only).status_code == 403


def test_a_token_restricted_to_one_environment_gets_nothing_another_token_cached(
    client: Client, tokens: Tokens
) -> None:
    for url in ["/api/environments/2/change_requests/", "/flags/definitions?token=phc_staging_key"]:
        assert client.get(url).status_code == 200
        assert client.get(url).status_code == 200
        assert client.get(url, token=tokens.production_only).status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic YWRhOnB3"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer two words"},
        {},
    ],
)
def test_unusual_or_missing_credentials_go_the_full_way_and_are_refused(
    client: Client, headers: dict[str, str]
) -> None:
    url = "/api/environments/1/change_requests/"
    client.get(url)
    client.get(url)
    before = fast_answers(client)
    answer = client.get(url, token=None, headers=headers)
    assert answer.status_code == 401
    assert fast_answers(client) == before


def test_two_authorization_headers_go_the_full_way(client: Client, tokens: Tokens) -> None:
    url = "/api/environments/1/change_requests/"
    client.get(url)
    client.get(url)
    before = fast_answers(client)

    async def twice(first: str, second: str) -> int:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as raw:
            answer = await raw.get(url, headers=[("Authorization", first), ("Authorization", second)])
            return answer.status_code

    assert asyncio.run(twice("Bearer not-a-token", f"Bearer {tokens.full}")) == 401  # the first one counts
    assert asyncio.run(twice(f"Bearer {tokens.full}", "Bearer not-a-token")) == 200
    assert fast_answers(client) == before


def test_other_methods_and_other_queries_go_the_full_way(client: Client) -> None:
    client.get(DEFINITIONS)
    before = fast_answers(client)
    assert client.request("HEAD", DEFINITIONS).status_code == 200
    assert client.get(DEFINITIONS + "&token=phc_staging_key").status_code in (200, 422)
    assert client.get("/flags/definitions?token=").status_code == 422
    assert client.get("/healthz?verbose=1").status_code == 200
    assert fast_answers(client) == before


def test_anonymous_reads_use_the_caches_only_when_anonymous_access_is_on(seeded_store: Store) -> None:
    anonymous = Client(
        create_app(seeded_store, settings=ApiSettings(allow_anonymous=True, version_check_seconds=60)), None
    )
    closed = Client(create_app(seeded_store, settings=ApiSettings(version_check_seconds=60)), None)
    try:
        for _ in range(2):
            assert anonymous.get(DEFINITIONS).status_code == 200
            assert closed.get(DEFINITIONS).status_code == 401
        assert fast_answers(anonymous) == 1
        assert fast_answers(closed) == 0
    finally:
        anonymous.close()
        closed.close()


def test_a_revoked_token_is_refused_within_the_token_cache_time(fresh_store: tuple[Store, Tokens]) -> None:
    store, tokens = fresh_store
    client = Client(create_app(store, settings=ApiSettings(token_cache_seconds=0.3)), tokens.full)
    try:
        secret, record = store.create_token("ada", ("approvals:read",))
        url = "/api/environments/1/change_requests/"
        assert client.get(url, token=secret).status_code == 200
        before = fast_answers(client)
        assert client.get(url, token=secret).status_code == 200
        assert fast_answers(client) == before + 1  # the cached answer
        store.revoke_token(str(record.id))
        revoked_at = time.monotonic()
        while client.get(url, token=secret).status_code == 200:
            assert time.monotonic() - revoked_at < 0.3 + 1, "the revoked token kept working"
            time.sleep(0.02)
    finally:
        client.close()


def test_a_new_flag_version_shows_within_the_version_check_time(fresh_store: tuple[Store, Tokens]) -> None:
    store, tokens = fresh_store
    client = Client(create_app(store, settings=ApiSettings(version_check_seconds=0.3)), tokens.full)
    try:
        first = client.get(DEFINITIONS)
        assert client.get(DEFINITIONS).content == first.content
        with store.transaction() as tx:
            groups = [FlagGroup(rollout_percentage=7)]
            tx.put_flag_version(
                1, Flag(id=999, key="brand-new", active=True, filters=FlagFilters(groups=groups)), at=T0
            )
        changed_at = time.monotonic()
        while b"brand-new" not in client.get(DEFINITIONS).content:
            assert time.monotonic() - changed_at < 0.3 + 1, "the cached definitions outlived the check time"
            time.sleep(0.02)
    finally:
        client.close()


def test_a_trusted_entry_close_to_expiry_is_read_again_ahead_and_a_revoked_token_dropped(
    fresh_store: tuple[Store, Tokens],
) -> None:
    store, tokens = fresh_store
    settings = ApiSettings(token_cache_seconds=4, version_check_seconds=4)
    client = Client(create_app(store, settings=settings), tokens.full)
    try:
        secret, record = store.create_token("ada", ("approvals:read",))
        assert client.get("/api/environments/1/change_requests/", token=secret).status_code == 200
        gate = client.app.state.context.gate
        digest = token_hash(secret)
        assert not gate.version_due() and not gate.token_due(digest)  # fresh
        time.sleep(1.2)  # past a quarter of their lifetime
        assert gate.version_due() and gate.token_due(digest)
        gate.refresh(True, digest)
        assert not gate.version_due() and not gate.token_due(digest)  # read again, trusted anew
        assert gate.cached_caller(digest) is not None

        store.revoke_token(str(record.id))
        gate.refresh(False, digest)
        assert gate.cached_caller(digest) is None  # dropped at the refresh, not at expiry
        assert client.get("/api/environments/1/change_requests/", token=secret).status_code == 401
    finally:
        client.close()


DASHBOARD_PAGES = [
    "/ui/",
    "/ui/changes?state=applied",
    f"/ui/changes/{APPLIED.id}",
    "/ui/flags/production/checkout",
]


@pytest.mark.parametrize("url", DASHBOARD_PAGES)
def test_a_repeated_dashboard_page_skips_the_framework_with_each_browsers_own_form_field(
    seeded_store: Store, tokens: Tokens, url: str
) -> None:
    app = create_app(seeded_store, settings=ApiSettings(version_check_seconds=60, token_cache_seconds=60))
    browsers = [Client(app, None), Client(app, None)]
    try:
        firsts = []
        for browser in browsers:
            sign_in(browser, tokens.full)
            firsts.append(browser.get(url))
            assert firsts[-1].status_code == 200 and "Sign out" in firsts[-1].text
        before = fast_answers(browsers[0])
        agains = [browser.get(url) for browser in browsers]
        assert fast_answers(browsers[0]) == before + 2
        for first, again in zip(firsts, agains, strict=True):
            assert (again.status_code, again.content) == (first.status_code, first.content)
            assert again.headers.multi_items() == first.headers.multi_items()
        fields = [form_field(again) for again in agains]
        assert fields[0] != fields[1]  # each browser's own CSRF cookie, each its own field
        # A browser's field signs it out; another browser's field does not.
        assert browsers[0].post("/ui/sign-out", data={"csrf": fields[1]}).status_code == 403
        assert browsers[0].post("/ui/sign-out", data={"csrf": fields[0]}).status_code == 303
        assert "Sign out" not in browsers[0].get(url).text
    finally:
        for browser in browsers:
            browser.close()


def test_the_fast_dashboard_path_still_refuses_forged_and_expired_cookies(
    seeded_store: Store, tokens: Tokens
) -> None:
    app = create_app(seeded_store, settings=ApiSettings(version_check_seconds=60, token_cache_seconds=60))
    browser = Client(app, None)
    try:
        sign_in(browser, tokens.full)
        good = browser.cookies[SESSION_COOKIE]
        assert "Sign out" in browser.get("/ui/").text
        assert "Sign out" in browser.get("/ui/").text  # from the caches
        tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
        for value in (tampered, "v1.1.2.3"):
            answer = browser.request(
                "GET", "/ui/", token=None, headers={"Cookie": f"{SESSION_COOKIE}={value}"}
            )
            assert 'action="/ui/sign-in"' in answer.text and "Sign out" not in answer.text
    finally:
        browser.close()


def test_a_verified_session_cookie_still_expires() -> None:
    keys = SessionKeys.create("k")
    sessions = VerifiedSessions(keys)
    digest = token_hash("secret")
    cookie = keys.issue(digest, now=1000)
    assert sessions.token_digest(cookie, now=1001) == digest
    assert sessions.token_digest(cookie, now=1000 + SESSION_SECONDS) == digest  # remembered now
    assert sessions.token_digest(cookie, now=1001 + SESSION_SECONDS) is None
    assert sessions.token_digest(cookie, now=900) is None  # issued in the future
    assert sessions.token_digest(cookie[:-1] + ("A" if cookie[-1] != "A" else "B"), now=1001) is None
    assert sessions.token_digest(None) is None


FLAGS_BODY = {"api_key": "phc_production_key", "distinct_id": "user-7", "person_properties": {"plan": "pro"}}


def remote(client: Client, body: object = FLAGS_BODY, **kw: object) -> httpx.Response:
    return client.post("/flags?v=2", json=body, token=None, **kw)


def test_a_repeated_flags_request_is_answered_from_memory_with_its_own_request_id(client: Client) -> None:
    first = remote(client)
    before = fast_answers(client)
    again = remote(client)
    assert fast_answers(client) == before + 1
    assert again.status_code == 200 and again.headers["content-type"] == first.headers["content-type"]
    a, b = first.json(), again.json()
    assert a.pop("requestId") != b.pop("requestId") and a == b
    legacy = client.post("/flags", json=FLAGS_BODY, token=None)  # another shape: the full way, first
    assert "featureFlags" in legacy.json()


def test_what_the_fast_path_declines_reaches_the_full_path_with_its_body(client: Client) -> None:
    remote(client)
    before = fast_answers(client)
    other = remote(client, {**FLAGS_BODY, "distinct_id": "user-8"})  # not remembered: body replayed
    assert other.status_code == 200 and set(other.json()["flags"]) == {"checkout", "search"}
    wrong = remote(client, {**FLAGS_BODY, "api_key": "phc_production_kex"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "authentication_failed"
    missing = remote(client, {"api_key": "phc_production_key"})
    assert missing.status_code == 400 and missing.json()["attr"] == "distinct_id"
    broken = client.post("/flags?v=2", content=b'{"api_key": ', token=None)
    assert broken.status_code == 400
    huge = client.post("/flags?v=2", content=b"x" * (2 * 1024 * 1024), token=None)
    assert huge.status_code == 413
    cors = remote(client, headers={"Origin": "https://app.example.com"})  # CORS: the middleware's
    assert (
        cors.status_code == 200 and cors.headers["access-control-allow-origin"] == "https://app.example.com"
    )
    assert fast_answers(client) == before


def test_a_gzip_body_is_read_as_the_full_path_reads_it(client: Client) -> None:
    packed = gzip.compress(json.dumps(FLAGS_BODY).encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    first = client.post("/flags?v=2", content=packed, headers=headers, token=None)
    again = client.post("/flags?v=2", content=packed, headers=headers, token=None)
    plain = remote(client)
    assert first.status_code == again.status_code == plain.status_code == 200
    a, b, c = (r.json() for r in (first, again, plain))
    for body in (a, b, c):
        body.pop("requestId")
    assert a == b == c


def test_a_repeated_ofrep_bulk_request_is_answered_from_memory_and_nothing_else_is(client: Client) -> None:
    bulk, key = "/ofrep/v1/evaluate/flags", {"X-API-Key": "phc_production_key"}
    alice = {"context": {"targetingKey": "user-7"}}
    first = client.post(bulk, json=alice, token=None, headers=key)
    before = fast_answers(client)
    again = client.post(bulk, json=alice, token=None, headers=key)
    current = client.post(
        bulk, json=alice, token=None, headers={**key, "If-None-Match": first.headers["etag"]}
    )
    assert fast_answers(client) == before + 2
    assert (again.status_code, again.content, again.headers["etag"]) == (
        200,
        first.content,
        first.headers["etag"],
    )
    assert current.status_code == 304 and current.content == b""
    wrong = client.post(bulk, json=alice, token=None, headers={"X-API-Key": "phc_production_kex"})
    assert wrong.status_code == 401 and wrong.json()["errorCode"] == "GENERAL"
    two = client.post(
        bulk, json=alice, token=None, headers={**key, "Authorization": "Bearer phc_staging_key"}
    )
    assert two.status_code == 401
    odd = client.post(bulk, json={"context": {"targetingKey": 7}}, token=None, headers=key)
    assert odd.status_code == 400 and odd.json()["errorCode"] == "INVALID_CONTEXT"
    staging = client.post(bulk, json=alice, token=None, headers={"X-API-Key": "phc_staging_key"})
    assert staging.status_code == 200 and staging.json()["flags"][0]["metadata"]["flagId"] == 4
    assert fast_answers(client) == before + 2
