"""The dashboard's pages through the real app: what a signed-in person reads on each page,
the filters and pages of the lists, and what each kind of token may see."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

import pytest
from fastapi import FastAPI

from reconciler.api.ops import RESTRICTED_ERROR
from tests.support.apiclient import Client, sign_in
from tests.support.apiseed import APPLIED, FAILED, PENDING, REJECTED, STAGING_CR, Tokens


@pytest.fixture
def browser(app: FastAPI) -> Iterator[Client]:
    """A client with no token that keeps cookies, as a browser does."""
    c = Client(app, None)
    yield c
    c.close()


def signed_in(browser: Client, token: str) -> Client:
    assert sign_in(browser, token).status_code == 303
    return browser


def text(page: str) -> str:
    """A page's words without its markup, spaces folded."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", page)))


def test_overview_shows_sync_status_counts_and_rejected_rules(browser: Client, tokens: Tokens) -> None:
    page = signed_in(browser, tokens.full).get("/ui/")
    assert page.status_code == 200
    words = text(page.text)
    assert "Sync status: OutOfSync" in words
    assert "fetch failed: timeout" in words and "The last pass did not get to the branch's head" in words
    assert "1 pending" in words and "1 failed" in words and "1 approved, waiting" in words
    assert "Rule changes rejected: 0" in words
    assert "Signed in as ada" in words


def test_pull_requests_list_open_ones_with_their_live_change_requests(
    browser: Client, tokens: Tokens
) -> None:
    signed_in(browser, tokens.full)
    listing = text(browser.get("/ui/pulls").text)
    assert "#14" in listing and PENDING.name in listing
    assert "#12" not in listing  # its change request landed: no longer open
    page = browser.get("/ui/pulls/14")
    words = text(page.text)
    assert page.status_code == 200 and "Live change requests" in words
    assert "ada approved counts" in words
    assert browser.get("/ui/pulls/12").status_code == 200  # a merged one still has its page
    assert "Landed or closed" in text(browser.get("/ui/pulls/12").text)
    assert browser.get("/ui/pulls/999").status_code == 404
    assert browser.get("/ui/pulls/99999999999999").status_code == 404
    assert browser.get("/ui/pulls/abc").status_code == 404


def test_change_request_page_has_votes_snapshot_diff_events_and_links(
    browser: Client, tokens: Tokens
) -> None:
    page = signed_in(browser, tokens.full).get(f"/ui/changes/{APPLIED.id}")
    words = text(page.text)
    assert "grace approved counts" in words and "does not count: self-approval" in words
    assert "&#34;quorum&#34;: 1" in page.text  # the policy snapshot
    assert re.search(r'class="del">-\s+&#34;rollout_percentage&#34;: 10.0', page.text)
    assert re.search(r'class="add">\+\s+&#34;rollout_percentage&#34;: 50.0', page.text)
    assert "change_request.applied" in words
    assert f'href="https://github.com/acme/flags/commit/{APPLIED.commit}"' in page.text
    assert 'href="https://github.com/acme/flags/pull/12"' in page.text
    failed = text(browser.get(f"/ui/changes/{FAILED.id}").text)
    assert "Why it did not apply" in failed and "Flag version mismatch: expected 1, got 2" in failed
    assert browser.get("/ui/changes/not-a-uuid").status_code == 404
    assert browser.get("/ui/changes/00000000-0000-0000-0000-000000000000").status_code == 404


def test_flag_page_shows_state_and_every_version_with_its_change(browser: Client, tokens: Tokens) -> None:
    page = signed_in(browser, tokens.full).get("/ui/flags/production/checkout")
    words = text(page.text)
    assert "Now: active, version 2" in words and "everyone: 50.0% rollout" in words
    assert "2 versions, newest first" in words
    assert f'<a href="/ui/changes/{APPLIED.id}">{APPLIED.name}</a>' in page.text
    assert "approved by grace" in words
    assert "Not made by a change request" in words
    assert browser.get("/ui/flags/production/nothing").status_code == 404
    listing = text(browser.get("/ui/flags/production").text)
    assert "3 flags in Production" in listing and "deleted" in listing and "inactive" in listing


