"""The plan comment an approver reads, and where the approvals status links.

Real git history in tmp_path, the fake GitHub (in process, or over real HTTP for the command):
who can still approve, when approvals expire, hostile file names and flag values shown as
text, and `dashboard_url` (reconciler.yaml of the base, `--dashboard-url`,
`RECONCILER_DASHBOARD_URL`) turned into the status's `target_url`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.gitrepo.repository import GitRepository
from reconciler.plan.pullrequest import PullRequestEvaluation, evaluate_pull_request, publish
from tests.support.ghscenario import REPOSITORY, PullRequestScenario, serve
from tests.support.policyrepo import create_flag, policy, project, ramp

RAMP = "changes/ramp-checkout.yaml"
DASHBOARD = "https://flags.example.com/reconciler"


@pytest.fixture
def quorum() -> int:
    return 2


def judge(scenario: PullRequestScenario, number: int = 2) -> PullRequestEvaluation:
    with GitRepository.open(scenario.repo.path) as repo, scenario.gh.client() as client:
        return evaluate_pull_request(repo, client, number, now=scenario.now())


def check_approvals(scenario: PullRequestScenario, *extra: str, env: dict[str, str] | None = None) -> Result:
    """The command as the workflow runs it, now: the pull request was just opened."""
    scenario.gh.pulls[2]["created_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with serve(scenario.gh) as url:
        environment = {"GITHUB_TOKEN": "fake-token", "GITHUB_API_URL": url, "GITHUB_REPOSITORY": REPOSITORY}
        environment.update(env or {})
        args = ["check-approvals", "--pr", "2", "--repo", str(scenario.repo.path), *extra]
        return CliRunner().invoke(main, args, env=environment)


def open_ramp(scenario: PullRequestScenario) -> None:
    scenario.land_checkout()
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})


# --- who can still approve, why votes count, expiry ----------------------------------------


def test_the_comment_names_who_can_still_approve_and_why_each_vote_counts(
    scenario: PullRequestScenario,
) -> None:
    open_ramp(scenario)
    scenario.review(2, "bob", "APPROVED")
    scenario.review(2, "alice", "APPROVED")  # the author
    text = judge(scenario).markdown()
    # flag-approvers: alice, bob, carol; alice requested, bob counted
    assert "| bob | approved | yes | role flag-approvers |" in text
    assert "| alice | approved | no | self-approval not allowed |" in text
    assert "Can still approve (1 more needed): carol" in text
    assert "May merge without the quorum (bypass): erin" in text


def test_an_approval_made_stale_by_a_later_push_must_be_given_again(scenario: PullRequestScenario) -> None:
    open_ramp(scenario)
    scenario.review(2, "bob", "APPROVED")
    scenario.push(2, {RAMP: ramp("ramp-checkout", "checkout", 60)})
    text = judge(scenario).markdown()
    assert "| bob | approved | no | stale: file changed after review |" in text
    assert "Can still approve (2 more needed): bob (again), carol" in text
    assert "| `filters.groups[0].rollout_percentage` | 10 | 60 |" in text


def test_the_comment_says_when_approvals_expire(scenario: PullRequestScenario) -> None:
    open_ramp(scenario)
    result = judge(scenario)
    [change] = result.changes
    assert change.evaluation is not None and change.evaluation.expires_at is not None
    opened = change.context.created_at
    assert change.evaluation.expires_at == opened + timedelta(days=14)
    expires = change.evaluation.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    assert f"Approvals expire at {expires}: merged later, the change cannot apply" in result.markdown()


def test_an_expired_request_says_so_and_nobody_can_approve_it(scenario: PullRequestScenario) -> None:
    open_ramp(scenario)
    with GitRepository.open(scenario.repo.path) as repo, scenario.gh.client() as client:
        later = scenario.now() + timedelta(days=15)
        result = evaluate_pull_request(repo, client, 2, now=later)
    assert result.commit_status()[0] == "failure"
    text = result.markdown()
    assert "**Expired** at " in text and "file the change again as a new file" in text
    assert "Can still approve: _nobody: the request expired_" in text


def test_changes_of_one_pull_request_see_the_flag_as_the_earlier_ones_leave_it(
    scenario: PullRequestScenario,
) -> None:
    scenario.open(
        2,
        {
            "changes/a-create-beta.yaml": create_flag("create-beta", "beta", rollout=5),
            "changes/b-ramp-beta.yaml": ramp("ramp-beta", "beta", 30),
        },
    )
    result = judge(scenario)
    assert [(c.path, c.state, c.problem) for c in result.changes] == [
        ("changes/a-create-beta.yaml", "pending", None),
        ("changes/b-ramp-beta.yaml", "pending", None),
    ]
    assert "| `filters.groups[0].rollout_percentage` | 5 | 30 |" in result.markdown()


# --- hostile input --------------------------------------------------------------------------

HOSTILE = "[Approve here](https://evil.example) <img src=x onerror=alert(1)> @acme/everyone | `x` **y**"


def unescaped_markup(text: str) -> list[str]:
    """Markup outside code spans that someone else's text could have made: tags, links, mentions."""
    outside = re.sub(r"`[^`\n]*`", "", text.replace(PLAN_HEAD, ""))
    return re.findall(r"(?<!\\)<[a-z]|(?<!\\)\]\(|@[a-z]|https?://", outside)


