"""The fake GitHub answers like GitHub, so tests built on it mean what they say.

Talked to with plain httpx (not our client) to check the fake itself: its pagination, its
payload shapes (GitHub's own examples, only the scenario's fields changed), its auth and faults.
"""

from __future__ import annotations

import doctest
import json

import httpx
import pytest

from reconciler.github.webhooks import verify_signature
from tests.support.fakegithub import WEBHOOKS, FakeGitHub, delivery, fixture

API = "https://api.github.com/repos/acme/flags"


@pytest.fixture
def gh() -> FakeGitHub:
    fake = FakeGitHub("acme/flags", token=None)
    fake.add_pull(7, user="alice")
    return fake


def http(gh: FakeGitHub) -> httpx.Client:
    return httpx.Client(transport=gh.transport())


def test_lists_page_like_github(gh: FakeGitHub) -> None:
    for index in range(65):
        gh.add_file(7, f"f{index}")
    with http(gh) as client:
        first = client.get(f"{API}/pulls/7/files")
        assert len(first.json()) == 30  # GitHub's default page size
        assert set(first.links) == {"next", "last"}
        assert httpx.URL(first.links["last"]["url"]).params["page"] == "3"
        last = client.get(first.links["last"]["url"])
        assert [f["filename"] for f in last.json()] == ["f60", "f61", "f62", "f63", "f64"]
        assert set(last.links) == {"first", "prev"}
        capped = client.get(f"{API}/pulls/7/files", params={"per_page": 500})
        assert len(capped.json()) == 65 and "Link" not in capped.headers  # capped at 100


def test_payloads_are_github_s_examples_with_the_scenario_applied(gh: FakeGitHub) -> None:
    gh.add_review(7, "bob", "CHANGES_REQUESTED", commit_id="c" * 40, review_id=55)
    with http(gh) as client:
        pull = client.get(f"{API}/pulls/7").json()
        review = client.get(f"{API}/pulls/7/reviews").json()[0]
    upstream = fixture("pulls.get.200.json")
    assert set(pull) == set(upstream)
    assert pull["user"]["login"] == "alice" and pull["number"] == 7
    assert pull["requested_teams"] == upstream["requested_teams"]  # untouched fields stay as upstream
    assert set(review) == set(fixture("pulls.list-reviews.200.json")[0])
    assert (review["id"], review["user"]["login"], review["state"], review["commit_id"]) == (
        55,
        "bob",
        "CHANGES_REQUESTED",
        "c" * 40,
    )


def test_commit_pulls_use_the_simple_pull_request_shape(gh: FakeGitHub) -> None:
    gh.link_commit("m" * 40, 7)
    with http(gh) as client:
        (item,) = client.get(f"{API}/commits/{'m' * 40}/pulls").json()
    assert set(item) == set(fixture("repos.list-pull-requests-associated-with-commit.200.json")[0])
    assert item["number"] == 7 and item["user"]["login"] == "alice"


def test_a_token_is_required_when_the_fake_has_one() -> None:
    gh = FakeGitHub("acme/flags", token="t")
    gh.add_pull(7)
    with http(gh) as client:
        assert client.get(f"{API}/pulls/7").status_code == 401
        assert client.get(f"{API}/pulls/7", headers={"Authorization": "Bearer t"}).status_code == 200


def test_faults_come_first_in_order_and_only_where_aimed(gh: FakeGitHub) -> None:
    gh.fail(500, endpoint="pulls.list-reviews")
    gh.rate_limit_429(retry_after=3)
    with http(gh) as client:
        limited = client.get(f"{API}/pulls/7")
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
        assert client.get(f"{API}/pulls/7/reviews").status_code == 500
        assert client.get(f"{API}/pulls/7/reviews").status_code == 200
    assert [(r.endpoint, r.status) for r in gh.requests] == [
        ("pulls.get", 429),
        ("pulls.list-reviews", 500),
        ("pulls.list-reviews", 200),
    ]


def test_unknown_routes_and_pull_requests_are_404(gh: FakeGitHub) -> None:
    with http(gh) as client:
        assert client.get(f"{API}/pulls/8").status_code == 404
        assert client.get("https://api.github.com/repos/other/repo/pulls/7").status_code == 404
        assert client.delete(f"{API}/pulls/7").status_code == 404
    assert gh.count("unknown") == 2


def test_comments_are_created_listed_and_edited(gh: FakeGitHub) -> None:
    with http(gh) as client:
        created = client.post(f"{API}/issues/7/comments", json={"body": "hi"})
        assert created.status_code == 201
        comment_id = created.json()["id"]
        assert client.patch(f"{API}/issues/comments/{comment_id}", json={"body": "edited"}).status_code == 200
        listed = client.get(f"{API}/issues/7/comments").json()
        assert [c["body"] for c in listed] == ["edited"]
        too_long = client.post(f"{API}/issues/7/comments", json={"body": "x" * 65_537})
        assert too_long.status_code == 422


def test_deliveries_are_signed_like_github_s() -> None:
    body, headers = delivery("ping", "ping.json", b"s3cret")
    assert body == (WEBHOOKS / "ping.json").read_bytes()
    assert verify_signature(b"s3cret", body, headers["X-Hub-Signature-256"])
    assert headers["X-GitHub-Event"] == "ping" and headers["X-GitHub-Delivery"]
    body, headers = delivery("push", {"ref": "refs/heads/main"}, b"s3cret", delivery_id="d-2")
    assert json.loads(body) == {"ref": "refs/heads/main"} and headers["X-GitHub-Delivery"] == "d-2"


def test_the_usage_example_in_the_docstring_works() -> None:
    import tests.support.fakegithub

    result = doctest.testmod(tests.support.fakegithub)
    assert result.attempted >= 10 and result.failed == 0


def test_commit_pulls_lists_merged_pull_requests_only_for_commits_on_the_default_branch(
    gh: FakeGitHub,
) -> None:
    gh.add_pull(8, state="closed", merged=True, base_ref="release", merged_at="2024-05-02T10:00:00Z")
    gh.add_pull(9, state="open", base_ref="release")
    gh.add_pull(10, state="closed", merged=True, merged_at="2024-05-02T11:00:00Z")
    gh.link_commit("r" * 40, 8, 9, branch="release")
    gh.link_commit("m" * 40, 10)
    with http(gh) as client:
        on_release = client.get(f"{API}/commits/{'r' * 40}/pulls").json()
        on_main = client.get(f"{API}/commits/{'m' * 40}/pulls").json()
        closed = client.get(
            f"{API}/pulls", params={"state": "closed", "base": "release", "sort": "updated"}
        ).json()
    assert [p["number"] for p in on_release] == [9]  # documented: open pull requests only
    assert [p["number"] for p in on_main] == [10]
    assert [(p["number"], p["base"]["repo"]["default_branch"]) for p in closed] == [(8, "main")]


@pytest.mark.parametrize(("version", "has_field"), [("2022-11-28", True), ("2026-03-10", False)])
def test_pull_request_objects_answer_as_the_requested_api_version(
    gh: FakeGitHub, version: str, has_field: bool
) -> None:
    gh.link_commit("m" * 40, 7)
    headers = {"X-GitHub-Api-Version": version}
    with http(gh) as client:
        answers = [
            client.get(f"{API}/pulls/7", headers=headers).json(),
            client.get(f"{API}/pulls", headers=headers).json()[0],
            client.get(f"{API}/commits/{'m' * 40}/pulls", headers=headers).json()[0],
        ]
    assert [("merge_commit_sha" in a) for a in answers] == [has_field] * 3
    assert all(a["number"] == 7 for a in answers)
