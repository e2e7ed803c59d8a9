"""The GitHub approval source when the tracked branch is not the repository's default branch.

GitHub's `GET commits/{sha}/pulls` lists merged pull requests only for commits on the default
branch; for a commit on `release` it lists the open ones alone, and the fake answers the same
way. Each test tracks `release` (taken off the default `main`), merges pull requests into it as
GitHub's three buttons do, and reconciles `--branch release`; the API version the client sends
is either the one it pins or 2026-03-10, whose pull request objects carry no `merge_commit_sha`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.decision.changes import change_request_id
from reconciler.github import GitHubAuthError, http
from reconciler.store import ChangeRequestRecord, Store
from tests.support.ghscenario import GITHUB, MergeMethod, PullRequestScenario
from tests.support.gitutil import GitRepo
from tests.support.people import CAROL
from tests.support.policyrepo import create_flag, ramp
from tests.support.storedata import record_of

RAMP = "changes/ramp-checkout.yaml"
PINNED = http.API_VERSION
LATER = "2026-03-10"  # pull request objects without `merge_commit_sha`


@pytest.fixture(params=[PINNED, LATER])
def api_version(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    version: str = request.param
    monkeypatch.setattr(http, "API_VERSION", version)
    return version


@pytest.fixture
def release(git_repo: GitRepo, api_version: str) -> PullRequestScenario:
    """`release` tracked, `main` the default branch; pull request #1 created `checkout` on it."""
    return PullRequestScenario.create(git_repo, branch="release")


def reconcile(scenario: PullRequestScenario, store: Store) -> Any:
    return scenario.reconcile(store, now=datetime.fromtimestamp(scenario.repo.clock + 3600, tz=UTC))


def votes(cr: ChangeRequestRecord) -> list[tuple[str, str, bool, str | None]]:
    return [(v.login, v.decision, v.counted, v.ignored_reason) for v in cr.votes]


def with_flag(scenario: PullRequestScenario, store: Store, method: MergeMethod) -> None:
    scenario.land_checkout(method)
    reconcile(scenario, store)
    created = record_of(store, "changes/create-checkout.yaml")
    assert (created.state, created.pull_request_number) == ("applied", 1), created.apply_error


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
def test_a_pull_request_merged_into_the_tracked_branch_applies_with_its_votes(
    release: PullRequestScenario, sqlite_store: Store, method: MergeMethod, api_version: str
) -> None:
    with_flag(release, sqlite_store, method)
    release.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    release.push(2, {"notes/why.md": "Because."}, message="Explain the ramp")
    release.review(2, "bob", "APPROVED", commit=release.pulls[2].commits[0])
    landed = release.merge(2, method)
    release.review(2, "carol", "CHANGES_REQUESTED")  # after the merge: must not count
    before = len(release.gh.requests)

    reconcile(release, sqlite_store)

    cr = record_of(sqlite_store, RAMP)
    assert cr.state == "applied", cr.apply_error
    assert votes(cr) == [("bob", "approved", True, None)]
    assert (cr.pull_request_number, cr.applied_by_login, cr.created_by_login) == (2, "carol", "alice")
    assert cr.commit == (landed[0] if method == "rebase" else landed[-1])
    assert sqlite_store.get_flag(1, "checkout").flag.filters.groups[0].rollout_percentage == 50  # type: ignore[union-attr]
    # GitHub's commit listing was asked first, then the closed pull requests into `release`
    listed = [r for r in release.gh.requests[before:] if r.endpoint == "pulls.list"]
    assert listed and all(
        r.params | {"per_page": "100"}
        == {"state": "closed", "base": "release", "sort": "updated", "direction": "desc", "per_page": "100"}
        for r in listed
        if "page" not in r.params
    )
    sent = {r.headers["x-github-api-version"] for r in release.gh.requests}
    assert sent == {api_version}


def test_the_commit_listing_alone_does_not_find_a_pull_request_merged_into_another_branch(
    release: PullRequestScenario,
) -> None:
    release.land_checkout("squash")
    landing = release.repo.head("release")
    with release.gh.client() as client:
        assert client.pulls_for_commit(landing) == []  # as GitHub documents it for non-default branches
        assert [p.number for p in client.iter_closed_pulls("release")] == [1]
        assert list(client.iter_closed_pulls("main")) == []


def test_a_direct_push_to_the_tracked_branch_still_has_no_votes(
    release: PullRequestScenario, sqlite_store: Store
) -> None:
    with_flag(release, sqlite_store, "merge")
    release.push_main({RAMP: ramp("ramp-checkout", "checkout", 50)})
    reconcile(release, sqlite_store)
    cr = record_of(sqlite_store, RAMP)
    assert (cr.state, cr.votes, cr.pull_request_number) == ("failed", (), None)
    assert cr.apply_error == "approval quorum not met at merge: 0 of 1 (production-rollouts)"


