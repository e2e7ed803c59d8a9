"""`reconciler changes show` on an open pull request's change: who can still approve it, as
the live sync judged it (the same `who_can_still_approve` the pull-request comment uses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.gitrepo.repository import GitRepository
from reconciler.service.pullrequests import sync_open_pull_requests
from reconciler.store import Store
from tests.support.ghscenario import PullRequestScenario
from tests.support.policyrepo import ramp

RAMP = "changes/ramp-checkout.yaml"


@pytest.fixture
def quorum() -> int:
    return 2


def sync(scenario: PullRequestScenario, store: Store) -> None:
    with GitRepository.open(scenario.repo.path, branch="main") as repo, scenario.gh.client() as client:
        sync_open_pull_requests(store, repo, client, now=scenario.now())


def show(store_path: Path, *options: str) -> str:
    result = CliRunner().invoke(
        main, ["changes", "show", "ramp-checkout", "--store", str(store_path), *options]
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def test_an_open_change_says_who_can_still_approve_it(scenario: PullRequestScenario, tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Store.open(path) as store:
        scenario.land_checkout()
        scenario.reconcile(store)
        scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
        scenario.review(2, "bob", "APPROVED")
        sync(scenario, store)
    text = show(path)
    still = rows(text, "who can still approve")
    assert still == [
        ["POLICY", "APPROVALS", "NEEDED", "CAN APPROVE", "MUST APPROVE AGAIN", "CAN BYPASS"],
        ["production-rollouts", "1/2", "1", "carol", "", "erin"],
    ]  # alice filed it: her approval would not count, so she is not asked
    assert "changes: /filters/groups/0/rollout_percentage: 10.0 -> 50.0" in text
    body = json.loads(show(path, "--format", "json"))
    assert body["still_to_approve"] == [
        {
            "policy": "production-rollouts",
            "quorum": 2,
            "approvals": 1,
            "needed": 1,
            "can_approve": ["carol"],
            "renew": [],
            "can_bypass": ["erin"],
            "reachable": True,
        }
    ]


def test_once_it_lands_nobody_is_asked_any_more(scenario: PullRequestScenario, tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Store.open(path) as store:
        scenario.land_checkout()
        scenario.reconcile(store)
        scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
        scenario.review(2, "bob", "APPROVED")
        sync(scenario, store)
        scenario.review(2, "carol", "APPROVED")
        scenario.merge(2)
        scenario.reconcile(store)
    text = show(path)
    assert "state: applied" in text
    assert "# who can still approve" not in text
    assert json.loads(show(path, "--format", "json"))["still_to_approve"] is None


def rows(text: str, title: str) -> list[list[str]]:
    block = text.split(f"# {title}\n", 1)[1].split("\n\n", 1)[0]
    return [line.split("\t") for line in block.splitlines()]