PLAN_HEAD = "<!-- reconciler:plan -->"


def test_file_names_logins_and_flag_values_are_text_never_markup(scenario: PullRequestScenario) -> None:
    name = "changes/a`b|c](javascript:alert(1))<b>@team www.evil.example.yaml"
    created = create_flag("create-x", "x", rollout=5, tags=[HOSTILE])
    created["spec"]["flag"]["name"] = HOSTILE
    scenario.open(2, {name: created})
    scenario.review(2, "mallory-o<b>b</b>", "APPROVED")
    scenario.review(2, "x](https://evil.example)", "APPROVED")
    text = judge(scenario).markdown()
    assert unescaped_markup(text) == []
    assert "\n| " in text and all(line.count("|") - line.count("\\|") in (4, 5) for line in _table_rows(text))
    assert "<!-- reconciler:plan -->" in text.splitlines()[0]


def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]


def test_a_hostile_description_in_a_problem_stays_text(scenario: PullRequestScenario) -> None:
    bad: dict[str, Any] = ramp("ramp-checkout", "checkout", 50)
    bad["spec"]["environment"] = "<script>"  # refused by the schema: the problem quotes the value
    scenario.open(2, {RAMP: bad})
    result = judge(scenario)
    assert result.commit_status()[0] == "failure"
    assert unescaped_markup(result.markdown()) == []


# --- the status link ------------------------------------------------------------------------


def test_without_a_dashboard_the_status_links_to_the_pull_request(scenario: PullRequestScenario) -> None:
    open_ramp(scenario)
    assert check_approvals(scenario).exit_code == 0
    [status] = scenario.gh.statuses
    assert status["target_url"] == scenario.gh.pulls[2]["html_url"]


def test_the_bases_dashboard_url_makes_the_status_link_to_the_pull_requests_page(
    scenario: PullRequestScenario,
) -> None:
    scenario.set_dashboard(DASHBOARD + "/")
    open_ramp(scenario)
    assert check_approvals(scenario).exit_code == 0
    assert [s["target_url"] for s in scenario.gh.statuses] == [f"{DASHBOARD}/ui/pulls/2"]


def test_the_option_and_its_environment_variable_override_reconciler_yaml(
    scenario: PullRequestScenario,
) -> None:
    scenario.set_dashboard(DASHBOARD)
    open_ramp(scenario)
    check_approvals(scenario, "--dashboard-url", "https://ops.example.com")
    check_approvals(scenario, env={"RECONCILER_DASHBOARD_URL": "http://localhost:8000"})
    assert [s["target_url"] for s in scenario.gh.statuses] == [
        "https://ops.example.com/ui/pulls/2",
        "http://localhost:8000/ui/pulls/2",
    ]


