"""The GitHub approval source at merge time: real git history, the fake GitHub, real stores.

Each test builds the pull requests in a real repository (branches, merge commits, squash and
rebase merges), describes them on the fake GitHub with reviews pointing at the real commits,
runs one reconcile pass and reads what the store recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.decision.changes import change_request_id
from reconciler.github import GitHubAuthError
from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.store import ChangeRequestRecord, Store
from tests.support.ghscenario import MergeMethod, PullRequestScenario
from tests.support.gitutil import GitRepo
from tests.support.people import BOB, CAROL, ERIN
from tests.support.policyrepo import create_flag, policy, ramp
from tests.support.storedata import record_of

RAMP = "changes/ramp-checkout.yaml"


def reconcile(scenario: PullRequestScenario, store: Store) -> Any:
    return scenario.reconcile(store, now=datetime.fromtimestamp(scenario.repo.clock + 3600, tz=UTC))


def record(store: Store, path: str = RAMP) -> ChangeRequestRecord:
    return record_of(store, path)


def votes(cr: ChangeRequestRecord) -> list[tuple[str, str, bool, str | None]]:
    return [(v.login, v.decision, v.counted, v.ignored_reason) for v in cr.votes]


def with_flag(scenario: PullRequestScenario, store: Store, method: MergeMethod = "merge") -> None:
    """Pull request #1 creates `checkout` in production at 10 %, approved by bob."""
    scenario.land_checkout(method)
    reconcile(scenario, store)
    assert record(store, "changes/create-checkout.yaml").state == "applied"


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
def test_an_approved_pull_request_applies_with_the_reviews_as_they_stood_at_merge(
    scenario: PullRequestScenario, sqlite_store: Store, method: MergeMethod
) -> None:
    with_flag(scenario, sqlite_store, method)
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.push(2, {"notes/why.md": "Because."}, message="Explain the ramp")  # an edit elsewhere
    scenario.review(2, "bob", "APPROVED", commit=scenario.pulls[2].commits[0])
    landed = scenario.merge(2, method)
    scenario.review(2, "carol", "CHANGES_REQUESTED")  # after the merge: must not count

    reconcile(scenario, sqlite_store)

    cr = record(sqlite_store)
    assert cr.state == "applied", cr.apply_error
    assert cr.commit == landed[0] if method == "rebase" else cr.commit == landed[-1]
    assert votes(cr) == [("bob", "approved", True, None)]
    assert (cr.pull_request_number, cr.pull_request_url) == (
        2,
        "https://github.com/acme/feature-flag-policies/pull/2",
    )
    assert cr.applied_by_login == "carol" and cr.created_by_login == "alice"
    assert sqlite_store.get_flag(1, "checkout").flag.filters.groups[0].rollout_percentage == 50  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("method", "backend"),
    [
        ("merge", "sqlite"),
        ("rebase", "sqlite"),
        ("squash", "sqlite"),
        pytest.param("squash", "postgres", marks=pytest.mark.postgres),
    ],
)
def test_quorum_not_met_at_merge_fails_the_change_and_says_why(
    git_repo: GitRepo, tmp_path: Any, request: pytest.FixtureRequest, method: MergeMethod, backend: str
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    scenario = PullRequestScenario.create(git_repo, quorum=2)
    with Store.open(url) as store:
        with_flag(scenario, store, method)
        scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
        scenario.review(2, "bob", "APPROVED")
        scenario.merge(2, method)

        reconcile(scenario, store)

        cr = record(store)
        assert cr.state == "failed"
        assert cr.apply_error == "approval quorum not met at merge: 1 of 2 (production-rollouts)"
        assert votes(cr) == [("bob", "approved", True, None)]
        assert cr.bypass is None
        assert store.get_flag(1, "checkout").flag.filters.groups[0].rollout_percentage == 10  # type: ignore[union-attr]


def test_a_bypass_level_merger_applies_without_quorum_and_the_bypass_is_recorded(
    git_repo: GitRepo, store_url: str
) -> None:
    scenario = PullRequestScenario.create(git_repo, quorum=2)
    with Store.open(store_url) as store:
        with_flag(scenario, store)
        scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
        scenario.review(2, "bob", "APPROVED")
        scenario.merge(2, "squash", merged_by="erin", merger=ERIN.identity)

        reconcile(scenario, store)

        cr = record(store)
        assert cr.state == "applied"
        assert cr.applied_by_login == "erin"
        assert cr.bypass == [
            {"policy": "production-rollouts", "member": "erin", "reason": "organization owner (level 15)"}
        ]
        _count, events = store.list_audit(object_type="change_request", object_id=cr.id)
        assert [e.data.get("bypass") for e in events] == [cr.bypass]


def test_self_approval_is_ignored_unless_the_policy_allows_it(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    with_flag(scenario, sqlite_store)
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.review(2, "alice", "APPROVED")
    scenario.merge(2)
    reconcile(scenario, sqlite_store)
    assert votes(record(sqlite_store)) == [("alice", "approved", False, "self-approval not allowed")]
    assert record(sqlite_store).state == "failed"

    scenario.repo.write(
        "policies/production-rollouts.yaml",
        policy(
            "production-rollouts",
            "feature_flag.update",
            1,
            match={"environments": ["production"]},
            allow_self_approve=True,
        ),
    )
    scenario.open(3, {})
    scenario.review(3, "dave", "APPROVED")
    scenario.review(3, "bob", "APPROVED")
    scenario.merge(3, merged_by="dave")
    reconcile(scenario, sqlite_store)
    ramp2 = "changes/ramp-checkout-again.yaml"
    scenario.open(4, {ramp2: ramp("ramp-checkout-again", "checkout", 60)})
    scenario.review(4, "alice", "APPROVED")
    scenario.merge(4)
    reconcile(scenario, sqlite_store)
    assert votes(record(sqlite_store, ramp2)) == [("alice", "approved", True, None)]
    assert record(sqlite_store, ramp2).state == "applied"


def test_a_reviewer_who_co_authored_a_commit_to_the_file_is_a_requester(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    with_flag(scenario, sqlite_store)
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 40)})
    scenario.push(
        2,
        {RAMP: ramp("ramp-checkout", "checkout", 50)},
        message=f"Ramp further\n\nCo-authored-by: {BOB.name} <{BOB.email}>",
    )
    scenario.review(2, "bob", "APPROVED")
    scenario.merge(2, "squash")
    reconcile(scenario, sqlite_store)
    cr = record(sqlite_store)
    assert votes(cr) == [("bob", "approved", False, "self-approval not allowed")]
    assert cr.state == "failed"


