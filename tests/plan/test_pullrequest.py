"""Open pull requests judged as their merge will be: evaluation, the plan comment, `check-approvals`.

Real git history in tmp_path, the fake GitHub (in-process, or over real HTTP for the command,
which builds its client from the environment as GitHub Actions runs it), real SQLite stores.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.gitrepo.repository import GitRepository
from reconciler.plan.comment import PLAN_MARKER
from reconciler.plan.pullrequest import PullRequestEvaluation, evaluate_pull_request
from reconciler.store import Store
from tests.support.ghscenario import REPOSITORY, PullRequestScenario, serve
from tests.support.policyrepo import change, create_flag, ramp

RAMP = "changes/ramp-checkout.yaml"


def enable(name: str, flag: str) -> dict[str, object]:
    return change(name, "feature_flag.enable", flag)


@pytest.fixture
def quorum() -> int:
    return 2


def judge(scenario: PullRequestScenario, number: int, store: Store | None = None) -> PullRequestEvaluation:
    with GitRepository.open(scenario.repo.path) as repo, scenario.gh.client() as client:
        return evaluate_pull_request(repo, client, number, now=scenario.now(), store=store)


def land_flag(scenario: PullRequestScenario, store: Store) -> None:
    scenario.land_checkout()
    scenario.reconcile(store)


def test_votes_missing_keep_the_status_pending_with_the_count(scenario: PullRequestScenario) -> None:
    scenario.land_checkout()
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.review(2, "bob", "APPROVED")
    scenario.review(2, "alice", "APPROVED")  # the author's own approval never counts
    result = judge(scenario, 2)
    assert [(c.path, c.state) for c in result.changes] == [(RAMP, "pending")]
    assert result.commit_status() == ("pending", "1/2 approvals · production-rollouts")
    # Without a store, the base's history replayed gives each flag before and after.
    assert result.merge is not None and result.merge.plan is not None
    [planned] = result.merge.plan.changes
    assert planned.before is not None and planned.after is not None
    rollout = [f["filters"]["groups"][0]["rollout_percentage"] for f in (planned.before, planned.after)]
    assert rollout == [10, 50]
    text = result.markdown()
    assert text.startswith(PLAN_MARKER)
    assert "| alice | approved | no | self-approval not allowed |" in text
    assert "@" not in text


def test_without_a_store_the_flags_before_come_from_the_bases_history(scenario: PullRequestScenario) -> None:
    scenario.land_checkout()
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.review(2, "bob", "APPROVED")
    text = judge(scenario, 2).markdown()
    assert f"Flags before: a replay of the base's history up to `{scenario.pulls[2].base[:12]}`." in text
    assert "| `filters.groups[0].rollout_percentage` | 10 | 50 |" in text
    assert "Flag state unknown" not in text


def test_without_a_store_a_change_the_merge_would_fail_fails_now(scenario: PullRequestScenario) -> None:
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})  # checkout never landed
    scenario.review(2, "bob", "APPROVED")
    scenario.review(2, "carol", "APPROVED")
    state, description = judge(scenario, 2).commit_status()
    assert state == "failure"
    assert description.startswith(f"cannot apply {RAMP}: ") and "checkout" in description


def test_with_a_store_the_plan_shows_the_flag_before_and_after(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    land_flag(scenario, sqlite_store)
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.review(2, "bob", "APPROVED")
    scenario.review(2, "carol", "APPROVED")
    result = judge(scenario, 2, sqlite_store)
    assert result.commit_status() == ("success", "2/2 approvals · production-rollouts")
    assert "| `filters.groups[0].rollout_percentage` | 10 | 50 |" in result.markdown()
    assert "Flag state unknown" not in result.markdown()


def test_a_standing_rejection_or_an_unappliable_change_fails_the_status(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    land_flag(scenario, sqlite_store)
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.review(2, "carol", "CHANGES_REQUESTED")
    assert judge(scenario, 2, sqlite_store).commit_status() == (
        "failure",
        "changes requested by carol · production-rollouts",
    )

    scenario.open(3, {"changes/ramp-missing.yaml": ramp("ramp-missing", "no-such-flag", 50)})
    state, description = judge(scenario, 3, sqlite_store).commit_status()
    assert state == "failure"
    assert description.startswith("cannot apply changes/ramp-missing.yaml: ")
    assert "no-such-flag" in description


def test_a_pull_request_that_weakens_the_policy_is_judged_by_the_base(scenario: PullRequestScenario) -> None:
    scenario.land_checkout()
    scenario.open_weakening(2)
    result = judge(scenario, 2)
    assert [(c.path, c.state) for c in result.changes] == [
        (RAMP, "pending"),
        ("policies/production-rollouts.yaml", "pending"),
    ]
    assert result.changes[1].action == "approval_policy.change"
    assert result.commit_status()[1] == "0/2 changes approved · 0/2 approvals · production-rollouts"


def test_check_approvals_sets_the_status_and_keeps_one_comment_up_to_date(
    scenario: PullRequestScenario,
) -> None:
    scenario.land_checkout()
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.gh.pulls[2]["created_at"] = datetime.now(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )  # the command runs now
    scenario.review(2, "bob", "APPROVED")
    runner = CliRunner()
    with serve(scenario.gh) as url:
        env = {"GITHUB_TOKEN": "fake-token", "GITHUB_API_URL": url, "GITHUB_REPOSITORY": REPOSITORY}
        args = [
            "check-approvals",
            "--pr",
            "2",
            "--repo",
            str(scenario.repo.path),
            "--path",
            ".",
        ]  # as the workflow runs it
        first = runner.invoke(main, args, env=env)
        scenario.review(2, "carol", "APPROVED")
        second = runner.invoke(main, args, env=env)
        dry = runner.invoke(main, [*args, "--dry-run"], env=env)
    assert (first.exit_code, second.exit_code, dry.exit_code) == (0, 0, 0), first.output + second.output
    head = scenario.pulls[2].head
    assert [(s["sha"], s["context"], s["state"], s["description"]) for s in scenario.gh.statuses] == [
        (head, "reconciler/approvals", "pending", "1/2 approvals · production-rollouts"),
        (head, "reconciler/approvals", "success", "2/2 approvals · production-rollouts"),
    ]
    comments = scenario.gh.comments[2]
    assert len(comments) == 1  # updated in place, never re-posted
    assert comments[0]["body"].startswith(PLAN_MARKER)
    assert "| carol | approved | yes |" in comments[0]["body"]
    assert scenario.gh.count("issues.update-comment") == 1
    assert "reconciler/approvals: success" in second.output
    assert dry.output.startswith(PLAN_MARKER) and len(scenario.gh.statuses) == 2


def test_check_approvals_with_a_bad_token_stops_with_a_clear_message(scenario: PullRequestScenario) -> None:
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    with serve(scenario.gh) as url:
        env = {"GITHUB_TOKEN": "expired", "GITHUB_API_URL": url, "GITHUB_REPOSITORY": REPOSITORY}
        result = CliRunner().invoke(
            main, ["check-approvals", "--pr", "2", "--repo", str(scenario.repo.path)], env=env
        )
    assert result.exit_code == 2
    assert "GitHub answered 401 (Bad credentials)" in result.output
    assert "the token in GITHUB_TOKEN is invalid or expired: replace it" in result.output
    assert scenario.gh.statuses == []


def test_a_huge_plan_comment_is_cut_to_fit_github(scenario: PullRequestScenario) -> None:
    scenario.land_checkout()
    files = {f"changes/ramp-{i:03}.yaml": ramp(f"ramp-{i:03}", "checkout", 50) for i in range(40)}
    scenario.open(2, files)
    for i in range(150):
        scenario.review(2, f"reviewer-with-a-rather-long-login-{i:03}", "APPROVED")
    with GitRepository.open(scenario.repo.path) as repo, scenario.gh.client() as client:
        from reconciler.plan.pullrequest import publish

        result = evaluate_pull_request(repo, client, 2, now=scenario.now())
        assert len(result.markdown()) > 65_536
        publish(client, result)
    body = scenario.gh.comments[2][0]["body"]
    assert len(body) <= 65_536 and body.startswith(PLAN_MARKER)


def test_what_the_merge_would_fail_fails_the_status_without_a_store(scenario: PullRequestScenario) -> None:
    scenario.land_checkout()
    scenario.open(2, {"changes/ramp-typo.yaml": ramp("ramp-chekout", "chekout", 50)})
    scenario.review(2, "bob", "APPROVED")
    scenario.review(2, "carol", "APPROVED")
    result = judge(scenario, 2)
    [change] = result.changes
    assert change.state == "invalid"
    assert change.evaluation is not None and change.evaluation.approved  # the votes are there
    state, description = result.commit_status()
    assert state == "failure"
    assert description.startswith("cannot apply changes/ramp-typo.yaml: merged as it is, this change")
    assert "feature flag 'chekout' does not exist" in result.markdown()


@pytest.mark.parametrize("how", ["remove", "rename", "edit"])
def test_removing_renaming_or_editing_a_merged_change_request_fails_the_status(
    scenario: PullRequestScenario, how: str
) -> None:
    scenario.land_checkout()
    merged = "changes/create-checkout.yaml"
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    if how == "remove":
        scenario.push(2, {}, remove=(merged,))
    elif how == "rename":
        scenario.push(
            2, {"changes/renamed.yaml": (scenario.repo.path / merged).read_text()}, remove=(merged,)
        )
    else:
        scenario.push(2, {merged: create_flag("create-checkout", "checkout", rollout=90)})
    scenario.gh.add_file(2, merged, status="removed" if how != "edit" else "modified")
    scenario.review(2, "bob", "APPROVED")
    scenario.review(2, "carol", "APPROVED")
    result = judge(scenario, 2)
    state, description = result.commit_status()
    assert state == "failure"
    where = "changes/renamed.yaml" if how == "rename" else merged
    assert description.startswith(f"cannot apply {where}: ")
    expected = {"remove": "removed, but it exists at the base", "rename": "renames " + merged}
    assert expected.get(how, "edits a change request that exists at the base") in result.markdown()


def test_a_pull_request_behind_its_base_does_not_remove_what_the_base_gained(
    scenario: PullRequestScenario,
) -> None:
    scenario.land_checkout()
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.open(3, {"changes/enable-checkout.yaml": enable("enable-checkout", "checkout")})
    scenario.review(3, "bob", "APPROVED")
    scenario.merge(3)
    scenario.gh.pulls[2]["base"]["sha"] = scenario.repo.head("main")  # GitHub follows the base branch
    scenario.review(2, "bob", "APPROVED")
    scenario.review(2, "carol", "APPROVED")
    assert judge(scenario, 2).commit_status() == ("success", "2/2 approvals · production-rollouts")
