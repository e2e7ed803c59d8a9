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
from tests.support.policyrepo import BOB, CAROL, ERIN, create_flag, policy, ramp

RAMP = "changes/ramp-checkout.yaml"


def reconcile(sc: PullRequestScenario, store: Store) -> Any:
    return sc.reconcile(store, now=datetime.fromtimestamp(sc.repo.clock + 3600, tz=UTC))


def record(store: Store, path: str = RAMP) -> ChangeRequestRecord:
    found = store.get_change_request(change_request_id(path))
    assert found is not None, f"no change request recorded for {path}"
    return found


def votes(cr: ChangeRequestRecord) -> list[tuple[str, str, bool, str | None]]:
    return [(v.login, v.decision, v.counted, v.ignored_reason) for v in cr.votes]


def with_flag(sc: PullRequestScenario, store: Store, method: MergeMethod = "merge") -> None:
    """Pull request #1 creates `checkout` in production at 10 %, approved by bob."""
    sc.open(1, {"changes/create-checkout.yaml": create_flag("create-checkout", "checkout", rollout=10)})
    sc.review(1, "bob", "APPROVED")
    sc.merge(1, method)
    reconcile(sc, store)
    assert record(store, "changes/create-checkout.yaml").state == "applied"


@pytest.fixture
def sc(git_repo: GitRepo) -> PullRequestScenario:
    return PullRequestScenario.create(git_repo)


@pytest.fixture
def store(tmp_path: Any) -> Any:
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
def test_an_approved_pull_request_applies_with_the_reviews_as_they_stood_at_merge(
    sc: PullRequestScenario, store: Store, method: MergeMethod
) -> None:
    with_flag(sc, store, method)
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    sc.push(2, {"notes/why.md": "Because."}, message="Explain the ramp")  # an edit elsewhere
    sc.review(2, "bob", "APPROVED", commit=sc.pulls[2].commits[0])
    landed = sc.merge(2, method)
    sc.review(2, "carol", "CHANGES_REQUESTED")  # after the merge: must not count

    reconcile(sc, store)

    cr = record(store)
    assert cr.state == "applied", cr.apply_error
    assert cr.commit == landed[0] if method == "rebase" else cr.commit == landed[-1]
    assert votes(cr) == [("bob", "approved", True, None)]
    assert (cr.pull_request_number, cr.pull_request_url) == (2, "https://github.com/acme/feature-flag-policies/pull/2")
    assert cr.applied_by_login == "carol" and cr.created_by_login == "alice"
    assert store.get_flag(1, "checkout").flag.filters.groups[0].rollout_percentage == 50  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("method", "backend"),
    [("merge", "sqlite"), ("rebase", "sqlite"), ("squash", "sqlite"),
     pytest.param("squash", "postgres", marks=pytest.mark.postgres)],
)
def test_quorum_not_met_at_merge_fails_the_change_and_says_why(
    git_repo: GitRepo, tmp_path: Any, request: pytest.FixtureRequest, method: MergeMethod, backend: str
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    sc = PullRequestScenario.create(git_repo, quorum=2)
    with Store.open(url) as store:
        with_flag(sc, store, method)
        sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
        sc.review(2, "bob", "APPROVED")
        sc.merge(2, method)

        reconcile(sc, store)

        cr = record(store)
        assert cr.state == "failed"
        assert cr.apply_error == "approval quorum not met at merge: 1 of 2 (production-rollouts)"
        assert votes(cr) == [("bob", "approved", True, None)]
        assert cr.bypass is None
        assert store.get_flag(1, "checkout").flag.filters.groups[0].rollout_percentage == 10  # type: ignore[union-attr]


def test_a_bypass_level_merger_applies_without_quorum_and_the_bypass_is_recorded(
    git_repo: GitRepo, store_url: str
) -> None:
    sc = PullRequestScenario.create(git_repo, quorum=2)
    with Store.open(store_url) as store:
        with_flag(sc, store)
        sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
        sc.review(2, "bob", "APPROVED")
        sc.merge(2, "squash", merged_by="erin", merger=ERIN)

        reconcile(sc, store)

        cr = record(store)
        assert cr.state == "applied"
        assert cr.applied_by_login == "erin"
        assert cr.bypass == [{"policy": "production-rollouts", "member": "erin", "reason": "organization owner (level 15)"}]
        _count, events = store.list_audit(object_type="change_request", object_id=cr.id)
        assert [e.data.get("bypass") for e in events] == [cr.bypass]


def test_self_approval_is_ignored_unless_the_policy_allows_it(sc: PullRequestScenario, store: Store) -> None:
    with_flag(sc, store)
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    sc.review(2, "alice", "APPROVED")
    sc.merge(2)
    reconcile(sc, store)
    assert votes(record(store)) == [("alice", "approved", False, "self-approval not allowed")]
    assert record(store).state == "failed"

    sc.repo.write("policies/production-rollouts.yaml", policy(
        "production-rollouts", "feature_flag.update", 1, match={"environments": ["production"]},
        allow_self_approve=True))  # fmt: skip
    sc.open(3, {})
    sc.review(3, "dave", "APPROVED")
    sc.review(3, "bob", "APPROVED")
    sc.merge(3, merged_by="dave")
    reconcile(sc, store)
    ramp2 = "changes/ramp-checkout-again.yaml"
    sc.open(4, {ramp2: ramp("ramp-checkout-again", "checkout", 60)})
    sc.review(4, "alice", "APPROVED")
    sc.merge(4)
    reconcile(sc, store)
    assert votes(record(store, ramp2)) == [("alice", "approved", True, None)]
    assert record(store, ramp2).state == "applied"


def test_a_reviewer_who_co_authored_a_commit_to_the_file_is_a_requester(sc: PullRequestScenario, store: Store) -> None:
    with_flag(sc, store)
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 40)})
    sc.push(2, {RAMP: ramp("ramp-checkout", "checkout", 50)},
            message=f"Ramp further\n\nCo-authored-by: {BOB[0]} <{BOB[1]}>")  # fmt: skip
    sc.review(2, "bob", "APPROVED")
    sc.merge(2, "squash")
    reconcile(sc, store)
    cr = record(store)
    assert votes(cr) == [("bob", "approved", False, "self-approval not allowed")]
    assert cr.state == "failed"