def test_a_later_edit_of_the_file_makes_an_approval_stale_an_edit_elsewhere_does_not(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    with_flag(scenario, sqlite_store)
    other = "changes/ramp-checkout-staging.yaml"
    scenario.open(
        2,
        {
            RAMP: ramp("ramp-checkout", "checkout", 40),
            other: create_flag("create-staging", "checkout", "staging"),
        },
    )
    scenario.review(2, "bob", "APPROVED")
    scenario.review(2, "carol", "APPROVED")
    scenario.push(2, {RAMP: ramp("ramp-checkout", "checkout", 90)}, message="Ramp harder")
    scenario.push(2, {"notes/why.md": "Because."}, message="Notes")
    scenario.review(2, "carol", "APPROVED")  # carol approves again after the edit; bob does not
    scenario.merge(2)
    reconcile(scenario, sqlite_store)
    cr = record(sqlite_store)
    assert votes(cr) == [
        ("bob", "approved", False, "stale: file changed after review"),
        ("carol", "approved", True, None),
    ]
    assert [v.commit_id for v in cr.votes] == [scenario.pulls[2].commits[0], scenario.pulls[2].commits[2]]
    assert cr.state == "applied"


REVIEW_CASES: dict[str, tuple[list[tuple[str, str]], list[Any], str]] = {
    "changes-requested-then-approved": (
        [("bob", "CHANGES_REQUESTED"), ("bob", "APPROVED")],
        [("bob", "approved", True, None)],
        "applied",
    ),
    "dismissed": (
        [("bob", "APPROVED"), ("bob", "DISMISSED")],
        [("bob", "dismissed", False, "dismissed")],
        "failed",
    ),
    "commented-after-approved": (
        [("bob", "APPROVED"), ("bob", "COMMENTED")],
        [("bob", "approved", True, None)],
        "applied",
    ),
    "outside-the-policy": (
        [("dave", "APPROVED")],
        [("dave", "approved", False, "not an eligible approver")],
        "failed",
    ),
    "unknown-login": (
        [("ghost-user", "APPROVED")],
        [("ghost-user", "approved", False, "unknown login")],
        "failed",
    ),
    "standing-rejection": (
        [("bob", "APPROVED"), ("carol", "CHANGES_REQUESTED")],
        [("bob", "approved", True, None), ("carol", "rejected", True, None)],
        "rejected",
    ),
}


def test_review_semantics(scenario: PullRequestScenario, sqlite_store: Store) -> None:
    """One pull request per case, all landed in one pass: how each review history counts."""
    with_flag(scenario, sqlite_store)
    for number, (case, (reviews, _expected, _state)) in enumerate(REVIEW_CASES.items(), start=2):
        scenario.open(number, {f"changes/{case}.yaml": ramp(case, "checkout", 20 + number)})
        for login, review_state in reviews:
            scenario.review(number, login, review_state)
        scenario.merge(number)
    reconcile(scenario, sqlite_store)
    outcomes = {
        case: (
            votes(record(sqlite_store, f"changes/{case}.yaml")),
            record(sqlite_store, f"changes/{case}.yaml").state,
        )
        for case in REVIEW_CASES
    }
    assert outcomes == {case: (expected, state) for case, (_r, expected, state) in REVIEW_CASES.items()}


def test_a_pull_request_that_weakens_the_policy_is_judged_by_the_base(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    with_flag(scenario, sqlite_store)
    scenario.open_weakening(2)
    scenario.merge(2)
    reconcile(scenario, sqlite_store)
    cr = record(sqlite_store)
    assert cr.state == "failed"
    assert votes(cr) == [("alice", "approved", False, "self-approval not allowed")]
    policies = {p.name: p for p in sqlite_store.list_policies()}
    assert policies["production-rollouts"].spec["approver_config"]["roles"] == [
        "flag-approvers"
    ]  # not in force


def test_a_direct_push_has_no_votes_and_needs_a_bypass(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    with_flag(scenario, sqlite_store)
    scenario.push_main({RAMP: ramp("ramp-checkout", "checkout", 50)}, author=CAROL.identity)
    scenario.push_main({"changes/ramp-again.yaml": ramp("ramp-again", "checkout", 70)}, author=ERIN.identity)
    reconcile(scenario, sqlite_store)
    cr = record(sqlite_store)
    assert (cr.state, cr.votes, cr.created_by_login, cr.pull_request_number) == ("failed", (), "carol", None)
    assert cr.apply_error == "approval quorum not met at merge: 0 of 1 (production-rollouts)"
    bypassed = record(sqlite_store, "changes/ramp-again.yaml")
    assert bypassed.state == "applied" and bypassed.bypass is not None


def test_fifty_files_of_one_pull_request_cost_one_read_of_each_listing(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    with_flag(scenario, sqlite_store)
    files = {f"changes/ramp-{i:02}.yaml": ramp(f"ramp-{i:02}", "checkout", i + 11) for i in range(50)}
    scenario.open(2, files)
    for i in range(120):
        scenario.review(2, f"reviewer-{i}", "COMMENTED")
    scenario.review(2, "bob", "APPROVED")
    before = len(scenario.gh.requests)
    scenario.merge(2, "squash")
    reconcile(scenario, sqlite_store)
    endpoints = [r.endpoint for r in scenario.gh.requests[before:]]
    assert sorted(endpoints) == sorted(
        [
            "repos.list-pull-requests-associated-with-commit",
            "pulls.get",
            "pulls.list-commits",
            "pulls.list-reviews",
            "pulls.list-reviews",
        ]
    )
    assert all(record(sqlite_store, p).state == "applied" for p in files)


def test_github_trouble_is_retried_and_a_401_stops_the_pass_having_applied_nothing(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    with_flag(scenario, sqlite_store)
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.review(2, "bob", "APPROVED")
    scenario.merge(2)
    scenario.gh.rate_limit_429(30)
    scenario.gh.fail(502, times=2, endpoint="pulls.list-reviews")
    scenario.gh.fail(401, message="Bad credentials", endpoint="pulls.list-commits")
    position = sqlite_store.position().last_applied_commit
    with pytest.raises(GitHubAuthError, match="GITHUB_TOKEN is invalid or expired"):
        reconcile(scenario, sqlite_store)
    assert sqlite_store.get_change_request(change_request_id(RAMP)) is None
    assert sqlite_store.position().last_applied_commit == position
    assert scenario.gh.clock.sleeps == [30.0, 0.5, 1.0]

    reconcile(scenario, sqlite_store)  # the token works again: the same commit is processed from scratch
    assert record(sqlite_store).state == "applied"


def test_an_unreadable_reviewed_commit_makes_the_approval_stale_and_says_why(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    with_flag(scenario, sqlite_store)
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.review(2, "bob", "APPROVED", commit="f" * 40, body="Ship it")
    scenario.merge(2)
    reconcile(scenario, sqlite_store)
    cr = record(sqlite_store)
    assert votes(cr) == [("bob", "approved", False, "stale: file changed after review")]
    assert cr.votes[0].reason.startswith(
        "Ship it\n\n[treated as stale: the reviewed commit ffffffffffff cannot be read"
    )


def test_reviewed_commits_a_squash_left_off_every_branch_are_fetched_from_the_pull_request_ref(
    scenario: PullRequestScenario, tmp_path: Any
) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'remote.db'}") as store:
        scenario.open(2, {RAMP: create_flag("create-checkout", "checkout")})
        scenario.review(2, "bob", "APPROVED")
        scenario.merge(2, "squash")
        scenario.repo.git("update-ref", "refs/pull/2/head", scenario.pulls[2].head)  # GitHub keeps this ref
        scenario.repo.git("branch", "-D", scenario.pulls[2].branch)  # the branch was deleted after the merge
        config = ReconcileConfig(
            repo=f"file://{scenario.repo.path}", branch="main", cache_dir=str(tmp_path / "cache")
        )
        with scenario.gh.client() as client:
            reconcile_once(
                config, store, github=client, now=datetime.fromtimestamp(scenario.repo.clock, tz=UTC)
            )
        cr = record(store, RAMP)
        assert votes(cr) == [("bob", "approved", True, None)]
        assert (cr.state, cr.created_by_login) == ("applied", "alice")


def test_a_rebase_merge_that_edits_its_change_request_is_judged_at_the_final_version(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    with_flag(scenario, sqlite_store, "rebase")
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.push(2, {RAMP: ramp("ramp-checkout", "checkout", 30)}, message="Ramp more carefully")
    scenario.review(2, "bob", "APPROVED", commit=scenario.pulls[2].commits[-1])
    landed = scenario.merge(2, "rebase")

    reconcile(scenario, sqlite_store)

    cr = record(sqlite_store)
    assert cr.state == "applied", cr.apply_error
    assert cr.commit == landed[-1]  # judged where the pull request left the file
    assert votes(cr) == [("bob", "approved", True, None)]
    assert sqlite_store.get_flag(1, "checkout").flag.filters.groups[0].rollout_percentage == 30  # type: ignore[union-attr]
    _count, ignored = sqlite_store.list_audit(verb="change_request.edit_ignored")
    assert ignored == []