def test_a_pull_request_cannot_point_its_own_status_elsewhere(scenario: PullRequestScenario) -> None:
    scenario.set_dashboard(DASHBOARD)
    scenario.land_checkout()
    evil = project("github")
    evil["spec"]["dashboard_url"] = "https://evil.example.com"
    scenario.open(2, {"reconciler.yaml": evil, RAMP: ramp("ramp-checkout", "checkout", 50)})
    with GitRepository.open(scenario.repo.path) as repo, scenario.gh.client() as client:
        publish(client, evaluate_pull_request(repo, client, 2, now=scenario.now()))
    assert [s["target_url"] for s in scenario.gh.statuses] == [f"{DASHBOARD}/ui/pulls/2"]


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("javascript:alert(document.cookie)", "starts with https://"),
        ("https://admin:hunter2@flags.example.com", "no user name or password"),
        ("https://flags.example.com/?next=https://evil.example", "no query"),
        ("https://flags.example.com/\nLocation: x", "no spaces, control characters"),
        ("data:text/html,<script>alert(1)</script>", "starts with https://"),
    ],
)
def test_a_dashboard_address_that_is_not_a_plain_web_address_is_refused(
    scenario: PullRequestScenario, address: str, says: str
) -> None:
    open_ramp(scenario)
    result = check_approvals(scenario, "--dashboard-url", address)
    assert result.exit_code == 2
    assert says in result.output and "--dashboard-url" in result.output
    assert "hunter2" not in result.output
    assert scenario.gh.statuses == [] and scenario.gh.comments.get(2) is None


def test_dry_run_shows_the_link_it_would_set(scenario: PullRequestScenario) -> None:
    scenario.set_dashboard(DASHBOARD)
    open_ramp(scenario)
    result = check_approvals(scenario, "--dry-run")
    assert result.exit_code == 0
    assert f"status link: {DASHBOARD}/ui/pulls/2" in result.output
    assert scenario.gh.statuses == []


# --- the base's history ---------------------------------------------------------------------


def test_a_rule_change_pushed_without_approval_does_not_judge_the_pull_request(
    scenario: PullRequestScenario,
) -> None:
    """The replay keeps the rules in force: a policy weakened by a direct push (never approved)
    is not the one the merge will judge by, so the check does not judge by it either."""
    scenario.land_checkout()
    weaker = policy("production-rollouts", "feature_flag.update", 1, match={"environments": ["production"]})
    scenario.push_main({"policies/production-rollouts.yaml": weaker})
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.review(2, "bob", "APPROVED")
    assert judge(scenario).commit_status() == ("pending", "1/2 approvals · production-rollouts")


def test_when_the_history_cannot_be_replayed_the_change_is_judged_the_strict_way_and_the_comment_says_why(
    scenario: PullRequestScenario,
) -> None:
    open_ramp(scenario)
    scenario.review(2, "bob", "APPROVED")
    # only the replay asks which pull request landed a commit: it alone fails
    scenario.gh.fail(403, endpoint="repos.list-pull-requests-associated-with-commit", times=5)
    result = judge(scenario)
    assert result.commit_status() == ("pending", "1/2 approvals · production-rollouts")
    assert not result.flag_state_known
    text = result.markdown()
    assert "_Flag state unknown (unknown: the base's history could not be replayed (" in text
    assert "every policy condition is assumed to select the change._" in text


def test_no_replay_judges_the_strict_way_without_asking_github_about_the_history(
    scenario: PullRequestScenario,
) -> None:
    open_ramp(scenario)
    result = check_approvals(scenario, "--no-replay", "--dry-run")
    assert result.exit_code == 0
    assert "_Flag state unknown (the base's history was not replayed (--no-replay))" in result.output
    assert scenario.gh.count("repos.list-pull-requests-associated-with-commit") == 0