def test_a_later_edit_of_the_file_makes_an_approval_stale_an_edit_elsewhere_does_not(
    sc: PullRequestScenario, store: Store
) -> None:
    with_flag(sc, store)
    other = "changes/ramp-checkout-staging.yaml"
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 40), other: create_flag("create-staging", "checkout", "staging")})
    sc.review(2, "bob", "APPROVED")
    sc.review(2, "carol", "APPROVED")
    sc.push(2, {RAMP: ramp("ramp-checkout", "checkout", 90)}, message="Ramp harder")
    sc.push(2, {"notes/why.md": "Because."}, message="Notes")
    sc.review(2, "carol", "APPROVED")  # carol approves again after the edit; bob does not
    sc.merge(2)
    reconcile(sc, store)
    cr = record(store)
    assert votes(cr) == [("bob", "approved", False, "stale: file changed after review"),
                         ("carol", "approved", True, None)]  # fmt: skip
    assert [v.commit_id for v in cr.votes] == [sc.pulls[2].commits[0], sc.pulls[2].commits[2]]
    assert cr.state == "applied"


REVIEW_CASES: dict[str, tuple[list[tuple[str, str]], list[Any], str]] = {
    "changes-requested-then-approved": (
        [("bob", "CHANGES_REQUESTED"), ("bob", "APPROVED")], [("bob", "approved", True, None)], "applied"),
    "dismissed": ([("bob", "APPROVED"), ("bob", "DISMISSED")], [("bob", "dismissed", False, "dismissed")], "failed"),
    "commented-after-approved": (
        [("bob", "APPROVED"), ("bob", "COMMENTED")], [("bob", "approved", True, None)], "applied"),
    "outside-the-policy": ([("dave", "APPROVED")], [("dave", "approved", False, "not an eligible approver")], "failed"),
    "unknown-login": ([("ghost-user", "APPROVED")], [("ghost-user", "approved", False, "unknown login")], "failed"),
    "standing-rejection": ([("bob", "APPROVED"), ("carol", "CHANGES_REQUESTED")],
                           [("bob", "approved", True, None), ("carol", "rejected", True, None)], "rejected"),
}


def test_review_semantics(sc: PullRequestScenario, store: Store) -> None:
    """One pull request per case, all landed in one pass: how each review history counts."""
    with_flag(sc, store)
    for number, (case, (reviews, _expected, _state)) in enumerate(REVIEW_CASES.items(), start=2):
        sc.open(number, {f"changes/{case}.yaml": ramp(case, "checkout", 20 + number)})
        for login, review_state in reviews:
            sc.review(number, login, review_state)
        sc.merge(number)
    reconcile(sc, store)
    outcomes = {case: (votes(record(store, f"changes/{case}.yaml")), record(store, f"changes/{case}.yaml").state)
                for case in REVIEW_CASES}
    assert outcomes == {case: (expected, state) for case, (_r, expected, state) in REVIEW_CASES.items()}


def test_a_pull_request_that_weakens_the_policy_is_judged_by_the_base(sc: PullRequestScenario, store: Store) -> None:
    with_flag(sc, store)
    weaker = policy("production-rollouts", "feature_flag.update", 1, match={"environments": ["production"]},
                    approver_config={"quorum": 1, "users": ["alice"]}, allow_self_approve=True)
    sc.open(2, {"policies/production-rollouts.yaml": weaker, RAMP: ramp("ramp-checkout", "checkout", 100)})
    sc.review(2, "alice", "APPROVED")
    sc.merge(2)
    reconcile(sc, store)
    cr = record(store)
    assert cr.state == "failed"
    assert votes(cr) == [("alice", "approved", False, "self-approval not allowed")]
    policies = {p.name: p for p in store.list_policies()}
    assert policies["production-rollouts"].spec["approver_config"]["roles"] == ["flag-approvers"]  # not in force


