"""How the GitHub client survives outages and rate limits, and how it fails when it must.

Time is the fake's clock: the client sleeps only through the injected `sleep`, so the tests
see every wait it chose and never wait for real.
"""

from __future__ import annotations

import re

import httpx
import pytest

from reconciler.errors import ReconcilerError
from reconciler.github import (
    GitHubAuthError,
    GitHubClient,
    GitHubError,
    GitHubForbidden,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubUnavailable,
    GitHubValidation,
)
from reconciler.github.http import RetryPolicy, rate_limit_wait
from tests.support.fakegithub import FakeGitHub

HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
MARKER = "<!-- reconciler:plan -->"


@pytest.fixture
def gh() -> FakeGitHub:
    fake = FakeGitHub("acme/flags")
    fake.add_pull(7, user="alice")
    fake.add_review(7, "bob", "APPROVED", commit_id=HEAD)
    return fake


def test_a_429_waits_exactly_retry_after_then_succeeds(gh: FakeGitHub) -> None:
    gh.rate_limit_429(retry_after=7)
    reviews = gh.client().list_reviews(7)
    assert [r.user_login for r in reviews] == ["bob"]
    assert gh.clock.sleeps == [7.0]
    assert [r.status for r in gh.requests] == [429, 200]


def test_a_502_twice_then_success_backs_off_exponentially(gh: FakeGitHub) -> None:
    gh.fail(502, times=2)
    assert gh.client().get_pull(7).user_login == "alice"
    assert gh.clock.sleeps == [0.5, 1.0]  # base 1 s doubled, jitter at its low end
    assert [r.status for r in gh.requests] == [502, 502, 200]


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_cap=30.0)
    assert [policy.backoff(n, 0.0) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    assert policy.backoff(10, 0.999) == pytest.approx(29.985)


def test_network_errors_are_retried(gh: FakeGitHub) -> None:
    gh.fail_network(times=2)
    assert gh.client().get_pull(7).number == 7
    assert len(gh.clock.sleeps) == 2
    assert gh.count("pulls.get") == 3


def test_an_outage_that_outlasts_the_retries_is_temporary(gh: FakeGitHub) -> None:
    gh.fail(503, times=10)
    with pytest.raises(GitHubUnavailable, match="503") as raised:
        gh.client(max_retries=3).get_pull(7)
    assert raised.value.temporary is True
    assert gh.count("pulls.get") == 4  # the first try and three retries
    assert gh.clock.sleeps == [0.5, 1.0, 2.0]


def test_a_network_outage_names_the_api_root(gh: FakeGitHub) -> None:
    gh.fail_network(times=10)
    with pytest.raises(
        GitHubUnavailable, match=re.escape("could not reach GitHub at https://api.github.com")
    ):
        gh.client(max_retries=1).get_pull(7)


def test_a_401_stops_at_once_and_names_the_token_variable(gh: FakeGitHub) -> None:
    with pytest.raises(GitHubAuthError) as raised:
        gh.client(token="wrong").list_reviews(7)
    message = str(raised.value)
    assert "401" in message and "Bad credentials" in message
    assert "GITHUB_TOKEN" in message and "invalid or expired" in message
    assert raised.value.temporary is False
    assert gh.count() == 1 and gh.clock.sleeps == []


def test_a_401_without_a_token_says_to_set_one(gh: FakeGitHub) -> None:
    with pytest.raises(GitHubAuthError, match="set GITHUB_TOKEN"):
        gh.client(token=None).get_pull(7)
    assert "authorization" not in gh.requests[0].headers


def test_403_rate_limit_waits_until_the_reset(gh: FakeGitHub) -> None:
    gh.rate_limit_403(reset_in=42)
    assert gh.client().get_pull(7).number == 7
    assert gh.clock.sleeps == [42.0]
    assert [r.status for r in gh.requests] == [403, 200]


def test_a_rate_limit_reset_too_far_away_raises_instead_of_hanging(gh: FakeGitHub) -> None:
    gh.rate_limit_403(reset_in=3600)
    with pytest.raises(GitHubRateLimited, match="resets in 3600 s") as raised:
        gh.client(max_rate_limit_wait=900).get_pull(7)
    assert raised.value.temporary is True
    assert raised.value.retry_at == gh.clock.now + 3600
    assert gh.clock.sleeps == [] and gh.count() == 1


def test_a_rate_limit_that_keeps_coming_back_gives_up(gh: FakeGitHub) -> None:
    for _ in range(10):
        gh.rate_limit_429(retry_after=5)
    with pytest.raises(GitHubRateLimited):
        gh.client(max_retries=2).get_pull(7)
    assert gh.clock.sleeps == [5.0, 5.0]
    assert gh.count() == 3


def test_a_secondary_limit_without_headers_waits_a_minute(gh: FakeGitHub) -> None:
    gh.fail(403, message="You have exceeded a secondary rate limit.")
    assert gh.client().get_pull(7).number == 7
    assert gh.clock.sleeps == [60.0]


def test_rate_limit_wait_reads_an_http_date() -> None:
    response = httpx.Response(429, headers={"Retry-After": "Tue, 14 Nov 2023 22:13:40 GMT"})
    assert rate_limit_wait(response, now=1_700_000_000.0) == 20.0


def test_a_403_for_a_missing_permission_is_not_retried(gh: FakeGitHub) -> None:
    gh.fail(
        403,
        message="Resource not accessible by integration",
        headers={"X-Accepted-GitHub-Permissions": "statuses=write"},
    )
    with pytest.raises(GitHubForbidden) as raised:
        gh.client().create_status(HEAD, "success", "2/2 approvals")
    assert "statuses=write permission on acme/flags" in str(raised.value)
    assert "Resource not accessible by integration" in str(raised.value)
    assert gh.clock.sleeps == [] and raised.value.temporary is False


def test_a_403_without_github_s_hint_names_the_permission_the_call_needs(gh: FakeGitHub) -> None:
    gh.fail(403, message="Resource not accessible by integration", endpoint="issues.create-comment")
    with pytest.raises(GitHubForbidden, match="`pull-requests: write`"):
        gh.client().upsert_comment(7, "plan", MARKER)


def test_404_is_typed_and_says_what_to_check(gh: FakeGitHub) -> None:
    with pytest.raises(GitHubNotFound) as raised:
        gh.client().get_pull(404)
    assert "GET /repos/acme/flags/pulls/404" in str(raised.value)
    assert "check that acme/flags exists" in str(raised.value)
    assert raised.value.status == 404 and raised.value.temporary is False


def test_422_carries_github_s_message(gh: FakeGitHub) -> None:
    gh.fail(422, message="Validation Failed")
    with pytest.raises(GitHubValidation, match="Validation Failed"):
        gh.client().create_status(HEAD, "success", "ok")


def test_422_details_name_what_github_refused(gh: FakeGitHub) -> None:
    comment = gh.add_comment(7, f"{MARKER}\nold")
    session = gh.client()._session  # past comment_body, which would have cut the text
    with pytest.raises(GitHubValidation, match="Body is too long") as raised:
        session.request(
            "PATCH",
            f"/repos/acme/flags/issues/comments/{comment['id']}",
            json={"body": "x" * 70_000},
            permission="test",
        )
    assert raised.value.errors[0]["field"] == "body"


def test_a_failed_comment_post_is_not_resent_so_it_cannot_duplicate(gh: FakeGitHub) -> None:
    gh.fail(502, endpoint="issues.create-comment")
    client = gh.client()
    with pytest.raises(GitHubUnavailable):
        client.upsert_comment(7, "plan", MARKER)
    assert gh.count("issues.create-comment") == 1
    client.upsert_comment(7, "plan", MARKER)  # the next pass tries again
    assert len(gh.comments[7]) == 1


def test_a_comment_post_that_never_left_is_resent(gh: FakeGitHub) -> None:
    gh.fail_network(endpoint="issues.create-comment")
    gh.client().upsert_comment(7, "plan", MARKER)
    assert len(gh.comments[7]) == 1 and gh.count("issues.create-comment") == 2


def test_every_github_error_is_a_reconciler_error() -> None:
    for kind in (GitHubAuthError, GitHubForbidden, GitHubNotFound, GitHubUnavailable):
        assert issubclass(kind, GitHubError) and issubclass(kind, ReconcilerError)
    assert issubclass(GitHubRateLimited, GitHubError) and issubclass(GitHubValidation, GitHubError)


def test_a_web_page_instead_of_json_is_a_clear_error() -> None:
    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, text="<html>Sign in to the corporate proxy</html>", headers={"Content-Type": "text/html"}
        )

    client = GitHubClient("acme/flags", token="t", transport=httpx.MockTransport(proxy))
    with pytest.raises(GitHubUnavailable, match=r"not JSON \(text/html\).*GITHUB_API_URL"):
        client.get_pull(7)
    with pytest.raises(GitHubUnavailable, match="not JSON"):
        client.list_reviews(7)