def test_a_push_dated_like_a_merge_borrows_no_approval_for_content_nobody_reviewed(
    release: PullRequestScenario, sqlite_store: Store, api_version: str
) -> None:
    """A pusher can set a commit's time to a pull request's merge time: the pull request's
    approvals still count only for the file contents they reviewed."""
    with_flag(release, sqlite_store, "squash")
    release.open(2, {"changes/ramp-a.yaml": ramp("ramp-a", "checkout", 20)})
    release.review(2, "bob", "APPROVED")
    release.merge(2, "squash")
    merged_at = release.repo.clock
    release.repo.write(RAMP, ramp("ramp-checkout", "checkout", 90))
    release.repo.git("add", "-A")
    release.repo.git(
        "commit",
        "-q",
        "-m",
        "Merge pull request #2",  # a message proves nothing
        env={
            "GIT_AUTHOR_NAME": CAROL.identity[0],
            "GIT_AUTHOR_EMAIL": CAROL.identity[1],
            "GIT_AUTHOR_DATE": f"{merged_at} +0000",
            "GIT_COMMITTER_NAME": GITHUB[0],
            "GIT_COMMITTER_EMAIL": GITHUB[1],
            "GIT_COMMITTER_DATE": f"{merged_at} +0000",
        },
    )

    reconcile(release, sqlite_store)

    assert record_of(sqlite_store, "changes/ramp-a.yaml").state == "applied"
    cr = record_of(sqlite_store, RAMP)
    assert cr.state == "failed"
    assert not any(v.counted for v in cr.votes)
    assert sqlite_store.get_flag(1, "checkout").flag.filters.groups[0].rollout_percentage == 20  # type: ignore[union-attr]


def test_the_closed_pull_requests_are_read_only_as_far_back_as_a_landing_commit_needs(
    release: PullRequestScenario, sqlite_store: Store
) -> None:
    """Pull requests last updated more than a day before the oldest new commit cannot have
    landed it: the listing stops there, even for a direct push that matches nothing."""
    for number in range(10, 130):  # older closed pull requests: more than a page of them
        release.gh.add_pull(number, state="closed", base_ref="release", created_at="2020-01-01T00:00:00Z")
    release.open(2, {"changes/create-other.yaml": create_flag("create-other", "other")})
    release.review(2, "bob", "APPROVED")
    release.merge(2, "merge")
    release.repo.clock += 3 * 86400
    with_flag(release, sqlite_store, "merge")  # both pull requests land in one pass
    assert record_of(sqlite_store, "changes/create-other.yaml").state == "applied"

    release.open(3, {RAMP: ramp("ramp-checkout", "checkout", 40)})
    release.review(3, "bob", "APPROVED")
    release.merge(3, "squash")
    release.push_main({"changes/ramp-again.yaml": ramp("ramp-again", "checkout", 70)})
    before = len(release.gh.requests)
    reconcile(release, sqlite_store)
    assert record_of(sqlite_store, RAMP).state == "applied"
    assert record_of(sqlite_store, "changes/ramp-again.yaml").state == "failed"
    assert [r.endpoint for r in release.gh.requests[before:]].count("pulls.list") == 1


@pytest.mark.parametrize("method", ["squash", "rebase"])
def test_on_the_default_branch_one_request_finds_the_pull_request_and_a_push_costs_one_page(
    git_repo: GitRepo, sqlite_store: Store, api_version: str, method: MergeMethod
) -> None:
    """`main` is tracked: GitHub's commit listing names the merged pull request (with or without
    `merge_commit_sha`); a direct push costs one page of closed pull requests per pass, which
    tells that `main` is the default branch and the listing was complete."""
    scenario = PullRequestScenario.create(git_repo)
    with_flag(scenario, sqlite_store, method)
    before = len(scenario.gh.requests)
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.review(2, "bob", "APPROVED")
    scenario.merge(2, method)
    reconcile(scenario, sqlite_store)
    assert record_of(sqlite_store, RAMP).state == "applied"
    endpoints = [r.endpoint for r in scenario.gh.requests[before:]]
    assert endpoints.count("repos.list-pull-requests-associated-with-commit") == 1
    assert "pulls.list" not in endpoints

    scenario.push_main({"changes/ramp-a.yaml": ramp("ramp-a", "checkout", 60)})
    scenario.push_main({"changes/ramp-b.yaml": ramp("ramp-b", "checkout", 70)})
    before = len(scenario.gh.requests)
    reconcile(scenario, sqlite_store)
    assert record_of(sqlite_store, "changes/ramp-b.yaml").state == "failed"
    assert [r.endpoint for r in scenario.gh.requests[before:]].count("pulls.list") == 1


def test_a_failed_page_of_closed_pull_requests_applies_nothing_and_the_next_pass_does(
    release: PullRequestScenario, sqlite_store: Store
) -> None:
    release.open(1, {"changes/create-checkout.yaml": create_flag("create-checkout", "checkout")})
    release.review(1, "bob", "APPROVED")
    release.merge(1, "squash")
    release.gh.fail(401, message="Bad credentials", endpoint="pulls.list")
    with pytest.raises(GitHubAuthError):
        reconcile(release, sqlite_store)
    assert sqlite_store.get_change_request(change_request_id("changes/create-checkout.yaml")) is None

    reconcile(release, sqlite_store)
    assert record_of(sqlite_store, "changes/create-checkout.yaml").state == "applied"