def test_a_direct_push_has_no_votes_and_needs_a_bypass(sc: PullRequestScenario, store: Store) -> None:
    with_flag(sc, store)
    sc.push_main({RAMP: ramp("ramp-checkout", "checkout", 50)}, author=CAROL)
    sc.push_main({"changes/ramp-again.yaml": ramp("ramp-again", "checkout", 70)}, author=ERIN)
    reconcile(sc, store)
    cr = record(store)
    assert (cr.state, cr.votes, cr.created_by_login, cr.pull_request_number) == ("failed", (), "carol", None)
    assert cr.apply_error == "approval quorum not met at merge: 0 of 1 (production-rollouts)"
    bypassed = record(store, "changes/ramp-again.yaml")
    assert bypassed.state == "applied" and bypassed.bypass is not None


def test_fifty_files_of_one_pull_request_cost_one_read_of_each_listing(sc: PullRequestScenario, store: Store) -> None:
    with_flag(sc, store)
    files = {f"changes/ramp-{i:02}.yaml": ramp(f"ramp-{i:02}", "checkout", i + 11) for i in range(50)}
    sc.open(2, files)
    for i in range(120):
        sc.review(2, f"reviewer-{i}", "COMMENTED")
    sc.review(2, "bob", "APPROVED")
    before = len(sc.gh.requests)
    sc.merge(2, "squash")
    reconcile(sc, store)
    endpoints = [r.endpoint for r in sc.gh.requests[before:]]
    assert sorted(endpoints) == sorted(["repos.list-pull-requests-associated-with-commit", "pulls.get",
                                        "pulls.list-commits", "pulls.list-reviews", "pulls.list-reviews"])
    assert all(record(store, p).state == "applied" for p in files)


def test_github_trouble_is_retried_and_a_401_stops_the_pass_having_applied_nothing(
    sc: PullRequestScenario, store: Store
) -> None:
    with_flag(sc, store)
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    sc.review(2, "bob", "APPROVED")
    sc.merge(2)
    sc.gh.rate_limit_429(30)
    sc.gh.fail(502, times=2, endpoint="pulls.list-reviews")
    sc.gh.fail(401, message="Bad credentials", endpoint="pulls.list-commits")
    position = store.position().last_applied_commit
    with pytest.raises(GitHubAuthError, match="GITHUB_TOKEN is invalid or expired"):
        reconcile(sc, store)
    assert store.get_change_request(change_request_id(RAMP)) is None
    assert store.position().last_applied_commit == position
    assert sc.gh.clock.sleeps == [30.0, 0.5, 1.0]

    reconcile(sc, store)  # the token works again: the same commit is processed from scratch
    assert record(store).state == "applied"


def test_an_unreadable_reviewed_commit_makes_the_approval_stale_and_says_why(sc: PullRequestScenario, store: Store) -> None:
    with_flag(sc, store)
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    sc.review(2, "bob", "APPROVED", commit="f" * 40, body="Ship it")
    sc.merge(2)
    reconcile(sc, store)
    cr = record(store)
    assert votes(cr) == [("bob", "approved", False, "stale: file changed after review")]
    assert cr.votes[0].reason.startswith("Ship it\n\n[treated as stale: the reviewed commit ffffffffffff cannot be read")


def test_reviewed_commits_a_squash_left_off_every_branch_are_fetched_from_the_pull_request_ref(
    sc: PullRequestScenario, tmp_path: Any
) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'remote.db'}") as store:
        sc.open(2, {RAMP: create_flag("create-checkout", "checkout")})
        sc.review(2, "bob", "APPROVED")
        sc.merge(2, "squash")
        sc.repo.git("update-ref", "refs/pull/2/head", sc.pulls[2].head)  # GitHub keeps this ref
        sc.repo.git("branch", "-D", sc.pulls[2].branch)  # the branch was deleted after the merge
        config = ReconcileConfig(repo=f"file://{sc.repo.path}", branch="main", cache_dir=str(tmp_path / "cache"))
        with sc.gh.client() as client:
            reconcile_once(config, store, github=client, now=datetime.fromtimestamp(sc.repo.clock, tz=UTC))
        cr = record(store, RAMP)
        assert votes(cr) == [("bob", "approved", True, None)]
        assert (cr.state, cr.created_by_login) == ("applied", "alice")


def test_a_rebase_merge_that_edits_its_change_request_is_judged_at_the_final_version(
    sc: PullRequestScenario, store: Store
) -> None:
    with_flag(sc, store, "rebase")
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    sc.push(2, {RAMP: ramp("ramp-checkout", "checkout", 30)}, message="Ramp more carefully")
    sc.review(2, "bob", "APPROVED", commit=sc.pulls[2].commits[-1])
    landed = sc.merge(2, "rebase")

    reconcile(sc, store)

    cr = record(store)
    assert cr.state == "applied", cr.apply_error
    assert cr.commit == landed[-1]  # judged where the pull request left the file
    assert votes(cr) == [("bob", "approved", True, None)]
    assert store.get_flag(1, "checkout").flag.filters.groups[0].rollout_percentage == 30  # type: ignore[union-attr]
    _count, ignored = store.list_audit(verb="change_request.edit_ignored")
    assert ignored == []
