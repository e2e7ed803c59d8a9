"""The dashboard under attack: no data without a session, forged and cross-site form posts,
cookie flags, revoked tokens, forged cookies, open redirects, framing, and markup in every
value that Git or the store can carry."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi import FastAPI

from reconciler.api import create_app
from reconciler.api.ui.session import CONTENT_SECURITY_POLICY, SESSION_COOKIE, SessionKeys, safe_next
from reconciler.model.states import SCOPES
from reconciler.store import ChangeRequestRecord, EnvironmentRecord, Position, Store, VoteRecord
from reconciler.store.tokens import token_hash
from tests.support.apiclient import SETTINGS, Client, form_field, sign_in
from tests.support.apiseed import APPLIED, PROD, Tokens, at, change_request, flag

PAGES = (
    *("/ui/", "/ui/pulls", "/ui/changes", f"/ui/changes/{APPLIED.id}", "/ui/flags", "/ui/flags/production"),
    *("/ui/flags/production/checkout", "/ui/rules", "/ui/pulls/12", "/ui/sign-in"),
)


@pytest.fixture
def browser(app: FastAPI) -> Iterator[Client]:
    c = Client(app, None)
    yield c
    c.close()


def test_without_a_session_the_overview_is_the_sign_in_form_and_nothing_else(browser: Client) -> None:
    page = browser.get("/ui/")
    assert page.status_code == 200 and 'action="/ui/sign-in"' in page.text
    for secret in ("OutOfSync", "fetch failed", "ramp-checkout", "checkout", "grace", "Pull requests"):
        assert secret not in page.text
    other = browser.get("/ui/changes?state=failed", follow_redirects=False)
    assert other.status_code == 303
    assert other.headers["location"] == "/ui/sign-in?next=%2Fui%2Fchanges%3Fstate%3Dfailed"
    assert "ramp" not in other.text


def test_signing_in_sets_a_strict_http_only_cookie_that_is_not_the_token(
    browser: Client, tokens: Tokens
) -> None:
    answer = sign_in(browser, tokens.full, "/ui/flags")
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/flags"
    cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/ui" in flags
    assert "secure" not in flags  # plain http: a Secure cookie would never come back
    value = browser.cookies[SESSION_COOKIE]
    assert tokens.full not in value and tokens.full[4:] not in value
    assert browser.get("/api/environments/1/feature_flags/", token=value).status_code == 401
    assert browser.get("/ui/flags").status_code == 200


def test_over_https_the_cookies_are_secure(app: FastAPI, tokens: Tokens) -> None:
    browser = Client(app, None, base_url="https://testserver")
    try:
        answer = sign_in(browser, tokens.full)
        cookies = answer.headers.get_list("set-cookie")
        assert cookies and all("secure" in [p.strip().lower() for p in c.split(";")] for c in cookies)
    finally:
        browser.close()


def test_a_wrong_or_revoked_token_does_not_sign_in(browser: Client, tokens: Tokens) -> None:
    for token in (tokens.revoked, "rcn_made_up", "", "x" * 5000):
        answer = sign_in(browser, token)
        assert answer.status_code in {400, 401}, token[:10]
        assert SESSION_COOKIE not in browser.cookies
        assert "ramp-checkout" not in answer.text


def test_form_posts_from_elsewhere_are_refused(browser: Client, tokens: Tokens) -> None:
    form = browser.get("/ui/sign-in")
    field = form_field(form)
    attempts = [
        ({"token": tokens.full}, {}),  # no field
        ({"token": tokens.full, "csrf": "forged"}, {}),
        ({"token": tokens.full, "csrf": field}, {"Origin": "https://evil.example"}),
        ({"token": tokens.full, "csrf": field}, {"Origin": "null"}),
        ({"token": tokens.full, "csrf": field}, {"Sec-Fetch-Site": "cross-site"}),
    ]
    for data, headers in attempts:
        answer = browser.post("/ui/sign-in", data=data, headers=headers)
        assert answer.status_code == 403, (data, headers)
        assert SESSION_COOKIE not in browser.cookies
    other = Client(browser.app, None)  # another browser's field does not fit this one's cookie
    try:
        assert other.post("/ui/sign-in", data={"token": tokens.full, "csrf": field}).status_code == 403
    finally:
        other.close()
    ok = browser.post(
        "/ui/sign-in", data={"token": tokens.full, "csrf": field}, headers={"Origin": "http://testserver"}
    )
    assert ok.status_code == 303


def test_sign_out_needs_the_form_and_ends_the_session(browser: Client, tokens: Tokens) -> None:
    sign_in(browser, tokens.full)
    assert browser.post("/ui/sign-out", data={}).status_code == 403
    assert (
        browser.post("/ui/sign-out", data={"csrf": "x"}, headers={"Sec-Fetch-Site": "cross-site"}).status_code
        == 403
    )
    page = browser.get("/ui/changes")
    assert page.status_code == 200
    answer = browser.post("/ui/sign-out", data={"csrf": form_field(page)})
    assert answer.status_code == 303 and SESSION_COOKIE not in browser.cookies
    assert browser.get("/ui/changes", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("cache_seconds", [0, 0.3])
def test_revoking_the_token_ends_its_sessions(
    fresh_store: tuple[Store, Tokens], cache_seconds: float
) -> None:
    """At once without a token cache; with one, once the cached token ages out, even for a
    page answered from the rendered-page cache."""
    store = fresh_store[0]
    secret, record = store.create_token("ada", SCOPES)
    settings = dataclasses.replace(SETTINGS, token_cache_seconds=cache_seconds)
    browser = Client(create_app(store, settings=settings), None)
    try:
        sign_in(browser, secret)
        assert browser.get("/ui/changes").status_code == 200
        assert browser.get("/ui/changes").status_code == 200  # now from the page cache
        store.revoke_token(str(record.id))
        time.sleep(cache_seconds + 0.05)
        ended = browser.get("/ui/changes")
        assert ended.status_code == 401 and "Your session has ended" in ended.text
        assert "ramp-checkout" not in ended.text
        assert SESSION_COOKIE not in browser.cookies
    finally:
        browser.close()


def test_forged_tampered_and_foreign_cookies_are_no_session(
    app: FastAPI, browser: Client, tokens: Tokens
) -> None:
    foreign = SessionKeys.create("another server's key").issue(token_hash(tokens.full))
    genuine_keys = SessionKeys.create(None)
    expired = genuine_keys.issue(token_hash(tokens.full), now=0)
    sign_in(browser, tokens.full)
    good = browser.cookies[SESSION_COOKIE]
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    other_token = good.split(".")
    other_token[2] = token_hash(tokens.production_only)
    for value in (foreign, expired, tampered, ".".join(other_token), "v1.1.2.3", "x" * 300, tokens.full):
        c = Client(app, None)
        try:
            c.cookies.set(SESSION_COOKIE, value, domain="testserver.local", path="/ui")
            answer = c.request("GET", "/ui/", token=None, headers={"Cookie": f"{SESSION_COOKIE}={value}"})
            assert answer.status_code == 200 and 'action="/ui/sign-in"' in answer.text, value[:20]
            assert "OutOfSync" not in answer.text
        finally:
            c.close()


def test_the_session_key_can_be_shared_between_processes(seeded_store: Store, tokens: Tokens) -> None:
    shared = dataclasses.replace(SETTINGS, session_secret="one key for every replica")
    first, second = create_app(seeded_store, settings=shared), create_app(seeded_store, settings=shared)
    one, two = Client(first, None), Client(second, None)
    try:
        sign_in(one, tokens.full)
        cookie = one.cookies[SESSION_COOKIE]
        answer = two.request(
            "GET", "/ui/changes", token=None, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}
        )
        assert answer.status_code == 200 and "ramp-checkout" in answer.text
    finally:
        one.close()
        two.close()


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/ui/",
        "https://evil.example/ui/",
        "/\\evil.example",
        "/ui/\\evil",
        "/ui/../api/environments/1/",
        "javascript:alert(1)",
        "/ui/%0d%0aSet-Cookie:x=y",
        " /ui/",
        "/ui/\tx",
        "/api/environments/1/change_requests/",
    ],
)
def test_next_never_leaves_the_dashboard(browser: Client, tokens: Tokens, target: str) -> None:
    answer = sign_in(browser, tokens.full, target)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/ui/") and not location.startswith("//") and "evil" not in location
    assert safe_next(target) in {"/ui/", target}


def test_every_page_refuses_framing_and_scripts(browser: Client, tokens: Tokens) -> None:
    sign_in(browser, tokens.full)
    for path in PAGES:
        page = browser.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert (
            "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
            and "script-src" not in CONTENT_SECURITY_POLICY
        )
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["cache-control"] == "no-store"
        assert "<script" not in page.text.lower()
    for path in ("/ui/changes/nope", "/ui/flags/nowhere"):
        assert browser.get(path).headers["x-frame-options"] == "DENY"


HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
HOSTILE_KEY = '"><img src=x onerror=alert(4)>'


def test_markup_in_any_value_is_shown_as_text(store: Store) -> None:
    """Keys, logins, descriptions, errors, commit data and links from Git or the store, each
    holding markup: every page shows them as text, and no `javascript:` link is made."""
    hostile_cr = change_request(
        "hostile",
        5,
        description=HOSTILE,
        created_by_login=HOSTILE,
        resource_id=HOSTILE,
        state="failed",
        apply_error=HOSTILE,
        votes=(VoteRecord(login=HOSTILE, decision="approved", reason=HOSTILE, ignored_reason=HOSTILE),),
        policy_snapshot={"note": HOSTILE},
        pull_request_number=77,
        pull_request_url="javascript:alert(3)",
        commit="abc",
    )
    live = change_request(
        "hostile-live",
        6,
        pull_request_number=78,
        votes=(VoteRecord(login=HOSTILE, decision="approved", counted=False, ignored_reason=HOSTILE),),
        still_to_approve=[
            {"policy": HOSTILE, "quorum": 2, "approvals": 0, "needed": 2, "can_approve": [HOSTILE, "x"]},
            {"policy": "broken", "needed": HOSTILE, "can_approve": HOSTILE},  # not the stored shape
        ],
    )
    with store.transaction() as tx:
        tx.upsert_change_request(live)
        tx.replace_environments([EnvironmentRecord(PROD, "production", HOSTILE, "phc_key")])
        named = {"name": HOSTILE}
        tx.put_flag_version(PROD, flag(1, "xss", 10, tags=[HOSTILE]).model_copy(update=named), at=at(1))
        tx.put_flag_version(
            PROD,
            flag(1, "xss", 20, version=2).model_copy(update=named),
            at=at(2),
            change_request_id=hostile_cr.id,
        )
        tx.put_flag_version(PROD, flag(2, HOSTILE_KEY, 10), at=at(1))
        tx.upsert_change_request(hostile_cr)
        tx.append_audit(
            "rules.change_rejected",
            object_type="rules",
            object_id=HOSTILE,
            at=at(3),
            actor=HOSTILE,
            commit="abc",
            data={"files": [HOSTILE], "reason": HOSTILE, "message": HOSTILE},
        )
        tx.set_position(Position(sync_status="OutOfSync", last_error=HOSTILE, last_error_at=at(4)))
    secret, _ = store.create_token("ada", SCOPES)
    app = create_app(store, settings=SETTINGS, clock=lambda: at(10))  # the live one is not expired
    browser = Client(app, None)
    try:
        sign_in(browser, secret)
        paths = ["/ui/", "/ui/pulls", "/ui/pulls/77", "/ui/changes", f"/ui/changes/{hostile_cr.id}"]
        paths += ["/ui/pulls/78", f"/ui/changes/{live.id}", f"/ui/pulls?waiting_on={quote(HOSTILE)}"]
        paths += ["/ui/flags", "/ui/flags/production", "/ui/flags/production/xss", "/ui/rules"]
        paths += [f"/ui/changes?requester={HOSTILE}", f"/ui/pulls?waiting_on={HOSTILE}"]
        paths += [f"/ui/flags/production/{quote(HOSTILE_KEY, safe='')}"]
        for path in paths:
            page = browser.get(path)
            assert page.status_code == 200, path
            body = page.text.lower()
            assert "<script" not in body and "<img" not in body and "javascript:" not in body, path
        shown = browser.get(f"/ui/changes/{hostile_cr.id}").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
        still = browser.get("/ui/pulls/78").text
        assert "Policy <strong>&lt;script&gt;alert(1)&lt;/script&gt;" in still and "2 more needed" in still
    finally:
        browser.close()


def test_a_change_request_without_an_environment_shows_only_to_unrestricted_tokens(store: Store) -> None:
    lost: ChangeRequestRecord = change_request(
        "lost", 1, environment_id=None, environment_key="gone", state="failed"
    )
    with store.transaction() as tx:
        tx.replace_environments([EnvironmentRecord(PROD, "production", "Production", "phc_key")])
        tx.upsert_change_request(lost)
    full, _ = store.create_token("ada", SCOPES)
    bound, _ = store.create_token("ada", SCOPES, environment_ids=(PROD,))
    app = create_app(store, settings=SETTINGS)
    everyone, restricted = Client(app, full), Client(app, bound)
    try:
        assert everyone.get(f"/ui/changes/{lost.id}").status_code == 200
        assert restricted.get(f"/ui/changes/{lost.id}").status_code == 404
        assert "lost" not in restricted.get("/ui/changes").text
    finally:
        everyone.close()
        restricted.close()
