"""The GitHub client's calls against the fake GitHub serving GitHub's own example payloads."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import httpx
import pytest

from reconciler.errors import ConfigError
from reconciler.github import (
    MAX_COMMENT_CHARS,
    CoAuthor,
    GitHubClient,
    PullRequest,
    parse_co_authors,
)
from tests.support.fakegithub import REST, FakeGitHub

HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
MERGE = "e5bd3914e2e596debea16f433f57875b5b90bcd6"
MARKER = "<!-- reconciler:plan -->"


def test_the_unmodified_fixture_parses_as_github_sent_it() -> None:
    pull = PullRequest.from_api(json.loads((REST / "pulls.get.200.json").read_text()))
    assert pull.number == 1347
    assert pull.state == "open"
    assert pull.merged is False  # upstream's example says so despite merged_at
    assert pull.merged_at == datetime(2011, 1, 26, 19, 1, 12, tzinfo=UTC)
    assert pull.merge_commit_sha == MERGE
    assert (pull.head_sha, pull.base_ref) == ("6dcb09b5b57875f334f61aebed695e2e4193db5e", "master")
    assert (pull.user_login, pull.merged_by, pull.changed_files) == ("octocat", "octocat", 5)
    assert pull.title == "Amazing new feature"


def test_every_request_carries_the_api_headers_and_token(github: FakeGitHub) -> None:
    github.add_pull(7)
    github.client().get_pull(7)
    headers = github.requests[0].headers
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["authorization"] == "Bearer fake-token"
    assert headers["user-agent"].startswith("reconciler/")


def test_get_pull_reads_a_merged_pull_request(github: FakeGitHub) -> None:
    github.add_pull(
        7,
        user="alice",
        state="closed",
        merged=True,
        head_sha=HEAD,
        base_ref="main",
        base_sha="b" * 40,
        merge_commit_sha=MERGE,
        merged_at="2024-05-02T09:30:00Z",
        merged_by="carol",
        title="Ramp checkout",
        created_at="2024-05-01T08:00:00Z",
    )
    pull = github.client().get_pull(7)
    assert pull == PullRequest(
        number=7,
        state="closed",
        merged=True,
        merged_at=datetime(2024, 5, 2, 9, 30, tzinfo=UTC),
        merge_commit_sha=MERGE,
        head_sha=HEAD,
        base_ref="main",
        base_sha="b" * 40,
        user_login="alice",
        html_url="https://github.com/acme/flags/pull/7",
        title="Ramp checkout",
        merged_by="carol",
        changed_files=5,
        created_at=datetime(2024, 5, 1, 8, tzinfo=UTC),
        updated_at=datetime(2024, 5, 2, 9, 30, tzinfo=UTC),
        default_branch="main",
    )


def test_list_open_pulls_reads_every_page_of_open_pull_requests(github: FakeGitHub) -> None:
    for number in range(1, 131):
        github.add_pull(number, state="closed" if number % 10 == 0 else "open", base_ref="main")
    pulls = github.client().list_open_pulls(base="main")
    assert [p.number for p in pulls] == [n for n in range(1, 131) if n % 10]
    assert github.count("pulls.list") == 2
    assert github.requests[0].params["state"] == "open"


def test_pulls_for_commit_lists_every_pull_request_containing_it(github: FakeGitHub) -> None:
    github.add_pull(
        7, user="alice", state="closed", merged=True, merged_at="2024-05-02T09:30:00Z", merge_commit_sha=MERGE
    )
    github.add_pull(8, user="bob")
    github.link_commit(MERGE, 7, 8)
    pulls = github.client().pulls_for_commit(MERGE)
    assert [(p.number, p.user_login, p.merged) for p in pulls] == [(7, "alice", True), (8, "bob", False)]
    assert github.requests[0].path == f"/repos/acme/flags/commits/{MERGE}/pulls"
    assert github.client().pulls_for_commit("f" * 40) == []


def test_list_pull_files_keeps_renames(github: FakeGitHub) -> None:
    github.add_pull(7)
    github.add_file(7, "changes/ramp.yaml", sha="1" * 40)
    github.add_file(7, "changes/new-name.yaml", status="renamed", previous_filename="changes/old.yaml")
    files = github.client().list_pull_files(7)
    assert [(f.filename, f.status, f.previous_filename) for f in files] == [
        ("changes/ramp.yaml", "added", None),
        ("changes/new-name.yaml", "renamed", "changes/old.yaml"),
    ]
    assert files[0].sha == "1" * 40


def test_list_pull_commits_reads_authors_committers_and_co_authors(github: FakeGitHub) -> None:
    github.add_pull(7)
    message = (
        "Ramp checkout to 50%\n\nLonger text.\n\n"
        "Co-authored-by: Bob Reviewer <bob@example.com>\n"
        "co-authored-by: Dee <12+dee@users.noreply.github.com>\n"
    )
    github.add_commit(7, "c1" * 20, login="alice", email="alice@example.com", name="Alice", message=message)
    github.add_commit(7, "c2" * 20, login=None, email="ghost@example.com", committer_login=None)
    first, second = github.client().list_pull_commits(7)
    assert (first.sha, first.author_login, first.author_email, first.author_name) == (
        "c1" * 20,
        "alice",
        "alice@example.com",
        "Alice",
    )
    assert (first.committer_login, first.committer_email) == ("web-flow", "noreply@github.com")
    assert first.co_authors == (
        CoAuthor("Bob Reviewer", "bob@example.com"),
        CoAuthor("Dee", "12+dee@users.noreply.github.com"),
    )
    assert (second.author_login, second.author_email, second.committer_login) == (
        None,
        "ghost@example.com",
        None,
    )
    assert second.co_authors == ()


def test_co_author_trailers_are_deduplicated_by_email() -> None:
    message = (
        "x\n\nCo-authored-by: A <a@x.org>\nCo-Authored-By: A again <A@X.org>\nNot-a-trailer: B <b@x.org>"
    )
    assert parse_co_authors(message) == (CoAuthor("A", "a@x.org"),)


def test_co_authors_are_read_from_commit_trailers() -> None:
    message = (
        "Ramp checkout to 50%\n\nWhy: the canary was clean.\n\n"
        "Co-authored-by: Bob Builder <Bob@Example.com>\nco-authored-by: erin <erin@example.com>\n"
    )
    assert [a.email.lower() for a in parse_co_authors(message)] == ["bob@example.com", "erin@example.com"]
    assert parse_co_authors("No trailers here") == ()


def test_list_reviews_reads_every_state_and_keeps_the_raw_review(github: FakeGitHub) -> None:
    github.add_pull(7)
    github.add_review(
        7, "bob", "CHANGES_REQUESTED", commit_id="a" * 40, review_id=1, submitted_at="2024-05-01T10:00:00Z"
    )
    github.add_review(7, "bob", "APPROVED", commit_id=HEAD, review_id=2, submitted_at="2024-05-01T11:00:00Z")
    github.add_review(7, "carol", "PENDING", commit_id=HEAD, review_id=3)
    github.add_review(7, None, "DISMISSED", commit_id=HEAD, review_id=4)
    reviews = github.client().list_reviews(7)
    assert [(r.id, r.user_login, r.state) for r in reviews] == [
        (1, "bob", "CHANGES_REQUESTED"),
        (2, "bob", "APPROVED"),
        (3, "carol", "PENDING"),
        (4, None, "DISMISSED"),
    ]
    assert reviews[1].submitted_at == datetime(2024, 5, 1, 11, tzinfo=UTC)
    assert reviews[2].submitted_at is None
    assert reviews[1].raw["author_association"] == "COLLABORATOR"  # the rest of GitHub's object
    second = reviews[1]
    assert (second.id, second.user_login, second.state, second.commit_id, second.raw["submitted_at"]) == (
        2,
        "bob",
        "APPROVED",
        HEAD,
        "2024-05-01T11:00:00Z",
    )


@pytest.mark.parametrize(("count", "pages"), [(0, 1), (100, 1), (101, 2), (250, 3)])
def test_reviews_are_read_one_page_of_100_at_a_time(github: FakeGitHub, count: int, pages: int) -> None:
    github.add_pull(7)
    for index in range(count):
        github.add_review(7, f"user{index}", "APPROVED", commit_id=HEAD, review_id=index + 1)
    reviews = github.client().list_reviews(7)
    assert [r.id for r in reviews] == list(range(1, count + 1))
    assert github.count("pulls.list-reviews") == pages
    assert [r.params.get("page", "1") for r in github.requests] == [str(p) for p in range(1, pages + 1)]
    assert all(r.params["per_page"] == "100" for r in github.requests)


def test_pagination_follows_links_under_an_enterprise_api_root() -> None:
    github = FakeGitHub("acme/flags", base_url="https://ghe.example.com/api/v3")
    github.add_pull(7)
    for index in range(150):
        github.add_file(7, f"changes/{index}.yaml")
    files = github.client().list_pull_files(7)
    assert len(files) == 150
    assert [r.path for r in github.requests] == ["/api/v3/repos/acme/flags/pulls/7/files"] * 2


def test_create_status_posts_the_approvals_context(github: FakeGitHub) -> None:
    status = github.client().create_status(HEAD, "pending", "1/2 approvals · production-rollouts")
    assert (status.state, status.context, status.description) == (
        "pending",
        "reconciler/approvals",
        "1/2 approvals · production-rollouts",
    )
    assert github.requests[0].path == f"/repos/acme/flags/statuses/{HEAD}"
    assert github.requests[0].body == {
        "state": "pending",
        "context": "reconciler/approvals",
        "description": "1/2 approvals · production-rollouts",
    }


def test_create_status_truncates_the_description_to_140_characters(github: FakeGitHub) -> None:
    github.client().create_status(HEAD, "failure", "x" * 300, context="other", target_url="https://ci/1")
    posted = github.statuses[0]
    assert len(posted["description"]) == 140 and posted["description"].endswith("…")
    assert (posted["context"], posted["target_url"]) == ("other", "https://ci/1")


def test_create_status_refuses_a_state_github_does_not_know(github: FakeGitHub) -> None:
    with pytest.raises(ValueError, match="success"):
        github.client().create_status(HEAD, "approved", "x")
    assert github.requests == []


def test_upsert_comment_creates_once_then_edits_in_place(github: FakeGitHub) -> None:
    github.add_pull(7)
    github.add_comment(7, "LGTM", login="bob")
    github.add_comment(7, f"> {MARKER}\n> quoting the old plan", login="bob")
    client = github.client()
    first = client.upsert_comment(7, "plan v1", MARKER)
    second = client.upsert_comment(7, "plan v2", MARKER)
    ours = [c for c in github.comments[7] if c["body"].startswith(MARKER)]
    assert len(ours) == 1 and ours[0]["body"] == f"{MARKER}\nplan v2"
    assert second.id == first.id and second.body == f"{MARKER}\nplan v2"
    assert github.count("issues.create-comment") == 1
    assert github.count("issues.update-comment") == 1
    assert len(github.comments[7]) == 3  # the other two comments untouched


def test_upsert_comment_skips_the_write_when_nothing_changed(github: FakeGitHub) -> None:
    github.add_pull(7)
    client = github.client()
    client.upsert_comment(7, "same plan", MARKER)
    client.upsert_comment(7, "same plan", MARKER)
    assert github.count("issues.create-comment") + github.count("issues.update-comment") == 1


def test_upsert_comment_finds_its_comment_on_a_later_page(github: FakeGitHub) -> None:
    github.add_pull(7)
    for index in range(120):
        github.add_comment(7, f"comment {index}")
    github.add_comment(7, f"{MARKER}\nold plan", login="github-actions[bot]")
    github.client().upsert_comment(7, "new plan", MARKER)
    assert github.comments[7][-1]["body"] == f"{MARKER}\nnew plan"
    assert github.count("issues.list-comments") == 2
    assert github.count("issues.create-comment") == 0


def test_an_over_long_comment_is_cut_to_the_limit_with_a_note(github: FakeGitHub) -> None:
    github.add_pull(7)
    body = "\n".join(f"| row {index} | {'x' * 60} |" for index in range(5000))
    comment = github.client().upsert_comment(7, body, MARKER)
    stored = github.comments[7][0]["body"]
    assert stored == comment.body
    assert len(stored) <= MAX_COMMENT_CHARS
    assert stored.startswith(MARKER)
    kept, note = stored.split("\n\n---\n")
    assert body.startswith(kept.removeprefix(MARKER + "\n"))  # nothing altered before the cut
    assert kept.endswith("|")  # cut at a line end, so the table stays a table
    cut = len(MARKER + "\n" + body) - len(kept)
    assert (
        f"Cut short to fit GitHub's limit of 65,536 characters per comment: the last {cut:,} characters"
        in note
    )


def test_from_env_reads_github_actions_variables(github: FakeGitHub) -> None:
    enterprise = FakeGitHub("acme/override", base_url="https://ghe.example.com/api/v3", token="t0k")
    enterprise.add_pull(3, user="dee")
    env = {
        "GITHUB_TOKEN": "t0k",
        "GITHUB_API_URL": "https://ghe.example.com/api/v3/",
        "GITHUB_REPOSITORY": "acme/override",
    }
    client = GitHubClient.from_env("acme/flags", environ=env, transport=enterprise.transport())
    assert (client.repository, client.base_url) == ("acme/override", "https://ghe.example.com/api/v3")
    assert client.get_pull(3).user_login == "dee"


def test_from_env_defaults_and_empty_values(github: FakeGitHub) -> None:
    client = GitHubClient.from_env("acme/flags", environ={"GITHUB_TOKEN": "", "GITHUB_REPOSITORY": ""})
    assert (client.repository, client.base_url) == ("acme/flags", "https://api.github.com")
    with pytest.raises(ConfigError, match="GITHUB_REPOSITORY"):
        GitHubClient.from_env(None, environ={})
    with pytest.raises(ConfigError, match="owner/name"):
        GitHubClient.from_env("not-a-repo", environ={})


def test_the_token_never_shows_in_repr_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    github = FakeGitHub("acme/flags", token="s3cr3t-t0ken")
    github.fail(502, times=2)
    github.fail(404)
    client = github.client()
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as raised:
        client.get_pull(7)
    assert "s3cr3t-t0ken" not in repr(client)
    assert "s3cr3t-t0ken" not in caplog.text
    assert "s3cr3t-t0ken" not in str(raised.value)
    assert "retry 2 of 4" in caplog.text


def test_the_client_uses_the_transport_it_is_given() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=[])

    with GitHubClient("acme/flags", token=None, transport=httpx.MockTransport(handler)) as client:
        assert client.list_reviews(1) == []
    assert seen == ["https://api.github.com/repos/acme/flags/pulls/1/reviews?per_page=100"]


def test_a_renamed_repository_is_followed_without_leaking_the_token_elsewhere() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("Authorization")))
        if request.url.path == "/repos/acme/old/pulls/1/reviews":
            return httpx.Response(
                301,
                headers={"Location": "https://api.github.com/repositories/9/pulls/1/reviews?per_page=100"},
            )
        if request.url.path == "/repos/acme/old/pulls/2/reviews":
            return httpx.Response(301, headers={"Location": "https://elsewhere.example/pulls/2/reviews"})
        return httpx.Response(200, json=[])

    client = GitHubClient("acme/old", token="t", transport=httpx.MockTransport(handler))
    assert client.list_reviews(1) == []
    assert seen[1] == ("https://api.github.com/repositories/9/pulls/1/reviews?per_page=100", "Bearer t")
    client.list_reviews(2)
    assert seen[-1] == ("https://elsewhere.example/pulls/2/reviews", None)
