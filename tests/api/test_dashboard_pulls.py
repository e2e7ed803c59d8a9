"""The dashboard's pull-request pages over a store the real pass and live sync filled: each
live change request's verdict, its votes, and who can still approve it (the policy package's
answer, judged by the rules in force), with the "waiting on" filter."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest

from reconciler.api import create_app
from reconciler.gitrepo.repository import GitRepository
from reconciler.model.states import SCOPES
from reconciler.service.pullrequests import sync_open_pull_requests
from reconciler.store import Store
from tests.support.apiclient import SETTINGS, Client
from tests.support.ghscenario import PullRequestScenario
from tests.support.policyrepo import ramp
from tests.support.storedata import record_of

RAMP = "changes/ramp-checkout.yaml"


@pytest.fixture
def quorum() -> int:
    return 2


def words(page: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", page)))


def test_an_open_pull_request_says_who_can_still_approve(
    scenario: PullRequestScenario, sqlite_store: Store
) -> None:
    scenario.land_checkout()
    scenario.reconcile(sqlite_store)
    scenario.open(2, {RAMP: ramp("ramp-checkout", "checkout", 50)})
    scenario.review(2, "bob", "APPROVED")
    with GitRepository.open(scenario.repo.path, branch="main") as repo, scenario.gh.client() as gh:
        sync_open_pull_requests(sqlite_store, repo, gh, now=scenario.now())
    live = record_of(sqlite_store, RAMP)
    token, _ = sqlite_store.create_token("dave", SCOPES)
    app = create_app(sqlite_store, settings=SETTINGS, clock=scenario.now)
    client = Client(app, token)
    try:
        page = words(client.get("/ui/pulls/2").text)
        assert "Policy production-rollouts : 1 of 2 approvals, 1 more needed." in page
        assert "Who can still approve: carol ." in page  # alice requested it, bob has approved
        assert "Can merge without the quorum (bypass): erin." in page
        assert "bob approved counts" in page
        listing = words(client.get("/ui/pulls").text)
        assert "#2" in listing and "carol" in listing
        for login, shown in (
            ("carol", True),
            ("CAROL", True),
            ("alice", False),
            ("bob", False),
            ("nobody", False),
        ):
            filtered = words(client.get("/ui/pulls", params={"waiting_on": login}).text)
            assert (live.name in filtered) is shown, login
        change = words(client.get(f"/ui/changes/{live.id}").text)
        assert "Who can still approve: carol ." in change
    finally:
        client.close()
    assert live.expires_at is not None
    expired = live.expires_at + timedelta(days=1)
    later = Client(create_app(sqlite_store, settings=SETTINGS, clock=lambda: expired), token)
    try:  # past its expiry nobody can approve it any more, and the page says why
        page = words(later.get("/ui/pulls/2").text)
        assert "it takes no more approvals" in page and "carol" not in page
        assert live.name not in words(later.get("/ui/pulls", params={"waiting_on": "carol"}).text)
    finally:
        later.close()