def test_rules_page_shows_policies_members_and_a_verified_chain(browser: Client, tokens: Tokens) -> None:
    words = text(signed_in(browser, tokens.full).get("/ui/rules").text)
    assert "prod-ramps" in words and "staging-any" in words
    assert "Members" in words and "linus" in words
    assert "Chain: verified intact (3 events checked)" in words
    assert "Rule changes not in force" in words


def test_change_list_filters_and_pages(browser: Client, tokens: Tokens) -> None:
    signed_in(browser, tokens.full)
    everything = text(browser.get("/ui/changes").text)
    assert "5 change requests" in everything
    assert f"{REJECTED.name}" in text(browser.get("/ui/changes", params={"state": "rejected"}).text)
    staging = text(browser.get("/ui/changes", params={"environment": "staging"}).text)
    assert "1 change requests" in staging and STAGING_CR.name in staging
    by_flag = text(browser.get("/ui/changes", params={"flag": "search"}).text)
    assert "1 change requests" in by_flag and PENDING.name in by_flag
    by_requester = text(browser.get("/ui/changes", params={"requester": "linus"}).text)
    assert "2 change requests" in by_requester
    in_time = text(browser.get("/ui/changes", params={"since": "2026-03-01", "until": "2026-03-01"}).text)
    assert "5 change requests" in in_time
    later = text(browser.get("/ui/changes", params={"since": "2026-03-02"}).text)
    assert "No change request matches" in later
    for bad in (
        {"state": "nope"},
        {"since": "yesterday"},
        {"page": "0"},
        {"page": "9" * 30},
        {"flag": "x" * 401},
    ):
        answer = browser.get("/ui/changes", params=bad)
        assert answer.status_code == 400, bad
        assert "<" not in text(answer.text)


def test_bearer_header_works_without_a_session(app: FastAPI, tokens: Tokens) -> None:
    proxy = Client(app, tokens.full)
    try:
        page = proxy.get("/ui/changes")
        assert page.status_code == 200 and APPLIED.name in page.text
        assert 'action="/ui/sign-out"' not in page.text  # nothing to sign out of
        assert proxy.get("/ui/", token="rcn_nonsense").status_code == 401
    finally:
        proxy.close()


def test_scopes_apply_as_in_the_api(browser: Client, tokens: Tokens) -> None:
    signed_in(browser, tokens.flags)
    refused = browser.get("/ui/changes")
    assert refused.status_code == 403 and "approvals:read" in refused.text
    assert browser.get("/ui/pulls").status_code == 403
    assert browser.get("/ui/flags/production/checkout").status_code == 200
    overview = text(browser.get("/ui/").text)
    assert "Sync status" in overview and "pending" not in overview


def test_a_token_bound_to_one_environment_sees_nothing_of_the_others(browser: Client, tokens: Tokens) -> None:
    signed_in(browser, tokens.production_only)
    for path in (
        "/ui/flags/staging",
        "/ui/flags/staging/checkout",
        f"/ui/changes/{STAGING_CR.id}",
        "/ui/flags/nowhere",
    ):
        answer = browser.get(path)
        assert answer.status_code == 404, path
        assert "staging-ramp" not in answer.text
    forbidden, unknown = browser.get("/ui/flags/staging"), browser.get("/ui/flags/nowhere")
    assert text(forbidden.text).replace("staging", "X") == text(unknown.text).replace("nowhere", "X")
    assert browser.get("/ui/changes", params={"environment": "staging"}).status_code == 404
    for path in ("/ui/", "/ui/changes", "/ui/pulls", "/ui/flags", "/ui/rules", "/ui/pulls/12"):
        page = browser.get(path)
        assert page.status_code == 200, path
        words = text(page.text)
        assert STAGING_CR.name not in words and "Staging" not in words and "staging-any" not in words, path
    overview = text(browser.get("/ui/").text)
    assert RESTRICTED_ERROR in overview and "fetch failed" not in overview
    assert "Rule changes rejected" not in overview
    rules = text(browser.get("/ui/rules").text)
    assert "Chain: verified intact" in rules and "events checked" not in rules
    assert "rules.bootstrapped" not in rules  # a project-wide event
    assert "4 change requests" in text(browser.get("/ui/changes").text)
