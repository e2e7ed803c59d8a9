"""Open pull requests judged as their merge will be: evaluation, the plan comment, `check-approvals`.

Real git history in tmp_path, the fake GitHub (in-process, or over real HTTP for the command,
which builds its client from the environment as GitHub Actions runs it), real SQLite stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.gitrepo.repository import GitRepository
from reconciler.plan.pullrequest import PullRequestEvaluation, evaluate_pull_request
from reconciler.plan.render import PLAN_MARKER
from reconciler.store import Store
from tests.support.ghscenario import REPOSITORY, PullRequestScenario, serve
from tests.support.gitutil import GitRepo
from tests.support.policyrepo import create_flag, policy, ramp

RAMP = "changes/ramp-checkout.yaml"


@pytest.fixture
def sc(git_repo: GitRepo) -> PullRequestScenario:
    return PullRequestScenario.create(git_repo, quorum=2)


@pytest.fixture
def store(tmp_path: Any) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


def judge(sc: PullRequestScenario, number: int, store: Store | None = None) -> PullRequestEvaluation:
    with GitRepository.open(sc.repo.path) as repo, sc.gh.client() as client:
        return evaluate_pull_request(repo, client, number, now=sc.now(), store=store)


def land_flag(sc: PullRequestScenario, store: Store) -> None:
    sc.open(1, {"changes/create-checkout.yaml": create_flag("create-checkout", "checkout", rollout=10)})
    sc.review(1, "bob", "APPROVED")
    sc.merge(1)
    sc.reconcile(store)


def test_votes_missing_keep_the_status_pending_with_the_count(sc: PullRequestScenario) -> None:
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    sc.review(2, "bob", "APPROVED")
    sc.review(2, "alice", "APPROVED")  # the author's own approval never counts
    result = judge(sc, 2)
    assert [(c.path, c.state) for c in result.changes] == [(RAMP, "pending")]
    assert result.commit_status() == ("pending", "1/2 approvals · production-rollouts")
    text = result.markdown()
    assert text.startswith(PLAN_MARKER)
    assert "Flag state unknown" in text
    assert "| alice | approved | no | self-approval not allowed |" in text
    assert "@" not in text


def test_with_a_store_the_plan_shows_the_flag_before_and_after(sc: PullRequestScenario, store: Store) -> None:
    land_flag(sc, store)
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    sc.review(2, "bob", "APPROVED")
    sc.review(2, "carol", "APPROVED")
    result = judge(sc, 2, store)
    assert result.commit_status() == ("success", "2/2 approvals · production-rollouts")
    assert "| `filters.groups[0].rollout_percentage` | 10 | 50 |" in result.markdown()
    assert "Flag state unknown" not in result.markdown()


def test_a_standing_rejection_or_an_unappliable_change_fails_the_status(sc: PullRequestScenario, store: Store) -> None:
    land_flag(sc, store)
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    sc.review(2, "carol", "CHANGES_REQUESTED")
    assert judge(sc, 2, store).commit_status() == ("failure", "changes requested by carol · production-rollouts")

    sc.open(3, {"changes/ramp-missing.yaml": ramp("ramp-missing", "no-such-flag", 50)})
    state, description = judge(sc, 3, store).commit_status()
    assert state == "failure"
    assert description.startswith("cannot apply changes/ramp-missing.yaml: ")
    assert "no-such-flag" in description


def test_a_pull_request_that_weakens_the_policy_is_judged_by_the_base(sc: PullRequestScenario) -> None:
    weaker = policy("production-rollouts", "feature_flag.update", 1, match={"environments": ["production"]},
                    approver_config={"quorum": 1, "users": ["alice"]}, allow_self_approve=True)
    sc.open(2, {"policies/production-rollouts.yaml": weaker, RAMP: ramp("ramp-checkout", "checkout", 100)})
    sc.review(2, "alice", "APPROVED")
    result = judge(sc, 2)
    assert [(c.path, c.state) for c in result.changes] == [
        (RAMP, "pending"), ("policies/production-rollouts.yaml", "pending")]  # fmt: skip
    assert result.changes[1].action == "approval_policy.change"
    assert result.commit_status()[1] == "0/2 changes approved · 0/2 approvals · production-rollouts"


def test_check_approvals_sets_the_status_and_keeps_one_comment_up_to_date(sc: PullRequestScenario) -> None:
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    sc.gh.pulls[2]["created_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # the command runs now
    sc.review(2, "bob", "APPROVED")
    runner = CliRunner()
    with serve(sc.gh) as url:
        env = {"GITHUB_TOKEN": "fake-token", "GITHUB_API_URL": url, "GITHUB_REPOSITORY": REPOSITORY}
        args = ["check-approvals", "--pr", "2", "--repo", str(sc.repo.path), "--path", "."]  # as the workflow runs it
        first = runner.invoke(main, args, env=env)
        sc.review(2, "carol", "APPROVED")
        second = runner.invoke(main, args, env=env)
        dry = runner.invoke(main, [*args, "--dry-run"], env=env)
    assert (first.exit_code, second.exit_code, dry.exit_code) == (0, 0, 0), first.output + second.output
    head = sc.pulls[2].head
    assert [(s["sha"], s["context"], s["state"], s["description"]) for s in sc.gh.statuses] == [
        (head, "reconciler/approvals", "pending", "1/2 approvals · production-rollouts"),
        (head, "reconciler/approvals", "success", "2/2 approvals · production-rollouts"),
    ]
    comments = sc.gh.comments[2]
    assert len(comments) == 1  # updated in place, never re-posted
    assert comments[0]["body"].startswith(PLAN_MARKER)
    assert "| carol | approved | yes |" in comments[0]["body"]
    assert sc.gh.count("issues.update-comment") == 1
    assert "reconciler/approvals: success" in second.output
    assert dry.output.startswith(PLAN_MARKER) and len(sc.gh.statuses) == 2


def test_check_approvals_with_a_bad_token_stops_with_a_clear_message(sc: PullRequestScenario) -> None:
    sc.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    with serve(sc.gh) as url:
        env = {"GITHUB_TOKEN": "expired", "GITHUB_API_URL": url, "GITHUB_REPOSITORY": REPOSITORY}
        result = CliRunner().invoke(main, ["check-approvals", "--pr", "2", "--repo", str(sc.repo.path)], env=env)
    assert result.exit_code == 2
    assert "GitHub answered 401 (Bad credentials)" in result.output
    assert "the token in GITHUB_TOKEN is invalid or expired: replace it" in result.output
    assert sc.gh.statuses == []


def test_a_huge_plan_comment_is_cut_to_fit_github(sc: PullRequestScenario) -> None:
    files = {f"changes/ramp-{i:03}.yaml": ramp(f"ramp-{i:03}", "checkout", 50) for i in range(40)}
    sc.open(2, files)
    for i in range(150):
        sc.review(2, f"reviewer-with-a-rather-long-login-{i:03}", "APPROVED")
    with GitRepository.open(sc.repo.path) as repo, sc.gh.client() as client:
        from reconciler.plan.pullrequest import publish

        result = evaluate_pull_request(repo, client, 2, now=sc.now())
        assert len(result.markdown()) > 65_536
        publish(client, result)
    body = sc.gh.comments[2][0]["body"]
    assert len(body) <= 65_536 and body.startswith(PLAN_MARKER)
