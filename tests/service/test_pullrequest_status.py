"""The service's live pull-request sync sets the approvals status, linking to the dashboard, once a
dashboard address is known; without one it leaves the status to the workflow, as before.

Real git history, the fake GitHub, a real SQLite store; the refresher as `reconciler run` wires it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reconciler.github import GitHubClient
from reconciler.reconcile import ReconcileConfig
from reconciler.service.wiring import pull_request_refresher
from reconciler.store import Store
from tests.support.ghscenario import PullRequestScenario
from tests.support.policyrepo import ramp

RAMP = "changes/ramp-checkout.yaml"
DASHBOARD = "https://flags.example.com/reconciler"


@pytest.fixture
def quorum() -> int:
    return 2


def refresher(
    scenario: PullRequestScenario, store: Store, dashboard_url: str | None = None
) -> Callable[[int | None], object]:
    def github(_repository: str | None) -> GitHubClient:
        return scenario.gh.client()

    config = ReconcileConfig(repo=str(scenario.repo.path), branch="main")
    return pull_request_refresher(config, store, github=github, now=scenario.now, dashboard_url=dashboard_url)


def opened(scenario: PullRequestScenario, store: Store) -> None:
    scenario.land_checkout()
    scenario.reconcile(store)
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})


def test_without_a_dashboard_the_service_sets_no_status(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    opened(scenario, sqlite_store)
    refresher(scenario, sqlite_store)(None)
    assert scenario.gh.statuses == []


def test_with_the_rules_dashboard_url_each_change_of_verdict_is_published_once(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    scenario.set_dashboard(DASHBOARD)
    opened(scenario, sqlite_store)
    refresh = refresher(scenario, sqlite_store)
    refresh(None)
    refresh(None)  # nothing new: nothing written
    scenario.review(2, "bob", "APPROVED")
    refresh(2)  # the review's webhook
    refresh(None)
    head = scenario.pulls[2].head
    assert [(s["sha"], s["state"], s["description"], s["target_url"]) for s in scenario.gh.statuses] == [
        (head, "pending", "0/2 approvals · production-rollouts", f"{DASHBOARD}/ui/pulls/2"),
        (head, "pending", "1/2 approvals · production-rollouts", f"{DASHBOARD}/ui/pulls/2"),
    ]


def test_the_option_names_the_dashboard_when_reconciler_yaml_does_not(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    opened(scenario, sqlite_store)
    refresher(scenario, sqlite_store, "https://ops.example.com")(None)
    assert [s["target_url"] for s in scenario.gh.statuses] == ["https://ops.example.com/ui/pulls/2"]


def test_a_token_that_may_not_set_statuses_leaves_the_sync_done(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    scenario.set_dashboard(DASHBOARD)
    opened(scenario, sqlite_store)
    scenario.gh.fail(
        403, endpoint="repos.create-commit-status", message="Resource not accessible by integration"
    )
    report = refresher(scenario, sqlite_store)(None)
    assert getattr(report, "written", None) == 1  # the live record is in the store all the same
    assert scenario.gh.statuses == []
    refresher(scenario, sqlite_store)(None)  # a later sync tries again
    assert len(scenario.gh.statuses) == 1
